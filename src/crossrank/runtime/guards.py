"""Warnings about inputs that run but are probably not what the caller meant."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence

from crossrank.runtime.tokenization import PairTokenizer

log = logging.getLogger("crossrank")
_warned: set[str] = set()
LONG_QUERY_TOKENS = 64
QUERY_TO_DOCUMENT = 4.0


def warn_once(key: str, message: str, *args, level: int = logging.WARNING) -> bool:
    """Log ``message`` the first time ``key`` is seen in this process; True when it logged."""
    if key in _warned:
        return False
    _warned.add(key)
    log.log(level, message, *args)
    return True


def log_once(key: str, message: str, *args) -> bool:
    """:func:`warn_once` at INFO level: a choice worth one line, not a warning."""
    return warn_once(key, message, *args, level=logging.INFO)


def looks_swapped(tokenizer: PairTokenizer, query: str, documents: Sequence[str]) -> bool:
    """A "query" over 64 tokens and over 4x the median document's length (in characters)
    is most likely a document passed as the query: the pair order matters to a cross-encoder."""
    if not documents or len(query) <= QUERY_TO_DOCUMENT * statistics.median(map(len, documents)):
        return False
    (ids,) = tokenizer.token_ids([query], LONG_QUERY_TOKENS + 1)
    return len(ids) > LONG_QUERY_TOKENS


def warn_if_swapped(tokenizer: PairTokenizer, query: str, documents: Sequence[str]) -> None:
    if looks_swapped(tokenizer, query, documents):
        warn_once(
            "swapped",
            "the query (%d characters) is over %gx longer than the median document and over "
            "%d tokens: are query and documents swapped? A cross-encoder reads "
            "[CLS] query [SEP] document [SEP] and scores a swapped pair differently",
            len(query),
            QUERY_TO_DOCUMENT,
            LONG_QUERY_TOKENS,
        )
