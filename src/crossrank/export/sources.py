"""What can be exported: a crossrank Lightning checkpoint or a Hugging Face cross-encoder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from torch import nn

from crossrank.export.onnx import Exportable
from crossrank.runtime.artifact import sha256_file
from crossrank.runtime.wordpiece import WordPieceTokenizer


def from_checkpoint(path: str | Path) -> tuple[Exportable, dict]:
    """A trained :class:`~crossrank.train.module.CrossEncoderModule` checkpoint."""
    from crossrank.train.module import CrossEncoderModule

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected a checkpoint file, found none")
    try:
        module = CrossEncoderModule.load_from_checkpoint(path, map_location="cpu").eval()
    except Exception as exc:  # torch/pickle raise anything on a file that is not a checkpoint
        raise ValueError(
            f"{path}: expected a crossrank Lightning checkpoint (.ckpt), could not read it "
            f"({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    model = module.model
    info = {"kind": "crossrank", "config": model.cfg.to_dict(), "pooling": model.cfg.pooling}
    files = list(getattr(module.tokenizer, "files", ()))
    if model.cfg.answer_head:
        item = Exportable(
            _ScoresAndAnswer(model),
            module.tokenizer,
            module.max_length,
            info,
            files,
            ("scores", "answer_logit"),
        )
    else:
        item = Exportable(model, module.tokenizer, module.max_length, info, files)
    return item, {"checkpoint": str(path), "sha256": sha256_file(path)}


class _ScoresAndAnswer(nn.Module):
    """The relevance logits and the answer head's logits, as two graph outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model.forward_with_answer(input_ids, attention_mask, token_type_ids)


class _FirstLogit(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return out.logits[:, 0]


def from_hf(name_or_path: str, max_length: int = 512) -> tuple[Exportable, dict]:
    """A Hugging Face sequence-classification cross-encoder (local directory or hub id).

    The score is the first logit, as sentence-transformers' ``CrossEncoder`` reads a
    one-label model. The tokenizer must be a fast (``tokenizer.json``) BERT-style one.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    local = Path(name_or_path).is_dir()
    model = AutoModelForSequenceClassification.from_pretrained(
        name_or_path, local_files_only=local, attn_implementation="eager"
    ).eval()
    tok_dir = Path(name_or_path)
    if not (local and (tok_dir / "tokenizer.json").is_file()):
        tok_dir = Path(tempfile.mkdtemp(prefix="crossrank-tok-"))
        AutoTokenizer.from_pretrained(name_or_path, local_files_only=local).save_pretrained(tok_dir)
    tokenizer = WordPieceTokenizer(tok_dir / "tokenizer.json")
    max_length = min(max_length, model.config.max_position_embeddings)
    info = {
        "kind": "huggingface",
        "name": str(name_or_path),
        "architecture": type(model).__name__,
        "num_labels": model.config.num_labels,
        "pooling": "cls",
    }
    source = {"huggingface": str(name_or_path)}
    weights = Path(name_or_path) / "model.safetensors"
    if weights.is_file():
        source["sha256"] = sha256_file(weights)
    return Exportable(
        _FirstLogit(model), tokenizer, max_length, info, [tok_dir / "tokenizer.json"]
    ), source
