"""``crossrank eval``: first-stage and reranked quality on a BEIR split, or a pinned pipeline."""

from __future__ import annotations

import argparse
import json

from crossrank.cli.common import (
    add_first_stage,
    add_passages,
    add_precision,
    add_score_cache,
    passage_pooling,
    positive_int,
    prepare_first_stage,
    reranker_from_args,
    score_store,
)
from crossrank.data.beir import load_beir
from crossrank.eval.evaluate import LATENCY_QUERIES, evaluate
from crossrank.eval.report import print_report
from crossrank.io import write_text_atomic
from crossrank.pipeline.fusion import Fusion
from crossrank.pipeline.stages import (
    artifact_fusion,
    build_retriever,
    needs_bi_encoder,
)
from crossrank.pipeline.two_stage import Scorer, warn_if_shallow
from crossrank.retrieval.base import Retriever


def add_stage_options(p: argparse.ArgumentParser, sweep: bool = False) -> None:
    """What ``eval`` and ``sweep`` share: the first stage, the reranker and its options."""
    add_first_stage(p, data_required=sweep)
    p.add_argument("--split", default="dev" if sweep else "test")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--model", required=sweep, help="reranker artifact directory")
    add_precision(p, default="fp32")
    add_score_cache(p)
    p.add_argument(
        "--fusion",
        choices=["auto", "off"],
        default="off",
        help="auto: add the first-stage score with the weight `crossrank fuse` fitted on dev "
        "and stored in the artifact (the report's model field says so); off: the reranker alone",
    )
    add_passages(p)
    p.add_argument("--max-queries", type=positive_int)
    p.add_argument(
        "--latency-queries",
        type=int,
        default=LATENCY_QUERIES,
        help="queries whose rerank latency is timed (a sweep: at every N): with --score-cache "
        "or in a sweep they are scored anew for it, never read from the cache",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse a corpus with empty documents (naming them) instead of skipping them",
    )


def load_stages(args: argparse.Namespace) -> tuple[Retriever, Scorer | None, Fusion | None]:
    """(first stage, reranker or None, fusion or None) as the command line names them."""
    if args.strict:
        load_beir(args.data, args.split, strict=True)
    prepare_first_stage(args.retriever, args.cache_dir)
    retriever = build_retriever(
        args.retriever, args.data, args.cache_dir, approximate=args.approximate
    )
    if not args.model:
        return retriever, None, None
    reranker = reranker_from_args(args)
    fusion = None
    if args.fusion == "auto":
        if needs_bi_encoder(args.model, args.retriever):
            prepare_first_stage("dense", args.cache_dir)
        fusion = artifact_fusion(reranker, args.retriever, args.cache_dir)
    return retriever, reranker, fusion


def describe_model(model: str | None, pooling: str | None, fusion: Fusion | None) -> str | None:
    """The report's ``model`` field: the artifact, and how its scores were used."""
    if model is None:
        return None
    if pooling is not None:
        model = f"{model} (passages, {pooling}-pooled)"
    if fusion is not None:
        feedback = f", feedback {fusion.feedback}" if fusion.feedback else ""
        model = f"{model} (fused with {fusion.first_stage}, weight {fusion.weight}{feedback})"
    return model


def run_eval(args: argparse.Namespace) -> int:
    if args.pipeline:
        return run_pinned(args)
    if not args.data:
        raise ValueError("expected --data DIR (or --pipeline pipeline.json)")
    retriever, reranker, fusion = load_stages(args)
    if reranker is not None:
        warn_if_shallow(args.top_n, args.top_k)
    report = evaluate(
        args.data,
        args.split,
        retriever,
        args.retriever,
        args.top_n,
        reranker,
        model=describe_model(
            str(args.model) if args.model else None,
            passage_pooling(args),
            fusion,
        ),
        precision=args.precision,
        max_queries=args.max_queries,
        fusion=fusion,
        latency_queries=args.latency_queries,
    )
    return finish(report, args.output)


def run_pinned(args: argparse.Namespace) -> int:
    """Evaluate exactly the pinned pipeline; refuse when any pinned artifact changed."""
    from crossrank.pipeline.pinning import PipelineSpec, open_pipeline

    given = [
        flag
        for flag, on in (
            ("--model", args.model),
            ("--passages", args.passages),
            ("--approximate", args.approximate),
            ("--fusion auto", args.fusion == "auto"),
        )
        if on
    ]
    if given:
        raise ValueError(
            f"expected no {', '.join(given)} with --pipeline (it runs what it pins), got them"
        )
    spec = PipelineSpec.load(args.pipeline)
    prepare_first_stage(spec.retriever.kind, args.cache_dir)
    if spec.fusion == "auto" and needs_bi_encoder(spec.reranker.path, spec.retriever.kind):
        prepare_first_stage("dense", args.cache_dir)
    spec, pipe = open_pipeline(
        args.pipeline, args.cache_dir, args.batch_size, score_store=score_store(args)
    )
    warn_if_shallow(pipe.top_n, pipe.top_k)
    report = evaluate(
        spec.data,
        args.split,
        pipe.retriever,
        spec.retriever.kind,
        pipe.top_n,
        pipe.reranker,
        model=describe_model(spec.reranker.path, spec.passages, pipe.fusion),
        precision=spec.reranker.precision,
        max_queries=args.max_queries,
        fusion=pipe.fusion,
        latency_queries=args.latency_queries,
    )
    return finish(report, args.output)


def finish(report: dict, output: str | None) -> int:
    print_report(report)
    if output:
        write_text_atomic(output, json.dumps(report, indent=2))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="first-stage and reranked quality on a BEIR split")
    add_stage_options(p)
    p.add_argument("--top-n", type=int, default=100)
    p.add_argument("--pipeline", help="reproduce a pinned pipeline.json (refuses on drift)")
    p.add_argument("--output", help="JSON report")
    p.set_defaults(func=run_eval)
