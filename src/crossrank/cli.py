"""The ``crossrank`` command: ``rerank``, ``demo``, ``export``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PRECISIONS = ("auto", "fp32", "int8", "bf16")  # crossrank.runtime.PRECISIONS, without its imports
PRECISION_HELP = "auto: int8 when the artifact has it, else fp32; bf16 needs OpenVINO"


def _read_docs(path: Path) -> list[dict]:
    """Candidates from JSONL: ``{"id"?, "text"}`` objects or bare JSON strings, one per line."""
    from crossrank.data.beir import iter_jsonl

    docs = []
    for lineno, row in iter_jsonl(path, allow_strings=True):
        if isinstance(row, str):
            row = {"text": row}
        if not isinstance(row.get("text"), str):
            raise ValueError(
                f'{path}:{lineno}: expected {{"id", "text"}} or a string, got {row}'[:200]
            )
        docs.append({**row, "id": str(row.get("id", row.get("_id", len(docs))))})
    return docs


def cmd_rerank(args: argparse.Namespace) -> int:
    from crossrank.runtime import OnnxReranker

    docs = _read_docs(Path(args.docs))
    reranker = OnnxReranker(args.model, precision=args.precision, batch_size=args.batch_size)
    ranked = reranker.rerank(args.query, docs, top_k=args.top_k)
    out = {
        "query": args.query,
        "model": str(args.model),
        "precision": args.precision,
        "results": [{"index": r.index, "id": r.id, "score": r.score} for r in ranked],
    }
    print(json.dumps(out, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from crossrank.demo import run_demo

    summary = run_demo(args.config, top_n=args.top_n, top_k=args.top_k)
    return 0 if summary["ndcg@10_reranked"] > summary["ndcg@10_first_stage"] else 1


def cmd_export(args: argparse.Namespace) -> int:
    from crossrank.export_cli import run

    return run(args)


def cmd_eval(args: argparse.Namespace) -> int:
    from crossrank.eval_cli import run_eval

    return run_eval(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from crossrank.eval_cli import run_sweep

    return run_sweep(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossrank", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("rerank", help="rerank documents for one query with an ONNX artifact")
    p.add_argument("--model", required=True, help="artifact directory (scripts/export.py)")
    p.add_argument("--query", required=True)
    p.add_argument("--docs", required=True, help='JSONL of {"id", "text"} objects or strings')
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.add_argument(
        "--batch-size", type=int, help="pairs per inference call (default: the backend's best)"
    )
    p.set_defaults(func=cmd_rerank)

    p = sub.add_parser("demo", help="train, export and rerank the fixture corpus end to end")
    p.add_argument("--config", default="configs/tiny.yaml")
    p.add_argument("--top-n", type=int, default=30)
    p.add_argument("--top-k", type=int, default=5)
    p.set_defaults(func=cmd_demo)

    for name, help_text in (
        ("eval", "first-stage and reranked quality on a BEIR split"),
        ("sweep", "quality and latency against the candidate budget N; pins the pipeline"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--data", required=name == "sweep", help="a BEIR folder")
        p.add_argument("--split", default="test" if name == "eval" else "dev")
        p.add_argument("--retriever", choices=["bm25", "dense", "hybrid"], default="bm25")
        p.add_argument("--top-k", type=int, default=10)
        p.add_argument("--model", required=name == "sweep", help="reranker artifact directory")
        p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)
        p.add_argument(
            "--fusion",
            choices=["auto", "off"],
            default="off",
            help="auto: add the first-stage score with the weight fitted on dev and stored in "
            "the artifact (the report's model field says so); off: the cross-encoder alone",
        )
        p.add_argument(
            "--approximate",
            action="store_true",
            help="dense/hybrid: HNSW search (usearch) instead of exact numpy search",
        )
        p.add_argument(
            "--passages",
            action="store_true",
            help="score whole documents: overlapping passages that fit the window, pooled",
        )
        p.add_argument("--pooling", choices=["max", "mean_top2", "first_max"], default="first_max")
        p.add_argument("--max-queries", type=int)
        p.add_argument(
            "--batch-size", type=int, help="pairs per inference call (default: the backend's best)"
        )
        p.add_argument("--cache-dir", default=".cache/crossrank")
        p.add_argument(
            "--output", required=name == "sweep", help="JSON report (eval) or folder (sweep)"
        )
        if name == "eval":
            p.add_argument("--top-n", type=int, default=100)
            p.add_argument("--pipeline", help="reproduce a pinned pipeline.json (refuses on drift)")
            p.set_defaults(func=cmd_eval)
        else:
            p.add_argument("--n", default="5,10,20,50,100,200", help="comma-separated budgets")
            p.set_defaults(func=cmd_sweep)

    from crossrank.export_cli import build_parser as export_parser

    p = export_parser(sub.add_parser("export", help="export a checkpoint or HF model to ONNX"))
    p.set_defaults(func=cmd_export)

    from crossrank.calibrate_cli import add_parser as add_calibrate
    from crossrank.serve.cli import add_parser as add_serve

    add_calibrate(sub)
    add_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "precision", None) == "auto" and getattr(args, "model", None):
            from crossrank.runtime import resolve_precision

            args.precision = resolve_precision(args.model, "auto")  # reports name the real one
        return args.func(args)
    except (ValueError, FileNotFoundError, TypeError) as exc:  # ArtifactError is a ValueError
        print(f"crossrank {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
