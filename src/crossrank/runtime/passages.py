"""Long documents: split into overlapping passages that each fit the window, then pool.

A cross-encoder reads ``max_length`` tokens of a pair; the rest of a long document is
invisible to it. Here a document is cut at word boundaries into passages of at most the
window's document budget, consecutive passages overlapping by a quarter of it; each passage
is scored with the query and the document pools them: by default (``first_max``) the mean of
the first passage's score and the best one's; also the max, or the mean of the top 2.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

from crossrank.runtime.tokenization import PairTokenizer, query_cap

# Words, and runs without whitespace (CJK text, URLs, hyphen chains) in pieces of at most 32
# characters: a piece is the smallest unit a passage or a left truncation cuts at.
_WORD = re.compile(r"\S{1,32}")
MAX_PASSAGES = 16  # per document, by default
log = logging.getLogger(__name__)


def token_counts(tokenizer: PairTokenizer, texts: Sequence[str], limit: int) -> list[int]:
    """Tokens per text, exact up to ``limit``."""
    return [len(ids) for ids in tokenizer.token_ids(list(texts), limit)]


def document_budget(tokenizer: PairTokenizer, query: str, max_length: int) -> int:
    """Document tokens that fit beside ``query`` when the document is long (see pack_pairs)."""
    (q,) = token_counts(tokenizer, [query], max_length)
    return max_length - 3 - min(q, query_cap(max_length))


def split_passages(
    tokenizer: PairTokenizer,
    text: str,
    budget: int,
    max_passages: int = MAX_PASSAGES,
    max_tokens: int | None = None,
) -> list[str]:
    """Passages of ``text`` of at most ``budget`` tokens each (a piece longer than the budget
    is its own passage), overlapping by ``budget // 4`` tokens; at most ``max_passages``, and
    only the first ``max_tokens`` tokens of the document when that is given."""
    if budget < 1:
        raise ValueError(f"expected a token budget >= 1, got {budget}")
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    counts = token_counts(tokenizer, [text[a:b] for a, b in spans], budget)
    if max_tokens is not None:
        total, keep = 0, 0
        while keep < len(counts) and total + counts[keep] <= max_tokens:
            total += counts[keep]
            keep += 1
        spans, counts = spans[: max(keep, 1)], counts[: max(keep, 1)]
    if sum(counts) <= budget:
        return [text[spans[0][0] : spans[-1][1]]] if spans else [text]
    stride = budget - budget // 4
    passages, start = [], 0
    while start < len(spans) and len(passages) < max_passages:
        end, used = start, 0
        while end < len(spans) and (used + counts[end] <= budget or end == start):
            used += counts[end]
            end += 1
        passages.append(text[spans[start][0] : spans[end - 1][1]])
        if end == len(spans):
            break
        step, advanced = start, 0
        while step < end - 1 and advanced + counts[step] <= stride:
            advanced += counts[step]
            step += 1
        start = max(step, start + 1)
    return passages


def tail(tokenizer: PairTokenizer, text: str, budget: int) -> str:
    """The longest run of whole pieces at the end of ``text`` that fits ``budget`` tokens
    (left truncation, as TEI's ``truncation_direction: "Left"``)."""
    if budget < 1:
        raise ValueError(f"expected a token budget >= 1, got {budget}")
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    counts = token_counts(tokenizer, [text[a:b] for a, b in spans], budget)
    start, used = len(spans), 0
    while start > 0 and used + counts[start - 1] <= budget:
        used += counts[start - 1]
        start -= 1
    start = min(start, len(spans) - 1)  # a last word over the budget is kept (and cut)
    return text[spans[start][0] : spans[-1][1]] if spans else text


POOLINGS = ("max", "mean_top2", "first_max")


def document_units(
    tokenizer: PairTokenizer,
    query: str,
    documents: Sequence[str],
    max_length: int,
    max_passages: int = MAX_PASSAGES,
    max_tokens: int | None = None,
) -> list[list[str]]:
    """The passages to score for each document beside ``query`` in a ``max_length`` window."""
    budget = document_budget(tokenizer, query, max_length)
    return [split_passages(tokenizer, d, budget, max_passages, max_tokens) for d in documents]


def flatten(units: Sequence[Sequence[str]]) -> list[str]:
    return [t for u in units for t in u]


def pool_units(scores: np.ndarray, units: Sequence[Sequence[str]], method: str) -> np.ndarray:
    """One score per document: the flat passage ``scores`` cut back per document, pooled."""
    parts = np.split(np.asarray(scores), np.cumsum([len(u) for u in units])[:-1])
    return np.array([pool(part, method) for part in parts], dtype=np.float64)


def pool(scores: np.ndarray, method: str = "max") -> float:
    """One document score from its passages' scores, in document order: ``max``; ``mean_top2``
    (the best two); ``first_max`` (the mean of the first passage's score and the best one's,
    for documents whose opening, e.g. a title, says what they are about)."""
    if scores.size == 0:
        raise ValueError("expected at least one passage score, got none")
    if method == "max":
        return float(scores.max())
    if method == "mean_top2":
        return float(np.sort(scores)[-2:].mean())
    if method == "first_max":
        return float((scores[0] + scores.max()) / 2)
    raise ValueError(f"expected pooling in {list(POOLINGS)}, got {method!r}")


class PassageScorer:
    """A scorer (``score(query, documents)``) that reads whole documents: each is split into
    passages that fit the reranker's window, and its score pools theirs.

    ``passages_scored`` counts the passages of the last call, per document.
    """

    def __init__(
        self, reranker, pooling: str = "first_max", max_passages: int = MAX_PASSAGES
    ) -> None:
        pool(np.zeros(1), pooling)  # reject an unknown pooling now, not mid-run
        self.reranker = reranker
        self.pooling = pooling
        self.max_passages = max_passages
        self.passages_scored: list[int] = []

    def score(self, query: str, documents: Sequence[str]) -> np.ndarray:
        r = self.reranker
        units = document_units(r.tokenizer, query, documents, r.max_length, self.max_passages)
        flat = flatten(units)
        scores = r.score_pairs([query] * len(flat), flat)
        self.passages_scored = [len(u) for u in units]
        return pool_units(scores, units, self.pooling).astype(np.float32)


def reading(pooling: str | None) -> str:
    """How documents are read: ``truncated`` (``pooling`` None) or ``passages (<pooling>)``."""
    return "truncated" if pooling is None else f"passages ({pooling})"


def warn_on_reading_change(what: str, fitted: str | None, used: str | None) -> None:
    """Log a warning when a fit (``what``: a fusion, a calibration) made on scores of documents
    read one way (``fitted``: a pooling, None: truncated) is applied to scores read another way.
    It still applies, but was chosen for the scores it saw."""
    if fitted == used:
        return
    refit = "without --passages" if used is None else f"with --passages --pooling {used}"
    log.warning(
        "%s was fitted on %s documents, applied to %s ones; refit it %s",
        what,
        reading(fitted),
        reading(used),
        refit,
    )
