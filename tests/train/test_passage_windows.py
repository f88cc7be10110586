"""Training groups shown as the passages ``--passages`` reads."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.runtime.passages import document_units
from crossrank.train.datasets import PairBatch
from crossrank.train.model import CrossEncoderConfig
from crossrank.train.module import CrossEncoderModule
from crossrank.train.passage_windows import PassageWindows

TOKENIZER = CrossEncoderConfig().tokenizer()
WINDOW = 32
LONG = " ".join(f"word{i}" for i in range(120))  # several windows
SHORT = "fits in one window"


def _groups(n_groups: int, size: int = 4) -> tuple[list[str], list[str]]:
    queries = [f"query {g}" for g in range(n_groups) for _ in range(size)]
    documents = [
        f"{LONG} doc{g}.{i}" if i % 2 == 0 else SHORT for g in range(n_groups) for i in range(size)
    ]
    return queries, documents


def test_a_share_of_zero_changes_nothing_and_returns_a_new_list():
    queries, documents = _groups(3)
    out = PassageWindows(TOKENIZER, WINDOW, 0.0)(queries, documents, 4, "k")
    assert out == documents and out is not documents


def test_every_document_becomes_one_of_the_passages_read_time_cuts():
    queries, documents = _groups(20)
    before = list(documents)
    out = PassageWindows(TOKENIZER, WINDOW, 1.0)(queries, documents, 4, "k")
    assert documents == before  # the caller's list is not changed
    for q, d, o in zip(queries, documents, out, strict=True):
        (cuts,) = document_units(TOKENIZER, q, [d], WINDOW)
        assert o in cuts
    long_out = [o for d, o in zip(documents, out, strict=True) if d != SHORT]
    assert all(o != d for d, o in zip(documents, out, strict=True) if d != SHORT)
    assert len(set(long_out)) > 1 and any(o.split()[0] != "word0" for o in long_out)


def test_whole_groups_are_chosen_at_about_the_share():
    queries = [f"query {g}" for g in range(300) for _ in range(3)]
    documents = [f"{LONG} doc{i}" for i in range(900)]  # every document longer than the window
    out = PassageWindows(TOKENIZER, WINDOW, 0.3)(queries, documents, 3, "k")
    changed = [[out[i] != documents[i] for i in range(g, g + 3)] for g in range(0, 900, 3)]
    assert all(len(set(group)) == 1 for group in changed)  # a group is windowed whole or not
    assert 0.22 < sum(group[0] for group in changed) / len(changed) < 0.38


def test_each_query_gets_the_cut_of_its_own_budget():
    windows = PassageWindows(TOKENIZER, WINDOW, 1.0)
    document = f"{LONG} end"
    for query in ("short", "a much longer query of many words"):  # two budgets
        (cuts,) = document_units(TOKENIZER, query, [document], WINDOW)
        for key in ("a", "b", "c"):
            assert windows([query], [document], 1, key)[0] in cuts


def test_the_split_cache_stays_within_its_size():
    windows = PassageWindows(TOKENIZER, WINDOW, 1.0, cache_size=5)
    out = windows(["q"] * 40, [f"{LONG} doc{i}" for i in range(40)], 4, "k")
    assert len(out) == 40 and len(windows._splits) == 5


@settings(max_examples=25, deadline=None)
@given(key=st.text(max_size=12), share=st.floats(0.0, 1.0))
def test_the_same_key_gives_the_same_windows(key, share):
    queries, documents = _groups(6)
    a = PassageWindows(TOKENIZER, WINDOW, share)(queries, documents, 4, key)
    b = PassageWindows(TOKENIZER, WINDOW, share)(queries, documents, 4, key)
    assert a == b


def test_bad_input_is_refused_with_what_was_expected():
    with pytest.raises(ValueError, match=r"expected passage_share in \[0, 1\], got 1.5"):
        PassageWindows(TOKENIZER, WINDOW, 1.5)
    with pytest.raises(ValueError, match="expected group_size >= 1, got 0"):
        PassageWindows(TOKENIZER, WINDOW, 1.0)(["q"], ["d"], 0, "k")
    with pytest.raises(ValueError, match="in whole groups of 4, got 6 queries and 6 documents"):
        PassageWindows(TOKENIZER, WINDOW, 1.0)(["q"] * 6, ["d"] * 6, 4, "k")
    with pytest.raises(ValueError, match="expected one query per group"):
        PassageWindows(TOKENIZER, WINDOW, 1.0)(["q", "r"], ["d", "e"], 2, "k")


class _Recording(CrossEncoderModule):
    def outputs(self, queries, documents):
        self.seen = list(documents)
        return super().outputs(queries, documents)


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_the_training_step_scores_the_windows_of_its_batch(share):
    torch.manual_seed(0)
    module = _Recording(encoder=CrossEncoderConfig(max_length=WINDOW), passage_share=share)
    queries, documents = _groups(2)
    batch = PairBatch(queries, documents, torch.tensor([[1, 0, 0, 0]] * 2), torch.arange(8) // 4)
    seen = []
    for batch_idx in (0, 1):
        module.training_step(batch, batch_idx)
        seen.append(module.seen)
        key = f"{module.batch_seed(batch_idx)}:0"
        expected = PassageWindows(module.tokenizer, WINDOW, share)(queries, documents, 4, key)
        assert module.seen == expected
    if share:
        assert seen[0] != documents and seen[0] != seen[1]  # each batch draws its own windows
    else:
        assert seen[0] == seen[1] == documents
