"""JSON Schemas of the request and response bodies, for ``/openapi.json``.

The bodies are parsed by hand (:mod:`crossrank.serve.requests`) to keep the error contract
exact, so FastAPI cannot derive their schemas; they are written here once and attached to
each route with ``openapi_extra`` and ``responses``.
"""

from __future__ import annotations

from typing import Any

_STR = {"type": "string"}
_TEXT = {"type": "string", "minLength": 1, "pattern": "\\S"}  # and a visible character
_NUM = {"type": "number"}
_INT1 = {"type": "integer", "minimum": 1}
_BOOL = {"type": "boolean"}
_EXTENSIONS = {
    "passages": _BOOL,
    "pooling": {"type": "string", "enum": ["max", "mean_top2", "first_max"]},
    "min_score": {"type": "number", "minimum": 0, "maximum": 1},
}
_DOCUMENT = {"anyOf": [_TEXT, {"type": "object", "additionalProperties": True}]}


def _obj(props: dict, required: list[str], extra: bool = True) -> dict:
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": extra,
    }


# Fields the Cohere and Infinity bodies share.
_LIKE_COHERE = {
    "model": _STR,
    "query": _TEXT,
    "top_n": _INT1,
    "return_documents": _BOOL,
    "raw_scores": _BOOL,
    **_EXTENSIONS,
}
COHERE_REQUEST = _obj(
    {
        **_LIKE_COHERE,
        "documents": {"type": "array", "items": _DOCUMENT, "minItems": 1},
        "max_tokens_per_doc": _INT1,
        "max_chunks_per_doc": _INT1,
        "rank_fields": {"type": "array", "items": _STR, "minItems": 1},
    },
    ["query", "documents"],
)


def _results(**extra: dict) -> dict:
    """The ``results`` array of the Cohere and Infinity answers, with their own fields."""
    item = {"index": {"type": "integer"}, "relevance_score": _NUM, "answer_score": _NUM, **extra}
    return {"type": "array", "items": _obj(item, ["index", "relevance_score"])}


COHERE_RESPONSE = _obj(
    {
        "id": _STR,
        "results": _results(document={"type": "object"}, passages={"type": "integer"}),
        "meta": {"type": "object"},
        "low_confidence": _BOOL,
    },
    ["id", "results", "meta"],
)
TEI_REQUEST = _obj(
    {
        "query": _TEXT,
        "texts": {"type": "array", "items": _TEXT, "minItems": 1},
        "return_text": _BOOL,
        "raw_scores": _BOOL,
        "truncate": _BOOL,
        "truncation_direction": {"type": "string", "enum": ["Right", "Left", "right", "left"]},
        **_EXTENSIONS,
    },
    ["query", "texts"],
)
INFINITY_REQUEST = _obj(
    {**_LIKE_COHERE, "documents": {"type": "array", "items": _TEXT, "minItems": 1}},
    ["query", "documents"],
)
RERANK_REQUEST = {"oneOf": [TEI_REQUEST, INFINITY_REQUEST]}
RERANK_RESPONSE = {
    "oneOf": [
        {
            "type": "array",
            "items": _obj(
                {"index": {"type": "integer"}, "score": _NUM, "answer_score": _NUM, "text": _STR},
                ["index", "score"],
            ),
        },
        _obj(
            {
                "object": {"const": "rerank"},
                "results": _results(document={"type": ["string", "null"]}),
                "model": _STR,
                "usage": {"type": "object"},
                "id": _STR,
                "created": {"type": "integer"},
            },
            ["object", "results"],
        ),
    ]
}
SEARCH_REQUEST = _obj({"query": _TEXT, "top_k": _INT1, "top_n": _INT1}, ["query", "top_k"])
SEARCH_RESPONSE = _obj(
    {
        "query": _STR,
        "top_n": {"type": "integer"},
        "top_k": {"type": "integer"},
        "results": {
            "type": "array",
            "items": _obj(
                {"id": _STR, "score": _NUM, "first_stage_rank": {"type": "integer"}},
                ["id", "score"],
            ),
        },
        "timings_ms": {"type": "object"},
        "pipeline_sha256": _STR,
    },
    ["query", "results"],
)
HEALTH_RESPONSE = _obj({"status": _STR}, ["status"])
ERROR = _obj({"error": _STR, "error_type": _STR}, ["error", "error_type"])
_ERRORS = {
    "400": "empty query or documents",
    "401": "missing or wrong API key",
    "404": "no such route (or /search without a pipeline)",
    "405": "wrong method",
    "408": "the body did not arrive in time",
    "413": "too many documents, pairs or bytes",
    "415": "the body is not declared JSON",
    "421": "the Host header does not name this server",
    "422": "malformed or mistyped body",
    "429": "the queue is full (see Retry-After)",
    "503": "inference workers are down",
}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def route_docs(request: dict | None, response: dict, media: str = "application/json") -> dict:
    """``openapi_extra`` and ``responses`` keyword arguments for a route."""
    responses: dict[int | str, Any] = {
        "200": {"description": "OK", "content": {media: {"schema": response}}}
    }
    for status, why in _ERRORS.items():
        responses[status] = {"description": why, "content": _json(ERROR)}
    extra = {"responses": responses}
    if request is not None:
        extra["requestBody"] = {"required": True, "content": _json(request)}
    return {"openapi_extra": extra}
