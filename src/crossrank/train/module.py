"""``CrossEncoderModule``: the cross-encoder, its loss, and retrieval metrics in Lightning."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.utilities.enums import GradClipAlgorithmType

from crossrank.io import atomic_file
from crossrank.train.datamodule import PairBatch
from crossrank.train.losses import LossName, answer_bce, distill_kl, get_loss
from crossrank.train.model import CrossEncoder, CrossEncoderConfig
from crossrank.train.optim import adamw
from crossrank.train.val_metrics import RerankMetrics

MONITOR = "val_ndcg@10"


class CrossEncoderModule(L.LightningModule):
    """Trains a :class:`CrossEncoder` built from ``encoder`` with a pointwise, pairwise or
    listwise loss; validation reranks each eval query's candidates and logs nDCG@10, MRR and
    Recall@10.

    Args:
        encoder: the model's shape (also fixes its tokenizer).
        loss: ``pointwise`` (BCE on graded labels), ``pairwise`` (RankNet), ``margin`` (hinge)
            or ``listwise`` (softmax cross-entropy over each group).
        lr: learning rate of the encoder; ``head_lr`` that of the fresh head (default ``lr``).
        warmup: fraction of steps with a linear warm-up; the rate then decays linearly to 0.
        answer_weight: weight of the answer head's BCE (label >= 2) when the model has one.
        seed: base of the per-batch seeds, so a resumed run redraws the same dropout masks.
        micro_batch: score a training batch in length-sorted pieces of this many pairs, so
            that short pairs are not padded to the longest (benchmarks/train_speed.py: +25%
            pairs/s for MiniLM at 128 and 256 tokens on 2 cores); None: one padded batch.
        distill_weight: weight of the KL to the data's teacher scores (``data.teacher``), added
            to the label loss; 0 trains on labels alone.
        distill_temperature: softmax temperature of that KL.
        freeze_layers: keep the embeddings and this many bottom encoder layers at their
            pretrained weights (0: train everything); backward then stops above them.
    """

    def __init__(
        self,
        encoder: CrossEncoderConfig | None = None,
        loss: LossName = "listwise",
        lr: float = 1e-3,
        head_lr: float | None = None,
        weight_decay: float = 0.01,
        warmup: float = 0.1,
        answer_weight: float = 0.5,
        seed: int = 13,
        micro_batch: int | None = None,
        distill_weight: float = 0.0,
        distill_temperature: float = 1.0,
        freeze_layers: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(encoder, dict):  # hparams saved by LightningCLI hold the config as a dict
            encoder = CrossEncoderConfig(**encoder)
        encoder = encoder if encoder is not None else CrossEncoderConfig()
        self.save_hyperparameters()  # reads the locals, so the default encoder is recorded too
        self.model = CrossEncoder(encoder)
        self.model.freeze_bottom(freeze_layers)
        self.tokenizer = encoder.tokenizer()
        self.max_length = encoder.max_length
        self.loss_fn = get_loss(loss)
        # Against each query's full judgments; also the candidates in first-stage order, what
        # reranking has to beat.
        self.val_metrics = RerankMetrics(k=10)
        self._loader_states: list[dict] = []  # the train loader's position in a resumed epoch

    def encode(self, queries: list[str], documents: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer.encode_pairs(queries, documents, self.max_length)
        return self._tensors(enc.as_dict())

    def _tensors(self, arrays: dict) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}

    def forward(self, queries: list[str], documents: list[str]) -> torch.Tensor:
        """Relevance logits for (query, document) pairs."""
        return self.model(**self.encode(queries, documents))

    def outputs(
        self, queries: list[str], documents: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Relevance and answer logits, in length-sorted micro-batches when configured."""
        micro = self.hparams.micro_batch
        if not micro or micro >= len(documents):
            return self.model.forward_with_answer(**self.encode(queries, documents))
        arrays = self.tokenizer.encode_pairs(queries, documents, self.max_length).as_dict()
        lengths = arrays["attention_mask"].sum(axis=1)
        order = sorted(range(len(documents)), key=lambda i: lengths[i])
        scores, answers = [], []
        for start in range(0, len(order), micro):
            idx = order[start : start + micro]
            width = int(lengths[idx].max())  # the piece's own longest pair, not the batch's
            s, a = self.model.forward_with_answer(
                **self._tensors({k: v[idx, :width] for k, v in arrays.items()})
            )
            scores.append(s)
            answers.append(a)
        back = torch.argsort(torch.tensor(order, device=self.device))
        answer = None if answers[0] is None else torch.cat(answers)[back]
        return torch.cat(scores)[back], answer

    def on_train_batch_start(self, batch: PairBatch, batch_idx: int) -> None:
        # Dropout masks depend only on (seed, epoch, batch): a resumed run repeats them exactly.
        torch.manual_seed(self.hparams.seed * 1_000_003 + self.current_epoch * 100_003 + batch_idx)

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(self.current_epoch)

    def on_train_start(self) -> None:
        # Lightning calls no on_train_epoch_start for an epoch resumed in its middle, so the
        # negatives' epoch and the loader's position are set here, before its first batch.
        self.on_train_epoch_start()
        loader = self.trainer.train_dataloader
        states, self._loader_states = self._loader_states, []
        # A checkpoint written at an epoch's end resumes with the next epoch, from its start.
        if states and hasattr(loader, "load_state_dict") and states[0]["consumed"] < len(loader):
            loader.load_state_dict(states[0])

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Lightning hands a resumed loader its saved position only when it builds the loader
        # after reading the checkpoint; our schedule's estimated_stepping_batches builds it
        # first. So the position (ResumableLoader.state_dict) is handed over here.
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
        self._loader_states = list(fit_loop.get("state_dict", {}).get("combined_loader", []))

    def training_step(self, batch: PairBatch, batch_idx: int) -> torch.Tensor:
        scores, answer = self.outputs(batch.queries, batch.documents)
        labels = batch.labels.to(self.device)
        loss = self.loss_fn(scores.view_as(labels), labels)
        if self.hparams.distill_weight and batch.teacher is not None:
            distill = distill_kl(
                scores.view_as(labels).float(),
                batch.teacher.to(self.device),
                self.hparams.distill_temperature,
            )
            self.log("train_distill", distill, batch_size=labels.shape[0])
            loss = loss + self.hparams.distill_weight * distill
        if answer is not None:
            loss = loss + self.hparams.answer_weight * answer_bce(answer.view_as(labels), labels)
        self.log("train_loss", loss, prog_bar=True, batch_size=labels.shape[0])
        return loss

    def validation_step(self, batch: PairBatch, batch_idx: int) -> dict[str, torch.Tensor]:
        if batch.first_stage_rank is None or batch.ideal_dcg is None or batch.n_relevant is None:
            raise ValueError(
                "expected eval batches from RankingDataset (ranks and judgments), got a batch without"
            )
        scores = self(batch.queries, batch.documents)
        labels = batch.labels.view(-1).to(self.device)
        index = batch.query_index.to(self.device)
        self.val_metrics.update(
            index,
            scores.float(),
            labels,
            batch.first_stage_rank.to(self.device),
            batch.ideal_dcg.to(self.device),
            batch.n_relevant.to(self.device),
        )
        return {"scores": scores.detach(), "labels": labels, "query_index": index}

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        first_stage = values.pop("first_stage_ndcg@10")
        self.log_dict({f"val_{name}": value for name, value in values.items()}, prog_bar=True)
        self.log("val_first_stage_ndcg@10", first_stage)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        # A loss scaler (fp16) must unscale before clipping, which a fused optimizer skips.
        scaled = getattr(self.trainer.precision_plugin, "scaler", None) is not None
        optimizer = adamw(
            self.model, hp.lr, hp.head_lr, hp.weight_decay, fused=False if scaled else None
        )
        total = step_budget(self.trainer)
        if total is None and not any(isinstance(c, Timer) for c in self.trainer.callbacks):
            raise ValueError(
                "expected a bound on training (max_steps, max_epochs or max_time), got none"
            )
        warm = max(1, int((total or 1) * hp.warmup))

        def schedule(step: int) -> float:
            # With max_time the run ends at whichever comes first, its steps or its time, so
            # when the time budget is further along the schedule follows the time: a slower
            # CPU still warms up, decays and ends at a low rate, in fewer steps. A run bounded
            # by time alone (max_steps and max_epochs -1) follows the time throughout.
            done = run_progress(self.trainer, step, total)
            if total is None or done > step / total:
                return lr_factor(done, hp.warmup)
            return step_factor(step, total, warm)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        if optimizer.defaults.get("fused") and gradient_clip_val:
            # Lightning refuses to clip for any fused optimizer under mixed precision, a check
            # meant for fp16's loss scaler; bf16 has none (configure_optimizers never fuses
            # with one), so its gradients are the true ones and clip as in fp32.
            Precision.clip_gradients(
                self.trainer.precision_plugin,
                optimizer,
                gradient_clip_val,
                GradClipAlgorithmType(gradient_clip_algorithm or "norm"),
            )
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)


