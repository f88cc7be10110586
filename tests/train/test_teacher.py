"""The hybrid teacher: false-negative filtering, and distillation targets that stay with their
documents (the data module's items, the collated batch, and the loss)."""

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.data.examples import LabeledQuery, LabeledSet
from crossrank.retrieval.hybrid import zscore
from crossrank.train.datasets import GroupDataset, collate_groups
from crossrank.train.losses import distill_kl
from crossrank.train.teacher import likely_false_negatives, teacher_list
from tests.train.test_losses import descend

DOCS = [f"d{i}" for i in range(30)]


@settings(max_examples=200, deadline=None)
@given(
    bm25=st.permutations(DOCS),
    dense=st.permutations(DOCS),
    judged=st.dictionaries(st.sampled_from(DOCS), st.integers(0, 2), max_size=12),
    top=st.integers(1, 30),
)
def test_false_negative_filter_never_drops_a_judged_document(bm25, dense, judged, top):
    unsure = likely_false_negatives(judged, bm25, dense, top)
    assert not unsure & set(judged)
    assert unsure == {d for d in set(bm25[:top]) & set(dense[:top]) if d not in judged}


def test_teacher_list_scores_follow_their_documents():
    rng = np.random.default_rng(0)
    bm25, cosine = rng.random(30).astype(np.float32), rng.random(30).astype(np.float32)
    judged = {"d3": 1}
    candidates, scores, unsure = teacher_list(bm25, cosine, DOCS, judged, 10, 10, 5)
    # Shuffle the corpus order: each document keeps its score, and the list its order.
    perm = rng.permutation(30)
    shuffled = teacher_list(bm25[perm], cosine[perm], [DOCS[i] for i in perm], judged, 10, 10, 5)
    assert shuffled[0] == candidates
    assert dict(zip(shuffled[0], shuffled[1], strict=True)) == dict(
        zip(candidates, scores, strict=True)
    )
    assert shuffled[2] == unsure and "d3" not in unsure
    rows = [DOCS.index(d) for d in candidates]
    expected = zscore(bm25[rows]) + zscore(cosine[rows])
    assert np.allclose(scores, expected)
    assert set(candidates) >= {DOCS[i] for i in np.argsort(-cosine)[:10]}  # the dense top 10


def _query() -> LabeledSet:
    docs = {d: f"text of {d}" for d in DOCS}
    q = LabeledQuery("q", "query", {"d0": 2, "d1": 1}, candidates=list(DOCS))
    q.teacher = {d: float(i) for i, d in enumerate(DOCS)}
    q.unsure = {f"d{i}" for i in range(2, 20)}
    return LabeledSet([q], docs, "test")


def test_unsure_documents_are_never_negatives_and_positives_stay():
    data = _query()
    ds = GroupDataset(data, 7, "candidates", seed=1, repeats=20, ranks=(0, 30))
    by_text = {t: d for d, t in data.documents.items()}
    seen_positives = set()
    for i in range(len(ds)):
        _, texts, labels, _ = ds[i]
        docs = [by_text[t] for t in texts]
        seen_positives.add(docs[0])
        for doc, label in zip(docs[1:], labels[1:], strict=True):
            assert label < 0 or doc not in data.queries[0].unsure
    assert seen_positives == {"d0", "d1"}


def test_teacher_targets_line_up_with_their_documents():
    data = _query()
    ds = GroupDataset(data, 7, "candidates", seed=3, repeats=4, ranks=(0, 30))
    by_text = {t: d for d, t in data.documents.items()}
    items = [ds[i] for i in range(len(ds))]
    for _, texts, labels, teacher in items:
        for text, label, score in zip(texts, labels, teacher, strict=True):
            if label >= 0:
                assert score == data.queries[0].teacher[by_text[text]]
            else:
                assert math.isnan(score)
    batch = collate_groups(items)
    for row, (_, texts, _, _) in enumerate(items):
        for col, text in enumerate(texts):
            if batch.labels[row, col] >= 0:
                assert batch.teacher[row, col] == data.queries[0].teacher[by_text[text]]


def test_distillation_follows_a_shuffled_group():
    scores = torch.tensor([[2.0, 0.5, -1.0, 0.0, 1.0]])
    teacher = torch.tensor([[1.0, 3.0, -2.0, math.nan, 0.0]])
    base = distill_kl(scores, teacher)
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert torch.allclose(distill_kl(scores[:, perm], teacher[:, perm]), base)
    assert not torch.allclose(distill_kl(scores[:, perm], teacher), base)  # targets misaligned


def test_distillation_pulls_the_student_to_the_teachers_order():
    teacher = torch.tensor([[3.0, 1.0, math.nan, 2.0]])
    s = descend(lambda scores: distill_kl(scores, teacher), (1, 4), steps=200, lr=1.0)[0]
    assert s[0] > s[3] > s[1]
    assert s[2] == 0  # a candidate the teacher did not score gets no gradient
    assert distill_kl(s[None], teacher).item() < 1e-3


def test_distillation_shape_error_names_both_shapes():
    import pytest

    with pytest.raises(ValueError, match=r"\(1, 3\) and \(1, 4\)"):
        distill_kl(torch.zeros(1, 3), torch.zeros(1, 4))
