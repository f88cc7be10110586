"""BM25 first stage on ``bm25s``, with an on-disk index keyed by the corpus and parameters."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import bm25s
import numpy as np

from crossrank.data.beir import BeirDataset
from crossrank.io import atomic_directory
from crossrank.retrieval.base import CorpusRetriever, Hit, LastQuery

log = logging.getLogger(__name__)
INDEX_FORMAT = 2  # bump when the saved layout changes, so stale caches are not reused


@dataclass(frozen=True)
class BM25Params:
    """Scoring and analysis settings; ``stemmer`` is a PyStemmer language or ``None``."""

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = "en"


class BM25Retriever(CorpusRetriever):
    """Sparse lexical retrieval over ``(doc_id, text)`` pairs."""

    def __init__(
        self,
        params: BM25Params,
        doc_ids: list[str],
        model: bm25s.BM25,
        texts: list[str] | None = None,
    ) -> None:
        self.params = params
        self.doc_ids = doc_ids
        self.texts = texts
        self._model = model
        self._stemmer = _stemmer(params.stemmer)
        self._sorted: bool | None = None
        self._terms = LastQuery(self._analyse)  # the last query's terms, analysed once

    @classmethod
    def build(
        cls, doc_ids: Sequence[str], texts: Sequence[str], params: BM25Params | None = None
    ) -> BM25Retriever:
        params = params or BM25Params()
        if len(doc_ids) != len(texts) or not doc_ids:
            raise ValueError(
                f"expected equal, non-zero numbers of ids and texts, got {len(doc_ids)} and "
                f"{len(texts)}"
            )
        model = bm25s.BM25(k1=params.k1, b=params.b, method=params.method)
        tokens = bm25s.tokenize(
            list(texts),
            stopwords=params.stopwords,
            stemmer=_stemmer(params.stemmer),
            show_progress=False,
        )
        model.index(tokens, show_progress=False)
        return cls(params, list(doc_ids), model, list(texts))

    def _search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Fewer than ``k`` hits when fewer documents match any query term."""
        results: list[list[Hit]] = []
        for query_tokens in self._terms(queries):
            if not query_tokens:
                results.append([])
                continue
            ids, scores = self._model.retrieve([query_tokens], k=k, show_progress=False)
            hits = [
                Hit(self.doc_ids[i], float(s), r, self.texts[i] if self.texts else None)
                for r, (i, s) in enumerate(zip(ids[0], scores[0], strict=True))
                if s > 0
            ]
            results.append(hits)
        return results

    def corpus_scores(self, query: str) -> np.ndarray:
        """The query's BM25 score for every document, in ``doc_ids`` order (0 where no term
        matches): what a teacher needs for documents beyond the retrieved top k."""
        tokens = self._terms([query])[0]
        if not tokens:
            return np.zeros(len(self.doc_ids), dtype=np.float32)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float32)

    def document_scores(self, query: str, doc_ids: Sequence[str]) -> np.ndarray:
        """The query's BM25 score for each of ``doc_ids``, equal to :meth:`corpus_scores` at
        their positions, but reading only those documents' postings (a binary search in each
        query term's), so its cost does not grow with the corpus."""
        positions = self._position(doc_ids)
        tokens = self._terms([query])[0]
        if not tokens:
            return np.zeros(len(positions), dtype=np.float32)
        if not self._postings_sorted():
            return self.corpus_scores(query)[positions]
        index = self._model.scores
        data, indices, indptr = index["data"], index["indices"], index["indptr"]
        term_ids = [self._model.vocab_dict[t] for t in tokens]
        scores = np.zeros(len(positions), dtype=np.dtype(self._model.dtype))
        # Term by term, in the query's order, as bm25s sums: the same float32 result, bit for bit.
        for term in term_ids:
            postings = indices[indptr[term] : indptr[term + 1]]
            if postings.size == 0:
                continue
            at = np.minimum(np.searchsorted(postings, positions), postings.size - 1)
            found = postings[at] == positions
            scores[found] += data[indptr[term] + at[found]]
        if self._model.nonoccurrence_array is not None:  # BM25L / BM25+ score absent terms
            scores += self._model.nonoccurrence_array[term_ids].sum()
        return scores.astype(np.float32, copy=False)

    def _analyse(self, queries: list[str]) -> list[list[str]]:
        """Each query's analysed terms that the index knows, repeats kept (bm25s counts them)."""
        tokens = bm25s.tokenize(
            queries,
            stopwords=self.params.stopwords,
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        vocab = self._model.vocab_dict
        return [[t for t in q if t in vocab] for q in tokens]

    def _postings_sorted(self) -> bool:
        """Whether every term's postings list is in document order (checked once), which the
        binary search of :meth:`document_scores` needs."""
        if self._sorted is None:
            indices = np.asarray(self._model.scores["indices"], dtype=np.int64)
            indptr = np.asarray(self._model.scores["indptr"], dtype=np.int64)
            ascending = np.diff(indices) > 0
            starts = indptr[1:-1]
            ascending[starts[(starts > 0) & (starts < indices.size)] - 1] = True  # term boundary
            self._sorted = bool(ascending.all())
        return self._sorted

    def save(self, path: str | Path) -> None:
        """Write the index atomically (a temporary directory, then a rename)."""
        with atomic_directory(path) as tmp:
            self._model.save(str(tmp), show_progress=False)
            (tmp / "crossrank_bm25.json").write_text(
                json.dumps(
                    {"params": asdict(self.params), "doc_ids": self.doc_ids, "texts": self.texts}
                )
            )

    @classmethod
    def load(cls, path: str | Path) -> BM25Retriever:
        path = Path(path)
        meta_path = path / "crossrank_bm25.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: expected a crossrank BM25 index, found none")
        meta = json.loads(meta_path.read_text())
        model = bm25s.BM25.load(str(path), show_progress=False)
        return cls(BM25Params(**meta["params"]), meta["doc_ids"], model, meta.get("texts"))


