import copy

import lightning as L
import pytest
import torch

from crossrank.train.datamodule import TriplesDataModule
from crossrank.train.model import CrossEncoder, CrossEncoderConfig
from crossrank.train.module import CrossEncoderModule
from crossrank.train.optim import adamw, can_fuse

TINY = CrossEncoderConfig(vocab_size=512, dim=32, n_layers=1, n_heads=4, ffn_dim=64)


def _steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int = 3) -> None:
    for step in range(steps):
        torch.manual_seed(step)  # the same gradients for every optimizer
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        optimizer.step()


def test_fused_adamw_takes_the_default_loops_steps():
    torch.manual_seed(0)
    looped = CrossEncoder(TINY)
    fused = copy.deepcopy(looped)
    a = adamw(looped, 1e-3, 1e-2, 0.01, fused=False)
    b = adamw(fused, 1e-3, 1e-2, 0.01)
    assert b.defaults["fused"] and not a.defaults["fused"]
    _steps(looped, a)
    _steps(fused, b)
    for (name, p), q in zip(looped.named_parameters(), fused.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6), name


def test_the_heads_train_at_their_own_rate():
    model = CrossEncoder(TINY)
    groups = adamw(model, 1e-4, 1e-2).param_groups
    head = {id(p) for n, p in model.named_parameters() if n.startswith("head.")}
    assert [g["lr"] for g in groups] == [1e-4, 1e-2]
    assert {id(p) for p in groups[1]["params"]} == head
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_fusing_what_cannot_be_fused_is_a_clear_error():
    model = CrossEncoder(TINY).to("meta")
    assert not can_fuse(list(model.parameters()))
    with pytest.raises(
        ValueError, match=r"expected float parameters on cpu or cuda to fuse AdamW, got \['meta'\]"
    ):
        adamw(model, 1e-3, fused=True)


class _GradNorm(L.Callback):
    """The gradient norm the optimizer stepped with (gradients stay set until the next step)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_training_clips_gradients_with_the_fused_optimizer(tmp_path, precision):
    # Lightning refuses gradient clipping for a fused optimizer under mixed precision; bf16
    # needs no loss scaler, so the module clips itself and must still clip.
    probe = _GradNorm()
    trainer = L.Trainer(
        accelerator="cpu",
        precision=precision,
        max_steps=3,
        gradient_clip_val=1e-3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[probe],
        default_root_dir=tmp_path,
    )
    module = CrossEncoderModule(TINY, lr=1e-3)
    trainer.fit(module, TriplesDataModule("fixture", batch_size=4, cache_dir=str(tmp_path)))
    assert trainer.optimizers[0].defaults["fused"]
    assert len(probe.norms) == 3
    assert max(probe.norms) <= 1e-3 * (1 + 1e-4)
