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
    queries, documents = _groups(400, size=2)
    out = PassageWindows(TOKENIZER, WINDOW, 0.3)(queries, documents, 2, "k")
    chosen = [out[i] != documents[i] for i in range(0, len(out), 2)]  # the long document
    assert 0.22 < sum(chosen) / len(chosen) < 0.38


@settings(max_examples=25, deadline=None)
@given(key=st.text(max_size=12), share=st.floats(0.0, 1.0))
def test_the_same_key_gives_the_same_windows(key, share):
    queries, documents = _groups(6)
    a = PassageWindows(TOKENIZER, WINDOW, share)(queries, documents, 4, key)
    b = PassageWindows(TOKENIZER, WINDOW, share)(queries, documents, 4, key)
    assert a == b


def test_bad_input_is_refused_with_what_was_expected():
    with pytest.raises(ValueError, match=r"expected a passage share in \[0, 1\], got 1.5"):
        PassageWindows(TOKENIZER, WINDOW, 1.5)
    with pytest.raises(ValueError, match="expected as many queries as documents in groups of 4"):
        PassageWindows(TOKENIZER, WINDOW, 1.0)(["q"] * 6, ["d"] * 6, 4, "k")


class _Recording(CrossEncoderModule):
    def outputs(self, queries, documents):
        self.seen = list(documents)
        return super().outputs(queries, documents)


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_the_training_step_scores_the_windows(share):
    torch.manual_seed(0)
    module = _Recording(encoder=CrossEncoderConfig(max_length=WINDOW), passage_share=share)
    queries, documents = _groups(2)
    batch = PairBatch(queries, documents, torch.tensor([[1, 0, 0, 0]] * 2), torch.arange(8) // 4)
    module.training_step(batch, 0)
    assert (module.seen == documents) == (share == 0.0)
    if share:
        expected = PassageWindows(module.tokenizer, WINDOW, 1.0)(queries, documents, 4, "13:0:0")
        assert module.seen == expected
