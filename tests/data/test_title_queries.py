"""Title pseudo-queries: each title a query for the documents that carry it, titles removed."""

import json

import pytest

from crossrank.data.beir import DataError
from crossrank.data.title_queries import title_queries


def _corpus(tmp_path, rows):
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


ROWS = [
    {"_id": "a", "title": "Statin use and breast cancer survival", "text": "Statins delay it."},
    {"_id": "b", "title": "Vitamin D", "text": "Too short a title to ask."},
    {"_id": "c", "title": "Nut  consumption and pancreatic cancer", "text": "Nuts lower the risk."},
    {"_id": "d", "title": "nut consumption and Pancreatic cancer", "text": "A second cohort."},
    {"_id": "e", "title": "A title with no text at all", "text": ""},
]


def test_each_title_asks_for_the_documents_that_carry_it_without_their_titles(tmp_path):
    data = title_queries(_corpus(tmp_path, ROWS))
    by_text = {q.text: q.judged for q in data.queries}
    assert by_text == {
        "Statin use and breast cancer survival": {"a": 1},
        "Nut consumption and pancreatic cancer": {"c": 1, "d": 1},  # one query per title
    }
    assert data.documents == {r["_id"]: r["text"] for r in ROWS if r["text"]}
    assert all(q.text not in data.documents[d] for q in data.queries for d in q.judged)


def test_bad_arguments_and_a_corpus_without_titles_are_refused(tmp_path):
    root = _corpus(tmp_path, [{"_id": "x", "title": "", "text": "only text"}])
    with pytest.raises(DataError, match="expected documents with titles"):
        title_queries(root)
    with pytest.raises(ValueError, match="expected min_words >= 1"):
        title_queries(root, min_words=0)
