import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.data.beir import load_beir
from crossrank.data.examples import fixture_path
from crossrank.data.metrics import ndcg_at_k
from crossrank.pipeline.two_stage import RetrieveThenRerank, _warned, pipeline, warn_if_shallow
from crossrank.retrieval import BM25Params, BM25Retriever, Retriever, cached_bm25
from tests.conftest import outputs_across_hash_seeds


@pytest.fixture(scope="module")
def fixture_bm25():
    data = load_beir(fixture_path(), "eval")
    ids = list(data.corpus)
    return data, BM25Retriever.build(ids, [data.doc_text(d) for d in ids])


class Overlap:
    """A transparent scorer: counts shared words (stands in for a cross-encoder)."""

    def score(self, query, documents):
        q = set(query.lower().split())
        return np.array([len(q & set(d.lower().split())) for d in documents], dtype=np.float32)


def test_bm25_retrieves_ranked_hits_with_text(fixture_bm25):
    data, bm25 = fixture_bm25
    assert isinstance(bm25, Retriever)
    hits = bm25.retrieve("french press steep time", 5)
    assert len(hits) == 5 and [h.rank for h in hits] == list(range(5))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].text == data.doc_text(hits[0].doc_id)
    assert bm25.retrieve("zzzz qqqq", 5) == []  # no known term: nothing, not an error


def test_bm25_index_round_trips_and_cache_is_keyed_by_params(fixture_bm25, tmp_path):
    data, bm25 = fixture_bm25
    bm25.save(tmp_path / "idx")
    loaded = BM25Retriever.load(tmp_path / "idx")
    assert loaded.retrieve("sourdough starter", 10) == bm25.retrieve("sourdough starter", 10)
    ids = list(data.corpus)
    texts = [data.doc_text(d) for d in ids]
    cached_bm25(ids, texts, tmp_path / "cache")
    cached_bm25(ids, texts, tmp_path / "cache", BM25Params(stemmer=None, stopwords=None))
    cached_bm25(ids, texts, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("bm25-*"))) == 2
    with pytest.raises(FileNotFoundError, match=r"crossrank_bm25\.json"):
        BM25Retriever.load(tmp_path / "nothing")


WORDS = st.sampled_from(
    ["coffee", "brew", "steep", "press", "bean", "roast", "water", "grind", "tea", "leaf"]
)


@settings(max_examples=60, deadline=None)
@given(
    docs=st.lists(st.lists(WORDS, min_size=1, max_size=12), min_size=2, max_size=30),
    query=st.lists(WORDS, min_size=1, max_size=6),  # repeated terms count twice in bm25s
    method=st.sampled_from(["lucene", "bm25+", "bm25l"]),
    data=st.data(),
)
def test_bm25_scores_of_some_documents_equal_the_whole_corpus_scores_bit_for_bit(
    docs, query, method, data
):
    ids = [f"d{i}" for i in range(len(docs))]
    bm25 = BM25Retriever.build(ids, [" ".join(d) for d in docs], BM25Params(method=method))
    wanted = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=2 * len(ids)))
    q = " ".join(query)
    expected = bm25.corpus_scores(q)[[ids.index(d) for d in wanted]]
    got = bm25.document_scores(q, wanted)
    assert got.dtype == np.float32 and np.array_equal(got, expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=60), st.data())
def test_dense_top_k_is_the_first_k_of_the_full_ranking_with_ties_in_index_order(values, data):
    from crossrank.retrieval.dense import top_k

    scores = np.array(values, dtype=np.float32)  # few distinct values: many ties
    k = data.draw(st.integers(1, len(values)))
    full = np.argsort(-scores, kind="stable")
    assert top_k(scores, k).tolist() == full[:k].tolist()


def test_pipeline_reranks_the_first_stage_and_times_both_stages(fixture_bm25):
    _, bm25 = fixture_bm25
    result = pipeline(
        "how long should french press coffee steep", bm25, Overlap(), top_n=30, top_k=5
    )
    assert 5 < len(result.first_stage) <= 30 and len(result.reranked) == 5  # only matching docs
    assert {h.doc_id for h in result.reranked} <= {h.doc_id for h in result.first_stage}
    scores = [h.score for h in result.reranked]
    assert scores == sorted(scores, reverse=True)
    assert set(result.timings_ms) == {"retrieve", "rerank", "total"}
    assert all(v >= 0 for v in result.timings_ms.values())


def test_shallow_pipeline_warns_once(fixture_bm25, caplog):
    _, bm25 = fixture_bm25
    _warned.clear()
    with caplog.at_level(logging.WARNING, logger="crossrank.pipeline.two_stage"):
        two_stage = RetrieveThenRerank(bm25, Overlap(), top_n=10, top_k=5)
        two_stage.run("sourdough")
        two_stage.run("bike")
    assert sum("top_n=10 is less than 3 * top_k=15" in r.message for r in caplog.records) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crossrank.pipeline.two_stage"):
        for k in range(1, 1000):  # clients of a service choose N and K: the log stays bounded
            warn_if_shallow(1, k)
    assert 0 < len(caplog.records) <= 16 and len(_warned) <= 16


def test_pipeline_uses_a_document_store_when_hits_have_no_text(fixture_bm25):
    data, bm25 = fixture_bm25
    textless = BM25Retriever(bm25.params, bm25.doc_ids, bm25._model)
    store = {d: data.doc_text(d) for d in data.corpus}
    result = RetrieveThenRerank(textless, Overlap(), 30, 10, documents=store).run("wifi channel")
    assert result.reranked[0].text == store[result.reranked[0].doc_id]
    with pytest.raises(ValueError, match="no text and no document store"):
        RetrieveThenRerank(textless, Overlap(), 30, 10).run("wifi channel")


def test_ndcg_matches_a_hand_computed_value():
    # gains 2 (rank 1), 0, 1 (rank 3); ideal 2, 1
    value = ndcg_at_k(["a", "b", "c"], {"a": 2, "c": 1, "z": 0}, k=10)
    expected = (2 + 1 / np.log2(4)) / (2 + 1 / np.log2(3))
    assert value == pytest.approx(expected)


def test_pinned_index_hash_is_the_same_in_every_process():
    code = (
        "from crossrank.data.beir import load_beir; from crossrank.data.examples import fixture_path;"
        "from crossrank.retrieval import BM25Retriever; from crossrank.pipeline.pinning import index_sha256;"
        "d = load_beir(fixture_path(), 'eval'); ids = list(d.corpus);"
        "print(index_sha256(BM25Retriever.build(ids, [d.doc_text(i) for i in ids])))"
    )
    assert len(outputs_across_hash_seeds(code)) == 1
