"""Reproduce the NFCorpus reranker with ``crossrank`` commands: train, export fp32 + int8, fit the
BM25 fusion weight on dev, evaluate on test; write ``results.json`` and print a RESULTS.md row.

    python scripts/reproduce_nfcorpus.py [--data ../shared/data/nfcorpus] [--skip-train]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from crossrank.io import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """CPU model and core count, as this run saw them."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, no GPU"


def crossrank(*args: str) -> None:
    cmd = [sys.executable, "-m", "crossrank.cli.main", *args]
    print("$ crossrank", " ".join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def train(data: str, config: Path, out: Path) -> dict:
    started = time.time()
    crossrank("train", "fit", "--config", str(config), "--data.data", data)
    with open(out / "margins.csv") as f:
        steps = max(int(row["step"]) for row in csv.DictReader(f))
    return {"wall_s": time.time() - started, "steps": steps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "nfcorpus"))
    parser.add_argument("--skip-train", action="store_true", help="reuse OUT/best.ckpt")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "minilm-nfcorpus.yaml")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "checkpoints" / "minilm-nfcorpus", help="checkpoints"
    )
    args = parser.parse_args()
    out, started = args.out, time.time()
    training = (
        json.loads((out / "training.json").read_text())
        if args.skip_train
        else train(args.data, args.config, out)
    )
    write_text_atomic(out / "training.json", json.dumps(training, indent=2))
    artifact = out / "onnx"
    crossrank("export", "--checkpoint", str(out / "best.ckpt"), "--output", str(artifact), "--int8")
    crossrank("fuse", "--model", str(artifact), "--data", args.data, "--precision", "int8")
    reports = {}
    for precision in ("fp32", "int8"):
        path = out / f"test-{precision}.json"
        crossrank(
            "eval", "--data", args.data, "--split", "test", "--model", str(artifact),
            "--precision", precision, "--fusion", "auto", "--output", str(path),
        )  # fmt: skip
        reports[precision] = json.loads(path.read_text())
    nd = {
        "bm25": reports["fp32"]["first_stage"]["ndcg@10"],
        **{f"cross_encoder_{p}": r["reranker_alone"]["ndcg@10"] for p, r in reports.items()},
        **{f"fused_{p}": r["reranked"]["ndcg@10"] for p, r in reports.items()},
    }
    fusion = json.loads((artifact / "crossrank.json").read_text())["fusion"]
    results = {
        "command": "make reproduce-nfcorpus",
        "machine": machine(),
        "training": training,
        "fusion": fusion,
        "test_ndcg@10": nd,
        "reports": reports,
        "wall_s_total": time.time() - started,
    }
    write_text_atomic(out / "results.json", json.dumps(results, indent=2))
    print(json.dumps(nd, indent=2))
    print(
        "RESULTS.md row:\n"
        f"| {time.strftime('%Y-%m-%d')} | `make reproduce-nfcorpus` | {results['machine']} | "
        f"{training['wall_s'] / 60:.1f} min, {training['steps']} steps | {nd['bm25']:.4f} | "
        f"{nd['cross_encoder_fp32']:.4f} | {nd['fused_fp32']:.4f} | {nd['cross_encoder_int8']:.4f} "
        f"| {nd['fused_int8']:.4f} | w={fusion['weight']} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
