"""Request bodies of the Cohere, TEI and search endpoints, parsed and checked by hand.

Hand-written checks (rather than pydantic models) keep the error contract exact: which
status a mistake gets (400 empty, 413 too many, 422 malformed or mistyped) and a message
that names the field, what was expected and what came.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from crossrank.runtime.passages import POOLINGS
from crossrank.runtime.tokenization import is_blank
from crossrank.serve.errors import ApiError, describe


@dataclass(frozen=True)
class RerankRequest:
    query: str
    documents: list[str]
    top_n: int | None = None
    return_documents: bool = False
    max_tokens_per_doc: int | None = None
    raw_scores: bool = False
    truncate: bool = True
    passages: bool | None = None  # None: the server's default
    pooling: str | None = None
    min_score: float | None = None
    truncation: str = "right"  # or "left": keep a long document's end
    max_passages: int | None = None  # Cohere v1 max_chunks_per_doc
    originals: list[Any] | None = None  # the caller's document items, echoed back as sent


@dataclass(frozen=True)
class SearchRequest:
    query: str
    top_k: int
    top_n: int | None = None


def parse_json(body: bytes) -> dict:
    """The JSON object in ``body``; 422 for invalid UTF-8, malformed JSON or a non-object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            422, f"expected a UTF-8 body, got invalid UTF-8 at byte {exc.start}"
        ) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(
            422,
            f"expected a JSON object, got malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
        ) from None
    except RecursionError:
        raise ApiError(422, "expected a JSON object, got JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        raise ApiError(422, f"expected a JSON object, got unreadable JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ApiError(422, f"expected a JSON object, got {describe(obj)}")
    return obj


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ApiError(422, f"expected {where} to be a string, got {describe(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            422, f"expected {where} to be valid Unicode, got an unpaired surrogate"
        ) from None
    return value


def _nonempty(value: str, where: str) -> str:
    if is_blank(value):
        raise ApiError(400, f"expected a non-empty {where}, got {describe(value)}")
    return value


def _optional(obj: dict, key: str, kind: type, default: Any = None) -> Any:
    value = obj.get(key)
    if value is None:  # absent or JSON null
        return default
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ApiError(422, f"expected '{key}' to be a {kind.__name__}, got {describe(value)}")
    return value


def _positive(obj: dict, key: str) -> int | None:
    value = _optional(obj, key, int)
    if value is not None and value < 1:
        raise ApiError(422, f"expected '{key}' >= 1, got {value}")
    return value


def _query(obj: dict) -> str:
    if "query" not in obj:
        raise ApiError(422, "expected a 'query' field (a string), got none")
    return _nonempty(_text(obj["query"], "'query'"), "query")


def _rank_fields(obj: dict) -> list[str]:
    fields = obj.get("rank_fields")
    if fields is None:
        return ["text"]
    if not (isinstance(fields, list) and fields and all(isinstance(f, str) for f in fields)):
        raise ApiError(
            422,
            f"expected 'rank_fields' to be a non-empty array of strings, got {describe(fields)}",
        )
    return fields


def _object_text(doc: dict, fields: list[str], where: str) -> str:
    """The text scored for an object document: its one rank field, or ``key: value`` lines."""
    values = []
    for f in fields:
        if f not in doc:
            raise ApiError(
                422, f"expected {where} to have a {f!r} field (rank_fields), got {describe(doc)}"
            )
        value = doc[f]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ApiError(
                422, f"expected {where}.{f} to be a string or number, got {describe(value)}"
            )
        values.append(_text(str(value), f"{where}.{f}"))
    return (
        values[0]
        if len(fields) == 1
        else "\n".join(f"{f}: {v}" for f, v in zip(fields, values, strict=True))
    )


def _documents(
    obj: dict, key: str, max_docs: int, allow_objects: bool, fields: list[str] | None = None
) -> list[str]:
    if key not in obj:
        raise ApiError(422, f"expected a '{key}' field (an array), got none")
    docs = obj[key]
    if not isinstance(docs, list):
        raise ApiError(422, f"expected '{key}' to be an array, got {describe(docs)}")
    if not docs:
        raise ApiError(400, f"expected at least one item in '{key}', got an empty array")
    if len(docs) > max_docs:
        raise ApiError(413, f"expected at most {max_docs} items in '{key}', got {len(docs)}")
    texts = []
    for i, doc in enumerate(docs):
        where = f"'{key}[{i}]'"
        if allow_objects and isinstance(doc, dict):
            doc = _object_text(doc, fields or ["text"], where)
        texts.append(_nonempty(_text(doc, where), f"{where}"))
    return texts


def _extensions(obj: dict) -> dict:
    """crossrank's own optional fields, shared by both rerank schemas."""
    passages = _optional(obj, "passages", bool)
    pooling = _optional(obj, "pooling", str)
    if pooling is not None and pooling not in POOLINGS:
        raise ApiError(422, f"expected 'pooling' in {list(POOLINGS)}, got {describe(pooling)}")
    min_score = _optional(obj, "min_score", float)
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise ApiError(422, f"expected 'min_score' in [0, 1], got {min_score}")
    return {"passages": passages, "pooling": pooling, "min_score": min_score}


def parse_cohere(obj: dict, version: int, max_docs: int) -> RerankRequest:
    """Cohere ``/v1/rerank`` or ``/v2/rerank``: documents are strings or objects, scored by
    their ``rank_fields`` (default ``text``) and echoed back whole."""
    _optional(obj, "model", str)
    query = _query(obj)
    documents = _documents(obj, "documents", max_docs, True, _rank_fields(obj))
    chunks = _positive(obj, "max_chunks_per_doc")
    return RerankRequest(
        query,
        documents,
        top_n=_positive(obj, "top_n"),
        return_documents=_optional(obj, "return_documents", bool, version == 1),
        max_tokens_per_doc=_positive(obj, "max_tokens_per_doc"),
        raw_scores=_optional(obj, "raw_scores", bool, False),
        max_passages=chunks,
        originals=list(obj["documents"]),
        **{**_extensions(obj), **({"passages": True} if chunks else {})},
    )


def parse_infinity(obj: dict, max_docs: int) -> RerankRequest:
    """Infinity's ``/rerank`` body: ``documents`` (strings), ``top_n``, ``return_documents``."""
    _optional(obj, "model", str)
    query = _query(obj)
    documents = _documents(obj, "documents", max_docs, allow_objects=False)
    return RerankRequest(
        query,
        documents,
        top_n=_positive(obj, "top_n"),
        return_documents=_optional(obj, "return_documents", bool, False),
        raw_scores=_optional(obj, "raw_scores", bool, False),
        **_extensions(obj),
    )


def parse_tei(obj: dict, max_docs: int) -> RerankRequest:
    """text-embeddings-inference ``/rerank``: ``texts`` are strings."""
    query = _query(obj)
    texts = _documents(obj, "texts", max_docs, allow_objects=False)
    direction = _optional(obj, "truncation_direction", str, "Right")
    if direction.lower() not in ("right", "left"):
        raise ApiError(
            422, f"expected 'truncation_direction' 'Right' or 'Left', got {describe(direction)}"
        )
    return RerankRequest(
        query,
        texts,
        return_documents=_optional(obj, "return_text", bool, False),
        raw_scores=_optional(obj, "raw_scores", bool, False),
        truncate=_optional(obj, "truncate", bool, True),
        truncation=direction.lower(),
        **_extensions(obj),
    )


def parse_search(obj: dict, max_docs: int) -> SearchRequest:
    query = _query(obj)
    if "top_k" not in obj:
        raise ApiError(422, "expected a 'top_k' field (an integer >= 1), got none")
    top_k, top_n = _positive(obj, "top_k"), _positive(obj, "top_n")
    for name, value in (("top_k", top_k), ("top_n", top_n)):
        if value is not None and value > max_docs:
            raise ApiError(413, f"expected '{name}' <= {max_docs}, got {value}")
    return SearchRequest(query, top_k, top_n)
