"""``LatestCheckpoint``: ``last.ckpt`` always holds the run's latest state, to resume from.

Lightning's ``ModelCheckpoint(save_last=True)`` writes ``last.ckpt`` only when it saves a
monitored checkpoint, i.e. when the metric improves; a crash then loses every step since the
best epoch. This callback writes it every ``every_n_train_steps`` steps, at each epoch end and
when training ends (atomically, through the trainer's checkpoint IO).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L


class LatestCheckpoint(L.Callback):
    def __init__(
        self, dirpath: str, every_n_train_steps: int = 100, filename: str = "last"
    ) -> None:
        if every_n_train_steps < 1:
            raise ValueError(f"expected every_n_train_steps >= 1, got {every_n_train_steps}")
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self.every = every_n_train_steps
        self._saved_at = -1

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.global_step != self._saved_at and not trainer.sanity_checking:
            trainer.save_checkpoint(self.path, weights_only=False)  # resume needs full state
            self._saved_at = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step % self.every == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)
