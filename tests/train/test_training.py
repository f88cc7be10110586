import csv
import random

import pytest
import torch

from crossrank.data.metrics import mean, ndcg_at_k
from crossrank.train.datamodule import TriplesDataModule
from crossrank.train.module import AtomicCheckpointIO, CrossEncoderModule
from tests.conftest import CrashAt, train_tiny


def _margins(run):
    with open(run / "margins.csv") as f:
        return list(csv.DictReader(f))


def _eval_ndcg(module, score_fn=None):
    """nDCG@10 of reranking each fixture eval query's BM25 top 20 (the config's eval task)."""
    dm = TriplesDataModule(eval_candidates="candidates", eval_depth=20, cache_dir=None)
    dm.setup("validate")
    values = []
    for q in dm.eval_set.queries:
        docs = [dm.eval_set.documents[d] for d in q.candidates]
        with torch.no_grad():
            scores = score_fn(q.text, docs) if score_fn else module([q.text] * len(docs), docs)
        ranked = [q.candidates[i] for i in torch.as_tensor(scores).argsort(descending=True)]
        values.append(ndcg_at_k(ranked, q.judged))
    return mean(values)


def test_fast_dev_run(tmp_path):
    cli = train_tiny(tmp_path, "--trainer.fast_dev_run", "true")
    assert cli.trainer.state.finished


@pytest.mark.slow
def test_ten_epochs_widen_the_margin_and_beat_untrained_and_random(trained_tiny):
    rows = _margins(trained_tiny)
    assert [int(r["epoch"]) for r in rows] == list(range(10))
    first, last = float(rows[0]["mean"]), float(rows[-1]["mean"])
    assert last > 0 and last > first
    trained = CrossEncoderModule.load_from_checkpoint(trained_tiny / "best.ckpt").eval()
    torch.manual_seed(0)
    untrained = CrossEncoderModule().eval()
    rng = random.Random(0)
    random_order = mean(
        [_eval_ndcg(None, lambda q, d: torch.tensor([rng.random() for _ in d])) for _ in range(20)]
    )
    ours = _eval_ndcg(trained)
    assert ours > _eval_ndcg(untrained) + 0.05
    assert ours > random_order + 0.05


@pytest.mark.slow
def test_checkpoint_reload_gives_identical_scores(trained_tiny):
    a = CrossEncoderModule.load_from_checkpoint(trained_tiny / "best.ckpt").eval()
    b = CrossEncoderModule.load_from_checkpoint(trained_tiny / "best.ckpt").eval()
    queries = ["how long should french press coffee steep"] * 2
    docs = ["Four minutes, then press the plunger.", "Descale the machine monthly."]
    with torch.no_grad():
        assert torch.equal(a(queries, docs), b(queries, docs))
    assert a.hparams.encoder == b.hparams.encoder


@pytest.mark.slow
def test_seeded_runs_and_a_run_resumed_mid_epoch_after_a_crash_end_at_the_same_metrics(tmp_path):
    straight = train_tiny(tmp_path / "a", "--trainer.max_epochs", "3")
    again = train_tiny(tmp_path / "b", "--trainer.max_epochs", "3")
    crashing = train_tiny(tmp_path / "c", "--trainer.max_epochs", "3", run=False)
    crashing.trainer.callbacks.append(CrashAt(step=70))  # epoch 1 runs steps 46-91
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.trainer.fit(crashing.model, datamodule=crashing.datamodule)
    last = tmp_path / "c" / "last.ckpt"
    state = torch.load(last, weights_only=False)
    # LatestCheckpoint wrote it at step 70, in the middle of epoch 1, with the loader's place.
    assert (state["epoch"], state["global_step"]) == (1, 70)
    assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"consumed": 24}]
    resumed = train_tiny(tmp_path / "c", "--trainer.max_epochs", "3", "--ckpt_path", str(last))
    assert resumed.trainer.current_epoch == 3
    assert [int(r["epoch"]) for r in _margins(tmp_path / "c")] == [0, 1, 2]
    metrics = [run.trainer.callback_metrics for run in (straight, again, resumed)]
    for key in ("val_ndcg@10", "val_mrr", "margin_mean"):
        assert metrics[0][key].item() == pytest.approx(metrics[1][key].item(), abs=1e-6), key
        assert metrics[0][key].item() == pytest.approx(metrics[2][key].item(), abs=1e-5), key


def test_a_failed_checkpoint_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "ckpt" / "last.ckpt"
    with pytest.raises(Exception):  # noqa: B017 - pickling a lambda fails inside torch.save
        AtomicCheckpointIO().save_checkpoint({"state": lambda: 0}, target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_a_failed_overwrite_keeps_the_previous_checkpoint(tmp_path):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1}, target)
    with pytest.raises(Exception):  # noqa: B017
        io.save_checkpoint({"epoch": 2, "bad": lambda: 0}, target)
    assert torch.load(target)["epoch"] == 1


def test_fast_dev_run_with_the_answer_head(tmp_path):
    cli = train_tiny(
        tmp_path, "--trainer.fast_dev_run", "true", "--model.encoder.answer_head", "true"
    )
    assert cli.trainer.state.finished
    assert cli.model.model.answer is not None
    assert torch.isfinite(cli.trainer.callback_metrics["train_loss"])
