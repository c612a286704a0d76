"""A run's checks before anything compiles: what the user's model does wrong, said in one line."""

import jax
import jax.numpy as jnp
import optax
import pytest

import gbl_jax as gbl

DATA = (jnp.ones((6, 3)), jnp.arange(6) % 2)


def _train(model, loss=gbl.nll):
    return gbl.train(model, optax.sgd(0.1), DATA, key=jax.random.PRNGKey(0), steps=2, loss=loss)


def _init(key, x):
    return {"w": jnp.zeros((x.shape[1], 2))}


def test_an_apply_that_returns_an_array_is_told_what_nll_needs():
    model = gbl.Model(_init, lambda p, x: x @ p["w"])
    with pytest.raises(ValueError, match=r"returned an array \[6, 2\], which has no log_prob"):
        _train(model)
    # a loss that reads the array is the user's choice, and trains
    res = _train(model, loss=lambda out, y: jnp.mean((out[:, 0] - y) ** 2))
    assert res.losses.shape == (2,)


def test_params_must_be_floating_arrays():
    model = gbl.Model(lambda k, x: {"n": jnp.int32(3)},
                      lambda p, x: gbl.Categorical(jnp.zeros((x.shape[0], 2))))
    with pytest.raises(ValueError, match=r"floating arrays.*\['int32'\]"):
        _train(model)


def test_whatever_the_users_code_raises_is_one_line_naming_the_call():
    def apply(p, x):
        raise RuntimeError("no such layer\nsecond line")

    with pytest.raises(ValueError, match=r"model.apply\(params, x\) failed for x \[6, 3\]: "
                                         r"RuntimeError: no such layer$") as err:
        _train(gbl.Model(_init, apply))
    assert isinstance(err.value.__cause__, RuntimeError)   # the traceback is still there

    def init(key, x):
        raise KeyError("w")

    with pytest.raises(ValueError, match=r"model.init\(key, x\) failed .*KeyError"):
        _train(gbl.Model(init, apply))
