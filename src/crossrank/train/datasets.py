"""Torch datasets of text pairs: training groups (positive + negatives) and ranked eval lists."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.data import Dataset, Sampler

from crossrank.data.examples import LabeledQuery, LabeledSet
from crossrank.data.metrics import ideal_dcg

NegativeSource = Literal["random", "candidates"]
PositiveSource = Literal["all", "candidates"]
EvalCandidates = Literal["all", "judged", "candidates"]


@dataclass
class PairBatch:
    """Text pairs with labels; ``labels`` is ``[groups, group_size]`` (-1 marks padding)."""

    queries: list[str]
    documents: list[str]
    labels: torch.Tensor
    query_index: torch.Tensor  # one entry per pair (used by retrieval metrics)
    first_stage_rank: torch.Tensor | None = None  # eval pairs: rank in the candidate list
    teacher: torch.Tensor | None = None  # like labels: the teacher's scores, NaN where none
    # Eval pairs: their query's ideal DCG@10 and relevant count over all its judgments, also
    # those of documents outside its candidates (the positives a first stage missed).
    ideal_dcg: torch.Tensor | None = None
    n_relevant: torch.Tensor | None = None


class GroupDataset(Dataset):
    """One item per (query, positive): the positive followed by ``n_negatives`` lower-graded docs.

    Negatives are redrawn each epoch from documents graded below the positive (judged lower,
    or unjudged from the query's candidates at ``ranks`` or from the corpus), seeded by
    (seed, epoch, item). With candidates as the source, ``easy_fraction`` of the unjudged slots
    go to random corpus documents outside the candidates (usually another topic), so the model
    also learns that a text sharing nothing with the query is not relevant. ``cross_fraction``
    of the unjudged slots go to other queries' positives (unjudged for this one): on a small
    corpus a document that is only ever seen as a positive gets a high score for every query,
    a prior of its own; seen as often as a negative elsewhere, only the pair can tell. With
    ``positives="candidates"`` only positives that the first stage surfaces (in the query's
    candidate list) are trained on: those are the ones a reranker moves. A query's ``unsure``
    documents (likely false negatives) are never drawn as negatives. Each item carries the
    teacher's score of each of its documents (NaN where the query has none), in item order.
    """

    def __init__(
        self,
        data: LabeledSet,
        n_negatives: int,
        source: NegativeSource,
        seed: int,
        repeats: int = 1,
        ranks: tuple[int, int] = (0, 100),
        positives: PositiveSource = "all",
        easy_fraction: float = 0.0,
        cross_fraction: float = 0.0,
    ):
        for name, value in (("easy_fraction", easy_fraction), ("cross_fraction", cross_fraction)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"expected {name} in [0, 1], got {value}")
        if easy_fraction + cross_fraction > 1.0:
            raise ValueError(
                f"expected easy_fraction + cross_fraction <= 1, got {easy_fraction} + {cross_fraction}"
            )
        self.data = data
        self.n_negatives = n_negatives
        self.source = source
        self.seed = seed
        self.epoch = 0
        self.ranks = ranks
        self.easy_fraction = easy_fraction
        self.cross_fraction = cross_fraction
        self._positive_ids = list(dict.fromkeys(d for q in data.queries for d in q.positives))
        items = []
        for qi, q in enumerate(data.queries):
            surfaced = set(q.candidates) if positives == "candidates" else None
            items += [(qi, d) for d in q.positives if surfaced is None or d in surfaced]
        self.items = items * repeats
        self._doc_ids = list(data.documents)
        if not self.items:
            raise ValueError(f"{data.source}: expected queries with positives, got none")

    def __len__(self) -> int:
        return len(self.items)

    def _unjudged(self, q: LabeledQuery, rng: random.Random, k: int) -> list[str]:
        cross = self._draw(self._positive_ids, q, rng, round(k * self.cross_fraction), [])
        ranked = q.candidates[self.ranks[0] : self.ranks[1]]
        if self.source != "candidates" or not ranked:
            return self._draw(self._doc_ids, q, rng, k, cross)
        easy = round(k * self.easy_fraction)
        picked = self._draw(ranked, q, rng, k - easy, cross)
        return self._draw(self._doc_ids, q, rng, k, picked, exclude=set(q.candidates))

    @staticmethod
    def _draw(
        pool: list[str],
        q: LabeledQuery,
        rng: random.Random,
        k: int,
        picked: list[str],
        exclude: set[str] | frozenset[str] = frozenset(),
    ) -> list[str]:
        """``picked`` plus unjudged documents of ``pool`` (not in ``exclude``) drawn at random,
        up to ``k`` in all (fewer when the tries run out)."""
        picked = list(picked)
        for _ in range(8 * k):
            if len(picked) >= k:
                break
            doc = pool[rng.randrange(len(pool))]
            if (
                doc not in q.judged
                and doc not in q.unsure
                and doc not in picked
                and doc not in exclude
            ):
                picked.append(doc)
        return picked

    def __getitem__(self, index: int) -> tuple[str, list[str], list[int], list[float]]:
        qi, pos = self.items[index]
        q = self.data.queries[qi]
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        grade = q.judged[pos]
        lower = [d for d, g in q.judged.items() if g < grade]
        rng.shuffle(lower)
        # At most half the slots go to judged lower-graded documents; unjudged ones fill the rest.
        negatives = lower[: max(1, self.n_negatives // 2)]
        negatives += self._unjudged(q, rng, self.n_negatives - len(negatives))
        negatives += lower[len(negatives) : self.n_negatives]
        docs = [pos, *negatives[: self.n_negatives]]
        labels = [q.judged.get(d, 0) for d in docs]
        teacher = [q.teacher.get(d, math.nan) for d in docs]
        docs += [pos] * (self.n_negatives + 1 - len(docs))
        labels += [-1] * (len(docs) - len(labels))
        teacher += [math.nan] * (len(docs) - len(teacher))
        return q.text, [self.data.documents[d] for d in docs], labels, teacher


class EpochShuffle(Sampler[int]):
    """A permutation that depends only on (seed, epoch), so a resumed run sees the same order."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:  # called by Lightning before each epoch
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())


