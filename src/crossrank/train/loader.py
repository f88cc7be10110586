"""A training DataLoader that Lightning can resume in the middle of an epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader


class ResumableLoader(DataLoader):
    """Lightning saves ``state_dict()`` in every checkpoint and calls ``load_state_dict`` on
    resume; the state is how many batches of the current epoch were consumed, and the first
    iteration after a resume skips that many. The order of an epoch depends only on
    (seed, epoch) (``EpochShuffle``) and each group's negatives on (seed, epoch, index), so the
    resumed epoch goes on with exactly the batches the interrupted one had left.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.consumed = 0
        self._skip = 0

    def __iter__(self) -> Iterator:
        # A generator: its body runs at the first ``next``, after Lightning has restored the
        # state (it creates the iterator first and loads the state dict after).
        self.consumed = 0
        batches = super().__iter__()
        skip, self._skip = self._skip, 0
        for _ in range(skip):  # building a skipped batch is cheap next to a training step
            next(batches, None)
            self.consumed += 1
        for batch in batches:
            self.consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._skip = int(state.get("consumed", 0))
