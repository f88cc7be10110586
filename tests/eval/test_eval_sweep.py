import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from crossrank.data.examples import fixture_path
from crossrank.data.metrics import map_at_k, mrr_at_k, ndcg_at_k, recall_at_k
from crossrank.eval.sweep import knee
from crossrank.pipeline.fusion import interpolate
from crossrank.pipeline.fusion_fit import fit_weight
from crossrank.retrieval.hybrid import reciprocal_rank_fusion

FIXTURE = str(fixture_path())
EVAL_KEYS = {
    "dataset",
    "split",
    "queries",
    "skipped_queries",
    "retriever",
    "top_n",
    "model",
    "precision",
    "first_stage",
    "reranked",
    "latency_ms",
    "wall_s",
}
METRIC_KEYS = {"ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100"}


def crossrank(*args, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "crossrank.cli.main", *args], capture_output=True, text=True
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_metrics_match_hand_computed_values():
    ranked = ["d1", "d2", "d3", "d4"]
    judged = {"d2": 1, "d4": 2, "d9": 1, "d3": 0}
    assert mrr_at_k(ranked, judged, 10) == 0.5
    assert recall_at_k(ranked, judged, 2) == pytest.approx(1 / 3)
    assert map_at_k(ranked, judged, 100) == pytest.approx((1 / 2 + 2 / 4) / 3)
    dcg = 1 / np.log2(3) + 2 / np.log2(5)
    idcg = 2 + 1 / np.log2(3) + 1 / np.log2(4)
    assert ndcg_at_k(ranked, judged, 10) == pytest.approx(dcg / idcg)


def test_every_metric_counts_a_repeated_document_once():
    # trec_eval keeps a document's first occurrence: ["a", "a", "b"] reads as ["a", "b"]
    judged = {"b": 1}
    repeated, once = ["a", "a", "b"], ["a", "b"]
    for metric in (ndcg_at_k, mrr_at_k, recall_at_k, map_at_k):
        assert metric(repeated, judged, 2) == metric(once, judged, 2) > 0, metric.__name__


def test_metrics_agree_with_ranx_trec_eval_semantics():
    ranx = pytest.importorskip("ranx")
    qrels = {"q1": {"a": 2, "b": 1, "z": 1}, "q2": {"c": 1}}
    runs = {"q1": ["b", "x", "a", "y"], "q2": ["x", "y", "c"]}
    run = ranx.Run({q: {d: float(10 - i) for i, d in enumerate(r)} for q, r in runs.items()})
    ref = ranx.evaluate(ranx.Qrels(qrels), run, ["ndcg@10", "mrr@10", "recall@2", "map@100"])
    ours = {
        "ndcg@10": np.mean([ndcg_at_k(runs[q], qrels[q], 10) for q in runs]),
        "mrr@10": np.mean([mrr_at_k(runs[q], qrels[q], 10) for q in runs]),
        "recall@2": np.mean([recall_at_k(runs[q], qrels[q], 2) for q in runs]),
        "map@100": np.mean([map_at_k(runs[q], qrels[q], 100) for q in runs]),
    }
    for key, value in ours.items():
        assert value == pytest.approx(ref[key], abs=1e-6), key


def test_rrf_and_interpolation():
    fused = reciprocal_rank_fusion({"a": ["x", "y"], "b": ["y", "z"]}, k=60)
    assert [d for d, _ in fused] == ["y", "x", "z"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    ce, fs = np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])
    assert np.argmax(interpolate(ce, fs, 0.0)) == 2 and np.argmax(interpolate(ce, fs, 2.0)) == 0
    weight = fit_weight([(ce, fs, lambda s: float(np.argmax(s) == 0))]).weight
    assert weight >= 1.0  # at 1.0 the three tie and the first wins


def test_knee_is_the_smallest_n_within_tolerance():
    rows = [{"n": 5, "ndcg@10": 0.30}, {"n": 10, "ndcg@10": 0.346}, {"n": 20, "ndcg@10": 0.35}]
    assert knee(rows) == 10


