"""The FastAPI application: Cohere ``/v1|v2/rerank``, TEI ``/rerank``, ``/search``,
``/health`` and ``/metrics``, with the error contract of :mod:`crossrank.serve.errors`."""

from __future__ import annotations

import math
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException

from crossrank.serve.errors import ApiError
from crossrank.serve.metrics import Metrics
from crossrank.serve.requests import parse_cohere, parse_json, parse_search, parse_tei
from crossrank.serve.service import ServerConfig, Service

ROUTES = ("/v1/rerank", "/v2/rerank", "/rerank", "/search", "/health", "/metrics")
NO_CALIBRATION = (
    "relevance_score is a plain sigmoid of the logit: this artifact has no Platt calibration "
    "(run crossrank calibrate)"
)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"expected a body of at most {limit} bytes, got {declared}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"expected a body of at most {limit} bytes, got more")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(config: ServerConfig) -> FastAPI:
    """The application, with the model loaded and the worker threads started."""
    metrics = Metrics()
    service = Service(config, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        service.engine.close()

    app = FastAPI(
        title="crossrank", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.service = service

    @app.middleware("http")
    async def observe(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        path = request.url.path
        endpoint = path if path in ROUTES else "other"
        metrics.observe_request(endpoint, response.status_code, time.perf_counter() - t0)
        return response

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            message = f"expected one of {list(ROUTES)}, got {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"expected another method for {request.url.path}, got {request.method}"
        else:
            message = str(exc.detail)
        return JSONResponse(ApiError(exc.status_code, message).body(), status_code=exc.status_code)

    async def body_of(request: Request) -> dict:
        return parse_json(await read_body(request, config.max_body_bytes))

    async def cohere(request: Request, version: int) -> dict:
        req = parse_cohere(await body_of(request), version, config.max_docs)
        scored = await service.rerank(req)
        values = scored.raw if req.raw_scores else scored.probability
        order = sorted(range(len(values)), key=lambda i: -values[i])[: req.top_n]
        results = []
        for i in order:
            item = {"index": i, "relevance_score": float(values[i])}
            if scored.answer is not None:
                item["answer_score"] = float(scored.answer[i])
            if req.return_documents:
                item["document"] = {"text": req.documents[i]}
            if scored.by_passage:
                item["passages"] = scored.passages[i]
            results.append(item)
        meta = {
            "api_version": {"version": str(version)},
            "billed_units": {"search_units": math.ceil(len(req.documents) / 100)},
        }
        if not service.calibration and not req.raw_scores:
            meta["warnings"] = [NO_CALIBRATION]
        body = {"id": str(uuid.uuid4()), "results": results, "meta": meta}
        low = service.low_confidence(scored, req.min_score)
        if low is not None:
            body["low_confidence"] = low
        return body

    @app.post("/v1/rerank")
    async def rerank_v1(request: Request):
        return await cohere(request, 1)

    @app.post("/v2/rerank")
    async def rerank_v2(request: Request):
        return await cohere(request, 2)

    @app.post("/rerank")
    async def rerank_tei(request: Request):
        req = parse_tei(await body_of(request), config.max_docs)
        scored = await service.rerank(req)
        values = scored.raw if req.raw_scores else scored.probability
        order = sorted(range(len(values)), key=lambda i: -values[i])
        body = []
        for i in order:
            item = {"index": i, "score": float(values[i])}
            if scored.answer is not None:
                item["answer_score"] = float(scored.answer[i])
            if req.return_documents:
                item["text"] = req.documents[i]
            body.append(item)
        headers = {"X-Passages-Scored": str(sum(scored.passages))}
        low = service.low_confidence(scored, req.min_score)
        if low is not None:
            headers["X-Low-Confidence"] = str(low).lower()
        return JSONResponse(body, headers=headers)

    @app.post("/search")
    async def search(request: Request):
        return await service.search(parse_search(await body_of(request), config.max_docs))

    @app.get("/health")
    async def health():
        if not service.engine.alive:
            raise ApiError(503, "expected live inference workers, got a dead one")
        return {
            "status": "ok",
            "model": str(service.reranker.model_dir),
            "precision": service.reranker.precision,
            "max_length": service.reranker.max_length,
            "calibrated": bool(service.calibration),
            "pipeline": config.pipeline,
            "queue_depth": service.engine.depth,
        }

    @app.get("/metrics")
    async def prometheus():
        text = metrics.render(service.engine.depth, service.engine.cache)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return app
