"""The service's parts without a server: request checks, passages, pooling, calibration,
cache, and the engine's queue and micro-batching."""

import itertools
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.runtime.calibration import calibrate, fit_platt, reliability, sigmoid
from crossrank.runtime.passages import pool, split_passages, token_counts
from crossrank.runtime.tokenization import HashingTokenizer
from crossrank.serve.cache import ScoreCache, pair_key
from crossrank.serve.engine import Engine, QueueFull
from crossrank.serve.errors import ApiError
from crossrank.serve.requests import parse_cohere, parse_json, parse_search, parse_tei

TOK = HashingTokenizer(vocab_size=1000)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = json_values | st.lists(json_values, max_size=3)
bodies = st.dictionaries(
    st.sampled_from(
        [
            "query",
            "documents",
            "texts",
            "top_n",
            "top_k",
            "return_documents",
            "raw_scores",
            "truncate",
            "passages",
            "pooling",
            "min_score",
            "max_tokens_per_doc",
            "model",
        ]
    ),
    field_values,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(body=bodies, which=st.sampled_from(["v1", "v2", "tei", "search"]))
def test_any_json_object_is_parsed_or_refused_with_a_4xx(body, which):
    try:
        if which == "tei":
            parse_tei(body, 10)
        elif which == "search":
            parse_search(body, 10)
        else:
            parse_cohere(body, 1 if which == "v1" else 2, 10)
    except ApiError as exc:
        assert 400 <= exc.status < 500 and exc.message.startswith("expected")


def test_search_refuses_a_top_k_or_top_n_above_the_document_limit():
    assert parse_search({"query": "q", "top_k": 10, "top_n": 10}, 10).top_k == 10
    for field in ("top_k", "top_n"):
        with pytest.raises(ApiError, match=rf"expected '{field}' <= 10, got 10{{30}}"):
            parse_search({"query": "q", "top_k": 1, field: 10**30}, 10)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=60) | st.text(max_size=60).map(str.encode))
def test_any_bytes_are_parsed_or_refused_with_422(raw):
    try:
        assert isinstance(parse_json(raw), dict)
    except ApiError as exc:
        assert exc.status == 422


def test_statuses_follow_the_contract():
    cases = [
        ({"query": " ", "documents": ["a"]}, 400),
        ({"query": "q", "documents": []}, 400),
        ({"query": "q", "documents": ["a", ""]}, 400),
        ({"query": "q", "documents": ["a"] * 11}, 413),
        ({"query": 3, "documents": ["a"]}, 422),
        ({"query": "q", "documents": [{"title": "a"}]}, 422),
        ({"query": "q", "documents": ["a"], "top_n": 0}, 422),
        ({"query": "q", "documents": ["a"], "top_n": True}, 422),
        ({"query": "\ud800", "documents": ["a"]}, 422),
        ({"documents": ["a"]}, 422),
    ]
    for body, status in cases:
        with pytest.raises(ApiError) as info:
            parse_cohere(body, 2, 10)
        assert info.value.status == status, (body, info.value.message)
    for raw in (b'{"top_n": ' + b"1" * 5000 + b"}", b"[" * 100_000):
        with pytest.raises(ApiError) as info:
            parse_json(raw)
        assert info.value.status == 422
    with pytest.raises(ApiError, match="invalid UTF-8") as info:
        parse_json(b'{"query": "\xff"}')
    assert info.value.status == 422
    req = parse_cohere({"query": "q", "documents": ["a", {"text": "b"}], "top_n": None}, 1, 10)
    assert req.documents == ["a", "b"] and req.return_documents and req.top_n is None
    assert not parse_cohere({"query": "q", "documents": ["a"]}, 2, 10).return_documents
    assert parse_tei({"query": "q", "texts": ["a"], "truncate": False}, 10).truncate is False


