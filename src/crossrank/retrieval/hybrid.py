"""Hybrid first stage: reciprocal rank fusion of several retrievers' lists, and the per-list
z-scores that score fusion (pipeline) and the training teacher share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from crossrank.retrieval.base import Hit, Retriever


def zscore(scores: np.ndarray) -> np.ndarray:
    """Scores centred and scaled within one query's list (a constant list maps to zeros)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    centred = scores - scores.mean()
    std = centred.std()
    # The mean of equal values can be off by a rounding step, leaving a "spread" of ~1e-17
    # that dividing would blow up to +-1: a spread within rounding of the values is none.
    if std <= 8 * np.finfo(np.float64).eps * np.abs(scores).max():
        return np.zeros_like(scores)
    return centred / std


def zscore_sum(signals: Sequence[np.ndarray]) -> np.ndarray:
    """The sum of each signal's z-score over one query's list: the hybrid first stage's
    evidence for each candidate (the training teacher's score, and what fusion reads)."""
    if not signals:
        raise ValueError("expected at least one signal, got none")
    return np.sum([zscore(s) for s in signals], axis=0)


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
    """Reciprocal rank fusion (k=60) of two first stages, each asked for ``depth`` hits. Each hit
    carries every component's score of it (``Hit.signals``, by component name), also from the
    components whose own list missed it, so that fusion can read the scores, not the ranks, and
    its vector from the first component that embeds documents (``document_vectors``)."""

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
        )[:k]
        ids = [doc for doc, _ in fused]
        scorers = {n: getattr(r, "document_scores", None) for n, r in self.retrievers.items()}
        if not ids or None in scorers.values():  # a component that cannot score any document
            return [
                Hit(doc, score, rank, texts.get(doc)) for rank, (doc, score) in enumerate(fused)
            ]
        scores = {name: score_documents(query, ids) for name, score_documents in scorers.items()}
        embedders = [r for r in self.retrievers.values() if hasattr(r, "document_vectors")]
        vectors = embedders[0].document_vectors(ids) if embedders else [None] * len(ids)
        return [
            Hit(
                doc,
                score,
                rank,
                texts.get(doc),
                {n: float(s[rank]) for n, s in scores.items()},
                vectors[rank],
            )
            for rank, (doc, score) in enumerate(fused)
        ]
