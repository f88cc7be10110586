"""The second "do no harm" guard: how far a query lies from the queries the reranker knows.

A cross-encoder fine-tuned on one collection can rank worse than its first stage on another
(RESULTS.md: NFCorpus-trained, zero-shot on SciFact and WikiQA). The guard reads a query's
*novelty*, one minus its mean cosine similarity (bi-encoder embeddings) to its ``k`` nearest
reference queries (a collection's training queries), and compares it with the novelties of that
collection's dev queries (its *scale*). A query more novel than all but ``percentile`` % of dev
keeps a share of the cross-encoder equal to the share of dev at least as novel, over
``percentile`` %: 1 at dev's ``100 - percentile``-th percentile, falling to 0 beyond dev's most
novel query, which leaves the first stage's order; with a ``floor`` the share falls to that floor
instead (``trust = floor + (1 - floor) * share``): far from its training queries the
cross-encoder still adds evidence, weighed down against the first stage. A reranker trained on
several collections has one scale each (their novelties differ: Wikipedia questions lie further
apart than nutrition topics), and a query keeps the trust of the collection it is most typical
of. Nothing is fitted on the collections it protects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, NamedTuple, Protocol

import numpy as np

REFERENCE_FILE = "novelty-reference.npy"  # written as novelty-reference-<sha256[:12]>.npy
# crossrank fuse --novelty-floor (RESULTS.md, "A floor under the novelty guard")
DEFAULT_FLOOR = 0.5


def check_floor(floor: float, what: str = "a novelty guard floor") -> None:
    """A one-line error naming ``what`` unless ``floor`` is a guard floor, in [0, 1)."""
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"expected {what} in [0, 1), got {floor}")


class Embedder(Protocol):
    sha256: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def novelty(queries: np.ndarray, reference: np.ndarray, k: int = 5) -> np.ndarray:
    """``1 - mean(top-k cosine)`` of each row of ``queries`` against ``reference`` (both
    L2-normalised embeddings, one row per text)."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    reference = np.asarray(reference, dtype=np.float32)
    if reference.ndim != 2 or reference.shape[1] != queries.shape[1] or len(reference) == 0:
        raise ValueError(
            f"expected reference embeddings of shape (n >= 1, {queries.shape[1]}), "
            f"got {reference.shape}"
        )
    k = min(k, len(reference))
    sims = queries @ reference.T
    top = -np.partition(-sims, k - 1, axis=1)[:, :k]
    return 1.0 - top.mean(axis=1).astype(np.float64)


def leave_one_out_novelty(reference: np.ndarray, k: int = 5, chunk: int = 2048) -> np.ndarray:
    """Each reference row's novelty against the other rows: the scale of a collection named
    without dev queries (a near-duplicate in training makes its novelty low: a stricter guard)."""
    reference = np.asarray(reference, dtype=np.float32)
    if reference.ndim != 2 or len(reference) < 2:
        raise ValueError(
            f"expected at least 2 reference embeddings for a leave-one-out scale, got "
            f"{reference.shape}"
        )
    k = min(k, len(reference) - 1)
    out = np.empty(len(reference))
    for start in range(0, len(reference), chunk):  # an n x n similarity matrix may not fit
        sims = reference[start : start + chunk] @ reference.T
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -np.inf
        out[start : start + len(sims)] = 1.0 - (-np.partition(-sims, k - 1, axis=1)[:, :k]).mean(1)
    return out


@dataclass(frozen=True)
class NoveltyScale:
    """One training collection's part of the guard: how many consecutive reference rows are its
    queries (None: all of them) and its dev queries' novelties against them, sorted."""

    dev_novelty: tuple[float, ...]
    rows: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not self.dev_novelty:
            raise ValueError(
                f"expected the novelties of at least one dev query, got none ({self.name})"
            )
        if self.rows is not None and self.rows < 1:
            raise ValueError(
                f"expected at least one reference row for {self.name!r}, got {self.rows}"
            )

    def trust(self, value: float, percentile: float) -> float:
        """The cross-encoder's share for a query of novelty ``value`` on this scale, in [0, 1]."""
        dev = np.asarray(self.dev_novelty)
        at_least = (len(dev) - np.searchsorted(dev, value, side="left")) / len(dev)
        return float(min(1.0, at_least / (percentile / 100.0)))