def test_text_without_whitespace_is_still_split_into_passages_and_cut_from_the_left(minilm_dir):
    from crossrank.runtime.passages import tail
    from crossrank.runtime.wordpiece import WordPieceTokenizer

    tok = WordPieceTokenizer(minilm_dir / "tokenizer.json")
    cjk = "蛋白质和维生素的摄入量" * 40  # 440 characters, one WordPiece token each, no spaces
    passages = split_passages(tok, cjk, budget=100, max_passages=50)
    assert len(passages) >= 5 and max(token_counts(tok, passages, 1000)) <= 100
    assert passages[0].startswith("蛋白质") and passages[-1].endswith("摄入量")
    assert "".join(split_passages(tok, cjk, budget=100, max_passages=1, max_tokens=50)) in cjk
    assert token_counts(tok, split_passages(tok, cjk, 100, 1, max_tokens=50), 1000)[0] <= 50
    end = tail(tok, cjk, 60)
    assert cjk.endswith(end) and 30 <= token_counts(tok, [end], 1000)[0] <= 60
    chain = "-".join(f"part{i}" for i in range(150))  # a hyphen chain: one "word" of 900 chars
    assert len(split_passages(tok, chain, budget=64, max_passages=50)) > 3


def test_passages_fit_the_budget_overlap_and_cover_the_document():
    words = [f"w{i}" for i in range(100)]
    text = " ".join(words)
    passages = split_passages(TOK, text, budget=20, max_passages=50)
    counts = token_counts(TOK, passages, 100)
    assert max(counts) <= 20 and len(passages) > 5
    assert passages[0].split()[0] == "w0" and passages[-1].split()[-1] == "w99"
    for a, b in itertools.pairwise(passages):
        assert set(a.split()) & set(b.split())  # consecutive passages overlap
    assert split_passages(TOK, "short text", budget=20) == ["short text"]
    assert len(split_passages(TOK, text, budget=20, max_passages=3)) == 3
    assert split_passages(TOK, text, budget=200, max_tokens=10) == [" ".join(words[:10])]


def test_pooling():
    assert pool(np.array([0.1, 2.0, 1.0])) == 2.0
    assert pool(np.array([0.1, 2.0, 1.0]), "mean_top2") == 1.5
    assert pool(np.array([3.0]), "mean_top2") == 3.0
    assert pool(np.array([1.0, 3.0, 0.0]), "first_max") == 2.0
    with pytest.raises(ValueError, match="expected pooling"):
        pool(np.array([1.0]), "min")


def test_platt_recovers_a_known_calibration_and_improves_reliability():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, 20000)
    labels = (rng.random(20000) < sigmoid(0.5 * logits - 2)).astype(int)
    fit = fit_platt(logits, labels)
    assert abs(fit["a"] - 0.5) < 0.05 and abs(fit["b"] + 2) < 0.1
    assert (
        reliability(calibrate(logits, fit), labels)["ece"]
        < reliability(sigmoid(logits), labels)["ece"]
    )
    with pytest.raises(ValueError, match="both classes"):
        fit_platt([1.0, 2.0], [1, 1])


def test_cache_is_lru_and_bounded():
    cache = ScoreCache(max_bytes=0)
    cache.put(pair_key("m", "q", "d"), 1.0)
    assert len(cache) == 0  # a zero bound switches it off
    cache = ScoreCache(max_bytes=10_000)
    keys = [pair_key("m", "q", f"doc {i}") for i in range(1000)]
    for i, k in enumerate(keys):
        cache.put(k, float(i))
    assert 0 < len(cache) < 1000 and cache.bytes <= 10_000
    assert cache.get(keys[-1]) == 999.0 and cache.get(keys[0]) is None
    assert pair_key("m", "q", "d") != pair_key("other-model", "q", "d")


def test_engine_refuses_when_the_queue_is_full_and_merges_waiting_jobs():
    release, calls = threading.Event(), []

    def score_pairs(queries, texts, groups):
        calls.append(len(texts))
        release.wait(10)
        return np.array([len(t) for t in texts], dtype=np.float32)

    engine = Engine(score_pairs, "m", workers=1, max_queue=2, cache_bytes=0)
    first = engine.submit("q", ["a"])  # taken by the worker, which then blocks
    while not calls:
        threading.Event().wait(0.01)
    waiting = [engine.submit("q", ["bb", "ccc"]), engine.submit("r", ["dddd"])]
    with pytest.raises(QueueFull):
        engine.submit("s", ["e"])
    release.set()
    assert first.result(5).tolist() == [1.0]
    assert waiting[0].result(5).tolist() == [2.0, 3.0] and waiting[1].result(5).tolist() == [4.0]
    assert calls == [1, 3]  # the two waiting jobs ran as one micro-batch
    engine.close()


