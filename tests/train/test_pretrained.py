"""The pretrained MiniLM backbone and scale-out (DDP on CPU with gloo)."""

import os
import subprocess
import sys

import pytest
import torch

from crossrank.train.model import CrossEncoder, CrossEncoderConfig, resolve_pretrained
from tests.conftest import ROOT, tiny_config

pytestmark = pytest.mark.slow


def test_minilm_alias_loads_offline_with_its_tokenizer():
    code = """
from crossrank.train.model import CrossEncoder, CrossEncoderConfig
import torch
cfg = CrossEncoderConfig(pretrained="minilm-l6", max_length=256)
model = CrossEncoder(cfg).eval()
enc = cfg.tokenizer().encode_pairs(["what is vitamin d"], ["Vitamin D is a fat-soluble vitamin."], 256)
with torch.no_grad():
    out = model(**{k: torch.from_numpy(v) for k, v in enc.as_dict().items()})
print(tuple(out.shape), sum(p.numel() for p in model.parameters()))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    shape, params = out.stdout.split(")")
    assert shape == "(1," and 22_000_000 < int(params) < 23_000_000


def test_pretrained_config_rejects_a_window_beyond_its_positions():
    with pytest.raises(ValueError, match="max_length <= 512"):
        CrossEncoder(CrossEncoderConfig(pretrained="minilm-l6", max_length=1024))
    assert os.path.isdir(resolve_pretrained("minilm-l6"))


def test_heads_score_in_float32_under_bf16_autocast():
    cfg = CrossEncoderConfig(vocab_size=512)
    enc = cfg.tokenizer().encode_pairs(["q"], ["d"], 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = CrossEncoder(cfg)(**{k: torch.from_numpy(v) for k, v in enc.as_dict().items()})
    assert out.dtype == torch.float32


def test_ddp_on_two_cpu_processes(tmp_path):
    config = tiny_config(tmp_path)
    cmd = [
        sys.executable,
        "scripts/train.py",
        "fit",
        "--config",
        str(config),
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--trainer.accelerator",
        "cpu",
        "--trainer.max_steps",
        "4",
        "--trainer.limit_val_batches",
        "2",
        "--trainer.enable_progress_bar",
        "false",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "distributed_backend=gloo" in out.stderr + out.stdout
    assert (tmp_path / "last.ckpt").is_file()
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == 4


@pytest.mark.parametrize(("attention", "expected"), [(None, 0.1), (0.0, 0.0)])
def test_attention_dropout_reaches_the_pretrained_encoder(attention, expected):
    cfg = CrossEncoderConfig(
        pretrained="minilm-l6", max_length=64, dropout=0.0, attention_dropout=attention
    )
    model = CrossEncoder(cfg).train()
    assert model.encoder.bert.config.attention_probs_dropout_prob == expected  # 0.1: its own
    enc = cfg.tokenizer().encode_pairs(["vitamin d"], ["Vitamin D is a fat-soluble vitamin."], 64)
    batch = {k: torch.from_numpy(v) for k, v in enc.as_dict().items()}
    with torch.no_grad():
        assert torch.equal(model(**batch), model(**batch)) == (expected == 0.0)


def test_freezing_minilm_keeps_its_embeddings_and_bottom_layers():
    model = CrossEncoder(CrossEncoderConfig(pretrained="minilm-l6", max_length=32))
    model.freeze_bottom(2)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert {n.split(".")[2] for n in frozen} == {"embeddings", "encoder"}
    assert {n.split(".")[4] for n in frozen if ".encoder.layer." in n} == {"0", "1"}
    assert not any(".layer.2." in n for n in frozen)
