"""A real ``crossrank serve`` process on a loopback port, driven with httpx."""

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving import Server

from crossrank.data.examples import fixture_path
from crossrank.runtime import OnnxReranker

pytestmark = pytest.mark.slow  # they use the session's trained tiny model

COHERE_EXAMPLE = {  # the request in Cohere's rerank documentation
    "model": "rerank-v3.5",
    "query": "What is the capital of the United States?",
    "top_n": 3,
    "documents": [
        "Carson City is the capital city of the American state of Nevada.",
        "The Commonwealth of the Northern Mariana Islands is a group of islands in the Pacific "
        "Ocean. Its capital is Saipan.",
        "Washington, D.C. (also known as simply Washington or D.C., and officially as the "
        "District of Columbia) is the capital of the United States. It is a federal district.",
        "Capitalization or capitalisation in English grammar is the use of a capital letter at "
        "the start of a word. English usage varies from capitalization in other languages.",
        "Capital punishment has existed in the United States since beforethe United States was "
        "a country. As of 2017, capital punishment is legal in 30 of the 50 states.",
    ],
}
TEI_EXAMPLE = {  # the request in text-embeddings-inference's README
    "query": "What is Deep Learning?",
    "texts": ["Deep Learning is not...", "Deep learning is..."],
}


@pytest.fixture(scope="module")
def server(tiny_artifact):
    s = Server("--model", str(tiny_artifact), "--max-docs", "50", "--max-body-mb", "0.05")
    yield s
    s.stop()


def test_cohere_example_round_trips(server, tiny_artifact):
    for version in (1, 2):
        r = server.post(f"/v{version}/rerank", {**COHERE_EXAMPLE, "return_documents": True})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"id", "results", "meta"}
        assert body["meta"]["api_version"] == {"version": str(version)}
        assert body["meta"]["billed_units"] == {"search_units": 1}
        assert "no Platt calibration" in body["meta"]["warnings"][0]
        results = body["results"]
        assert len(results) == 3 and len({x["index"] for x in results}) == 3
        scores = [x["relevance_score"] for x in results]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        for x in results:
            assert x["document"] == {"text": COHERE_EXAMPLE["documents"][x["index"]]}
    direct = OnnxReranker(tiny_artifact, precision="auto").rerank(
        query=COHERE_EXAMPLE["query"], documents=COHERE_EXAMPLE["documents"], top_k=3
    )
    assert [x["index"] for x in results] == [d.index for d in direct]
    v2 = server.post("/v2/rerank", COHERE_EXAMPLE).json()
    assert all("document" not in x for x in v2["results"])  # v2 defaults to no documents


