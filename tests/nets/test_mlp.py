"""The MLP: structure, activations, the GLM special case, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gbl_jax as gbl


def test_mlp_params_are_a_plain_pytree_with_the_stated_shapes():
    model = gbl.mlp([5, 3], gbl.heads.categorical(4))
    params = model.init(jax.random.PRNGKey(0), 2)
    shapes = jax.tree.map(lambda a: a.shape, params)
    assert shapes == {
        "hidden": [{"w": (2, 5), "b": (5,)}, {"w": (5, 3), "b": (3,)}],
        "head": {"w": (3, 4), "b": (4,)},
    }
    dist = model.apply(params, jnp.ones((7, 2)))
    assert isinstance(dist, gbl.Categorical) and dist.logits.shape == (7, 4)


def test_mlp_computes_the_documented_function():
    model = gbl.mlp([3], gbl.heads.gaussian(1), activation="relu")
    params = model.init(jax.random.PRNGKey(1), 2)
    x = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    h = np.maximum(
        x @ np.asarray(params["hidden"][0]["w"]) + np.asarray(params["hidden"][0]["b"]), 0
    )
    expected = h @ np.asarray(params["head"]["w"]) + np.asarray(params["head"]["b"])
    np.testing.assert_allclose(model.apply(params, x).loc, expected, rtol=1e-5, atol=1e-6)


def test_empty_hidden_is_a_generalized_linear_model():
    model = gbl.mlp((), gbl.heads.bernoulli())
    params = model.init(jax.random.PRNGKey(0), 3)
    assert params["hidden"] == [] and params["head"]["w"].shape == (3, 1)


@pytest.mark.parametrize(
    "activation", ["tanh", "relu", "sigmoid", "softplus", "gelu", "identity", jnp.sin]
)
def test_activations_by_name_or_callable(activation):
    model = gbl.mlp([4], gbl.heads.gaussian(1), activation=activation, init="orthogonal")
    params = model.init(jax.random.PRNGKey(0), 2)
    assert model.apply(params, jnp.ones((3, 2))).loc.shape == (3, 1)


def test_init_scheme_applies_to_every_weight_including_the_head():
    model = gbl.mlp([4, 4], gbl.heads.gaussian(1), init=gbl.inits.normal(0.0))
    params = model.init(jax.random.PRNGKey(0), 2)
    assert all(not np.any(leaf) for leaf in jax.tree.leaves(params))


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match="hidden widths"):
        gbl.mlp([4, 0], gbl.heads.bernoulli())
    with pytest.raises(ValueError, match="activation"):
        gbl.mlp([4], gbl.heads.bernoulli(), activation="swishy")
    with pytest.raises(ValueError, match="init"):
        gbl.mlp([4], gbl.heads.bernoulli(), init="xavier")
    model = gbl.mlp([4], gbl.heads.bernoulli())
    params = model.init(jax.random.PRNGKey(0), 2)
    with pytest.raises(ValueError, match=r"\[N, 2\].*\[5, 3\]"):
        model.apply(params, jnp.zeros((5, 3)))
