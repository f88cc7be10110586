"""Pairs the cross-encoder runs in the evaluation half of ``make reproduce-nfcorpus``, before and
with the shared score cache, counted on the real first-stage lists (no model needed).

    python benchmarks/score_cache.py [--data ../shared/data/nfcorpus] [--knee 50]
        [--model ARTIFACT]  # also time int8 and fp32 pairs/s on this CPU, to turn pairs into time

The plan is ``scripts/reproduce_nfcorpus.py``'s ``evaluate``: two dev fusion fits (BM25 and
hybrid top 100), two dev sweeps (BM25 N = 20..200; hybrid, fused, N = 20..100), test BM25 top
100 in fp32 and int8, and the pinned pipeline (hybrid top ``--knee``) on test in int8 and fp32.
Before: every command scores its own lists and a sweep scores every N anew. With the cache:
a pair already scored at that precision by any earlier command is read; a sweep scores each
query once at the largest N; each command times its first ``LATENCY_QUERIES`` queries by
scoring them anew (a sweep at every N), never from the cache; ``fuse`` times nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import Column, machine, machine_line, output_path, print_table, write_json

from crossrank.data.beir import load_beir
from crossrank.eval.evaluate import LATENCY_QUERIES
from crossrank.io import cache_dir
from crossrank.pipeline.stages import build_retriever


def plan(knee: int) -> list[dict]:
    """The commands of the evaluation, in order: split, first stage, precision, budgets."""
    return [
        {"command": "fuse", "step": "fuse bm25", "split": "dev", "retriever": "bm25", "precision": "int8", "ns": [100]},
        {"command": "fuse", "step": "fuse hybrid", "split": "dev", "retriever": "hybrid", "precision": "int8", "ns": [100]},
        {"command": "sweep", "step": "sweep bm25", "split": "dev", "retriever": "bm25", "precision": "int8", "ns": [20, 50, 100, 200]},
        {"command": "sweep", "step": "sweep hybrid", "split": "dev", "retriever": "hybrid", "precision": "int8", "ns": [20, 50, 100]},
        {"command": "eval", "step": "eval bm25 fp32", "split": "test", "retriever": "bm25", "precision": "fp32", "ns": [100]},
        {"command": "eval", "step": "eval bm25 int8", "split": "test", "retriever": "bm25", "precision": "int8", "ns": [100]},
        {"command": "eval", "step": "pipeline int8", "split": "test", "retriever": "hybrid", "precision": "int8", "ns": [knee]},
        {"command": "eval", "step": "pipeline fp32", "split": "test", "retriever": "hybrid", "precision": "fp32", "ns": [knee]},
    ]  # fmt: skip


def count(data: str, steps: list[dict]) -> list[dict]:
    retrievers = {k: build_retriever(k, data, cache_dir()) for k in ("bm25", "hybrid")}
    datasets = {split: load_beir(data, split) for split in ("dev", "test")}
    lists: dict[tuple[str, str, int], list[tuple[str, list[str]]]] = {}
    for step in steps:  # each command retrieves at its own depth, as the commands do
        key = (step["split"], step["retriever"], max(step["ns"]))
        if key not in lists:
            ds, retriever = datasets[step["split"]], retrievers[step["retriever"]]
            lists[key] = [
                (ds.queries[q], [h.doc_id for h in retriever.retrieve(ds.queries[q], key[2])])
                for q in ds.judged_queries()
            ]
    seen: set[tuple[str, str, str]] = set()
    rows = []
    for step in steps:
        queries = lists[step["split"], step["retriever"], max(step["ns"])]
        before = sum(len(docs[:n]) for _, docs in queries for n in step["ns"])
        new = 0
        sweep = len(step["ns"]) > 1
        for i, (query, docs) in enumerate(queries):
            if step["command"] != "fuse" and i < LATENCY_QUERIES:  # timed: scored anew
                new += sum(len(docs[:n]) for n in step["ns"])  # a sweep: at every N
                if not sweep:  # eval's timed queries are not read from or kept in the cache
                    continue
            for doc in docs[: max(step["ns"])]:
                key = (step["precision"], query, doc)
                if key not in seen:
                    seen.add(key)
                    new += 1
        rows.append({**step, "queries": len(queries), "pairs_before": before, "pairs_now": new})
    return rows


def pairs_per_second(model: str, data: str) -> dict[str, float]:
    """int8 and fp32 pairs/s of ``model`` over real dev lists (BM25 top 100 of 3 queries)."""
    from crossrank.runtime import OnnxReranker

    ds = load_beir(data, "dev")
    bm25 = build_retriever("bm25", data, cache_dir())
    lists = [
        (ds.queries[q], [h.text for h in bm25.retrieve(ds.queries[q], 100)])
        for q in ds.judged_queries()[:3]
    ]
    rates = {}
    for precision in ("int8", "fp32"):
        reranker = OnnxReranker(model, precision=precision)
        reranker.score(*lists[0])  # warm-up
        t0, pairs = time.perf_counter(), 0
        for query, texts in lists:
            reranker.score(query, texts)
            pairs += len(texts)
        rates[precision] = pairs / (time.perf_counter() - t0)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(Path("..") / "shared" / "data" / "nfcorpus"))
    parser.add_argument("--knee", type=int, default=50, help="the pinned pipeline's N")
    parser.add_argument("--model", help="an artifact, to time pairs/s on this CPU")
    parser.add_argument("--output", default=output_path("score_cache.json"))
    args = parser.parse_args()
    info = machine()
    rows = count(args.data, plan(args.knee))
    rates = pairs_per_second(args.model, args.data) if args.model else {}
    for row in rows:
        if row["precision"] in rates:
            row["minutes_before"] = row["pairs_before"] / rates[row["precision"]] / 60
            row["minutes_now"] = row["pairs_now"] / rates[row["precision"]] / 60
    total = {
        "step": "total",
        **{
            k: sum(r[k] for r in rows)
            for k in ("pairs_before", "pairs_now", "minutes_before", "minutes_now")
            if all(k in r for r in rows)
        },
    }
    columns: list[Column] = [
        ("step", "step", "<16"),
        ("split", "split", "<6"),
        ("prec", "precision", "<6"),
        ("pairs before", "pairs_before", ">13,d"),
        ("pairs now", "pairs_now", ">11,d"),
        ("min before", "minutes_before", ">11.1f"),
        ("min now", "minutes_now", ">9.1f"),
    ]
    print_table(
        f"reproduce-nfcorpus evaluation, pairs scored ({machine_line(info)}; rates "
        + (", ".join(f"{p} {r:.1f} pairs/s" for p, r in rates.items()) or "not timed")
        + ")",
        columns,
        [*rows, total],
    )
    write_json(
        args.output,
        {"machine": info, "knee": args.knee, "pairs_per_s": rates, "rows": rows, "total": total},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
