"""Probes along training: sharpness against jax.hessian's top eigenvalue, the others by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import gbl_jax as gbl

KEY = jax.random.PRNGKey(0)
SPIRALS = gbl.problems.two_spirals(jax.random.PRNGKey(1), 48)
_x = jax.random.normal(jax.random.PRNGKey(2), (60, 2))
CLASSES = (_x, jnp.argmax(_x @ jnp.asarray([[1.0, -1.0, 0.3], [0.5, 1.0, -1.0]]), axis=1))
# 100 products a window: the softmax net's top two eigenvalues are 5% apart (0.539, 0.567)
PROBES = {
    "sharpness": gbl.probes.sharpness(iters=100),
    "grad_norm": gbl.probes.grad_norm(),
    "distance": gbl.probes.distance_from_init(),
}
CASES = {
    "sigmoid": (gbl.mlp([6], gbl.heads.bernoulli()), SPIRALS),
    "softmax": (gbl.mlp([5], gbl.heads.categorical(3)), CLASSES),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    model, data = CASES[request.param]
    out = gbl.sweep(
        model,
        optax.sgd(0.5),
        data,
        key=KEY,
        seeds=3,
        steps=60,
        log_every=10,
        probes=PROBES,
        keep_params=True,
    )
    return model, data, out


def _objective(model, data, params):
    flat, unravel = ravel_pytree(params)
    return flat, lambda f: gbl.nll(model.apply(unravel(f), data[0]), data[1])


def test_sharpness_is_the_top_hessian_eigenvalue(case):
    model, data, out = case
    assert out.probes["sharpness"].shape == (3, 6)
    for s in range(3):
        flat, objective = _objective(model, data, jax.tree.map(lambda a: a[s], out.params))
        top = np.linalg.eigvalsh(np.asarray(jax.hessian(objective)(flat), np.float64)).max()
        np.testing.assert_allclose(out.probes["sharpness"][s, -1], top, rtol=2e-3)


def test_grad_norm_and_distance_at_the_last_window(case):
    model, data, out = case
    for s in range(3):
        final = jax.tree.map(lambda a: a[s], out.params)
        init = jax.tree.map(lambda a: a[s], out.init_params)
        flat, objective = _objective(model, data, final)
        np.testing.assert_allclose(
            out.probes["grad_norm"][s, -1], np.linalg.norm(jax.grad(objective)(flat)), rtol=1e-4
        )
        np.testing.assert_allclose(
            out.probes["distance"][s, -1], np.linalg.norm(flat - ravel_pytree(init)[0]), rtol=1e-5
        )
    assert np.all(np.diff(out.probes["distance"], axis=1) != 0)  # one value per window


def test_train_probes_are_the_sweeps_seed():
    model, data = CASES["sigmoid"]
    out = gbl.sweep(
        model, optax.sgd(0.5), data, key=KEY, seeds=2, steps=60, log_every=10, probes=PROBES
    )
    res = gbl.train(
        model,
        optax.sgd(0.5),
        data,
        key=jax.random.split(KEY, 2)[1],
        steps=60,
        log_every=10,
        probes=PROBES,
    )
    for name in PROBES:
        np.testing.assert_allclose(res.probes[name], out.probes[name][1], rtol=1e-4)


def test_a_probe_may_return_a_pytree_and_windows_longer_than_a_check_block():
    # log_every = 60 > CHECK_EVERY: the window holds several check blocks
    model, data = CASES["sigmoid"]
    out = gbl.sweep(
        model,
        optax.sgd(0.5),
        data,
        key=KEY,
        seeds=2,
        steps=120,
        log_every=60,
        probes={"params": lambda objective, params: params, "grad_norm": gbl.probes.grad_norm()},
        keep_params=True,
    )
    trajectory = out.probes["params"]
    for got, want in zip(jax.tree.leaves(trajectory), jax.tree.leaves(out.params)):
        assert got.shape == want.shape[:1] + (2,) + want.shape[1:]
        np.testing.assert_array_equal(got[:, -1], want)
    flat, objective = _objective(model, data, jax.tree.map(lambda a: a[0], out.params))
    np.testing.assert_allclose(
        out.probes["grad_norm"][0, -1], np.linalg.norm(jax.grad(objective)(flat)), rtol=1e-4
    )
    with pytest.raises(ValueError, match="probe 'params' returns a dict"):
        out.save("/nonexistent-never-written")


def test_probes_save_and_load(tmp_path, case):
    _, _, out = case
    out.save(tmp_path / "run")
    back = gbl.load(tmp_path / "run")
    for name in PROBES:
        np.testing.assert_array_equal(back.probes[name], out.probes[name])
    np.testing.assert_array_equal(out.cell().probes["sharpness"], out.probes["sharpness"])


def test_a_diverged_run_probes_nan_from_then_on():
    model = gbl.mlp([6], gbl.heads.gaussian(1), activation="relu")
    data = gbl.problems.sine(jax.random.PRNGKey(3), 32)
    out = gbl.sweep(
        model,
        optax.sgd(50.0),
        data,
        key=KEY,
        seeds=2,
        steps=40,
        log_every=10,
        probes={"grad_norm": gbl.probes.grad_norm()},
    )
    assert out.diverged.all()
    assert np.isnan(out.probes["grad_norm"][:, -1]).all()
    assert np.array_equal(np.isnan(out.probes["grad_norm"]), np.isnan(out.losses))


def test_bad_probes_are_refused():
    model, data = CASES["sigmoid"]
    with pytest.raises(ValueError, match="probes and grad_tol"):
        gbl.sweep(
            model,
            optax.sgd(0.5),
            data,
            key=KEY,
            seeds=2,
            steps=10,
            grad_tol=1e-3,
            probes={"g": gbl.probes.grad_norm()},
        )
    with pytest.raises(ValueError, match=r"probes\['g'\] must be"):
        gbl.train(model, optax.sgd(0.5), data, key=KEY, steps=10, probes={"g": 3})
    with pytest.raises(ValueError, match="iters"):
        gbl.probes.sharpness(iters=0)
    assert gbl.probes.sharpness(iters=7) == gbl.probes.sharpness(iters=7)  # one compile
