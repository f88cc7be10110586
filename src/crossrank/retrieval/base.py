"""The first-stage interface: anything that returns the top-k hits for a query."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Hit:
    """One retrieved document: its id, first-stage score, 0-based rank, (if known) text, and
    (from a hybrid first stage) each component retriever's score of it, by name, and its unit
    bi-encoder vector (what fusion's relevance feedback reads)."""

    doc_id: str
    score: float
    rank: int
    text: str | None = None
    signals: Mapping[str, float] | None = field(default=None, hash=False)  # hits stay hashable
    vector: np.ndarray | None = field(default=None, hash=False, compare=False, repr=False)


T = TypeVar("T")


class LastQuery(Generic[T]):
    """``derive(queries)`` that keeps its value for the last single query: a hybrid first stage
    asks a component for a query's list, then for its candidates' scores, and a caller of the
    novelty guard asks twice, each time for the same query's terms or vector."""

    def __init__(self, derive: Callable[[list[str]], T]) -> None:
        self.derive = derive
        self._last: tuple[str, T] | None = None  # one tuple, swapped whole: safe across threads

    def __call__(self, queries: Sequence[str]) -> T:
        queries = list(queries)
        last = self._last
        if len(queries) == 1 and last is not None and last[0] == queries[0]:
            return last[1]
        value = self.derive(queries)
        if len(queries) == 1:
            self._last = (queries[0], value)
        return value


@runtime_checkable
class Retriever(Protocol):
    """A first stage: ``retrieve(query, k)`` returns at most ``k`` hits, best first."""

    def retrieve(self, query: str, k: int) -> list[Hit]: ...


class CorpusRetriever:
    """Base of the retrievers over an indexed corpus: ``retrieve`` is ``retrieve_many`` of one
    query, and both check ``k``; subclasses implement :meth:`_search` for ``1 <= k <= len(doc_ids)``."""

    doc_ids: list[str]
    _positions: dict[str, int] | None = None

    def retrieve(self, query: str, k: int) -> list[Hit]:
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """Top-``k`` hits for each query, best first."""
        if k <= 0:
            raise ValueError(f"expected k >= 1, got {k}")
        return self._search(list(queries), min(k, len(self.doc_ids)))

    def document_scores(self, query: str, doc_ids: Sequence[str]) -> np.ndarray:
        """The query's score of each of ``doc_ids`` (any documents of the corpus, retrieved or
        not), on the scale of :meth:`retrieve`'s scores."""
        raise NotImplementedError

    def _position(self, doc_ids: Sequence[str]) -> np.ndarray:
        if self._positions is None:
            self._positions = {d: i for i, d in enumerate(self.doc_ids)}
        try:
            return np.array([self._positions[d] for d in doc_ids], dtype=np.int64)
        except KeyError as e:
            raise KeyError(
                f"expected documents of this corpus, got unknown id {e.args[0]!r}"
            ) from None

    def _search(self, queries: list[str], k: int) -> list[list[Hit]]:
        raise NotImplementedError
