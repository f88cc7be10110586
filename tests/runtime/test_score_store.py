"""The persistent score store: exact reads, only missing pairs computed, nothing lost at exit."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossrank.runtime.score_store import MAX_SHARDS, ScoreStore, pair_digest

TEXTS = [f"document number {i} " * (i % 5 + 1) for i in range(40)]


class Counting:
    """A deterministic scorer (two outputs per pair) that records which pairs it ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []

    def __call__(self, queries, documents, groups=None) -> np.ndarray:
        self.ran += list(zip(queries, documents, strict=True))
        return np.array(
            [[len(q) + 0.5 * len(d) for q, d in zip(queries, documents, strict=True)],
             [float(hash((q, d)) % 97) for q, d in zip(queries, documents, strict=True)]],
            dtype=np.float32,
        )  # fmt: skip


def test_digest_keeps_the_split_between_query_and_text():
    assert pair_digest("ab", "c") != pair_digest("a", "bc")
    assert pair_digest("q\0", "d") != pair_digest("q", "\0d")
    assert pair_digest("q", "d") == pair_digest("q", "d")


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    first=st.lists(st.integers(0, len(TEXTS) - 1), max_size=25),
    second=st.lists(st.integers(0, len(TEXTS) - 1), min_size=1, max_size=25),
)
def test_reads_equal_a_fresh_run_and_only_missing_pairs_are_computed(
    tmp_path_factory, first, second
):
    store = ScoreStore(tmp_path_factory.mktemp("store"), width=2)
    run = Counting()
    store.outputs(["q"] * len(first), [TEXTS[i] for i in first], None, run)
    before = len(run.ran)
    docs = [TEXTS[i] for i in second]
    got = store.outputs(["q"] * len(docs), docs, None, run)
    np.testing.assert_array_equal(got, Counting()(["q"] * len(docs), docs))
    assert {d for _, d in run.ran[before:]} == set(docs) - {TEXTS[i] for i in first}


def test_scores_persist_across_stores_and_compact(tmp_path):
    run = Counting()
    for i in range(MAX_SHARDS + 1):  # one shard each
        store = ScoreStore(tmp_path, width=2)
        store.outputs(["q"], [TEXTS[i]], None, run)
        store.flush()
    assert len(list(tmp_path.glob("*.npz"))) == MAX_SHARDS + 1
    reopened = ScoreStore(tmp_path, width=2)
    assert len(list(tmp_path.glob("*.npz"))) == 1  # merged on open
    docs = TEXTS[: MAX_SHARDS + 1]
    ran = len(run.ran)
    np.testing.assert_array_equal(
        reopened.outputs(["q"] * len(docs), docs, None, run), run(["q"] * len(docs), docs)
    )
    assert len(run.ran) == ran + len(docs)  # the check's own call: the store computed nothing
    assert reopened.stats()["hits"] == len(docs) and reopened.stats()["misses"] == 0