def test_tei_example_round_trips(server):
    r = server.post("/rerank", {**TEI_EXAMPLE, "return_text": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list) and sorted(x["index"] for x in body) == [0, 1]
    assert [x["score"] for x in body] == sorted((x["score"] for x in body), reverse=True)
    assert all(x["text"] == TEI_EXAMPLE["texts"][x["index"]] for x in body)
    raw = server.post("/rerank", {**TEI_EXAMPLE, "raw_scores": True}).json()
    probs = {x["index"]: x["score"] for x in body}
    for x in raw:  # without calibration the score is the logit's sigmoid
        assert abs(1 / (1 + np.exp(-x["score"])) - probs[x["index"]]) < 1e-6


def test_errors_follow_the_contract(server):
    cases = [
        ("/v1/rerank", {"query": "", "documents": ["a"]}, 400),
        ("/rerank", {"query": "q", "texts": []}, 400),
        ("/v2/rerank", {"query": "q", "documents": ["a"] * 51}, 413),
        ("/v2/rerank", {"query": "q", "documents": ["word " * 12000]}, 413),  # body > 0.05 MiB
        ("/v2/rerank", b'{"query": "q", "documents": ["a"', 422),
        ("/v2/rerank", b'{"query": "\xff\xfe", "documents": ["a"]}', 422),
        ("/v2/rerank", {"query": "q", "documents": [1, 2]}, 422),
        ("/rerank", {"query": "q", "texts": ["long " * 400], "truncate": False}, 413),
        ("/search", {"query": "q", "top_k": 3}, 404),  # no --pipeline
    ]
    for path, body, status in cases:
        r = server.post(path, body)
        assert r.status_code == status, (path, r.text)
        err = r.json()
        assert set(err) == {"error", "error_type"} and err["error"].startswith("expected")
    assert httpx.get(server.url + "/nowhere").status_code == 404
    assert httpx.get(server.url + "/v1/rerank").json()["error_type"] == "method_not_allowed"


malformed = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=80).map(str.encode),
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=10),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
        max_leaves=8,
    ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "query": st.none()
            | st.integers()
            | st.just("")
            | st.just(" ")
            | st.lists(st.text(max_size=3)),
            "documents": st.none()
            | st.text(max_size=5)
            | st.just([])
            | st.lists(st.integers() | st.none() | st.just({}), min_size=1, max_size=3),
            "texts": st.none()
            | st.just([])
            | st.lists(st.integers() | st.just(""), min_size=1, max_size=3),
            "top_n": st.just(0) | st.just(-1) | st.text(max_size=2) | st.booleans(),
            "top_k": st.just(0) | st.text(max_size=2),
            "return_documents": st.integers(min_value=2) | st.text(max_size=2),
        },
    ).map(lambda d: json.dumps(d).encode()),
)


@settings(max_examples=520, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=malformed, path=st.sampled_from(["/v1/rerank", "/v2/rerank", "/rerank", "/search"]))
def test_malformed_bodies_get_4xx_with_reasons(server, body, path):
    r = server.post(path, body)
    assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
    err = r.json()
    assert isinstance(err["error"], str) and err["error"] and isinstance(err["error_type"], str)


def test_still_healthy_after_the_malformed_bodies(server):
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    assert server.metric("crossrank_queue_depth") == 0


def test_repeated_requests_hit_the_cache(server):
    before = server.metric("crossrank_cache_hits_total")
    body = {"query": "cache me", "documents": ["one doc", "two doc", "three doc"]}
    first = server.post("/v2/rerank", body).json()["results"]
    second = server.post("/v2/rerank", body).json()["results"]
    assert first == second
    assert server.metric("crossrank_cache_hits_total") >= before + 3
    assert 0 < server.metric("crossrank_cache_hit_ratio") <= 1


def test_passages_are_scored_and_counted(server):
    long_doc = " ".join(f"filler{i}" for i in range(300)) + " the capital of france is paris"
    body = {"query": "capital of france", "documents": [long_doc, "paris"], "passages": True}
    results = server.post("/v2/rerank", body).json()["results"]
    counts = {x["index"]: x["passages"] for x in results}
    assert counts[0] > 1 and counts[1] == 1


def test_concurrent_requests_are_neither_lost_nor_mixed(tiny_artifact):
    s = Server("--model", str(tiny_artifact), "--max-queue", "2")
    try:
        data = [json.loads(line) for line in (fixture_path() / "corpus.jsonl").open()]
        docs = [d["text"] for d in data] * 15  # ~1000 documents per request
        queries = [
            f"query number {i} about {d['text'].split()[0]}" for i, d in enumerate(data[:24])
        ]
        with ThreadPoolExecutor(24) as pool:
            responses = list(pool.map(lambda q: server_post(s, q, docs), queries))
        statuses = [r.status_code for r in responses]
        assert all(code in (200, 429) for code in statuses), statuses
        assert 429 in statuses and 200 in statuses
        direct = OnnxReranker(tiny_artifact, precision="auto")
        for q, r in zip(queries, responses, strict=True):
            if r.status_code == 200:
                expected = [x.index for x in direct.rerank(query=q, documents=docs, top_k=10)]
                assert [x["index"] for x in r.json()["results"]] == expected
            else:
                assert r.json()["error_type"] == "overloaded"
    finally:
        s.stop()


