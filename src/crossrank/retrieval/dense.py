"""Dense first stage: a bi-encoder in ONNX (mean pooling, L2 norm), cached corpus embeddings,
exact inner-product search in numpy. The search side imports no torch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossrank.io import atomic_directory
from crossrank.retrieval.base import CorpusRetriever, Hit, LastQuery
from crossrank.retrieval.bm25 import texts_fingerprint
from crossrank.runtime.artifact import ArtifactError, Manifest, artifact_sha256, verify_file
from crossrank.runtime.backends import ort_session
from crossrank.runtime.wordpiece import WordPieceTokenizer


class OnnxEmbedder:
    """Embeds texts with a bi-encoder artifact (``crossrank export --bi-encoder``)."""

    def __init__(self, model_dir: str | Path, batch_size: int = 64, threads: int | None = None):
        self.model_dir = Path(model_dir)
        self.manifest = Manifest.load(self.model_dir)
        kind = self.manifest.model.get("kind")
        if kind != "bi-encoder":
            raise ValueError(f"{self.model_dir}: expected a bi-encoder artifact, got {kind!r}")
        path = verify_file(self.model_dir, self.manifest, "model.onnx")
        verify_file(self.model_dir, self.manifest, "tokenizer.json")
        self.tokenizer = WordPieceTokenizer(self.model_dir / "tokenizer.json")
        self.max_length = int(self.manifest.max_length)
        self.batch_size = batch_size
        self.sha256 = artifact_sha256(self.model_dir)
        self.session = ort_session(path, threads)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 embeddings, one row per text, in the input order."""
        texts = list(texts)
        dim = int(self.manifest.model["dim"])
        out = np.zeros((len(texts), dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer.encode_texts([texts[i] for i in idx], self.max_length)
            out[idx] = self.session.run(["embeddings"], enc.as_dict())[0]
        return out


def bi_encoder_dir(cache_dir: str | Path, name: str = "minilm-l6", max_length: int = 256) -> Path:
    """Where the bi-encoder artifact for ``name`` is cached (``crossrank export --bi-encoder``)."""
    return Path(cache_dir) / f"bi-encoder-{name.replace('/', '_')}-{max_length}"


def require_bi_encoder(cache_dir: str | Path, purpose: str) -> Path:
    """The bi-encoder artifact cached in ``cache_dir``, or an error naming how to write it."""
    artifact = bi_encoder_dir(cache_dir)
    if not (artifact / "crossrank.json").is_file():
        raise ArtifactError(
            f"{artifact}: expected the bi-encoder artifact for {purpose}, found none; "
            f"write it with: crossrank export --bi-encoder --cache-dir {cache_dir}"
        )
    return artifact


def _corpus_key(doc_ids: Sequence[str], texts: Sequence[str]) -> str:
    return texts_fingerprint(doc_ids, texts)[:20]


class DenseRetriever(CorpusRetriever):
    """Maximum-inner-product search over normalised embeddings: exact (numpy) by default, or an
    approximate HNSW index (``usearch``, the ``ann`` extra) for large corpora."""

    def __init__(
        self,
        embedder: OnnxEmbedder,
        doc_ids: list[str],
        embeddings: np.ndarray,
        texts: list[str] | None = None,
        approximate: bool = False,
    ) -> None:
        if embeddings.shape[0] != len(doc_ids):
            raise ValueError(
                f"expected one embedding per document, got {embeddings.shape[0]} for {len(doc_ids)}"
            )
        self.embedder = embedder
        self.doc_ids = doc_ids
        self.embeddings = embeddings
        self.texts = texts
        self.index = _hnsw(embeddings) if approximate else None
        self._embed = LastQuery(self.embedder.embed)  # query vectors, the last one kept

    @classmethod
    def build(
        cls,
        embedder: OnnxEmbedder,
        doc_ids: Sequence[str],
        texts: Sequence[str],
        cache_dir: str | Path | None = None,
        approximate: bool = False,
    ) -> DenseRetriever:
        """Embed the corpus, or load the embeddings cached for this model and corpus."""
        doc_ids, texts = list(doc_ids), list(texts)
        if cache_dir is None:
            return cls(embedder, doc_ids, embedder.embed(texts), texts, approximate)
        path = Path(cache_dir) / f"dense-{embedder.sha256[:12]}-{_corpus_key(doc_ids, texts)}"
        manifest = path / "manifest.json"
        if manifest.is_file():
            try:
                meta = json.loads(manifest.read_text())
                if meta.get("model_sha256") == embedder.sha256 and meta.get("count") == len(
                    doc_ids
                ):
                    return cls(
                        embedder, doc_ids, np.load(path / "embeddings.npy"), texts, approximate
                    )
            except (OSError, ValueError):  # a damaged cache is rebuilt, not trusted
                pass
        embeddings = embedder.embed(texts)
        with atomic_directory(path) as tmp:
            np.save(tmp / "embeddings.npy", embeddings)
            (tmp / "manifest.json").write_text(
                json.dumps(
                    {
                        "model_sha256": embedder.sha256,
                        "corpus": _corpus_key(doc_ids, texts),
                        "count": len(doc_ids),
                        "dim": int(embeddings.shape[1]),
                    }
                )
            )
        return cls(embedder, doc_ids, embeddings, texts, approximate)

    def corpus_scores(self, queries: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each query with every document: ``[queries, doc_ids]``."""
        return self.embedder.embed(queries) @ self.embeddings.T

    def document_vectors(self, doc_ids: Sequence[str]) -> np.ndarray:
        """The documents' unit embeddings, one row each."""
        return self.embeddings[self._position(doc_ids)]

    def document_scores(self, query: str, doc_ids: Sequence[str]) -> np.ndarray:
        """Exact cosine similarities, also when the search is approximate."""
        return self.document_vectors(doc_ids) @ self._embed([query])[0]

    def _search(self, queries: list[str], k: int) -> list[list[Hit]]:
        vectors = self._embed(queries)
        if self.index is not None:
            found = self.index.search(vectors, k)
            keys, dist = np.atleast_2d(found.keys), np.atleast_2d(found.distances)
            return [
                [
                    Hit(
                        self.doc_ids[int(i)],
                        float(1.0 - d),
                        r,
                        self.texts[int(i)] if self.texts else None,
                    )
                    for r, (i, d) in enumerate(zip(row_keys, row_dist, strict=True))
                ]
                for row_keys, row_dist in zip(keys, dist, strict=True)
            ]
        scores = vectors @ self.embeddings.T
        results = []
        for row in scores:
            top = top_k(row, k)
            results.append(
                [
                    Hit(self.doc_ids[i], float(row[i]), r, self.texts[i] if self.texts else None)
                    for r, i in enumerate(top)
                ]
            )
        return results


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first, equal scores in index order, so the top
    k is always the first k of a deeper top (duplicate documents score exactly alike)."""
    if k >= scores.size:
        return np.argsort(-scores, kind="stable")
    kth = np.partition(scores, scores.size - k)[scores.size - k]  # the k-th highest score
    tied_or_above = np.flatnonzero(scores >= kth)  # in index order
    return tied_or_above[np.argsort(-scores[tied_or_above], kind="stable")][:k]


def _hnsw(embeddings: np.ndarray):
    """An HNSW inner-product index over ``embeddings`` (built in memory; seconds per 100k docs)."""
    try:
        from usearch.index import Index
    except ImportError:
        raise ImportError(
            "approximate search needs usearch: pip install 'crossrank[ann]'"
        ) from None
    index = Index(ndim=embeddings.shape[1], metric="ip", dtype="f32")
    index.add(np.arange(len(embeddings)), np.ascontiguousarray(embeddings, dtype=np.float32))
    return index