def test_knee_never_lies_below_three_times_k():
    rows = [{"n": 10, "ndcg@10": 0.40}, {"n": 20, "ndcg@10": 0.35}, {"n": 50, "ndcg@10": 0.30}]
    assert knee(rows) == 10
    assert knee(rows, min_n=15) == 20
    with pytest.raises(ValueError, match=r"expected at least one candidate budget N >= 60"):
        knee(rows, min_n=60)


def test_sweep_refuses_budgets_all_below_three_times_k():
    out = crossrank(
        "sweep", "--data", FIXTURE, "--split", "eval", "--model", FIXTURE, "--n", "5,10",
        "--top-k", "5", "--output", "unused", check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert "expected at least one candidate budget N >= 15" in out.stderr


def test_eval_first_stage_only_has_the_documented_shape(tmp_path):
    out = tmp_path / "bm25.json"
    crossrank("eval", "--data", FIXTURE, "--split", "eval", "--top-n", "30", "--output", str(out))
    report = json.loads(out.read_text())
    assert set(report) == EVAL_KEYS
    assert report["reranked"] is None and report["queries"] == 12
    assert set(report["first_stage"]) == METRIC_KEYS
    assert set(report["latency_ms"]["retrieve"]) == {"p50", "p95"}


@pytest.mark.slow
def test_eval_with_model_and_max_queries(tiny_artifact, tmp_path):
    out = tmp_path / "rr.json"
    crossrank(
        "eval",
        "--data",
        FIXTURE,
        "--split",
        "eval",
        "--top-n",
        "30",
        "--model",
        str(tiny_artifact),
        "--precision",
        "int8",
        "--max-queries",
        "5",
        "--output",
        str(out),
    )
    report = json.loads(out.read_text())
    assert set(report) == EVAL_KEYS and set(report["reranked"]) == METRIC_KEYS
    assert report["queries"] == 5 and report["precision"] == "int8"
    assert set(report["latency_ms"]["rerank"]) == {"p50", "p95"}


@pytest.mark.slow
def test_sweep_writes_files_and_pins_a_pipeline_that_refuses_drift(tiny_artifact, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_artifact, model)
    out = tmp_path / "sweep"
    crossrank(
        "sweep",
        "--data",
        FIXTURE,
        "--split",
        "eval",
        "--model",
        str(model),
        "--n",
        "5,10,20,40",
        "--output",
        str(out),
    )
    for name in ("sweep.json", "sweep.csv", "sweep.png", "pipeline.json"):
        assert (out / name).is_file(), name
    result = json.loads((out / "sweep.json").read_text())
    assert [r["n"] for r in result["rows"]] == [5, 10, 20, 40]
    ceilings = [r["ceiling_recall@n"] for r in result["rows"]]
    assert ceilings == sorted(ceilings)
    pinned = json.loads((out / "pipeline.json").read_text())
    assert pinned["top_n"] == result["knee"] and pinned["retriever"]["kind"] == "bm25"
    report = tmp_path / "pinned.json"
    crossrank(
        "eval", "--pipeline", str(out / "pipeline.json"), "--split", "eval", "--output", str(report)
    )
    pinned_report = json.loads(report.read_text())
    assert pinned_report["top_n"] == result["knee"] and "passages" not in pinned_report["model"]
    refused = crossrank(
        "eval", "--pipeline", str(out / "pipeline.json"), "--split", "eval", "--passages",
        check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "expected no --passages with --pipeline" in refused.stderr
    # A sweep reading passages pins it, and the pinned pipeline reads them again.
    crossrank(
        "sweep", "--data", FIXTURE, "--split", "eval", "--model", str(model), "--n", "10,30",
        "--passages", "--pooling", "max", "--output", str(tmp_path / "sweep-passages"),
    )  # fmt: skip
    pinned = tmp_path / "sweep-passages" / "pipeline.json"
    assert json.loads(pinned.read_text())["passages"] == "max"
    crossrank("eval", "--pipeline", str(pinned), "--split", "eval", "--output", str(report))
    assert "(passages, max-pooled)" in json.loads(report.read_text())["model"]
    # Change the reranker: the pinned pipeline must refuse and name the file.
    manifest = json.loads((model / "crossrank.json").read_text())
    manifest["max_length"] = 64
    (model / "crossrank.json").write_text(json.dumps(manifest))
    failed = crossrank(
        "eval", "--pipeline", str(out / "pipeline.json"), "--split", "eval", check=False
    )
    assert failed.returncode == 2 and "crossrank.json: changed since" in failed.stderr


@pytest.mark.slow
def test_dense_and_hybrid_first_stages_on_the_fixture(tiny_artifact, tmp_path):
    from crossrank.data.beir import load_beir
    from crossrank.export.bi_encoder import ensure_bi_encoder
    from crossrank.retrieval.bm25 import BM25Retriever
    from crossrank.retrieval.dense import DenseRetriever, OnnxEmbedder
    from crossrank.retrieval.hybrid import HybridRetriever

    artifact = ensure_bi_encoder(tmp_path)
    manifest = json.loads((artifact / "crossrank.json").read_text())
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    embedder = OnnxEmbedder(artifact)
    vectors = embedder.embed(["coffee", "a bicycle chain"])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    data = load_beir(fixture_path(), "eval")
    ids = list(data.corpus)
    texts = [data.doc_text(d) for d in ids]
    dense = DenseRetriever.build(embedder, ids, texts, tmp_path)
    assert len(list(tmp_path.glob("dense-*/embeddings.npy"))) == 1
    again = DenseRetriever.build(embedder, ids, texts, tmp_path)  # from the cache
    np.testing.assert_array_equal(again.embeddings, dense.embeddings)
    hits = dense.retrieve("how long should french press coffee steep", 5)
    assert hits[0].doc_id in {"d003", "d009"} and len(hits) == 5
    approx = DenseRetriever.build(embedder, ids, texts, tmp_path, approximate=True)
    query = "how do I descale my coffee machine"
    exact_top = [h.doc_id for h in dense.retrieve(query, 10)]
    approx_hits = approx.retrieve(query, 10)
    assert len(set(exact_top) & {h.doc_id for h in approx_hits}) >= 8
    assert approx_hits[0].score == pytest.approx(dense.retrieve(query, 1)[0].score, abs=1e-4)
    hybrid = HybridRetriever({"bm25": BM25Retriever.build(ids, texts), "dense": dense})
    fused = hybrid.retrieve("how long should french press coffee steep", 10)
    assert len(fused) == 10 and fused[0].text is not None
    # A pipeline pinned with approximate search reopens with it.
    from crossrank.pipeline.pinning import open_pipeline, pin_pipeline

    (tmp_path / "sweep.json").write_text(json.dumps({"split": "eval", "knee": 10}))
    pin_pipeline(
        tmp_path / "pipeline.json",
        data=fixture_path(),
        retriever_kind="dense",
        retriever=approx,
        model_dir=tiny_artifact,
        precision="fp32",
        top_n=10,
        top_k=3,
        sweep_json=tmp_path / "sweep.json",
        approximate=True,
    )
    _, pipe = open_pipeline(tmp_path / "pipeline.json", tmp_path)
    assert pipe.retriever.index is not None


@pytest.mark.slow
def test_eval_warns_when_n_is_below_three_times_k(tiny_artifact, tmp_path, caplog):
    from crossrank.cli.main import main
    from crossrank.pipeline.two_stage import _warned

    _warned.clear()
    args = ["eval", "--data", FIXTURE, "--split", "eval", "--model", str(tiny_artifact)]
    args += ["--max-queries", "2", "--cache-dir", str(tmp_path), "--top-k", "10"]
    with caplog.at_level("WARNING", logger="crossrank.pipeline.two_stage"):
        assert main([*args, "--top-n", "30"]) == 0
        assert not any("3 * top_k" in r.getMessage() for r in caplog.records)
        assert main([*args, "--top-n", "20"]) == 0
    assert any("top_n=20 is less than 3 * top_k=30" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_sweep_scores_once_yet_equals_reranking_each_budget_alone(tiny_artifact, tmp_path):
    """Every N's quality equals `eval --top-n N`; a second sweep reads the store and agrees."""
    from crossrank.eval.evaluate import evaluate
    from crossrank.eval.sweep import sweep
    from crossrank.pipeline.stages import build_reranker, build_retriever

    retriever = build_retriever("bm25", FIXTURE, tmp_path / "cache")
    ns = [3, 10, 30]
    plain = build_reranker(tiny_artifact, "int8")
    result = sweep(FIXTURE, "eval", retriever, plain, ns, progress=False, latency_queries=2)
    for row in result["rows"]:
        report = evaluate(FIXTURE, "eval", retriever, "bm25", row["n"], plain, progress=False)
        assert row["ndcg@10"] == report["reranked"]["ndcg@10"], row["n"]
        assert row["mrr@10"] == report["reranked"]["mrr@10"], row["n"]
    assert result["latency_queries"] == 2
    stored = build_reranker(tiny_artifact, "int8", score_store=tmp_path / "scores")
    first = sweep(FIXTURE, "eval", retriever, stored, ns, progress=False, latency_queries=2)
    misses = stored.store.stats()["misses"]
    assert stored.store.stats()["hits"] == 0  # the latency timing bypassed the store
    again = sweep(FIXTURE, "eval", retriever, stored, ns, progress=False, latency_queries=2)
    assert stored.store.stats()["hits"] == misses  # one read per pair, none for the timing
    assert [r["ndcg@10"] for r in first["rows"]] == [r["ndcg@10"] for r in result["rows"]]
    assert [r["ndcg@10"] for r in again["rows"]] == [r["ndcg@10"] for r in result["rows"]]
    assert stored.store.stats()["misses"] == misses
    assert all(r["rerank_p50_ms"] > 0 for r in again["rows"])


@pytest.mark.slow
def test_eval_with_the_score_cache_reads_it_and_times_only_fresh_scoring(tiny_artifact, tmp_path):
    args = ["eval", "--data", FIXTURE, "--split", "eval", "--model", str(tiny_artifact),
            "--precision", "int8", "--top-n", "20", "--score-cache", "--cache-dir", str(tmp_path),
            "--latency-queries", "3"]  # fmt: skip
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    crossrank(*args, "--output", str(first))
    crossrank(*args, "--output", str(second))
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert a["reranked"] == b["reranked"]
    assert a["score_cache"]["hits"] == 0 and b["score_cache"]["misses"] == 0
    assert b["score_cache"]["hits"] == a["score_cache"]["misses"] > 0
    # The first 3 queries are timed: scored by the model each time, never read from the cache.
    assert a["score_cache"]["rerank_latency_queries"] == 3
    assert b["latency_ms"]["rerank"]["p50"] > 0


@pytest.mark.parametrize("command", ["eval", "sweep", "fuse"])
@pytest.mark.parametrize("n", ["0", "-1"])
def test_max_queries_below_one_is_refused_not_read_as_all_or_fewer(command, n, capsys):
    from crossrank.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main([command, "--model", "m", "--data", "d", "--max-queries", n])
    assert exit_.value.code == 2
    assert f"expected an integer >= 1, got {n}" in capsys.readouterr().err


def test_select_queries_refuses_a_limit_below_one():
    from crossrank.data.beir import load_beir
    from crossrank.data.examples import fixture_path
    from crossrank.eval.evaluate import select_queries

    dataset = load_beir(fixture_path(), "eval")
    assert select_queries(dataset, 3)[0] == dataset.judged_queries()[:3]
    assert select_queries(dataset, None)[0] == dataset.judged_queries()
    with pytest.raises(ValueError, match=r"expected max_queries >= 1 .*got 0"):
        select_queries(dataset, 0)
