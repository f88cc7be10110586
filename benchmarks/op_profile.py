"""Where a reranking call spends its time, per operator type, for every runtime path.

onnxruntime (fp32, int8) reports kernel time per node; OpenVINO (bf16, int8-ov) reports per
node its type, the kernel it chose (``exec_type``, e.g. ``brgemm_avx512_bf16``) and its time. The
kernel names answer what the share alone cannot: whether int8 weights are multiplied in int8
or decompressed to bf16 first. Used by rerank_speed.py; alone:

    python benchmarks/op_profile.py --data BEIR_DIR --model ARTIFACT_DIR
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

ONNXRUNTIME = ("fp32", "int8")
OPENVINO = ("bf16", "int8-ov")


def shares(times: Counter) -> dict[str, float]:
    """Each key's share of the total, largest first."""
    total = sum(times.values()) or 1.0
    return {k: v / total for k, v in times.most_common()}


def onnxruntime_profile(model_dir: Path, precision: str, query: str, docs: list[str], window: int):
    """Share of onnxruntime kernel time per operator type, scoring the pairs once."""
    from crossrank.runtime import OnnxReranker
    from crossrank.runtime.backends import ort_session
    from crossrank.runtime.precision import MODEL_FILES

    r = OnnxReranker(model_dir, precision=precision, max_length=window)
    prefix = str(Path(tempfile.mkdtemp()) / f"profile-{precision}")
    session = ort_session(model_dir / MODEL_FILES[precision], profile_prefix=prefix)
    r.backend.session = session
    r.score(query, docs)
    by_op: Counter = Counter()
    for e in json.loads(Path(session.end_profiling()).read_text()):
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e.get("args", {}).get("op_name", "?")] += e["dur"]
    return {"by_operator": shares(by_op), "kernels": {}}


def openvino_profile(model_dir: Path, precision: str, query: str, docs: list[str], window: int):
    """Share of OpenVINO time per node type and per (node type, kernel), over every call that
    scoring the pairs once makes, with the backend compiled with performance counters on."""
    from crossrank.runtime import OnnxReranker
    from crossrank.runtime.backends import OpenVinoBackend

    r = OnnxReranker(model_dir, precision=precision, max_length=window)
    backend = OpenVinoBackend(
        model_dir / "model.onnx",
        outputs=r.backend.outputs,
        weights="int8" if precision == "int8-ov" else "float",
        extra_config={"PERF_COUNT": True},
    )
    r.backend = backend
    by_op: Counter = Counter()
    by_kernel: Counter = Counter()
    run = backend.run

    def counted(feeds):
        out = run(feeds)
        for p in backend._local.request.get_profiling_info():
            seconds = p.real_time.total_seconds()
            by_op[p.node_type] += seconds
            by_kernel[f"{p.node_type} [{p.exec_type}]"] += seconds
        return out

    backend.run = counted
    r.score(query, docs)
    return {"by_operator": shares(by_op), "kernels": shares(by_kernel)}


def profile(model_dir: Path, precision: str, query: str, docs: list[str], window: int) -> dict:
    """The profile of ``precision`` on its runtime (see the two functions above)."""
    fn = openvino_profile if precision in OPENVINO else onnxruntime_profile
    return fn(model_dir, precision, query, docs, window)


def summary(precision: str, result: dict, top: int = 6) -> str:
    ops = ", ".join(f"{k} {v:.0%}" for k, v in list(result["by_operator"].items())[:top])
    line = f"{precision} time by operator type: {ops}"
    if result["kernels"]:
        kernels = ", ".join(f"{k} {v:.0%}" for k, v in list(result["kernels"].items())[:3])
        line += f"\n    kernels: {kernels}"
    return line


def main() -> int:
    import common

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="BEIR folder (its test split)")
    parser.add_argument("--model", type=Path, required=True, help="a crossrank artifact")
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--output", default=common.output_path("op_profile.json"))
    args = parser.parse_args()
    query, docs = common.real_pairs(args.data, 100)
    available = list(ONNXRUNTIME)
    try:
        import openvino  # noqa: F401

        available += OPENVINO
    except ImportError:
        pass
    results = {p: profile(args.model, p, query, docs, args.window) for p in available}
    info = common.machine()
    print(common.machine_line(info))
    for p, res in results.items():
        print(summary(p, res))
    common.write_json(args.output, {"machine": info, "window": args.window, "profile": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