def test_unflushed_scores_are_written_when_the_process_exits(tmp_path):
    code = f"""
        import numpy as np
        from crossrank.runtime.score_store import ScoreStore, pair_digest
        store = ScoreStore({str(tmp_path)!r}, width=1)
        store.add([pair_digest("q", "d")], np.array([[3.25]], dtype=np.float32))
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True)
    values, found = ScoreStore(tmp_path, width=1).lookup([pair_digest("q", "d")])
    assert found.all() and values[0, 0] == np.float32(3.25)


def test_a_store_that_is_let_go_is_freed_and_writes_its_last_scores(tmp_path):
    import gc
    import weakref

    store = ScoreStore(tmp_path, width=1)
    store.add([pair_digest("q", "d")], np.array([[1.5]], dtype=np.float32))
    gone = weakref.ref(store)
    del store
    gc.collect()
    assert gone() is None  # nothing (an exit hook) keeps every store ever opened alive
    values, found = ScoreStore(tmp_path, width=1).lookup([pair_digest("q", "d")])
    assert found.all() and values[0, 0] == np.float32(1.5)


def test_a_damaged_or_foreign_shard_is_skipped(tmp_path, caplog):
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "other.npz", digests=np.zeros((2, 32), np.uint8), values=np.zeros((2, 3)))
    store = ScoreStore(tmp_path, width=1)
    assert len(store) == 0
    assert "broken.npz" in caplog.text and "other.npz" in caplog.text


def test_a_truncated_shard_is_skipped_and_never_compacted_away(tmp_path, caplog):
    store = ScoreStore(tmp_path, width=1)
    store.add([pair_digest("q", t) for t in TEXTS], np.ones((1, len(TEXTS)), np.float32))
    store.flush()
    (shard,) = tmp_path.glob("*.npz")
    data = shard.read_bytes()
    for i in range(MAX_SHARDS + 1):  # more broken shards than trigger a compaction
        (tmp_path / f"broken-{i}.npz").write_bytes(data[: len(data) // 2])
    reopened = ScoreStore(tmp_path, width=1)
    assert len(reopened) == len(TEXTS) and "broken-0.npz" in caplog.text
    assert len(list(tmp_path.glob("broken-*.npz"))) == MAX_SHARDS + 1  # left for a person


def test_another_cpu_gets_another_store(tmp_path, monkeypatch):
    import crossrank.runtime.score_store as score_store
    from crossrank.runtime.hardware import CpuInfo, cpu_info

    here = ScoreStore.for_model(tmp_path, {"graph": "abc"}, "int8", 128, 1).folder
    assert ScoreStore.for_model(tmp_path, {"graph": "abc"}, "int8", 128, 1).folder == here
    cpu = cpu_info()
    other = CpuInfo(cpu.name, cpu.flags ^ {"avx512_vnni"})  # same name, one int8 flag differs
    monkeypatch.setattr(score_store, "cpu_info", lambda: other)
    assert ScoreStore.for_model(tmp_path, {"graph": "abc"}, "int8", 128, 1).folder != here


def test_bad_outputs_are_refused(tmp_path):
    store = ScoreStore(tmp_path, width=2)
    with pytest.raises(ValueError, match=r"expected outputs of shape \(2, 1\), got \(1,\)"):
        store.add([pair_digest("q", "d")], np.zeros(1))


@pytest.mark.slow  # the session's trained tiny model
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_reranker_reads_its_store_bitwise(tiny_artifact, tmp_path, precision):
    from crossrank.runtime import OnnxReranker

    plain = OnnxReranker(tiny_artifact, precision=precision).score("descale the kettle", TEXTS)
    first = OnnxReranker(tiny_artifact, precision=precision, score_store=tmp_path)
    np.testing.assert_array_equal(first.score("descale the kettle", TEXTS[:25]), plain[:25])
    first.store.flush()
    second = OnnxReranker(tiny_artifact, precision=precision, score_store=tmp_path)
    np.testing.assert_array_equal(second.score("descale the kettle", TEXTS), plain)
    assert second.store.stats()["hits"] == 25 and second.store.stats()["misses"] == 15


@pytest.mark.slow
def test_store_survives_a_fusion_fit_but_not_another_precision(tiny_artifact, tmp_path):
    import shutil

    from crossrank.runtime import OnnxReranker

    artifact = tmp_path / "artifact"
    shutil.copytree(tiny_artifact, artifact)
    folder = OnnxReranker(artifact, score_store=tmp_path / "s").store.folder
    manifest = json.loads((artifact / "crossrank.json").read_text())
    manifest["fusion"] = {"bm25": {"weight": 0.5}}  # what `crossrank fuse` adds
    (artifact / "crossrank.json").write_text(json.dumps(manifest))
    assert OnnxReranker(artifact, score_store=tmp_path / "s", verify=False).store.folder == folder
    int8 = OnnxReranker(artifact, precision="int8", score_store=tmp_path / "s", verify=False)
    assert int8.store.folder != folder
    narrow = OnnxReranker(artifact, score_store=tmp_path / "s", verify=False, max_length=64)
    assert narrow.store.folder != folder
    with pytest.raises(ValueError, match="expected batch_size None with a score store, got 4 "):
        OnnxReranker(artifact, score_store=tmp_path / "s", batch_size=4)