def test_engine_serves_repeats_from_the_cache():
    calls = []
    engine = Engine(lambda q, t, g: calls.append(len(t)) or np.ones(len(t), np.float32), "m")
    engine.submit("q", ["a", "b"]).result(5)
    assert engine.submit("q", ["b", "a"]).result(5).tolist() == [1.0, 1.0]
    assert calls == [2] and engine.cache.hits == 2
    engine.close()


def test_batches_never_mix_groups_and_respect_the_budgets():
    from crossrank.runtime.batching import plan_batches

    lengths = [103, 13, 1003, 103, 13, 1003]  # tokens per pair
    groups = [0, 0, 0, 1, 1, 1]
    batches = plan_batches(lengths, groups, None, 512, 128)
    for b in batches:
        assert len({groups[i] for i in b}) == 1
        assert len(b) * min(128, max(lengths[i] for i in b)) <= 512 or len(b) == 1
    assert sorted(i for b in batches for i in b) == list(range(6))
    alone = plan_batches(lengths[:3], None, None, 512, 128)
    assert [b.tolist() for b in alone] == [b.tolist() for b in batches if groups[b[0]] == 0]
    assert [len(b) for b in plan_batches([10] * 5, None, 2, None, 128)] == [2, 2, 1]


def test_engine_with_two_outputs_returns_and_caches_both():
    calls = []

    def outputs(queries, texts, groups):
        calls.append(len(texts))
        return np.stack([np.arange(len(texts), dtype=np.float32), -np.ones(len(texts))])

    engine = Engine(outputs, "m", outputs=2)
    try:
        first = engine.submit("q", ["a", "b"]).result(5)
        assert first.shape == (2, 2) and first[1].tolist() == [-1.0, -1.0]
        again = engine.submit("q", ["b", "a"]).result(5)  # both from the cache
        assert again.tolist() == [[1.0, 0.0], [-1.0, -1.0]] and calls == [2]
    finally:
        engine.close()


def test_a_small_request_is_not_stuck_behind_a_large_one():
    order, started = [], threading.Event()

    def score_pairs(queries, texts, groups):
        started.set()
        threading.Event().wait(0.01)
        order.append((queries[0], len(texts)))
        return np.ones(len(texts), dtype=np.float32)

    engine = Engine(score_pairs, "m", max_batch_pairs=1, chunk_pairs=4, cache_bytes=0)
    try:
        large = engine.submit("large", [f"doc {i}" for i in range(40)])
        started.wait(5)
        small = engine.submit("small", ["a", "b"])
        small.result(5)
        assert not large.done()  # the small job finished first
        assert large.result(5).shape == (40,)
        served = [q for q, _ in order]
        assert served.index("small") <= 2 and max(n for _, n in order) <= 4
    finally:
        engine.close()


def test_a_job_is_cut_into_the_same_chunks_whatever_else_is_queued():
    seen = []

    def score_pairs(queries, texts, groups):
        for g in sorted(set(groups)):
            seen.append(tuple(t for t, k in zip(texts, groups, strict=True) if k == g))
        return np.ones(len(texts), dtype=np.float32)

    texts = [f"t{i}" for i in range(10)]
    for others in (0, 3):
        seen.clear()
        engine = Engine(score_pairs, "m", chunk_pairs=4, cache_bytes=0)
        futures = [engine.submit(f"o{k}", ["x"] * 5) for k in range(others)]
        futures.append(engine.submit("q", texts))
        for f in futures:
            f.result(5)
        engine.close()
        mine = [c for c in seen if c[0].startswith("t")]
        assert mine == [tuple(texts[:4]), tuple(texts[4:8]), tuple(texts[8:])]


def test_cache_keys_do_not_collide_when_a_separator_moves():
    a = pair_key("m", "descale\x00my coffee machine", "Paris is the capital of France.")
    b = pair_key("m", "descale", "my coffee machine\x00Paris is the capital of France.")
    assert a != b
    assert pair_key("m", "ab", "c") != pair_key("m", "a", "bc")
