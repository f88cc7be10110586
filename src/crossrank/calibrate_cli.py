"""``crossrank calibrate``: fit Platt scaling on a dev split and store it in the artifact."""

from __future__ import annotations

import argparse
import json

import numpy as np

from crossrank.artifact import read_manifest, write_manifest
from crossrank.calibration import calibrate, fit_platt, reliability


def labeled_logits(args: argparse.Namespace, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Cross-encoder logits of the first stage's top N per judged query, with 0/1 labels
    (judged relevant or not; unjudged candidates count as not relevant)."""
    from crossrank.data.beir import load_beir
    from crossrank.eval_cli import build_retriever
    from crossrank.evaluation import run_queries, select_queries
    from crossrank.runtime import OnnxReranker

    dataset = load_beir(args.data, split)
    qids, _ = select_queries(dataset, args.max_queries)
    retriever = build_retriever(args.retriever, args.data, args.cache_dir)
    reranker = OnnxReranker(args.model, precision=args.precision, batch_size=args.batch_size)
    results = run_queries(
        dataset, qids, retriever, args.top_n, reranker, description=f"{split} (calibration)"
    )
    logits, labels = [], []
    for r in results:
        judged = dataset.qrels[r.qid]
        logits.extend(r.scores.tolist())
        labels.extend(int(judged.get(h.doc_id, 0) > 0) for h in r.hits)
    return np.asarray(logits), np.asarray(labels)


def cmd_calibrate(args: argparse.Namespace) -> int:
    logits, labels = labeled_logits(args, args.split)
    fit = fit_platt(logits, labels)
    fit.update(
        {
            "fitted_on": f"{args.data.rstrip('/').split('/')[-1]}:{args.split}",
            "first_stage": f"{args.retriever} top {args.top_n}",
            "precision": args.precision,
            "sigmoid": reliability(calibrate(logits, None), labels),
            "platt": reliability(calibrate(logits, fit), labels),
        }
    )
    if args.check_split:
        held_logits, held_labels = labeled_logits(args, args.check_split)
        fit["held_out"] = {
            "split": args.check_split,
            "sigmoid": reliability(calibrate(held_logits, None), held_labels),
            "platt": reliability(calibrate(held_logits, fit), held_labels),
        }
    manifest = read_manifest(args.model)
    manifest["calibration"] = fit
    write_manifest(args.model, manifest)  # atomic; the graph files and their hashes are untouched
    print(json.dumps(fit, indent=2))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit Platt scaling on a dev split into crossrank.json")
    p.add_argument("--model", required=True, help="reranker artifact directory")
    p.add_argument("--data", required=True, help="a BEIR folder")
    p.add_argument("--split", default="dev")
    p.add_argument("--check-split", help="also report reliability on this split (e.g. test)")
    p.add_argument("--retriever", choices=["bm25", "dense", "hybrid"], default="bm25")
    p.add_argument("--top-n", type=int, default=100)
    p.add_argument("--max-queries", type=int)
    p.add_argument("--precision", choices=["auto", "fp32", "int8", "bf16"], default="auto")
    p.add_argument(
        "--batch-size", type=int, help="pairs per inference call (default: the backend's best)"
    )
    p.add_argument("--cache-dir", default=".cache/crossrank")
    p.set_defaults(func=cmd_calibrate)
