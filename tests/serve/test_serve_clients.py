"""Clients nobody here wrote: the Cohere SDK (v1, v2, async), Infinity and TEI bodies,
``prometheus_client``, and a schemathesis run against ``/openapi.json``."""

import asyncio

import cohere
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving import Server

from crossrank.runtime import OnnxReranker

pytestmark = pytest.mark.slow  # they use the session's trained tiny model

KEY = "sdk-key"
QUERY = "how long should french press coffee steep"
DOCS = [
    "Leave the grounds in the hot water for about four minutes, then push the plunger down.",
    "Pump tyres to the pressure printed on the sidewall.",
    "Keep roasted beans in an airtight container away from light.",
    "Long runs need carbohydrates the evening before.",
]


@pytest.fixture(scope="module")
def server(tiny_artifact):
    s = Server("--model", str(tiny_artifact), env={"CROSSRANK_API_KEYS": KEY})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def direct(tiny_artifact):
    return OnnxReranker(tiny_artifact, precision="auto")


def _expected_order(direct, docs=DOCS):
    return [r.index for r in direct.rerank(query=QUERY, documents=docs)]


def test_cohere_sdk_v2_sync_and_async(server, direct):
    co = cohere.ClientV2(api_key=KEY, base_url=server.url, max_retries=0)
    res = co.rerank(model="crossrank", query=QUERY, documents=DOCS, top_n=3)
    assert [r.index for r in res.results] == _expected_order(direct)[:3]

    async def call():
        aco = cohere.AsyncClientV2(api_key=KEY, base_url=server.url, max_retries=0)
        return await aco.rerank(model="crossrank", query=QUERY, documents=DOCS, top_n=2)

    assert [r.index for r in asyncio.run(call()).results] == _expected_order(direct)[:2]
    with pytest.raises(cohere.core.api_error.ApiError) as err:
        cohere.ClientV2(api_key="wrong", base_url=server.url, max_retries=0).rerank(
            model="crossrank", query=QUERY, documents=DOCS
        )
    assert err.value.status_code == 401


def test_cohere_sdk_v1_rank_fields_echo_and_chunks(server, direct):
    co = cohere.Client(api_key=KEY, base_url=server.url, max_retries=0)
    objects = [
        {"id": f"doc-{i}", "title": "coffee" if i == 0 else "misc", "text": t}
        for i, t in enumerate(DOCS)
    ]
    res = co.rerank(query=QUERY, documents=objects, return_documents=True, rank_fields=["text"])
    assert [r.index for r in res.results] == _expected_order(direct)
    body = server.post(
        "/v1/rerank",
        {"query": QUERY, "documents": objects, "return_documents": True},
        {"Authorization": f"Bearer {KEY}"},
    ).json()
    assert all(r["document"] == objects[r["index"]] for r in body["results"])  # id kept
    both = server.post(
        "/v1/rerank",
        {"query": QUERY, "documents": objects, "rank_fields": ["title", "text"]},
        {"Authorization": f"Bearer {KEY}"},
    ).json()
    expect = direct.score(QUERY, [f"title: {o['title']}\ntext: {o['text']}" for o in objects])
    got = {r["index"]: r["relevance_score"] for r in both["results"]}
    assert np.allclose([got[i] for i in range(4)], 1 / (1 + np.exp(-expect)), atol=1e-6)
    missing = server.post(
        "/v1/rerank",
        {"query": QUERY, "documents": objects, "rank_fields": ["author"]},
        {"Authorization": f"Bearer {KEY}"},
    )
    assert missing.status_code == 422 and "'author'" in missing.json()["error"]
    long_doc = " ".join(["filler words about nothing"] * 200) + " " + DOCS[0]
    chunked = server.post(
        "/v1/rerank",
        {"query": QUERY, "documents": [long_doc], "max_chunks_per_doc": 3},
        {"Authorization": f"Bearer {KEY}"},
    ).json()
    assert chunked["results"][0]["passages"] == 3


def test_infinity_body_and_tei_left_truncation(server, direct):
    auth = {"Authorization": f"Bearer {KEY}"}
    body = server.post(
        "/rerank", {"query": QUERY, "documents": DOCS, "top_n": 2, "return_documents": True}, auth
    ).json()
    assert body["object"] == "rerank" and len(body["results"]) == 2
    assert [r["index"] for r in body["results"]] == _expected_order(direct)[:2]
    assert all(r["document"] == DOCS[r["index"]] for r in body["results"])
    assert body["usage"]["total_tokens"] == 4 and body["model"].startswith("crossrank-")
    long_doc = " ".join(["filler words about nothing"] * 200) + " " + DOCS[0]
    right, left = (
        server.post(
            "/rerank",
            {"query": QUERY, "texts": [long_doc], "raw_scores": True, "truncation_direction": d},
            auth,
        ).json()[0]["score"]
        for d in ("Right", "Left")
    )
    assert left != right and abs(left - direct.score(QUERY, [DOCS[0]])[0]) < abs(
        right - direct.score(QUERY, [DOCS[0]])[0]
    )  # the answer sits at the end: only left truncation keeps it


def test_an_invisible_document_is_empty(server):
    for blank in ("\u200b", " \u200b\u200c\ufeff ", "\u2028"):
        r = server.post(
            "/v2/rerank",
            {"query": QUERY, "documents": ["ok", blank]},
            {"Authorization": f"Bearer {KEY}"},
        )
        assert r.status_code == 400 and "documents[1]" in r.json()["error"], repr(blank)


def test_metrics_parse_with_prometheus_client(server):
    text = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"crossrank_requests", "crossrank_queue_depth"} <= names


def test_the_same_pair_gets_the_same_score_whatever_came_before(tiny_artifact, direct):
    auth = {"Authorization": f"Bearer {KEY}"}
    docs = [f"{d} Extra words {i}." for i, d in enumerate(DOCS * 2)]
    s = Server("--model", str(tiny_artifact), env={"CROSSRANK_API_KEYS": KEY})
    try:
        s.post("/v2/rerank", {"query": QUERY, "documents": docs, "raw_scores": True}, auth)
        s.post("/v2/rerank", {"query": QUERY, "documents": docs[1:], "raw_scores": True}, auth)
        for i, d in enumerate(docs):
            alone = s.post(
                "/v2/rerank", {"query": QUERY, "documents": [d], "raw_scores": True}, auth
            ).json()["results"][0]["relevance_score"]
            assert alone == pytest.approx(float(direct.score(QUERY, [d])[0]), abs=1e-6), i
    finally:
        s.stop()