def progress(
    step: int, total: int | None, elapsed: float | None = None, remaining: float | None = None
) -> float:
    """How far a run is, in [0, 1]: by steps, or by time when a time budget is further along
    (``total`` None: no step budget, by time only)."""
    by_steps = step / max(1, total) if total is not None else 0.0
    if elapsed is None or remaining is None:
        return min(1.0, by_steps)
    by_time = elapsed / max(1e-9, elapsed + remaining)
    return min(1.0, max(by_steps, by_time))


def step_budget(trainer: L.Trainer) -> int | None:
    """The run's steps, or None when only ``max_time`` bounds it (Lightning's estimate is
    infinite when max_steps and max_epochs are both -1)."""
    total = trainer.estimated_stepping_batches
    return max(1, int(total)) if math.isfinite(total) else None


def run_progress(trainer: L.Trainer, step: int | None = None, total: int | None = None) -> float:
    """:func:`progress` of a running ``trainer``: its ``max_time`` Timer, if any, against
    ``step`` (default: the global step) of ``total`` (default: :func:`step_budget`)."""
    step = trainer.global_step if step is None else step
    total = step_budget(trainer) if total is None else total
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is None or timer.time_remaining("train") is None:
        return progress(step, total)
    return progress(step, total, timer.time_elapsed("train"), timer.time_remaining("train"))


def step_factor(step: int, total: int, warm: int) -> float:
    """The schedule by steps: linear warm-up over ``warm`` steps, then linear decay to 0."""
    if step < warm:
        return (step + 1) / warm
    return max(0.0, (total - step) / max(1, total - warm))


def lr_factor(done: float, warmup: float) -> float:
    """The schedule by progress in [0, 1] (time-based runs): warm-up over the first ``warmup``,
    then linear decay to 0 at the end."""
    if done < warmup:
        return max(done / warmup, 1e-3)
    return max(0.0, (1.0 - done) / max(1e-9, 1.0 - warmup))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes checkpoints to a temporary file and renames it, so a crash leaves no half file."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options: Any = None) -> None:
        with atomic_file(path) as f:
            torch.save(checkpoint, f)
