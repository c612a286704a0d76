"""MultivariateNormalTriL: against scipy, exact or -inf (never NaN) at subnormal and overflowing
inputs, and ``validate`` refusing what float32 cannot hold."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from scipy import linalg, stats

import gbl_jax as gbl

RNG = np.random.default_rng(2)
N = 6


def _f32(x):
    return jnp.asarray(x, jnp.float32)


def _assert_no_nan(tree):
    for leaf in jax.tree.leaves(tree):
        assert not np.any(np.isnan(leaf)), tree


def _random_tril(n, d):
    """Cholesky factors of random well-conditioned covariances, [n, d, d]."""
    a = RNG.normal(size=(n, d, d))
    return np.linalg.cholesky(a @ a.transpose(0, 2, 1) + 0.5 * np.eye(d))


def test_multivariate_normal_matches_scipy():
    loc, tril, y = RNG.normal(size=(N, 3)), _random_tril(N, 3), RNG.normal(size=(N, 3))
    got = gbl.MultivariateNormalTriL(_f32(loc), _f32(tril)).log_prob(_f32(y))
    expected = [
        stats.multivariate_normal.logpdf(y[i], loc[i], tril[i] @ tril[i].T) for i in range(N)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # A shared [D, D] factor is broadcast over the batch.
    shared = gbl.MultivariateNormalTriL(_f32(loc), _f32(tril[0])).log_prob(_f32(y))
    expected0 = [
        stats.multivariate_normal.logpdf(y[i], loc[i], tril[0] @ tril[0].T) for i in range(N)
    ]
    np.testing.assert_allclose(shared, expected0, rtol=1e-4, atol=1e-4)


def _mvn_log_prob_and_grad(loc, tril, y):
    return jax.value_and_grad(lambda p: gbl.MultivariateNormalTriL(*p).log_prob(y))((loc, tril))


def _mvn_reference(tril, y):
    """float64 log N(y; 0, L L^T) from the float32 inputs."""
    tril, y = np.asarray(tril, np.float64), np.asarray(y, np.float64)
    white = linalg.solve_triangular(tril, y, lower=True)
    return -0.5 * white @ white - np.log(np.abs(np.diag(tril))).sum() - np.log(2 * np.pi)


class TestMultivariateNormalExtremes(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(
        (1e-38, [0.0, 0.0]),
        (1e-38, [1e-38, 0.0]),
        (1e-38, [1.0, 0.0]),
        (1e-30, [1e-30, 0.5]),
        (1.0, [1e20, 0.0]),
    )
    def test_tiny_diagonal_is_exact_or_minus_inf(self, diag, y):
        """1e-38 is subnormal in float32, which XLA reads as 0 unless handled bit by bit."""
        tril, y = _f32([[diag, 0.0], [0.5, 1.0]]), _f32(y)
        value, (g_loc, g_tril) = self.variant(_mvn_log_prob_and_grad)(jnp.zeros(2), tril, y)
        expected = _mvn_reference(tril, y)
        _assert_no_nan((value, g_loc, g_tril))
        if expected < -np.finfo(np.float32).max:
            assert value == -np.inf
            np.testing.assert_array_equal(g_loc, 0.0)
        else:
            np.testing.assert_allclose(value, expected, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_constant_folding_agrees(self):
        """Closed over, the inputs are constants, which XLA folds without flushing subnormals."""
        tril, y = _f32([[1e-38, 0.0], [0.5, 1.0]]), _f32([1e-38, 0.0])
        folded = self.variant(lambda: gbl.MultivariateNormalTriL(jnp.zeros(2), tril).log_prob(y))()
        np.testing.assert_allclose(folded, _mvn_reference(tril, y), rtol=1e-6)


def test_multivariate_normal_validate_rejects_what_float32_cannot_hold():
    with pytest.raises(ValueError, match="subnormal"):
        gbl.validate(gbl.MultivariateNormalTriL(jnp.zeros(2), _f32([[1e-38, 0.0], [0.5, 1.0]])))
    d = gbl.MultivariateNormalTriL(jnp.zeros(2), _f32([[1e-30, 0.0], [0.5, 1.0]]))
    gbl.validate(d, _f32([1e-30, 0.5]))
    with pytest.raises(ValueError, match=r"beyond the float32 range.*1 of 1"):
        gbl.validate(d, _f32([1.0, 0.0]))
