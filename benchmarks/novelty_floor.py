"""The novelty guard's floor: nDCG@10 of an artifact's fitted fusion with the guard's trust
floored at each of several values, on the same scores (the artifact's fitted weight; only the
floor changes). Read it on sets the model was not trained on to choose the floor, and on its
own dev split to see that the choice costs nothing in domain.

    python benchmarks/novelty_floor.py --model checkpoints/minilm-nfcorpus/onnx \\
        --set ../shared/data/wikiqa:dev:bm25 --set ../shared/data/scifact:train:hybrid:300

A set is ``DATA:SPLIT:FIRST_STAGE[:MAX_QUERIES]`` (first stage ``bm25`` or ``hybrid``, the fusion
fitted for it by ``crossrank fuse``). Scores are read from, and kept in, the project's score
cache. A floor applies to the guard's share as ``crossrank fuse --novelty-floor`` would; the
floor the artifact was fitted with is replaced, not stacked.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import common
import numpy as np


def parse_set(entry: str) -> tuple[str, str, str, int | None]:
    parts = entry.split(":")
    if len(parts) not in (3, 4) or parts[2] not in ("bm25", "hybrid"):
        raise SystemExit(f"expected DATA:SPLIT:bm25|hybrid[:MAX_QUERIES], got {entry!r}")
    return parts[0], parts[1], parts[2], int(parts[3]) if len(parts) == 4 else None


def read_set(model: str, entry: str, floors: list[float], precision: str) -> dict:
    from crossrank.data.beir import load_beir
    from crossrank.data.metrics import ndcg_at_k
    from crossrank.eval.evaluate import run_queries, select_queries
    from crossrank.io import cache_dir
    from crossrank.pipeline.stages import artifact_fusion, build_reranker, build_retriever

    data, split, kind, max_queries = parse_set(entry)
    dataset = load_beir(data, split)
    qids, _ = select_queries(dataset, max_queries)
    reranker = build_reranker(model, precision, score_store=cache_dir() / "scores")
    fusion = artifact_fusion(reranker, kind)
    if fusion is None or fusion.novelty is None:
        raise SystemExit(f"{model}: expected a fitted {kind} fusion with a novelty guard, got none")
    results = run_queries(
        dataset, qids, build_retriever(kind, data), 100, reranker, progress=False, fusion=fusion
    )

    def ndcg(r, scores) -> float:  # a query without candidates counts 0, as in crossrank eval
        order = np.argsort(-scores, kind="stable")
        return ndcg_at_k([r.hits[i].doc_id for i in order], dataset.qrels[r.qid], 10)

    # Each query embedded once: its novelties do not depend on the floor.
    novelties = {dataset.queries[r.qid]: fusion.query_trust.novelties(dataset.queries[r.qid])
                 for r in results if r.hits}  # fmt: skip

    def trust_at(floor: float):
        guard = replace(fusion.novelty, floor=floor)
        return lambda query: guard.trust(novelties[query])

    row = {
        "set": f"{Path(data).name}:{split}" + (f" (first {max_queries})" if max_queries else ""),
        "first_stage": kind,
        "queries": len(results),
        "weight": fusion.weight,
        "bm25_or_hybrid": float(np.mean([ndcg(r, -np.arange(len(r.hits))) for r in results])),
        "cross_encoder": float(
            np.mean([ndcg(r, r.reranker_scores) if r.hits else 0.0 for r in results])
        ),
    }
    for floor in floors:
        floored = (  # a floor of 1: the guard off
            replace(fusion, novelty=None, query_trust=None)
            if floor == 1.0
            else replace(fusion, query_trust=trust_at(floor))
        )
        values = [
            ndcg(r, floored.fuse(r.reranker_scores, r.hits, dataset.queries[r.qid]))
            if r.hits
            else 0.0
            for r in results
        ]
        row[f"floor {floor:g}"] = float(np.mean(values))
    row["mean_trust_floor_0"] = float(
        np.mean([trust_at(0.0)(dataset.queries[r.qid]) for r in results if r.hits])
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="crossrank artifact with fitted fusions")
    parser.add_argument("--set", action="append", required=True, help="repeatable, see above")
    parser.add_argument("--floors", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--output", default=common.output_path("novelty_floor.json"))
    args = parser.parse_args()
    floors = [float(f) for f in args.floors.split(",")]
    if any(not 0.0 <= f <= 1.0 for f in floors):
        raise SystemExit(f"expected floors in [0, 1], got {args.floors!r}")
    info = common.machine()
    rows = [read_set(args.model, entry, floors, args.precision) for entry in args.set]
    common.print_table(
        f"nDCG@10 by novelty guard floor ({args.model}, {args.precision}; floor 1 = no guard), "
        f"{common.machine_line(info)}",
        [
            ("set", "set", "<28"),
            ("stage", "first_stage", "<7"),
            ("queries", "queries", ">8d"),
            ("first st.", "bm25_or_hybrid", ">10.4f"),
            ("CE alone", "cross_encoder", ">9.4f"),
            *[(f"f={f:g}", f"floor {f:g}", ">8.4f") for f in floors],
            ("trust", "mean_trust_floor_0", ">7.3f"),
        ],
        rows,
    )
    common.write_json(
        args.output,
        {"machine": info, "model": args.model, "precision": args.precision, "rows": rows},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
