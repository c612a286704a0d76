"""The dense layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gbl_jax.nets.layers import dense_apply, dense_init


def test_dense_is_affine_with_zero_bias_at_init():
    params = dense_init(jax.random.PRNGKey(0), 3, 2)
    assert params["w"].shape == (3, 2) and not np.any(params["b"])
    h = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
    params = {"w": params["w"], "b": jnp.asarray([1.0, -2.0])}
    np.testing.assert_allclose(
        dense_apply(params, h), np.asarray(h) @ np.asarray(params["w"]) + [1.0, -2.0], rtol=1e-6
    )


def test_dense_rejects_bad_shapes():
    params = dense_init(jax.random.PRNGKey(0), 3, 2)
    with pytest.raises(ValueError, match=r"\[N, 3\].*\[4, 2\]"):
        dense_apply(params, jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="positive"):
        dense_init(jax.random.PRNGKey(0), 0, 2)
