"""Pseudo-queries from a corpus's own sentences: one sentence of each document a query, the
document without that sentence its one relevant document (the inverse cloze task).

Claims, questions and statements people search with read like one sentence of the document
that answers them, not like its title. Removing the sentence means the pair cannot be matched by
finding the query verbatim; what is left is the overlap of one sentence with its context,
which is how a claim relates to the abstract that supports it. Sentences that occur in more than
one document (licences, section boilerplate) are never queries: they point to no document."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

from crossrank.data.beir import DataError, read_corpus
from crossrank.data.examples import LabeledQuery, LabeledSet, normalise_text

_ABBREVIATIONS = ("vs", "al", "e.g", "i.e", "Fig", "Figs", "U.S", "No", "Dr", "approx", "ca", "cf")
_SENTENCE_END = re.compile(
    "".join(rf"(?<!\b{re.escape(a)}\.)" for a in _ABBREVIATIONS) + r"(?<=[.!?])\s+(?=[A-Z0-9(\[])"
)
_HEADINGS = (
    "BACKGROUND|OBJECTIVES?|AIMS?|PURPOSE|CONTEXT|INTRODUCTION|DESIGN|SETTING|METHODS?|RESULTS?|"
    "FINDINGS|CONCLUSIONS?|INTERPRETATION|PARTICIPANTS"
)
_HEADING = re.compile(
    rf"^(?:\[[^\]]{{1,40}}\]\s*|[A-Z][A-Z0-9 /&,-]{{2,60}}:\s+|"
    rf"(?:(?:{_HEADINGS})(?:\s+AND\s+[A-Z]+)?|[A-Z][a-z]+(?:\s+and\s+[a-z]+)?):\s+|"
    rf"(?:{_HEADINGS})(?:\s+AND\s+[A-Z]+)?\s+)"
)


def split_sentences(text: str) -> list[str]:
    """``text`` cut after ``.``, ``!`` or ``?`` where the next sentence starts upper-case, a
    digit or a bracket (so "e.g. the" and "95% CI 0.38" stay whole), and not after a common
    abbreviation ("vs. B", "et al. Their", "Fig. 2")."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text.strip())) if s]


def strip_heading(sentence: str) -> str:
    """``sentence`` without a leading section heading of a structured abstract ("BACKGROUND:",
    "CONCLUSIONS AND IMPLICATIONS:", "Results:", "[Conclusion]", "METHODS We ...")."""
    return _HEADING.sub("", sentence, count=1)


def sentence_queries(
    root: str | Path,
    min_words: int = 6,
    max_words: int = 40,
    min_sentences: int = 2,
    seed: int = 0,
) -> LabeledSet:
    """A labeled set with one sentence query per document of the BEIR corpus in ``root``.

    A document with at least ``min_sentences`` sentences gives one query (id ``sent:<doc id>``):
    a sentence of ``min_words`` to ``max_words`` words chosen by ``seed`` and the document id,
    without its section heading. Its document is the title and the text without that sentence
    (grade 1). One sentence per document: a query's copies in training repeat it. Documents keep
    their ids; how many queries training draws is :func:`crossrank.train.pseudo_share.mix_pseudo`'s
    business.
    """
    if not 1 <= min_words <= max_words:
        raise ValueError(f"expected 1 <= min_words <= max_words, got {min_words} and {max_words}")
    if min_sentences < 2:
        raise ValueError(f"expected min_sentences >= 2 (one stays), got {min_sentences}")
    root = Path(root)
    corpus, _ = read_corpus(root / "corpus.jsonl")
    split = {d: split_sentences(doc["text"]) for d, doc in corpus.items()}
    # Counted once per occurrence: a sentence repeated inside its own document is no query.
    seen = Counter(normalise_text(s) for sentences in split.values() for s in sentences)
    queries, documents = [], {}
    for doc_id, sentences in split.items():
        if len(sentences) < min_sentences:
            continue
        asked = [strip_heading(s) for s in sentences]
        eligible = [
            i
            for i, s in enumerate(sentences)
            if min_words <= len(asked[i].split()) <= max_words and seen[normalise_text(s)] == 1
        ]
        if not eligible:
            continue
        digest = hashlib.sha1(f"{seed}:{doc_id}".encode()).hexdigest()
        pick = eligible[int(digest[:8], 16) % len(eligible)]
        rest = " ".join(s for i, s in enumerate(sentences) if i != pick)
        title = corpus[doc_id]["title"].strip()
        documents[doc_id] = f"{title}. {rest}" if title else rest
        queries.append(LabeledQuery(f"sent:{doc_id}", asked[pick], {doc_id: 1}))
    if not queries:
        raise DataError(
            f"{root}: expected documents of >= {min_sentences} sentences with one of "
            f"{min_words}-{max_words} words found nowhere else, got none"
        )
    return LabeledSet(queries, documents, f"{root}:sentences")
