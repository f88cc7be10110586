"""The first-stage interface: anything that returns the top-k hits for a query."""

from __future__ import annotations

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
