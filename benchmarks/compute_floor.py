"""The compute floor of a MiniLM-shaped cross-encoder on this CPU.

Counts the FLOPs the model needs for a set of padded batches and measures what the backends'
matrix-multiply kernels reach here on a one-node graph of the model's own shape (fp32 and
dynamic int8 in onnxruntime, bf16 in OpenVINO). FLOPs divided by that throughput is the
time no runtime on these kernels can beat: the GEMMs alone, everything else free.

    python benchmarks/compute_floor.py [--threads N] [--output benchmarks/results/compute_floor.json]

rerank_speed.py imports this module (same folder) for the floor of its own pairs.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, machine_line, output_path, write_json

HIDDEN, FFN, LAYERS = 384, 1536, 6  # all-MiniLM-L6-v2


def model_gflop(widths: list[tuple[int, int]]) -> dict[str, float]:
    """GFLOP for batches of (pairs, padded width): dense layers and attention separately."""
    dense = attention = 0.0
    for n, width in widths:
        tokens = n * width
        dense += LAYERS * 2 * tokens * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)
        attention += LAYERS * 2 * 2 * n * width * width * HIDDEN
    return {"dense": dense / 1e9, "attention": attention / 1e9}


def _matmul_graph(path: Path, rows: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((HIDDEN, FFN)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, HIDDEN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, FFN])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def _time(fn, repeats: int = 15) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gemm_throughput(threads: int, rows: int = 8192) -> dict[str, float]:
    """GFLOP/s of a [rows, 384] x [384, 1536] MatMul per backend and precision."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from crossrank.runtime.backends import ort_session

    flop = 2 * rows * HIDDEN * FFN
    x = np.random.default_rng(1).standard_normal((rows, HIDDEN)).astype(np.float32)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "gemm.onnx", Path(tmp) / "gemm.int8.onnx"
        _matmul_graph(fp32, rows)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        for name, path in (("onnxruntime_fp32", fp32), ("onnxruntime_int8", int8)):
            sess = ort_session(path, threads)
            out[name] = flop / _time(lambda s=sess: s.run(None, {"x": x})) / 1e9
        try:
            import openvino as ov
        except ImportError:
            return out
        core = ov.Core()
        if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            config = {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": threads}
            request = core.compile_model(str(fp32), "CPU", config).create_infer_request()
            out["openvino_bf16"] = flop / _time(lambda: request.infer({"x": x})) / 1e9
    return out


def floor_ms(gflop: dict[str, float], throughput: dict[str, float]) -> dict[str, float]:
    """Milliseconds for the dense layers at each kernel's measured throughput."""
    return {k: gflop["dense"] / v * 1e3 for k, v in throughput.items()}


def main() -> int:
    from crossrank.runtime.backends import default_threads

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, help="default: the cores this process may use")
    parser.add_argument(
        "--output", default=output_path("compute_floor.json"), help="default: %(default)s"
    )
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's quantizer chatter
    info = machine()
    print(machine_line(info))
    peak = gemm_throughput(args.threads or default_threads())
    flops = model_gflop([(100, 256)])
    floor = floor_ms(flops, peak)
    print(
        f"100 pairs x 256 tokens: {flops['dense']:.0f} GFLOP dense + {flops['attention']:.0f} attention"
    )
    for k, v in peak.items():
        print(f"{k:<18}{v:>8.0f} GFLOP/s  floor {floor[k]:>6.0f} ms")
    result = {"machine": info, "pairs": 100, "max_length": 256, "gflop": flops}
    write_json(args.output, {**result, "gemm_gflop_per_s": peak, "floor_ms": floor})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
