"""Every shipped config parses; the real-data configs set up and take a training step."""

import warnings
from pathlib import Path

import pytest

from crossrank.cli.train import main
from tests.conftest import ROOT, shared_dataset

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def _cli(config: Path, tmp_path: Path, *extra: str, run: bool = False):
    text = config.read_text().replace("checkpoints/", f"{tmp_path}/")
    text = text.replace("../shared/data", str(ROOT.parent / "shared" / "data"))
    local = tmp_path / config.name
    local.write_text(text)
    args = ["--config", str(local), "--data.cache_dir", str(tmp_path / "cache"), *extra]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["fit", *args] if run else args, run=run)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_parses_and_builds_the_model(config, tmp_path):
    if "shared/data" in config.read_text():
        shared_dataset("nfcorpus")
    cli = _cli(config, tmp_path)
    assert cli.model.model.cfg.max_length >= 64


@pytest.mark.slow
def test_scifact_config_trains_a_step(tmp_path):
    shared_dataset("scifact")
    cli = _cli(
        ROOT / "configs" / "minilm-scifact.yaml",
        tmp_path,
        "--trainer.fast_dev_run",
        "true",
        run=True,
    )
    assert cli.trainer.state.finished
    dm = cli.datamodule
    assert (
        len(dm.eval_set.queries) == 40 and len(dm.train_set.queries) > 600
    )  # capped by max_eval_queries


@pytest.mark.slow
def test_combined_config_merges_both_training_sets(tmp_path):
    shared_dataset("scifact")
    cli = _cli(ROOT / "configs" / "minilm-nfcorpus-scifact.yaml", tmp_path)
    dm = cli.datamodule
    dm.hparams.max_eval_queries = 5
    dm.setup("fit")
    sources = {q.qid.split(":")[0] for q in dm.train_set.queries}
    assert sources == {"0", "1"}
    assert len(dm.train_set.documents) > 3633 + 5000
