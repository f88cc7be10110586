"""``crossrank eval``: first stage and reranked quality on a BEIR split, with per-stage latency."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from crossrank.data.beir import BeirDataset, load_beir
from crossrank.data.metrics import map_at_k, mean, mrr_at_k, ndcg_at_k, percentile, recall_at_k
from crossrank.pipeline.fusion import Fusion
from crossrank.pipeline.stages import score_store_stats, without_score_store
from crossrank.pipeline.two_stage import Scorer, rerank_scores
from crossrank.retrieval.base import Hit, Retriever

LATENCY_QUERIES = 20  # with a score store: queries scored anew to time the reranker
METRICS: dict[str, Callable[[Sequence[str], dict[str, int]], float]] = {
    "ndcg@10": lambda r, j: ndcg_at_k(r, j, 10),
    "mrr@10": lambda r, j: mrr_at_k(r, j, 10),
    "recall@10": lambda r, j: recall_at_k(r, j, 10),
    "recall@100": lambda r, j: recall_at_k(r, j, 100),
    "map@100": lambda r, j: map_at_k(r, j, 100),
}


def score_run(run: dict[str, list[str]], dataset: BeirDataset) -> dict[str, float]:
    """Mean of each metric over the queries of ``run`` (query id → ranked doc ids)."""
    return {
        name: mean([fn(ranked, dataset.qrels[qid]) for qid, ranked in run.items()])
        for name, fn in METRICS.items()
    }


def select_queries(dataset: BeirDataset, max_queries: int | None) -> tuple[list[str], int]:
    """Judged queries in qrels order (the first ``max_queries``) and how many were skipped."""
    if max_queries is not None and max_queries < 1:
        raise ValueError(f"expected max_queries >= 1 (or none for all), got {max_queries}")
    judged = dataset.judged_queries()
    skipped = len(dataset.qrels) - len(judged)
    return judged[:max_queries], skipped


@dataclass
class QueryResult:
    qid: str
    hits: list[Hit]
    scores: np.ndarray | None  # final scores of ``hits`` (None without a reranker)
    retrieve_ms: float
    rerank_ms: float
    reranker_scores: np.ndarray | None = None  # the reranker's alone, when ``scores`` are fused
    query_trust: float | None = None  # the novelty guard's share, when the fusion has one
    unguarded_scores: np.ndarray | None = None  # fused as if the novelty guard were off
    timed: bool = True  # rerank_ms is the model's (not read from a score store)


def run_queries(
    dataset: BeirDataset,
    qids: Sequence[str],
    retriever: Retriever,
    top_n: int,
    reranker: Scorer | None = None,
    progress: bool = True,
    description: str = "queries",
    fusion: Fusion | None = None,
    timed_queries: int | None = None,
) -> list[QueryResult]:
    """Retrieve ``top_n`` and (optionally) score them, fused with the first stage when
    ``fusion`` is given, timing each stage per query. ``timed_queries``: only the first that
    many are scored by the model itself, not from its score store, and count as timed."""
    from rich.progress import track

    results = []
    unguarded_fusion = replace(fusion, novelty=None) if fusion is not None else None
    iterator = track(qids, description=description, transient=True) if progress else qids
    for position, qid in enumerate(iterator):
        bypass = timed_queries is not None and position < timed_queries  # timed: score afresh
        timed = timed_queries is None or bypass
        query = dataset.queries[qid]
        t0 = time.perf_counter()
        hits = retriever.retrieve(query, top_n)
        t1 = time.perf_counter()
        scores = alone = unguarded = query_trust = None
        if reranker is not None:
            texts = [h.text if h.text is not None else dataset.doc_text(h.doc_id) for h in hits]
            with without_score_store(reranker) if bypass else nullcontext():
                alone = rerank_scores(reranker, query, hits, texts)
            scores = fusion.fuse(alone, hits, query) if fusion is not None and len(hits) else alone
        t2 = time.perf_counter()
        if fusion is not None and fusion.novelty is not None and alone is not None and len(hits):
            query_trust = fusion.query_trust(query)  # remembered from apply: no second embedding
            unguarded = unguarded_fusion.fuse(alone, hits)
        fused_from = alone if fusion is not None else None
        timing = ((t1 - t0) * 1e3, (t2 - t1) * 1e3)
        results.append(
            QueryResult(qid, hits, scores, *timing, fused_from, query_trust, unguarded, timed)
        )
    return results


def reranked_run(
    results: Sequence[QueryResult], top_n: int | None = None, alone: bool = False
) -> dict[str, list[str]]:
    """Query id → the first ``top_n`` hits reordered by their scores (ties: first stage);
    ``alone``: by the reranker's own scores when the final ones are fused."""
    run = {}
    for r in results:
        hits = r.hits[:top_n] if top_n else r.hits
        scores = (r.reranker_scores if alone else r.scores)[: len(hits)]
        order = np.argsort(-scores, kind="stable")
        run[r.qid] = [hits[i].doc_id for i in order]
    return run


