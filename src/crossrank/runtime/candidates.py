"""A reranked candidate, and reading the candidates a caller passes (str, mapping or object)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ranked:
    """A reranked candidate: its position in the caller's list, its id, its score, and (when
    the model has an answer head) the probability that it answers the query."""

    index: int
    id: str
    score: float
    answer: float | None = None


def candidate(c: Any, i: int) -> tuple[str, str]:
    """(id, text) of a candidate: a str, a ``{"id"?, "text"}`` mapping or an object with ``text``."""
    if isinstance(c, str):
        return str(i), c
    if isinstance(c, dict):
        text = c.get("text")
        doc_id = c.get("id", c.get("_id", i))
    else:
        text = getattr(c, "text", None)
        doc_id = getattr(c, "id", getattr(c, "doc_id", i))
    if not isinstance(text, str):
        raise TypeError(
            f"candidate {i}: expected a str or an item with a 'text' str, got "
            f"{type(c).__name__} with text {type(text).__name__}"
        )
    return str(doc_id), text
