import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.train.losses import LOSSES, answer_bce, get_loss, listwise_softmax, pairwise_ranknet

LABELS = torch.tensor([[2, 1, 0, 0], [1, 0, 0, -1]])


def descend(loss_of, shape: tuple[int, int], steps: int, lr: float) -> torch.Tensor:
    """Scores after ``steps`` of SGD on ``loss_of(scores)`` from zeros."""
    scores = torch.zeros(*shape, requires_grad=True)
    opt = torch.optim.SGD([scores], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss_of(scores).backward()
        opt.step()
    return scores.detach()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_moves_scores_the_right_way(name):
    loss_fn = get_loss(name)
    s = descend(lambda scores: loss_fn(scores, LABELS), (2, 4), steps=20, lr=0.5)
    assert s[0, 0] > s[0, 1] > s[0, 2]  # grade 2 above grade 1 above grade 0
    assert s[1, 0] > s[1, 1] and s[1, 0] > s[1, 2]
    assert s[1, 3] == 0  # padding gets no gradient


def test_listwise_with_one_positive_is_cross_entropy():
    scores = torch.tensor([[1.0, 0.5, -1.0]])
    expected = torch.nn.functional.cross_entropy(scores, torch.tensor([0]))
    assert torch.allclose(listwise_softmax(scores, torch.tensor([[1, 0, 0]])), expected)


def test_pairwise_without_pairs_is_zero_and_differentiable():
    scores = torch.zeros(1, 3, requires_grad=True)
    loss = pairwise_ranknet(scores, torch.tensor([[0, 0, 0]]))
    loss.backward()
    assert loss.item() == 0.0


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 4\)"):
        listwise_softmax(torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.long))


def test_unknown_loss_lists_the_choices():
    with pytest.raises(ValueError, match="listwise"):
        get_loss("lambdamart")


def test_answer_bce_targets_grade_two():
    logits = torch.tensor([[10.0, -10.0]])
    assert answer_bce(logits, torch.tensor([[2, 1]])).item() < 1e-3


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda g: st.tuples(
            st.lists(st.lists(st.floats(-30, 30), min_size=g, max_size=g), min_size=1, max_size=4),
            st.lists(st.lists(st.integers(-1, 2), min_size=g, max_size=g), min_size=1, max_size=4),
        )
    )
)
def test_losses_are_finite_for_any_grades(data):
    scores, labels = data
    n = min(len(scores), len(labels))
    s, y = torch.tensor(scores[:n]), torch.tensor(labels[:n])
    for name, fn in LOSSES.items():
        if name == "pointwise" and not (y >= 0).any():
            continue
        assert torch.isfinite(fn(s, y)), name


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_a_candidate_scored_minus_infinity_adds_nothing(name):
    # A ruled-out negative (score -inf) is the limit of a very low score: it adds a zero term
    # to the loss's mean (listwise: to its row's sum), and no gradient is NaN.
    loss = LOSSES[name]
    scores = torch.tensor([[2.0, float("-inf"), 0.5]], requires_grad=True)
    labels = torch.tensor([[1, 0, 0]])
    value = loss(scores, labels)
    value.backward()
    without = loss(torch.tensor([[2.0, 0.5]]), torch.tensor([[1, 0]]))
    # Terms without / with it: pairs (pos, neg) for the pairwise losses, pairs for pointwise.
    share = {"pointwise": 2 / 3, "pairwise": 1 / 2, "margin": 1 / 2, "listwise": 1.0}[name]
    expected = without * share
    assert value.item() == pytest.approx(expected.item(), abs=1e-6)
    assert torch.isfinite(scores.grad).all()


def test_distillation_over_a_candidate_both_sides_rule_out_is_the_distillation_without_it():
    from crossrank.train.losses import distill_kl

    scores = torch.tensor([[2.0, float("-inf"), 0.5]], requires_grad=True)
    value = distill_kl(scores, torch.tensor([[1.0, float("-inf"), -0.5]]))
    value.backward()
    without = distill_kl(torch.tensor([[2.0, 0.5]]), torch.tensor([[1.0, -0.5]]))
    assert value.item() == pytest.approx(without.item(), abs=1e-7)
    assert torch.isfinite(scores.grad).all()