def _stemmer(language: str | None):
    if language is None:
        return None
    import Stemmer

    return Stemmer.Stemmer(language)


def index_key(fingerprint: str, params: BM25Params) -> str:
    """Cache key of an index: the corpus fingerprint and the parameters."""
    blob = json.dumps(
        {
            "corpus": fingerprint,
            "params": asdict(params),
            "format": INDEX_FORMAT,
            "bm25s": bm25s.__version__,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def texts_fingerprint(doc_ids: Sequence[str], texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for doc_id, text in zip(doc_ids, texts, strict=True):
        h.update(doc_id.encode())
        h.update(b"\0")
        h.update(text.encode())
        h.update(b"\1")
    return h.hexdigest()


def cached_bm25(
    doc_ids: Sequence[str],
    texts: Sequence[str],
    cache_dir: str | Path | None,
    params: BM25Params | None = None,
) -> BM25Retriever:
    """Load the index for this corpus and these parameters from ``cache_dir``, or build it."""
    params = params or BM25Params()
    if cache_dir is None:
        return BM25Retriever.build(doc_ids, texts, params)
    path = Path(cache_dir) / f"bm25-{index_key(texts_fingerprint(doc_ids, texts), params)}"
    if (path / "crossrank_bm25.json").is_file():
        try:
            return BM25Retriever.load(path)
        except Exception as exc:  # a damaged cache is rebuilt, not trusted
            log.warning("rebuilding BM25 index at %s: %s", path, exc)
    retriever = BM25Retriever.build(doc_ids, texts, params)
    retriever.save(path)
    return retriever


def bm25_for(
    dataset: BeirDataset, cache_dir: str | Path | None = None, params: BM25Params | None = None
) -> BM25Retriever:
    """BM25 over the whole corpus of a BEIR dataset (cached in ``cache_dir`` when given)."""
    return cached_bm25(*dataset.corpus_texts(), cache_dir, params)
