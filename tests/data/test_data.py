import json
import shutil

import pytest

from crossrank.data.beir import DataError, load_beir
from crossrank.data.examples import fixture_path, read_labeled, read_labeled_jsonl
from crossrank.train.datamodule import GroupDataset, RankingDataset, TriplesDataModule
from crossrank.train.negatives import mine_candidates


@pytest.fixture
def beir_copy(tmp_path):
    dst = tmp_path / "beir"
    shutil.copytree(fixture_path(), dst)
    return dst


def test_fixture_loads_with_disjoint_splits():
    train, evaluation = load_beir(fixture_path(), "train"), load_beir(fixture_path(), "eval")
    assert len(train.corpus) >= 60 and len(train.queries) >= 40
    assert set(train.qrels).isdisjoint(evaluation.qrels)
    assert {g for docs in train.qrels.values() for g in docs.values()} == {0, 1, 2}


def test_missing_file_is_named(beir_copy):
    (beir_copy / "queries.jsonl").unlink()
    with pytest.raises(DataError, match=r"queries\.jsonl: expected a JSONL file"):
        load_beir(beir_copy, "train")


def test_malformed_corpus_line_names_file_and_line(beir_copy):
    path = beir_copy / "corpus.jsonl"
    lines = path.read_text().splitlines()
    lines[4] = '{"_id": "d005", "text": '
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"corpus\.jsonl:5: expected a JSON object"):
        load_beir(beir_copy, "train")


def test_malformed_qrels_line_names_file_and_line(beir_copy):
    path = beir_copy / "qrels" / "train.tsv"
    path.write_text(path.read_text() + "q01\td001\tvery\n")
    n = len(path.read_text().splitlines())
    with pytest.raises(DataError, match=rf"train\.tsv:{n}: expected an integer score, got 'very'"):
        load_beir(beir_copy, "train")


def test_a_pair_judged_twice_keeps_its_higher_grade_in_either_order(beir_copy, caplog):
    path = beir_copy / "qrels" / "train.tsv"
    original = path.read_text()
    qid, doc, _ = original.splitlines()[1].split("\t")
    for grades in (("2", "0"), ("0", "2")):
        path.write_text(original + "".join(f"{qid}\t{doc}\t{g}\n" for g in grades))
        with caplog.at_level("WARNING"):
            assert load_beir(beir_copy, "train").qrels[qid][doc] == 2
        assert "judged twice with different grades, the higher kept" in caplog.text
        caplog.clear()


def test_unknown_split_lists_the_available_ones(beir_copy):
    with pytest.raises(DataError, match=r"splits here: \['eval', 'train'\]"):
        load_beir(beir_copy, "test")


