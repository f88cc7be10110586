"""Inference without torch: artifacts, tokenizers, onnxruntime/OpenVINO backends, the reranker,
passages and calibration."""

from crossrank.runtime.artifact import ArtifactError, Manifest
from crossrank.runtime.precision import MODEL_FILES, PRECISIONS, resolve_precision
from crossrank.runtime.reranker import OnnxReranker, Ranked

__all__ = [
    "MODEL_FILES",
    "PRECISIONS",
    "ArtifactError",
    "Manifest",
    "OnnxReranker",
    "Ranked",
    "resolve_precision",
]