def first_stage_run(
    results: Sequence[QueryResult], top_n: int | None = None
) -> dict[str, list[str]]:
    return {r.qid: [h.doc_id for h in (r.hits[:top_n] if top_n else r.hits)] for r in results}


def latency(values: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


def make_report(
    dataset: BeirDataset,
    results: Sequence[QueryResult],
    *,
    skipped: int,
    retriever_name: str,
    top_n: int,
    model: str | None,
    precision: str,
    started: float,
) -> dict:
    """The ``crossrank eval`` report (its keys are part of the interface; ``reranker_alone``
    is added when ``reranked`` is fused with the first stage)."""
    reranked = results and results[0].scores is not None
    report = {
        "dataset": Path(dataset.path).name,
        "split": dataset.split,
        "queries": len(results),
        "skipped_queries": skipped,
        "retriever": retriever_name,
        "top_n": top_n,
        "model": model,
        "precision": precision if reranked else None,
        "first_stage": score_run(first_stage_run(results), dataset),
        "reranked": score_run(reranked_run(results), dataset) if reranked else None,
        "latency_ms": {
            "retrieve": latency([r.retrieve_ms for r in results]),
            "rerank": latency([r.rerank_ms for r in results if r.timed]) if reranked else None,
        },
        "wall_s": time.perf_counter() - started,
    }
    if reranked and results[0].reranker_scores is not None:
        report["reranker_alone"] = score_run(reranked_run(results, alone=True), dataset)
    trusts = [r.query_trust for r in results if r.query_trust is not None]
    if trusts:
        unguarded = [
            replace(r, scores=r.scores if r.unguarded_scores is None else r.unguarded_scores)
            for r in results
        ]
        report["reranked_without_novelty_guard"] = score_run(reranked_run(unguarded), dataset)
        report["novelty_guard"] = {
            "mean_trust": mean(trusts),
            "share_of_queries_guarded": mean([float(t < 1.0) for t in trusts]),
        }
    return report


def evaluate(
    data: str | Path,
    split: str,
    retriever: Retriever,
    retriever_name: str,
    top_n: int = 100,
    reranker: Scorer | None = None,
    model: str | None = None,
    precision: str = "fp32",
    max_queries: int | None = None,
    progress: bool = True,
    fusion: Fusion | None = None,
    latency_queries: int = LATENCY_QUERIES,
) -> dict:
    """Run the first stage (and the reranker) over a split and report quality and latency.
    With a score store, rerank latency is timed on the first ``latency_queries`` queries, which
    the model scores anew; the rest are read from the store where it has them."""
    started = time.perf_counter()
    dataset = load_beir(data, split)
    qids, skipped = select_queries(dataset, max_queries)
    if latency_queries < 1:
        raise ValueError(f"expected latency_queries >= 1, got {latency_queries}")
    before = score_store_stats(reranker)
    timed = latency_queries if before is not None else None
    results = run_queries(
        dataset, qids, retriever, top_n, reranker, progress, fusion=fusion, timed_queries=timed
    )
    report = make_report(
        dataset,
        results,
        skipped=skipped,
        retriever_name=retriever_name,
        top_n=top_n,
        model=model,
        precision=precision,
        started=started,
    )
    after = score_store_stats(reranker)
    if after is not None:
        hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
        report["score_cache"] = {
            "folder": after["folder"],
            "hits": hits,
            "misses": misses,
            "rerank_latency_queries": sum(r.timed for r in results),
        }
    return report
