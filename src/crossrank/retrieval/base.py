"""The first-stage interface: anything that returns the top-k hits for a query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Hit:
    """One retrieved document: its id, first-stage score, 0-based rank and (if known) text."""

    doc_id: str
    score: float
    rank: int
    text: str | None = None


@runtime_checkable
class Retriever(Protocol):
    """A first stage: ``retrieve(query, k)`` returns at most ``k`` hits, best first."""

    def retrieve(self, query: str, k: int) -> list[Hit]: ...


class CorpusRetriever:
    """Base of the retrievers over an indexed corpus: ``retrieve`` is ``retrieve_many`` of one
    query, and both check ``k``; subclasses implement :meth:`_search` for ``1 <= k <= len(doc_ids)``."""

    doc_ids: list[str]

    def retrieve(self, query: str, k: int) -> list[Hit]:
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """Top-``k`` hits for each query, best first."""
        if k <= 0:
            raise ValueError(f"expected k >= 1, got {k}")
        return self._search(list(queries), min(k, len(self.doc_ids)))

    def _search(self, queries: list[str], k: int) -> list[list[Hit]]:
        raise NotImplementedError
