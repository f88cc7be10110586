"""Training on the windows documents are read with.

Read with passages (:mod:`crossrank.runtime.passages`), a long document is scored window by
window, and the middle windows have lost the document's opening (often its title). A model
trained on truncated documents only ever saw openings. Here a share of the training groups
show each of their documents as one of its passages, drawn at random, cut exactly as
``--passages`` cuts it at read time; the other groups stay truncated (the opening window).
A windowed document keeps its document's label and teacher score, as passage-level training
(MaxP) does: relevance is judged per document, and a window of a relevant abstract is mostly
about the same topic. Every document of a chosen group is windowed, so that a missing opening
does not itself tell positives from negatives.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence

from crossrank.runtime.passages import MAX_PASSAGES, document_budget, split_passages
from crossrank.runtime.tokenization import PairTokenizer


class PassageWindows:
    """Swaps the documents of a share of training groups for random passages of them.

    ``documents`` come in groups of ``group_size`` (one query's positive and negatives). Which
    groups, and which passage of each document, depend only on ``key`` (e.g. seed, epoch and
    batch): a resumed run sees the same windows. Splits are cached per (document, budget).
    """

    def __init__(
        self,
        tokenizer: PairTokenizer,
        max_length: int,
        share: float,
        max_passages: int = MAX_PASSAGES,
        cache_size: int = 50_000,
    ) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"expected passage_share in [0, 1], got {share}")
        if cache_size < 1:
            raise ValueError(f"expected cache_size >= 1, got {cache_size}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.share = share
        self.max_passages = max_passages
        self.cache_size = cache_size
        self._splits: OrderedDict[tuple[str, int], tuple[str, ...]] = OrderedDict()

    def passages(self, document: str, budget: int) -> tuple[str, ...]:
        """``document`` cut into the passages a ``budget``-token document window reads."""
        key = (document, budget)
        cached = self._splits.get(key)
        if cached is None:
            cached = tuple(split_passages(self.tokenizer, document, budget, self.max_passages))
            self._splits[key] = cached
            if len(self._splits) > self.cache_size:
                self._splits.popitem(last=False)
        else:
            self._splits.move_to_end(key)
        return cached

    def __call__(
        self, queries: Sequence[str], documents: Sequence[str], group_size: int, key: str
    ) -> list[str]:
        """A new list of documents: in each chosen group, every document is one of its
        passages (a document that fits the window is its only passage); the rest as given."""
        if group_size < 1:
            raise ValueError(f"expected group_size >= 1, got {group_size}")
        if len(queries) != len(documents) or len(documents) % group_size:
            raise ValueError(
                f"expected as many queries as documents, in whole groups of {group_size}, got "
                f"{len(queries)} queries and {len(documents)} documents"
            )
        out = list(documents)
        if not self.share:
            return out
        for start in range(0, len(out), group_size):
            if len(set(queries[start : start + group_size])) != 1:
                raise ValueError(f"expected one query per group, got a group at {start} with more")
            rng = random.Random(f"{key}:{start // group_size}")
            if rng.random() >= self.share:
                continue
            budget = document_budget(self.tokenizer, queries[start], self.max_length)
            for i in range(start, start + group_size):
                out[i] = rng.choice(self.passages(out[i], budget))
        return out
