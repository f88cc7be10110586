"""Precisions an artifact can run at, and which graph file each reads (imports nothing heavy,
so command-line parsers can list the choices)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Precision = Literal["auto", "fp32", "int8", "bf16"]
# precision -> graph file. bf16 runs the fp32 graph with OpenVINO's bf16 kernels.
MODEL_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "bf16": "model.onnx"}
PRECISIONS = ("auto", *MODEL_FILES)
PRECISION_HELP = "auto: int8 when the artifact has it, else fp32; bf16 needs OpenVINO"


def resolve_precision(model_dir: str | Path, precision: str) -> str:
    """``auto`` is int8 when the artifact ships an int8 graph (the fast default), else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"expected precision in {list(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "int8" if (Path(model_dir) / MODEL_FILES["int8"]).is_file() else "fp32"
    return precision
