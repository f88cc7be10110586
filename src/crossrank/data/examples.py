"""Labeled queries from a BEIR folder or a JSONL file, and the train/eval leakage guard."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from crossrank.data.beir import DataError, _require_str, iter_jsonl, load_beir

log = logging.getLogger(__name__)


@dataclass
class LabeledQuery:
    """One query with its graded judgements (doc id → grade; 0 = judged not relevant)."""

    qid: str
    text: str
    judged: dict[str, int]
    candidates: list[str] = field(default_factory=list)  # first-stage list, best first
    teacher: dict[str, float] = field(default_factory=dict)  # unsupervised scores of candidates
    unsure: set[str] = field(default_factory=set)  # unjudged, but likely relevant: no negatives

    @property
    def positives(self) -> list[str]:
        return [d for d, g in self.judged.items() if g > 0]


@dataclass
class LabeledSet:
    """Queries and the texts of every document they may refer to."""

    queries: list[LabeledQuery]
    documents: dict[str, str]
    source: str


def fixture_path() -> Path:
    """The packaged fixture corpus (a BEIR folder with ``train`` and ``eval`` qrels)."""
    return Path(str(resources.files("crossrank") / "fixtures"))


def resolve_data(path: str) -> Path:
    """``"fixture"`` means the packaged fixture corpus; anything else is a path."""
    return fixture_path() if path == "fixture" else Path(path)


def _text_id(prefix: str, text: str) -> str:
    return prefix + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def read_labeled_jsonl(path: Path) -> LabeledSet:
    """Read ``{"query", "document", "label"}``, ``{"query", "positive", "negatives"}`` or
    FlagEmbedding's ``{"query", "pos": [...], "neg": [...]}`` rows."""
    return _labeled_rows(iter_jsonl(path), path)


def _labeled_rows(rows: Iterable[tuple[int, dict]], path: Path) -> LabeledSet:
    by_query: dict[str, LabeledQuery] = {}
    documents: dict[str, str] = {}

    def judge(query: str, doc: str, grade: int) -> None:
        doc_id = _text_id("d", doc)
        documents[doc_id] = doc
        qid = _text_id("q", query)
        entry = by_query.setdefault(qid, LabeledQuery(qid, query, {}))
        entry.judged[doc_id] = max(grade, entry.judged.get(doc_id, grade))

    for lineno, row in rows:
        query = _require_str(row, "query", path, lineno)
        if "document" in row:
            doc = _require_str(row, "document", path, lineno)
            label = row.get("label")
            if not isinstance(label, int) or isinstance(label, bool) or label < 0:
                raise DataError(f"{path}:{lineno}: expected an integer 'label' >= 0, got {label!r}")
            judge(query, doc, label)
        elif "positive" in row:
            grade = row.get("grade", 1)
            if not isinstance(grade, int) or isinstance(grade, bool) or grade < 1:
                raise DataError(f"{path}:{lineno}: expected an integer 'grade' >= 1, got {grade!r}")
            judge(query, _require_str(row, "positive", path, lineno), grade)
            negatives = row.get("negatives", [])
            if not isinstance(negatives, list) or not all(
                isinstance(n, str) and n.strip() for n in negatives
            ):
                raise DataError(
                    f"{path}:{lineno}: expected 'negatives' to be a list of non-empty strings"
                )
            for neg in negatives:
                judge(query, neg, 0)
        elif "pos" in row:
            for key, grade in (("pos", 1), ("neg", 0)):
                texts = row.get(key, [])
                if not isinstance(texts, list) or not all(
                    isinstance(t, str) and t.strip() for t in texts
                ):
                    raise DataError(
                        f"{path}:{lineno}: expected {key!r} as a list of non-empty strings"
                    )
                for text in texts:
                    judge(query, text, grade)
        else:
            raise DataError(
                f"{path}:{lineno}: expected keys query+document+label, query+positive+negatives "
                "or query+pos+neg, "
                f"got {sorted(row)}"
            )
    if not by_query:
        raise DataError(f"{path}: expected at least one labeled example, got none")
    return LabeledSet(list(by_query.values()), documents, str(path))


