"""Inference backends that run an artifact's ONNX graph: onnxruntime, and optionally OpenVINO.

onnxruntime (the default install) runs fp32 and dynamic-int8 graphs. OpenVINO
(a dependency) reads the same fp32 ``model.onnx`` and, on CPUs with
AVX512-BF16 or AMX, computes in bfloat16: the fastest path measured on our machines
(benchmarks/rerank_speed.py). Neither imports torch.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np

OUTPUT = "scores"


class Backend(Protocol):
    """Runs the graph on one padded batch and returns its ``outputs``, stacked ``[outputs, batch]``."""

    # What measured fastest (benchmarks/rerank_speed.py): a fixed number of pairs per call,
    # or, when that is None, as many pairs as fit a budget of padded tokens.
    batch_size: int | None
    batch_tokens: int | None

    outputs: tuple[str, ...]

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray: ...


def default_threads() -> int:
    """Cores this process may use (its affinity mask, not the whole machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def ort_session(path: str | Path, threads: int | None = None, profile_prefix: str | None = None):
    """The one onnxruntime CPU session set-up of the project (reranker, bi-encoder, export
    checks): all the cores this process may use, sequential execution, every graph fusion.
    ``profile_prefix``: record kernel times to that file prefix (benchmarks/op_profile.py)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Fuses the exported eager attention, LayerNorm and GELU into onnxruntime's kernels.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRuntimeBackend:
    """An onnxruntime CPU session; ``run`` is safe to call from several threads at once.

    One pair per call: MLAS picks kernels by the number of rows, so a pair's fp32 score moves
    by an ulp with its batch-mates, and dynamic int8 scales a call's activations together
    (a pair's score would move by up to 0.17 logits). Measured no slower than batching here.
    """

    batch_size = 1
    batch_tokens = None

    def __init__(
        self, path: Path, threads: int | None = None, outputs: tuple[str, ...] = (OUTPUT,)
    ) -> None:
        self.session = ort_session(path, threads)
        self.outputs = tuple(outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.stack(self.session.run(list(self.outputs), feeds))


class OpenVinoBackend:
    """An OpenVINO CPU model compiled for bfloat16 (fp32 on CPUs without it); one infer
    request per thread. ``weights="int8"``: the MatMul weights in int8, expanded inside the bf16
    GEMM on bf16 CPUs, multiplied in int8 with per-token activation scales on fp32 ones
    (:mod:`crossrank.runtime.openvino_int8`).
    """

    batch_size = 8
    batch_tokens = None

    def __init__(
        self,
        path: Path,
        threads: int | None = None,
        outputs: tuple[str, ...] = (OUTPUT,),
        weights: str = "float",
        extra_config: dict | None = None,
    ) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise ImportError(
                "precision 'bf16' and 'int8-ov' run on OpenVINO, which is not installed: "
                "pip install openvino (or use precision 'int8' or 'fp32')"
            ) from None
        if weights not in ("float", "int8"):
            raise ValueError(f"expected weights 'float' or 'int8', got {weights!r}")
        core = ov.Core()
        capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        hint = "bf16" if "BF16" in capabilities else "f32"
        if weights == "float" and hint == "f32":
            warnings.warn(
                "this CPU has no bfloat16 instructions (AVX512-BF16 or AMX); OpenVINO runs "
                "in fp32, slower than onnxruntime's int8",
                RuntimeWarning,
                stacklevel=3,
            )
        if weights == "int8" and "INT8" not in capabilities:
            warnings.warn(
                "this CPU has no int8 dot-product instructions (VNNI or AMX); OpenVINO "
                "decompresses the int8 weights instead of multiplying in int8",
                RuntimeWarning,
                stacklevel=3,
            )
        config: dict = {
            "INFERENCE_PRECISION_HINT": hint,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or default_threads(),
            **(extra_config or {}),  # e.g. PERF_COUNT (benchmarks/op_profile.py)
        }
        model: object = str(path)
        if weights == "int8":
            from crossrank.runtime.openvino_int8 import DYNAMIC_GROUP, compress_matmul_weights

            model = core.read_model(str(path))
            if compress_matmul_weights(model) == 0:
                raise ValueError(f"{path}: expected MatMuls with constant weights, found none")
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = DYNAMIC_GROUP
        self.compiled = core.compile_model(model, "CPU", config)
        self.precision = "int8-ov" if weights == "int8" else ("bf16" if hint == "bf16" else "fp32")
        self.outputs = tuple(outputs)
        self._outputs = [self.compiled.output(name) for name in self.outputs]
        self._local = threading.local()

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        result = request.infer(feeds)
        return np.stack([np.asarray(result[o], dtype=np.float32) for o in self._outputs])
