import pytest
import torch

from crossrank.runtime.tokenization import HashingTokenizer
from crossrank.train.model import CrossEncoder, CrossEncoderConfig, exact_match


def _batch(queries, docs, max_length=64):
    enc = HashingTokenizer(512).encode_pairs(queries, docs, max_length)
    return {k: torch.from_numpy(v) for k, v in enc.as_dict().items()}


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_one_score_per_pair_and_padding_does_not_change_it(pooling):
    torch.manual_seed(0)
    model = CrossEncoder(CrossEncoderConfig(vocab_size=512, pooling=pooling)).eval()
    short = _batch(["red bikes"], ["a red bike"])
    both = _batch(
        ["red bikes", "red bikes"], ["a red bike", "a much longer text about blue cars " * 3]
    )
    with torch.no_grad():
        alone = model(**short)
        padded = model(**both)
    assert alone.shape == (1,) and padded.shape == (2,)
    assert torch.allclose(alone[0], padded[0], atol=1e-5)


def test_answer_head_is_optional():
    batch = _batch(["q"], ["d"])
    scores, answer = CrossEncoder(CrossEncoderConfig(vocab_size=512)).forward_with_answer(**batch)
    assert answer is None and scores.shape == (1,)
    model = CrossEncoder(CrossEncoderConfig(vocab_size=512, answer_head=True))
    scores, answer = model.forward_with_answer(**batch)
    assert answer.shape == (1,)


def test_exact_match_marks_document_tokens_seen_in_the_query():
    b = _batch(["red bike"], ["the red car"])
    marks = exact_match(b["input_ids"], b["attention_mask"], b["token_type_ids"])[0].tolist()
    # [CLS] red bike [SEP] the red car [SEP]
    assert marks == [0, 0, 0, 0, 0, 1, 0, 0]


def test_config_rejects_bad_shapes():
    with pytest.raises(ValueError, match="divisible by n_heads"):
        CrossEncoderConfig(dim=30, n_heads=4)
    with pytest.raises(ValueError, match="pooling"):
        CrossEncoderConfig(pooling="max")


def test_micro_batches_give_the_same_scores_in_the_callers_order():
    import torch

    from crossrank.train.model import CrossEncoderConfig
    from crossrank.train.module import CrossEncoderModule

    torch.manual_seed(0)
    whole = CrossEncoderModule(CrossEncoderConfig(dropout=0.0, answer_head=True)).eval()
    sorted_ = CrossEncoderModule(CrossEncoderConfig(dropout=0.0, answer_head=True), micro_batch=3)
    sorted_.load_state_dict(whole.state_dict())
    sorted_.eval()
    docs = ["a much longer document " * k for k in (5, 1, 9, 2, 7, 3, 1)]
    queries = ["q one"] * len(docs)
    with torch.no_grad():
        s1, a1 = whole.outputs(queries, docs)
        s2, a2 = sorted_.outputs(queries, docs)
    assert torch.allclose(s1, s2, atol=1e-5) and torch.allclose(a1, a2, atol=1e-5)


@pytest.mark.parametrize(("attention", "random"), [(None, False), (0.5, True), (0.0, False)])
def test_attention_dropout_is_its_own_rate(attention, random):
    # Hidden dropout off: only attention dropout can make two training passes differ, and
    # by default (None) it follows the hidden rate.
    torch.manual_seed(0)
    cfg = CrossEncoderConfig(vocab_size=512, dropout=0.0, attention_dropout=attention)
    model = CrossEncoder(cfg).train()
    batch = _batch(["red bikes and blue cars"], ["a red bike next to a blue car"])
    first, second = model(**batch), model(**batch)
    assert (not torch.equal(first, second)) == random


def test_attention_dropout_defaults_to_the_hidden_rate():
    assert CrossEncoderConfig(dropout=0.3).attention_probs_dropout == 0.3
    assert CrossEncoderConfig(dropout=0.3, attention_dropout=0.0).attention_probs_dropout == 0.0
