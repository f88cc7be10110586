"""Score fusion: add the first stage's evidence to the cross-encoder's.

The one implementation of fusion in the project: :class:`Fusion` (a weight fitted on dev and
stored in the artifact's manifest) applied to a query's candidates by every path that reranks
(pipeline, eval, sweep, service). Rank fusion of first stages (RRF) is a retriever:
:mod:`crossrank.retrieval.hybrid`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class Fusion:
    """``z(cross-encoder) + weight * z(first stage)``, fitted for one kind of first stage."""

    weight: float
    first_stage: str
    normalization: str = "zscore"
    fitted_on: str | None = None
    fit: dict[str, Any] = field(default_factory=dict)  # dev numbers of the fit, for reports

    def apply(self, cross_encoder: np.ndarray, first_stage: np.ndarray) -> np.ndarray:
        return interpolate(cross_encoder, first_stage, self.weight).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.fit,
            "weight": self.weight,
            "first_stage": self.first_stage,
            "normalization": self.normalization,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fusion:
        if raw.get("normalization", "zscore") != "zscore":
            raise ValueError(
                f"expected fusion normalization 'zscore', got {raw['normalization']!r}"
            )
        try:
            weight, first_stage = float(raw["weight"]), str(raw["first_stage"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"expected a fusion entry with 'weight' and 'first_stage', got {raw!r}"
            ) from None
        fit = {
            k: v
            for k, v in raw.items()
            if k not in ("weight", "first_stage", "normalization", "fitted_on")
        }
        return cls(weight, first_stage, "zscore", raw.get("fitted_on"), fit)


def stored_fusion(manifest_fusion: dict | None, first_stage: str) -> Fusion | None:
    """The artifact's fitted fusion when it was fitted for this kind of first stage."""
    if not manifest_fusion:
        return None
    fusion = Fusion.from_dict(manifest_fusion)
    return fusion if fusion.first_stage == first_stage else None
