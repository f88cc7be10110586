"""BM25's score of each candidate a hybrid first stage keeps (what its signals fusion reads):
scoring the whole corpus and picking the candidates (the reference, what ``document_scores``
did before) against a binary search in each query term's postings (what it does now).

The corpus is a BEIR collection's, then the same documents repeated ``--scale`` times under
new ids (the same term statistics, a larger index). Candidates: each query's BM25 top
``--candidates`` ids. Every row checks the two give the same float32 scores, bit for bit.

    python benchmarks/bm25_signals.py --data ../shared/data/nfcorpus [--scale 1 10 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import common
import numpy as np


def per_query_ms(fn, queries: list[str], rounds: int) -> float:
    """Median over ``rounds`` of the mean ms per query of ``fn(query)``."""
    for q in queries[:5]:
        fn(q)  # warm
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for q in queries:
            fn(q)
        times.append((time.perf_counter() - t0) / len(queries))
    return statistics.median(times) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="a BEIR folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", default=common.output_path("bm25_signals.json"))
    args = parser.parse_args()
    from crossrank.data.beir import load_beir
    from crossrank.retrieval.bm25 import BM25Retriever

    ds = load_beir(args.data, args.split)
    ids, texts = ds.corpus_texts()
    queries = [ds.queries[q] for q in ds.judged_queries()[: args.queries]]
    results = []
    for scale in args.scale:
        t0 = time.perf_counter()
        bm25 = BM25Retriever.build(
            [f"{d}#{i}" if i else d for i in range(scale) for d in ids], texts * scale
        )
        build_s = time.perf_counter() - t0
        wanted = {q: [h.doc_id for h in bm25.retrieve(q, args.candidates)] for q in queries}

        def whole_corpus(q: str, bm25=bm25, wanted=wanted) -> np.ndarray:
            return bm25.corpus_scores(q)[bm25._position(wanted[q])]

        def postings(q: str, bm25=bm25, wanted=wanted) -> np.ndarray:
            return bm25.document_scores(q, wanted[q])

        same = all(np.array_equal(whole_corpus(q), postings(q)) for q in queries)
        before = per_query_ms(whole_corpus, queries, args.rounds)
        now = per_query_ms(postings, queries, args.rounds)
        results.append(
            {
                "documents": len(bm25.doc_ids),
                "index_build_s": build_s,
                "whole_corpus_ms": before,
                "postings_ms": now,
                "speed_up": before / now,
                "same_scores": same,
            }
        )
    info = common.machine()
    common.print_table(
        f"BM25 scores of {args.candidates} candidates per query, {len(queries)} {Path(args.data).name} "
        f"{args.split} queries, median of {args.rounds} ({common.machine_line(info)})",
        [
            ("documents", "documents", ">10d"),
            ("  whole corpus ms", "whole_corpus_ms", ">18.3f"),
            ("  postings ms", "postings_ms", ">14.3f"),
            ("  speed-up", "speed_up", ">10.1f"),
            ("  same scores", lambda r: f"  {r['same_scores']}", "<14"),
        ],
        results,
    )
    common.write_json(args.output, {"machine": info, "args": vars(args), "results": results})
    return 0 if all(r["same_scores"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
