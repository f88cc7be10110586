import io
import os

import pytest
from rich.console import Console

from crossrank.cli.demo import run_demo
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow


def test_demo_end_to_end_lifts_ndcg(tmp_path, monkeypatch):
    config = tiny_config(tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    summary = run_demo(
        config, cache_dir=str(tmp_path / "cache"), console=Console(file=out, width=160)
    )
    text = out.getvalue()
    assert "BM25 doc" in text and "reranked doc" in text and "p95" in text
    assert summary["queries"] == 12
    assert summary["ndcg@10_reranked"] > summary["ndcg@10_first_stage"]
    assert (tmp_path / "run" / "onnx" / "model.int8.onnx").is_file()
    # A second run reuses the checkpoint and the artifact.
    before = os.stat(tmp_path / "run" / "best.ckpt").st_mtime
    out2 = io.StringIO()
    run_demo(config, cache_dir=str(tmp_path / "cache"), console=Console(file=out2, width=160))
    assert "reusing" in out2.getvalue()
    assert os.stat(tmp_path / "run" / "best.ckpt").st_mtime == before
