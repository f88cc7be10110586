"""Score fusion: add the first stage's evidence to the cross-encoder's.

The one implementation of fusion in the project: :class:`Fusion` (a weight fitted on dev and
stored in the artifact's manifest) applied to a query's candidates by every path that reranks
(pipeline, eval, sweep, service). Rank fusion of first stages (RRF) is a retriever:
:mod:`crossrank.retrieval.hybrid`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crossrank.pipeline.novelty import NoveltyGuard
from crossrank.retrieval.base import Hit
from crossrank.retrieval.hybrid import zscore, zscore_sum

__all__ = [
    "Fusion",
    "first_stage_evidence",
    "fit_weight",
    "fusion_entries",
    "interpolate",
    "rank_agreement",
    "stored_fusion",
    "trust",
    "zscore",
]


def first_stage_evidence(hits: Sequence[Hit], signals: Sequence[str] = ()) -> np.ndarray:
    """What fusion reads of the first stage for each hit: its score, or with ``signals`` named
    (a hybrid first stage's components, e.g. ``("bm25", "dense")``) the sum of their z-scores
    over the list, which keeps the score gaps that reciprocal rank fusion's ranks throw away."""
    if not signals:
        return np.array([h.score for h in hits], dtype=np.float64)
    for h in hits:
        if h.signals is None or any(s not in h.signals for s in signals):
            got = sorted(h.signals) if h.signals else "none"
            raise ValueError(
                f"expected first-stage signals {list(signals)} on every hit (a hybrid first "
                f"stage), got {got} on {h.doc_id!r}"
            )
    return zscore_sum([np.array([h.signals[s] for h in hits], np.float64) for s in signals])


def interpolate(
    cross_encoder: np.ndarray, first_stage: np.ndarray, weight: float, trust: float = 1.0
) -> np.ndarray:
    """``trust * z(cross_encoder) + (weight + 1 - trust) * z(first_stage)`` over one query's
    candidates.

    With ``trust = 1`` this is the fitted fusion (``weight = 0``: the cross-encoder's order); with
    ``trust = 0`` it is the first stage's order. The weight is fitted on dev data.
    """
    cross_encoder, first_stage = np.asarray(cross_encoder), np.asarray(first_stage)
    if cross_encoder.shape != first_stage.shape:
        raise ValueError(
            f"expected one first-stage score per candidate, got {first_stage.shape} "
            f"for {cross_encoder.shape}"
        )
    return trust * zscore(cross_encoder) + (weight + 1.0 - trust) * zscore(first_stage)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(len(scores))
    _, groups, counts = np.unique(scores, return_inverse=True, return_counts=True)
    return (np.bincount(groups, weights=ranks) / counts)[groups]


def rank_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two score vectors over one query's candidates (0 when one is constant)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"expected two score vectors of one shape, got {a.shape} and {b.shape}")
    if a.size < 2:
        return 0.0
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def trust(cross_encoder: np.ndarray, first_stage: np.ndarray, floor: float | None) -> float:
    """How much of the cross-encoder one query keeps, in [0, 1] (the "do no harm" guard).

    A cross-encoder trained here is distilled from the first stages, so in its own domain it
    agrees with them in rank on most queries. ``floor`` is the agreement of the dev split's
    least-agreeing queries (a low percentile); a query below it is read as out of the model's
    domain, and its trust falls linearly to 0 at no agreement, leaving the first stage's order.
    """
    if floor is None or floor <= 0:
        return 1.0
    return float(np.clip(rank_agreement(cross_encoder, first_stage) / floor, 0.0, 1.0))


def fit_weight(
    lists: Sequence[tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], float]]],
    grid: Sequence[float] = tuple(np.round(np.arange(0.0, 2.01, 0.05), 2)),
    floor: float | None = None,
    query_trusts: Sequence[float] | None = None,
) -> tuple[float, float]:
    """The grid weight that maximises the mean of ``metric(fused scores)`` over queries.

    Each item is (cross-encoder scores, first-stage scores, metric of a score vector); ``floor``
    is the agreement guard's (see :func:`trust`), ``query_trusts`` each query's novelty guard
    trust (:mod:`crossrank.pipeline.novelty`); a query keeps the smaller. Returns (weight, mean
    metric); ties go to the smaller weight.
    """
    if not lists:
        raise ValueError("expected at least one query's scores to fit the weight on, got none")
    if not len(grid):
        raise ValueError("expected at least one candidate weight in the grid, got none")
    query_trusts = [1.0] * len(lists) if query_trusts is None else list(query_trusts)
    if len(query_trusts) != len(lists):
        raise ValueError(f"expected {len(lists)} query trusts, got {len(query_trusts)}")
    trusts = [
        min(trust(ce, fs, floor), q) for (ce, fs, _), q in zip(lists, query_trusts, strict=True)
    ]
    best = (0.0, -1.0)
    for w in grid:
        value = float(
            np.mean(
                [
                    metric(interpolate(ce, fs, w, t))
                    for (ce, fs, metric), t in zip(lists, trusts, strict=True)
                ]
            )
        )
        if value > best[1] + 1e-12:
            best = (float(w), value)
    return best


