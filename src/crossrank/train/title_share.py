"""Mixing title pseudo-queries (:mod:`crossrank.data.title_queries`) into a merged training set
at a given share of its training groups."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

from crossrank.data.examples import LabeledQuery, LabeledSet


def groups_of(q: LabeledQuery, surfaced_only: bool) -> int:
    """How many training groups a query makes: one per positive (with ``surfaced_only``, per
    positive in its candidate list, as ``GroupDataset(positives="candidates")`` counts)."""
    if not surfaced_only:
        return len(q.positives)
    surfaced = set(q.candidates)
    return sum(1 for d in q.positives if d in surfaced)


def mix_titles(
    data: LabeledSet, titles: str, twins: str, share: float, surfaced_only: bool, seed: int
) -> LabeledSet:
    """``data`` with its title queries (ids starting ``titles``, e.g. ``"1:title:"``) repeated or
    thinned so that they make ``share`` of the training groups.

    Whole copies first (ids ``qid#k``), then a seeded subset for the remainder. Each title part
    document has a twin with its title in the collection ``twins`` (e.g. ``"0:"``): a query's
    positive's twin is never drawn as its negative (it is the same text, with or without the
    title). Returns a new set; ``data`` is not changed."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"expected a title share in (0, 1), got {share}")
    own = [q for q in data.queries if q.qid.startswith(titles)]
    others = [q for q in data.queries if not q.qid.startswith(titles)]
    ours = sum(groups_of(q, surfaced_only) for q in own)
    theirs = sum(groups_of(q, surfaced_only) for q in others)
    if not ours or not theirs:
        raise ValueError(
            f"expected training groups from both the title queries and the others, got "
            f"{ours} and {theirs}"
        )
    wanted = share / (1.0 - share) * theirs
    copies = math.floor(wanted / ours)
    order = sorted(own, key=lambda q: hashlib.sha1(f"{seed}:{q.qid}".encode()).hexdigest())
    rest, left = [], wanted - copies * ours
    for q in order:
        if left < 0.5:
            break
        rest.append(q)
        left -= groups_of(q, surfaced_only)
    title_part = titles.split(":", 1)[0] + ":"

    def with_twins(q: LabeledQuery, to: str) -> LabeledQuery:
        unsure = q.unsure | {to + d.split(":", 1)[1] for d in q.positives}
        return LabeledQuery(q.qid, q.text, q.judged, q.candidates, q.teacher, unsure)

    mixed = [with_twins(q, title_part) if q.qid.startswith(twins) else q for q in others]
    twinned = {q.qid: with_twins(q, twins) for q in own}  # once, shared by its copies
    mixed += [replace(twinned[q.qid], qid=f"{q.qid}#{k}") for k in range(copies) for q in own]
    mixed += [replace(twinned[q.qid], qid=f"{q.qid}#{copies}") for q in rest]
    return LabeledSet(mixed, data.documents, data.source)


def titles_back_to_train(
    train: LabeledSet, held_out: LabeledSet, titles: str
) -> tuple[LabeledSet, LabeledSet]:
    """A holdout split with the title queries all on the training side: they are easy
    (title → its own abstract) and would inflate the validation that picks checkpoints."""
    moved = [q for q in held_out.queries if q.qid.startswith(titles)]
    return (
        LabeledSet(train.queries + moved, train.documents, train.source),
        LabeledSet(
            [q for q in held_out.queries if not q.qid.startswith(titles)],
            held_out.documents,
            held_out.source,
        ),
    )
