"""Score fusion: add the first stage's evidence to the cross-encoder's, and rank fusion (RRF)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np


def zscore(scores: np.ndarray) -> np.ndarray:
    """Scores centred and scaled within one query's list (a constant list maps to zeros)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


def interpolate(cross_encoder: np.ndarray, first_stage: np.ndarray, weight: float) -> np.ndarray:
    """``z(cross_encoder) + weight * z(first_stage)`` over one query's candidates.

    With ``weight = 0`` this is the cross-encoder's order; the weight is fitted on dev data.
    """
    cross_encoder, first_stage = np.asarray(cross_encoder), np.asarray(first_stage)
    if cross_encoder.shape != first_stage.shape:
        raise ValueError(
            f"expected one first-stage score per candidate, got {first_stage.shape} "
            f"for {cross_encoder.shape}"
        )
    return zscore(cross_encoder) + weight * zscore(first_stage)


def fit_weight(
    lists: Sequence[tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], float]]],
    grid: Sequence[float] = tuple(np.round(np.arange(0.0, 2.01, 0.05), 2)),
) -> tuple[float, float]:
    """The grid weight that maximises the mean of ``metric(fused scores)`` over queries.

    Each item is (cross-encoder scores, first-stage scores, metric of a score vector).
    Returns (weight, mean metric); ties go to the smaller weight.
    """
    best = (0.0, -1.0)
    for w in grid:
        value = float(np.mean([metric(interpolate(ce, fs, w)) for ce, fs, metric in lists]))
        if value > best[1] + 1e-12:
            best = (float(w), value)
    return best


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[str]],
    weights: Mapping[str, float] | None = None,
    k: int = 60,
) -> list[tuple[str, float]]:
    """RRF (Cormack et al., 2009): ``sum_r weight_r / (k + rank_r(d))``, ranks from 1.

    ``rankings`` maps a system name to its ranked doc ids; returns (doc id, score), best first,
    ties broken by first appearance.
    """
    weights = weights or {}
    scores: dict[str, float] = {}
    for name, ranked in rankings.items():
        w = weights.get(name, 1.0)
        for rank, doc in enumerate(ranked, start=1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])
