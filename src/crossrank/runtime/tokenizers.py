"""Rebuild an artifact's pair tokenizer from the ``tokenizer`` entry of its manifest."""

from __future__ import annotations

from pathlib import Path

from crossrank.runtime.tokenization import HashingTokenizer, PairTokenizer
from crossrank.runtime.wordpiece import WordPieceTokenizer


def tokenizer_from_config(config: dict, directory: str | Path | None = None) -> PairTokenizer:
    """The tokenizer :meth:`PairTokenizer.config` describes (files resolved in ``directory``)."""
    kind = config.get("kind")
    if kind == "hashing":
        return HashingTokenizer(config["vocab_size"], config.get("lowercase", True))
    if kind == "wordpiece":
        base = Path(directory) if directory is not None else Path(config["path"])
        return WordPieceTokenizer(base / config.get("file", "tokenizer.json"))
    raise ValueError(f"expected tokenizer kind 'hashing' or 'wordpiece', got {kind!r}")
