"""``crossrank calibrate``: fit Platt scaling on a dev split and store it in the artifact."""

from __future__ import annotations

import argparse
import json

import numpy as np

from crossrank.cli.common import add_fit_options, passage_pooling, score_split
from crossrank.runtime.artifact import Manifest
from crossrank.runtime.calibration import calibrate, fit_platt, reliability


def labeled_logits(args: argparse.Namespace, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Cross-encoder logits of the first stage's top N per judged query, with 0/1 labels
    (judged relevant or not; unjudged candidates count as not relevant)."""
    dataset, results = score_split(args, split, "calibration")
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
            "passages": passage_pooling(args),
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
    manifest = Manifest.load(args.model)
    manifest.calibration = fit
    manifest.save(args.model)  # atomic; the graph files and their hashes are untouched
    print(json.dumps(fit, indent=2))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit Platt scaling on a dev split into crossrank.json")
    add_fit_options(p)
    p.add_argument("--check-split", help="also report reliability on this split (e.g. test)")
    p.set_defaults(func=cmd_calibrate)
