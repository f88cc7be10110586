"""What the endpoints do: passages, the engine, pooling, calibration, and the pinned pipeline."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossrank.pipeline.two_stage import RetrieveThenRerank, warn_if_shallow
from crossrank.runtime.calibration import calibrate
from crossrank.runtime.passages import (
    document_budget,
    document_units,
    flatten,
    pool_units,
    split_passages,
    token_counts,
)
from crossrank.runtime.precision import MODEL_FILES
from crossrank.runtime.reranker import OnnxReranker
from crossrank.serve.engine import Engine, QueueFull
from crossrank.serve.errors import ApiError
from crossrank.serve.requests import RerankRequest, SearchRequest


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``crossrank serve`` takes on its command line."""

    model: str | None = None
    precision: str = "auto"
    pipeline: str | None = None
    max_docs: int = 1000
    max_body_bytes: int = 8 << 20
    max_queue: int = 32
    workers: int = 1
    threads: int | None = None
    max_batch_pairs: int = 256  # 1 switches micro-batching off
    batch_size: int | None = None
    cache_mb: float = 64.0
    passages: bool = False
    pooling: str = "first_max"
    max_passages: int = 16
    min_score: float | None = None
    cache_dir: str | None = None  # None: crossrank.io.cache_dir()


@dataclass
class Scored:
    raw: np.ndarray  # one pooled logit per document
    probability: np.ndarray  # calibrated, in [0, 1]
    passages: list[int]  # passages scored per document
    by_passage: bool  # whether documents were split into passages
    answer: np.ndarray | None = None  # answer-head probability per document, if the model has one


class Service:
    def __init__(self, config: ServerConfig, metrics) -> None:
        self.config = config
        self.spec = None
        self.pipeline: RetrieveThenRerank | None = None
        if config.pipeline:
            from crossrank.pipeline.pinning import open_pipeline

            self.spec, self.pipeline = open_pipeline(
                config.pipeline,
                config.cache_dir,
                config.batch_size,
                threads=config.threads,
                model=config.model,
                precision=config.precision if config.model else None,
            )
            self.reranker = self.pipeline.reranker
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
        self.model_key = f"{self.reranker.manifest.files[graph]}:{self.reranker.precision}"
        self.calibration = self.reranker.manifest.calibration
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
        )

    def _units(self, req: RerankRequest, passages: bool) -> list[list[str]]:
        """The texts to score for each document: itself, or its passages."""
        tok, window = self.reranker.tokenizer, self.reranker.max_length
        if passages:
            return document_units(
                tok,
                req.query,
                req.documents,
                window,
                self.config.max_passages,
                req.max_tokens_per_doc,
            )
        budget = document_budget(tok, req.query, window)
        if req.max_tokens_per_doc is not None and req.max_tokens_per_doc < budget:
            return [split_passages(tok, d, req.max_tokens_per_doc, 1) for d in req.documents]
        if not req.truncate:
            counts = token_counts(tok, req.documents, budget + 1)
            for i, n in enumerate(counts):
                if n > budget:
                    raise ApiError(
                        413,
                        f"expected texts of at most {budget} tokens beside this query (window "
                        f"{window}) with truncate: false, got {n}+ tokens in text {i}; send "
                        "truncate: true, or passages: true to score every part",
                    )
        return [[d] for d in req.documents]

    async def _outputs(self, query: str, texts: list[str]) -> np.ndarray:
        """``[outputs, texts]``: relevance logits, then answer logits when the model has them."""
        try:
            future = self.engine.submit(query, texts)
        except QueueFull:
            raise ApiError(
                429,
                f"expected a free slot in the inference queue (--max-queue "
                f"{self.config.max_queue}), got a full queue; retry later",
            ) from None
        return np.atleast_2d(await asyncio.wrap_future(future))

    async def rerank(self, req: RerankRequest) -> Scored:
        passages = self.config.passages if req.passages is None else req.passages
        pooling = req.pooling or self.config.pooling
        units = await asyncio.to_thread(self._units, req, passages)
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

    async def search(self, req: SearchRequest) -> dict:
        if self.pipeline is None:
            raise ApiError(404, "expected a server started with --pipeline for /search, got none")
        top_n = req.top_n or self.pipeline.top_n
        warn_if_shallow(top_n, req.top_k)
        t0 = time.perf_counter()
        hits = await asyncio.to_thread(self.pipeline.retriever.retrieve, req.query, top_n)
        t1 = time.perf_counter()
        texts = [h.text for h in hits]  # every crossrank retriever keeps its texts
        scores = (await self._outputs(req.query, texts))[0] if hits else np.zeros(0)
        if self.pipeline.fusion is not None and len(hits):
            scores = self.pipeline.fusion.apply(scores, np.array([h.score for h in hits]))
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
            "pipeline": str(Path(self.config.pipeline).resolve()),
        }
