"""Keys, hosts, media types, redirects and the protocol details a network service needs."""

import json
import socket
import time

import httpx
import pytest
from serving import Server

pytestmark = pytest.mark.slow  # they use the session's trained tiny model

KEY = "test-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}
BODY = {"query": "how do I descale my coffee machine", "documents": ["descale with citric acid"]}


@pytest.fixture(scope="module")
def keyed(tiny_artifact):
    s = Server("--model", str(tiny_artifact), env={"CROSSRANK_API_KEYS": f"other,{KEY}"})
    yield s
    s.stop()


def test_a_key_is_needed_everywhere_but_health(keyed):
    r = keyed.post("/v2/rerank", BODY)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"].startswith("expected 'Authorization: Bearer")
    assert keyed.post("/v2/rerank", BODY, {"Authorization": "Bearer wrong"}).status_code == 401
    assert keyed.post("/v2/rerank", BODY, {"Authorization": KEY}).status_code == 401
    assert keyed.post("/v2/rerank", BODY, AUTH).status_code == 200
    assert keyed.post("/v2/rerank", BODY, {"Authorization": f"bearer {KEY}"}).status_code == 200
    assert httpx.get(keyed.url + "/metrics").status_code == 401
    assert httpx.get(keyed.url + "/metrics", headers=AUTH).status_code == 200
    assert httpx.get(keyed.url + "/health").status_code == 200
    assert httpx.head(keyed.url + "/health").status_code == 200


def test_only_json_bodies_are_accepted(keyed):
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = keyed.post("/v2/rerank", BODY, {**AUTH, "Content-Type": ctype})
        assert r.status_code == 415, ctype
        assert ctype in r.json()["error"]
    r = httpx.post(keyed.url + "/v2/rerank", content=json.dumps(BODY), headers=AUTH)
    assert r.status_code == 415  # no Content-Type at all
    ok = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    assert keyed.post("/v2/rerank", BODY, ok).status_code == 200


def test_a_foreign_host_is_refused(keyed):
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example"):
        r = keyed.post("/v2/rerank", BODY, {**AUTH, "Host": host})
        assert r.status_code == 421, host
    assert httpx.get(keyed.url + "/health", headers={"Host": "rebind.example"}).status_code == 421
    for host in (f"localhost:{keyed.port}", f"127.0.0.1:{keyed.port}"):
        assert keyed.post("/v2/rerank", BODY, {**AUTH, "Host": host}).status_code == 200


def test_no_redirect_and_405_says_what_is_allowed(keyed):
    r = keyed.post("/v2/rerank/", BODY, {**AUTH, "Host": "localhost"})
    assert r.status_code == 404 and "location" not in r.headers
    r = httpx.get(keyed.url + "/v2/rerank", headers=AUTH)
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_health_does_not_expose_paths(keyed, tiny_artifact):
    text = httpx.get(keyed.url + "/health").text
    assert str(tiny_artifact) not in text and tiny_artifact.name not in text
    assert json.loads(text)["model_sha256"]


def test_every_route_is_in_openapi_with_its_schemas(keyed):
    spec = httpx.get(keyed.url + "/openapi.json", headers=AUTH).json()
    for path, method in [
        ("/v1/rerank", "post"),
        ("/v2/rerank", "post"),
        ("/rerank", "post"),
        ("/search", "post"),
        ("/health", "get"),
        ("/metrics", "get"),
    ]:
        op = spec["paths"][path][method]
        assert op["responses"]["200"]["content"], path
        assert op["responses"]["429"]["content"]["application/json"]["schema"]["required"]
        if method == "post":
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert "query" in json.dumps(schema), path


def test_a_full_queue_says_when_to_retry(tiny_artifact):
    s = Server("--model", str(tiny_artifact), "--max-queue", "1", "--cache-mb", "0")
    try:
        docs = [f"document number {i} about coffee and bikes" * 4 for i in range(200)]
        body = {"query": "coffee", "documents": docs}
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: s.post("/v2/rerank", body), range(12)))
        refused = [r for r in answers if r.status_code == 429]
        assert refused and all(r.status_code in (200, 429) for r in answers)
        assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    finally:
        s.stop()


def test_a_slow_body_times_out_and_a_hang_up_is_counted(tiny_artifact):
    s = Server("--model", str(tiny_artifact), "--body-timeout", "1")
    try:
        head = (
            f"POST /v2/rerank HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", s.port)) as sock:
            sock.sendall(head + b'{"query"')
            t0 = time.time()
            sock.settimeout(10)
            reply = sock.recv(4096).decode()
            assert reply.startswith("HTTP/1.1 408") and time.time() - t0 < 5
        with socket.create_connection(("127.0.0.1", s.port)) as sock:
            sock.sendall(head + b'{"query"')
            time.sleep(0.2)
        time.sleep(0.5)
        text = httpx.get(s.url + "/metrics").text
        assert 'status="499"' in text
    finally:
        log = s.stop()
    assert "Exception in ASGI application" not in log and "Traceback" not in log


def test_keys_on_the_command_line_public_metrics_and_two_processes(tiny_artifact):
    s = Server(
        "--model", str(tiny_artifact), "--api-key", "cli-key", "--metrics-public",
        "--workers", "2",
    )  # fmt: skip
    try:
        assert httpx.get(s.url + "/metrics").status_code == 200
        assert s.post("/v2/rerank", BODY).status_code == 401
        auth = {"Authorization": "Bearer cli-key"}
        answers = [s.post("/v2/rerank", BODY, auth) for _ in range(6)]
        assert {r.status_code for r in answers} == {200}
        assert len({json.dumps(r.json()["results"]) for r in answers}) == 1  # same everywhere
    finally:
        log = s.stop()
    assert "Traceback" not in log
