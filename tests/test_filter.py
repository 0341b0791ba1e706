import numpy as np
import pytest

from cgankd.fakes.adjust import adjust_labels
from cgankd.fakes.filter import class_cutoffs, cross_entropy, keep_mask, regression_cutoff


def test_cross_entropy_by_hand():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]])
    ce = cross_entropy(logits, np.array([0, 0]))
    assert ce == pytest.approx([np.log(2.0), -np.log(0.75)])


def test_filter_keeps_below_per_class_rho_quantile():
    # class 0: CE 0.1 .. 1.0; class 1: CE 1 .. 10 -> separate cut-offs per class
    ce = np.concatenate([np.linspace(0.1, 1.0, 10), np.linspace(1, 10, 10)])
    labels = np.repeat([0, 1], 10)
    cut = class_cutoffs(ce, labels, 2, rho=0.5)
    assert cut == pytest.approx([0.55, 5.5])
    keep = keep_mask(ce, labels, cut, rho=0.5)
    assert keep.tolist() == [True] * 5 + [False] * 5 + [True] * 5 + [False] * 5
    assert keep_mask(ce, labels, cut, rho=1.0).all()


def test_filter_on_hand_made_logits():
    # teacher confident and right, unsure, confident and wrong: rho keeps the best two-thirds
    logits = np.array([[5.0, 0.0], [0.1, 0.0], [0.0, 5.0]])
    labels = np.zeros(3, np.int64)
    ce = cross_entropy(logits, labels)
    cut = class_cutoffs(ce, labels, 2, rho=0.7)
    assert keep_mask(ce, labels, cut, 0.7).tolist() == [True, True, False]
    assert np.isinf(cut[1])  # a class with no burn-in fakes never filters


def test_label_adjustment():
    logits = np.array([[0.1, 2.0, 0.3], [3.0, 0.0, 0.0]])
    assert adjust_labels(logits, "classification").tolist() == [1, 0]
    assert adjust_labels(np.array([[0.25], [0.75]]), "regression").tolist() == [0.25, 0.75]


def test_regression_cutoff():
    assert regression_cutoff(np.arange(11.0), 0.7) == pytest.approx(7.0)


def test_a_round_that_subsampling_rejects_whole_asks_again():
    """cDR-RS can reject every fake of a round; the loop draws again instead of scoring nothing."""
    import numpy as np

    from cgankd.fakes.make import generate_and_filter

    rounds = []

    def sample_fn(groups):
        return np.zeros((len(groups), 1, 2, 2), np.uint8)

    def score_fn(x, groups):
        assert len(x) > 0
        return np.zeros(len(x))

    def accept(x, groups):
        rounds.append(len(x))
        return np.zeros(len(x), bool) if len(rounds) == 1 else np.ones(len(x), bool)

    x, score, group, generated = generate_and_filter(sample_fn, score_fn, np.ones(2), target=3, rho=1.0,
                                                     max_rounds=5, accept=accept)
    assert len(rounds) == 2 and len(x) == 6 and np.bincount(group).tolist() == [3, 3]
    assert generated.sum() >= 2 * len(x)


def test_a_budget_that_subsampling_rejects_whole_gives_an_empty_set():
    """Every round rejected until the draw budget is spent: an empty set shaped like the fakes, not a crash
    (make-fakes then warns and cgankd trains on real data)."""
    import numpy as np

    from cgankd.fakes.make import generate_and_filter

    def sample_fn(groups):
        return np.zeros((len(groups), 1, 2, 2), np.uint8)

    x, score, group, generated = generate_and_filter(
        sample_fn, lambda x, g: np.zeros(len(x)), np.ones(2), target=3, rho=1.0, max_rounds=5,
        accept=lambda x, g: np.zeros(len(x), bool), max_draws=40)
    assert x.shape == (0, 1, 2, 2) and x.dtype == np.uint8 and len(score) == len(group) == 0
    assert 0 < generated.sum() <= 40
