"""Tests on ../shared/data (skipped where absent; CI sets CROSSRANK_REQUIRE_SHARED_DATA=1)."""

import pytest

from crossrank.data.beir import load_beir
from crossrank.data.metrics import mean, ndcg_at_k
from crossrank.retrieval import BM25Retriever
from tests.conftest import shared_dataset


@pytest.mark.parametrize(
    ("name", "split", "queries"),
    [
        ("nfcorpus", "train", 2590),
        ("nfcorpus", "dev", 324),
        ("nfcorpus", "test", 323),
        ("scifact", "train", 809),
    ],
)
def test_real_beir_folders_load(name, split, queries):
    ds = load_beir(shared_dataset(name), split)
    assert len(ds.judged_queries()) == queries
    assert len(ds.corpus) > 3000


def test_bm25_on_nfcorpus_test_is_near_the_published_0325():
    ds = load_beir(shared_dataset("nfcorpus"), "test")
    ids = list(ds.corpus)
    bm25 = BM25Retriever.build(ids, [ds.doc_text(d) for d in ids])
    qids = ds.judged_queries()
    runs = bm25.retrieve_many([ds.queries[q] for q in qids], 100)
    value = mean(
        [
            ndcg_at_k([h.doc_id for h in hits], ds.qrels[q])
            for q, hits in zip(qids, runs, strict=True)
        ]
    )
    assert value == pytest.approx(0.325, abs=0.01)
