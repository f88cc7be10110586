"""pipeline.json pins how its reranker read the documents (truncated, or pooled passages), and
opening it again reads them the same way: in `eval --pipeline` and in the service's /search."""

import asyncio
import json
import shutil

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


def pin(tmp_path, artifact, data=FIXTURE, top_n=10, **options) -> PipelineSpec:
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"split": "eval", "knee": top_n}))
    return pin_pipeline(
        tmp_path / "pipeline.json",
        data=data,
        retriever_kind="bm25",
        retriever=build_retriever("bm25", data, tmp_path / "cache"),
        model_dir=artifact,
        precision="fp32",
        top_n=top_n,
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


def long_corpus(root):
    """A BEIR folder whose answering document is longer than the tiny model's window."""
    docs = {"long": LONG, "short": DOCS[1], "bread": DOCS[2]}
    root.mkdir()
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in docs.items())
    )
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": QUERY}) + "\n")
    (root / "qrels").mkdir()
    (root / "qrels" / "eval.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tlong\t1\n")
    return root


def search(service, query):
    from crossrank.serve.requests import SearchRequest

    body = asyncio.run(service.search(SearchRequest(query, top_k=3, top_n=3)))
    return {r["id"]: r["score"] for r in body["results"]}


@pytest.mark.parametrize(("pinned", "flag"), [(None, False), ("max", False), ("max", True)])
def test_search_reads_candidates_as_the_pipeline_was_pinned(tiny_artifact, tmp_path, pinned, flag):
    """Whatever the server's own --passages/--pooling (which set /rerank's default only)."""
    from crossrank.serve.metrics import Metrics
    from crossrank.serve.service import ServerConfig, Service

    data = long_corpus(tmp_path / "data")
    pin(tmp_path, tiny_artifact, data=data, top_n=3, passages=pinned)
    config = ServerConfig(
        pipeline=str(tmp_path / "pipeline.json"), cache_dir=str(tmp_path / "cache"), passages=flag
    )
    service = Service(config, Metrics())
    try:
        got = search(service, QUERY)
        rerank_default = (service.config.passages, service.config.pooling)
    finally:
        service.engine.close()
    reranker = OnnxReranker(tiny_artifact)
    scorer = PassageScorer(reranker, pinned) if pinned else reranker
    ids = ["long", "short", "bread"]
    expected = dict(zip(ids, scorer.score(QUERY, [LONG, DOCS[1], DOCS[2]]).tolist(), strict=True))
    assert {"long", "short"} <= set(got)
    assert got == pytest.approx({i: expected[i] for i in got}, abs=1e-5)
    # /rerank's default: the server's flag when given (pooling first_max), else the pin.
    assert rerank_default == (
        (True, "first_max") if flag else (pinned is not None, pinned or "first_max")
    )


def test_a_fit_applied_to_documents_read_another_way_warns(tiny_artifact, tmp_path, caplog):
    from crossrank.pipeline.stages import artifact_fusion, build_reranker
    from crossrank.runtime.artifact import Manifest

    model = tmp_path / "model"
    shutil.copytree(tiny_artifact, model)
    manifest = Manifest.load(model)
    manifest.fusion = {"bm25": {"weight": 0.4, "first_stage": "bm25", "passages": None}}
    manifest.save(model)
    artifact_fusion(build_reranker(model, passages=True, pooling="max"), "bm25")
    assert "fitted on truncated documents, applied to passages (max) ones" in caplog.text
    assert "--passages --pooling max" in caplog.text
    caplog.clear()
    artifact_fusion(build_reranker(model), "bm25")
    assert caplog.text == ""


def test_a_server_reading_passages_warns_of_a_calibration_fitted_on_truncation(
    tiny_artifact, tmp_path, caplog
):
    from crossrank.runtime.artifact import Manifest
    from crossrank.serve.metrics import Metrics
    from crossrank.serve.service import ServerConfig, Service

    model = tmp_path / "model"
    shutil.copytree(tiny_artifact, model)
    manifest = Manifest.load(model)
    manifest.calibration = {"method": "platt", "a": 1.0, "b": 0.0, "passages": None}
    manifest.save(model)
    for passages in (False, True):
        Service(ServerConfig(model=str(model), passages=passages), Metrics()).engine.close()
        warned = "the calibration (crossrank calibrate) was fitted on truncated" in caplog.text
        assert warned is passages
