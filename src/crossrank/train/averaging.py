"""Checkpoint averaging ("model soup"): the element-wise mean of the weights of checkpoints
fine-tuned from the same start, written as one checkpoint that ``crossrank export`` and
``CrossEncoderModule.load_from_checkpoint`` read like any other.

Averaging only makes sense for models of one shape that began from the same weights (the same
``pretrained`` encoder); a mean of unrelated networks is noise, so the encoder configs must match.
The result carries no optimizer or loop state: it is a model to export, not a run to resume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from crossrank.io import atomic_file
from crossrank.runtime.artifact import sha256_file

# Run state that describes one run's progress; an average of several runs has none.
_RUN_STATE = ("optimizer_states", "lr_schedulers", "loops", "callbacks", "epoch", "global_step")


def average_state_dicts(
    states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """Weighted mean of floating-point tensors (computed in float64, cast back to each tensor's
    dtype); integer and boolean tensors must agree across states and are kept as they are."""
    if not states:
        raise ValueError("expected at least one state dict to average, got none")
    weights = [1.0] * len(states) if weights is None else [float(w) for w in weights]
    if len(weights) != len(states):
        raise ValueError(f"expected {len(states)} weights (one per state), got {len(weights)}")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"expected non-negative weights with a positive sum, got {weights}")
    total = sum(weights)
    keys = list(states[0])
    for i, state in enumerate(states[1:], start=1):
        if set(state) != set(keys):
            diff = sorted(set(state) ^ set(keys))[:3]
            raise ValueError(f"state {i}: expected the same parameter names as state 0, got {diff}")
    averaged: dict[str, torch.Tensor] = {}
    for key in keys:
        tensors = [state[key] for state in states]
        first = tensors[0]
        for i, t in enumerate(tensors[1:], start=1):
            if t.shape != first.shape or t.dtype != first.dtype:
                raise ValueError(
                    f"{key}: expected {tuple(first.shape)} {first.dtype} as in state 0, "
                    f"got {tuple(t.shape)} {t.dtype} in state {i}"
                )
        if first.is_floating_point():
            acc = sum(w * t.to(torch.float64) for w, t in zip(weights, tensors, strict=True))
            averaged[key] = (acc / total).to(first.dtype)
        else:
            if any(not torch.equal(t, first) for t in tensors[1:]):
                raise ValueError(f"{key}: expected equal non-float tensors in every state")
            averaged[key] = first.clone()
    return averaged


def _load(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected a checkpoint file, found none")
    try:
        # Lightning checkpoints pickle their hyper-parameters; read only files you trust.
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(
            f"{path}: expected a crossrank Lightning checkpoint (.ckpt), could not read it "
            f"({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path}: expected a Lightning checkpoint with a state_dict, got none")
    return checkpoint


def average_checkpoints(
    paths: Sequence[str | Path], output: str | Path, weights: Sequence[float] | None = None
) -> dict:
    """Average ``paths`` into ``output`` (written atomically); returns what was averaged."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ValueError(f"expected at least two checkpoints to average, got {len(paths)}")
    checkpoints = [_load(p) for p in paths]
    encoder = checkpoints[0].get("hyper_parameters", {}).get("encoder")
    for path, checkpoint in zip(paths[1:], checkpoints[1:], strict=True):
        other = checkpoint.get("hyper_parameters", {}).get("encoder")
        if other != encoder:
            raise ValueError(
                f"{path}: expected the encoder config of {paths[0]} ({encoder}), got {other}"
            )
    used = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    state = average_state_dicts([c["state_dict"] for c in checkpoints], used)
    sources = [
        {"checkpoint": str(p), "sha256": sha256_file(p), "global_step": c.get("global_step")}
        for p, c in zip(paths, checkpoints, strict=True)
    ]
    summary = {"sources": sources, "weights": used}
    result = {k: v for k, v in checkpoints[0].items() if k not in _RUN_STATE}
    result["state_dict"] = state
    result["crossrank_average"] = summary
    with atomic_file(output) as f:
        torch.save(result, f)
    return {"output": str(output), **summary}
