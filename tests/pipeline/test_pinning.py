"""pipeline.json pins how its reranker read the documents (truncated, or pooled passages), and
opening it again reads them the same way: in `eval --pipeline` and in the service's /search."""

import asyncio
import json

import numpy as np
import pytest

from crossrank.data.examples import fixture_path
from crossrank.pipeline.pinning import PipelineSpec, open_pipeline, pin_pipeline
from crossrank.pipeline.stages import build_retriever
from crossrank.runtime.artifact import ArtifactError
from crossrank.runtime.passages import PassageScorer
from crossrank.runtime.reranker import OnnxReranker

FIXTURE = fixture_path()
QUERY = "how do I reset my router password"
LONG = " ".join(["the kitchen shelf holds jars of flour and sugar"] * 60) + (
    " to reset the router password hold the reset button for ten seconds"
)
DOCS = [LONG, "reset the router password with the pin on the label", "bake bread at 220 degrees"]


def pin(tmp_path, artifact, **options) -> PipelineSpec:
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"split": "eval", "knee": 10}))
    return pin_pipeline(
        tmp_path / "pipeline.json",
        data=FIXTURE,
        retriever_kind="bm25",
        retriever=build_retriever("bm25", FIXTURE, tmp_path / "cache"),
        model_dir=artifact,
        precision="fp32",
        top_n=10,
        top_k=3,
        sweep_json=sweep,
        **options,
    )


def test_a_pipeline_pinned_reading_passages_reopens_reading_them(tiny_artifact, tmp_path):
    pin(tmp_path, tiny_artifact, passages="max")
    spec, pipe = open_pipeline(tmp_path / "pipeline.json", tmp_path / "cache")
    assert spec.passages == "max" and pipe.reranker.pooling == "max"
    expected = PassageScorer(OnnxReranker(tiny_artifact), "max").score(QUERY, DOCS)
    np.testing.assert_allclose(pipe.reranker.score(QUERY, DOCS), expected, atol=1e-6)
    assert pipe.reranker.passages_scored[0] > 1  # the long document was read in parts


def test_a_pipeline_pinned_before_the_fields_existed_reopens_truncating(tiny_artifact, tmp_path):
    pin(tmp_path, tiny_artifact)
    raw = json.loads((tmp_path / "pipeline.json").read_text())
    assert raw["passages"] is None and raw["retriever"]["approximate"] is False
    del raw["passages"], raw["retriever"]["approximate"]
    (tmp_path / "pipeline.json").write_text(json.dumps(raw))
    spec, pipe = open_pipeline(tmp_path / "pipeline.json", tmp_path / "cache")
    assert spec.passages is None and not isinstance(pipe.reranker, PassageScorer)
    expected = OnnxReranker(tiny_artifact).score(QUERY, DOCS)
    np.testing.assert_allclose(pipe.reranker.score(QUERY, DOCS), expected, atol=1e-6)


def test_an_unknown_pooling_in_pipeline_json_is_refused(tiny_artifact, tmp_path):
    pin(tmp_path, tiny_artifact, passages="first_max")
    raw = json.loads((tmp_path / "pipeline.json").read_text())
    (tmp_path / "pipeline.json").write_text(json.dumps({**raw, "passages": "median"}))
    with pytest.raises(ArtifactError, match=r"expected passages null or one of .*got 'median'"):
        PipelineSpec.load(tmp_path / "pipeline.json")


@pytest.mark.parametrize("passages", [None, "first_max"])
def test_search_scores_candidates_the_way_the_pipeline_was_pinned(
    tiny_artifact, tmp_path, passages
):
    from crossrank.serve.metrics import Metrics
    from crossrank.serve.service import ServerConfig, Service

    pin(tmp_path, tiny_artifact, passages=passages)
    config = ServerConfig(
        pipeline=str(tmp_path / "pipeline.json"), cache_dir=str(tmp_path / "cache")
    )
    service = Service(config, Metrics())
    try:
        assert service.config.passages is (passages is not None)
        got = asyncio.run(service._search_scores(QUERY, DOCS))
    finally:
        service.engine.close()
    reranker = OnnxReranker(tiny_artifact)
    expected = (PassageScorer(reranker, passages) if passages else reranker).score(QUERY, DOCS)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_fusion_fitted_on_other_readings_says_so(caplog):
    from crossrank.pipeline.fusion import Fusion
    from crossrank.pipeline.stages import warn_on_reading_change

    truncated_fit = Fusion(0.4, "bm25", fit={"passages": None})
    passages = PassageScorer(reranker=None, pooling="first_max")
    warn_on_reading_change(truncated_fit, passages)
    assert "fitted on truncated documents, applied to passages (first_max)" in caplog.text
    caplog.clear()
    warn_on_reading_change(Fusion(0.4, "bm25", fit={"passages": "first_max"}), passages)
    warn_on_reading_change(Fusion(0.4, "bm25"), OnnxReranker.__new__(OnnxReranker))
    assert caplog.text == ""
