"""Platt scaling: map raw cross-encoder logits to calibrated probabilities of relevance.

``p = sigmoid(a * logit + b)``, fitted by maximum likelihood on judged (logit, label) pairs
from a dev split, with Platt's smoothed targets so that separable data keeps a finite slope.
The fit is stored in the artifact's ``crossrank.json`` under ``"calibration"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def fit_platt(logits: Sequence[float], labels: Sequence[int], iterations: int = 100) -> dict:
    """(a, b) of Platt scaling by Newton's method on the smoothed log-loss.

    ``labels`` are 0/1. Raises ValueError when either class is missing: a calibration
    needs both relevant and non-relevant examples.
    """
    s = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(
            f"expected equal-length 1-D logits and labels, got {s.shape} and {y.shape}"
        )
    if not np.isfinite(s).all():
        raise ValueError("expected finite logits, got NaN or infinity")
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise ValueError(f"expected 0/1 labels, got values {sorted(set(np.unique(y)))[:5]}")
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if positives == 0 or negatives == 0:
        raise ValueError(
            f"expected both classes, got {positives} positives and {negatives} negatives"
        )
    # Platt (1999): targets (N+ + 1)/(N+ + 2) and 1/(N- + 2) instead of 1 and 0.
    t = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    a, b = 1.0, float(np.log((positives + 1) / (negatives + 1)))
    for _ in range(iterations):
        p = sigmoid(a * s + b)
        grad = np.array([np.sum((p - t) * s), np.sum(p - t)])
        w = p * (1 - p) + 1e-12
        hess = np.array([[np.sum(w * s * s), np.sum(w * s)], [np.sum(w * s), np.sum(w)]])
        step = np.linalg.solve(hess + 1e-9 * np.eye(2), grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return {
        "method": "platt",
        "a": float(a),
        "b": float(b),
        "pairs": len(s),
        "positives": positives,
    }


def calibrate(logits: np.ndarray, calibration: dict | None) -> np.ndarray:
    """Calibrated probabilities; a plain sigmoid of the logits when there is no calibration."""
    if not calibration:
        return sigmoid(logits)
    return sigmoid(calibration["a"] * np.asarray(logits, dtype=np.float64) + calibration["b"])


def reliability(probabilities: Sequence[float], labels: Sequence[int], bins: int = 10) -> dict:
    """Brier score and expected calibration error (equal-width bins) of probabilities."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    edges = np.minimum((p * bins).astype(int), bins - 1)
    ece = sum(
        abs(p[edges == k].mean() - y[edges == k].mean()) * (edges == k).mean()
        for k in range(bins)
        if (edges == k).any()
    )
    return {"brier": float(np.mean((p - y) ** 2)), "ece": float(ece)}
