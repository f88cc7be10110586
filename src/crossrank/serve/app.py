"""The FastAPI application: Cohere ``/v1|v2/rerank``, TEI and Infinity ``/rerank``,
``/search``, ``/health`` and ``/metrics``, behind the access policy of
:mod:`crossrank.serve.security` and with the error contract of :mod:`crossrank.serve.errors`."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from crossrank.serve import openapi as docs
from crossrank.serve.errors import ApiError
from crossrank.serve.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from crossrank.serve.metrics import Metrics
from crossrank.serve.requests import (
    parse_cohere,
    parse_infinity,
    parse_json,
    parse_search,
    parse_tei,
)
from crossrank.serve.security import AccessPolicy
from crossrank.serve.service import ServerConfig, Service

CONFIG_ENV = "CROSSRANK_SERVE_CONFIG"  # how `serve --workers N` hands its options to each process
ROUTES = ("/v1/rerank", "/v2/rerank", "/rerank", "/search", "/health", "/metrics")
NO_CALIBRATION = (
    "relevance_score is a plain sigmoid of the logit: this artifact has no Platt calibration "
    "(run crossrank calibrate)"
)


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body: 413 as soon as it is known to exceed ``limit`` bytes, 408 when it has not
    arrived within ``timeout`` seconds, 499 when the client hangs up before its end."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"expected a body of at most {limit} bytes, got {declared}")
    chunks, size = [], 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"expected a body of at most {limit} bytes, got more")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise ApiError(
            408, f"expected the whole body within {timeout:g} s, got {size} bytes"
        ) from None
    except ClientDisconnect:
        raise ApiError(
            499, f"expected the whole body, got a disconnect after {size} bytes"
        ) from None
    return b"".join(chunks)


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def config_to_env(config: ServerConfig, policy: AccessPolicy) -> str:
    policy_dict = {**asdict(policy), "api_keys": sorted(policy.api_keys)}
    return json.dumps({"config": asdict(config), "policy": policy_dict})


def app_from_env() -> FastAPI:
    """The application of one of several server processes (``crossrank serve --workers N``)."""
    spec = json.loads(os.environ[CONFIG_ENV])
    policy = spec["policy"]
    policy = AccessPolicy(
        api_keys=frozenset(policy["api_keys"]),
        allowed_hosts=tuple(policy["allowed_hosts"]),
        cors_origins=tuple(policy["cors_origins"]),
        metrics_public=policy["metrics_public"],
    )
    return create_app(ServerConfig(**spec["config"]), policy)


def create_app(config: ServerConfig, policy: AccessPolicy | None = None) -> FastAPI:
    """The application, with the model loaded and the worker threads started."""
    policy = policy or AccessPolicy()
    metrics = Metrics()
    service = Service(config, metrics)
    metrics.watch(service.engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        service.engine.close()

    app = FastAPI(
        title="crossrank",
        summary="Cross-encoder reranking: Cohere, TEI and Infinity rerank APIs",
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # a redirect would build its Location from the client's Host
        lifespan=lifespan,
    )
    app.state.service = service

    @app.middleware("http")
    async def guard_and_observe(request: Request, call_next):
        t0 = time.perf_counter()
        path = request.url.path
        try:
            policy.check(request.method, path, request.headers)
            response = await call_next(request)
        except ApiError as exc:
            response = _error(exc)
        endpoint = path if path in ROUTES else "other"
        metrics.observe_request(endpoint, response.status_code, time.perf_counter() - t0)
        return response

    if policy.cors_origins:  # added last, so it runs first: preflights never reach the guard
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(policy.cors_origins),
            allow_methods=["GET", "POST", "HEAD"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return _error(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            message = f"expected one of {list(ROUTES)}, got {request.method} {request.url.path}"
        elif exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "another method")
            message = f"expected {allow} for {request.url.path}, got {request.method}"
        else:
            message = str(exc.detail)
        return _error(ApiError(exc.status_code, message, headers=exc.headers))

    async def body_of(request: Request) -> dict:
        body = await read_body(request, config.max_body_bytes, config.body_timeout_s)
        return parse_json(body)

    async def cohere(request: Request, version: int) -> dict:
        req = parse_cohere(await body_of(request), version, config.max_docs)
        scored = await service.rerank(req)
        values = scored.values(req.raw_scores)
        order = scored.best_first(req.raw_scores)[: req.top_n]
        results = []
        for i in order:
            item = {"index": i, "relevance_score": float(values[i])}
            if scored.answer is not None:
                item["answer_score"] = float(scored.answer[i])
            if req.return_documents:
                sent = req.originals[i] if req.originals else req.documents[i]
                item["document"] = sent if isinstance(sent, dict) else {"text": sent}
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

    cohere_docs = docs.route_docs(docs.COHERE_REQUEST, docs.COHERE_RESPONSE)

    @app.post("/v1/rerank", **cohere_docs)
    async def rerank_v1(request: Request):
        return await cohere(request, 1)

    @app.post("/v2/rerank", **cohere_docs)
    async def rerank_v2(request: Request):
        return await cohere(request, 2)

    @app.post("/rerank", **docs.route_docs(docs.RERANK_REQUEST, docs.RERANK_RESPONSE))
    async def rerank_tei_or_infinity(request: Request):
        obj = await body_of(request)
        if "texts" not in obj and "documents" in obj:
            return await infinity(obj)
        req = parse_tei(obj, config.max_docs)
        scored = await service.rerank(req)
        values = scored.values(req.raw_scores)
        order = scored.best_first(req.raw_scores)
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

    async def infinity(obj: dict) -> dict:
        req = parse_infinity(obj, config.max_docs)
        scored = await service.rerank(req)
        values = scored.values(req.raw_scores)
        order = scored.best_first(req.raw_scores)[: req.top_n]
        results = []
        for i in order:
            item = {"relevance_score": float(values[i]), "index": i}
            item["document"] = req.documents[i] if req.return_documents else None
            if scored.answer is not None:
                item["answer_score"] = float(scored.answer[i])
            results.append(item)
        pairs = int(sum(scored.passages))
        return {
            "object": "rerank",
            "results": results,
            "model": service.model_name,
            "usage": {"prompt_tokens": pairs, "total_tokens": pairs},
            "id": f"crossrank-{uuid.uuid4()}",
            "created": int(time.time()),
        }

    @app.post("/search", **docs.route_docs(docs.SEARCH_REQUEST, docs.SEARCH_RESPONSE))
    async def search(request: Request):
        return await service.search(parse_search(await body_of(request), config.max_docs))

    @app.head("/health", include_in_schema=False)  # load balancers probe with HEAD
    @app.get("/health", **docs.route_docs(None, docs.HEALTH_RESPONSE))
    async def health():
        if not service.engine.alive:
            raise ApiError(
                503, "expected live inference workers, got a dead one", headers={"Retry-After": "5"}
            )
        return {
            "status": "ok",
            "model": service.model_name,
            "model_sha256": service.reranker.sha256,
            "precision": service.reranker.precision,
            "max_length": service.reranker.max_length,
            "calibrated": bool(service.calibration),
            "pipeline": service.pipeline is not None,
            "queue_depth": service.engine.depth,
        }

    @app.get("/metrics", **docs.route_docs(None, {"type": "string"}, "text/plain"))
    async def prometheus():
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    return app
