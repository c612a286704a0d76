"""Init schemes have the stated variance (statistical checks on a large layer)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gbl_jax.nets import inits

SHAPE = (400, 600)
FAN_IN, FAN_OUT = SHAPE


@pytest.mark.parametrize(
    "name, std",
    [
        ("glorot_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("glorot_uniform", math.sqrt(2 / (FAN_IN + FAN_OUT))),  # U(-a, a) has variance a^2 / 3
        ("he_normal", math.sqrt(2 / FAN_IN)),
        ("he_uniform", math.sqrt(2 / FAN_IN)),
        ("lecun_normal", math.sqrt(1 / FAN_IN)),
    ],
)
def test_schemes_have_the_stated_std(name, std):
    w = np.asarray(inits.get_init(name)(jax.random.PRNGKey(0), SHAPE))
    assert w.shape == SHAPE and w.dtype == np.float32
    # 240k draws: the sample std is within ~0.3% of the truth; 2% would catch a wrong formula.
    np.testing.assert_allclose(w.std(), std, rtol=0.02)
    assert abs(w.mean()) < 5 * std / math.sqrt(w.size)
    if name.endswith("uniform"):
        assert np.abs(w).max() <= std * math.sqrt(3) * (1 + 1e-6)
        assert np.abs(w).max() > 0.99 * std * math.sqrt(3)


def test_factories_zeros_and_orthogonal():
    key = jax.random.PRNGKey(1)
    np.testing.assert_allclose(np.std(inits.normal(0.3)(key, SHAPE)), 0.3, rtol=0.02)
    u = np.asarray(inits.uniform(0.5)(key, SHAPE))
    assert u.min() >= -0.5 and u.max() <= 0.5 and u.max() > 0.49
    assert not np.any(inits.zeros(key, (3, 4)))
    q = np.asarray(inits.orthogonal(key, (64, 32)))
    np.testing.assert_allclose(q.T @ q, np.eye(32), atol=1e-5)


def test_unknown_scheme_and_bad_factories_raise():
    with pytest.raises(ValueError, match="glorot_normal"):
        inits.get_init("xavier")
    with pytest.raises(ValueError, match="std"):
        inits.normal(-1.0)
    with pytest.raises(ValueError, match=r"\[in, out\].*\[7\]"):
        inits.he_normal(jax.random.PRNGKey(0), (7,))
    custom = lambda key, shape, dtype=jnp.float32: jnp.full(shape, 0.25, dtype)
    assert inits.get_init(custom) is custom


KERNEL = (5, 80, 120)  # a 1-D conv kernel [width, in, out]: fan_in = 5 * 80, fan_out = 5 * 120


@pytest.mark.parametrize(
    "name, std",
    [
        ("glorot_normal", math.sqrt(2 / (5 * 80 + 5 * 120))),
        ("glorot_uniform", math.sqrt(2 / (5 * 80 + 5 * 120))),
        ("he_normal", math.sqrt(2 / (5 * 80))),
        ("he_uniform", math.sqrt(2 / (5 * 80))),
        ("lecun_normal", math.sqrt(1 / (5 * 80))),
    ],
)
def test_conv_kernel_fans_count_the_window(name, std):
    w = np.asarray(inits.get_init(name)(jax.random.PRNGKey(0), KERNEL))
    assert w.shape == KERNEL
    # 48k draws: within ~0.7%; leaving out the window (fans 80, 120) would be off by sqrt(5)
    np.testing.assert_allclose(w.std(), std, rtol=0.03)


def test_orthogonal_conv_kernel_has_orthonormal_columns_over_window_and_inputs():
    w = np.asarray(inits.orthogonal(jax.random.PRNGKey(0), (5, 8, 30))).reshape(40, 30)
    np.testing.assert_allclose(w.T @ w, np.eye(30), atol=1e-5)