def read_labeled_triples(path: Path) -> LabeledSet:
    """Read MS MARCO-style ``query<TAB>positive<TAB>negative`` lines (no header)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3 or not all(x.strip() for x in fields):
                raise DataError(
                    f"{path}:{lineno}: expected query<TAB>positive<TAB>negative, "
                    f"got {len(fields)} field(s)"
                )
            rows.append(
                (lineno, {"query": fields[0], "positive": fields[1], "negatives": [fields[2]]})
            )
    return _labeled_rows(rows, path)


def read_labeled(path: str, split: str) -> LabeledSet:
    """Labeled queries from a BEIR folder (one qrels split), a JSONL file or a TSV of triples."""
    root = resolve_data(path)
    if root.is_file() and root.suffix == ".tsv":
        return read_labeled_triples(root)
    if root.is_file():
        return read_labeled_jsonl(root)
    ds = load_beir(root, split)
    queries = [
        LabeledQuery(qid, ds.queries[qid], dict(ds.qrels[qid])) for qid in ds.judged_queries()
    ]
    documents = {doc_id: ds.doc_text(doc_id) for doc_id in ds.corpus}
    return LabeledSet(queries, documents, f"{root}:{split}")


def merge_sets(sets: list[LabeledSet]) -> LabeledSet:
    """One training set from several; ids are prefixed by position so they cannot collide
    (candidate lists, teacher scores and unsure documents are carried over)."""
    if len(sets) == 1:
        return sets[0]
    queries, documents = [], {}
    for i, part in enumerate(sets):
        documents.update({f"{i}:{d}": t for d, t in part.documents.items()})
        for q in part.queries:
            queries.append(
                LabeledQuery(
                    f"{i}:{q.qid}",
                    q.text,
                    {f"{i}:{d}": g for d, g in q.judged.items()},
                    [f"{i}:{d}" for d in q.candidates],
                    {f"{i}:{d}": s for d, s in q.teacher.items()},
                    {f"{i}:{d}" for d in q.unsure},
                )
            )
    return LabeledSet(queries, documents, " + ".join(p.source for p in sets))


def collections_of(data: LabeledSet, parts: int) -> list[LabeledSet]:
    """The collections :func:`merge_sets` merged ``parts`` of, each with its own queries and
    documents, for work that must stay inside a collection (mining a query's candidates in its
    own corpus, where the others' documents are unjudged for it). The queries are the same
    objects, so what is set on a query in a part is set in ``data``."""
    if parts == 1:
        return [data]
    return [
        LabeledSet(
            [q for q in data.queries if q.qid.startswith(f"{i}:")],
            {d: t for d, t in data.documents.items() if d.startswith(f"{i}:")},
            data.source,
        )
        for i in range(parts)
    ]


def holdout_split(data: LabeledSet, fraction: float) -> tuple[LabeledSet, LabeledSet]:
    """Split by query: a query goes to the held-out part when its id hashes below ``fraction``."""
    if not 0 < fraction < 1:
        raise ValueError(f"expected a holdout fraction in (0, 1), got {fraction}")

    def held(q: LabeledQuery) -> bool:
        return int(hashlib.sha1(q.qid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction

    train = LabeledSet([q for q in data.queries if not held(q)], data.documents, data.source)
    held_out = LabeledSet(
        [q for q in data.queries if held(q)], data.documents, f"{data.source} (held out)"
    )
    return train, held_out


def normalise_text(text: str) -> str:
    """Lower case, whitespace collapsed: how query texts are compared."""
    return " ".join(text.lower().split())


def drop_leaking_queries(train: LabeledSet, evaluation: LabeledSet) -> int:
    """Remove train queries whose text is also an eval query; returns how many were dropped."""
    held_out = {normalise_text(q.text) for q in evaluation.queries}
    kept = [q for q in train.queries if normalise_text(q.text) not in held_out]
    dropped = len(train.queries) - len(kept)
    if dropped:
        log.warning("dropped %d train queries that are also eval queries", dropped)
    train.queries = kept
    return dropped


def check_no_leakage(train: LabeledSet, evaluation: LabeledSet) -> None:
    """Refuse when the same query text is in train and eval."""
    seen = {normalise_text(q.text) for q in train.queries}
    shared = [q.text for q in evaluation.queries if normalise_text(q.text) in seen]
    if shared:
        raise DataError(
            f"expected train and eval to share no query, got {len(shared)} shared between "
            f"{train.source} and {evaluation.source}, e.g. {shared[:3]}"
        )
