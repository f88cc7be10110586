"""Precisions an artifact can run at, and which graph file each reads (imports nothing heavy,
so command-line parsers can list the choices)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Precision = Literal["auto", "fp32", "int8", "bf16", "int8-ov"]
# precision -> graph file. bf16 runs the fp32 graph with OpenVINO's bf16 kernels; int8-ov
# rewrites its MatMul weights to int8 at load (OpenVINO; see runtime.openvino_int8).
MODEL_FILES = {
    "fp32": "model.onnx",
    "int8": "model.int8.onnx",
    "bf16": "model.onnx",
    "int8-ov": "model.onnx",
}
PRECISIONS = ("auto", *MODEL_FILES)
PRECISION_HELP = (
    "auto: the path measured fastest on this CPU (bf16 on AMX or AVX512-BF16, else int8 when "
    "the artifact has it, else fp32); bf16 and int8-ov (int8 weights, activations quantized per "
    "token) run on OpenVINO"
)


def resolve_precision(model_dir: str | Path, precision: str) -> str:
    """``auto``: the fastest path for this CPU that this install and artifact can run
    (:mod:`crossrank.runtime.hardware`), logged once; any other value is returned as is."""
    if precision not in PRECISIONS:
        raise ValueError(f"expected precision in {list(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        from crossrank.runtime.guards import log_once
        from crossrank.runtime.hardware import fastest_precision

        has_int8 = (Path(model_dir) / MODEL_FILES["int8"]).is_file()
        precision, why = fastest_precision(has_int8)
        log_once(f"auto:{precision}", "precision auto -> %s (%s)", precision, why)
    return precision
