"""The unsupervised teacher of training: BM25 and the bi-encoder over each training query.

Each query gets a hybrid candidate list (reciprocal rank fusion of BM25's and the bi-encoder's
top lists), a teacher score for every candidate (``z(BM25) + z(cosine)`` within the list, the
signal distillation reads), and the unjudged documents both first stages put near the top: the
judgements are incomplete, and such a document is often relevant, so it is never a negative.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from crossrank.data.examples import LabeledSet
from crossrank.io import write_text_atomic
from crossrank.retrieval.bm25 import BM25Params, cached_bm25, index_key, texts_fingerprint
from crossrank.retrieval.dense import DenseRetriever, OnnxEmbedder, require_bi_encoder
from crossrank.retrieval.hybrid import reciprocal_rank_fusion, zscore_sum

FORMAT = 1  # bump when the cached lists change meaning


def likely_false_negatives(
    judged: Mapping[str, int],
    bm25_ranked: list[str],
    dense_ranked: list[str],
    top: int,
) -> set[str]:
    """Unjudged documents in the top ``top`` of both lists (a judged one is never returned)."""
    both = set(bm25_ranked[:top]) & set(dense_ranked[:top])
    return {d for d in both if d not in judged}


def teacher_list(
    bm25: np.ndarray,
    cosine: np.ndarray,
    doc_ids: list[str],
    judged: Mapping[str, int],
    bm25_depth: int,
    dense_depth: int,
    false_negative_top: int,
    position: Mapping[str, int] | None = None,
) -> tuple[list[str], list[float], set[str]]:
    """(candidates best first, their teacher scores, likely false negatives) for one query,
    from its BM25 and cosine scores over the whole corpus (``doc_ids`` order; ``position``
    maps each id to its index, built once by a caller that scores many queries)."""
    matched = np.flatnonzero(bm25 > 0)
    bm25_top = matched[np.argsort(-bm25[matched], kind="stable")][:bm25_depth]
    dense_top = np.argsort(-cosine, kind="stable")[:dense_depth]
    bm25_ranked = [doc_ids[i] for i in bm25_top]
    dense_ranked = [doc_ids[i] for i in dense_top]
    fused = reciprocal_rank_fusion({"bm25": bm25_ranked, "dense": dense_ranked})
    candidates = [d for d, _ in fused]
    position = position if position is not None else {d: i for i, d in enumerate(doc_ids)}
    rows = np.array([position[d] for d in candidates], dtype=np.int64)
    scores = zscore_sum([bm25[rows], cosine[rows]])
    unsure = likely_false_negatives(judged, bm25_ranked, dense_ranked, false_negative_top)
    return candidates, [float(s) for s in scores], unsure


def attach_teacher(
    data: LabeledSet,
    cache_dir: str | Path,
    bm25_depth: int = 200,
    dense_depth: int = 100,
    false_negative_top: int = 10,
    params: BM25Params | None = None,
) -> None:
    """Set every query's ``candidates``, ``teacher`` and ``unsure`` (see the module docstring).

    Reads the bi-encoder artifact in ``cache_dir`` (``crossrank export --bi-encoder``); the
    lists are cached there, keyed by the corpus, the queries, the judgements and the settings.
    """
    cache_dir = Path(cache_dir)
    artifact = require_bi_encoder(cache_dir, "the teacher")
    params = params or BM25Params()
    doc_ids = list(data.documents)
    texts = [data.documents[d] for d in doc_ids]
    embedder = OnnxEmbedder(artifact)
    blob = json.dumps(
        [
            FORMAT,
            index_key(texts_fingerprint(doc_ids, texts), params),
            embedder.sha256,
            [bm25_depth, dense_depth, false_negative_top],
            [[q.qid, q.text, sorted(q.judged.items())] for q in data.queries],
        ]
    )
    cache = cache_dir / f"teacher-{hashlib.sha256(blob.encode()).hexdigest()[:20]}.json"
    lists = _read(cache)
    if lists is None:
        bm25 = cached_bm25(doc_ids, texts, cache_dir, params)
        dense = DenseRetriever.build(embedder, doc_ids, texts, cache_dir)
        lists = {}
        position = {d: i for i, d in enumerate(doc_ids)}
        for start in range(0, len(data.queries), 256):
            chunk = data.queries[start : start + 256]
            cosine = dense.corpus_scores([q.text for q in chunk])
            for q, row in zip(chunk, cosine, strict=True):
                candidates, scores, unsure = teacher_list(
                    bm25.corpus_scores(q.text), row, doc_ids, q.judged,
                    bm25_depth, dense_depth, false_negative_top, position,
                )  # fmt: skip
                lists[q.qid] = {
                    "candidates": candidates,
                    "teacher": scores,
                    "unsure": sorted(unsure),
                }
        write_text_atomic(cache, json.dumps(lists))
    for q in data.queries:
        entry = lists[q.qid]
        q.candidates = list(entry["candidates"])
        q.teacher = dict(zip(entry["candidates"], entry["teacher"], strict=True))
        q.unsure = set(entry["unsure"])


def _read(cache: Path) -> dict | None:
    if not cache.is_file():
        return None
    try:
        return json.loads(cache.read_text())
    except ValueError:  # a damaged cache is rebuilt, not trusted
        return None
