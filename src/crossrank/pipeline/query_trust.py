"""``QueryTrust``: a fitted novelty guard at query time, bound to its reference embeddings and
its bi-encoder (query → trust in [0, 1])."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossrank.pipeline.novelty import Embedder, NoveltyGuard
from crossrank.retrieval.base import LastQuery


class QueryTrust:
    """A fitted guard bound to its reference embeddings and the bi-encoder: query → trust."""

    def __init__(self, guard: NoveltyGuard, reference: np.ndarray, embedder: Embedder) -> None:
        if guard.bi_encoder_sha256 and embedder.sha256 != guard.bi_encoder_sha256:
            raise ValueError(
                f"expected the bi-encoder {guard.bi_encoder_sha256[:12]}… the novelty guard was "
                f"fitted with, got {embedder.sha256[:12]}…; refit with crossrank fuse"
            )
        guard.slices(len(reference))  # a reference that does not match the scales fails here
        self.guard, self.reference, self.embedder = guard, reference.astype(np.float32), embedder
        self._novelties = LastQuery(
            lambda queries: self.guard.novelties(self.embedder.embed(queries), self.reference)
        )

    def novelties(self, query: str) -> np.ndarray:
        """The query's novelty against each training collection."""
        return self._novelties([query])[0]

    def __call__(self, query: str) -> float:
        return self.guard.trust(self.novelties(query))


def load_reference(directory: str | Path, guard: NoveltyGuard) -> np.ndarray:
    """The guard's reference embeddings (one row per training query) from its artifact."""
    path = Path(directory) / guard.reference
    reference = np.load(path, allow_pickle=False)
    if reference.ndim != 2:
        raise ValueError(f"{path}: expected a 2-d array of embeddings, got shape {reference.shape}")
    return reference
