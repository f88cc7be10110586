"""``crossrank eval`` and ``crossrank sweep``: build the stages, run, print and write reports."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from crossrank.atomic import write_text_atomic
from crossrank.data.beir import load_beir
from crossrank.evaluation import evaluate
from crossrank.fusion import interpolate
from crossrank.retrieval.base import Hit, Retriever
from crossrank.retrieval.bm25 import BM25Params, cached_bm25


def build_retriever(
    kind: str,
    data: str | Path,
    cache_dir: str | None,
    bm25: BM25Params | None = None,
    approximate: bool = False,
) -> Retriever:
    """The first stage named on the command line, over the whole corpus of ``data``."""
    splits = sorted(p.stem for p in (Path(data) / "qrels").glob("*.tsv"))
    if not splits:
        raise ValueError(f"{data}/qrels: expected at least one <split>.tsv, found none")
    dataset = load_beir(data, splits[0])
    doc_ids = list(dataset.corpus)
    texts = [dataset.doc_text(d) for d in doc_ids]
    if kind == "bm25":
        return cached_bm25(doc_ids, texts, cache_dir, bm25)
    if kind in ("dense", "hybrid"):
        from crossrank.retrieval.dense import (
            DenseRetriever,
            HybridRetriever,
            OnnxEmbedder,
            bi_encoder_dir,
        )

        cache = cache_dir or ".cache/crossrank"
        artifact = bi_encoder_dir(cache)
        if not (artifact / "crossrank.json").is_file():
            from crossrank.dense_export import ensure_bi_encoder  # needs torch, only to export once

            ensure_bi_encoder(cache)
        dense = DenseRetriever.build(OnnxEmbedder(artifact), doc_ids, texts, cache, approximate)
        if kind == "dense":
            return dense
        return HybridRetriever(
            {"bm25": cached_bm25(doc_ids, texts, cache_dir, bm25), "dense": dense}
        )
    raise ValueError(f"expected retriever 'bm25', 'dense' or 'hybrid', got {kind!r}")


class Fused:
    """Cross-encoder scores plus ``weight`` × the first-stage scores (both z-normalised per
    query), as fitted on dev and stored in the artifact. It wraps the retriever to see them."""

    def __init__(self, reranker, retriever: Retriever, weight: float) -> None:
        self.reranker, self.inner, self.weight = reranker, retriever, weight
        self._last: dict[str, np.ndarray] = {}

    def retrieve(self, query: str, k: int) -> list[Hit]:
        hits = self.inner.retrieve(query, k)
        self._last = {query: np.array([h.score for h in hits], dtype=np.float64)}
        return hits

    def score(self, query: str, documents) -> np.ndarray:
        ce = self.reranker.score(query, documents)
        first_stage = self._last[query][: len(ce)]  # kept: a sweep scores one list many times
        return interpolate(ce, first_stage, self.weight).astype(np.float32)


def load_stages(args: argparse.Namespace, retriever: Retriever):
    """(retriever, scorer) for the command line: fused when the artifact says so."""
    if not args.model:
        return retriever, None
    from crossrank.runtime import OnnxReranker

    reranker = OnnxReranker(args.model, precision=args.precision, batch_size=args.batch_size)
    fusion = reranker.manifest.get("fusion")
    if getattr(args, "passages", False):
        from crossrank.passages import PassageScorer

        reranker = PassageScorer(reranker, args.pooling)
    if args.fusion == "auto" and fusion and fusion.get("first_stage") == args.retriever:
        fused = Fused(reranker, retriever, float(fusion["weight"]))
        return fused, fused
    return retriever, reranker


def print_report(report: dict, console: Console | None = None) -> None:
    console = console or Console(width=140)
    table = Table(
        title=f"{report['dataset']} {report['split']}: {report['queries']} queries, "
        f"{report['retriever']} top {report['top_n']}"
    )
    metrics = list(report["first_stage"])
    for col in ("stage", *metrics, "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    lat = report["latency_ms"]
    rows = [(report["retriever"], report["first_stage"], lat["retrieve"])]
    if report["reranked"] is not None:
        rows.append((f"reranked ({report['precision']})", report["reranked"], lat["rerank"]))
    for name, values, timing in rows:
        table.add_row(
            name,
            *(f"{values[m]:.4f}" for m in metrics),
            f"{timing['p50']:.1f}",
            f"{timing['p95']:.1f}",
        )
    console.print(table)


def run_eval(args: argparse.Namespace) -> int:
    if args.pipeline:
        return run_pinned(args)
    if not args.data:
        raise ValueError("expected --data DIR (or --pipeline pipeline.json)")
    retriever = build_retriever(
        args.retriever, args.data, args.cache_dir, approximate=args.approximate
    )
    return _evaluate(args, retriever)


def _evaluate(args: argparse.Namespace, first_stage: Retriever) -> int:
    retriever, scorer = load_stages(args, first_stage)
    model = str(args.model) if args.model else None
    if getattr(args, "passages", False):
        model = f"{model} (passages, {args.pooling}-pooled)"
    if isinstance(scorer, Fused):
        model = f"{model} (fused with {args.retriever}, weight {scorer.weight})"
    report = evaluate(
        args.data,
        args.split,
        retriever,
        args.retriever,
        args.top_n,
        scorer,
        model=model,
        precision=args.precision,
        max_queries=args.max_queries,
    )
    print_report(report)
    if args.output:
        write_text_atomic(args.output, json.dumps(report, indent=2))
    return 0


def run_pinned(args: argparse.Namespace) -> int:
    """Evaluate exactly the pinned pipeline; refuse when any pinned artifact changed."""
    from crossrank.pinning import check_index, load_pipeline

    record = load_pipeline(args.pipeline)
    params = record["retriever"].get("params") or None
    kind = record["retriever"]["kind"]
    retriever = build_retriever(
        kind, record["data"], args.cache_dir, BM25Params(**params) if params else None
    )
    check_index(record, retriever, args.pipeline)
    pinned = argparse.Namespace(
        **{
            **vars(args),
            "pipeline": None,
            "data": record["data"],
            "retriever": kind,
            "model": record["reranker"]["path"],
            "precision": record["reranker"]["precision"],
            "top_n": record["top_n"],
            "fusion": record.get("fusion", "off"),
        }
    )
    return _evaluate(pinned, retriever)


def run_sweep(args: argparse.Namespace) -> int:
    from crossrank.pinning import pin_pipeline
    from crossrank.sweep import sweep, write_sweep

    base = build_retriever(args.retriever, args.data, args.cache_dir, approximate=args.approximate)
    retriever, scorer = load_stages(args, base)
    if scorer is None:
        raise ValueError("expected --model: a sweep measures reranking")
    try:
        ns = [int(n) for n in str(args.n).split(",") if n.strip()]
    except ValueError:
        raise ValueError(f"expected --n as comma-separated integers, got {args.n!r}") from None
    result = sweep(args.data, args.split, retriever, scorer, ns, args.max_queries)
    result.update(
        {"retriever": args.retriever, "model": str(args.model), "precision": args.precision}
    )
    files = write_sweep(
        result,
        args.output,
        f"{result['dataset']} {args.split}: {args.retriever} → {'/'.join(Path(args.model).parts[-2:])} ({args.precision})",
    )
    pin_pipeline(
        Path(args.output) / "pipeline.json",
        data=args.data,
        retriever_kind=args.retriever,
        retriever=base,
        model_dir=args.model,
        precision=args.precision,
        top_n=result["knee"],
        top_k=args.top_k,
        sweep_json=files[0],
        fusion=args.fusion,
    )
    table = Table(title=f"sweep ({result['queries']} queries); knee N={result['knee']}")
    for col in ("N", "nDCG@10", "R@1", "MRR@10", "ceiling R@N", "p50 ms", "p95 ms"):
        table.add_column(col, justify="right")
    for r in result["rows"]:
        table.add_row(
            str(r["n"]),
            f"{r['ndcg@10']:.4f}",
            f"{r['recall@1']:.4f}",
            f"{r['mrr@10']:.4f}",
            f"{r['ceiling_recall@n']:.4f}",
            f"{r['rerank_p50_ms']:.1f}",
            f"{r['rerank_p95_ms']:.1f}",
        )
    Console(width=140).print(table)
    print(f"wrote {', '.join(str(f) for f in files)} and {Path(args.output) / 'pipeline.json'}")
    return 0
