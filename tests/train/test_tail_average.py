"""Tail averaging: snapshots placed by schedule progress, averaged with the end of training."""

import pytest
import torch

from crossrank.train.tail_average import TailAverage
from tests.conftest import CrashAt


@pytest.mark.parametrize("at", [[], [0.0, 0.5], [0.5, 1.0], [0.8, 0.5], [0.5, 0.5]])
def test_fractions_must_be_inside_the_run_increasing_and_distinct(tmp_path, at):
    with pytest.raises(ValueError, match="expected"):
        TailAverage(str(tmp_path), at=at)


@pytest.mark.parametrize("at", [[0.651, 0.654], [0.5, 0.996]])
def test_fractions_that_would_share_a_snapshot_file_are_refused(tmp_path, at):
    # 0.651 and 0.654 both name tail-65.ckpt (the second would never be taken); 0.996 names
    # tail-100.ckpt, the end's own file (its weights would be averaged twice)
    with pytest.raises(ValueError, match=r"expected snapshot fractions at least 0\.01 apart"):
        TailAverage(str(tmp_path), at=at)
    TailAverage(str(tmp_path), at=[0.65, 0.66, 0.99])  # distinct names: accepted


def _fit(cli, ckpt_path=None):
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)


def _steps(path):
    return [
        s["global_step"]
        for s in torch.load(path, weights_only=False)["crossrank_average"]["sources"]
    ]


@pytest.mark.slow
def test_snapshots_land_where_the_schedule_is_and_a_resumed_run_averages_the_same(tmp_path):
    from conftest import train_tiny

    args = ("--trainer.max_epochs", "3", "--trainer.limit_val_batches", "0")
    straight = train_tiny(tmp_path / "a", *args, run=False)
    tail = TailAverage(str(tmp_path / "a"), at=[0.5, 0.8])
    straight.trainer.callbacks.append(tail)
    _fit(straight)
    total = straight.trainer.global_step
    assert total == straight.trainer.estimated_stepping_batches == 138  # 3 epochs of 46
    # The first step at or past each fraction of the schedule, then the end.
    assert _steps(tail.output) == [69, 111, 138]
    states = [torch.load(tmp_path / "a" / f"tail-{n}.ckpt", weights_only=False)["state_dict"]
              for n in ("50", "80", "100")]  # fmt: skip
    averaged = torch.load(tail.output, weights_only=False)["state_dict"]
    for key, value in averaged.items():
        if value.is_floating_point():
            expected = sum(s[key].double() for s in states) / 3
            torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7)
    assert not torch.equal(averaged["model.head.weight"], states[2]["model.head.weight"])

    # Killed after the first snapshot, resumed from last.ckpt: the same steps are averaged.
    crashing = train_tiny(tmp_path / "c", *args, run=False)
    crashing.trainer.callbacks += [TailAverage(str(tmp_path / "c"), at=[0.5, 0.8]), CrashAt(90)]
    with pytest.raises(RuntimeError, match="simulated crash"):
        _fit(crashing)
    assert not (tmp_path / "c" / "average.ckpt").exists()
    resumed = train_tiny(tmp_path / "c", *args, run=False)
    resumed.trainer.callbacks.append(TailAverage(str(tmp_path / "c"), at=[0.5, 0.8]))
    _fit(resumed, ckpt_path=tmp_path / "c" / "last.ckpt")
    assert _steps(tmp_path / "c" / "average.ckpt") == [69, 111, 138]
