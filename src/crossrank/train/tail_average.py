"""``TailAverage``: the mean of the weights over the tail of the schedule, written at the end.

Snapshots are taken when the run is a given fraction of the way through its schedule, measured
as the learning rate measures it (steps, or time when ``max_time`` is further along), so a slower
CPU snapshots at the same place in its annealing, in fewer steps. When training ends, the final
weights and the snapshots are averaged (``averaging.average_checkpoints``) into ``average.ckpt``.
Which snapshots a run took is callback state, so a resumed run averages the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from crossrank.train.averaging import average_checkpoints
from crossrank.train.module import run_progress


class TailAverage(L.Callback):
    def __init__(
        self, dirpath: str, at: Sequence[float] = (0.65, 0.85), filename: str = "average"
    ) -> None:
        fractions = [float(a) for a in at]
        if not fractions or any(not 0.0 < a < 1.0 for a in fractions):
            raise ValueError(f"expected snapshot fractions in (0, 1), got {list(at)}")
        if sorted(set(fractions)) != fractions:
            raise ValueError(f"expected increasing, distinct snapshot fractions, got {list(at)}")
        percents = [round(a * 100) for a in fractions]  # the snapshots' file names
        if len(set(percents)) != len(percents) or max(percents) >= 100:
            raise ValueError(
                "expected snapshot fractions at least 0.01 apart and below 0.995 (each names "
                f"its file tail-NN.ckpt, and tail-100.ckpt is the end's), got {list(at)}"
            )
        self.dirpath = Path(dirpath)
        self.at = fractions
        self.filename = filename
        self.taken: dict[str, int] = {}  # snapshot file name -> the global step it holds

    def snapshot_path(self, fraction: float) -> Path:
        return self.dirpath / f"tail-{round(fraction * 100):02d}.ckpt"

    @property
    def output(self) -> Path:
        return self.dirpath / f"{self.filename}.ckpt"

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        done = run_progress(trainer)
        for fraction in self.at:
            path = self.snapshot_path(fraction)
            if done >= fraction and path.name not in self.taken:
                trainer.save_checkpoint(path, weights_only=True)
                self.taken[path.name] = trainer.global_step

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.taken:
            rank_zero_info(f"TailAverage: no snapshot before the end, {self.output} not written")
            return
        final = self.dirpath / "tail-100.ckpt"
        trainer.save_checkpoint(final, weights_only=True)  # every rank takes part in a save
        if not trainer.is_global_zero:
            return
        snapshots = [self.dirpath / name for name, step in sorted(self.taken.items())]
        summary = average_checkpoints([*snapshots, final], self.output)
        used = [s["global_step"] for s in summary["sources"]]
        rank_zero_info(f"TailAverage: averaged steps {used} into {self.output}")

    def state_dict(self) -> dict:
        return {"taken": dict(self.taken)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.taken = dict(state_dict.get("taken", {}))

    @property
    def state_key(self) -> str:
        return self._generate_state_key(at=tuple(self.at), filename=self.filename)
