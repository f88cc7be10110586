"""Score fusion: add the first stage's evidence to the cross-encoder's.

The one implementation of fusion in the project: :class:`Fusion` (weights fitted on dev by
:mod:`crossrank.pipeline.fusion_fit` and stored in the artifact's manifest) applied to a query's
candidates by every path that reranks (pipeline, eval, sweep, service), with the agreement
guard (:mod:`~crossrank.pipeline.agreement`), the novelty guard and relevance feedback
(:mod:`~crossrank.pipeline.feedback`). Rank fusion of first stages (RRF) is a retriever:
:mod:`crossrank.retrieval.hybrid`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crossrank.pipeline.agreement import trust
from crossrank.pipeline.feedback import feedback_similarity, hit_vectors
from crossrank.pipeline.novelty import NoveltyGuard
from crossrank.retrieval.base import Hit
from crossrank.retrieval.hybrid import zscore, zscore_sum

__all__ = [
    "Fusion",
    "feedback_direction",
    "first_stage_evidence",
    "fuse",
    "fusion_entries",
    "interpolate",
    "stored_fusion",
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


def fuse(
    cross_encoder: np.ndarray,
    first_stage: np.ndarray,
    weight: float,
    trust: float = 1.0,
    feedback: float = 0.0,
    vectors: np.ndarray | None = None,
    depth: int = 3,
) -> np.ndarray:
    """:func:`interpolate`, plus ``feedback`` times :func:`feedback_direction` (``feedback = 0``:
    the interpolation alone; ``trust = 0``: still the first stage's order)."""
    fused = interpolate(cross_encoder, first_stage, weight, trust)
    if feedback == 0 or trust == 0 or len(fused) == 0:
        return fused
    return fused + feedback * feedback_direction(fused, trust, vectors, depth)


def feedback_direction(
    fused: np.ndarray, trust: float, vectors: np.ndarray | None, depth: int
) -> np.ndarray:
    """What one unit of feedback weight adds to a fused list: ``trust`` times the z-scored
    :func:`feedback_similarity` to its top ``depth`` (the feedback is the cross-encoder's, so a
    query the guards distrust gets less of it)."""
    if vectors is None:
        raise ValueError(
            "expected the candidates' bi-encoder vectors for relevance feedback (a hybrid first "
            "stage), got none"
        )
    return trust * zscore(feedback_similarity(fused, vectors, depth))


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
    feedback: float = 0.0  # weight of relevance feedback (see :func:`fuse`); 0: none
    feedback_depth: int = 3

    def evidence(self, hits: Sequence[Hit]) -> np.ndarray:
        """The first-stage scores :meth:`apply` takes for these hits."""
        return first_stage_evidence(hits, self.signals)

    def fuse(
        self, cross_encoder: np.ndarray, hits: Sequence[Hit], query: str | None = None
    ) -> np.ndarray:
        """:meth:`apply` to the cross-encoder's scores of ``hits``, with their evidence and
        (for feedback) their vectors."""
        vectors = hit_vectors(hits) if self.feedback else None
        return self.apply(cross_encoder, self.evidence(hits), query, vectors)

    def apply(
        self,
        cross_encoder: np.ndarray,
        first_stage: np.ndarray,
        query: str | None = None,
        vectors: np.ndarray | None = None,
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
        fused = fuse(
            cross_encoder, first_stage, self.weight, t, self.feedback, vectors, self.feedback_depth
        )
        return fused.astype(np.float32)

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
            **(
                {"feedback": {"weight": self.feedback, "depth": self.feedback_depth}}
                if self.feedback
                else {}
            ),
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
        feedback, depth = _feedback_entry(raw.get("feedback"))
        own = ("weight", "first_stage", "normalization", "fitted_on", "agreement_floor", "novelty")
        fit = {k: v for k, v in raw.items() if k not in (*own, "signals", "feedback")}
        return cls(
            weight,
            first_stage,
            "zscore",
            raw.get("fitted_on"),
            fit,
            floor,
            novelty,
            signals=tuple(signals),
            feedback=feedback,
            feedback_depth=depth,
        )


def _feedback_entry(raw: Any) -> tuple[float, int]:
    """(weight, depth) of a manifest's ``feedback`` entry ((0, 3) when absent)."""
    if raw is None:
        return 0.0, 3
    weight, depth = (raw.get("weight"), raw.get("depth")) if isinstance(raw, dict) else (None, None)
    if (
        not isinstance(weight, (int, float))
        or isinstance(weight, bool)
        or weight < 0
        or not isinstance(depth, int)
        or isinstance(depth, bool)
        or depth < 1
    ):
        raise ValueError(
            f"expected feedback as {{'weight': number >= 0, 'depth': integer >= 1}}, got {raw!r}"
        )
    return float(weight), depth


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
