"""Default success thresholds: 0.1 nats for classifiers, an R^2 = 0.9 fit for regression, in the
units of each head's own loss, and the floor below which no seed could succeed."""

import math

import numpy as np
import pytest

import gbl_jax as gbl
from gbl_jax.cli.thresholds import default_threshold, lowest_loss

Y = np.array([[0.0], [1.0], [3.0], [4.0]])  # variance 2.5, median 2, mean |y - median| 1.5


@pytest.mark.parametrize(
    "head, labels",
    [(gbl.heads.bernoulli(), [0, 1, 1, 0]), (gbl.heads.categorical(3), [0, 1, 2, 2])],
)
def test_classifiers_succeed_below_a_tenth_of_a_nat(head, labels):
    value, rule = default_threshold(head, np.array(labels))
    assert value == 0.1 and "0.1 nats" in rule and "0.905" in rule
    assert lowest_loss(head, np.array(labels)) == 0.0


def test_unit_gaussian_leaves_a_tenth_of_the_variance():
    value, rule = default_threshold(gbl.heads.gaussian(1), Y)
    floor = 0.5 * math.log(2 * math.pi)
    assert value == pytest.approx(floor + 0.5 * 0.1 * 2.5) and "R^2 = 0.9" in rule
    assert lowest_loss(gbl.heads.gaussian(1), Y) == pytest.approx(floor)
    y2 = np.concatenate([Y, 2 * Y], axis=1)  # D = 2: the floor and the variance add up
    value2, _ = default_threshold("gaussian(2)", y2)
    assert value2 == pytest.approx(2 * floor + 0.05 * (2.5 + 10.0))


def test_unit_laplace_leaves_a_tenth_of_the_absolute_deviation():
    value, rule = default_threshold(gbl.heads.laplace(1), Y)
    assert value == pytest.approx(math.log(2) + 0.1 * 1.5) and "absolute" in rule
    assert lowest_loss("laplace", Y) == pytest.approx(math.log(2))


@pytest.mark.parametrize(
    "head",
    [
        gbl.heads.laplace(1, learn_scale=True),
        gbl.heads.heteroscedastic_gaussian(1),
        gbl.heads.mixture_density(3, 1),
    ],
)
def test_learned_scales_have_no_floor_and_use_the_best_gaussian(head):
    value, rule = default_threshold(head, Y)
    assert value == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 0.1 * 2.5))
    assert "fitted variance" in rule and lowest_loss(head, Y) == -math.inf


def test_squared_error_is_a_tenth_of_the_variance_of_the_probabilities():
    assert default_threshold("gaussian(1)", Y, "mse")[0] == pytest.approx(0.25)
    labels = np.array([0, 1, 2, 2])  # one-hot variances 3/16, 3/16, 1/4
    assert default_threshold("categorical(3)", labels, "mse")[0] == pytest.approx(0.0625)
    assert lowest_loss("bernoulli", labels[:2], "mse") == 0.0


def test_a_large_label_builds_no_one_hot_matrix(monkeypatch):
    # K = 10**6 classes: a K x K eye would be 8 TB, an [N, K] one-hot 24 MB; neither is made
    monkeypatch.setattr(np, "eye", lambda *a, **k: pytest.fail("np.eye was called"))
    labels = np.array([0, 10**6 - 1, 10**6 - 1])  # one-hot variances 2/9, 2/9, zeros
    assert default_threshold(f"categorical({10**6})", labels, "mse")[0] == pytest.approx(
        0.1 * 4 / 9
    )
    assert lowest_loss(f"categorical({10**6})", labels) == 0.0


def test_constant_targets_still_get_a_threshold_above_the_floor():
    value, rule = default_threshold("gaussian(1)", np.ones((4, 1)), "mse")
    assert value == pytest.approx(0.1)
    # issue 30: the rule said "10% of the targets' variance" where the variance is 0
    assert (
        rule == "constant targets (no spread to explain): mse 0.1 above the lowest loss the "
        "head can reach (0)"
    )
    value, rule = default_threshold("gaussian(1)", np.ones((4, 1)))
    assert value == pytest.approx(0.5 * np.log(2 * np.pi) + 0.1)
    assert rule.startswith("constant targets") and "0.918939" in rule
    value, rule = default_threshold("heteroscedastic_gaussian(1)", np.ones(4))
    assert value == pytest.approx(0.5 * np.log(2 * np.pi * np.e * 1e-13))
    assert rule.startswith("constant targets")
    assert "variance" in default_threshold("gaussian(1)", np.arange(4.0))[1]


def test_unknown_heads_and_losses_are_refused():
    with pytest.raises(ValueError, match="head"):
        default_threshold("poisson", Y)
    with pytest.raises(ValueError, match="loss"):
        default_threshold("gaussian(1)", Y, "mae")
