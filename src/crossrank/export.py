"""Export a cross-encoder to a self-contained ONNX artifact directory, checked for parity.

The artifact holds ``model.onnx`` (dynamic batch and sequence axes), optionally
``model.int8.onnx``, the tokenizer files and ``crossrank.json`` (see :mod:`crossrank.artifact`).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from crossrank.artifact import FORMAT_VERSION, MANIFEST, sha256_file, write_manifest
from crossrank.atomic import atomic_directory
from crossrank.data.examples import read_labeled
from crossrank.data.negatives import mine_candidates
from crossrank.tokenization import Encoded, PairTokenizer

OPSET = 17
PARITY_TOLERANCE = 1e-4
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]


class ParityError(RuntimeError):
    """The exported graph does not reproduce the torch model's scores."""


@dataclass
class Exportable:
    """A scoring module with what the artifact needs to describe it."""

    module: nn.Module  # forward(input_ids, attention_mask, token_type_ids) -> [batch] scores
    tokenizer: PairTokenizer
    max_length: int
    model_info: dict
    tokenizer_files: Sequence[Path] = ()


def fixture_pairs(limit: int = 48) -> tuple[list[str], list[str]]:
    """Real (query, document) pairs from the packaged fixture for parity checks."""
    data = read_labeled("fixture", "eval")
    docs = list(data.documents.values())
    queries, documents = [], []
    for i, q in enumerate(data.queries):
        for j in range(4):
            queries.append(q.text)
            documents.append(docs[(7 * i + 13 * j) % len(docs)])
    # One long pair so the batch also exercises truncation at max_length.
    queries.append(data.queries[0].text)
    documents.append(" ".join(docs[:20]))
    return queries[:limit], documents[:limit]


def torch_outputs(module: nn.Module, enc: Encoded) -> np.ndarray:
    with torch.no_grad():
        out = module(
            *(torch.from_numpy(a) for a in (enc.input_ids, enc.attention_mask, enc.token_type_ids))
        )
    return out.float().numpy()


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def ort_outputs(sess: ort.InferenceSession, enc: Encoded, output: str = "scores") -> np.ndarray:
    return sess.run([output], enc.as_dict())[0]


def check_parity(
    item: Exportable, onnx_path: Path, queries: list[str], documents: list[str]
) -> dict:
    """Max |onnxruntime − torch| over a padded batch and over the same pairs one at a time."""
    sess = session(onnx_path)
    padded = item.tokenizer.encode_pairs(queries, documents, item.max_length)
    diffs = [np.abs(ort_outputs(sess, padded) - torch_outputs(item.module, padded)).max()]
    for q, d in zip(queries[:8], documents[:8], strict=True):
        single = item.tokenizer.encode_pairs([q], [d], item.max_length)
        diffs.append(np.abs(ort_outputs(sess, single) - torch_outputs(item.module, single)).max())
    return {
        "max_abs_diff": float(max(diffs)),
        "pairs": len(queries),
        "padded_width": padded.input_ids.shape[1],
    }


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
    module: nn.Module, example: Encoded, path: Path, opset: int, output: str = "scores"
) -> None:
    """Trace ``module(input_ids, attention_mask, token_type_ids)`` with dynamic batch and
    sequence axes (the TorchScript exporter, whose graphs onnxruntime's optimizer can fuse)."""
    eager_attention(module)
    args = tuple(
        torch.from_numpy(a)
        for a in (example.input_ids, example.attention_mask, example.token_type_ids)
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes[output] = {0: "batch"}
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=INPUT_NAMES,
        output_names=[output],
        dynamic_axes=axes,
        opset_version=opset,
        dynamo=False,
        do_constant_folding=True,
    )


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization: weights per output channel, activations per batch.

    Static (calibrated QDQ) int8 was measured too: on NFCorpus pairs it moved the top 10
    far more than dynamic int8 and ran no faster here (RESULTS.md), so dynamic it is.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        per_channel=True,
        weight_type=QuantType.QInt8,
        # Without it, tensors whose type the quantizer cannot infer (fused graphs) fail.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def compare_int8(item: Exportable, fp32: Path, int8: Path, depth: int = 30) -> dict:
    """Score drift and top-10 agreement of int8 against fp32 when reranking BM25's top
    ``depth`` for each of the fixture's eval queries."""
    data = read_labeled("fixture", "eval")
    mine_candidates(data, depth, cache_dir=None)
    s32, s8 = session(fp32), session(int8)
    drift, overlap, top1 = 0.0, [], []
    for q in data.queries:
        docs = [data.documents[d] for d in q.candidates]
        enc = item.tokenizer.encode_pairs([q.text] * len(docs), docs, item.max_length)
        a, b = ort_outputs(s32, enc), ort_outputs(s8, enc)
        drift = max(drift, float(np.abs(a - b).max()))
        ta, tb = np.argsort(-a)[:10], np.argsort(-b)[:10]
        overlap.append(len(set(ta) & set(tb)) / 10)
        top1.append(bool(ta[0] == tb[0]))
    return {
        "max_abs_drift": drift,
        "top10_agreement": float(np.mean(overlap)),
        "top1_agreement": float(np.mean(top1)),
    }


def export(
    item: Exportable,
    output: str | Path,
    int8: bool = False,
    source: dict | None = None,
    opset: int = OPSET,
) -> dict:
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
        trace_onnx(item.module, example, tmp / "model.onnx", opset)
        parity = check_parity(item, tmp / "model.onnx", queries, documents)
        if not parity["max_abs_diff"] <= PARITY_TOLERANCE:
            raise ParityError(
                f"expected onnxruntime and torch scores within {PARITY_TOLERANCE}, got a max "
                f"difference of {parity['max_abs_diff']:.2e}; nothing was written to {output}"
            )
        for f in item.tokenizer_files:
            shutil.copy2(f, tmp / Path(f).name)
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": item.model_info,
            "tokenizer": item.tokenizer.config(),
            "max_length": item.max_length,
            "pooling": item.model_info.get("pooling"),
            "opset": opset,
            "inputs": INPUT_NAMES,
            "outputs": ["scores"],
            "source": source or {},
            "parity": parity,
        }
        if int8:
            quantize_int8(tmp / "model.onnx", tmp / "model.int8.onnx")
            manifest["int8"] = compare_int8(item, tmp / "model.onnx", tmp / "model.int8.onnx")
        manifest["files"] = {
            p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.name != MANIFEST
        }
        write_manifest(tmp, manifest)
    return manifest
