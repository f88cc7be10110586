"""The agreement guard of fusion ("do no harm"): how far one query's cross-encoder order agrees
with its first stage's, and the share of the cross-encoder a query keeps."""

from __future__ import annotations

import numpy as np


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(len(scores))
    _, groups, counts = np.unique(scores, return_inverse=True, return_counts=True)
    return (np.bincount(groups, weights=ranks) / counts)[groups]


def rank_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two score vectors over one query's candidates (0 when one is constant)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"expected two score vectors of one shape, got {a.shape} and {b.shape}")
    if a.size < 2:
        return 0.0
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def trust(cross_encoder: np.ndarray, first_stage: np.ndarray, floor: float | None) -> float:
    """How much of the cross-encoder one query keeps, in [0, 1] (the "do no harm" guard).

    A cross-encoder trained here is distilled from the first stages, so in its own domain it
    agrees with them in rank on most queries. ``floor`` is the agreement of the dev split's
    least-agreeing queries (a low percentile); a query below it is read as out of the model's
    domain, and its trust falls linearly to 0 at no agreement, leaving the first stage's order.
    """
    if floor is None or floor <= 0:
        return 1.0
    return float(np.clip(rank_agreement(cross_encoder, first_stage) / floor, 0.0, 1.0))
