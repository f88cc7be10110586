"""Ranking metrics with trec_eval semantics, as pure functions of a ranked id list and qrels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def _unique(ranked: Sequence[str]) -> list[str]:
    """A ranking lists each document once (trec_eval keeps the first occurrence)."""
    return list(dict.fromkeys(ranked))


def dcg(gains: Sequence[float], k: int = 10) -> float:
    """DCG@k with linear gains (trec_eval's ``ndcg_cut``): gain / log2(rank + 1), ranks from 1;
    negative grades count as 0."""
    return sum(max(g, 0) / math.log2(i + 2) for i, g in enumerate(gains[:k]))


def ideal_dcg(judged: Mapping[str, int], k: int = 10) -> float:
    """The DCG@k of the best ranking of all judged documents."""
    return dcg(sorted((g for g in judged.values() if g > 0), reverse=True), k)


def ndcg_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """Graded nDCG@k: :func:`dcg` of the ranking over :func:`ideal_dcg` of the judgments."""
    idcg = ideal_dcg(judged, k)
    return dcg([judged.get(d, 0) for d in _unique(ranked)], k) / idcg if idcg > 0 else 0.0


def mrr_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant (grade > 0) document in the top k."""
    for i, d in enumerate(_unique(ranked)[:k]):
        if judged.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def recall_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top k."""
    relevant = {d for d, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_unique(ranked)[:k])) / len(relevant)


def map_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = 100) -> float:
    """Average precision over the top k, divided by all relevant documents (trec_eval's map_cut)."""
    ranked = _unique(ranked)
    relevant = {d for d, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, d in enumerate(ranked[:k]):
        if d in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / len(relevant)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 for no values)."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else 0.0
