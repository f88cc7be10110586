"""A document's score never depends on the other pairs scored with it, at every precision."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossrank.data.examples import fixture_path
from crossrank.runtime import OnnxReranker

pytestmark = pytest.mark.slow  # they use the session's trained tiny model

DOCS = [
    json.loads(line)["text"] for line in (fixture_path() / "corpus.jsonl").open(encoding="utf-8")
][:24]
QUERY = "how do I descale my coffee machine"
# Calls hold pairs of one length (nothing padded; int8 one pair), so scores are bitwise equal.
# int8-ov quantizes activations per token, so a pair's scales are its own.
TOLERANCE = {"fp32": 0.0, "int8": 0.0, "bf16": 0.0, "int8-ov": 0.0}


@pytest.fixture(scope="module", params=["fp32", "int8", "bf16", "int8-ov"])
def reranker(request, tiny_artifact):
    if request.param in ("bf16", "int8-ov"):
        pytest.importorskip("openvino")
    r = OnnxReranker(tiny_artifact, precision=request.param)
    r.alone = r.score_pairs([QUERY] * len(DOCS), DOCS, groups=list(range(len(DOCS))))
    return r


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(picked=st.lists(st.integers(0, len(DOCS) - 1), min_size=2, max_size=len(DOCS)))
def test_scores_do_not_move_with_batch_mates(reranker, picked):
    together = reranker.score(QUERY, [DOCS[i] for i in picked])
    expected = reranker.alone[picked]
    assert np.abs(together - expected).max() <= TOLERANCE[reranker.precision]


def test_int8_refuses_a_batch_size_that_would_mix_pairs(tiny_artifact):
    with pytest.raises(ValueError, match="batch_size 1 or None with int8"):
        OnnxReranker(tiny_artifact, precision="int8", batch_size=8)
    assert OnnxReranker(tiny_artifact, precision="int8").batch_size == 1


def test_int8_ov_ranks_like_fp32(tiny_artifact):
    pytest.importorskip("openvino")
    from scipy.stats import spearmanr

    fp32 = OnnxReranker(tiny_artifact, precision="fp32").score(QUERY, DOCS)
    int8 = OnnxReranker(tiny_artifact, precision="int8-ov").score(QUERY, DOCS)
    assert spearmanr(fp32, int8).statistic > 0.95
    assert np.abs(fp32 - int8).max() < 0.1 * (fp32.max() - fp32.min())
