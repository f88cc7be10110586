"""Mixing pseudo-queries (titles, :mod:`crossrank.data.title_queries`; sentences,
:mod:`crossrank.data.sentence_queries`) into a merged training set, each kind at a given share
of its training groups."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import replace

from crossrank.data.examples import LabeledQuery, LabeledSet


def groups_of(q: LabeledQuery, surfaced_only: bool) -> int:
    """How many training groups a query makes: one per positive (with ``surfaced_only``, per
    positive in its candidate list, as ``GroupDataset(positives="candidates")`` counts)."""
    if not surfaced_only:
        return len(q.positives)
    surfaced = set(q.candidates)
    return sum(1 for d in q.positives if d in surfaced)


def _collection(prefix: str) -> str:
    return prefix.split(":", 1)[0] + ":"


def _with_twins(q: LabeledQuery, parts: list[str]) -> LabeledQuery:
    unsure = q.unsure | {p + d.split(":", 1)[1] for d in q.positives for p in parts}
    return LabeledQuery(q.qid, q.text, q.judged, q.candidates, q.teacher, unsure)


def _drawn(own: list[LabeledQuery], wanted: float, surfaced_only: bool, seed: int) -> list:
    """Whole copies of ``own`` (ids ``qid#k``), then a seeded subset, about ``wanted`` groups."""
    ours = sum(groups_of(q, surfaced_only) for q in own)
    copies = math.floor(wanted / ours)
    order = sorted(own, key=lambda q: hashlib.sha1(f"{seed}:{q.qid}".encode()).hexdigest())
    rest, left = [], wanted - copies * ours
    for q in order:
        if left < 0.5:
            break
        rest.append(q)
        left -= groups_of(q, surfaced_only)
    drawn = [replace(q, qid=f"{q.qid}#{k}") for k in range(copies) for q in own]
    return drawn + [replace(q, qid=f"{q.qid}#{copies}") for q in rest]


def mix_pseudo(
    data: LabeledSet, shares: Mapping[str, float], twins: str, surfaced_only: bool, seed: int
) -> LabeledSet:
    """``data`` with each kind of pseudo-query (ids starting with a key of ``shares``, e.g.
    ``"1:title:"``) repeated or thinned so that it makes its share of the training groups.

    Each pseudo-query document has a twin with the same id in the collection ``twins`` (e.g.
    ``"0:"``) and in the other pseudo collections: a positive's twin is never drawn as a
    negative of its query (it is the same document, read another way). Returns a new set;
    ``data`` is not changed."""
    total = sum(shares.values())
    if not shares or min(shares.values()) <= 0.0 or total >= 1.0:
        raise ValueError(f"expected pseudo-query shares > 0 summing below 1, got {dict(shares)}")
    kinds = list(shares)
    others = [q for q in data.queries if not q.qid.startswith(tuple(kinds))]
    theirs = sum(groups_of(q, surfaced_only) for q in others)
    parts = [_collection(k) for k in kinds]
    mixed = [_with_twins(q, parts) if q.qid.startswith(twins) else q for q in others]
    for kind, share in shares.items():
        own = [q for q in data.queries if q.qid.startswith(kind)]
        ours = sum(groups_of(q, surfaced_only) for q in own)
        if not ours or not theirs:
            raise ValueError(
                f"expected training groups from both the {kind} queries and the others, got "
                f"{ours} and {theirs}"
            )
        to = [twins] + [p for p in parts if p != _collection(kind)]
        twinned = [_with_twins(q, to) for q in own]  # once, shared by its copies
        mixed += _drawn(twinned, share / (1.0 - total) * theirs, surfaced_only, seed)
    return LabeledSet(mixed, data.documents, data.source)


def pseudo_back_to_train(
    train: LabeledSet, held_out: LabeledSet, kinds: tuple[str, ...]
) -> tuple[LabeledSet, LabeledSet]:
    """A holdout split with the pseudo-queries all on the training side: they are easy (a
    title or sentence → its own document) and would inflate the validation that picks
    checkpoints."""
    moved = [q for q in held_out.queries if q.qid.startswith(kinds)]
    return (
        LabeledSet(train.queries + moved, train.documents, train.source),
        LabeledSet(
            [q for q in held_out.queries if not q.qid.startswith(kinds)],
            held_out.documents,
            held_out.source,
        ),
    )
