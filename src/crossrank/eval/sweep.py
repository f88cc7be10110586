"""``crossrank sweep``: quality and latency of reranking against the candidate budget N."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossrank.data.beir import load_beir
from crossrank.data.metrics import mean, mrr_at_k, ndcg_at_k, recall_at_k
from crossrank.eval.evaluate import LATENCY_QUERIES, latency, select_queries
from crossrank.eval.report import plot_sweep
from crossrank.io import atomic_file, write_text_atomic
from crossrank.pipeline.fusion import Fusion
from crossrank.pipeline.stages import without_score_store
from crossrank.pipeline.two_stage import Scorer, rerank_scores
from crossrank.retrieval.base import Retriever

KNEE_TOLERANCE = 0.005
FIELDS = [
    "n",
    "ndcg@10",
    "recall@1",
    "mrr@10",
    "ceiling_recall@n",
    "rerank_p50_ms",
    "rerank_p95_ms",
    "forward_passes",
]


def knee(rows: Sequence[dict], tolerance: float = KNEE_TOLERANCE, min_n: int = 1) -> int:
    """The smallest N >= ``min_n`` whose nDCG@10 is within ``tolerance`` of the best such N."""
    allowed = [r for r in rows if r["n"] >= min_n]
    if not allowed:
        raise ValueError(
            f"expected at least one candidate budget N >= {min_n} (3 x top_k), got "
            f"{[r['n'] for r in rows]}"
        )
    best = max(r["ndcg@10"] for r in allowed)
    return min(r["n"] for r in allowed if r["ndcg@10"] >= best - tolerance)


def check_budgets(ns: Sequence[int], top_k: int) -> list[int]:
    """The budgets sorted, after checking they are >= 1 and one is at least 3 * ``top_k``."""
    ns = sorted(set(ns))
    if not ns or ns[0] < 1:
        raise ValueError(f"expected candidate budgets >= 1, got {list(ns)}")
    if ns[-1] < 3 * top_k:
        raise ValueError(
            f"expected at least one candidate budget N >= {3 * top_k} (3 x top_k {top_k}), got {ns}"
        )
    return ns


def sweep(
    data: str | Path,
    split: str,
    retriever: Retriever,
    reranker: Scorer,
    ns: Sequence[int],
    max_queries: int | None = None,
    progress: bool = True,
    fusion: Fusion | None = None,
    top_k: int = 10,
    latency_queries: int = LATENCY_QUERIES,
) -> dict:
    """For each N: rerank the first stage's top N of every query and measure it. The knee is
    chosen among N >= 3 * ``top_k`` (below that a reranker can hardly reorder the top K);
    ``knee_any_n`` says where it would lie without that floor.

    Each query's top max(N) is scored once and every N reads its first N scores (a pair's
    score does not depend on the pairs scored with it). Latency per N is timed on the first
    ``latency_queries`` queries, scoring their top N anew, never from a score store.
    """
    from rich.progress import track

    ns = check_budgets(ns, top_k)
    if latency_queries < 1:
        raise ValueError(f"expected latency_queries >= 1, got {latency_queries}")
    dataset = load_beir(data, split)
    qids, skipped = select_queries(dataset, max_queries)
    per_n: dict[int, dict[str, list[float]]] = {n: {"latency": []} for n in ns}
    iterator = track(qids, description="sweep", transient=True) if progress else qids
    for position, qid in enumerate(iterator):
        query, judged = dataset.queries[qid], dataset.qrels[qid]
        hits = retriever.retrieve(query, ns[-1])
        texts = [h.text if h.text is not None else dataset.doc_text(h.doc_id) for h in hits]
        if position < latency_queries:  # first, so the novelty guard's embedding is timed too
            with without_score_store(reranker):
                for n in ns:
                    t0 = time.perf_counter()
                    rerank_scores(reranker, query, hits[:n], texts[:n], fusion)
                    per_n[n]["latency"].append((time.perf_counter() - t0) * 1e3)
        alone = rerank_scores(reranker, query, hits, texts)
        for n in ns:
            scores = alone[:n]
            if fusion is not None and len(scores):  # z-scores are of the top N: evidence per N
                scores = fusion.fuse(scores, hits[:n], query)
            ranked = [hits[i].doc_id for i in np.argsort(-scores, kind="stable")]
            m = per_n[n]
            for name, value in (
                ("ndcg@10", ndcg_at_k(ranked, judged, 10)),
                ("recall@1", recall_at_k(ranked, judged, 1)),
                ("mrr@10", mrr_at_k(ranked, judged, 10)),
                ("ceiling_recall@n", recall_at_k([h.doc_id for h in hits], judged, n)),
                ("forward_passes", float(min(n, len(hits)))),
            ):
                m.setdefault(name, []).append(value)
    rows = []
    for n in ns:
        m = per_n[n]
        lat = latency(m["latency"])
        rows.append(
            {
                "n": n,
                **{k: mean(m[k]) for k in ("ndcg@10", "recall@1", "mrr@10", "ceiling_recall@n")},
                "rerank_p50_ms": lat["p50"],
                "rerank_p95_ms": lat["p95"],
                "forward_passes": mean(m["forward_passes"]),
            }
        )
    return {
        "dataset": Path(data).name,
        "split": split,
        "queries": len(qids),
        "skipped_queries": skipped,
        "rows": rows,
        "knee": knee(rows, min_n=3 * top_k),
        "knee_any_n": knee(rows),
        "min_n": 3 * top_k,
        "top_k": top_k,
        "knee_tolerance": KNEE_TOLERANCE,
        "latency_queries": min(latency_queries, len(qids)),
    }


def write_sweep(result: dict, output: str | Path, title: str = "") -> list[Path]:
    """``sweep.json``, ``sweep.csv`` and ``sweep.png`` in ``output``."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "sweep.json", json.dumps(result, indent=2))
    with atomic_file(out / "sweep.csv", "w") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for row in result["rows"]:
            writer.writerow({k: row[k] for k in FIELDS})
    plot_sweep(result, out / "sweep.png", title)
    return [out / "sweep.json", out / "sweep.csv", out / "sweep.png"]
