"""``crossrank fuse``: fit the weight of the first stage's score in the fusion on a split (dev),
and store it in the reranker artifact's manifest, beside the fits for other first stages."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from crossrank.cli.common import add_fit_options, passage_pooling, score_split
from crossrank.cli.novelty_guard import fit_guard, guard_collections
from crossrank.data.metrics import mean, ndcg_at_k
from crossrank.io import atomic_file
from crossrank.pipeline.agreement import rank_agreement
from crossrank.pipeline.feedback import hit_vectors
from crossrank.pipeline.fusion import Fusion, first_stage_evidence, fusion_entries
from crossrank.pipeline.fusion_fit import FEEDBACK_GRID, FitQuery, fit_weight
from crossrank.pipeline.novelty import DEFAULT_FLOOR, REFERENCE_FILE
from crossrank.pipeline.stages import HYBRID_SIGNALS
from crossrank.runtime.artifact import Manifest


def fit_fusion(args: argparse.Namespace) -> tuple[Fusion, np.ndarray | None]:
    """(fusion, novelty reference embeddings): the grid weight that maximises mean nDCG@10 of
    the fused top ``top_n`` on ``split``, with the guards fitted on the same split: the
    agreement floor at a low percentile of its agreements, and the novelty guard."""
    collections = guard_collections(args)  # bad split names are refused before the scoring
    signals = evidence_signals(args.retriever, args.evidence)
    if args.feedback_depth < 0:
        raise ValueError(f"expected --feedback-depth >= 0, got {args.feedback_depth}")
    dataset, results = score_split(args, args.split, "fusion fit")
    guard, reference, query_trusts = fit_guard(
        args, collections, [dataset.queries[r.qid] for r in results]
    )

    def metric(hits, judged):
        return lambda s: ndcg_at_k([hits[i].doc_id for i in np.argsort(-s, kind="stable")], judged)

    lists = [
        FitQuery(
            r.scores,
            first_stage_evidence(r.hits, signals),
            metric(r.hits, dataset.qrels[r.qid]),
            hit_vectors(r.hits),
        )
        for r in results
    ]
    agreements = [rank_agreement(q.cross_encoder, q.first_stage) for q in lists]
    floor = None
    if args.guard_percentile > 0:
        floor = float(np.percentile(agreements, args.guard_percentile))
        floor = floor if floor > 0 else None  # no agreement to lose: the guard stays off
    depth = args.feedback_depth or 3  # 0 turns feedback off; the stored depth stays valid
    # Feedback reads the candidates' bi-encoder vectors: a hybrid first stage's hits carry them.
    with_vectors = all(q.vectors is not None for q in lists)
    feedback = FEEDBACK_GRID if args.feedback_depth and with_vectors else (0.0,)
    fit = fit_weight(
        lists, floor=floor, query_trusts=query_trusts, feedback_grid=feedback, depth=depth
    )
    unguarded = fit_weight(lists, feedback_grid=feedback, depth=depth).value
    without_feedback = {}
    if fit.feedback:
        plain = fit_weight(lists, floor=floor, query_trusts=query_trusts).value
        without_feedback = {f"{args.split}_ndcg@10_fused_without_feedback": plain}
    weight, fused = fit.weight, fit.value
    novel = {}
    if query_trusts is not None:
        novel = {f"{args.split}_share_of_queries_novelty_guarded": float(np.mean(query_trusts < 1))}
    fusion = Fusion(
        weight,
        args.retriever,
        fitted_on=f"{Path(args.data).name}:{args.split}",
        fit={
            f"{args.split}_ndcg@10_fused": fused,
            f"{args.split}_ndcg@10_fused_without_guard": unguarded,
            f"{args.split}_ndcg@10_cross_encoder": mean([q.metric(q.cross_encoder) for q in lists]),
            f"{args.split}_ndcg@10_first_stage": mean([q.metric(q.first_stage) for q in lists]),
            f"{args.split}_rank_agreement_median": float(np.median(agreements)),
            **without_feedback,
            "guard_percentile": args.guard_percentile,
            "precision": args.precision,
            "passages": passage_pooling(args),
            "top_n": args.top_n,
            "queries": len(lists),
            **novel,
        },
        agreement_floor=floor,
        novelty=guard,
        signals=signals,
        feedback=fit.feedback,
        feedback_depth=depth,
    )
    return fusion, reference


def evidence_signals(retriever: str, evidence: str) -> tuple[str, ...]:
    """The first-stage signals a fit reads (empty: the first stage's own score)."""
    if evidence == "signals" and retriever != "hybrid":
        raise ValueError(f"expected --retriever hybrid for --evidence signals, got {retriever!r}")
    if retriever == "hybrid" and evidence in ("auto", "signals"):
        return HYBRID_SIGNALS
    return ()


def run_fuse(args: argparse.Namespace) -> int:
    if args.split == "test":
        raise ValueError("expected a training or dev split for the fit, got 'test'")
    fusion, reference = fit_fusion(args)
    manifest = Manifest.load(args.model)
    if fusion.novelty is not None:
        fusion = save_reference(Path(args.model), manifest, fusion, reference)
    # One fit per kind of first stage: fitting for hybrid keeps the BM25 fit, and the reverse.
    manifest.fusion = {**fusion_entries(manifest.fusion), fusion.first_stage: fusion.to_dict()}
    stale = drop_unused_references(manifest)
    manifest.save(args.model)  # atomic; the graph files and their hashes are untouched
    for name in stale:  # only once the manifest no longer lists them
        (Path(args.model) / name).unlink(missing_ok=True)
    print(json.dumps(manifest.fusion[fusion.first_stage], indent=2))
    return 0


def save_reference(
    model: Path, manifest: Manifest, fusion: Fusion, reference: np.ndarray
) -> Fusion:
    """Write the guard's reference embeddings beside the manifest, named by their content (so a
    crash before the manifest is saved leaves the files it lists intact), list them, and return
    the fusion pointing at them."""
    buffer = io.BytesIO()
    np.save(buffer, reference, allow_pickle=False)
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    name = f"{Path(REFERENCE_FILE).stem}-{digest[:12]}.npy"
    with atomic_file(model / name) as f:
        f.write(buffer.getvalue())
    manifest.files[name] = digest
    return replace(fusion, novelty=replace(fusion.novelty, reference=name))


def drop_unused_references(manifest: Manifest) -> list[str]:
    """Names of reference files no fusion entry reads any more (unlisted from ``manifest``)."""
    used = {e.get("novelty", {}).get("reference") for e in fusion_entries(manifest.fusion).values()}
    stale = [n for n in manifest.files if n.startswith(Path(REFERENCE_FILE).stem) and n not in used]
    for name in stale:
        del manifest.files[name]
    return stale


def add_parser(sub) -> None:
    p = sub.add_parser("fuse", help="fit the first-stage fusion weight on dev into the artifact")
    add_fit_options(p)
    p.add_argument(
        "--guard-percentile",
        type=float,
        default=10.0,
        help="do-no-harm guards: queries whose rank agreement with the first stage is below this "
        "percentile of the split's, or whose novelty (distance to the reference queries) is "
        "above the split's 100 - this percentile, keep a shrinking share of the cross-encoder "
        "(0: both off)",
    )
    p.add_argument(
        "--evidence",
        choices=("auto", "score", "signals"),
        default="auto",
        help="what the fusion reads of the first stage: its score (for hybrid, the RRF score of "
        "ranks), or the sum of its components' z-scored BM25 and cosine scores (signals; auto: "
        "signals for hybrid, the score otherwise)",
    )
    p.add_argument(
        "--feedback-depth",
        type=int,
        default=3,
        help="relevance feedback over a hybrid first stage: fit a weight for each candidate's "
        "bi-encoder likeness to the fused list's top this many (0: no feedback)",
    )
    p.add_argument(
        "--novelty-reference",
        action="append",
        default=[],
        metavar="DATA:SPLIT",
        help="the queries the reranker was trained on, for the novelty guard (repeatable; "
        "default: DATA:train)",
    )
    p.add_argument(
        "--novelty-calibration",
        action="append",
        default=[],
        metavar="DATA:SPLIT",
        help="dev splits whose queries' novelties set the guard's scale (repeatable; default: "
        "the fit split); for a reranker trained on several collections, name each one's dev",
    )
    p.add_argument(
        "--novelty-k",
        type=int,
        default=5,
        help="novelty: 1 - mean cosine to the k nearest reference queries (0: guard off)",
    )
    p.add_argument(
        "--novelty-floor",
        type=float,
        default=DEFAULT_FLOOR,
        help="the least share of the cross-encoder the novelty guard leaves a query, in [0, 1) "
        "(0: the first stage's order beyond dev's most novel query)",
    )
    p.set_defaults(func=run_fuse)
