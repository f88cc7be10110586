"""How the service reads a request's documents: whole (truncated at either end, or refused
when too long) or as passages; and how that default follows a pinned pipeline."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from crossrank.runtime.passages import (
    document_budget,
    document_units,
    reading,
    split_passages,
    tail,
    token_counts,
)
from crossrank.serve.errors import ApiError
from crossrank.serve.requests import RerankRequest

if TYPE_CHECKING:
    from crossrank.runtime.reranker import OnnxReranker
    from crossrank.serve.service import ServerConfig

log = logging.getLogger(__name__)


def request_units(
    req: RerankRequest, reranker: OnnxReranker, passages: bool, max_passages: int
) -> list[list[str]]:
    """The texts to score for each document: itself, or its passages (at most the request's
    ``max_passages`` when it gives one, never more than the server's)."""
    tok, window = reranker.tokenizer, reranker.max_length
    if passages:
        return document_units(
            tok,
            req.query,
            req.documents,
            window,
            min(req.max_passages or max_passages, max_passages),
            req.max_tokens_per_doc,
        )
    budget = document_budget(tok, req.query, window)
    if req.max_tokens_per_doc is not None and req.max_tokens_per_doc < budget:
        budget = req.max_tokens_per_doc
        if req.truncation == "right":
            return [split_passages(tok, d, budget, 1) for d in req.documents]
    if req.truncation == "left":
        return [[tail(tok, d, budget)] for d in req.documents]
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


def check_pairs(units: list[list[str]], max_pairs: int, advice: str) -> None:
    """413 when the (document, passage) pairs of one request exceed ``--max-pairs``."""
    pairs = sum(map(len, units))
    if pairs > max_pairs:
        raise ApiError(
            413,
            f"expected at most {max_pairs} pairs (documents x passages) per request "
            f"(--max-pairs), got {pairs}; {advice}",
        )


def adopt_pinned_reading(config: ServerConfig, pinned: str | None) -> ServerConfig:
    """/search reads documents as the pipeline was pinned (``pinned``: its pooling, None:
    truncated); /rerank's default follows the server's ``--passages`` when given, else the pin."""
    if not config.passages:
        return config if pinned is None else replace(config, passages=True, pooling=pinned)
    if config.pooling != pinned:
        log.warning(
            "/rerank reads %s documents by default (--passages), /search %s ones as pinned",
            reading(config.pooling),
            reading(pinned),
        )
    return config
