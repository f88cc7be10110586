"""Fitting fusion's weights on a dev split: a grid search over the first stage's weight and
relevance feedback's, with the guards the fit is given."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from crossrank.pipeline.agreement import trust
from crossrank.pipeline.fusion import feedback_direction, interpolate

WEIGHT_GRID = tuple(np.round(np.arange(0.0, 3.01, 0.05), 2))
FEEDBACK_GRID = tuple(np.round(np.arange(0.0, 3.01, 0.1), 1))


class FitQuery(NamedTuple):
    """One dev query for :func:`fit_weight`: its candidates' cross-encoder and first-stage
    scores, the metric of a score vector, and (for feedback) the candidates' vectors."""

    cross_encoder: np.ndarray
    first_stage: np.ndarray
    metric: Callable[[np.ndarray], float]
    vectors: np.ndarray | None = None


class WeightFit(NamedTuple):
    weight: float
    value: float  # the mean metric at the fitted weights
    feedback: float = 0.0


def fit_weight(
    lists: Sequence[tuple],
    grid: Sequence[float] = WEIGHT_GRID,
    floor: float | None = None,
    query_trusts: Sequence[float] | None = None,
    feedback_grid: Sequence[float] = (0.0,),
    depth: int = 3,
) -> WeightFit:
    """The grid weights (first stage x feedback) that maximise the mean of ``metric(fused
    scores)`` over queries.

    Each item is a :class:`FitQuery` or a tuple of its fields; ``floor`` is the agreement
    guard's (see :func:`trust`), ``query_trusts`` each query's novelty guard trust
    (:mod:`crossrank.pipeline.novelty`); a query keeps the smaller. The fused scores are
    :func:`~crossrank.pipeline.fusion.fuse`'s. Ties go to the smaller feedback weight, then the
    smaller first-stage weight.
    """
    if not lists:
        raise ValueError("expected at least one query's scores to fit the weight on, got none")
    if not len(grid) or not len(feedback_grid):
        raise ValueError("expected at least one candidate weight in the grid, got none")
    queries = [FitQuery(*item) for item in lists]
    feedback_grid = sorted(feedback_grid)
    if any(feedback_grid) and any(q.vectors is None for q in queries):
        raise ValueError("expected candidate vectors on every query to fit feedback, got none")
    query_trusts = [1.0] * len(queries) if query_trusts is None else list(query_trusts)
    if len(query_trusts) != len(queries):
        raise ValueError(f"expected {len(queries)} query trusts, got {len(query_trusts)}")
    trusts = [
        min(trust(q.cross_encoder, q.first_stage, floor), t)
        for q, t in zip(queries, query_trusts, strict=True)
    ]
    vectors = [None if q.vectors is None else np.asarray(q.vectors, np.float64) for q in queries]
    best = WeightFit(0.0, -1.0)
    for w in sorted(grid):
        fused = [
            interpolate(q.cross_encoder, q.first_stage, w, t)
            for q, t in zip(queries, trusts, strict=True)
        ]
        # The feedback each query's fused list would get per unit weight, computed once per w.
        directions = [
            feedback_direction(f, t, x, depth) if any(feedback_grid) and t > 0 and len(f) else 0.0
            for f, t, x in zip(fused, trusts, vectors, strict=True)
        ]
        for v in feedback_grid:
            value = float(
                np.mean(
                    [
                        q.metric(f + v * d)
                        for q, f, d in zip(queries, fused, directions, strict=True)
                    ]
                )
            )
            # Ties go to the smaller feedback weight, then the smaller first-stage weight.
            if value > best.value + 1e-12 or (
                value > best.value - 1e-12 and (v, w) < (best.feedback, best.weight)
            ):
                best = WeightFit(float(w), value, float(v))
    return best
