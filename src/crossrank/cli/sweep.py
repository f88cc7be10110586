"""``crossrank sweep``: quality and latency against the candidate budget N; pins the pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from crossrank.cli.common import passage_pooling
from crossrank.cli.eval import add_stage_options, load_stages
from crossrank.eval.report import print_sweep
from crossrank.eval.sweep import check_budgets, sweep, write_sweep
from crossrank.pipeline.pinning import pin_pipeline


def parse_budgets(text: str) -> list[int]:
    try:
        return [int(n) for n in str(text).split(",") if n.strip()]
    except ValueError:
        raise ValueError(f"expected --n as comma-separated integers, got {text!r}") from None


def run_sweep(args: argparse.Namespace) -> int:
    ns = check_budgets(parse_budgets(args.n), args.top_k)  # before any loading
    if args.batch_size is not None:
        raise ValueError(
            f"expected no --batch-size for a sweep, got {args.batch_size} (every N reads one "
            "scoring of the top max(N), exact only when a score does not depend on its "
            "batch-mates: the default batching)"
        )
    retriever, reranker, fusion = load_stages(args)
    if reranker is None:
        raise ValueError("expected --model: a sweep measures reranking")
    result = sweep(
        args.data,
        args.split,
        retriever,
        reranker,
        ns,
        args.max_queries,
        fusion=fusion,
        top_k=args.top_k,
        latency_queries=args.latency_queries,
    )
    passages = passage_pooling(args)
    result.update(
        {
            "retriever": args.retriever,
            "model": str(args.model),
            "precision": args.precision,
            "passages": passages,
        }
    )
    model_name = "/".join(Path(args.model).parts[-2:])
    files = write_sweep(
        result,
        args.output,
        f"{result['dataset']} {args.split}: {args.retriever} → {model_name} ({args.precision})",
    )
    pin_pipeline(
        Path(args.output) / "pipeline.json",
        data=args.data,
        retriever_kind=args.retriever,
        retriever=retriever,
        model_dir=args.model,
        precision=args.precision,
        top_n=result["knee"],
        top_k=args.top_k,
        sweep_json=files[0],
        fusion=args.fusion,
        approximate=args.approximate,
        passages=passages,
    )
    print_sweep(result)
    print(f"wrote {', '.join(str(f) for f in files)} and {Path(args.output) / 'pipeline.json'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="quality and latency against the candidate budget N; pins the pipeline"
    )
    add_stage_options(p, sweep=True)
    p.add_argument("--n", default="5,10,20,50,100,200", help="comma-separated budgets")
    p.add_argument("--output", required=True, help="folder for sweep.json/csv/png, pipeline.json")
    p.set_defaults(func=run_sweep)
