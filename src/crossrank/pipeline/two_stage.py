"""Two-stage retrieval: a cheap first stage finds top-N, the cross-encoder keeps the best K."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from crossrank.pipeline.fusion import Fusion
from crossrank.retrieval.base import Hit, Retriever

log = logging.getLogger(__name__)
_warned: set[tuple[int, int]] = set()


class Scorer(Protocol):
    """Anything with ``score(query, documents) -> np.ndarray`` (e.g. ``OnnxReranker``)."""

    def score(self, query: str, documents: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class RerankedHit:
    """A document after reranking: its score and where the first stage had put it."""

    doc_id: str
    score: float
    first_stage_rank: int
    text: str | None = None


@dataclass
class PipelineResult:
    query: str
    first_stage: list[Hit]
    reranked: list[RerankedHit]
    timings_ms: dict[str, float] = field(default_factory=dict)


_MAX_WARNED = 16  # a service's clients choose N and K: their pairs must not grow the log


def warn_if_shallow(top_n: int, top_k: int) -> None:
    """One warning per (N, K), for the first few pairs a process sees: with N < 3K the
    reranker can reweight but hardly reorder."""
    if top_n < 3 * top_k and (top_n, top_k) not in _warned and len(_warned) < _MAX_WARNED:
        _warned.add((top_n, top_k))
        log.warning(
            "top_n=%d is less than 3 * top_k=%d: the reranker can only reweight the first "
            "stage's list, not reorder much; raise top_n",
            top_n,
            3 * top_k,
        )


class RetrieveThenRerank:
    """Retrieve ``top_n`` candidates, score them with the cross-encoder, keep ``top_k``.

    ``documents`` maps ids to texts for retrievers whose hits carry no text; ``fusion`` adds
    the first stage's scores to the cross-encoder's (see :class:`~crossrank.pipeline.fusion.Fusion`).
    """

    def __init__(
        self,
        retriever: Retriever,
        reranker: Scorer,
        top_n: int = 100,
        top_k: int = 10,
        documents: Mapping[str, str] | Callable[[str], str] | None = None,
        fusion: Fusion | None = None,
    ) -> None:
        if top_n < 1 or top_k < 1:
            raise ValueError(f"expected top_n >= 1 and top_k >= 1, got {top_n} and {top_k}")
        self.retriever = retriever
        self.reranker = reranker
        self.top_n = top_n
        self.top_k = top_k
        self.documents = documents
        self.fusion = fusion
        warn_if_shallow(top_n, top_k)

    def _text(self, hit: Hit) -> str:
        if hit.text is not None:
            return hit.text
        if self.documents is None:
            raise ValueError(f"hit {hit.doc_id!r} has no text and no document store was given")
        return (
            self.documents(hit.doc_id) if callable(self.documents) else self.documents[hit.doc_id]
        )

    def run(self, query: str, top_n: int | None = None, top_k: int | None = None) -> PipelineResult:
        top_n = top_n or self.top_n
        top_k = top_k or self.top_k
        warn_if_shallow(top_n, top_k)
        t0 = time.perf_counter()
        hits = self.retriever.retrieve(query, top_n)
        t1 = time.perf_counter()
        texts = [self._text(h) for h in hits]
        scores = rerank_scores(self.reranker, query, hits, texts, self.fusion)
        t2 = time.perf_counter()
        order = np.argsort(-scores, kind="stable")[:top_k]
        reranked = [
            RerankedHit(hits[i].doc_id, float(scores[i]), hits[i].rank, texts[i]) for i in order
        ]
        timings = {"retrieve": (t1 - t0) * 1e3, "rerank": (t2 - t1) * 1e3, "total": (t2 - t0) * 1e3}
        return PipelineResult(query, hits, reranked, timings)

    __call__ = run


def pipeline(
    query: str, retriever: Retriever, reranker: Scorer, top_n: int, top_k: int
) -> PipelineResult:
    """One query through :class:`RetrieveThenRerank` (hits must carry their text)."""
    return RetrieveThenRerank(retriever, reranker, top_n, top_k).run(query)


def rerank_scores(
    reranker: Scorer,
    query: str,
    hits: Sequence[Hit],
    texts: Sequence[str],
    fusion: Fusion | None = None,
) -> np.ndarray:
    """The cross-encoder's scores of ``texts`` (the hits' documents), fused with the hits'
    first-stage scores when ``fusion`` is given."""
    if not hits:
        return np.zeros(0, dtype=np.float32)
    scores = reranker.score(query, texts)
    if fusion is None:
        return scores
    return fusion.fuse(scores, hits, query)
