"""``crossrank rerank``: rerank documents for one query with an ONNX artifact."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crossrank.cli.common import add_precision


def read_docs(path: Path) -> list[dict]:
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


def run_rerank(args: argparse.Namespace) -> int:
    from crossrank.runtime.reranker import OnnxReranker

    docs = read_docs(Path(args.docs))
    reranker = OnnxReranker(args.model, precision=args.precision, batch_size=args.batch_size)
    ranked = reranker.rerank(
        query=args.query, documents=docs, top_k=args.top_k, min_answer=args.min_answer
    )
    out = {
        "query": args.query,
        "model": str(args.model),
        "precision": args.precision,
        "results": [
            {"index": r.index, "id": r.id, "score": r.score}
            | ({} if r.answer is None else {"answer": r.answer})
            for r in ranked
        ],
    }
    print(json.dumps(out, indent=2))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("rerank", help="rerank documents for one query with an ONNX artifact")
    p.add_argument("--model", required=True, help="artifact directory (crossrank export)")
    p.add_argument("--query", required=True)
    p.add_argument("--docs", required=True, help='JSONL of {"id", "text"} objects or strings')
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument(
        "--min-answer",
        type=float,
        help="drop documents whose answer probability is below this (models with an answer head)",
    )
    add_precision(p)
    p.set_defaults(func=run_rerank)
