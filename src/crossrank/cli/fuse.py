"""``crossrank fuse``: fit the weight of the first stage's score in the fusion on a split (dev),
and store it in the reranker artifact's manifest."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from crossrank.cli.common import add_fit_options, score_split
from crossrank.eval.metrics import mean, ndcg_at_k
from crossrank.pipeline.fusion import Fusion, fit_weight
from crossrank.runtime.artifact import Manifest


def fit_fusion(args: argparse.Namespace) -> Fusion:
    """The grid weight that maximises mean nDCG@10 of the fused top ``top_n`` on ``split``."""
    dataset, results = score_split(args, args.split, "fusion fit")

    def metric(hits, judged):
        return lambda s: ndcg_at_k([hits[i].doc_id for i in np.argsort(-s, kind="stable")], judged)

    lists = [
        (r.scores, np.array([h.score for h in r.hits]), metric(r.hits, dataset.qrels[r.qid]))
        for r in results
    ]
    weight, fused = fit_weight(lists)
    return Fusion(
        weight,
        args.retriever,
        fitted_on=f"{Path(args.data).name}:{args.split}",
        fit={
            f"{args.split}_ndcg@10_fused": fused,
            f"{args.split}_ndcg@10_cross_encoder": mean([m(ce) for ce, _, m in lists]),
            "precision": args.precision,
            "top_n": args.top_n,
            "queries": len(lists),
        },
    )


def run_fuse(args: argparse.Namespace) -> int:
    if args.split == "test":
        raise ValueError("expected a training or dev split for the fit, got 'test'")
    fusion = fit_fusion(args)
    manifest = Manifest.load(args.model)
    manifest.fusion = fusion.to_dict()
    manifest.save(args.model)  # atomic; the graph files and their hashes are untouched
    print(json.dumps(manifest.fusion, indent=2))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("fuse", help="fit the first-stage fusion weight on dev into the artifact")
    add_fit_options(p)
    p.set_defaults(func=run_fuse)
