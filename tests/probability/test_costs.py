"""nll, mse and mae: the book's identities, minimisers, foreign distributions, shape errors."""

import chex
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from scipy import optimize

import gbl_jax as gbl

RNG = np.random.default_rng(1)
_COSTS = {"nll": lambda pred, y: gbl.nll(gbl.Normal(pred, 1.0), y), "mse": gbl.mse, "mae": gbl.mae}


class TestNllIdentities(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_unit_gaussian_nll_is_half_squared_error_plus_constant(self):
        f, y = (jnp.asarray(RNG.normal(size=(7, 3)), jnp.float32) for _ in range(2))
        diff = np.asarray(y, np.float64) - np.asarray(f, np.float64)
        expected = np.mean(0.5 * np.sum(np.square(diff), axis=1)) + 1.5 * np.log(2 * np.pi)
        both = self.variant(lambda f, y: (gbl.nll(gbl.Normal(f, 1.0), y), 0.5 * gbl.mse(f, y)))
        got, half_mse = both(f, y)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        np.testing.assert_allclose(got, half_mse + 1.5 * np.log(2 * np.pi), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_unit_laplace_nll_is_absolute_error_plus_log_two(self):
        f, y = (jnp.asarray(RNG.normal(size=(9, 2)), jnp.float32) for _ in range(2))
        got = self.variant(lambda f, y: gbl.nll(gbl.Laplace(f, 1.0), y))(f, y)
        diff = np.asarray(y, np.float64) - np.asarray(f, np.float64)
        np.testing.assert_allclose(got, np.mean(np.abs(diff).sum(1)) + 2 * np.log(2), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("nll", "mse", "mae")
    def test_empty_data_raises_naming_the_shape(self, name):
        empty = jnp.zeros((0, 2))
        with pytest.raises(ValueError, match=rf"{name}: .*\[0, 2\].*no examples"):
            self.variant(_COSTS[name])(empty, empty)


def test_absolute_error_loss_is_mae_of_the_mean():
    f, y = (jnp.asarray(RNG.normal(size=(6, 2)), jnp.float32) for _ in range(2))
    np.testing.assert_allclose(
        gbl.absolute_error(gbl.Laplace(f, 1.0), y),
        np.abs(np.asarray(f - y)).sum(1).mean(),
        rtol=1e-6,
    )


def test_nll_reduction_is_mean_over_axis_zero_of_sum_over_the_rest():
    logits = jnp.asarray(RNG.normal(size=(4, 5, 3)), jnp.float32)
    y = jnp.asarray(RNG.integers(0, 3, (4, 5)))
    lp = np.asarray(gbl.log_prob(gbl.Categorical(logits), y))
    np.testing.assert_allclose(gbl.nll(gbl.Categorical(logits), y), -lp.sum(1).mean(), rtol=1e-6)


def test_nll_accepts_distrax_and_catches_its_silent_broadcasting():
    loc, y = (
        jnp.asarray(RNG.normal(size=(5,)), jnp.float32),
        jnp.asarray(RNG.normal(size=(5,)), jnp.float32),
    )
    np.testing.assert_allclose(
        gbl.nll(distrax.Normal(loc, 1.0), y), gbl.nll(gbl.Normal(loc, 1.0), y), rtol=1e-6
    )
    # Under the default rank promotion ("allow") distrax broadcasts [5, 1] against [5] to [5, 5].
    with jax.numpy_rank_promotion("allow"), pytest.raises(ValueError, match=r"\[5, 5\].*\[5\]"):
        gbl.nll(distrax.Normal(loc[:, None], 1.0), y)


def test_nll_needs_an_example_axis():
    with pytest.raises(ValueError, match="example axis"):
        gbl.nll(gbl.Normal(0.0, 1.0), jnp.float32(0.0))


def test_minimisers_are_mean_and_median_on_skewed_data():
    # Its own generator: the data must not depend on which tests ran before.
    y = (
        np.random.default_rng(2).exponential(size=(501, 1)).astype(np.float32)
    )  # mean 1, median log 2
    as_pred = lambda c: jnp.full_like(y, c)
    c_mse = optimize.minimize_scalar(
        lambda c: float(gbl.mse(as_pred(c), y)),
        bounds=(0, 5),
        method="bounded",
        options={"xatol": 1e-6},
    ).x
    np.testing.assert_allclose(c_mse, y.mean(), atol=1e-4)
    # The MAE is piecewise linear with kinks at the data and nearly flat around the median, where
    # a line search stalls on float32 rounding; its minimum is a sample, so search the samples.
    maes = jax.vmap(lambda c: gbl.mae(as_pred(c), y))(jnp.asarray(y[:, 0]))
    np.testing.assert_allclose(y[int(jnp.argmin(maes)), 0], np.median(y), atol=1e-3)
    assert abs(y.mean() - np.median(y)) > 0.2


def test_mse_and_mae_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\[5, 1\].*\[5\]"):
        gbl.mse(jnp.zeros((5, 1)), jnp.zeros(5))
    with pytest.raises(ValueError, match=r"\[3\].*\[4\]"):
        gbl.mae(jnp.zeros(3), jnp.zeros(4))


def test_squared_error_behind_sigmoid_and_softmax():
    z = jnp.asarray([-3.0, 0.0, 2.0])
    y = jnp.asarray([1.0, 0.0, 1.0])
    expected = np.mean((1 / (1 + np.exp(-np.asarray(z))) - np.asarray(y)) ** 2)
    np.testing.assert_allclose(gbl.squared_error(gbl.Bernoulli(z), y), expected, rtol=1e-6)
    logits = jnp.asarray([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    labels = jnp.asarray([0, 2])
    p = np.asarray(jax.nn.softmax(logits))
    onehot = np.eye(3)[[0, 2]]
    np.testing.assert_allclose(
        gbl.squared_error(gbl.Categorical(logits), labels),
        np.mean(np.sum((p - onehot) ** 2, 1)),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="shape"):
        gbl.squared_error(gbl.Categorical(logits), jnp.zeros((2, 3), jnp.int32))


def test_accuracy_counts_the_most_probable_class():
    logits = jnp.asarray([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 1.0, 0.0]])
    y = jnp.asarray([0, 2, 2, 1])
    # rows 0 and 2 right; row 3 is a tie, which goes to the lowest index (0), so wrong
    assert float(gbl.accuracy(gbl.Categorical(logits), y)) == 0.5
    z = jnp.asarray([-1.0, 2.0, 0.0, 3.0])
    assert float(gbl.accuracy(gbl.Bernoulli(z), jnp.asarray([0.0, 1.0, 1.0, 0.0]))) == 0.5
    with pytest.raises(ValueError, match="Bernoulli or Categorical"):
        gbl.accuracy(gbl.Normal(z, 1.0), z)
    with pytest.raises(ValueError):
        gbl.accuracy(gbl.Categorical(logits), y[:3])