def server_post(s: Server, query: str, docs: list[str]) -> httpx.Response:
    return s.post("/v2/rerank", {"query": query, "documents": docs, "top_n": 10})


def test_calibrated_artifact_serves_probabilities_and_flags_low_confidence(tiny_artifact, tmp_path):
    model = tmp_path / "calibrated"
    shutil.copytree(tiny_artifact, model)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "crossrank.cli.main",
            "calibrate",
            "--model",
            str(model),
            "--data",
            str(fixture_path()),
            "--split",
            "eval",
            "--top-n",
            "20",
            "--precision",
            "fp32",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    fit = json.loads((model / "crossrank.json").read_text())["calibration"]
    assert (
        fit["method"] == "platt"
        and fit["passages"] is None
        and fit["pairs"] > 100
        and fit["platt"]["brier"] <= fit["sigmoid"]["brier"]
    )
    OnnxReranker(model)  # the manifest edit kept every file's hash valid
    s = Server("--model", str(model), "--min-score", "0.99")
    try:
        body = s.post("/v1/rerank", COHERE_EXAMPLE).json()
        assert "warnings" not in body["meta"] and body["low_confidence"] is True
        relaxed = s.post("/v1/rerank", {**COHERE_EXAMPLE, "min_score": 0.0}).json()
        assert relaxed["low_confidence"] is False
        assert httpx.get(s.url + "/health").json()["calibrated"] is True
    finally:
        s.stop()


def test_results_saturated_at_probability_one_stay_in_logit_order(tiny_artifact, tmp_path):
    # b = 100 puts every document's calibrated probability at exactly 1.0 in float64: the
    # order must then come from the logits, not from the documents' order in the request.
    model = tmp_path / "saturated"
    shutil.copytree(tiny_artifact, model)
    manifest = json.loads((model / "crossrank.json").read_text())
    manifest["calibration"] = {"method": "platt", "a": 1.0, "b": 100.0, "passages": None}
    (model / "crossrank.json").write_text(json.dumps(manifest))
    docs = COHERE_EXAMPLE["documents"]
    s = Server("--model", str(model))
    try:
        raw = s.post(
            "/v2/rerank", {"query": COHERE_EXAMPLE["query"], "documents": docs, "raw_scores": True}
        ).json()["results"]
        by_logit = [x["index"] for x in raw]
        assert len(set(x["relevance_score"] for x in raw)) == len(docs)  # distinct logits
        assert by_logit != list(range(len(docs)))  # the test can tell the two orders apart
        cohere = s.post("/v2/rerank", {"query": COHERE_EXAMPLE["query"], "documents": docs})
        assert {x["relevance_score"] for x in cohere.json()["results"]} == {1.0}
        assert [x["index"] for x in cohere.json()["results"]] == by_logit
        tei = s.post("/rerank", {"query": COHERE_EXAMPLE["query"], "texts": docs}).json()
        assert [x["index"] for x in tei] == by_logit
        infinity = s.post("/rerank", {"query": COHERE_EXAMPLE["query"], "documents": docs})
        assert [x["index"] for x in infinity.json()["results"]] == by_logit
    finally:
        s.stop()


