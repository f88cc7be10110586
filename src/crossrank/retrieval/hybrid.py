"""Hybrid first stage: reciprocal rank fusion of several retrievers' lists, and the per-list
z-score that score fusion (pipeline) and the training teacher share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from crossrank.retrieval.base import Hit, Retriever


def zscore(scores: np.ndarray) -> np.ndarray:
    """Scores centred and scaled within one query's list (a constant list maps to zeros)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


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


class HybridRetriever:
    """Reciprocal rank fusion (k=60) of two first stages, each asked for ``depth`` hits."""

    def __init__(
        self,
        retrievers: dict[str, Retriever],
        weights: dict[str, float] | None = None,
        k: int = 60,
        depth: int = 100,
    ) -> None:
        self.retrievers = retrievers
        self.weights = weights or {}
        self.k = k
        self.depth = depth

    def retrieve(self, query: str, k: int) -> list[Hit]:
        lists = {name: r.retrieve(query, max(k, self.depth)) for name, r in self.retrievers.items()}
        texts = {h.doc_id: h.text for hits in lists.values() for h in hits}
        fused = reciprocal_rank_fusion(
            {name: [h.doc_id for h in hits] for name, hits in lists.items()}, self.weights, self.k
        )
        return [Hit(doc, score, r, texts.get(doc)) for r, (doc, score) in enumerate(fused[:k])]
