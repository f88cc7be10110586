"""``plan_batches``: which pairs share an inference call, so no pair is padded and a score
never depends on its batch-mates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def plan_batches(
    lengths: Sequence[int],
    groups: Sequence[int] | None,
    batch_size: int | None,
    batch_tokens: int | None,
    max_length: int,
) -> list[np.ndarray]:
    """Pair indices per inference call, sorted by (group, length in tokens). A call holds
    pairs of one group and one length only, so nothing is padded and a pair's score is
    bitwise the same whatever shares its call (kernels differ with the padded width, by
    float rounding); it holds ``batch_size`` pairs or, without one, as many as fit
    ``batch_tokens`` tokens. Long documents fill the window, so their calls fill too."""
    groups = [0] * len(lengths) if groups is None else list(groups)
    if len(groups) != len(lengths):
        raise ValueError(f"expected one group per pair ({len(lengths)}), got {len(groups)}")
    order = sorted(range(len(lengths)), key=lambda i: (groups[i], lengths[i]))
    batches: list[list[int]] = []
    for i in order:
        tokens = min(max_length, lengths[i])
        batch = batches[-1] if batches else None
        fits = batch is not None and (groups[batch[0]], lengths[batch[0]]) == (
            groups[i],
            lengths[i],
        )
        if fits and batch_size is not None:
            fits = len(batch) < batch_size
        elif fits:
            fits = (len(batch) + 1) * tokens <= (batch_tokens or 0)
        if fits:
            batch.append(i)
        else:
            batches.append([i])
    return [np.asarray(b, dtype=np.int64) for b in batches]
