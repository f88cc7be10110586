"""What the endpoints do: passages, the engine, pooling, calibration, and the pinned pipeline."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

import numpy as np

from crossrank.pipeline.two_stage import RetrieveThenRerank, warn_if_shallow
from crossrank.runtime.artifact import sha256_file
from crossrank.runtime.calibration import calibrate
from crossrank.runtime.passages import (
    MAX_PASSAGES,
    document_units,
    flatten,
    pool_units,
    warn_on_reading_change,
)
from crossrank.runtime.precision import MODEL_FILES
from crossrank.runtime.reranker import OnnxReranker
from crossrank.serve.engine import Engine, QueueFull
from crossrank.serve.errors import ApiError
from crossrank.serve.reading import adopt_pinned_reading, check_pairs, request_units
from crossrank.serve.requests import RerankRequest, SearchRequest


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``crossrank serve`` takes on its command line."""

    model: str | None = None
    precision: str = "auto"
    pipeline: str | None = None
    max_docs: int = 1000
    max_body_bytes: int = 8 << 20
    max_queue: int = 256
    max_wait_s: float = 30.0  # a request likely to wait longer gets 429 with Retry-After
    workers: int = 1
    threads: int | None = None
    max_batch_pairs: int = 8  # 1 switches micro-batching off
    batch_size: int | None = None
    cache_mb: float = 64.0
    passages: bool = False
    pooling: str = "first_max"
    max_passages: int = MAX_PASSAGES
    body_timeout_s: float = 10.0  # a body not read by then gets 408 (slow-client guard)
    max_pairs: int = 4096  # pairs (documents x passages) one request may ask to score
    chunk_pairs: int = 8  # pairs of one request scored before the scheduler picks again
    min_score: float | None = None
    cache_dir: str | None = None  # None: crossrank.io.cache_dir()


@dataclass
class Scored:
    raw: np.ndarray  # one pooled logit per document
    probability: np.ndarray  # calibrated, in [0, 1]
    passages: list[int]  # passages scored per document
    by_passage: bool  # whether documents were split into passages
    answer: np.ndarray | None = None  # answer-head probability per document, if the model has one

    def values(self, raw_scores: bool) -> np.ndarray:
        """The score a response reports: the logit, or the calibrated probability."""
        return self.raw if raw_scores else self.probability

    def best_first(self, raw_scores: bool) -> list[int]:
        """Document indices by the reported score, best first. Ties go to the higher logit: a
        calibrated probability saturates at exactly 1.0 for every clearly relevant document."""
        values = self.values(raw_scores)
        return sorted(range(len(values)), key=lambda i: (-values[i], -self.raw[i]))


