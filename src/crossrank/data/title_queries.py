"""Pseudo-queries from a corpus's own titles: each title a query, its document without the title
the one relevant document.

A collection's labeled queries are written one way (NFCorpus: short topics from a health site);
the queries a reranker meets elsewhere are written others (claims, questions, titles). A
document's title is a statement of what its text is about, in the corpus's own words, and it
costs no labels, so it adds a second kind of query in the same domain. The title is removed
from every document of this set, so the pair cannot be matched by copying it back."""

from __future__ import annotations

from pathlib import Path

from crossrank.data.beir import DataError, read_corpus
from crossrank.data.examples import LabeledQuery, LabeledSet, normalise_text


def title_queries(root: str | Path, min_words: int = 4) -> LabeledSet:
    """A labeled set from the titles of the BEIR corpus in ``root``.

    Documents keep their ids and lose their titles (those with no text are left out). Each
    distinct title of at least ``min_words`` words is a query (id ``title:<doc id>``) whose
    relevant documents are the ones carrying that title (grade 1). How many of them training
    draws is :func:`crossrank.train.title_share.mix_titles`'s business.
    """
    root = Path(root)
    if min_words < 1:
        raise ValueError(f"expected min_words >= 1, got {min_words}")
    corpus, _ = read_corpus(root / "corpus.jsonl")
    documents = {d: doc["text"] for d, doc in corpus.items() if doc["text"].strip()}
    by_title: dict[str, LabeledQuery] = {}
    for doc_id, doc in corpus.items():
        title = " ".join(doc["title"].split())
        if doc_id not in documents or len(title.split()) < min_words:
            continue
        key = normalise_text(title)
        query = by_title.setdefault(key, LabeledQuery(f"title:{doc_id}", title, {}))
        query.judged[doc_id] = 1
    if not by_title:
        raise DataError(
            f"{root}: expected documents with titles of >= {min_words} words and a text, got none"
        )
    return LabeledSet(list(by_title.values()), documents, f"{root}:titles")
