"""WordPiece (BERT) pair tokenizer over a Hugging Face ``tokenizer.json``.

Reranking reads at most ``max_length`` tokens of each document, but tokenizing a whole
abstract costs far more than the window. For BERT's own pipeline, :class:`FastWordPiece`
walks a text word by word and stops when the window is full. Other tokenizers, and texts
with ASCII control characters, go through ``tokenizers`` in spans: cut at a whitespace a
little past what the window can hold and continued from that cut only when too short, which
gives exactly the tokens of the full text (see :func:`span_end`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossrank.runtime import fast_wordpiece
from crossrank.runtime.fast_wordpiece import FastWordPiece
from crossrank.runtime.tokenization import Encoded, check_texts, pack_pairs, query_cap

# Pre-tokenizers that split on every whitespace character, for which a cut there is exact.
_WHITESPACE_SPLITTING = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}


def clip_at_whitespace(text: str, limit: int) -> str:
    """``text`` cut before the last space, tab or newline within its first ``limit`` chars
    (before the first one after them when there is none within).

    With a normalizer that works character by character and a pre-tokenizer that splits on
    whitespace, the tokens of the clipped text are a prefix of the full text's tokens. A text
    with no whitespace after its first character is returned whole.
    """
    return text[: span_end(text, 0, limit)]


def span_end(text: str, start: int, limit: int) -> int:
    """Where a span of ``text`` from ``start`` ends: at the last space, tab or newline within
    ``limit`` characters (after ``start``), else at the first one after them (a word longer
    than the span), else at the end of the text (see :func:`clip_at_whitespace`, which is
    ``text[:span_end(text, 0, limit)]``)."""
    stop = start + limit
    if stop >= len(text):
        return len(text)
    cut = max(
        text.rfind(" ", start + 1, stop),
        text.rfind("\n", start + 1, stop),
        text.rfind("\t", start + 1, stop),
    )
    if cut > start:
        return cut
    after = [
        i for i in (text.find(" ", stop), text.find("\n", stop), text.find("\t", stop)) if i != -1
    ]
    return min(after, default=len(text))


class WordPieceTokenizer:
    """A Hugging Face ``tokenizer.json`` (WordPiece/BERT) read with the ``tokenizers`` library.

    Queries and documents are encoded without special tokens and packed by
    :func:`~crossrank.runtime.tokenization.pack_pairs`, so the truncation rule is the same as the
    hashing tokenizer's. The file's own truncation and padding settings are switched off.
    """

    kind = "wordpiece"

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer

        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"expected a tokenizer.json at {path}, found none")
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise ValueError(f"{path}: not a readable tokenizer.json ({exc})") from exc
        self._tok.no_truncation()
        self._tok.no_padding()
        self.path = path
        self.vocab_size = self._tok.get_vocab_size()
        self.cls_id = self._special("[CLS]")
        self.sep_id = self._special("[SEP]")
        self.pad_id = self._special("[PAD]")
        self._exact_clip = type(self._tok.pre_tokenizer).__name__ in _WHITESPACE_SPLITTING
        self._fast = FastWordPiece.for_tokenizer(self._tok.to_str(), self._word_ids)

    def _word_ids(self, word: str) -> list[int]:
        return self._tok.encode(word, add_special_tokens=False).ids

    def _special(self, token: str) -> int:
        token_id = self._tok.token_to_id(token)
        if token_id is None:
            raise ValueError(f"{self.path}: expected a {token} token in the vocabulary")
        return token_id

    def token_ids(self, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
        """Token ids of each text, exact in at least their first ``max_tokens`` tokens: by
        :class:`FastWordPiece` where it applies, else by spans of ``tokenizers``."""
        fast = self._fast
        out: list[list[int]] = [[] for _ in texts]
        rest = []
        for i, text in enumerate(texts):
            if fast is not None and fast.accepts(text):
                out[i] = fast.ids(text, max_tokens)
            else:
                rest.append(i)
        if rest:
            spans = self._span_ids([texts[i] for i in rest], max_tokens)
            for i, ids in zip(rest, spans, strict=True):
                out[i] = ids
        return out

    def _span_ids(self, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
        """Token ids by the ``tokenizers`` pipeline, reading each text in spans."""
        chars_per_token = fast_wordpiece.CHARS_PER_TOKEN  # the span length both paths read
        if not self._exact_clip:  # unknown pre-tokenizer: read a generous fixed span
            limit = max_tokens * 2 * chars_per_token
            return [e.ids for e in self._encode([t[:limit] for t in texts])]
        ends = [span_end(t, 0, int(max_tokens * chars_per_token)) for t in texts]
        ids = [e.ids for e in self._encode([t[:end] for t, end in zip(texts, ends, strict=True)])]
        # A span that gave too few tokens is continued from where it stopped, a whitespace, so
        # the continuation's tokens follow the span's exactly; nothing is read twice.
        todo = [i for i, t in enumerate(texts) if ends[i] < len(t) and len(ids[i]) < max_tokens]
        while todo:
            starts = [ends[i] for i in todo]
            for i, start in zip(todo, starts, strict=True):
                missing = max_tokens - len(ids[i])
                ends[i] = span_end(texts[i], start, int(missing * chars_per_token) + 1)
            chunks = [texts[i][start : ends[i]] for i, start in zip(todo, starts, strict=True)]
            for i, e in zip(todo, self._encode(chunks), strict=True):
                ids[i] = ids[i] + e.ids
            todo = [i for i in todo if ends[i] < len(texts[i]) and len(ids[i]) < max_tokens]
        return ids

    def _encode(self, texts: list[str]) -> list:
        return self._tok.encode_batch_fast(texts, add_special_tokens=False) if texts else []

    def encode_pairs(
        self, queries: Sequence[str], documents: Sequence[str], max_length: int
    ) -> Encoded:
        check_texts(queries, documents)
        unique = list(dict.fromkeys(queries))  # a reranking call repeats one query N times
        by_query = dict(zip(unique, self.token_ids(unique, max_length), strict=True))
        # pack_pairs never keeps more of a document than the window beside the shortest
        # query's kept tokens, so reading further would be thrown away.
        shortest = min(min(len(ids) for ids in by_query.values()), query_cap(max_length))
        return pack_pairs(
            [by_query[q] for q in queries],
            self.token_ids(documents, max_length - 3 - shortest),
            max_length,
            self.cls_id,
            self.sep_id,
            self.pad_id,
        )

    def encode_texts(self, texts: Sequence[str], max_length: int) -> Encoded:
        """Single texts as ``[CLS] text [SEP]`` (type ids 0), for bi-encoders."""
        if isinstance(texts, str):
            raise TypeError("expected a sequence of texts, got a str")
        rows = [
            [self.cls_id, *ids[: max_length - 2], self.sep_id]
            for ids in self.token_ids(list(texts), max_length)
        ]
        width = max((len(r) for r in rows), default=0)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return Encoded(ids, mask, np.zeros_like(ids))

    @property
    def files(self) -> list[Path]:
        """Files an exported artifact must carry."""
        return [self.path]

    def config(self) -> dict:
        return {"kind": self.kind, "file": "tokenizer.json"}
