"""Options and set-up shared by several commands (one definition of each choice list)."""

from __future__ import annotations

import argparse
from pathlib import Path

from crossrank.io import DEFAULT_CACHE, cache_dir
from crossrank.pipeline.stages import RETRIEVERS
from crossrank.runtime.passages import POOLINGS
from crossrank.runtime.precision import PRECISION_HELP, PRECISIONS


def add_precision(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--precision", choices=PRECISIONS, default=default, help=PRECISION_HELP)
    p.add_argument(
        "--batch-size", type=int, help="pairs per inference call (default: the backend's best)"
    )


def add_pooling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pooling", choices=POOLINGS, default="first_max", help="passage pooling")


def add_first_stage(p: argparse.ArgumentParser, data_required: bool = False) -> None:
    p.add_argument("--data", required=data_required, help="a BEIR folder")
    p.add_argument("--retriever", choices=RETRIEVERS, default="bm25")
    p.add_argument(
        "--approximate",
        action="store_true",
        help="dense/hybrid: HNSW search (usearch) instead of exact numpy search",
    )
    add_cache_dir(p)


def add_cache_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        default=None,
        help=f"indexes, mined candidates, bi-encoder (default: $CROSSRANK_CACHE or {DEFAULT_CACHE})",
    )


def add_score_cache(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--score-cache",
        action="store_true",
        help="read and keep the reranker's scores in the cache folder's scores/ (exact: keyed by "
        "the graph, tokenizer, precision, window, CPU flags and library versions), so that "
        "commands reading the same pairs score them once; latency is timed on "
        "--latency-queries queries scored anew",
    )


def score_store(args: argparse.Namespace) -> Path | None:
    """Where ``--score-cache`` keeps scores (None without it)."""
    return cache_dir(args.cache_dir) / "scores" if args.score_cache else None


def prepare_first_stage(kind: str, cache: str | Path | None) -> None:
    """Export the bi-encoder a dense or hybrid first stage reads, once (needs torch)."""
    if kind in ("dense", "hybrid"):
        from crossrank.export.bi_encoder import ensure_bi_encoder

        ensure_bi_encoder(cache_dir(cache))


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse names the option and the value otherwise)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_fit_options(p: argparse.ArgumentParser) -> None:
    """Options of the commands that fit something on a split's reranked lists (fuse, calibrate)."""
    p.add_argument("--model", required=True, help="reranker artifact directory")
    add_first_stage(p, data_required=True)
    p.add_argument("--split", default="dev")
    p.add_argument("--top-n", type=int, default=100)
    p.add_argument("--max-queries", type=positive_int)
    add_precision(p, default="auto")
    add_score_cache(p)
    add_passages(p)


def add_passages(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--passages",
        action="store_true",
        help="score whole documents: overlapping passages that fit the window, pooled",
    )
    add_pooling(p)


def passage_pooling(args: argparse.Namespace) -> str | None:
    """The pooling when ``--passages`` is given (None: documents truncated to the window)."""
    return args.pooling if args.passages else None


def reranker_from_args(args: argparse.Namespace):
    """The reranker ``--model``, ``--precision``, ``--batch-size``, ``--passages``/``--pooling``
    and ``--score-cache`` name."""
    from crossrank.pipeline.stages import build_reranker

    return build_reranker(
        args.model,
        args.precision,
        args.batch_size,
        args.passages,
        args.pooling,
        score_store=score_store(args),
    )


def score_split(args: argparse.Namespace, split: str, purpose: str):
    """(dataset, per-query results): the first stage's top ``args.top_n`` of every judged query
    of ``split`` (the first ``args.max_queries``), scored by the reranker ``args.model``."""
    from crossrank.data.beir import load_beir
    from crossrank.eval.evaluate import run_queries, select_queries
    from crossrank.pipeline.stages import build_retriever

    prepare_first_stage(args.retriever, args.cache_dir)
    dataset = load_beir(args.data, split)
    retriever = build_retriever(
        args.retriever, args.data, args.cache_dir, approximate=args.approximate
    )
    reranker = reranker_from_args(args)
    qids, _ = select_queries(dataset, args.max_queries)
    results = run_queries(
        dataset, qids, retriever, args.top_n, reranker, description=f"{split} ({purpose})"
    )
    return dataset, results
