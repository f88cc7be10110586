"""First-stage candidates for training and eval queries, mined with BM25 and cached on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from crossrank.data.examples import LabeledSet
from crossrank.io import DEFAULT_CACHE, write_text_atomic
from crossrank.retrieval.bm25 import BM25Params, cached_bm25, index_key, texts_fingerprint


def mine_candidates(
    data: LabeledSet,
    depth: int,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    params: BM25Params | None = None,
) -> None:
    """Set each query's ``candidates`` to BM25's top ``depth`` document ids, best first.

    Judged documents stay in the list (the data module skips them when it draws unjudged
    negatives; eval needs them in place). The lists are cached in a JSON file keyed by the
    corpus, the BM25 parameters, the queries and the depth, so a rerun skips retrieval.
    """
    if depth < 1:
        raise ValueError(f"expected depth >= 1, got {depth}")
    params = params or BM25Params()
    doc_ids = list(data.documents)
    texts = [data.documents[d] for d in doc_ids]
    corpus_key = index_key(texts_fingerprint(doc_ids, texts), params)
    queries_key = hashlib.sha256(
        json.dumps([[q.qid, q.text] for q in data.queries]).encode()
    ).hexdigest()[:16]
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"candidates-{corpus_key}-{queries_key}-{depth}.json"
        if cache.is_file():
            try:
                lists = json.loads(cache.read_text())
                for q in data.queries:
                    q.candidates = list(lists[q.qid])
                return
            except (ValueError, KeyError):  # a damaged cache is rebuilt, not trusted
                pass
    retriever = cached_bm25(doc_ids, texts, cache_dir, params)
    hits = retriever.retrieve_many([q.text for q in data.queries], depth)
    lists = {
        q.qid: [h.doc_id for h in found[:depth]]
        for q, found in zip(data.queries, hits, strict=True)
    }
    for q in data.queries:
        q.candidates = list(lists[q.qid])
    if cache is not None:
        write_text_atomic(cache, json.dumps(lists))
