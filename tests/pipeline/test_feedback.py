"""Relevance feedback in fusion: the top of the fused list read as relevant, each candidate
scored by its bi-encoder likeness to it, fitted on dev, stored and applied from the manifest."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.pipeline.feedback import feedback_similarity, hit_vectors
from crossrank.pipeline.fusion import Fusion, fuse, interpolate
from crossrank.pipeline.fusion_fit import FEEDBACK_GRID, FitQuery, fit_weight
from crossrank.retrieval.base import CorpusRetriever, Hit
from crossrank.retrieval.hybrid import HybridRetriever, zscore


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


# Candidates 0 and 3 are alike (both relevant); 1, 2 and 4 point elsewhere.
VECTORS = unit([[1, 0.1, 0], [0, 1, 0], [0, 0.9, 0.4], [0.95, 0, 0.2], [0.1, 0.2, 1]])
CE = np.array([3.0, 2.0, 1.5, 0.0, 1.0])  # the cross-encoder finds 0, misses 3
FIRST = np.array([1.0, 2.0, 1.0, 0.5, 2.0])  # the first stage finds neither


def test_similarity_is_the_cosine_to_the_mean_of_the_top():
    scores = np.array([0.0, 5.0, 4.0, 1.0, 2.0])  # top 2: candidates 1 and 2
    centroid = VECTORS[[1, 2]].mean(axis=0)
    expected = VECTORS @ (centroid / np.linalg.norm(centroid))
    assert feedback_similarity(scores, VECTORS, 2) == pytest.approx(expected)


def test_feedback_lifts_a_candidate_like_the_top_and_leaves_it_alone_at_weight_zero():
    plain = interpolate(CE, FIRST, 0.5)
    assert np.argsort(-plain)[:2].tolist() != [0, 3]
    fed = fuse(CE, FIRST, 0.5, feedback=2.0, vectors=VECTORS, depth=1)
    assert np.argsort(-fed)[:2].tolist() == [0, 3]
    assert fuse(CE, FIRST, 0.5, feedback=0.0, vectors=VECTORS) == pytest.approx(plain)


def test_an_untrusted_query_keeps_the_first_stages_order_with_feedback():
    fed = fuse(CE, FIRST, 0.5, trust=0.0, feedback=2.0, vectors=VECTORS, depth=1)
    assert fed == pytest.approx(interpolate(CE, FIRST, 0.5, 0.0))


def test_feedback_without_vectors_is_refused():
    with pytest.raises(ValueError, match="expected the candidates' bi-encoder vectors"):
        fuse(CE, FIRST, 0.5, feedback=1.0)
    with pytest.raises(ValueError, match=r"expected one vector per candidate \(5\), got shape"):
        feedback_similarity(CE, VECTORS[:3], 1)


def test_the_fit_picks_feedback_where_it_helps_and_none_where_it_cannot():
    metric = lambda s: float(set(np.argsort(-s, kind="stable")[:2]) == {0, 3})  # noqa: E731
    fit = fit_weight([FitQuery(CE, FIRST, metric, VECTORS)], feedback_grid=FEEDBACK_GRID, depth=1)
    assert fit.feedback > 0 and fit.value == 1.0
    without = fit_weight([FitQuery(CE, FIRST, metric, VECTORS)], depth=1)
    assert without.feedback == 0.0 and without.value == 0.0
    with pytest.raises(ValueError, match="expected candidate vectors on every query"):
        fit_weight([FitQuery(CE, FIRST, metric)], feedback_grid=FEEDBACK_GRID)


def test_a_fusion_with_feedback_round_trips_and_reads_its_hits_vectors():
    fusion = Fusion(0.5, "hybrid", feedback=2.0, feedback_depth=1)
    again = Fusion.from_dict(fusion.to_dict())
    assert again == fusion and again.to_dict()["feedback"] == {"weight": 2.0, "depth": 1}
    assert "feedback" not in Fusion(0.5, "hybrid").to_dict()  # older readers see no new key
    hits = [Hit(f"d{i}", float(s), i, vector=VECTORS[i]) for i, s in enumerate(FIRST)]
    assert fusion.fuse(CE, hits) == pytest.approx(
        fuse(CE, FIRST, 0.5, feedback=2.0, vectors=VECTORS, depth=1), abs=1e-6
    )
    with pytest.raises(ValueError, match="expected the candidates' bi-encoder vectors"):
        fusion.fuse(CE, [Hit(h.doc_id, h.score, h.rank) for h in hits])


@pytest.mark.parametrize(
    "entry", [{"weight": -1, "depth": 3}, {"weight": 1.0, "depth": 0}, {"weight": "x"}, [1, 3]]
)
def test_a_bad_feedback_entry_names_what_was_expected(entry):
    with pytest.raises(ValueError, match=r"expected feedback as \{'weight': number >= 0"):
        Fusion.from_dict({"weight": 0.5, "first_stage": "hybrid", "feedback": entry})


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=2, max_size=12),
    st.integers(1, 5),
    st.randoms(use_true_random=False),
)
def test_similarity_follows_the_candidates_not_their_order(scores, depth, rnd):
    # Shuffling the candidates (scores and vectors together) shuffles the similarities alike.
    scores = np.array(scores) + np.arange(len(scores)) * 1e-3  # no ties: one top set
    rng = np.random.default_rng(rnd.randrange(2**32))
    vectors = unit(rng.normal(size=(len(scores), 4)))
    perm = rng.permutation(len(scores))
    base = feedback_similarity(scores, vectors, depth)
    assert feedback_similarity(scores[perm], vectors[perm], depth) == pytest.approx(base[perm])
    assert zscore(base).shape == base.shape


class VectorRetriever(CorpusRetriever):
    """A first stage that embeds documents (as the dense one does), over fixed vectors."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.doc_ids = [f"d{i}" for i in range(len(vectors))]
        self.vectors = vectors

    def document_vectors(self, doc_ids) -> np.ndarray:
        return self.vectors[self._position(doc_ids)]

    def document_scores(self, query: str, doc_ids) -> np.ndarray:
        return self.document_vectors(doc_ids) @ self.vectors[0]

    def _search(self, queries, k):
        order = np.argsort(-(self.vectors @ self.vectors[0]), kind="stable")[:k]
        return [[Hit(self.doc_ids[i], 0.0, r) for r, i in enumerate(order)] for _ in queries]


