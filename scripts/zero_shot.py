"""Zero-shot table: a reranker artifact on BEIR sets it was not trained on.

For each set: BM25, the hybrid first stage, the cross-encoder alone over BM25's top 100, the
cross-encoder fused with BM25, and the pipeline (hybrid top 100 → cross-encoder, fused with the
hybrid's score). Fusion weights are the artifact's own, fitted on its training collection's dev
split (``crossrank fuse --retriever bm25`` and ``--retriever hybrid``); nothing is fitted on the
sets evaluated here.

    python scripts/zero_shot.py --model checkpoints/minilm-nfcorpus/onnx \\
        --set ../shared/data/scifact:train --set ../shared/data/wikiqa:test --out DIR
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

from crossrank.cli.invoke import crossrank as run_crossrank
from crossrank.io import write_text_atomic
from crossrank.runtime.hardware import cpu_info

ROOT = Path(__file__).resolve().parents[1]
crossrank = partial(run_crossrank, cwd=ROOT)


def evaluate(
    model: Path, data: str, split: str, retriever: str, args: argparse.Namespace, out: Path
) -> dict:
    limit = ["--max-queries", str(args.max_queries)] if args.max_queries else []
    crossrank(
        "eval", "--data", data, "--split", split, "--model", str(model), "--retriever", retriever,
        "--precision", args.precision, "--fusion", "auto", "--output", str(out), *limit,
        "--score-cache",  # the hybrid read reuses the pairs the BM25 read scored
    )  # fmt: skip
    return json.loads(out.read_text())


def unguarded(report: dict) -> float | None:
    """nDCG@10 of the fusion with the novelty guard off (None when the fusion has none)."""
    values = report.get("reranked_without_novelty_guard")
    return values["ndcg@10"] if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="reranker artifact directory")
    parser.add_argument("--set", action="append", required=True, help="DATA:SPLIT, repeatable")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-queries", type=int, help="the first N judged queries of each set")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fusion = json.loads((args.model / "crossrank.json").read_text()).get("fusion")
    rows = []
    for entry in args.set:
        data, _, split = entry.rpartition(":")
        name = f"{Path(data).name}-{split}"
        bm25, hybrid = (
            evaluate(args.model, data, split, r, args, args.out / f"{name}-{r}.json")
            for r in ("bm25", "hybrid")
        )
        rows.append(
            {
                "set": name,
                "queries": bm25["queries"],
                "bm25": bm25["first_stage"]["ndcg@10"],
                "hybrid": hybrid["first_stage"]["ndcg@10"],
                "cross_encoder": (bm25.get("reranker_alone") or bm25["reranked"])["ndcg@10"],
                "cross_encoder_bm25_fused": bm25["reranked"]["ndcg@10"]
                if "reranker_alone" in bm25
                else None,
                "pipeline": hybrid["reranked"]["ndcg@10"],
                "cross_encoder_bm25_fused_without_novelty_guard": unguarded(bm25),
                "pipeline_without_novelty_guard": unguarded(hybrid),
                "share_of_queries_novelty_guarded": (hybrid.get("novelty_guard") or {}).get(
                    "share_of_queries_guarded"
                ),
            }
        )
    result = {
        "model": str(args.model),
        "precision": args.precision,
        "fusion": fusion,
        "cpu": cpu_info().name,
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    write_text_atomic(args.out / "zero_shot.json", json.dumps(result, indent=2))
    print(
        "| set | queries | BM25 | hybrid | CE alone | CE + BM25 | pipeline | "
        "CE + BM25, novelty guard off | pipeline, novelty guard off | queries guarded |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")

    def cell(value: float | None) -> str:
        return "–" if value is None else f"{value:.4f}"

    for r in rows:
        print(
            f"| {r['set']} | {r['queries']} | {r['bm25']:.4f} | {r['hybrid']:.4f} | "
            f"{r['cross_encoder']:.4f} | {cell(r['cross_encoder_bm25_fused'])} | "
            f"{r['pipeline']:.4f} | {cell(r['cross_encoder_bm25_fused_without_novelty_guard'])} | "
            f"{cell(r['pipeline_without_novelty_guard'])} | "
            f"{cell(r['share_of_queries_novelty_guarded'])} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