@dataclass(frozen=True)
class Fusion:
    """``z(cross-encoder) + weight * z(first stage)``, fitted for one kind of first stage (the
    first stage read as its score, or as its components' ``signals``: see
    :func:`first_stage_evidence`), with
    the cross-encoder's share cut on queries where it disagrees with the first stage far more
    than on dev (``agreement_floor``, see :func:`trust`) or that lie further from the training
    queries than dev's do (``novelty``; :mod:`crossrank.pipeline.novelty`). A fusion with a
    novelty guard needs ``query_trust`` bound (``pipeline.stages.artifact_fusion`` does it) and
    the query at :meth:`apply`."""

    weight: float
    first_stage: str
    normalization: str = "zscore"
    fitted_on: str | None = None
    fit: dict[str, Any] = field(default_factory=dict)  # dev numbers of the fit, for reports
    agreement_floor: float | None = None  # the guard (see :func:`trust`); None: always trust
    novelty: NoveltyGuard | None = None
    query_trust: Callable[[str], float] | None = field(default=None, compare=False, repr=False)
    signals: tuple[str, ...] = ()  # empty: the first stage's own score

    def evidence(self, hits: Sequence[Hit]) -> np.ndarray:
        """The first-stage scores :meth:`apply` takes for these hits."""
        return first_stage_evidence(hits, self.signals)

    def apply(
        self, cross_encoder: np.ndarray, first_stage: np.ndarray, query: str | None = None
    ) -> np.ndarray:
        t = trust(cross_encoder, first_stage, self.agreement_floor)
        if self.novelty is not None:
            if self.query_trust is None or query is None:
                raise ValueError(
                    "expected the query and a bound novelty guard for this fusion (load it with "
                    "crossrank.pipeline.stages.artifact_fusion), got "
                    f"query={'given' if query is not None else None}, guard "
                    f"{'bound' if self.query_trust else 'unbound'}"
                )
            t = min(t, self.query_trust(query))
        return interpolate(cross_encoder, first_stage, self.weight, t).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.fit,
            "weight": self.weight,
            "first_stage": self.first_stage,
            "normalization": self.normalization,
            "fitted_on": self.fitted_on,
            "agreement_floor": self.agreement_floor,
            **({"signals": list(self.signals)} if self.signals else {}),
            **({"novelty": self.novelty.to_dict()} if self.novelty else {}),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fusion:
        if raw.get("normalization", "zscore") != "zscore":
            raise ValueError(
                f"expected fusion normalization 'zscore', got {raw['normalization']!r}"
            )
        try:
            weight, first_stage = float(raw["weight"]), str(raw["first_stage"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"expected a fusion entry with 'weight' and 'first_stage', got {raw!r}"
            ) from None
        floor = raw.get("agreement_floor")
        if floor is not None and not isinstance(floor, (int, float)):
            raise ValueError(f"expected a number or null for agreement_floor, got {floor!r}")
        signals = raw.get("signals", [])
        if not isinstance(signals, list) or not all(isinstance(x, str) for x in signals):
            raise ValueError(f"expected a list of signal names for signals, got {signals!r}")
        novelty = NoveltyGuard.from_dict(raw["novelty"]) if raw.get("novelty") else None
        own = ("weight", "first_stage", "normalization", "fitted_on", "agreement_floor", "novelty")
        fit = {k: v for k, v in raw.items() if k not in (*own, "signals")}
        return cls(
            weight,
            first_stage,
            "zscore",
            raw.get("fitted_on"),
            fit,
            floor,
            novelty,
            signals=tuple(signals),
        )


def fusion_entries(manifest_fusion: dict | None) -> dict[str, dict[str, Any]]:
    """An artifact's fitted fusions by first stage. The manifest keys them by first stage; one
    written before holds a single entry, read as the fit for its own first stage."""
    if not manifest_fusion:
        return {}
    if "first_stage" in manifest_fusion:
        return {str(manifest_fusion["first_stage"]): manifest_fusion}
    return dict(manifest_fusion)


def stored_fusion(manifest_fusion: dict | None, first_stage: str) -> Fusion | None:
    """The artifact's fitted fusion for this kind of first stage, if one was fitted."""
    entry = fusion_entries(manifest_fusion).get(first_stage)
    return Fusion.from_dict(entry) if entry else None