def test_empty_documents_are_skipped_with_one_warning_or_named_when_strict(beir_copy, caplog):
    path = beir_copy / "corpus.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[3] = {"_id": rows[3]["_id"], "title": "", "text": ""}  # judged in train
    rows.append({"_id": "d999", "text": "   "})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level("WARNING"):
        ds = load_beir(beir_copy, "train")
    warnings = [r for r in caplog.records if "neither title nor text" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 2 document" in warnings[0].getMessage()
    assert rows[3]["_id"] not in ds.corpus and "d999" not in ds.corpus
    assert len(ds.corpus) == len(rows) - 2
    assert all(rows[3]["_id"] not in docs for docs in ds.qrels.values())
    with pytest.raises(DataError, match=r"got 2 without: \['d004', 'd999'\]"):
        load_beir(beir_copy, "train", strict=True)


def test_empty_query_text_is_an_error(beir_copy):
    path = beir_copy / "queries.jsonl"
    path.write_text(path.read_text() + json.dumps({"_id": "q99", "text": "  "}) + "\n")
    with pytest.raises(DataError, match=r"queries\.jsonl:\d+: expected a non-empty string 'text'"):
        load_beir(beir_copy, "train")


def test_labeled_jsonl_both_shapes(tmp_path):
    path = tmp_path / "ex.jsonl"
    rows = [
        {"query": "q one", "document": "relevant", "label": 2},
        {"query": "q one", "document": "not it", "label": 0},
        {"query": "q two", "positive": "yes", "negatives": ["no", "nope"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    data = read_labeled_jsonl(path)
    assert [sorted(q.judged.values()) for q in data.queries] == [[0, 2], [0, 0, 1]]
    path.write_text(json.dumps({"query": "q", "document": "", "label": 1}))
    with pytest.raises(DataError, match=r"ex\.jsonl:1: expected a non-empty string 'document'"):
        read_labeled_jsonl(path)


def test_flagembedding_rows_and_msmarco_triples(tmp_path):
    path = tmp_path / "fe.jsonl"
    path.write_text(json.dumps({"query": "q", "pos": ["yes"], "neg": ["no", "nah"]}))
    (q,) = read_labeled(str(path), "train").queries
    assert sorted(q.judged.values()) == [0, 0, 1]
    tsv = tmp_path / "triples.tsv"
    tsv.write_text("q one\tgood\tbad\nq one\tgood\tworse\nq two\tfine\tbad\n")
    data = read_labeled(str(tsv), "train")
    assert [sorted(q.judged.values()) for q in data.queries] == [[0, 0, 1], [0, 1]]
    assert len(data.documents) == 4  # "good" and "bad" are one document each
    tsv.write_text("q one\tgood\n")
    with pytest.raises(
        DataError, match=r"triples\.tsv:1: expected query<TAB>positive<TAB>negative"
    ):
        read_labeled(str(tsv), "train")


def test_merged_sets_keep_each_queries_teacher_lists():
    from crossrank.data.examples import LabeledQuery, LabeledSet, merge_sets

    a = LabeledQuery("q", "text", {"d1": 1}, ["d1", "d2"], {"d1": 2.0, "d2": -1.0}, {"d2"})
    merged = merge_sets([LabeledSet([a], {"d1": "x", "d2": "y"}, "a"), LabeledSet([], {}, "b")])
    (q,) = merged.queries
    assert q.candidates == ["0:d1", "0:d2"]
    assert q.teacher == {"0:d1": 2.0, "0:d2": -1.0}
    assert q.unsure == {"0:d2"}


@pytest.mark.parametrize("holdout", [0.0, 0.3])
def test_merged_collections_mine_each_querys_candidates_in_its_own_corpus(holdout):
    # The fixture twice: every document exists in both collections with the same text, so
    # BM25 over the merged corpus would rank the other copy as high as the query's own.
    dm = TriplesDataModule(
        also_train=["fixture:train"], negatives="candidates", negative_ranks=(0, 20),
        eval_candidates="candidates", eval_depth=10, holdout=holdout, drop_leaking=True,
        cache_dir=None,
    )  # fmt: skip
    dm.setup("fit")
    sets = [dm.train_set] + ([dm.eval_set] if holdout else [])
    queries = [q for data in sets for q in data.queries]
    assert {q.qid.split(":")[0] for q in queries} == {"0", "1"}
    for q in queries:
        assert q.candidates and all(d.split(":")[0] == q.qid.split(":")[0] for d in q.candidates)


def test_leakage_guard_fires_when_a_query_is_in_both_splits(beir_copy):
    path = beir_copy / "qrels" / "eval.tsv"
    first_train = (beir_copy / "qrels" / "train.tsv").read_text().splitlines()[1]
    path.write_text(path.read_text() + first_train + "\n")
    dm = TriplesDataModule(data=str(beir_copy), cache_dir=None)
    with pytest.raises(DataError, match="share no query, got 1 shared"):
        dm.setup("fit")


def test_groups_hold_a_positive_and_only_lower_graded_negatives():
    data = read_labeled("fixture", "train")
    ds = GroupDataset(data, n_negatives=5, source="random", seed=1)
    for i in range(len(ds)):
        _query, docs, labels, _ = ds[i]
        assert len(docs) == len(labels) == 6
        assert labels[0] > 0 and all(g < labels[0] for g in labels[1:])
    first = [ds[i] for i in range(5)]
    assert first == [ds[i] for i in range(5)]  # deterministic within an epoch
    ds.epoch = 1
    assert first != [ds[i] for i in range(5)]  # fresh negatives next epoch


def test_mined_candidates_are_cached(tmp_path):
    data = read_labeled("fixture", "train")
    mine_candidates(data, 10, tmp_path)
    lists = {q.qid: q.candidates for q in data.queries}
    assert all(len(c) == 10 for c in lists.values())
    assert len(list(tmp_path.glob("candidates-*.json"))) == 1
    again = read_labeled("fixture", "train")
    mine_candidates(again, 10, tmp_path)
    assert {q.qid: q.candidates for q in again.queries} == lists


def test_mined_negatives_never_include_judged_documents(tmp_path):
    data = read_labeled("fixture", "train")
    mine_candidates(data, 30, tmp_path)
    text_id = {t: d for d, t in data.documents.items()}
    for epoch in range(3):
        ds = GroupDataset(data, n_negatives=7, source="candidates", seed=3, ranks=(0, 30))
        ds.epoch = epoch
        for i in range(len(ds)):
            qi, pos = ds.items[i]
            q = data.queries[qi]
            _, docs, labels, _ = ds[i]
            negatives = [text_id[d] for d, g in zip(docs[1:], labels[1:], strict=True) if g >= 0]
            assert pos not in negatives and len(set(negatives)) == len(negatives)
            # Every negative is graded below the positive: judged lower, or unjudged (0).
            assert all(q.judged.get(d, 0) < q.judged[pos] for d in negatives)
            assert all(g < labels[0] for g in labels[1:] if g >= 0)


def test_ranking_dataset_covers_every_candidate():
    data = read_labeled("fixture", "eval")
    ds = RankingDataset(data, "all")
    assert len(ds) == len(data.queries) * len(data.documents)


def test_duplicate_document_id_names_the_line(beir_copy):
    path = beir_copy / "corpus.jsonl"
    first = path.read_text().splitlines()[0]
    path.write_text(path.read_text() + first + "\n")
    n = len(path.read_text().splitlines())
    with pytest.raises(DataError, match=rf"corpus\.jsonl:{n}: duplicate document id 'd001'"):
        load_beir(beir_copy, "train")


def test_easy_negatives_come_from_outside_the_candidates_and_are_never_judged():
    from crossrank.data.examples import read_labeled
    from crossrank.train.datasets import GroupDataset

    data = read_labeled("fixture", "train")
    mine_candidates(data, 10, cache_dir=None)
    hard = GroupDataset(data, 6, "candidates", seed=3, ranks=(0, 10))
    mixed = GroupDataset(data, 6, "candidates", seed=3, ranks=(0, 10), easy_fraction=0.5)
    text_id = {t: d for d, t in data.documents.items()}
    outside = 0
    for ds in (hard, mixed):
        for i in range(len(ds)):
            qi, pos = ds.items[i]
            q = data.queries[qi]
            _, docs, labels, _ = ds[i]
            ids = [text_id[t] for t, label in zip(docs, labels, strict=True) if label >= 0]
            unjudged = [d for d in ids[1:] if d not in q.judged]
            assert all(q.judged.get(d, 0) < q.judged[pos] for d in ids[1:] if d in q.judged)
            if ds is hard:
                assert set(unjudged) <= set(q.candidates)
            else:
                outside += sum(d not in q.candidates for d in unjudged)
    assert outside > 0


def test_cross_negatives_are_other_queries_positives_never_judged_here():
    from crossrank.data.examples import read_labeled
    from crossrank.train.datasets import GroupDataset

    data = read_labeled("fixture", "train")
    mine_candidates(data, 10, cache_dir=None)
    positives = {d for q in data.queries for d in q.positives}
    text_id = {t: d for d, t in data.documents.items()}
    for fraction, expect_some in ((0.0, False), (0.5, True)):
        ds = GroupDataset(data, 6, "candidates", seed=3, ranks=(0, 10), cross_fraction=fraction)
        cross = 0
        for i in range(len(ds)):
            qi, _ = ds.items[i]
            q = data.queries[qi]
            _, docs, labels, _ = ds[i]
            ids = [text_id[t] for t, label in zip(docs, labels, strict=True) if label >= 0]
            unjudged = [d for d in ids[1:] if d not in q.judged]
            cross += sum(d in positives and d not in q.candidates for d in unjudged)
        assert (cross > 0) == expect_some
    with pytest.raises(ValueError, match="easy_fraction \\+ cross_fraction <= 1"):
        GroupDataset(data, 6, "candidates", seed=3, easy_fraction=0.6, cross_fraction=0.6)