class Service:
    def __init__(self, config: ServerConfig, metrics) -> None:
        self.config = config
        self.spec = None
        self.pipeline: RetrieveThenRerank | None = None
        self.pipeline_sha256: str | None = None
        if config.pipeline:
            from crossrank.pipeline.pinning import open_pipeline
            from crossrank.pipeline.stages import inner_reranker

            self.spec, self.pipeline = open_pipeline(
                config.pipeline,
                config.cache_dir,
                config.batch_size,
                threads=config.threads,
                model=config.model,
                precision=config.precision if config.model else None,
            )
            self.reranker = inner_reranker(self.pipeline.reranker)
            self.pipeline_sha256 = sha256_file(config.pipeline)
            config = self.config = adopt_pinned_reading(config, self.spec.passages)
        elif config.model:
            self.reranker = OnnxReranker(
                config.model,
                precision=config.precision,
                threads=config.threads,
                batch_size=config.batch_size,
            )
        else:
            raise ValueError("expected --model DIR or --pipeline pipeline.json, got neither")
        graph = MODEL_FILES[self.reranker.precision]
        # Everything a cached score depends on: the graph, its precision and the window.
        self.model_key = (
            f"{self.reranker.manifest.files[graph]}:{self.reranker.precision}:"
            f"{self.reranker.max_length}"
        )
        self.calibration = self.reranker.manifest.calibration
        if self.calibration:
            warn_on_reading_change(
                "the calibration (crossrank calibrate)",
                self.calibration.get("passages"),
                config.pooling if config.passages else None,
            )
        # What clients see of the model: its content hash, never its path on this machine.
        self.model_name = f"crossrank-{self.reranker.sha256[:12]}"
        head = self.reranker.has_answer_head
        self.engine = Engine(
            self.reranker.outputs_of_pairs if head else self.reranker.score_pairs,
            self.model_key,
            workers=config.workers,
            max_queue=config.max_queue,
            max_batch_pairs=config.max_batch_pairs,
            cache_bytes=int(config.cache_mb * (1 << 20)),
            on_batch=metrics.observe_batch,
            outputs=2 if head else 1,
            chunk_pairs=config.chunk_pairs,
        )
        self.metrics = metrics

    def seconds_per_pair(self) -> float:
        m = self.metrics
        return m.inference_seconds / m.pairs_scored if m.pairs_scored else 0.01

    def admit(self, pairs: int) -> None:
        """429 with ``Retry-After`` when a request of ``pairs`` pairs would likely wait more
        than ``max_wait_s`` (estimated from the work admitted and the measured pace)."""
        ahead = self.engine.pairs_ahead(pairs)
        wait = (ahead + pairs) * self.seconds_per_pair() / self.config.workers
        if wait > self.config.max_wait_s and ahead:
            self._refuse(
                math.ceil(wait - self.config.max_wait_s),
                f"expected a wait under {self.config.max_wait_s:g} s (--max-wait), got about "
                f"{wait:.0f} s for {pairs} pairs behind {ahead}",
            )

    def _refuse(self, seconds: int, message: str) -> None:
        raise ApiError(
            429, f"{message}; retry later", headers={"Retry-After": str(max(1, seconds))}
        )

    async def _outputs(self, query: str, texts: list[str]) -> np.ndarray:
        """``[outputs, texts]``: relevance logits, then answer logits when the model has them."""
        self.admit(len(texts))
        try:
            future = self.engine.submit(query, texts)
        except QueueFull:
            seconds = math.ceil(self.engine.pending_pairs * self.seconds_per_pair())
            self._refuse(
                seconds // max(1, self.engine.depth),
                f"expected a free place in the inference queue (--max-queue "
                f"{self.config.max_queue}), got a full queue",
            )
        return np.atleast_2d(await asyncio.wrap_future(future))

    async def rerank(self, req: RerankRequest) -> Scored:
        passages = self.config.passages if req.passages is None else req.passages
        pooling = req.pooling or self.config.pooling
        self.admit(len(req.documents))  # before tokenizing: a refusal should cost nothing
        units = await asyncio.to_thread(
            request_units, req, self.reranker, passages, self.config.max_passages
        )
        check_pairs(units, self.config.max_pairs, "send fewer documents or passages")
        out = await self._outputs(req.query, flatten(units))
        raw = pool_units(out[0], units, pooling)
        answer = None
        if len(out) > 1:  # a document answers when any of its passages does
            answer = 1.0 / (1.0 + np.exp(-pool_units(out[1], units, "max")))
        probability = calibrate(raw, self.calibration)
        return Scored(raw, probability, [len(u) for u in units], passages, answer)

    def low_confidence(self, scored: Scored, threshold: float | None) -> bool | None:
        threshold = self.config.min_score if threshold is None else threshold
        if threshold is None:
            return None
        best = scored.answer if scored.answer is not None else scored.probability
        return bool(best.max() < threshold)

    async def _search_scores(self, query: str, texts: list[str]) -> np.ndarray:
        """One score per candidate, read as the pipeline was pinned: whole (truncated to the
        window), or as passages pooled the pinned way (whatever the server's own flags)."""
        if not texts:
            return np.zeros(0)
        pooling = self.spec.passages
        if pooling is None:
            return (await self._outputs(query, texts))[0]
        self.admit(len(texts))  # before splitting: a refusal should cost nothing
        r = self.reranker
        units = await asyncio.to_thread(document_units, r.tokenizer, query, texts, r.max_length)
        check_pairs(units, self.config.max_pairs, "send a smaller top_n")
        return pool_units((await self._outputs(query, flatten(units)))[0], units, pooling)

    async def search(self, req: SearchRequest) -> dict:
        if self.pipeline is None:
            raise ApiError(404, "expected a server started with --pipeline for /search, got none")
        top_n = req.top_n or self.pipeline.top_n
        warn_if_shallow(top_n, req.top_k)
        t0 = time.perf_counter()
        hits = await asyncio.to_thread(self.pipeline.retriever.retrieve, req.query, top_n)
        t1 = time.perf_counter()
        texts = [h.text for h in hits]  # every crossrank retriever keeps its texts
        scores = await self._search_scores(req.query, texts)
        if self.pipeline.fusion is not None and len(hits):
            scores = await asyncio.to_thread(  # the novelty guard embeds the query
                self.pipeline.fusion.fuse, scores, hits, req.query
            )
        t2 = time.perf_counter()
        order = np.argsort(-np.asarray(scores), kind="stable")[: req.top_k]
        return {
            "query": req.query,
            "top_n": top_n,
            "top_k": req.top_k,
            "results": [
                {"id": hits[i].doc_id, "score": float(scores[i]), "first_stage_rank": hits[i].rank}
                for i in order
            ],
            "timings_ms": {
                "retrieve": (t1 - t0) * 1e3,
                "rerank": (t2 - t1) * 1e3,
                "total": (t2 - t0) * 1e3,
            },
            "pipeline_sha256": self.pipeline_sha256,
        }