@dataclass(frozen=True)
class NoveltyGuard:
    """The fitted guard: one scale per training collection, the percentile, and where the
    reference is. A query keeps the trust of the collection it is most typical of."""

    scales: tuple[NoveltyScale, ...]
    percentile: float = 10.0
    k: int = 5
    reference: str = REFERENCE_FILE  # the reference embeddings, beside the manifest
    bi_encoder_sha256: str = ""  # the bi-encoder that embedded them (and must embed queries)
    fitted_on: str = ""  # e.g. "nfcorpus:train (reference), nfcorpus:dev (calibration)"
    floor: float = 0.0  # the least share of the cross-encoder a query keeps (0: the first stage)

    def __post_init__(self) -> None:
        check_floor(self.floor)
        if not self.scales:
            raise ValueError("expected at least one novelty scale, got none")
        if len(self.scales) > 1 and any(s.rows is None for s in self.scales):
            raise ValueError("expected each of several novelty scales to name its reference rows")
        if not 0 < self.percentile < 100:
            raise ValueError(f"expected a guard percentile in (0, 100), got {self.percentile}")

    def slices(self, rows: int) -> list[slice]:
        """Each scale's rows of a reference of ``rows`` rows."""
        if self.scales[0].rows is None:
            return [slice(0, rows)]
        bounds = np.cumsum([0, *(s.rows for s in self.scales)])
        if bounds[-1] != rows:
            raise ValueError(
                f"expected a reference of {bounds[-1]} rows for the novelty scales "
                f"({', '.join(s.name for s in self.scales)}), got {rows}"
            )
        return [slice(int(a), int(b)) for a, b in pairwise(bounds)]

    def novelties(self, queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """(queries, scales): each query's novelty against each collection's reference rows."""
        parts = [novelty(queries, reference[s], self.k) for s in self.slices(len(reference))]
        return np.stack(parts, axis=1)

    def trust(self, novelties: Sequence[float]) -> float:
        """The cross-encoder's share for a query of these novelties (one per scale), in [0, 1]."""
        if len(novelties) != len(self.scales):
            raise ValueError(f"expected {len(self.scales)} novelties, got {len(novelties)}")
        share = max(
            s.trust(v, self.percentile) for s, v in zip(self.scales, novelties, strict=True)
        )
        return 1.0 - (1.0 - self.floor) * (1.0 - share)  # exactly 1 at full share

    def to_dict(self) -> dict[str, Any]:
        return {
            "scales": [
                {"name": s.name, "rows": s.rows, "dev_novelty": list(s.dev_novelty)}
                for s in self.scales
            ],
            "percentile": self.percentile,
            "k": self.k,
            "reference": self.reference,
            "bi_encoder_sha256": self.bi_encoder_sha256,
            "fitted_on": self.fitted_on,
            "floor": self.floor,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> NoveltyGuard:
        try:
            # A guard written before scales held one 'dev_novelty' list over all its rows.
            listed = raw["scales"] if "scales" in raw else [{"dev_novelty": raw["dev_novelty"]}]
            scales = tuple(
                NoveltyScale(
                    tuple(sorted(float(v) for v in s["dev_novelty"])),
                    None if s.get("rows") is None else int(s["rows"]),
                    str(s.get("name", "")),
                )
                for s in listed
            )
            return cls(
                scales,
                float(raw.get("percentile", 10.0)),
                int(raw.get("k", 5)),
                str(raw.get("reference", REFERENCE_FILE)),
                str(raw.get("bi_encoder_sha256", "")),
                str(raw.get("fitted_on", "")),
                float(raw.get("floor", 0.0)),  # a guard written before floors: none
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(
                f"expected a novelty guard with 'scales' of 'dev_novelty' lists, got {raw!r} "
                f"({err})"
            ) from None


class Collection(NamedTuple):
    """A training collection for :func:`fit_novelty`: its training queries and the dev queries
    that calibrate its scale (None: each training query against the others)."""

    name: str
    reference: Sequence[str]
    calibration: Sequence[str] | None = None


def fit_novelty(
    embedder: Embedder,
    collections: Sequence[Collection],
    fit_queries: Sequence[str],
    percentile: float = 10.0,
    k: int = 5,
    fitted_on: str = "",
    floor: float = 0.0,
) -> tuple[NoveltyGuard, np.ndarray, np.ndarray]:
    """(guard, reference embeddings as float16, each fit query's trust): one scale per
    collection; the trusts are those of ``fit_queries``, the queries the fusion weight is then
    fitted on."""
    if not collections or not fit_queries:
        raise ValueError(
            f"expected training collections and fit queries, got {len(collections)} and "
            f"{len(fit_queries)}"
        )
    parts, scales = [], []
    for c in collections:
        if not c.reference or (c.calibration is not None and not c.calibration):
            raise ValueError(
                f"expected reference and calibration queries for {c.name!r}, got "
                f"{len(c.reference)} and {0 if c.calibration is None else len(c.calibration)}"
            )
        ref = embedder.embed(c.reference).astype(np.float16)
        dev = (
            leave_one_out_novelty(ref, k)
            if c.calibration is None
            else novelty(embedder.embed(c.calibration), ref, k)
        )
        rows = len(ref) if len(collections) > 1 else None
        parts.append(ref)
        scales.append(NoveltyScale(tuple(sorted(float(v) for v in dev)), rows, c.name))
    reference = np.concatenate(parts)
    guard = NoveltyGuard(
        tuple(scales), percentile, k, REFERENCE_FILE, embedder.sha256, fitted_on, floor
    )  # fmt: skip
    fit = guard.novelties(embedder.embed(fit_queries), reference.astype(np.float32))
    return guard, reference, np.array([guard.trust(row) for row in fit])
