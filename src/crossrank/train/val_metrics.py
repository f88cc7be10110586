"""Validation metrics of reranked candidate lists, against each query's full judgments."""

from __future__ import annotations

import torch
from torchmetrics import Metric

from crossrank.data.metrics import dcg, mrr_at_k


class RerankMetrics(Metric):
    """nDCG@k, MRR and Recall@k of each query's candidates ordered by score (ties: first-stage
    order), and the first stage's nDCG@k of the same candidates in its own order.

    Unlike torchmetrics' retrieval metrics, the ideal DCG and the relevant count come from all
    of a query's judgments (``ideal_dcg``, ``n_relevant``), not only the judged documents among
    its candidates: a first stage that misses a positive costs the score, as in
    ``crossrank eval``. States are concatenated across processes.
    """

    full_state_update = False

    def __init__(self, k: int = 10) -> None:
        super().__init__()
        self.k = k
        for name in ("index", "scores", "grades", "ranks", "ideal", "relevant"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self,
        index: torch.Tensor,
        scores: torch.Tensor,
        grades: torch.Tensor,
        ranks: torch.Tensor,
        ideal: torch.Tensor,
        relevant: torch.Tensor,
    ) -> None:
        """One entry per (query, candidate) pair; ``ideal`` and ``relevant`` are the query's."""
        n = index.numel()
        for name, value in (
            ("scores", scores),
            ("grades", grades),
            ("ranks", ranks),
            ("ideal", ideal),
            ("relevant", relevant),
        ):
            if value.numel() != n:
                raise ValueError(f"expected {n} {name} (one per pair), got {value.numel()}")
        self.index.append(index.detach().reshape(-1).long())
        self.scores.append(scores.detach().reshape(-1).float())
        self.grades.append(grades.detach().reshape(-1).long())
        self.ranks.append(ranks.detach().reshape(-1).long())
        self.ideal.append(ideal.detach().reshape(-1).float())
        self.relevant.append(relevant.detach().reshape(-1).long())

    def compute(self) -> dict[str, torch.Tensor]:
        cat = {
            name: _cat(getattr(self, name)).cpu()
            for name in ("index", "scores", "grades", "ranks", "ideal", "relevant")
        }
        per_query: dict[int, list[int]] = {}
        for pos, qi in enumerate(cat["index"].tolist()):
            per_query.setdefault(qi, []).append(pos)
        ndcg, mrr, recall, first = [], [], [], []
        for rows in per_query.values():
            grades = cat["grades"][rows].tolist()
            scores = cat["scores"][rows].tolist()
            ranks = cat["ranks"][rows].tolist()
            ideal, relevant = float(cat["ideal"][rows[0]]), int(cat["relevant"][rows[0]])
            reranked = [
                grades[i] for i in sorted(range(len(rows)), key=lambda i: (-scores[i], ranks[i]))
            ]
            in_order = [grades[i] for i in sorted(range(len(rows)), key=lambda i: ranks[i])]
            ndcg.append(dcg(reranked, self.k) / ideal if ideal > 0 else 0.0)
            first.append(dcg(in_order, self.k) / ideal if ideal > 0 else 0.0)
            positions = [str(i) for i in range(len(reranked))]
            mrr.append(
                mrr_at_k(positions, dict(zip(positions, reranked, strict=True)), len(positions))
            )
            hits = sum(g > 0 for g in reranked[: self.k])
            recall.append(hits / relevant if relevant else 0.0)
        k = self.k
        values = {
            f"ndcg@{k}": ndcg,
            "mrr": mrr,
            f"recall@{k}": recall,
            f"first_stage_ndcg@{k}": first,
        }
        return {name: torch.tensor(sum(v) / len(v) if v else 0.0) for name, v in values.items()}


def _cat(parts: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    # After a cross-process sync a list state arrives already concatenated.
    if isinstance(parts, torch.Tensor):
        return parts
    return torch.cat(parts) if parts else torch.zeros(0)
