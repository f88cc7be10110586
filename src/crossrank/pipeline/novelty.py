"""The second "do no harm" guard: how far a query lies from the queries the reranker knows.

A cross-encoder fine-tuned on one collection can rank worse than its first stage on another
(RESULTS.md: NFCorpus-trained, zero-shot on SciFact and WikiQA). The guard reads a query's
*novelty*, one minus its mean cosine similarity (bi-encoder embeddings) to its ``k`` nearest
reference queries (the training split's), and compares it with the novelties of dev queries
(the fit split's, or each training collection's dev split for a reranker trained on several:
their novelties differ by collection). A query more novel than all but ``percentile`` % of dev keeps a
share of the cross-encoder equal to the share of dev at least as novel, over ``percentile`` %:
1 at dev's ``100 - percentile``-th percentile, falling to 0 beyond dev's most novel query, which
leaves the first stage's order. Nothing is fitted on the collections it protects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

REFERENCE_FILE = "novelty-reference.npy"  # written as novelty-reference-<sha256[:12]>.npy


class Embedder(Protocol):
    sha256: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def novelty(queries: np.ndarray, reference: np.ndarray, k: int = 5) -> np.ndarray:
    """``1 - mean(top-k cosine)`` of each row of ``queries`` against ``reference`` (both
    L2-normalised embeddings, one row per text)."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    reference = np.asarray(reference, dtype=np.float32)
    if reference.ndim != 2 or reference.shape[1] != queries.shape[1] or len(reference) == 0:
        raise ValueError(
            f"expected reference embeddings of shape (n >= 1, {queries.shape[1]}), "
            f"got {reference.shape}"
        )
    k = min(k, len(reference))
    sims = queries @ reference.T
    top = -np.partition(-sims, k - 1, axis=1)[:, :k]
    return 1.0 - top.mean(axis=1).astype(np.float64)


@dataclass(frozen=True)
class NoveltyGuard:
    """The fitted guard: dev's novelties (sorted), the percentile, and where the reference is."""

    dev_novelty: tuple[float, ...]
    percentile: float = 10.0
    k: int = 5
    reference: str = REFERENCE_FILE  # the reference embeddings, beside the manifest
    bi_encoder_sha256: str = ""  # the bi-encoder that embedded them (and must embed queries)
    fitted_on: str = ""  # e.g. "nfcorpus:train (reference), nfcorpus:dev"

    def __post_init__(self) -> None:
        if not self.dev_novelty:
            raise ValueError("expected the novelties of at least one dev query, got none")
        if not 0 < self.percentile < 100:
            raise ValueError(f"expected a guard percentile in (0, 100), got {self.percentile}")

    def trust(self, value: float) -> float:
        """The cross-encoder's share for a query of novelty ``value``, in [0, 1]."""
        dev = np.asarray(self.dev_novelty)
        at_least = (len(dev) - np.searchsorted(dev, value, side="left")) / len(dev)
        return float(min(1.0, at_least / (self.percentile / 100.0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "dev_novelty": list(self.dev_novelty),
            "percentile": self.percentile,
            "k": self.k,
            "reference": self.reference,
            "bi_encoder_sha256": self.bi_encoder_sha256,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> NoveltyGuard:
        try:
            return cls(
                tuple(sorted(float(v) for v in raw["dev_novelty"])),
                float(raw.get("percentile", 10.0)),
                int(raw.get("k", 5)),
                str(raw.get("reference", REFERENCE_FILE)),
                str(raw.get("bi_encoder_sha256", "")),
                str(raw.get("fitted_on", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(
                f"expected a novelty guard with a 'dev_novelty' list, got {raw!r} ({err})"
            ) from None


def fit_novelty(
    embedder: Embedder,
    reference_queries: Sequence[str],
    dev_queries: Sequence[str],
    percentile: float = 10.0,
    k: int = 5,
    fitted_on: str = "",
    fit_queries: Sequence[str] | None = None,
) -> tuple[NoveltyGuard, np.ndarray, np.ndarray]:
    """(guard, reference embeddings as float16, each fit query's trust): the guard's novelty
    scale comes from ``dev_queries``; the trusts are those of ``fit_queries`` (default: the dev
    queries), the queries the fusion weight is then fitted on."""
    if not reference_queries or not dev_queries:
        raise ValueError(
            f"expected reference and dev queries, got {len(reference_queries)} and "
            f"{len(dev_queries)}"
        )
    reference = embedder.embed(reference_queries).astype(np.float16)
    dev = novelty(embedder.embed(dev_queries), reference, k)
    guard = NoveltyGuard(
        tuple(sorted(float(v) for v in dev)), percentile, k, REFERENCE_FILE, embedder.sha256,
        fitted_on,
    )  # fmt: skip
    fit = dev if fit_queries is None else novelty(embedder.embed(fit_queries), reference, k)
    return guard, reference, np.array([guard.trust(v) for v in fit])


class QueryTrust:
    """A fitted guard bound to its reference embeddings and the bi-encoder: query → trust."""

    def __init__(self, guard: NoveltyGuard, reference: np.ndarray, embedder: Embedder) -> None:
        if guard.bi_encoder_sha256 and embedder.sha256 != guard.bi_encoder_sha256:
            raise ValueError(
                f"expected the bi-encoder {guard.bi_encoder_sha256[:12]}… the novelty guard was "
                f"fitted with, got {embedder.sha256[:12]}…; refit with crossrank fuse"
            )
        self.guard, self.reference, self.embedder = guard, reference.astype(np.float32), embedder
        self._last: tuple[str, float] | None = None  # a caller often asks twice for one query

    def novelty(self, query: str) -> float:
        last = self._last
        if last is not None and last[0] == query:
            return last[1]
        value = float(novelty(self.embedder.embed([query]), self.reference, self.guard.k)[0])
        self._last = (query, value)
        return value

    def __call__(self, query: str) -> float:
        return self.guard.trust(self.novelty(query))


def load_reference(directory: str | Path, guard: NoveltyGuard) -> np.ndarray:
    path = Path(directory) / guard.reference
    reference = np.load(path, allow_pickle=False)
    if reference.ndim != 2:
        raise ValueError(f"{path}: expected a 2-d array of embeddings, got shape {reference.shape}")
    return reference
