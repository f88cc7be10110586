"""Export a sentence-transformers-style bi-encoder (mean pooling, L2 norm) to ONNX."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from crossrank.data.examples import read_labeled
from crossrank.export.checks import PARITY_TOLERANCE, ParityError, ort_outputs, torch_outputs
from crossrank.export.onnx import OPSET, trace_onnx
from crossrank.io import atomic_directory
from crossrank.retrieval.dense import bi_encoder_dir
from crossrank.runtime.artifact import MANIFEST, Manifest, hash_files, sha256_file
from crossrank.runtime.backends import ort_session
from crossrank.runtime.wordpiece import WordPieceTokenizer
from crossrank.train.model import pool, resolve_pretrained


class MeanPooledEncoder(nn.Module):
    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        return nn.functional.normalize(pool(hidden, attention_mask, "mean"), dim=-1)


def export_bi_encoder(name: str, output: str | Path, max_length: int = 256) -> Manifest:
    """Write a bi-encoder artifact for ``name`` (directory, hub id or alias like ``minilm-l6``)."""
    from transformers import AutoModel

    path = resolve_pretrained(name)
    bert = AutoModel.from_pretrained(
        path, attn_implementation="eager", add_pooling_layer=False
    ).eval()
    module = MeanPooledEncoder(bert).eval()
    tokenizer = WordPieceTokenizer(path)
    data = read_labeled("fixture", "eval")
    texts = [q.text for q in data.queries] + list(data.documents.values())[:20]
    with atomic_directory(output) as tmp:
        trace_onnx(
            module,
            tokenizer.encode_texts(texts[:2], max_length),
            tmp / "model.onnx",
            OPSET,
            ("embeddings",),
        )
        sess = ort_session(tmp / "model.onnx")
        diffs = [
            float(np.abs(ort_outputs(sess, enc, "embeddings") - torch_outputs(module, enc)).max())
            for enc in [tokenizer.encode_texts(texts, max_length)]
            + [tokenizer.encode_texts([t], max_length) for t in texts[:4]]
        ]
        if max(diffs) > PARITY_TOLERANCE:
            raise ParityError(
                f"expected bi-encoder parity within {PARITY_TOLERANCE}, got {max(diffs):.2e}"
            )
        shutil.copy2(tokenizer.path, tmp / "tokenizer.json")
        weights = Path(path) / "model.safetensors"
        manifest = Manifest(
            model={
                "kind": "bi-encoder",
                "name": name,
                "dim": bert.config.hidden_size,
                "pooling": "mean",
                "normalize": True,
            },
            tokenizer=tokenizer.config(),
            max_length=max_length,
            opset=OPSET,
            outputs=["embeddings"],
            source={
                "pretrained": name,
                "sha256": sha256_file(weights) if weights.is_file() else None,
            },
            parity={"max_abs_diff": max(diffs), "texts": len(texts)},
        )
        manifest.files = hash_files(tmp)
        manifest.save(tmp)
    return manifest


def ensure_bi_encoder(
    cache_dir: str | Path, name: str = "minilm-l6", max_length: int = 256
) -> Path:
    """The cached bi-encoder artifact for ``name``, exported on first use."""
    out = bi_encoder_dir(cache_dir, name, max_length)
    if not (out / MANIFEST).is_file():
        with torch.no_grad():
            export_bi_encoder(name, out, max_length)
    return out
