"""Ranking losses as pure functions over a ``[queries, candidates]`` score matrix.

Each row holds one query's candidates with graded labels (0 = not relevant, higher = better).
Rows may be padded: ``labels < 0`` marks an empty slot that every loss ignores. A score of
``-inf`` (a candidate ruled out) is a limit, not an error: it adds nothing where the target gives
the candidate no weight, so no ``0 * inf`` turns a loss into NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

LossName = Literal["pointwise", "pairwise", "margin", "listwise"]


def _check(scores: torch.Tensor, labels: torch.Tensor) -> None:
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(
            "expected scores and labels of the same shape [queries, candidates], got "
            f"{tuple(scores.shape)} and {tuple(labels.shape)}"
        )


def pointwise_bce(
    scores: torch.Tensor, labels: torch.Tensor, max_grade: float = 2.0
) -> torch.Tensor:
    """Binary cross-entropy against graded targets ``label / max_grade`` (clipped to 1)."""
    _check(scores, labels)
    valid = labels >= 0
    targets = (labels.to(scores.dtype) / max_grade).clamp(0.0, 1.0)
    # PyTorch's BCE computes (1 - y) * x, NaN for x = -inf and y = 1 - y = 0; past |x| = 1e4 the
    # sigmoid is 0 or 1 in every float type, so clamping there changes no finite logit's loss.
    logits = scores[valid].clamp(-1e4, 1e4)
    return F.binary_cross_entropy_with_logits(logits, targets[valid])


def _pair_terms(scores: torch.Tensor, labels: torch.Tensor):
    """Score differences s_i - s_j and grade gaps for every ordered pair with label_i > label_j."""
    diff = scores.unsqueeze(2) - scores.unsqueeze(1)
    gap = (labels.unsqueeze(2) - labels.unsqueeze(1)).to(scores.dtype)
    valid = (labels.unsqueeze(2) >= 0) & (labels.unsqueeze(1) >= 0) & (gap > 0)
    return diff[valid], gap[valid]


def pairwise_ranknet(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """RankNet: ``log(1 + exp(-(s_i - s_j)))`` over pairs where i is graded above j.

    Each pair is weighted by its grade gap, so 2-vs-0 counts twice as much as 1-vs-0.
    """
    _check(scores, labels)
    diff, gap = _pair_terms(scores, labels)
    if diff.numel() == 0:
        return scores.sum() * 0.0
    return (F.softplus(-diff) * gap).sum() / gap.sum()


def pairwise_margin(
    scores: torch.Tensor, labels: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Hinge: ``max(0, margin * gap - (s_i - s_j))`` over pairs where i is graded above j."""
    _check(scores, labels)
    diff, gap = _pair_terms(scores, labels)
    if diff.numel() == 0:
        return scores.sum() * 0.0
    return F.relu(margin * gap - diff).mean()


def listwise_softmax(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy of each row against the target distribution ``2^label - 1``.

    With one positive and n negatives this is the usual InfoNCE / listwise CE; with grades it
    puts more target mass on grade 2 than grade 1. Rows with no positive are skipped.
    """
    _check(scores, labels)
    valid = labels >= 0
    gains = torch.where(valid, torch.exp2(labels.clamp(min=0).to(scores.dtype)) - 1, 0.0)
    totals = gains.sum(dim=1, keepdim=True)
    keep = totals.squeeze(1) > 0
    if not keep.any():
        return scores.sum() * 0.0
    targets = gains[keep] / totals[keep]
    logp = torch.log_softmax(scores[keep].masked_fill(~valid[keep], float("-inf")), dim=1)
    terms = torch.where(targets > 0, targets * logp, torch.zeros_like(logp))
    return -terms.sum(dim=1).mean()


def distill_kl(
    scores: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """KL(teacher || student) between the softmaxes of each row's teacher and student scores.

    The teacher is a first stage that ranks without labels, so every candidate of a group
    carries signal, not only the judged positive. NaN marks a candidate the teacher did not
    score (both sides are renormalised over the rest); rows with fewer than two are skipped.
    """
    if scores.shape != teacher.shape or scores.ndim != 2:
        raise ValueError(
            "expected scores and teacher of the same shape [queries, candidates], got "
            f"{tuple(scores.shape)} and {tuple(teacher.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"expected temperature > 0, got {temperature}")
    known = ~teacher.isnan()
    keep = known.sum(dim=1) >= 2
    if not keep.any():
        return scores.sum() * 0.0
    known, t, s = known[keep], teacher[keep].to(scores.dtype), scores[keep]
    target = torch.softmax((t / temperature).masked_fill(~known, float("-inf")), dim=1)
    logp = torch.log_softmax((s / temperature).masked_fill(~known, float("-inf")), dim=1)
    logq = torch.log(target.clamp(min=1e-12))
    terms = torch.where(known & (target > 0), target * (logq - logp), torch.zeros_like(logp))
    return terms.sum(dim=1).mean() * temperature**2


def answer_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE of the answer head against "label >= 2" (the pair answers the query)."""
    _check(logits, labels)
    valid = labels >= 0
    return F.binary_cross_entropy_with_logits(logits[valid], (labels[valid] >= 2).to(logits.dtype))


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "pointwise": pointwise_bce,
    "pairwise": pairwise_ranknet,
    "margin": pairwise_margin,
    "listwise": listwise_softmax,
}


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Look a loss up by its config name."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"expected a loss in {sorted(LOSSES)}, got {name!r}") from None
