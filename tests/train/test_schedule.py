"""The learning-rate schedule: by steps, or by time when a time budget ends the run first."""

import pytest

from crossrank.train.module import lr_factor, progress, step_factor


def test_progress_follows_whichever_budget_is_further_along():
    assert progress(50, 100) == 0.5
    assert progress(50, 100, elapsed=30.0, remaining=10.0) == 0.75  # time is further along
    assert progress(90, 100, elapsed=10.0, remaining=30.0) == 0.9  # steps are
    assert progress(500, 100) == 1.0
    assert progress(50, None, elapsed=30.0, remaining=10.0) == 0.75  # no step budget: time only
    assert progress(50, None) == 0.0


def test_warm_up_then_decay_to_zero():
    assert lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1) == pytest.approx(0.5)
    assert lr_factor(1.0, 0.1) == 0.0
    assert lr_factor(0.0, 0.1) > 0.0  # the first step still moves
    assert [step_factor(s, 10, 2) for s in (0, 1, 2, 6, 10)] == [0.5, 1.0, 1.0, 0.5, 0.0]


@pytest.mark.slow
@pytest.mark.parametrize("epochs", ["10000", "-1"])  # -1 (and max_steps -1): time alone bounds it
def test_a_run_stopped_by_max_time_warms_up_and_ends_at_a_low_rate(tmp_path, epochs):
    """Far more epochs than fit in the time budget: the rate must rise and still decay."""
    import csv

    from conftest import train_tiny

    cli = train_tiny(
        tmp_path, "--trainer.max_epochs", epochs, "--trainer.max_time", "00:00:00:15",
        "--trainer.limit_val_batches", "0", "--trainer.log_every_n_steps", "1",
        "--trainer.callbacks+=lightning.pytorch.callbacks.LearningRateMonitor",
    )  # fmt: skip
    base = cli.model.hparams.lr
    [metrics] = list(tmp_path.rglob("metrics.csv"))
    rates = [
        float(r[k])
        for r in csv.DictReader(metrics.open())
        for k in r
        if k.startswith("lr") and r[k]
    ]
    assert cli.trainer.current_epoch < 10000 and len(rates) > 5
    assert max(rates) > 0.5 * base  # it warmed up to near the full rate
    assert cli.trainer.optimizers[0].param_groups[0]["lr"] < 0.15 * base  # and decayed by the end


@pytest.mark.slow
def test_a_run_stopped_by_max_time_before_its_first_validation_still_writes_best(tmp_path):
    """A slow CPU may not reach the first scheduled validation inside its time budget: the run
    must validate when the budget stops it, so ``best.ckpt`` (what the recipes export) exists."""
    import csv

    from conftest import train_tiny

    train_tiny(
        tmp_path, "--trainer.max_epochs", "-1", "--trainer.max_steps", "100000",
        "--trainer.check_val_every_n_epoch", "null", "--trainer.val_check_interval", "100000",
        "--trainer.max_time", "00:00:00:08",
    )  # fmt: skip
    [metrics] = list(tmp_path.rglob("metrics.csv"))
    validations = [r for r in csv.DictReader(metrics.open()) if r.get("val_ndcg@10")]
    assert len(validations) == 1
    assert (tmp_path / "best.ckpt").exists()


def test_a_run_with_no_bound_at_all_is_refused(tmp_path):
    from conftest import train_tiny

    with pytest.raises(ValueError, match=r"expected a bound on training .*got none"):
        train_tiny(tmp_path, "--trainer.max_epochs", "-1")