def collate_groups(items: list[tuple[str, list[str], list[int], list[float]]]) -> PairBatch:
    queries = [q for q, docs, *_ in items for _ in docs]
    documents = [d for _, docs, *_ in items for d in docs]
    labels = torch.tensor([item[2] for item in items], dtype=torch.long)
    index = torch.arange(len(items)).repeat_interleave(labels.shape[1])
    teacher = torch.tensor([item[3] for item in items], dtype=torch.float32)
    return PairBatch(
        queries, documents, labels, index, teacher=None if teacher.isnan().all() else teacher
    )


class RankingDataset(Dataset):
    """Flat eval pairs: each eval query with its candidates (rank is the position in the
    candidate list, or the corpus order), and what metrics need of the query's judgments."""

    def __init__(self, data: LabeledSet, candidates: EvalCandidates, k: int = 10):
        self.pairs: list[EvalPair] = []
        for qi, q in enumerate(data.queries):
            if candidates == "all":
                doc_ids = list(data.documents)
            elif candidates == "candidates":
                doc_ids = list(dict.fromkeys(q.candidates))
            else:
                doc_ids = list(q.judged)
            ideal = ideal_dcg(q.judged, k)
            relevant = sum(g > 0 for g in q.judged.values())
            for rank, doc in enumerate(doc_ids):
                grade = q.judged.get(doc, 0)
                pair = EvalPair(qi, q.text, data.documents[doc], grade, rank, ideal, relevant)
                self.pairs.append(pair)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> EvalPair:
        return self.pairs[index]


@dataclass(frozen=True)
class EvalPair:
    query_index: int
    query: str
    document: str
    grade: int
    rank: int  # position in the query's candidate list
    ideal_dcg: float  # the query's, over all its judgments
    n_relevant: int


def collate_pairs(items: list[EvalPair]) -> PairBatch:
    return PairBatch(
        queries=[p.query for p in items],
        documents=[p.document for p in items],
        labels=torch.tensor([[p.grade for p in items]], dtype=torch.long),
        query_index=torch.tensor([p.query_index for p in items], dtype=torch.long),
        first_stage_rank=torch.tensor([p.rank for p in items], dtype=torch.long),
        ideal_dcg=torch.tensor([p.ideal_dcg for p in items], dtype=torch.float32),
        n_relevant=torch.tensor([p.n_relevant for p in items], dtype=torch.long),
    )
