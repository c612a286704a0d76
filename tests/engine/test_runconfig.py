"""A run's checks before anything compiles: what the user's model does wrong, said in one line."""

import jax
import jax.numpy as jnp
import numpy as np
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
    model = gbl.Model(
        lambda k, x: {"n": jnp.int32(3)}, lambda p, x: gbl.Categorical(jnp.zeros((x.shape[0], 2)))
    )
    with pytest.raises(ValueError, match=r"floating arrays.*\['int32'\]"):
        _train(model)


def test_whatever_the_users_code_raises_is_one_line_naming_the_call():
    def apply(p, x):
        raise RuntimeError("no such layer\nsecond line")

    with pytest.raises(
        ValueError,
        match=r"model.apply\(params, x\) failed for x \[6, 3\]: "
        r"RuntimeError: no such layer$",
    ) as err:
        _train(gbl.Model(_init, apply))
    assert isinstance(err.value.__cause__, RuntimeError)  # the traceback is still there

    def init(key, x):
        raise KeyError("w")

    with pytest.raises(ValueError, match=r"model.init\(key, x\) failed .*KeyError"):
        _train(gbl.Model(init, apply))


def test_key_must_be_a_prng_key_not_an_int():
    model = gbl.Model(_init, lambda p, x: gbl.Categorical(x @ p["w"]))
    for key in (0, jnp.zeros(3, jnp.uint32), jax.random.split(jax.random.key(0), 2)):
        with pytest.raises(ValueError, match=r"key must be one jax.random.PRNGKey\(seed\)"):
            gbl.train(model, optax.sgd(0.1), DATA, key=key, steps=2)
    with pytest.raises(ValueError, match=r"key must be one jax.random.PRNGKey\(seed\).*got 0"):
        gbl.sweep(model, optax.sgd(0.1), DATA, key=0, seeds=2, steps=2)


def test_non_numeric_data_and_integer_dtypes_are_refused_in_one_line():
    model = gbl.Model(_init, lambda p, x: gbl.Categorical(x @ p["w"]))
    with pytest.raises(ValueError, match=r"y must hold numbers.*<U1"):
        gbl.train(
            model, optax.sgd(0.1), (DATA[0], list("abcdef")), key=jax.random.PRNGKey(0), steps=2
        )
    with pytest.raises(ValueError, match=r"x must hold numbers"):
        gbl.train(
            model,
            optax.sgd(0.1),
            (np.asarray(DATA[0]).astype(str), DATA[1]),
            key=jax.random.PRNGKey(0),
            steps=2,
        )
    for dtype in ("int32", bool, "not a dtype"):
        with pytest.raises(ValueError, match=r"dtype must be a floating dtype"):
            gbl.train(model, optax.sgd(0.1), DATA, key=jax.random.PRNGKey(0), steps=2, dtype=dtype)


def test_hyperparameters_that_would_train_wrong_are_refused():
    model = gbl.Model(_init, lambda p, x: gbl.Categorical(x @ p["w"]))
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    run = lambda **kw: gbl.train(model, opt, DATA, key=jax.random.PRNGKey(0), steps=2, **kw)  # noqa
    with pytest.raises(ValueError, match=r"learning_rate must be > 0.*-0\.05"):
        run(hyperparams={"learning_rate": -0.05})  # gradient ascent
    with pytest.raises(ValueError, match=r"init_scale must be >= 0.*-0\.5"):
        run(hyperparams={"init_scale": -0.5})
    with pytest.raises(ValueError, match=r"learning_rate.*1e-46 is 0 in float32"):
        run(hyperparams={"learning_rate": 1e-46})
    with pytest.raises(ValueError, match=r"momentum.*1e\+39 is inf in float32"):
        gbl.train(
            model,
            optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9),
            DATA,
            key=jax.random.PRNGKey(0),
            steps=2,
            hyperparams={"momentum": 1e39},
        )
    with pytest.raises(ValueError, match=r"init_scale.*1e-08 is 0 in float16"):
        run(hyperparams={"init_scale": 1e-8}, dtype="float16")


def test_one_walk_reads_and_sets_every_inject_hyperparams_state():
    from gbl_jax.engine import runconfig

    params = {"w": jnp.zeros(3)}
    adam = optax.inject_hyperparams(optax.adam)(learning_rate=0.1, b1=0.9)
    sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5, momentum=0.8)
    state = (adam.init(params), [sgd.init(params)])  # a tuple holding a list, as chains nest
    names = set(state[0].hyperparams) | set(state[1][0].hyperparams)  # the two dicts, by hand
    assert runconfig.hyper_names(state) == names and {"b1", "momentum"} <= names
    new = runconfig.set_hyperparams(state, {"learning_rate": 0.25, "momentum": 3})
    # read back by hand, the two states' own dicts
    adam, sgd = new[0].hyperparams, new[1][0].hyperparams
    assert float(adam["learning_rate"]) == 0.25 and float(sgd["learning_rate"]) == 0.25
    assert (
        float(sgd["momentum"]) == 3.0
        and sgd["momentum"].dtype == state[1][0].hyperparams["momentum"].dtype
    )
    assert float(adam["b1"]) == np.float32(0.9) and "momentum" not in adam
    assert type(new) is type(state) and isinstance(new[1], list)
    assert jax.tree.structure(new) == jax.tree.structure(state)


def test_a_typed_key_is_told_from_a_raw_one():
    from gbl_jax.engine import runconfig

    assert runconfig.is_typed_key(jax.random.key(0))
    assert not runconfig.is_typed_key(jax.random.PRNGKey(0))
    assert not runconfig.is_typed_key(np.zeros(2, np.uint32))


def test_a_number_float32_cannot_hold_is_refused_by_name():
    from gbl_jax.engine import runconfig

    runconfig.check_representable("tol", 0.0)  # an exact 0 is 0 in every dtype
    runconfig.check_representable("tol", 1e-45)  # the smallest subnormal, rounded up
    with pytest.raises(ValueError, match=r"^--tol: 1e-46 is 0 in float32, so the run would train"):
        runconfig.check_representable("--tol", 1e-46)
    with pytest.raises(ValueError, match=r"^x: 70000\.0 is inf in float16"):
        runconfig.check_representable("x", 7e4, (np.dtype(np.float16),))
