"""``crossrank fuse``: fit the weight of the first stage's score in the fusion on a split (dev),
and store it in the reranker artifact's manifest, beside the fits for other first stages."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from crossrank.cli.common import add_fit_options, score_split
from crossrank.eval.metrics import mean, ndcg_at_k
from crossrank.pipeline.fusion import Fusion, fit_weight, fusion_entries, rank_agreement
from crossrank.runtime.artifact import Manifest


def fit_fusion(args: argparse.Namespace) -> Fusion:
    """The grid weight that maximises mean nDCG@10 of the fused top ``top_n`` on ``split``,
    with the guard's agreement floor at a low percentile of the split's agreements."""
    dataset, results = score_split(args, args.split, "fusion fit")

    def metric(hits, judged):
        return lambda s: ndcg_at_k([hits[i].doc_id for i in np.argsort(-s, kind="stable")], judged)

    lists = [
        (r.scores, np.array([h.score for h in r.hits]), metric(r.hits, dataset.qrels[r.qid]))
        for r in results
    ]
    agreements = [rank_agreement(ce, fs) for ce, fs, _ in lists]
    floor = None
    if args.guard_percentile > 0:
        floor = float(np.percentile(agreements, args.guard_percentile))
        floor = floor if floor > 0 else None  # no agreement to lose: the guard stays off
    weight, fused = fit_weight(lists, floor=floor)
    _, unguarded = fit_weight(lists)
    return Fusion(
        weight,
        args.retriever,
        fitted_on=f"{Path(args.data).name}:{args.split}",
        fit={
            f"{args.split}_ndcg@10_fused": fused,
            f"{args.split}_ndcg@10_fused_without_guard": unguarded,
            f"{args.split}_ndcg@10_cross_encoder": mean([m(ce) for ce, _, m in lists]),
            f"{args.split}_ndcg@10_first_stage": mean([m(fs) for _, fs, m in lists]),
            f"{args.split}_rank_agreement_median": float(np.median(agreements)),
            "guard_percentile": args.guard_percentile,
            "precision": args.precision,
            "top_n": args.top_n,
            "queries": len(lists),
        },
        agreement_floor=floor,
    )


def run_fuse(args: argparse.Namespace) -> int:
    if args.split == "test":
        raise ValueError("expected a training or dev split for the fit, got 'test'")
    fusion = fit_fusion(args)
    manifest = Manifest.load(args.model)
    # One fit per kind of first stage: fitting for hybrid keeps the BM25 fit, and the reverse.
    manifest.fusion = {**fusion_entries(manifest.fusion), fusion.first_stage: fusion.to_dict()}
    manifest.save(args.model)  # atomic; the graph files and their hashes are untouched
    print(json.dumps(manifest.fusion[fusion.first_stage], indent=2))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("fuse", help="fit the first-stage fusion weight on dev into the artifact")
    add_fit_options(p)
    p.add_argument(
        "--guard-percentile",
        type=float,
        default=10.0,
        help="do-no-harm guard: queries whose rank agreement with the first stage is below this "
        "percentile of the split's keep a shrinking share of the cross-encoder (0: off)",
    )
    p.set_defaults(func=run_fuse)
