"""Build a pipeline's stages from what names them: a first stage over a BEIR folder, and a
reranker (optionally reading passages, optionally fused with the first stage)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from crossrank.data.beir import load_beir
from crossrank.io import cache_dir as default_cache
from crossrank.pipeline.fusion import Fusion, stored_fusion
from crossrank.pipeline.two_stage import Scorer
from crossrank.retrieval.base import Retriever
from crossrank.retrieval.bm25 import BM25Params, cached_bm25
from crossrank.runtime.artifact import Manifest, verify_file
from crossrank.runtime.passages import PassageScorer, warn_on_reading_change

RETRIEVERS = ("bm25", "dense", "hybrid")
HYBRID_SIGNALS = ("bm25", "dense")  # the hybrid first stage's components, by name


def build_retriever(
    kind: str,
    data: str | Path,
    cache_dir: str | Path | None = None,
    bm25: BM25Params | None = None,
    approximate: bool = False,
) -> Retriever:
    """The first stage ``kind`` over the whole corpus of the BEIR folder ``data``.

    ``dense`` and ``hybrid`` read the bi-encoder artifact cached in ``cache_dir``
    (``crossrank export --bi-encoder`` writes it; the commands do so on first use).
    """
    if kind not in RETRIEVERS:
        raise ValueError(f"expected retriever in {list(RETRIEVERS)}, got {kind!r}")
    splits = sorted(p.stem for p in (Path(data) / "qrels").glob("*.tsv"))
    if not splits:
        raise ValueError(f"{data}/qrels: expected at least one <split>.tsv, found none")
    cache = default_cache(cache_dir)
    doc_ids, texts = load_beir(data, splits[0]).corpus_texts()
    if kind == "bm25":
        return cached_bm25(doc_ids, texts, cache, bm25)
    from crossrank.retrieval.dense import DenseRetriever, OnnxEmbedder
    from crossrank.retrieval.hybrid import HybridRetriever

    artifact = require_bi_encoder(cache, f"--retriever {kind}")
    dense = DenseRetriever.build(OnnxEmbedder(artifact), doc_ids, texts, cache, approximate)
    if kind == "dense":
        return dense
    bm25_retriever = cached_bm25(doc_ids, texts, cache, bm25)
    return HybridRetriever(dict(zip(HYBRID_SIGNALS, (bm25_retriever, dense), strict=True)))


def build_reranker(
    model: str | Path,
    precision: str = "fp32",
    batch_size: int | None = None,
    passages: bool = False,
    pooling: str = "first_max",
    threads: int | None = None,
    score_store: str | Path | None = None,
) -> Scorer:
    """The ONNX reranker of ``model``, reading whole documents as pooled passages if asked,
    and reading and keeping its scores in ``score_store`` if given."""
    from crossrank.runtime.reranker import OnnxReranker

    reranker = OnnxReranker(
        model, precision=precision, threads=threads, batch_size=batch_size, score_store=score_store
    )
    return PassageScorer(reranker, pooling) if passages else reranker


def inner_reranker(scorer: Scorer):
    """The ``OnnxReranker`` of a scorer (a ``PassageScorer`` wraps one)."""
    return getattr(scorer, "reranker", scorer)


@contextmanager
def without_score_store(scorer: Scorer) -> Iterator[None]:
    """Score through the model itself inside the block (to time it), not the store."""
    inner = inner_reranker(scorer)
    saved = getattr(inner, "store", None)
    if saved is not None:
        inner.store = None
    try:
        yield
    finally:
        if saved is not None:
            inner.store = saved


def score_store_stats(scorer: Scorer | None) -> dict | None:
    """Hits and misses of the scorer's score store (None without one)."""
    store = getattr(inner_reranker(scorer), "store", None) if scorer is not None else None
    return None if store is None else store.stats()


def artifact_fusion(
    reranker: Scorer,
    first_stage: str,
    cache_dir: str | Path | None = None,
    threads: int | None = None,
) -> Fusion | None:
    """The fusion fitted into the reranker's artifact for this kind of first stage, if any,
    with its novelty guard bound to the reference embeddings and the cached bi-encoder."""
    inner = inner_reranker(reranker)
    fusion = stored_fusion(inner.manifest.fusion, first_stage)
    if fusion is not None:
        warn_on_reading_change(
            f"the {first_stage} fusion weight (crossrank fuse)",
            fusion.fit.get("passages"),
            scorer_pooling(reranker),
        )
    if fusion is None or fusion.novelty is None:
        return fusion
    from crossrank.pipeline.query_trust import QueryTrust, load_reference
    from crossrank.retrieval.dense import OnnxEmbedder

    reference = load_reference(
        verify_file(inner.model_dir, inner.manifest, fusion.novelty.reference).parent,
        fusion.novelty,
    )
    embedder = OnnxEmbedder(
        require_bi_encoder(cache_dir, "the fusion's novelty guard"), threads=threads
    )
    return replace(fusion, query_trust=QueryTrust(fusion.novelty, reference, embedder))


def scorer_pooling(scorer: Scorer) -> str | None:
    """The pooling of a scorer that reads passages (None: it truncates documents)."""
    return scorer.pooling if isinstance(scorer, PassageScorer) else None


def require_bi_encoder(cache_dir: str | Path | None, purpose: str) -> Path:
    """The bi-encoder artifact in ``cache_dir`` (default: the project cache), or an error."""
    from crossrank.retrieval.dense import require_bi_encoder as required

    return required(default_cache(cache_dir), purpose)


def needs_bi_encoder(model: str | Path, first_stage: str) -> bool:
    """Whether the artifact's fusion for ``first_stage`` reads the bi-encoder (novelty guard)."""
    fusion = stored_fusion(Manifest.load(model).fusion, first_stage)
    return fusion is not None and fusion.novelty is not None
