"""The do-no-harm guard: a query whose cross-encoder disagrees with the first stage far more
than on dev falls back toward the first stage's order; agreeing queries keep the fitted fusion."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.pipeline.agreement import rank_agreement, trust
from crossrank.pipeline.fusion import Fusion, interpolate
from crossrank.pipeline.fusion_fit import fit_weight

SCORES = st.integers(-5, 5).map(float)


@settings(max_examples=200, deadline=None)
@given(
    pair=st.integers(3, 40).flatmap(
        lambda n: st.tuples(*[st.lists(SCORES, min_size=n, max_size=n)] * 2)
    )
)
def test_rank_agreement_is_spearmans_rho_with_ties(pair):
    from scipy.stats import spearmanr

    a, b = map(np.array, pair)
    expected = spearmanr(a, b).statistic
    got = rank_agreement(a, b)
    assert got == pytest.approx(0.0 if np.isnan(expected) else expected, abs=1e-9)


def test_trust_is_full_above_the_floor_and_zero_without_agreement():
    fs = np.arange(10.0)[::-1]
    assert trust(fs, fs, 0.4) == 1.0  # rho = 1
    assert trust(-fs, fs, 0.4) == 0.0  # rho = -1
    assert trust(-fs, fs, None) == 1.0  # no guard
    half = np.array([9, 8, 7, 6, 5, 0, 1, 2, 3, 4], dtype=float)  # rho about 0.39
    assert 0.0 < trust(half, fs, 0.8) < 1.0


def test_an_untrusted_query_gets_the_first_stages_order():
    fs = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    ce = fs[::-1].copy()  # the cross-encoder reverses the first stage
    guarded = Fusion(0.3, "hybrid", agreement_floor=0.2).apply(ce, fs)
    assert list(np.argsort(-guarded, kind="stable")) == [0, 1, 2, 3, 4]
    plain = Fusion(0.3, "hybrid").apply(ce, fs)
    assert list(np.argsort(-plain, kind="stable")) == [4, 3, 2, 1, 0]
    assert np.allclose(interpolate(ce, fs, 0.3, 1.0), plain)


def test_guard_round_trips_through_the_manifest_entry():
    fusion = Fusion(0.3, "bm25", fitted_on="x:dev", fit={"queries": 3}, agreement_floor=0.25)
    assert Fusion.from_dict(fusion.to_dict()) == fusion
    with pytest.raises(ValueError, match="agreement_floor"):
        Fusion.from_dict({**fusion.to_dict(), "agreement_floor": "high"})


def test_fit_applies_the_guard_it_is_given():
    fs = np.arange(6.0)[::-1]

    def metric(s):  # 1 when the true best document (index 5) is on top
        return float(np.argmax(s) == 5)

    reversed_ce = fs[::-1].copy()  # puts index 5 on top: right, but disagreeing with fs
    lists = [(reversed_ce, fs, metric)]
    assert fit_weight(lists)[1] == 1.0
    assert fit_weight(lists, floor=0.5)[1] == 0.0  # guarded: the first stage's order wins


def test_fit_refuses_no_queries_and_an_empty_grid():
    with pytest.raises(ValueError, match=r"expected at least one query's scores .* got none"):
        fit_weight([])
    lists = [(np.array([1.0, 0.0]), np.array([0.0, 1.0]), lambda s: float(s[0] > s[1]))]
    with pytest.raises(ValueError, match=r"expected at least one candidate weight .* got none"):
        fit_weight(lists, grid=[])
