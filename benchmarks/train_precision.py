"""Does bf16 autocast cost training quality? The same recipe trained for the same number of
steps in bf16 autocast and in fp32, each exported to fp32 ONNX and read on the dev split.

    python benchmarks/train_precision.py --data ../shared/data/nfcorpus [--steps 600]
        [--config configs/minilm-nfcorpus.yaml] [--out checkpoints/train-precision]

Both arms start from the same seed and see the same batches; ``max_time`` is lifted so both
follow the step schedule to the same end, and each is read at its last step (not its best
validation step, which would add the noise of a 40-query selection). The dev read is the
cross-encoder alone over BM25's top 100 (``crossrank eval --precision fp32``), so ONNX
quantization plays no part. Training time is each arm's own wall time on this CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from functools import partial
from pathlib import Path

import yaml
from common import machine, machine_line, output_path, print_table, write_json

from crossrank.cli.invoke import crossrank as run_crossrank
from crossrank.runtime.hardware import cpu_info

ROOT = Path(__file__).resolve().parents[1]
crossrank = partial(run_crossrank, cwd=ROOT)
PRECISIONS = {"bf16": "bf16-mixed", "fp32": "32-true"}


def arm_config(base: dict, precision: str, steps: int, out: Path) -> dict:
    """``base`` with its precision, its step budget and every output folder set for one arm."""
    config = json.loads(json.dumps(base))  # a deep copy; the caller's dict stays as it was
    trainer = config["trainer"]
    trainer.update(
        precision=precision, max_steps=steps, max_time=None, default_root_dir=str(out),
        val_check_interval=max(1, steps // 3), enable_progress_bar=False,
    )  # fmt: skip
    trainer["logger"]["init_args"]["save_dir"] = str(out)
    callbacks = []
    for callback in trainer["callbacks"]:
        if callback["class_path"].endswith("ProgressBar"):
            continue
        if "dirpath" in callback.get("init_args", {}):
            callback["init_args"]["dirpath"] = str(out)
        callbacks.append(callback)
    trainer["callbacks"] = callbacks
    return config


def validation_curve(out: Path) -> dict[int, float]:
    """val_ndcg@10 (the recipe's dev subset) by step, from the CSV logger."""
    curve = {}
    for metrics in sorted(out.glob("logs/version_*/metrics.csv")):
        with open(metrics) as f:
            for row in csv.DictReader(f):
                if row.get("val_ndcg@10"):
                    curve[int(row["step"])] = float(row["val_ndcg@10"])
    return curve


def warm_caches(base: dict, data: str) -> None:
    """Build what the data module caches (the bi-encoder, BM25 indexes, the teacher's lists)
    before any arm is timed, so that the first arm does not pay for the second."""
    from crossrank.export.bi_encoder import ensure_bi_encoder
    from crossrank.io import cache_dir
    from crossrank.train.datamodule import TriplesDataModule

    ensure_bi_encoder(cache_dir(base["data"].get("cache_dir")))
    TriplesDataModule(**{**base["data"], "data": data}).setup("fit")


def run_arm(name: str, base: dict, args: argparse.Namespace) -> dict:
    """Train, export and read one arm; an arm already read at the same step count is reused."""
    out = args.out / name
    saved = out / "row.json"
    if saved.exists() and json.loads(saved.read_text()).get("steps") == args.steps:
        print(f"reusing {saved}", flush=True)
        return json.loads(saved.read_text())
    out.mkdir(parents=True, exist_ok=True)
    config = out / "config.yaml"
    config.write_text(yaml.safe_dump(arm_config(base, PRECISIONS[name], args.steps, out)))
    started = time.perf_counter()
    crossrank("train", "fit", "--config", str(config), "--data.data", args.data)
    train_s = time.perf_counter() - started
    artifact = out / "onnx"
    crossrank("export", "--checkpoint", str(out / "last.ckpt"), "--output", str(artifact))
    report = out / "dev-bm25-fp32.json"
    crossrank(
        "eval", "--data", args.data, "--split", "dev", "--model", str(artifact),
        "--retriever", "bm25", "--precision", "fp32", "--output", str(report),
    )  # fmt: skip
    dev = json.loads(report.read_text())
    curve = validation_curve(out)
    alone = dev.get("reranker_alone") or dev["reranked"]  # without --fusion they are one run
    row = {
        "precision": name,
        "steps": args.steps,
        "train_s": train_s,
        "steps_per_s": args.steps / train_s,
        "val_curve": curve,
        "val_last": curve[max(curve)] if curve else float("nan"),
        "dev_bm25": dev["first_stage"]["ndcg@10"],
        "dev_ce_alone": alone["ndcg@10"],
        "dev_queries": dev.get("queries"),
    }
    write_json(saved, row)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="BEIR folder with train and dev splits")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "minilm-nfcorpus.yaml")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=ROOT / "checkpoints" / "train-precision")
    parser.add_argument("--arms", default="bf16,fp32", help="comma-separated: bf16, fp32")
    parser.add_argument("--output", default=output_path("train_precision.json"))
    args = parser.parse_args()
    arms = args.arms.split(",")
    if unknown := [a for a in arms if a not in PRECISIONS]:
        parser.error(f"--arms: expected some of {sorted(PRECISIONS)}, got {unknown}")
    if "bf16" in arms and not cpu_info().native_bf16:
        parser.error(
            f"--arms bf16: expected a CPU with bf16 instructions (avx512_bf16, amx_bf16), got "
            f"{cpu_info().name} without them, where crossrank train runs bf16 requests in fp32"
        )
    base = yaml.safe_load(args.config.read_text())
    info = machine()
    warm_caches(base, args.data)
    rows = [run_arm(name, base, args) for name in arms]
    reference = next((r for r in rows if r["precision"] == "fp32"), None)
    for row in rows:
        if reference is not None:
            row["vs_fp32"] = row["dev_ce_alone"] - reference["dev_ce_alone"]
    print_table(
        f"training precision, {args.steps} steps of {args.config.name} ({machine_line(info)})",
        [
            ("precision", "precision", "<10"),
            ("train s", "train_s", ">9.0f"),
            ("steps/s", "steps_per_s", ">9.2f"),
            ("val@10 (subset)", "val_last", ">17.4f"),
            ("dev BM25", "dev_bm25", ">10.4f"),
            ("dev CE alone", "dev_ce_alone", ">14.4f"),
            ("vs fp32", "vs_fp32", ">+9.4f"),
        ],
        rows,
    )
    command = " ".join(["python", "benchmarks/train_precision.py", *sys.argv[1:]])
    write_json(args.output, {"command": command, "machine": info, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