def test_a_hybrid_first_stage_hands_each_hit_its_vector():
    dense = VectorRetriever(VECTORS)
    hits = HybridRetriever({"dense": dense, "again": VectorRetriever(VECTORS)}).retrieve("q", 5)
    assert [h.doc_id for h in hits] != sorted(h.doc_id for h in hits)  # not in corpus order
    assert hit_vectors(hits) == pytest.approx(dense.document_vectors([h.doc_id for h in hits]))
    assert hit_vectors([Hit("d0", 1.0, 0)]) is None


def test_feedback_shrinks_with_the_querys_trust():
    for t in (0.25, 0.5, 1.0):
        plain = interpolate(CE, FIRST, 0.5, t)
        fed = fuse(CE, FIRST, 0.5, trust=t, feedback=2.0, vectors=VECTORS, depth=1)
        expected = t * 2.0 * zscore(feedback_similarity(plain, VECTORS, 1))
        assert fed - plain == pytest.approx(expected)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([None, 0.3]))
def test_the_fit_is_the_best_of_fuse_over_the_grid(seed, floor):
    # The fit's fast path (feedback computed once per first-stage weight) scores as fuse does.
    rng = np.random.default_rng(seed)
    queries = []
    for _ in range(3):
        n = int(rng.integers(2, 9))
        gains = rng.random(n)  # a DCG over random gains: few ties between rankings
        metric = lambda s, g=gains: float(  # noqa: E731
            (g[np.argsort(-s, kind="stable")] / np.log2(np.arange(len(g)) + 2)).sum()
        )
        queries.append(
            FitQuery(rng.normal(size=n), rng.normal(size=n), metric, unit(rng.normal(size=(n, 3))))
        )
    grid, feedback_grid = (0.0, 0.5, 1.0), (0.0, 1.0, 2.0)
    shares = (0.5, 1.0, 0.25)  # novelty-guard shares: partial trust, whatever the agreement
    fit = fit_weight(queries, grid, floor, shares, feedback_grid=feedback_grid, depth=2)
    from crossrank.pipeline.agreement import trust

    def share(q, s):
        return min(trust(q.cross_encoder, q.first_stage, floor), s)

    def value(w, v):
        return np.mean(
            [
                q.metric(fuse(q.cross_encoder, q.first_stage, w, share(q, s), v, q.vectors, 2))
                for q, s in zip(queries, shares, strict=True)
            ]
        )

    best = max(value(w, v) for w in grid for v in feedback_grid)
    assert fit.value == pytest.approx(best)
    assert value(fit.weight, fit.feedback) == pytest.approx(best)
    # ... and of the equally good weights it keeps the smallest feedback, then first-stage weight.
    ties = [(v, w) for v in feedback_grid for w in grid if value(w, v) > best - 1e-12]
    assert (fit.feedback, fit.weight) == min(ties)
