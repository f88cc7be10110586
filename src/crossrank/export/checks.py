"""Checks an export must pass: the graph reproduces torch (parity), and int8 keeps the ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from crossrank.data.examples import read_labeled
from crossrank.runtime.backends import ort_session
from crossrank.runtime.tokenization import Encoded, PairTokenizer

PARITY_TOLERANCE = 1e-4


class ParityError(RuntimeError):
    """The exported graph does not reproduce the torch model's scores."""


def fixture_pairs(limit: int = 48) -> tuple[list[str], list[str]]:
    """Real (query, document) pairs from the packaged fixture for parity checks."""
    data = read_labeled("fixture", "eval")
    docs = list(data.documents.values())
    queries, documents = [], []
    for i, q in enumerate(data.queries):
        for j in range(4):
            queries.append(q.text)
            documents.append(docs[(7 * i + 13 * j) % len(docs)])
    # One long pair so the batch also exercises truncation at max_length.
    queries.append(data.queries[0].text)
    documents.append(" ".join(docs[:20]))
    return queries[:limit], documents[:limit]


def torch_outputs(module: nn.Module, enc: Encoded) -> np.ndarray:
    """The module's outputs stacked: ``[outputs, batch]`` (or ``[batch, ...]`` for one)."""
    with torch.no_grad():
        out = module(
            *(torch.from_numpy(a) for a in (enc.input_ids, enc.attention_mask, enc.token_type_ids))
        )
    if isinstance(out, tuple):
        return np.stack([o.float().numpy() for o in out])
    return out.float().numpy()


def ort_all(sess, enc: Encoded, outputs) -> np.ndarray:
    """The graph's ``outputs``, stacked like :func:`torch_outputs`."""
    values = sess.run(list(outputs), enc.as_dict())
    return np.stack(values) if len(values) > 1 else values[0]


def ort_outputs(sess, enc: Encoded, output: str = "scores") -> np.ndarray:
    return sess.run([output], enc.as_dict())[0]


def check_parity(item, onnx_path: Path, queries: list[str], documents: list[str]) -> dict:
    """Max |onnxruntime − torch| over a padded batch and over the same pairs one at a time."""
    sess = ort_session(onnx_path)
    padded = item.tokenizer.encode_pairs(queries, documents, item.max_length)
    encs = [padded] + [
        item.tokenizer.encode_pairs([q], [d], item.max_length)
        for q, d in zip(queries[:8], documents[:8], strict=True)
    ]
    diffs = [
        np.abs(ort_all(sess, enc, item.outputs) - torch_outputs(item.module, enc)).max()
        for enc in encs
    ]
    return {
        "outputs": list(item.outputs),
        "max_abs_diff": float(max(diffs)),
        "pairs": len(queries),
        "padded_width": padded.input_ids.shape[1],
    }


def compare_int8(tokenizer: PairTokenizer, max_length: int, fp32: Path, int8: Path) -> dict:
    """Score drift and top-10 agreement of int8 against fp32 when ranking the whole packaged
    fixture corpus for each of its eval queries (one query's pairs per call)."""
    data = read_labeled("fixture", "eval")
    docs = list(data.documents.values())
    s32, s8 = ort_session(fp32), ort_session(int8)
    drift, overlap, top1 = 0.0, [], []
    for q in data.queries:
        enc = tokenizer.encode_pairs([q.text] * len(docs), docs, max_length)
        a, b = ort_outputs(s32, enc), ort_outputs(s8, enc)
        drift = max(drift, float(np.abs(a - b).max()))
        ta, tb = np.argsort(-a)[:10], np.argsort(-b)[:10]
        overlap.append(len(set(ta) & set(tb)) / 10)
        top1.append(bool(ta[0] == tb[0]))
    return {
        "max_abs_drift": drift,
        "top10_agreement": float(np.mean(overlap)),
        "top1_agreement": float(np.mean(top1)),
    }
