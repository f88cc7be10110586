"""Title pseudo-queries mixed into training at a share of its groups."""

import pytest

from crossrank.data.examples import LabeledQuery, LabeledSet
from crossrank.train.datamodule import TriplesDataModule
from crossrank.train.title_share import mix_titles


def _merged(n_main: int, n_titles: int) -> LabeledSet:
    main = [
        LabeledQuery(f"0:q{i}", f"topic {i}", {f"0:d{i}": 1, f"0:d{i + 1}": 2, f"0:x{i}": 0})
        for i in range(n_main)
    ]
    titles = [LabeledQuery(f"1:title:d{i}", f"title {i}", {f"1:d{i}": 1}) for i in range(n_titles)]
    docs = {f"{p}:d{i}": "text" for p in (0, 1) for i in range(n_main + 1)}
    return LabeledSet(main + titles, docs, "merged")


def _share(data: LabeledSet) -> float:
    titled = sum(len(q.positives) for q in data.queries if q.qid.startswith("1:title:"))
    return titled / sum(len(q.positives) for q in data.queries)


@pytest.mark.parametrize(("share", "n_titles"), [(0.25, 3), (0.6, 3), (0.1, 40), (0.5, 7)])
def test_the_title_queries_make_the_share_of_groups(share, n_titles):
    data = _merged(40, n_titles)  # 80 main groups; few titles need copies, many need a subset
    mixed = mix_titles(data, "1:title:", "0:", share, surfaced_only=False, seed=3)
    assert abs(_share(mixed) - share) <= 1 / len(mixed.queries)
    ids = [q.qid for q in mixed.queries]
    assert len(ids) == len(set(ids))  # copies get ids of their own


def test_a_positive_and_its_twin_are_never_negatives_of_each_other_and_data_is_unchanged():
    data = _merged(4, 4)
    before = [(q.qid, set(q.unsure)) for q in data.queries]
    mixed = mix_titles(data, "1:title:", "0:", 0.5, surfaced_only=False, seed=3)
    title = next(q for q in mixed.queries if q.qid.startswith("1:title:d2"))
    assert title.unsure == {"0:d2"}
    main = next(q for q in mixed.queries if q.qid == "0:q2")
    assert main.unsure == {"1:d2", "1:d3"}  # the twins of its two positives, not of its 0-grade
    assert [(q.qid, set(q.unsure)) for q in data.queries] == before


def test_only_surfaced_positives_count_when_training_on_candidates():
    data = _merged(40, 10)
    for q in data.queries[:40]:
        q.candidates = [f"0:d{q.qid[3:]}"]  # one of each main query's two positives surfaced
    for q in data.queries[40:]:
        q.candidates = list(q.judged)
    mixed = mix_titles(data, "1:title:", "0:", 0.2, surfaced_only=True, seed=3)
    titled = sum(q.qid.startswith("1:title:") for q in mixed.queries)
    assert titled == 10  # 40 surfaced groups * 0.2 / 0.8 = 10, not 80 * 0.25 = 20


def test_the_datamodule_draws_its_share_and_keeps_titles_out_of_a_holdout(tmp_path):
    dm = TriplesDataModule(
        data="fixture", title_share=0.4, negatives="candidates", positives="candidates",
        holdout=0.3, cache_dir=str(tmp_path),
    )  # fmt: skip
    dm.setup()
    items = dm._train_ds.items
    titled = sum(dm.train_set.queries[qi].qid.startswith("1:title:") for qi, _ in items)
    assert abs(titled / len(items) - 0.4) < 0.03
    assert dm.eval_set.queries and not any("title:" in q.qid for q in dm.eval_set.queries)
    query = next(q for q in dm.train_set.queries if q.qid.startswith("1:title:"))
    (doc,) = query.judged
    assert query.text not in dm.train_set.documents[doc]  # read without its title
    assert query.text in dm.train_set.documents["0:" + doc.split(":", 1)[1]]


def test_no_title_share_adds_no_queries_and_bad_shares_or_data_are_refused(tmp_path):
    dm = TriplesDataModule(data="fixture", cache_dir=str(tmp_path))
    dm.setup()
    assert not any("title:" in q.qid for q in dm.train_set.queries)
    with pytest.raises(ValueError, match=r"expected title_share in \[0, 1\)"):
        TriplesDataModule(data="fixture", title_share=1.0, cache_dir=str(tmp_path)).setup()
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text('{"query": "q", "document": "d", "label": 1}\n')
    with pytest.raises(ValueError, match="expected a BEIR folder as data for title_share"):
        TriplesDataModule(data=str(jsonl), title_share=0.2, cache_dir=str(tmp_path)).setup()


def test_the_remainder_is_drawn_by_the_seed_the_same_way_each_time():
    data = _merged(40, 40)

    def picked(seed):
        mixed = mix_titles(data, "1:title:", "0:", 0.2, surfaced_only=False, seed=seed)
        return {q.qid for q in mixed.queries if q.qid.startswith("1:title:")}

    assert picked(1) == picked(1) and picked(1) != picked(2) and len(picked(1)) == 20
