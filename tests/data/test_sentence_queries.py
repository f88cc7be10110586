"""Sentence pseudo-queries: one sentence of a document asks for the rest of it."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossrank.data.beir import DataError
from crossrank.data.sentence_queries import sentence_queries, split_sentences, strip_heading


def _corpus(tmp_path, rows):
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


LICENCE = "Copyright 2012 by the publisher, all rights reserved in every country."
ROWS = [
    {"_id": "a", "title": "Statins and breast cancer", "text": (
        "Statin users had a lower risk of breast cancer death in the cohort. "
        "The study followed all Finnish breast cancer patients for nine years. " + LICENCE)},
    {"_id": "b", "title": "Nuts", "text": "Nut eaters in the study lived longer than others. "
        + LICENCE},
    {"_id": "c", "title": "One sentence", "text": "Only one sentence is here, so it stays."},
    {"_id": "d", "title": "", "text": "Too short. Far too short."},
]  # fmt: skip


def test_each_query_is_one_sentence_of_its_document_which_keeps_its_title_and_the_rest(tmp_path):
    data = sentence_queries(_corpus(tmp_path, ROWS))
    assert sorted(q.qid for q in data.queries) == ["sent:a", "sent:b"]
    for q in data.queries:
        (doc,) = q.judged
        assert q.qid == f"sent:{doc}" and q.judged[doc] == 1
        row = next(r for r in ROWS if r["_id"] == doc)
        assert q.text in row["text"] and q.text not in data.documents[doc]
        assert data.documents[doc].startswith(row["title"] + ". ")
        rest = row["text"].replace(q.text, " ")
        assert " ".join(data.documents[doc].split()) == " ".join(f"{row['title']}. {rest}".split())
    assert all(q.text != LICENCE for q in data.queries)  # found in two documents: no query


def test_the_sentence_is_chosen_by_the_seed_the_same_way_each_time(tmp_path):
    text = " ".join(
        f"Sentence number {i} of this long abstract talks about topic {i}." for i in range(8)
    )
    root = _corpus(
        tmp_path,
        [{"_id": f"x{j}", "title": "", "text": text.replace("topic", f"t{j}")} for j in range(20)],
    )
    picks = [{q.qid: q.text for q in sentence_queries(root, seed=s).queries} for s in (1, 1, 2)]
    assert picks[0] == picks[1] and picks[0] != picks[2]
    assert len({t.split()[2] for t in picks[0].values()}) > 1  # not always the same position


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_words": 0}, "expected 1 <= min_words <= max_words"),
     ({"min_words": 9, "max_words": 8}, "expected 1 <= min_words <= max_words"),
     ({"min_sentences": 1}, "expected min_sentences >= 2")],
)  # fmt: skip
def test_bad_arguments_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sentence_queries(_corpus(tmp_path, ROWS), **kwargs)


def test_a_corpus_with_no_eligible_sentence_is_refused(tmp_path):
    with pytest.raises(DataError, match="expected documents of >= 2 sentences"):
        sentence_queries(_corpus(tmp_path, ROWS[2:]))


@given(st.lists(st.text(alphabet="abc XY.?!0(", min_size=0, max_size=30), max_size=6))
def test_splitting_keeps_every_word_in_order(parts):
    text = " ".join(parts)
    assert " ".join(split_sentences(text)).split() == text.split()


def test_abbreviations_and_decimals_do_not_end_a_sentence():
    text = "Risk fell (HR 0.46, 95% CI 0.38-0.55), e.g. in women. Men too! Why? (See Table 2.)"
    assert split_sentences(text) == [
        "Risk fell (HR 0.46, 95% CI 0.38-0.55), e.g. in women.", "Men too!", "Why?",
        "(See Table 2.)",
    ]  # fmt: skip


def test_common_abbreviations_do_not_end_a_sentence():
    text = "Men vs. Women differed as Smith et al. First showed. See Fig. 2 for it. It held."
    assert split_sentences(text) == [
        "Men vs. Women differed as Smith et al. First showed.", "See Fig. 2 for it.", "It held.",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("sentence", "query"),
    [("BACKGROUND: Statins help.", "Statins help."),
     ("CONCLUSIONS AND IMPLICATIONS: Intake matters.", "Intake matters."),
     ("Results: Men differed.", "Men differed."),
     ("[Conclusion] The results show it.", "The results show it."),
     ("METHODS We used Cox regression.", "We used Cox regression."),
     ("DNA damage rose in the cohort.", "DNA damage rose in the cohort."),
     ("ENO and triglycerides rose.", "ENO and triglycerides rose.")],
)  # fmt: skip
def test_a_section_heading_is_not_part_of_the_query(sentence, query):
    assert strip_heading(sentence) == query


def test_queries_lose_their_heading_and_a_sentence_repeated_in_its_document_is_no_query(tmp_path):
    twice = "This exact sentence appears twice in the same abstract."
    rows = [{"_id": "h", "title": "T", "text": "BACKGROUND: Statin users had a lower risk of death. "
             f"{twice} {twice}"}]  # fmt: skip
    (q,) = sentence_queries(_corpus(tmp_path, rows)).queries
    assert q.text == "Statin users had a lower risk of death."
