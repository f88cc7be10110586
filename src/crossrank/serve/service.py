"""What the endpoints do: passages, the engine, pooling, calibration, and the pinned pipeline."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossrank.calibration import calibrate
from crossrank.passages import (
    document_budget,
    per_document,
    pool,
    split_passages,
    token_counts,
)
from crossrank.runtime import MODEL_FILES, OnnxReranker
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
    cache_dir: str = ".cache/crossrank"


@dataclass
class Scored:
    raw: np.ndarray  # one pooled logit per document
    probability: np.ndarray  # calibrated, in [0, 1]
    passages: list[int]  # passages scored per document
    by_passage: bool  # whether documents were split into passages


class Service:
    def __init__(self, config: ServerConfig, metrics) -> None:
        self.config = config
        self.record = None
        if config.pipeline:
            from crossrank.pinning import load_pipeline

            self.record = load_pipeline(config.pipeline)
        model = config.model or (self.record and self.record["reranker"]["path"])
        if not model:
            raise ValueError("expected --model DIR or --pipeline pipeline.json, got neither")
        precision = config.precision
        if self.record and not config.model:
            precision = self.record["reranker"]["precision"]
        self.reranker = OnnxReranker(
            model, precision=precision, threads=config.threads, batch_size=config.batch_size
        )
        graph = MODEL_FILES[self.reranker.precision]
        self.model_key = f"{self.reranker.manifest['files'][graph]}:{self.reranker.precision}"
        self.calibration = self.reranker.manifest.get("calibration")
        self.engine = Engine(
            self.reranker.score_pairs,
            self.model_key,
            workers=config.workers,
            max_queue=config.max_queue,
            max_batch_pairs=config.max_batch_pairs,
            cache_bytes=int(config.cache_mb * (1 << 20)),
            on_batch=metrics.observe_batch,
        )
        self.pipeline = self._pipeline() if self.record else None

    def _pipeline(self):
        from crossrank.eval_cli import build_retriever
        from crossrank.pinning import check_index
        from crossrank.retrieval.bm25 import BM25Params

        params = self.record["retriever"].get("params") or None
        retriever = build_retriever(
            self.record["retriever"]["kind"],
            self.record["data"],
            self.config.cache_dir,
            BM25Params(**params) if params else None,
        )
        check_index(self.record, retriever, self.config.pipeline)
        return retriever

    def _units(self, req: RerankRequest, passages: bool) -> list[list[str]]:
        """The texts to score for each document: itself, or its passages."""
        tok, window = self.reranker.tokenizer, self.reranker.max_length
        budget = document_budget(tok, req.query, window)
        if passages:
            return [
                split_passages(tok, d, budget, self.config.max_passages, req.max_tokens_per_doc)
                for d in req.documents
            ]
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

    async def _scores(self, query: str, texts: list[str]) -> np.ndarray:
        try:
            future = self.engine.submit(query, texts)
        except QueueFull:
            raise ApiError(
                429,
                f"expected a free slot in the inference queue (--max-queue "
                f"{self.config.max_queue}), got a full queue; retry later",
            ) from None
        return await asyncio.wrap_future(future)

    async def rerank(self, req: RerankRequest) -> Scored:
        passages = self.config.passages if req.passages is None else req.passages
        pooling = req.pooling or self.config.pooling
        units = await asyncio.to_thread(self._units, req, passages)
        flat = [t for u in units for t in u]
        scores = await self._scores(req.query, flat)
        raw = np.array([pool(s, pooling) for s in per_document(scores, units)], np.float64)
        return Scored(raw, calibrate(raw, self.calibration), [len(u) for u in units], passages)

    def low_confidence(self, scored: Scored, threshold: float | None) -> bool | None:
        threshold = self.config.min_score if threshold is None else threshold
        if threshold is None:
            return None
        return bool(scored.probability.max() < threshold)

    async def search(self, req: SearchRequest) -> dict:
        if self.pipeline is None:
            raise ApiError(404, "expected a server started with --pipeline for /search, got none")
        top_n = req.top_n or self.record["top_n"]
        t0 = time.perf_counter()
        hits = await asyncio.to_thread(self.pipeline.retrieve, req.query, top_n)
        t1 = time.perf_counter()
        texts = [h.text for h in hits]  # every crossrank retriever keeps its texts
        scores = await self._scores(req.query, texts) if hits else np.zeros(0)
        fusion = self.reranker.manifest.get("fusion")
        if self.record.get("fusion") == "auto" and fusion and len(hits):
            from crossrank.fusion import interpolate

            scores = interpolate(scores, np.array([h.score for h in hits]), fusion["weight"])
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
