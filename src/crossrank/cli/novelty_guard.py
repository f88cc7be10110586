"""The novelty guard's side of ``crossrank fuse``: which splits are each training collection's
reference and calibration queries (checked before the long scoring), and the fit."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from crossrank.cli.common import prepare_first_stage
from crossrank.pipeline.novelty import check_floor, fit_novelty


def named_splits(entries: list[str], flag: str) -> list[tuple[str, str]]:
    """``(folder, split)`` of each ``DATA:SPLIT`` entry given to ``flag``."""
    named = []
    for entry in entries:
        path, sep, part = entry.rpartition(":")
        if not sep or not path:
            raise ValueError(f"expected {flag} DATA:SPLIT, got {entry!r}")
        named.append((path, part))
    return named


def judged_queries(named: list[tuple[str, str]]) -> list[str]:
    """The texts of the judged queries of each split."""
    from crossrank.data.beir import load_beir

    texts: list[str] = []
    for path, part in named:
        dataset = load_beir(path, part)
        texts += [dataset.queries[q] for q in dataset.judged_queries()]
    return texts


def same_split(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return Path(a[0]).resolve() == Path(b[0]).resolve() and a[1] == b[1]


def reference_splits(entries: list[str], data: str, split: str) -> list[tuple[str, str]]:
    """The splits the reranker was trained on (default: the fit collection's train split)."""
    named = named_splits(entries or [f"{data}:train"], "--novelty-reference")
    for entry in named:
        if same_split(entry, (data, split)):
            raise ValueError(
                f"expected novelty reference queries other than the fit split {split!r}, got "
                f"{entry[0]}:{entry[1]} (each fit query would be its own neighbour)"
            )
    return named


def calibration_splits(
    entries: list[str], references: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The dev splits whose novelties set the guard's scale: never a test or reference split."""
    named = named_splits(entries, "--novelty-calibration")
    for path, part in named:
        if part == "test" or any(same_split((path, part), r) for r in references):
            raise ValueError(
                f"expected --novelty-calibration dev splits, neither test nor a reference, got "
                f"{path}:{part}"
            )
    return named


@dataclass
class GuardCollection:
    """One training collection of the novelty guard: the splits of its reference queries and of
    the dev queries that calibrate its scale (none: leave-one-out over its reference)."""

    name: str
    references: list[tuple[str, str]]
    calibration: list[tuple[str, str]]


def guard_collections(args: argparse.Namespace) -> list[GuardCollection] | None:
    """The novelty guard's collections, checked before any scoring; None when the guard is off.
    References group by folder; a collection is calibrated by its --novelty-calibration splits,
    else by the fit split when it is of that collection, else leave-one-out."""
    if args.guard_percentile <= 0 or args.novelty_k <= 0:
        return None
    check_floor(args.novelty_floor, "--novelty-floor")  # before the scoring, not after
    references = reference_splits(args.novelty_reference, args.data, args.split)
    calibration = calibration_splits(args.novelty_calibration, references)
    folders: dict[Path, GuardCollection] = {}
    for path, part in references:
        key = Path(path).resolve()
        folders.setdefault(key, GuardCollection(Path(path).name, [], []))
        folders[key].references.append((path, part))
    only = next(iter(folders.values())) if len(folders) == 1 else None
    for path, part in calibration:
        owner = folders.get(Path(path).resolve(), only)
        if owner is None:
            named = ", ".join(c.name for c in folders.values())
            raise ValueError(
                f"expected --novelty-calibration splits of the reference collections ({named}), "
                f"got {path}:{part}"
            )
        owner.calibration.append((path, part))
    fit = folders.get(Path(args.data).resolve(), only)
    if fit is not None and not fit.calibration:
        fit.calibration.append((args.data, args.split))
    return list(folders.values())


def described(splits: list[tuple[str, str]]) -> str:
    return " + ".join(f"{Path(path).name}:{part}" for path, part in splits)


def fit_guard(
    args: argparse.Namespace, collections: list[GuardCollection] | None, fit_queries: list[str]
):
    """(novelty guard, reference embeddings, each fit query's trust), or Nones when off."""
    if collections is None:
        return None, None, None
    from crossrank.pipeline.novelty import Collection
    from crossrank.pipeline.stages import require_bi_encoder
    from crossrank.retrieval.dense import OnnxEmbedder

    prepare_first_stage("dense", args.cache_dir)
    embedder = OnnxEmbedder(require_bi_encoder(args.cache_dir, "the novelty guard"))
    fitted = [
        Collection(
            c.name,
            judged_queries(c.references),
            judged_queries(c.calibration) if c.calibration else None,
        )
        for c in collections
    ]
    fitted_on = "; ".join(
        f"{described(c.references)} (reference), "
        f"{described(c.calibration) if c.calibration else 'leave-one-out'} (calibration)"
        for c in collections
    )
    return fit_novelty(
        embedder,
        fitted,
        fit_queries,
        args.guard_percentile,
        args.novelty_k,
        fitted_on,
        args.novelty_floor,
    )
