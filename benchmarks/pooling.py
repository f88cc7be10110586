"""CLS vs mean pooling of the tiny cross-encoder on the packaged fixture: the positive-minus-
negative margin per epoch (MarginTracker) and the validation nDCG@10 per epoch, side by side.

    python benchmarks/pooling.py [--configs configs/tiny.yaml configs/tiny-cls.yaml]

Each config is trained from scratch into a temporary folder with its own seed and schedule.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import warnings
from pathlib import Path

import common

ROOT = Path(__file__).resolve().parents[1]


def train(config: Path, workdir: Path) -> dict[int, dict[str, float]]:
    """Per epoch: the margin mean and p50 on the eval pairs, and val nDCG@10."""
    from crossrank.cli.train import main

    text = config.read_text().replace("checkpoints/tiny-cls", str(workdir))
    text = text.replace("checkpoints/tiny", str(workdir))
    moved = workdir / config.name
    moved.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["fit", "--config", str(moved), "--trainer.enable_progress_bar", "false"])
    epochs: dict[int, dict[str, float]] = {}
    with open(workdir / "margins.csv") as f:
        for row in csv.DictReader(f):
            epochs[int(row["epoch"])] = {"margin": float(row["mean"])}
    (metrics,) = workdir.glob("logs/version_*/metrics.csv")
    with open(metrics) as f:
        for row in csv.DictReader(f):
            if row.get("val_ndcg@10"):
                epochs.setdefault(int(row["epoch"]), {})["val_ndcg@10"] = float(row["val_ndcg@10"])
    return epochs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--configs",
        nargs="+",
        type=Path,
        default=[ROOT / "configs" / "tiny.yaml", ROOT / "configs" / "tiny-cls.yaml"],
    )
    parser.add_argument("--output", default=str(common.output_path("pooling.json")))
    args = parser.parse_args()
    runs = {}
    for config in args.configs:
        with tempfile.TemporaryDirectory(prefix="crossrank-pooling-") as tmp:
            runs[config.stem] = train(config, Path(tmp))
    names = list(runs)
    rows = [
        {"epoch": e, **{f"{n}/{m}": runs[n][e][m] for n in names for m in runs[n].get(e, {})}}
        for e in sorted({e for r in runs.values() for e in r})
    ]
    columns: list[common.Column] = [("epoch", "epoch", "<7d")]
    for n in names:
        columns += [(f"{n} margin", f"{n}/margin", ">20.3f")]
        columns += [(f"{n} val nDCG@10", f"{n}/val_ndcg@10", ">24.3f")]
    common.print_table(f"CLS vs mean pooling ({common.machine_line()})", columns, rows)
    best = {n: max(v.get("val_ndcg@10", 0.0) for v in r.values()) for n, r in runs.items()}
    print("best val nDCG@10: " + ", ".join(f"{n} {b:.3f}" for n, b in best.items()))
    common.write_json(args.output, {"machine": common.machine(), "runs": runs, "best": best})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
