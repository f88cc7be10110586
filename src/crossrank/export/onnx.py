"""Export a cross-encoder to a self-contained ONNX artifact directory, checked for parity.

The artifact holds ``model.onnx`` (dynamic batch and sequence axes), optionally
``model.int8.onnx``, the tokenizer files and ``crossrank.json`` (see :mod:`crossrank.runtime.artifact`).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from crossrank.export.checks import (
    PARITY_TOLERANCE,
    ParityError,
    check_parity,
    compare_int8,
    fixture_pairs,
)
from crossrank.io import atomic_directory
from crossrank.runtime.artifact import INPUT_NAMES, MANIFEST, Manifest, hash_files
from crossrank.runtime.tokenization import Encoded, PairTokenizer

OPSET = 17


@dataclass
class Exportable:
    """A scoring module with what the artifact needs to describe it."""

    module: (
        nn.Module
    )  # forward(input_ids, attention_mask, token_type_ids) -> one [batch] per output
    tokenizer: PairTokenizer
    max_length: int
    model_info: dict
    tokenizer_files: Sequence[Path] = ()
    outputs: tuple[str, ...] = ("scores",)  # ("scores", "answer_logit") with an answer head


def eager_attention(module: nn.Module) -> None:
    """Switch every Hugging Face submodule to the eager attention implementation.

    A traced SDPA call becomes a graph onnxruntime cannot fuse; the eager one becomes the
    MatMul-Softmax-MatMul pattern that its optimizer turns into fused attention (~25% faster
    on CPU). The two compute the same function, which the parity check confirms.
    """
    for sub in module.modules():
        implementation = getattr(getattr(sub, "config", None), "_attn_implementation", "eager")
        if hasattr(sub, "set_attn_implementation") and implementation != "eager":
            sub.set_attn_implementation("eager")


def trace_onnx(
    module: nn.Module,
    example: Encoded,
    path: Path,
    opset: int,
    outputs: Sequence[str] = ("scores",),
) -> None:
    """Trace ``module(input_ids, attention_mask, token_type_ids)`` with dynamic batch and
    sequence axes (the TorchScript exporter, whose graphs onnxruntime's optimizer can fuse)."""
    eager_attention(module)
    args = tuple(
        torch.from_numpy(a)
        for a in (example.input_ids, example.attention_mask, example.token_type_ids)
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes.update({name: {0: "batch"} for name in outputs})
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=list(INPUT_NAMES),
        output_names=list(outputs),
        dynamic_axes=axes,
        opset_version=opset,
        dynamo=False,
        do_constant_folding=True,
    )


def attention_shape(module: nn.Module) -> tuple[int, int] | None:
    """(heads, hidden size) of the Hugging Face encoder inside ``module``, or None (tiny)."""
    for sub in module.modules():
        config = getattr(sub, "config", None)
        heads = getattr(config, "num_attention_heads", None)
        hidden = getattr(config, "hidden_size", None)
        if isinstance(heads, int) and isinstance(hidden, int):
            return heads, hidden
    return None


def quantize_int8(src: Path, dst: Path, attention: tuple[int, int] | None = None) -> None:
    """Dynamic int8 quantization: weights per output channel, activations per call.

    A BERT-class graph is first fused by onnxruntime's transformer optimizer (Attention,
    SkipLayerNorm, BiasGelu), so that the quantizer emits QAttention: int8 attention as well
    as int8 projections, 27% faster per pair than quantizing the plain graph at the same
    agreement with fp32 (RESULTS.md). ``attention`` is the encoder's (heads, hidden size);
    without it (the tiny model), or when nothing fuses, the graph is quantized as it is.
    Static (calibrated QDQ) int8 was measured too: it moved the top 10 far more and ran no
    faster here, so dynamic it is.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        fused = attention and _fused_for_onnxruntime(src, Path(tmp) / "fused.onnx", *attention)
        quantize_dynamic(
            str(fused or src),
            str(dst),
            per_channel=True,
            weight_type=QuantType.QInt8,
            # Without it, tensors whose type the quantizer cannot infer (fused graphs) fail.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def _fused_for_onnxruntime(src: Path, dst: Path, heads: int, hidden: int) -> Path | None:
    """``src`` with its attention fused by onnxruntime's BERT optimizer, or None when the
    optimizer finds no attention to fuse (then the plain graph is quantized)."""
    import logging

    from onnxruntime.transformers.optimizer import optimize_model

    quiet = logging.getLogger("onnxruntime.transformers")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        model = optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden)
    finally:
        quiet.setLevel(level)
    if not model.get_fused_operator_statistics().get("Attention"):
        return None
    model.save_model_to_file(str(dst))
    return dst


def export(
    item: Exportable,
    output: str | Path,
    int8: bool = False,
    source: dict | None = None,
    opset: int = OPSET,
) -> Manifest:
    """Write the artifact atomically; refuse (raise :class:`ParityError`) when parity fails."""
    out = Path(output)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ValueError(f"{out}: exists and is not a crossrank artifact; refusing to replace it")
    item.module.eval()
    queries, documents = fixture_pairs()
    with atomic_directory(output) as tmp:
        example = item.tokenizer.encode_pairs(
            ["a query"] * 2, ["a document", "another longer document"], item.max_length
        )
        trace_onnx(item.module, example, tmp / "model.onnx", opset, item.outputs)
        parity = check_parity(item, tmp / "model.onnx", queries, documents)
        if not parity["max_abs_diff"] <= PARITY_TOLERANCE:
            raise ParityError(
                f"expected onnxruntime and torch scores within {PARITY_TOLERANCE}, got a max "
                f"difference of {parity['max_abs_diff']:.2e}; nothing was written to {output}"
            )
        for f in item.tokenizer_files:
            shutil.copy2(f, tmp / Path(f).name)
        manifest = Manifest(
            model=item.model_info,
            tokenizer=item.tokenizer.config(),
            max_length=item.max_length,
            pooling=item.model_info.get("pooling"),
            opset=opset,
            outputs=list(item.outputs),
            source=source or {},
            parity=parity,
        )
        if int8:
            quantize_int8(tmp / "model.onnx", tmp / "model.int8.onnx", attention_shape(item.module))
            manifest.int8 = compare_int8(
                item.tokenizer, item.max_length, tmp / "model.onnx", tmp / "model.int8.onnx"
            )
        manifest.files = hash_files(tmp)
        manifest.save(tmp)
    return manifest
