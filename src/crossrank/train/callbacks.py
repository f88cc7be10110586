"""``MarginTracker``: how far positives score above negatives on the eval pairs, per epoch."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import torch

from crossrank.io import atomic_file

MARGIN_FIELDS = ["epoch", "step", "pairs", "mean", "p10", "p50"]


def score_margins(scores: torch.Tensor, labels: torch.Tensor, query_index: torch.Tensor):
    """score(positive) − score(negative) for every (grade > 0, grade 0) pair of each query."""
    diffs = []
    for q in torch.unique(query_index):
        mine = query_index == q
        s, g = scores[mine], labels[mine]
        pos, neg = s[g > 0], s[g == 0]
        if pos.numel() and neg.numel():
            diffs.append((pos[:, None] - neg[None, :]).flatten())
    return torch.cat(diffs) if diffs else torch.empty(0)


class MarginTracker(L.Callback):
    """After each validation epoch, logs the mean, p10 and p50 of the positive-minus-negative
    score margin and appends them to ``margins.csv`` in ``dirpath`` (default: the run's log
    directory)."""

    def __init__(self, dirpath: str | None = None, filename: str = "margins.csv") -> None:
        self.dirpath = dirpath
        self.filename = filename
        self._outputs: list[dict[str, torch.Tensor]] = []

    def csv_path(self, trainer: L.Trainer) -> Path:
        base = self.dirpath or trainer.log_dir or trainer.default_root_dir
        return Path(base) / self.filename

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._outputs = []

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        if isinstance(outputs, dict) and "scores" in outputs:
            self._outputs.append({k: v.detach().float().cpu() for k, v in outputs.items()})

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not self._outputs:
            return
        margins = score_margins(
            torch.cat([o["scores"] for o in self._outputs]),
            torch.cat([o["labels"] for o in self._outputs]),
            torch.cat([o["query_index"] for o in self._outputs]),
        )
        if margins.numel() == 0:
            return
        row = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "pairs": margins.numel(),
            "mean": margins.mean().item(),
            "p10": torch.quantile(margins, 0.1).item(),
            "p50": torch.quantile(margins, 0.5).item(),
        }
        pl_module.log_dict({f"margin_{k}": float(row[k]) for k in ("mean", "p10", "p50")})
        if trainer.is_global_zero:
            self._append(self.csv_path(trainer), row)

    @staticmethod
    def _append(path: Path, row: dict) -> None:
        """Rewrite the CSV atomically; rows from a later step (a run resumed from an earlier
        checkpoint repeats them) are replaced."""
        rows = []
        if path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) < row["step"]]
        with atomic_file(path, "w") as f:
            writer = csv.DictWriter(f, fieldnames=MARGIN_FIELDS)
            writer.writeheader()
            writer.writerows([*rows, row])
