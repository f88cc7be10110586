import lightning as L
import pytest
import torch

from crossrank.train.datamodule import TriplesDataModule
from crossrank.train.model import CrossEncoder, CrossEncoderConfig
from crossrank.train.module import CrossEncoderModule
from crossrank.train.optim import adamw

TINY = CrossEncoderConfig(vocab_size=512, dim=32, n_layers=3, n_heads=4, ffn_dim=64)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def test_a_frozen_bottom_gets_no_optimizer_state():
    model = CrossEncoder(TINY)
    model.freeze_bottom(2)
    trained = {id(p) for g in adamw(model, 1e-3, 1e-2).param_groups for p in g["params"]}
    untrained = {n for n, p in model.named_parameters() if id(p) not in trained}
    bottom = {f"encoder.{n}" for n, _ in model.encoder.named_parameters()}
    bottom -= {n for n in bottom if n.startswith("encoder.blocks.2.")}
    assert untrained == bottom  # embeddings, their norm and blocks 0-1; block 2 and head train


def test_training_leaves_the_frozen_layers_as_they_were(tmp_path):
    module = CrossEncoderModule(TINY, lr=1e-2, freeze_layers=2)
    before = _snapshot(module.model)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, TriplesDataModule("fixture", batch_size=4, cache_dir=str(tmp_path)))
    after = _snapshot(module.model)
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    bottom = {n for n, p in module.model.named_parameters() if not p.requires_grad}
    assert bottom and not (moved & bottom)
    assert any(n.startswith("encoder.blocks.2.") for n in moved) and "head.weight" in moved
    assert module.hparams.freeze_layers == 2  # recorded, so a resumed run freezes the same


def test_backward_stops_above_the_frozen_layers():
    model = CrossEncoder(TINY)
    model.freeze_bottom(3)
    ids = torch.randint(5, 512, (2, 16))
    model(ids, torch.ones_like(ids), torch.zeros_like(ids)).sum().backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("encoder."))
    assert model.head.weight.grad is not None


@pytest.mark.parametrize("n", [-1, 4])
def test_freezing_more_layers_than_the_encoder_has_is_a_clear_error(n):
    with pytest.raises(ValueError, match=rf"expected 0 <= freeze_layers <= 3 .*got {n}$"):
        CrossEncoderModule(TINY, freeze_layers=n)
