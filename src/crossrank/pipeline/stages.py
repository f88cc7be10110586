"""Build a pipeline's stages from what names them: a first stage over a BEIR folder, and a
reranker (optionally reading passages, optionally fused with the first stage)."""

from __future__ import annotations

from pathlib import Path

from crossrank.data.beir import load_beir
from crossrank.io import cache_dir as default_cache
from crossrank.pipeline.fusion import Fusion, stored_fusion
from crossrank.pipeline.two_stage import Scorer
from crossrank.retrieval.base import Retriever
from crossrank.retrieval.bm25 import BM25Params, cached_bm25
from crossrank.runtime.artifact import ArtifactError

RETRIEVERS = ("bm25", "dense", "hybrid")


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
    from crossrank.retrieval.dense import DenseRetriever, OnnxEmbedder, bi_encoder_dir
    from crossrank.retrieval.hybrid import HybridRetriever

    artifact = bi_encoder_dir(cache)
    if not (artifact / "crossrank.json").is_file():
        raise ArtifactError(
            f"{artifact}: expected the bi-encoder artifact for --retriever {kind}, found none; "
            f"write it with: crossrank export --bi-encoder --cache-dir {cache}"
        )
    dense = DenseRetriever.build(OnnxEmbedder(artifact), doc_ids, texts, cache, approximate)
    if kind == "dense":
        return dense
    return HybridRetriever({"bm25": cached_bm25(doc_ids, texts, cache, bm25), "dense": dense})


def build_reranker(
    model: str | Path,
    precision: str = "fp32",
    batch_size: int | None = None,
    passages: bool = False,
    pooling: str = "first_max",
    threads: int | None = None,
) -> Scorer:
    """The ONNX reranker of ``model``, reading whole documents as pooled passages if asked."""
    from crossrank.runtime.passages import PassageScorer
    from crossrank.runtime.reranker import OnnxReranker

    reranker = OnnxReranker(model, precision=precision, threads=threads, batch_size=batch_size)
    return PassageScorer(reranker, pooling) if passages else reranker


def artifact_fusion(reranker: Scorer, first_stage: str) -> Fusion | None:
    """The fusion fitted into the reranker's artifact for this kind of first stage, if any."""
    inner = getattr(reranker, "reranker", reranker)  # a PassageScorer wraps the reranker
    return stored_fusion(inner.manifest.fusion, first_stage)
