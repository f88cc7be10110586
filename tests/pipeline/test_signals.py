"""A hybrid first stage hands fusion its components' scores (``Hit.signals``), not only the
rank-based RRF score; fusion fitted on them reads z(BM25) + z(cosine) for each candidate."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.cli.fuse import evidence_signals
from crossrank.data.beir import load_beir
from crossrank.data.examples import fixture_path
from crossrank.pipeline.fusion import Fusion, first_stage_evidence, stored_fusion
from crossrank.retrieval.base import CorpusRetriever, Hit
from crossrank.retrieval.bm25 import BM25Params, BM25Retriever
from crossrank.retrieval.hybrid import HybridRetriever, zscore

FIXTURE = fixture_path()
QUERY = "how long should french press coffee steep"


def two_bm25_hybrid(depth: int) -> HybridRetriever:
    """A hybrid of two real retrievers that rank differently (stemmed vs not, other k1/b)."""
    data = load_beir(FIXTURE, "eval")
    ids, texts = data.corpus_texts()
    plain = BM25Params(k1=0.9, b=0.4, stemmer=None, stopwords=None)
    return HybridRetriever(
        {"a": BM25Retriever.build(ids, texts), "b": BM25Retriever.build(ids, texts, plain)},
        depth=depth,
    )


class LengthRetriever(CorpusRetriever):
    """Ranks documents by length: a first stage unlike BM25, so that the spread of the two
    signals differs between a short list and a long one."""

    def __init__(self, doc_ids: list[str], texts: list[str]) -> None:
        self.doc_ids, self.texts = doc_ids, texts
        self.lengths = np.array([len(t) for t in texts], dtype=np.float64)

    def document_scores(self, query: str, doc_ids) -> np.ndarray:
        return self.lengths[self._position(doc_ids)]

    def _search(self, queries: list[str], k: int) -> list[list[Hit]]:
        top = np.argsort(-self.lengths, kind="stable")[:k]
        hits = [Hit(self.doc_ids[i], self.lengths[i], r, self.texts[i]) for r, i in enumerate(top)]
        return [hits for _ in queries]


def hits_with(a: list[float], b: list[float]) -> list[Hit]:
    return [
        Hit(f"d{i}", 1.0 / (i + 1), i, None, {"a": x, "b": y})
        for i, (x, y) in enumerate(zip(a, b, strict=True))
    ]


FLOATS = st.floats(-20, 20, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 30).flatmap(
        lambda n: st.lists(st.tuples(FLOATS, FLOATS), min_size=n, max_size=n)
    )
)
def test_evidence_is_the_sum_of_the_signals_z_scores(pairs):
    a, b = (list(x) for x in zip(*pairs, strict=True))
    hits = hits_with(a, b)
    np.testing.assert_allclose(
        first_stage_evidence(hits, ("a", "b")), zscore(np.array(a)) + zscore(np.array(b))
    )
    np.testing.assert_allclose(first_stage_evidence(hits), [h.score for h in hits])  # no signals
    # Each candidate keeps its own evidence whatever the list's order.
    order = np.random.default_rng(len(a)).permutation(len(a))
    shuffled = first_stage_evidence([hits[i] for i in order], ("a", "b"))
    # (summing in another order moves the mean by a rounding step: hence the atol)
    np.testing.assert_allclose(shuffled, first_stage_evidence(hits, ("a", "b"))[order], atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(FLOATS, st.integers(1, 40), st.lists(FLOATS, min_size=2, max_size=40))
def test_a_constant_list_z_scores_to_zeros_and_any_other_to_mean_0_std_1(value, n, scores):
    assert np.array_equal(zscore(np.full(n, value)), np.zeros(n))  # not +-1 from rounding
    z = zscore(np.array(scores))
    if np.ptp(scores) > 1e-6:
        assert abs(z.mean()) < 1e-9 and z.std() == pytest.approx(1.0)


def test_evidence_refuses_hits_without_the_signals_it_was_fitted_on():
    bare = [Hit("d0", 1.0, 0), Hit("d1", 0.5, 1)]
    with pytest.raises(ValueError, match=r"expected first-stage signals \['a', 'b'\].*got none"):
        first_stage_evidence(bare, ("a", "b"))
    with pytest.raises(ValueError, match=r"got \['a'\] on 'd0'"):
        first_stage_evidence([Hit("d0", 1.0, 0, None, {"a": 1.0})], ("a", "b"))


def test_signals_round_trip_and_old_entries_read_the_score():
    fusion = Fusion(0.7, "hybrid", fitted_on="x:dev", signals=("bm25", "dense"))
    again = Fusion.from_dict(fusion.to_dict())
    assert again == fusion and again.signals == ("bm25", "dense")
    old = {"weight": 0.3, "first_stage": "hybrid", "normalization": "zscore"}
    assert stored_fusion(old, "hybrid").signals == ()
    with pytest.raises(ValueError, match="expected a list of signal names"):
        Fusion.from_dict({**old, "signals": "bm25"})


def test_fuse_reads_signals_only_from_a_hybrid_first_stage():
    assert evidence_signals("hybrid", "auto") == ("bm25", "dense")
    assert evidence_signals("hybrid", "score") == ()
    assert evidence_signals("bm25", "auto") == ()
    with pytest.raises(ValueError, match="expected --retriever hybrid"):
        evidence_signals("bm25", "signals")


def test_every_hybrid_hit_carries_each_components_score_even_when_its_list_missed_it():
    hybrid = two_bm25_hybrid(depth=3)
    hits = hybrid.retrieve(QUERY, 6)
    lists = {
        n: {h.doc_id: h.score for h in r.retrieve(QUERY, 3)} for n, r in hybrid.retrievers.items()
    }
    assert any(h.doc_id not in lists["a"] or h.doc_id not in lists["b"] for h in hits)
    assert len(set(hits)) == len(hits)  # hits with signals stay hashable
    for name, r in hybrid.retrievers.items():
        expected = r.document_scores(QUERY, [h.doc_id for h in hits])
        np.testing.assert_allclose([h.signals[name] for h in hits], expected, rtol=1e-6)
        for h in hits:  # a document a component retrieved keeps that component's own score
            if h.doc_id in lists[name]:
                assert h.signals[name] == pytest.approx(lists[name][h.doc_id], rel=1e-6)
    with pytest.raises(KeyError, match="unknown id 'nope'"):
        hybrid.retrievers["a"].document_scores(QUERY, ["nope"])


@pytest.mark.slow
def test_sweep_fuses_each_budget_on_its_own_top_n_like_eval(tiny_artifact):
    """The evidence's z-scores are over the N candidates reranked: every N of a sweep equals
    `eval --top-n N` with the same signal fusion."""
    from crossrank.eval.evaluate import evaluate
    from crossrank.eval.sweep import sweep
    from crossrank.pipeline.stages import build_reranker

    data = load_beir(FIXTURE, "eval")
    ids, texts = data.corpus_texts()
    hybrid = HybridRetriever(
        {"a": BM25Retriever.build(ids, texts), "b": LengthRetriever(ids, texts)}, depth=30
    )
    fusion = Fusion(2.0, "hybrid", signals=("a", "b"))
    reranker = build_reranker(tiny_artifact, "int8")
    ns = [5, 10, 30]
    result = sweep(FIXTURE, "eval", hybrid, reranker, ns, progress=False, fusion=fusion)
    for row in result["rows"]:
        report = evaluate(
            FIXTURE, "eval", hybrid, "hybrid", row["n"], reranker, progress=False, fusion=fusion
        )
        assert row["ndcg@10"] == pytest.approx(report["reranked"]["ndcg@10"], abs=1e-12), row["n"]


def test_a_hybrid_search_analyses_each_query_once_per_component(monkeypatch):
    import bm25s

    from crossrank.retrieval import bm25 as bm25_module

    hybrid, other = two_bm25_hybrid(depth=10), "french press coffee"
    alone = hybrid.retrievers["a"]
    expected = {q: alone.document_scores(q, alone.doc_ids) for q in (QUERY, other)}
    analysed = []
    real = bm25s.tokenize

    def counting(texts, *args, **kwargs):  # the real analyser, counted
        analysed.append(list(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(bm25_module.bm25s, "tokenize", counting)
    for query in (QUERY, other, QUERY):
        analysed.clear()
        hits = hybrid.retrieve(query, 5)
        # One search and its candidates' scores from one analysis, in each component.
        assert analysed == [[query], [query]]
        # ... and the scores are the query's, not the last query's.
        positions = [alone.doc_ids.index(h.doc_id) for h in hits]
        assert [h.signals["a"] for h in hits] == pytest.approx(expected[query][positions].tolist())


def test_last_query_keeps_one_single_query_value():
    from crossrank.retrieval.base import LastQuery

    calls = []

    def derive(queries):
        calls.append(queries)
        return [q.upper() for q in queries]

    memo = LastQuery(derive)
    assert memo(["a"]) == ["A"] and memo(["a"]) == ["A"]
    assert memo(["b"]) == ["B"] and memo(["a", "b"]) == ["A", "B"] and memo(["b"]) == ["B"]
    assert calls == [["a"], ["b"], ["a", "b"]]  # batches are derived, not kept
