"""``TriplesDataModule``: groups of (query, positive, negatives) for training, ranked lists for eval."""

from __future__ import annotations

from typing import Literal

import lightning as L
from torch.utils.data import DataLoader

from crossrank.data.examples import (
    LabeledSet,
    check_no_leakage,
    collections_of,
    drop_leaking_queries,
    holdout_split,
    merge_sets,
    read_labeled,
    resolve_data,
)
from crossrank.data.title_queries import title_queries
from crossrank.io import DEFAULT_CACHE
from crossrank.io import cache_dir as resolve_cache
from crossrank.train.datasets import (
    EpochShuffle,
    EvalCandidates,
    GroupDataset,
    NegativeSource,
    PairBatch,
    PositiveSource,
    RankingDataset,
    collate_groups,
    collate_pairs,
)
from crossrank.train.loader import ResumableLoader
from crossrank.train.negatives import mine_candidates
from crossrank.train.teacher import attach_teacher
from crossrank.train.title_share import mix_titles, titles_back_to_train

__all__ = ["GroupDataset", "PairBatch", "RankingDataset", "TriplesDataModule"]


class TriplesDataModule(L.LightningDataModule):
    """Serves labeled triples from a BEIR folder, a JSONL file, or ``"fixture"``.

    Args:
        data: BEIR folder, JSONL of labeled examples, or ``"fixture"`` (the packaged corpus).
        eval_data: where the eval queries come from; defaults to ``data``.
        train_split / eval_split: qrels splits for BEIR folders.
        n_negatives: negatives per positive in each training group.
        repeats: groups drawn per positive in each epoch (each with fresh negatives).
        negatives: draw unjudged negatives from the ``"random"`` corpus, or from BM25's
            ``"candidates"`` at ranks ``negative_ranks`` (hard negatives; judged ones skipped).
        easy_negatives: with ``negatives="candidates"``, the fraction of unjudged negatives drawn
            from corpus documents outside the query's candidates (easy, usually off-topic).
        cross_negatives: the fraction of unjudged negatives drawn from other training queries'
            positives, so that no document's identity becomes a relevance prior.
        positives: train on ``"all"`` judged positives, or only those in BM25's top
            ``negative_ranks[1]`` (``"candidates"``).
        drop_leaking: drop train queries whose text is also an eval query instead of refusing.
        also_train: more training data, as ``PATH`` or ``PATH:SPLIT`` (BEIR folder or JSONL).
        holdout: evaluate on this fraction of the training queries (split by query id hash),
            for datasets with no dev split; ``eval_data`` is then unused.
        eval_candidates: rerank ``"all"`` documents, the ``"judged"`` ones, or BM25's top
            ``eval_depth`` ``"candidates"`` of each eval query (the real reranking task).
        teacher: ``"hybrid"``: train on the hybrid first stage's candidates (RRF of BM25's top
            ``teacher_depth[0]`` and the bi-encoder's top ``teacher_depth[1]``), with its
            z-scored scores as distillation targets and the unjudged documents both first
            stages rank in their top ``false_negative_top`` kept out of the negatives;
            ``"none"``: BM25's candidates, labels only.
        cache_dir: where BM25 indexes, the bi-encoder and mined candidate lists are cached.
        max_eval_queries: evaluate the first N eval queries only (a fixed subset).
        title_share: the share of training groups drawn from pseudo-queries made of the
            training corpus's own titles (:mod:`crossrank.data.title_queries`; ``data`` must be
            a BEIR folder); 0: none.
    """

    def __init__(
        self,
        data: str = "fixture",
        eval_data: str | None = None,
        train_split: str = "train",
        eval_split: str = "eval",
        n_negatives: int = 7,
        repeats: int = 1,
        negatives: NegativeSource = "random",
        negative_ranks: tuple[int, int] = (10, 100),
        easy_negatives: float = 0.0,
        cross_negatives: float = 0.0,
        positives: PositiveSource = "all",
        drop_leaking: bool = False,
        also_train: list[str] | None = None,
        holdout: float = 0.0,
        eval_candidates: EvalCandidates = "all",
        eval_depth: int = 100,
        max_eval_queries: int | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 13,
        teacher: Literal["none", "hybrid"] = "none",
        teacher_depth: tuple[int, int] = (200, 100),
        false_negative_top: int = 10,
        cache_dir: str | None = str(DEFAULT_CACHE),
        title_share: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: LabeledSet | None = None
        self.eval_set: LabeledSet | None = None
        self._train_ds: GroupDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        if hp.n_negatives < 1:
            raise ValueError(f"expected n_negatives >= 1, got {hp.n_negatives}")
        if not 0.0 <= hp.title_share < 1.0:
            raise ValueError(f"expected title_share in [0, 1), got {hp.title_share}")
        parts = [read_labeled(hp.data, hp.train_split)]
        for entry in hp.also_train or []:
            path, _, split = entry.rpartition(":") if ":" in entry else (entry, "", "train")
            parts.append(read_labeled(path, split or "train"))
        titles = None  # the title queries' id prefix in the merged set
        if hp.title_share:
            root = resolve_data(hp.data)
            if not root.is_dir():
                raise ValueError(f"expected a BEIR folder as data for title_share, got {root}")
            parts.append(title_queries(root))
            titles = f"{len(parts) - 1}:title:"
        if hp.teacher == "hybrid":  # each collection's own first stages, before the merge
            for part in parts:
                attach_teacher(
                    part, resolve_cache(hp.cache_dir), *hp.teacher_depth, hp.false_negative_top
                )
        self.train_set = merge_sets(parts)
        if hp.holdout:
            self.train_set, self.eval_set = holdout_split(self.train_set, hp.holdout)
            if titles:
                self.train_set, self.eval_set = titles_back_to_train(
                    self.train_set, self.eval_set, titles
                )
        else:
            self.eval_set = read_labeled(hp.eval_data or hp.data, hp.eval_split)
        if hp.max_eval_queries is not None and hp.max_eval_queries < 1:
            raise ValueError(f"expected max_eval_queries >= 1 (or null), got {hp.max_eval_queries}")
        if hp.max_eval_queries is not None:
            self.eval_set.queries = self.eval_set.queries[: hp.max_eval_queries]
        if hp.drop_leaking:
            drop_leaking_queries(self.train_set, self.eval_set)
        check_no_leakage(self.train_set, self.eval_set)
        lo, hi = hp.negative_ranks
        if not 0 <= lo < hi:
            raise ValueError(
                f"expected negative_ranks (lo, hi) with 0 <= lo < hi, got {hp.negative_ranks}"
            )
        # Each query's candidates come from its own collection's corpus: another collection's
        # documents are unjudged for it, and would be drawn as its negatives.
        merged = len(parts) if hp.holdout else 1  # a separate eval set is not a merged one
        if hp.teacher == "none" and (hp.negatives == "candidates" or hp.positives == "candidates"):
            for part in collections_of(self.train_set, len(parts)):
                if part.queries:
                    mine_candidates(part, hi, hp.cache_dir)
        if hp.eval_candidates == "candidates":
            for part in collections_of(self.eval_set, merged):
                if part.queries:
                    mine_candidates(part, hp.eval_depth, hp.cache_dir)
        if titles:  # after mining: the share counts the groups GroupDataset will make
            self.train_set = mix_titles(
                self.train_set, titles, "0:", hp.title_share, hp.positives == "candidates", hp.seed
            )
        self._train_ds = GroupDataset(
            self.train_set,
            hp.n_negatives,
            hp.negatives,
            hp.seed,
            hp.repeats,
            (lo, hi),
            hp.positives,
            hp.easy_negatives,
            hp.cross_negatives,
        )

    def set_epoch(self, epoch: int) -> None:
        """Redraw negatives for ``epoch`` (called by the LightningModule at each epoch start)."""
        if self._train_ds is not None:
            self._train_ds.epoch = epoch

    def train_dataloader(self) -> DataLoader:
        return ResumableLoader(
            self._train_ds,
            batch_size=self.hparams.batch_size,
            sampler=EpochShuffle(len(self._train_ds), self.hparams.seed),
            collate_fn=collate_groups,
            num_workers=self.hparams.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            RankingDataset(self.eval_set, self.hparams.eval_candidates),
            batch_size=self.hparams.eval_batch_size,
            collate_fn=collate_pairs,
            num_workers=self.hparams.num_workers,
        )