def test_search_runs_the_pinned_pipeline(tiny_artifact, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "crossrank.cli.main",
            "sweep",
            "--data",
            str(fixture_path()),
            "--split",
            "eval",
            "--model",
            str(tiny_artifact),
            "--n",
            "5,10,20",
            "--top-k",
            "3",
            "--output",
            str(tmp_path / "sweep"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    s = Server(
        "--pipeline",
        str(tmp_path / "sweep" / "pipeline.json"),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    try:
        r = s.post("/search", {"query": "how do I reset my router password", "top_k": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["results"]) == 3 and set(body["timings_ms"]) == {
            "retrieve",
            "rerank",
            "total",
        }
        assert all({"id", "score", "first_stage_rank"} <= set(x) for x in body["results"])
    finally:
        s.stop()


def test_search_with_a_pinned_hybrid_pipeline_fuses_its_components_scores(
    tiny_artifact, bi_encoder_cache, tmp_path
):
    """The recipe's shape: a hybrid first stage whose fusion reads BM25 and cosine. The
    service must give the scores the library's pipeline gives, not fuse RRF's score."""
    from dataclasses import replace

    from crossrank.cli.main import main
    from crossrank.pipeline.pinning import open_pipeline

    model, cache, fixture = tmp_path / "onnx", str(bi_encoder_cache), str(fixture_path())
    shutil.copytree(tiny_artifact, model)
    common = ["--data", fixture, "--split", "eval", "--model", str(model), "--cache-dir", cache]
    common += ["--retriever", "hybrid", "--precision", "fp32"]
    assert main(["fuse", *common, "--top-n", "20", "--guard-percentile", "0"]) == 0
    sweep = ["sweep", *common, "--fusion", "auto", "--n", "10,20", "--top-k", "3"]
    assert main([*sweep, "--output", str(tmp_path / "sweep")]) == 0
    pinned = tmp_path / "sweep" / "pipeline.json"
    spec, pipe = open_pipeline(pinned, cache)
    assert pipe.fusion.signals == ("bm25", "dense") and pipe.fusion.weight > 0
    query = "how do I reset my router password"
    expected = pipe.run(query, top_k=spec.top_n).reranked
    pipe.fusion = replace(pipe.fusion, signals=())  # the old fusion: RRF's score
    assert [h.score for h in pipe.run(query, top_k=spec.top_n).reranked] != pytest.approx(
        [h.score for h in expected], abs=1e-4
    )  # so the comparison below tells the two apart
    s = Server("--pipeline", str(pinned), "--cache-dir", cache)
    try:
        r = s.post("/search", {"query": query, "top_k": spec.top_n})
        assert r.status_code == 200, r.text
        served = [(x["id"], x["score"]) for x in r.json()["results"]]
        assert [d for d, _ in served] == [h.doc_id for h in expected]
        assert [v for _, v in served] == pytest.approx([h.score for h in expected], abs=1e-4)
    finally:
        s.stop()


def test_passage_scorer_equals_the_reranker_on_short_documents_and_reads_long_ones(tiny_artifact):
    from crossrank.runtime.passages import PassageScorer

    reranker = OnnxReranker(tiny_artifact)
    scorer = PassageScorer(reranker)
    short = ["reset the router with the pin", "bake bread at 220 degrees"]
    np.testing.assert_allclose(
        scorer.score("router reset", short), reranker.score("router reset", short), atol=1e-5
    )
    long_doc = " ".join(["unrelated filler words here"] * 200) + " reset the router with the pin"
    scores = scorer.score("router reset", [long_doc])
    assert scorer.passages_scored[0] > 1
    assert (
        scores[0] > reranker.score("router reset", [long_doc])[0]
    )  # the answer is past the window


def test_the_answer_head_is_served_per_result_and_drives_low_confidence(tiny_artifact):
    query = "how long should french press coffee steep"
    docs = ["Leave the grounds in for four minutes.", "Oil the chain monthly.", "Tyre pressure."]
    _, answers = OnnxReranker(tiny_artifact, precision="auto").score_with_answer(query, docs)
    s = Server("--model", str(tiny_artifact))
    try:
        body = s.post("/v2/rerank", {"query": query, "documents": docs}).json()
        served = {r["index"]: r["answer_score"] for r in body["results"]}
        assert served == pytest.approx(dict(enumerate(answers.tolist())), abs=1e-6)
        tei = s.post("/rerank", {"query": query, "texts": docs}).json()
        assert all(0 < r["answer_score"] < 1 for r in tei)
        best = float(answers.max())
        high = s.post("/v2/rerank", {"query": query, "documents": docs, "min_score": best + 1e-3})
        low = s.post("/v2/rerank", {"query": query, "documents": docs, "min_score": best - 1e-3})
        assert high.json()["low_confidence"] is True and low.json()["low_confidence"] is False
    finally:
        s.stop()
