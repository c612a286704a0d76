"""Output units: shapes, parameterization, min_scale, and feature-shape errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gbl_jax as gbl

KEY = jax.random.PRNGKey(0)
H = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32)


@pytest.mark.parametrize(
    "head, cls, batch, event",
    [
        (gbl.heads.gaussian(2), gbl.Normal, (5, 2), ()),
        (gbl.heads.heteroscedastic_gaussian(2), gbl.Normal, (5, 2), ()),
        (gbl.heads.laplace(3), gbl.Laplace, (5, 3), ()),
        (gbl.heads.laplace(3, learn_scale=True), gbl.Laplace, (5, 3), ()),
        (gbl.heads.bernoulli(), gbl.Bernoulli, (5,), ()),
        (gbl.heads.categorical(4), gbl.Categorical, (5,), ()),
        (gbl.heads.mixture_density(3, 2), gbl.MixtureNormal, (5,), (2,)),
    ],
)
def test_heads_map_features_to_distributions(head, cls, batch, event):
    params = head.init(KEY, 4)
    assert params["w"].shape == (4, head.out_dim) and params["b"].shape == (head.out_dim,)
    dist = jax.jit(head.apply)(params, H)
    assert isinstance(dist, cls)
    assert dist.batch_shape == batch and tuple(dist.event_shape) == event
    sample = dist.sample(KEY)
    assert np.isfinite(
        float(gbl.nll(dist, sample.astype(jnp.int32) if cls is gbl.Categorical else sample))
    )


def test_learned_scales_follow_the_documented_parameterization():
    head = gbl.heads.heteroscedastic_gaussian(1, min_scale=0.05)
    params = head.init(KEY, 4)
    raw = H @ params["w"] + params["b"][None]
    dist = head.apply(params, H)
    np.testing.assert_allclose(dist.loc, raw[:, :1], rtol=1e-6)
    np.testing.assert_allclose(dist.scale, 0.05 + jax.nn.softplus(raw[:, 1:]), rtol=1e-6)
    exp_head = gbl.heads.heteroscedastic_gaussian(1, min_scale=0.0, positive="exp")
    np.testing.assert_allclose(exp_head.apply(params, H).scale, jnp.exp(raw[:, 1:]), rtol=1e-6)


def test_min_scale_bounds_the_density():
    """With min_scale the NLL is bounded below by (1/2) log(2 pi) + log(min_scale)."""
    params = {"w": jnp.zeros((4, 2)), "b": jnp.asarray([0.0, -1e4])}
    y = jnp.zeros((5, 1))
    floored = gbl.nll(gbl.heads.heteroscedastic_gaussian(1, min_scale=1e-3).apply(params, H), y)
    np.testing.assert_allclose(floored, 0.5 * np.log(2 * np.pi) + np.log(1e-3), rtol=1e-5)
    unguarded = gbl.nll(gbl.heads.heteroscedastic_gaussian(1, min_scale=0.0).apply(params, H), y)
    assert unguarded == -np.inf


def test_mixture_head_returns_logits_and_positive_scales():
    head = gbl.heads.mixture_density(3, 2, min_scale=0.01)
    params = head.init(KEY, 4)
    params = {"w": params["w"], "b": params["b"].at[:3].set(jnp.asarray([100.0, 0.0, -100.0]))}
    d = head.apply(params, H)
    assert float(jnp.max(d.logits)) > 50  # raw logits, not probabilities
    assert float(jnp.min(d.scale)) >= 0.01


def test_heads_reject_bad_features_and_sizes():
    head = gbl.heads.categorical(3)
    params = head.init(KEY, 4)
    with pytest.raises(ValueError, match=r"\[N, 4\].*\[5, 3\]"):
        head.apply(params, jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"\[N, 4\].*\[4\]"):
        head.apply(params, jnp.zeros(4))
    with pytest.raises(ValueError, match="classes"):
        gbl.heads.categorical(1)
    with pytest.raises(ValueError, match="min_scale"):
        gbl.heads.mixture_density(2, 1, min_scale=-1.0)
    with pytest.raises(ValueError, match="positive"):
        gbl.heads.heteroscedastic_gaussian(1, positive="relu")
