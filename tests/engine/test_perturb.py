"""vary=("perturb",): seed 0's run, with one initial weight one ulp away (bit-exact checks)."""

import jax
import numpy as np
import optax
import pytest

import gbl_jax as gbl

DATA = gbl.problems.two_spirals(jax.random.PRNGKey(1), 32)
MODEL = gbl.mlp([5, 3], gbl.heads.bernoulli())
KEY = jax.random.PRNGKey(3)
SEEDS = 6


def _weights(params):
    """The weights (leaves of ndim >= 2) raveled and concatenated, and every leaf."""
    leaves = [np.asarray(a) for a in jax.tree.leaves(params)]
    return np.concatenate([a.ravel() for a in leaves if a.ndim >= 2]), leaves


@pytest.mark.parametrize("batch_size", [None, 8])  # full batch runs seeds-last; minibatch vmaps
def test_each_seed_moves_one_weight_by_one_ulp(batch_size):
    out = gbl.sweep(
        MODEL,
        optax.sgd(0.5),
        DATA,
        key=KEY,
        seeds=SEEDS,
        steps=4,
        batch_size=batch_size,
        vary=("perturb",),
        keep_params=True,
    )
    init = out.init_params
    base = jax.tree.map(lambda a: np.asarray(a[0]), init)
    k_init = jax.random.split(jax.random.split(KEY, SEEDS)[0])[0]
    for got, want in zip(jax.tree.leaves(base), jax.tree.leaves(MODEL.init(k_init, DATA.x))):
        # seed 0 is the unperturbed run (to rounding: seeds-last programs compile init apart)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    w0, leaves0 = _weights(base)
    keys = jax.random.split(KEY, SEEDS)
    for s in range(1, SEEDS):
        ws, leaves = _weights(jax.tree.map(lambda a: np.asarray(a[s]), init))
        index = int(jax.random.randint(jax.random.fold_in(keys[s], 0), (), 0, w0.size))
        changed = np.flatnonzero(ws != w0)
        np.testing.assert_array_equal(changed, [index])
        assert ws[index] == np.nextafter(w0[index], np.float32(np.inf))
        for a, b in zip(leaves, leaves0):
            if a.ndim < 2:
                np.testing.assert_array_equal(a, b)  # biases untouched
    # same data stream: seed 0 of a perturb sweep is seed 0 of the default sweep
    plain = gbl.sweep(
        MODEL,
        optax.sgd(0.5),
        DATA,
        key=KEY,
        seeds=1,
        steps=4,
        batch_size=batch_size,
        keep_params=True,
    )
    np.testing.assert_allclose(out.final_loss[0], plain.final_loss[0], rtol=1e-6)
    final = np.stack(
        [_weights(jax.tree.map(lambda a: np.asarray(a[s]), out.params))[0] for s in range(SEEDS)]
    )
    assert np.any(final[1:] != final[0])  # trained from a moved weight, not from seed 0's


def test_perturb_refuses_company_and_rerun():
    with pytest.raises(ValueError, match=r"or \('perturb',\) alone"):
        gbl.sweep(MODEL, optax.sgd(0.5), DATA, key=KEY, seeds=2, steps=2, vary=("perturb", "init"))
    out = gbl.sweep(MODEL, optax.sgd(0.5), DATA, key=KEY, seeds=2, steps=2, vary=("perturb",))
    with pytest.raises(ValueError, match="cannot repeat"):
        out.rerun(1)
    assert out.rerun(0)["hyperparams"] == {}
