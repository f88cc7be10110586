"""Checkpoint averaging: the mean it claims, refusals that name what differs, and a result that
loads and exports like a trained checkpoint."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.train.averaging import average_checkpoints, average_state_dicts


def _state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "w": torch.randn(3, 4, generator=g),
        "b": torch.randn(4, generator=g).to(torch.bfloat16),
        "ids": torch.arange(5),
    }


@settings(max_examples=30, deadline=None)
@given(
    seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
    data=st.data(),
)
def test_the_average_is_the_weighted_mean_and_inputs_are_untouched(seeds, data):
    states = [_state(s) for s in seeds]
    copies = [{k: v.clone() for k, v in s.items()} for s in states]
    weights = data.draw(st.lists(st.floats(0.1, 5.0), min_size=len(states), max_size=len(states)))
    out = average_state_dicts(states, weights)
    expected = sum(w * s["w"].double() for w, s in zip(weights, states, strict=True)) / sum(weights)
    torch.testing.assert_close(out["w"], expected.float())
    assert out["b"].dtype == torch.bfloat16
    assert torch.equal(out["ids"], torch.arange(5))
    for state, copy in zip(states, copies, strict=True):
        assert all(torch.equal(state[k], copy[k]) for k in state)


def test_zero_weight_keeps_the_other_state_exactly():
    a, b = _state(1), _state(2)
    out = average_state_dicts([a, b], [1.0, 0.0])
    assert all(torch.equal(out[k], a[k]) for k in a)


def test_mismatches_are_named():
    a, b = _state(1), _state(2)
    with pytest.raises(ValueError, match="same parameter names"):
        average_state_dicts([a, {k: v for k, v in b.items() if k != "w"}])
    with pytest.raises(ValueError, match=r"w: expected \(3, 4\)"):
        average_state_dicts([a, {**b, "w": torch.zeros(4, 3)}])
    with pytest.raises(ValueError, match="ids: expected equal"):
        average_state_dicts([a, {**b, "ids": torch.arange(5) + 1}])
    with pytest.raises(ValueError, match="expected 2 weights"):
        average_state_dicts([a, b], [1.0])
    with pytest.raises(ValueError, match="non-negative weights"):
        average_state_dicts([a, b], [1.0, -1.0])


def _perturbed(path, out, shift: float) -> None:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    checkpoint["state_dict"] = {
        k: v + shift if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()
    }
    torch.save(checkpoint, out)


def test_averaged_checkpoint_loads_with_the_midpoint_weights(trained_tiny, tmp_path):
    from crossrank.export.sources import from_checkpoint
    from crossrank.train.module import CrossEncoderModule

    best = trained_tiny / "best.ckpt"
    up, down = tmp_path / "up.ckpt", tmp_path / "down.ckpt"
    _perturbed(best, up, 0.5)
    _perturbed(best, down, -0.5)
    report = average_checkpoints([up, down], tmp_path / "soup.ckpt")
    assert report["weights"] == [1.0, 1.0] and len(report["sources"]) == 2
    soup = CrossEncoderModule.load_from_checkpoint(tmp_path / "soup.ckpt").state_dict()
    original = CrossEncoderModule.load_from_checkpoint(best).state_dict()
    for key, value in original.items():
        torch.testing.assert_close(soup[key], value, atol=1e-6, rtol=0)
    saved = torch.load(tmp_path / "soup.ckpt", map_location="cpu", weights_only=False)
    assert "optimizer_states" not in saved and "loops" not in saved  # a model, not a run
    from_checkpoint(tmp_path / "soup.ckpt")  # export reads it


def test_checkpoints_of_different_encoders_are_refused(trained_tiny, tmp_path):
    best = trained_tiny / "best.ckpt"
    checkpoint = torch.load(best, map_location="cpu", weights_only=False)
    checkpoint["hyper_parameters"]["encoder"]["dim"] = 128
    torch.save(checkpoint, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="expected the encoder config"):
        average_checkpoints([best, tmp_path / "other.ckpt"], tmp_path / "soup.ckpt")
    assert not (tmp_path / "soup.ckpt").exists()
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints([best], tmp_path / "soup.ckpt")
