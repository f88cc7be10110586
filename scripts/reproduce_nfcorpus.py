"""Reproduce the NFCorpus reranker: train, export fp32 + int8, fit the BM25 fusion weight on dev,
evaluate on test, write ``results.json`` and a row of RESULTS.md.

    python scripts/reproduce_nfcorpus.py [--data ../shared/data/nfcorpus] [--skip-train]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from crossrank.artifact import read_manifest, write_manifest  # noqa: E402
from crossrank.atomic import write_text_atomic  # noqa: E402
from crossrank.data.beir import load_beir  # noqa: E402
from crossrank.evaluation import make_report, run_queries, select_queries  # noqa: E402
from crossrank.fusion import fit_weight, interpolate  # noqa: E402
from crossrank.metrics import ndcg_at_k  # noqa: E402
from crossrank.retrieval.bm25 import cached_bm25  # noqa: E402
from crossrank.runtime import OnnxReranker  # noqa: E402

OUT = ROOT / "checkpoints" / "minilm-nfcorpus"
CONFIG = ROOT / "configs" / "minilm-nfcorpus.yaml"


def machine() -> str:
    """CPU model and core count, as this run saw them."""
    import os

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, no GPU"


def sh(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def train(data: str, config: Path, out: Path) -> dict:
    started = time.time()
    sh([sys.executable, "scripts/train.py", "fit", "--config", str(config), "--data.data", data])
    wall = time.time() - started
    import torch

    ckpt = torch.load(out / "last.ckpt", map_location="cpu", weights_only=False)
    hp = ckpt["datamodule_hyper_parameters"]
    # last.ckpt is written at validations; the last margins.csv row is the final step.
    with open(out / "margins.csv") as f:
        steps = max(int(row["step"]) for row in __import__("csv").DictReader(f))
    return {
        "wall_s": wall,
        "steps": steps,
        "pairs_seen": steps * hp["batch_size"] * (hp["n_negatives"] + 1),
        "epochs_completed": ckpt["epoch"],
    }


def fit_fusion(artifact: Path, data: str, split: str = "dev") -> dict:
    """Fit the weight of z(BM25) added to z(cross-encoder) on every dev query's top 100."""
    dataset = load_beir(data, split)
    doc_ids = list(dataset.corpus)
    bm25 = cached_bm25(
        doc_ids, [dataset.doc_text(d) for d in doc_ids], ROOT / ".cache" / "crossrank"
    )
    reranker = OnnxReranker(artifact, precision="int8")
    qids, _ = select_queries(dataset, None)
    results = run_queries(dataset, qids, bm25, 100, reranker, description="dev (fusion fit)")

    def metric(hits, judged):
        return lambda s: ndcg_at_k([hits[i].doc_id for i in np.argsort(-s, kind="stable")], judged)

    lists = [
        (r.scores, np.array([h.score for h in r.hits]), metric(r.hits, dataset.qrels[r.qid]))
        for r in results
    ]
    weight, value = fit_weight(lists)
    pure = float(np.mean([m(ce) for ce, _, m in lists]))
    return {
        "first_stage": "bm25",
        "weight": weight,
        "normalization": "zscore",
        "fitted_on": f"{Path(data).name}:{split}",
        "dev_ndcg@10_fused": value,
        "dev_ndcg@10_cross_encoder": pure,
        "precision": "int8",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "nfcorpus"))
    parser.add_argument("--skip-train", action="store_true", help="reuse OUT/best.ckpt")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--out", type=Path, default=OUT, help="the config's checkpoint directory")
    args = parser.parse_args()
    out = args.out
    started = time.time()
    training = (
        json.loads((out / "training.json").read_text())
        if args.skip_train
        else train(args.data, args.config, out)
    )
    write_text_atomic(out / "training.json", json.dumps(training, indent=2))
    artifact = out / "onnx"
    sh(
        [
            sys.executable,
            "scripts/export.py",
            "--checkpoint",
            str(out / "best.ckpt"),
            "--output",
            str(artifact),
            "--int8",
        ]
    )
    fusion = fit_fusion(artifact, args.data)
    manifest = read_manifest(artifact)
    manifest["fusion"] = fusion
    write_manifest(artifact, manifest)
    print("fusion:", json.dumps(fusion))

    dataset = load_beir(args.data, "test")
    doc_ids = list(dataset.corpus)
    bm25 = cached_bm25(
        doc_ids, [dataset.doc_text(d) for d in doc_ids], ROOT / ".cache" / "crossrank"
    )
    qids, skipped = select_queries(dataset, None)
    common = {"skipped": skipped, "retriever_name": "bm25", "top_n": 100}
    t0 = time.perf_counter()
    reports = {
        "bm25": make_report(
            dataset,
            run_queries(dataset, qids, bm25, 100),
            model=None,
            precision="fp32",
            started=t0,
            **common,
        )
    }
    for precision in ("fp32", "int8"):
        t0 = time.perf_counter()
        reranker = OnnxReranker(artifact, precision=precision)
        results = run_queries(dataset, qids, bm25, 100, reranker, description=f"test ({precision})")
        reports[f"cross_encoder_{precision}"] = make_report(
            dataset, results, model=str(artifact), precision=precision, started=t0, **common
        )
        # The same cross-encoder scores, fused with BM25's (no second forward pass).
        fused = [
            replace(
                r,
                scores=interpolate(r.scores, np.array([h.score for h in r.hits]), fusion["weight"]),
            )
            for r in results
        ]
        reports[f"fused_{precision}"] = make_report(
            dataset,
            fused,
            model=f"{artifact} (fused with bm25, weight {fusion['weight']})",
            precision=precision,
            started=t0,
            **common,
        )
    results = {
        "command": "make reproduce-nfcorpus",
        "machine": machine(),
        "training": training,
        "fusion": fusion,
        "test_ndcg@10": {
            name: (r["reranked"] or r["first_stage"])["ndcg@10"] for name, r in reports.items()
        },
        "reports": reports,
        "wall_s_total": time.time() - started,
    }
    write_text_atomic(out / "results.json", json.dumps(results, indent=2))
    print(json.dumps(results["test_ndcg@10"], indent=2))
    nd = results["test_ndcg@10"]
    row = (
        f"| {time.strftime('%Y-%m-%d')} | `make reproduce-nfcorpus` | {results['machine']} | "
        f"{training['wall_s'] / 60:.1f} min, {training['steps']} steps, {training['pairs_seen']} pairs | "
        f"{nd['bm25']:.4f} | {nd['cross_encoder_fp32']:.4f} | {nd['fused_fp32']:.4f} | "
        f"{nd['cross_encoder_int8']:.4f} | {nd['fused_int8']:.4f} | w={fusion['weight']} |\n"
    )
    with open(ROOT / "RESULTS.md", "a") as f:
        f.write(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
