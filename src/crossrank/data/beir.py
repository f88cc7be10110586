"""Read BEIR-format folders: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Every error names the file and the line it came from.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

Qrels = dict[str, dict[str, int]]

log = logging.getLogger(__name__)


class DataError(ValueError):
    """Malformed or missing input data; the message names the file and line."""


@dataclass
class BeirDataset:
    """A corpus with its queries and the relevance judgements of one split."""

    path: Path
    split: str
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: Qrels

    def doc_text(self, doc_id: str) -> str:
        """Title and text joined the way BEIR's rerankers read them."""
        doc = self.corpus[doc_id]
        title, text = doc.get("title", ""), doc.get("text", "")
        return f"{title}. {text}" if title else text

    def corpus_texts(self) -> tuple[list[str], list[str]]:
        """Every document id and its :meth:`doc_text`, in corpus order (what indexes read)."""
        ids = list(self.corpus)
        return ids, [self.doc_text(d) for d in ids]

    def judged_queries(self) -> list[str]:
        """Query ids in qrels order that have at least one relevant (grade > 0) document."""
        return [qid for qid, docs in self.qrels.items() if any(g > 0 for g in docs.values())]


def iter_jsonl(path: Path, allow_strings: bool = False) -> Iterator[tuple[int, dict | str]]:
    """(line number, object) for each non-blank line; errors name the file and line."""
    if not path.is_file():
        raise DataError(f"{path}: expected a JSONL file, found none")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {exc}") from None
            if not isinstance(row, dict) and not (allow_strings and isinstance(row, str)):
                raise DataError(
                    f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}"
                )
            yield lineno, row


def _require_str(row: dict, key: str, path: Path, lineno: int, allow_empty: bool = False) -> str:
    value = row.get(key)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise DataError(f"{path}:{lineno}: expected a non-empty string {key!r}, got {value!r}")
    return value


def read_corpus(path: Path, strict: bool = False) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The documents, and the ids of those with neither title nor text: skipped (nothing can
    match them), or with ``strict`` an error that names them."""
    corpus: dict[str, dict[str, str]] = {}
    empty: list[str] = []
    for lineno, row in iter_jsonl(path):
        doc_id = str(row.get("_id", "")).strip()
        if not doc_id:
            raise DataError(f"{path}:{lineno}: expected an '_id', got {row.get('_id')!r}")
        title = row.get("title") or ""
        text = _require_str(row, "text", path, lineno, allow_empty=True)
        if doc_id in corpus or doc_id in empty:
            raise DataError(f"{path}:{lineno}: duplicate document id {doc_id!r}")
        if not (text.strip() or str(title).strip()):
            empty.append(doc_id)
            continue
        corpus[doc_id] = {"title": str(title), "text": text}
    if empty and strict:
        raise DataError(
            f"{path}: expected a title or text in every document, got {len(empty)} without: "
            f"{empty[:20]}"
        )
    if empty:
        log.warning(
            "%s: skipped %d document(s) with neither title nor text (e.g. %s; --strict names "
            "them all)",
            path,
            len(empty),
            empty[:3],
        )
    if not corpus:
        raise DataError(f"{path}: expected at least one document, got none")
    return corpus, empty


def read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for lineno, row in iter_jsonl(path):
        qid = str(row.get("_id", "")).strip()
        if not qid:
            raise DataError(f"{path}:{lineno}: expected an '_id', got {row.get('_id')!r}")
        if qid in queries:
            raise DataError(f"{path}:{lineno}: duplicate query id {qid!r}")
        queries[qid] = _require_str(row, "text", path, lineno)
    return queries


def read_qrels(path: Path) -> Qrels:
    if not path.is_file():
        raise DataError(f"{path}: expected a qrels TSV file, found none")
    qrels: Qrels = {}
    conflicts: list[str] = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, fields in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if not fields or not "".join(fields).strip():
                continue
            if lineno == 1 and not fields[-1].strip().lstrip("-").isdigit():
                continue  # header: query-id, corpus-id, score
            if len(fields) != 3:
                raise DataError(
                    f"{path}:{lineno}: expected 3 tab-separated fields "
                    f"(query-id, corpus-id, score), got {len(fields)}"
                )
            qid, doc_id, score = (x.strip() for x in fields)
            try:
                grade = int(score)
            except ValueError:
                raise DataError(
                    f"{path}:{lineno}: expected an integer score, got {score!r}"
                ) from None
            judged = qrels.setdefault(qid, {})
            if doc_id in judged and judged[doc_id] != grade:
                conflicts.append(f"line {lineno} ({qid}, {doc_id}): {judged[doc_id]} and {grade}")
            judged[doc_id] = max(grade, judged.get(doc_id, grade))
    if conflicts:  # kept, like the JSONL reader: the highest grade, whatever the line order
        log.warning(
            "%s: %d pair(s) judged twice with different grades, the higher kept (e.g. %s)",
            path, len(conflicts), conflicts[0],
        )  # fmt: skip
    return qrels


def load_beir(path: str | Path, split: str = "test", strict: bool = False) -> BeirDataset:
    """Load a BEIR folder; judgements naming unknown queries or documents are an error.

    Documents with neither title nor text are skipped with one warning, and so are their
    judgements; ``strict`` refuses the folder instead, naming them."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: expected a BEIR folder, found none")
    corpus, empty = read_corpus(root / "corpus.jsonl", strict)
    queries = read_queries(root / "queries.jsonl")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise DataError(f"{qrels_path}: no qrels for split {split!r}; splits here: {have}")
    qrels = read_qrels(qrels_path)
    skipped = set(empty)
    for docs in qrels.values():
        for doc_id in skipped.intersection(docs):
            del docs[doc_id]
    for qid, docs in qrels.items():
        if qid not in queries:
            raise DataError(f"{qrels_path}: query {qid!r} is not in queries.jsonl")
        missing = [d for d in docs if d not in corpus]
        if missing:
            raise DataError(f"{qrels_path}: query {qid!r} judges unknown documents {missing[:5]}")
    return BeirDataset(root, split, corpus, queries, qrels)
