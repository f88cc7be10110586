"""BERT WordPiece in plain Python that reads a document no further than the window needs.

Reranking keeps only the first few hundred tokens of a document, but the ``tokenizers``
library normalizes and pre-tokenizes all the text it is given before it matches one piece.
Here a regular expression walks the text one word at a time and stops once enough tokens are
found. BERT's pre-tokenizer splits at whitespace and at every ASCII symbol, and its
normalizer maps ASCII characters only by lowercasing, so:
- a word of ASCII letters and digits becomes its vocabulary id when the vocabulary holds it
  whole (greedy longest-match takes the whole word first), else its greedy pieces;
- a word with any other character goes to the full ``tokenizers`` pipeline on its own, which
  is exact because no normalization step crosses an ASCII space or symbol (they are Unicode
  starters, and accents, lowercasing and CJK spacing act within the word).
Texts with ASCII control characters (which the normalizer deletes, joining their
neighbours) or with an added token's text (``[SEP]``: matched in the raw text before anything
else) are not for this path. Split words are remembered between calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from itertools import chain

# One word (a run of anything but ASCII whitespace and ASCII symbols) or one ASCII symbol.
_SYMBOLS = r"!-/:-@\[-`{-~"
_PIECE = re.compile(rf"[^\s{_SYMBOLS}]+|[{_SYMBOLS}]", re.ASCII)
# Characters the normalizer deletes (tab, newline and return are whitespace to it).
ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Characters read per missing token before looking again (here and in the ``tokenizers`` spans
# of runtime.wordpiece): English WordPiece averages 4-5, so 6 covers nearly every document
# in one pass.
CHARS_PER_TOKEN = 6
# Split words remembered, at most; past that the memory is cleared and refilled.
_MAX_REMEMBERED = 200_000


class FastWordPiece:
    """Token ids of texts under a BERT WordPiece ``tokenizer.json``; ``full`` encodes one word
    through the complete pipeline (for words that are not plain ASCII)."""

    def __init__(
        self,
        vocab: Mapping[str, int],
        unk_id: int,
        full: Callable[[str], list[int]],
        lowercase: bool = True,
        prefix: str = "##",
        max_chars: int = 100,
        added: tuple[str, ...] = (),
    ) -> None:
        self._added = tuple(added)
        self._vocab = dict(vocab)
        self._unk = (unk_id,)
        self._full = full
        self._lowercase = lowercase
        self._prefix = prefix
        self._max_chars = max_chars
        self._whole = {w: (i,) for w, i in self._vocab.items() if not w.startswith(prefix)}
        self._longest = max((len(w) for w in self._vocab), default=0)  # no longer piece matches
        # First characters of the added tokens, in both cases: a text without any skips the
        # search for them.
        self._added_starts = {c for t in self._added for c in (t[:1], t[:1].lower()) if c}
        self.forget()

    def forget(self) -> None:
        """Drop the split words remembered so far (the vocabulary's whole words stay)."""
        # Words of all-ASCII texts, lowercased (the vocabulary's whole words included), and
        # words of other texts as written: the two never share a key's meaning.
        self._known: dict[str, tuple[int, ...]] = dict(self._whole)
        self._raw: dict[str, tuple[int, ...]] = {}
        self._remembered = 0

    @classmethod
    def for_tokenizer(cls, serialized: str, full: Callable[[str], list[int]]):
        """The fast path for a serialized ``tokenizer.json``, or None when it would not give
        exactly that tokenizer's ids (not BERT's normalizer, pre-tokenizer and WordPiece)."""
        spec = json.loads(serialized)
        normalizer = spec.get("normalizer") or {}
        model = spec.get("model") or {}
        if (
            normalizer.get("type") != "BertNormalizer"
            or (spec.get("pre_tokenizer") or {}).get("type") != "BertPreTokenizer"
            or model.get("type") != "WordPiece"
            or model.get("unk_token") not in model.get("vocab", {})
        ):
            return None
        return cls(
            model["vocab"],
            model["vocab"][model["unk_token"]],
            full,
            lowercase=bool(normalizer.get("lowercase", True)),
            prefix=model.get("continuing_subword_prefix", "##"),
            max_chars=int(model.get("max_input_chars_per_word", 100)),
            added=tuple(t["content"] for t in spec.get("added_tokens") or [] if t.get("content")),
        )

    def accepts(self, text: str) -> bool:
        """Whether ``text`` may take this path: no ASCII control characters and no added
        token's text in any case (``tokenizers`` matches added tokens before normalizing)."""
        if ASCII_CONTROL.search(text) is not None:
            return False
        if not any(c in text for c in self._added_starts):
            return True
        lowered = text.lower()
        return not any(t in text or t.lower() in lowered for t in self._added)

    def ids(self, text: str, max_tokens: int | None = None) -> list[int]:
        """The ids of ``text``: all of them, or at least the first ``max_tokens``. The text is
        read in spans that end at a space (no word is cut), continued while too short."""
        plain = text.isascii()
        known = self._known if plain else self._raw
        out: list[int] = []
        start = 0
        while start < len(text):
            stop = len(text)
            if max_tokens is not None:
                stop = text.find(" ", start + (max_tokens - len(out)) * CHARS_PER_TOKEN)
                stop = len(text) if stop == -1 else stop
            span = text[start:stop].lower() if plain and self._lowercase else text[start:stop]
            words = _PIECE.findall(span)
            # Dictionary lookups and the flattening run in C; only unseen words cost Python.
            parts = list(map(known.get, words))
            if None in parts:
                k = parts.index(None)
                while True:
                    parts[k] = self._pieces(words[k], plain, known)
                    try:
                        k = parts.index(None, k + 1)
                    except ValueError:
                        break
            out.extend(chain.from_iterable(parts))
            if max_tokens is not None and len(out) >= max_tokens:
                break
            start = stop
        return out

    def _pieces(self, word: str, plain: bool, known: dict) -> tuple[int, ...]:
        """The pieces of an unseen ``word``, remembered in ``known``."""
        pieces = known.get(word)
        if pieces is not None:  # seen earlier in the same span
            return pieces
        if plain:
            pieces = self._greedy(word)
        elif word.isascii():
            lowered = word.lower() if self._lowercase else word
            pieces = self._whole.get(lowered) or self._greedy(lowered)
        else:
            pieces = tuple(self._full(word))
        if self._remembered >= _MAX_REMEMBERED:
            self.forget()
        self._remembered += 1
        known[word] = pieces
        return pieces

    def _greedy(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match-first pieces of an ASCII ``word``; the unknown token when a
        part matches nothing or the word is longer than ``max_chars``."""
        if len(word) > self._max_chars:
            return self._unk
        found, start = [], 0
        while start < len(word):
            reach = self._longest - (len(self._prefix) if start else 0)
            for end in range(min(len(word), start + reach), start, -1):
                piece = word[start:end] if start == 0 else self._prefix + word[start:end]
                token = self._vocab.get(piece)
                if token is not None:
                    found.append(token)
                    start = end
                    break
            else:
                return self._unk
        return tuple(found)
