"""Validation metrics agree with ``crossrank eval``'s, positives outside the candidates included."""

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.data.examples import LabeledQuery, LabeledSet
from crossrank.data.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from crossrank.train.datasets import RankingDataset, collate_pairs
from crossrank.train.val_metrics import RerankMetrics

DOCS = [f"d{i}" for i in range(30)]


@st.composite
def eval_sets(draw):
    queries, scores = [], {}
    for qi in range(draw(st.integers(1, 4))):
        candidates = draw(st.lists(st.sampled_from(DOCS), min_size=1, max_size=15, unique=True))
        judged = draw(st.dictionaries(st.sampled_from(DOCS), st.integers(0, 2), max_size=12))
        queries.append(LabeledQuery(f"q{qi}", f"query {qi}", judged, candidates))
        # Few distinct values, so ties (broken by first-stage order) happen.
        for doc in candidates:
            scores[(f"query {qi}", f"text {doc}")] = draw(st.integers(0, 3)) / 2
    return LabeledSet(queries, {d: f"text {d}" for d in DOCS}, "generated"), scores


def _metrics(data: LabeledSet, scores: dict, batch_size: int, seed: int = 0) -> dict[str, float]:
    dataset = RankingDataset(data, "candidates")
    order = list(range(len(dataset)))
    random.Random(seed).shuffle(order)  # pairs out of order, as from several processes
    metric = RerankMetrics(k=10)
    for start in range(0, len(order), batch_size):  # queries split across batches
        batch = collate_pairs([dataset[i] for i in order[start : start + batch_size]])
        pair_scores = torch.tensor(
            [scores[p] for p in zip(batch.queries, batch.documents, strict=True)]
        )
        metric.update(
            batch.query_index,
            pair_scores,
            batch.labels.view(-1),
            batch.first_stage_rank,
            batch.ideal_dcg,
            batch.n_relevant,
        )
    return {name: float(value) for name, value in metric.compute().items()}


@settings(max_examples=60, deadline=None)
@given(eval_sets(), st.integers(1, 7), st.integers(0, 1000))
def test_validation_metrics_equal_the_evaluators_over_full_judgments(generated, batch_size, seed):
    data, scores = generated
    got = _metrics(data, scores, batch_size, seed)
    ndcg, mrr, recall, first = [], [], [], []
    for q in data.queries:
        order = sorted(
            range(len(q.candidates)),
            key=lambda i: (-scores[(q.text, f"text {q.candidates[i]}")], i),
        )
        ranked = [q.candidates[i] for i in order]
        ndcg.append(ndcg_at_k(ranked, q.judged, 10))
        mrr.append(mrr_at_k(ranked, q.judged, len(ranked)))
        recall.append(recall_at_k(ranked, q.judged, 10))
        first.append(ndcg_at_k(q.candidates, q.judged, 10))
    n = len(data.queries)
    assert got["ndcg@10"] == pytest.approx(sum(ndcg) / n, abs=1e-6)
    assert got["mrr"] == pytest.approx(sum(mrr) / n, abs=1e-6)
    assert got["recall@10"] == pytest.approx(sum(recall) / n, abs=1e-6)
    assert got["first_stage_ndcg@10"] == pytest.approx(sum(first) / n, abs=1e-6)


def test_a_positive_the_first_stage_missed_lowers_the_validation_ndcg():
    # The candidates hold one of the query's two positives: a perfect reranking of them is
    # not a perfect nDCG, and the recall is a half.
    query = LabeledQuery("q", "query", {"a": 1, "missed": 1}, ["b", "a", "c"])
    data = LabeledSet([query], {d: f"text {d}" for d in "abc"} | {"missed": "text"}, "t")
    scores = {("query", "text a"): 2.0, ("query", "text b"): 1.0, ("query", "text c"): 0.0}
    got = _metrics(data, scores, batch_size=8)
    assert got["ndcg@10"] == pytest.approx(1 / (1 + 1 / 1.584962500721156), abs=1e-6)
    assert got["recall@10"] == pytest.approx(0.5)
    assert got["mrr"] == pytest.approx(1.0)
