"""Closed-form unit gradients against jax.grad, and the saturation report."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gbl_jax as gbl
from gbl_jax.probability import diagnostics

RNG = np.random.default_rng(2)


def _per_example_grad(loss, z, y):
    return jax.vmap(jax.grad(loss))(z, y)


def test_sigmoid_and_softmax_gradients():
    z = jnp.asarray(RNG.normal(0, 4, 8), jnp.float32)
    y = jnp.asarray(RNG.integers(0, 2, 8), jnp.float32)
    auto = _per_example_grad(lambda a, b: -gbl.Bernoulli(a).log_prob(b), z, y)
    np.testing.assert_allclose(diagnostics.sigmoid_nll_grad(z, y), auto, atol=1e-6)
    logits = jnp.asarray(RNG.normal(0, 4, (8, 5)), jnp.float32)
    labels = jnp.asarray(RNG.integers(0, 5, 8))
    auto = _per_example_grad(lambda a, b: -gbl.Categorical(a).log_prob(b), logits, labels)
    np.testing.assert_allclose(diagnostics.softmax_nll_grad(logits, labels), auto, atol=1e-6)


def test_gaussian_mean_and_log_scale_gradients():
    loc, y = (jnp.asarray(RNG.normal(size=8), jnp.float32) for _ in range(2))
    log_scale = jnp.asarray(RNG.normal(size=8), jnp.float32)
    nll = lambda m, ls, t: -gbl.Normal(m, jnp.exp(ls)).log_prob(t)
    g_loc, g_log_scale = jax.vmap(jax.grad(nll, argnums=(0, 1)))(loc, log_scale, y)
    np.testing.assert_allclose(
        diagnostics.gaussian_mean_nll_grad(loc, jnp.exp(log_scale), y), g_loc, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        diagnostics.gaussian_log_scale_nll_grad(loc, jnp.exp(log_scale), y),
        g_log_scale,
        rtol=1e-5,
        atol=1e-5,
    )


def test_mixture_gradients_match_autodiff():
    n, k, d = 6, 3, 2
    logits = jnp.asarray(RNG.normal(size=(n, k)), jnp.float32)
    loc = jnp.asarray(RNG.normal(size=(n, k, d)), jnp.float32)
    log_scale = jnp.asarray(RNG.normal(0, 0.3, (n, k, d)), jnp.float32)
    y = jnp.asarray(RNG.normal(size=(n, d)), jnp.float32)
    total = lambda a, m, s: -jnp.sum(gbl.MixtureNormal(a, m, jnp.exp(s)).log_prob(y))
    g = jax.grad(total, argnums=(0, 1, 2))(logits, loc, log_scale)
    closed = diagnostics.mixture_nll_grads(gbl.MixtureNormal(logits, loc, jnp.exp(log_scale)), y)
    np.testing.assert_allclose(closed.responsibilities.sum(-1), np.ones(n), rtol=1e-6)
    for auto, mine in zip(g, (closed.logits, closed.loc, closed.log_scale)):
        np.testing.assert_allclose(mine, auto, rtol=1e-4, atol=1e-5)


def test_saturation_report_shows_the_case_for_cross_entropy():
    report = diagnostics.saturation_report(
        jnp.asarray([-10.0, 0.0, 10.0]), jnp.asarray([1.0, 1.0, 1.0])
    )
    s = 1 / (1 + np.exp(10.0))
    # Confidently wrong: NLL gives sigma(z) - 1 ~ -1; squared error gives 2 (sigma - 1) sigma (1 - sigma).
    np.testing.assert_allclose(report.nll_grad_norm[0], 1 - s, rtol=1e-5)
    np.testing.assert_allclose(
        report.squared_error_grad_norm[0], 2 * (1 - s) * s * (1 - s), rtol=1e-4
    )
    assert report.ratio[0] > 1e4
    np.testing.assert_allclose(report.ratio[1], 2.0, rtol=1e-6)
    assert "ratio" in report.table()
    soft = diagnostics.saturation_report(
        jnp.asarray([[10.0, -10.0, 0.0]]), jnp.asarray([1]), unit="softmax"
    )
    assert soft.ratio[0] > 1e3
    with pytest.raises(ValueError, match="sigmoid"):
        diagnostics.saturation_report(jnp.zeros((2, 3)), jnp.zeros(2))
    with pytest.raises(ValueError, match="unit"):
        diagnostics.saturation_report(jnp.zeros(2), jnp.zeros(2), unit="tanh")
