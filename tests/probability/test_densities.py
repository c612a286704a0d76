"""The closed-form log densities against scipy, their edge values, and the shared checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from gbl_jax.probability import densities, family_rules

RNG = np.random.default_rng(3)


def test_log_densities_match_scipy():
    loc, scale, y = RNG.normal(size=7), RNG.uniform(0.1, 3, 7), RNG.normal(size=7)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    np.testing.assert_allclose(
        densities.normal_logpdf(f32(y), f32(loc), f32(scale)),
        stats.norm.logpdf(y, loc, scale),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        densities.laplace_logpdf(f32(y), f32(loc), f32(scale)),
        stats.laplace.logpdf(y, loc, scale),
        rtol=1e-5,
        atol=1e-6,
    )
    z, label = RNG.normal(0, 4, 7), RNG.integers(0, 2, 7)
    np.testing.assert_allclose(
        densities.bernoulli_log_prob(f32(z), f32(label)),
        stats.bernoulli.logpmf(label, special.expit(z)),
        rtol=1e-5,
        atol=1e-6,
    )
    logits, labels = RNG.normal(0, 3, (7, 4)), RNG.integers(0, 4, 7)
    np.testing.assert_allclose(
        densities.categorical_log_prob(f32(logits), jnp.asarray(labels)),
        special.log_softmax(logits, -1)[np.arange(7), labels],
        rtol=1e-5,
        atol=1e-6,
    )


def test_edge_values_are_limits_not_nan():
    # a zero scale is a point mass; a negative one is NaN (no density)
    lp = densities.normal_logpdf(jnp.asarray([0.0, 1.0, 0.0]), 0.0, jnp.asarray([0.0, 0.0, -1.0]))
    assert lp[0] == np.inf and lp[1] == -np.inf and np.isnan(lp[2])
    # infinite logits are exact; labels outside [0, 1] or [0, K) give -inf
    bern = densities.bernoulli_log_prob(
        jnp.asarray([np.inf, -np.inf, 0.0]), jnp.asarray([1.0, 1.0, 2.0])
    )
    np.testing.assert_array_equal(bern, [0.0, -np.inf, -np.inf])
    cat = densities.categorical_log_prob(jnp.zeros((2, 3)), jnp.asarray([3, -1]))
    np.testing.assert_array_equal(cat, [-np.inf, -np.inf])
    # the gradient of the sigmoid unit is y - sigmoid(z), also deep in saturation
    g = jax.grad(lambda z: densities.bernoulli_log_prob(z, 1.0))(jnp.float32(-30.0))
    assert float(g) == pytest.approx(1.0)


def test_value_shapes_must_match_exactly():
    family_rules.check_value_shape("Normal", (3, 2), jnp.zeros((3, 2)))
    with pytest.raises(
        ValueError,
        match=r"Normal: y has shape \[3\] but the distribution expects "
        r"\[3, 2\].*no broadcasting",
    ):
        family_rules.check_value_shape("Normal", (3, 2), jnp.zeros(3))
    assert family_rules.common_shape("Normal", loc=jnp.zeros((4, 2)), scale=1.0) == (4, 2)
    with pytest.raises(ValueError, match="Normal"):
        family_rules.common_shape("Normal", loc=jnp.zeros((4, 2)), scale=jnp.ones(3))


def test_bernoulli_shares_one_softplus_with_the_values_and_derivatives_of_two():
    # both softplus terms come from one exp(-|z|) and one log1p; the values are jax.nn.softplus's
    # bit for bit, the first and second derivatives sigmoid's, also at z = 0 where an abs-based
    # form has second derivative 0 (curvature's Hessians would be wrong there)
    z = jnp.asarray([-100.0, -20.0, -3.0, -1e-3, 0.0, 1e-3, 2.0, 20.0, 100.0], jnp.float32)
    for y in (0.0, 1.0, 0.3):
        two = -(y * jax.nn.softplus(-z) + (1.0 - y) * jax.nn.softplus(z))
        np.testing.assert_array_equal(densities.bernoulli_log_prob(z, y), two)
        grad = jax.vmap(jax.grad(lambda t: densities.bernoulli_log_prob(t, y)))(z)
        np.testing.assert_allclose(grad, y - special.expit(np.asarray(z, np.float64)), atol=1e-7)
        hess = jax.vmap(jax.grad(jax.grad(lambda t: densities.bernoulli_log_prob(t, y))))(z)
        s = special.expit(np.asarray(z, np.float64))
        np.testing.assert_allclose(hess, -s * (1 - s), atol=1e-7)
        assert float(hess[4]) == pytest.approx(-0.25)
    # the gradient at an infinite logit: y - sigmoid(+-inf), not NaN
    g = jax.vmap(jax.grad(lambda t: densities.bernoulli_log_prob(t, 1.0)))(
        jnp.asarray([np.inf, -np.inf])
    )
    np.testing.assert_array_equal(g, [0.0, 1.0])
