"""Pair tokenizers: pack ``[CLS] query [SEP] document [SEP]`` into int64 numpy arrays.

Nothing here imports torch, so the onnxruntime reranker can use it. The WordPiece tokenizer
(Hugging Face ``tokenizer.json``) lives in :mod:`crossrank.runtime.wordpiece`; both are rebuilt
from an artifact by :func:`crossrank.runtime.tokenizers.tokenizer_from_config`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

MIN_MAX_LENGTH = 8


@dataclass(frozen=True)
class Encoded:
    """A padded batch of packed pairs (all arrays are int64, shape ``[batch, length]``)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }


class PairTokenizer(Protocol):
    """Encodes (query, document) pairs for a cross-encoder."""

    kind: str
    vocab_size: int
    cls_id: int
    sep_id: int
    pad_id: int

    def token_ids(self, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
        """Token ids of each text (no special tokens), exact in at least the first ``max_tokens``."""
        ...

    def encode_pairs(
        self, queries: Sequence[str], documents: Sequence[str], max_length: int
    ) -> Encoded: ...

    def config(self) -> dict: ...


# Unicode categories that carry no readable text: format (zero-width space, joiners, BOM),
# separators, controls, and what BERT's normaliser deletes (private use, surrogates, lone
# combining marks, U+FFFD). A text made only of these is blank: it tokenizes to nothing.
_INVISIBLE = {"Cf", "Zs", "Zl", "Zp", "Cc", "Co", "Cs", "Mn"}


def is_blank(text: str) -> bool:
    """True when ``text`` has no readable character (e.g. only spaces, ``"\\u200b"`` or the
    replacement character ``"\\ufffd"``)."""
    return all(
        ch.isspace() or ch == "\ufffd" or unicodedata.category(ch) in _INVISIBLE for ch in text
    )


def check_texts(queries: Sequence[str], documents: Sequence[str]) -> None:
    """Refuse non-string, blank or mismatched inputs, naming the position of the bad one."""
    if isinstance(queries, str) or isinstance(documents, str):
        raise TypeError("expected sequences of strings for queries and documents, got a str")
    if len(queries) != len(documents):
        raise ValueError(
            f"expected as many queries as documents, got {len(queries)} and {len(documents)}"
        )
    for name, texts in (("query", queries), ("document", documents)):
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{name} {i}: expected str, got {type(text).__name__}")
            if is_blank(text):
                raise ValueError(f"{name} {i}: expected non-empty text, got {text!r}")


def query_cap(max_length: int) -> int:
    """Query tokens always kept when a pair must be cut: a quarter of the window."""
    return max(1, max_length // 4)


def pack_pairs(
    query_ids: Sequence[Sequence[int]],
    document_ids: Sequence[Sequence[int]],
    max_length: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
) -> Encoded:
    """Pack token-id lists into padded arrays, truncating the document first.

    When a pair does not fit, the document is cut first; the query is cut only down to
    ``query_cap(max_length)`` tokens (a quarter of the window), never below. Arrays are padded
    to the longest packed pair, not to ``max_length``.
    """
    if max_length < MIN_MAX_LENGTH:
        raise ValueError(f"expected max_length >= {MIN_MAX_LENGTH}, got {max_length}")
    budget = max_length - 3
    cap = query_cap(max_length)
    rows: list[tuple[list[int], int]] = []
    for q, d in zip(query_ids, document_ids, strict=True):
        q = list(q[: max(cap, budget - len(d))])
        d = list(d[: budget - len(q)])
        rows.append(([cls_id, *q, sep_id, *d, sep_id], len(q) + 2))
    width = max((len(ids) for ids, _ in rows), default=0)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(rows), width), dtype=np.int64)
    types = np.zeros((len(rows), width), dtype=np.int64)
    for i, (ids, query_span) in enumerate(rows):
        input_ids[i, : len(ids)] = ids
        attention[i, : len(ids)] = 1
        types[i, query_span : len(ids)] = 1
    return Encoded(input_ids, attention, types)


_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class HashingTokenizer:
    """Deterministic stdlib word tokenizer: NFKC, lowercase, words hashed with BLAKE2b.

    Ids 0-3 are ``[PAD] [UNK] [CLS] [SEP]``; every word maps to a stable id in
    ``[4, vocab_size)`` on every machine and run (Python's ``hash()`` is salted, so unused).
    """

    kind = "hashing"
    pad_id, unk_id, cls_id, sep_id = 0, 1, 2, 3
    n_special = 4

    def __init__(self, vocab_size: int = 8192, lowercase: bool = True) -> None:
        if vocab_size <= self.n_special:
            raise ValueError(f"expected vocab_size > {self.n_special}, got {vocab_size}")
        self.vocab_size = vocab_size
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text)
        if self.lowercase:
            text = text.lower()
        return _WORD.findall(text)

    def token_id(self, word: str) -> int:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        return self.n_special + int.from_bytes(digest, "little") % (
            self.vocab_size - self.n_special
        )

    def ids(self, text: str, limit: int | None = None) -> list[int]:
        words = self.tokenize(text)
        return [self.token_id(w) for w in words[:limit]]

    def token_ids(self, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
        return [self.ids(t, max_tokens) for t in texts]

    def encode_pairs(
        self, queries: Sequence[str], documents: Sequence[str], max_length: int
    ) -> Encoded:
        check_texts(queries, documents)
        return pack_pairs(
            self.token_ids(queries, max_length),
            self.token_ids(documents, max_length),
            max_length,
            self.cls_id,
            self.sep_id,
            self.pad_id,
        )

    def config(self) -> dict:
        return {"kind": self.kind, "vocab_size": self.vocab_size, "lowercase": self.lowercase}
