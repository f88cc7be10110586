"""Relevance feedback for fusion: the top of the reranked list read as relevant, and each
candidate scored by its likeness to it in a bi-encoder's space."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crossrank.retrieval.base import Hit


def feedback_similarity(scores: np.ndarray, vectors: np.ndarray, depth: int) -> np.ndarray:
    """Relevance feedback: each candidate's cosine to the mean unit vector of the ``depth``
    candidates ``scores`` ranks first (Rocchio in a bi-encoder's space, with the top of the
    reranked list taken as relevant: relevant documents of a query tend to resemble each other,
    so one the cross-encoder under-scores is pulled up by its likeness to the ones it trusts)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(scores):
        raise ValueError(
            f"expected one vector per candidate ({len(scores)}), got shape {vectors.shape}"
        )
    if depth < 1:
        raise ValueError(f"expected a feedback depth >= 1, got {depth}")
    centroid = vectors[np.argsort(-np.asarray(scores), kind="stable")[:depth]].mean(axis=0)
    norm = np.linalg.norm(centroid)
    return vectors @ (centroid / norm) if norm > 0 else np.zeros(len(scores))


def hit_vectors(hits: Sequence[Hit]) -> np.ndarray | None:
    """The hits' vectors as rows (None unless every hit carries one)."""
    if not hits or any(h.vector is None for h in hits):
        return None
    return np.stack([h.vector for h in hits])
