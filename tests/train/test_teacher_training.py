"""The hybrid teacher end to end on the packaged fixture: the lists it attaches, its cache, and a
training run that distils from it (the bi-encoder is exported into a temporary cache)."""

import json

import pytest

from crossrank.data.examples import read_labeled
from crossrank.train.teacher import attach_teacher
from tests.conftest import train_tiny


@pytest.fixture(scope="module")
def teacher_cache(tmp_path_factory):
    from crossrank.export.bi_encoder import ensure_bi_encoder

    cache = tmp_path_factory.mktemp("cache")
    ensure_bi_encoder(cache)
    return cache


@pytest.mark.slow
def test_attached_lists_hold_the_surfaced_positives_and_no_judged_unsure(teacher_cache):
    data = read_labeled("fixture", "train")
    attach_teacher(data, teacher_cache, bm25_depth=20, dense_depth=10, false_negative_top=5)
    for q in data.queries:
        assert set(q.teacher) == set(q.candidates) and len(q.candidates) >= 10
        assert not q.unsure & set(q.judged)
    surfaced = sum(d in q.candidates for q in data.queries for d in q.positives)
    assert surfaced / sum(len(q.positives) for q in data.queries) > 0.8
    (cache,) = teacher_cache.glob("teacher-*.json")
    again = read_labeled("fixture", "train")
    cache.write_text(
        json.dumps(
            {q.qid: {"candidates": ["x"], "teacher": [1.0], "unsure": []} for q in again.queries}
        )
    )
    attach_teacher(again, teacher_cache, bm25_depth=20, dense_depth=10, false_negative_top=5)
    assert all(q.candidates == ["x"] for q in again.queries)  # read from the cache, not rebuilt


@pytest.mark.slow
def test_training_distils_from_the_teacher(teacher_cache, tmp_path):
    cli = train_tiny(
        tmp_path / "run",
        "--data.teacher", "hybrid", "--data.negatives", "candidates",
        "--data.cache_dir", str(teacher_cache), "--model.distill_weight", "1.0",
        "--trainer.max_epochs", "1", "--trainer.logger", "false",
    )  # fmt: skip
    assert cli.trainer.state.finished
    assert "train_distill" in cli.trainer.callback_metrics
    dm = cli.datamodule
    assert all(q.teacher for q in dm.train_set.queries)
