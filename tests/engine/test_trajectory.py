"""Tests for keep_trajectory: each run's params at every logging window's end."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gbl_jax as gbl


@pytest.mark.parametrize("case", ["tiny", "metrics", "long_windows", "minibatch"])
def test_trajectory_is_the_params_train_reaches_at_each_window(case):
    data = (
        gbl.problems.xor()
        if case == "tiny"
        else gbl.problems.two_spirals(jax.random.PRNGKey(0), 32)
    )
    model = gbl.mlp([3], data.head)
    log_every = {"tiny": 10, "metrics": 10, "long_windows": 100, "minibatch": 20}[case]
    kw = {"metrics": {"accuracy": gbl.accuracy}} if case == "metrics" else {}
    batch = 8 if case == "minibatch" else None
    out = gbl.sweep(
        model,
        optax.adam(0.05),
        data,
        key=jax.random.PRNGKey(1),
        seeds=3,
        steps=200,
        log_every=log_every,
        batch_size=batch,
        keep_params=True,
        keep_trajectory=True,
        **kw,
    )
    windows = 200 // log_every
    leaves = jax.tree.leaves(out.trajectory)
    assert [a.shape[:2] for a in leaves] == [(3, windows)] * len(leaves)
    for got, want in zip(leaves, jax.tree.leaves(out.params)):
        np.testing.assert_allclose(got[:, -1], want, atol=1e-6)
    k = windows // 2  # window k ends after k * log_every steps: train that far, independently
    r = gbl.train(
        model, optax.adam(0.05), data, steps=k * log_every, batch_size=batch, **out.rerun(2)
    )
    for got, want in zip(leaves, jax.tree.leaves(r.params)):
        np.testing.assert_allclose(got[2, k - 1], want, atol=1e-5)
    assert not np.allclose(leaves[0][:, 0], leaves[0][:, -1])


def test_trajectory_refused_with_compaction_and_absent_by_default():
    data = gbl.problems.xor()
    model = gbl.mlp([2], data.head)
    with pytest.raises(ValueError, match="compact=False"):
        gbl.sweep(
            model,
            optax.adam(0.05),
            data,
            key=jax.random.PRNGKey(1),
            seeds=2,
            steps=20,
            grad_tol=1e-3,
            keep_trajectory=True,
        )
    with pytest.raises(ValueError, match="keep_trajectory must be True or False"):
        gbl.sweep(
            model,
            optax.adam(0.05),
            data,
            key=jax.random.PRNGKey(1),
            seeds=2,
            steps=20,
            keep_trajectory=1,
        )
    out = gbl.sweep(
        model,
        optax.adam(0.05),
        data,
        key=jax.random.PRNGKey(1),
        seeds=2,
        steps=20,
        grad_tol=1e-3,
        compact=False,
        keep_trajectory=True,
        log_every=5,
    )
    assert jax.tree.leaves(out.trajectory)[0].shape[:2] == (2, 4)
    assert (
        gbl.sweep(
            model, optax.adam(0.05), data, key=jax.random.PRNGKey(1), seeds=2, steps=20
        ).trajectory
        is None
    )


def test_trajectory_is_counted_in_the_results_memory():
    from gbl_jax.engine import memory
    from gbl_jax.engine.runconfig import check_run

    data = gbl.problems.xor()
    model = gbl.mlp([4], data.head)  # 2*4 + 4 + 4 + 1 = 17 float32 params
    kw = dict(key=jax.random.PRNGKey(0), steps=100, log_every=10, loss=gbl.nll)
    x = jax.ShapeDtypeStruct(data.x.shape, data.x.dtype)
    sizes = [
        memory.result_bytes(
            check_run(model, optax.sgd(0.1), data, keep_trajectory=k, **kw)[0], x, False
        )
        for k in (False, True)
    ]
    assert sizes[1] - sizes[0] == 10 * 17 * 4


@pytest.mark.parametrize("log_every", [10, 100])  # windows inside a check block, and across
def test_probes_and_the_trajectory_come_from_the_same_window_ends(log_every):
    """Both read the params at each window's end: the grad_norm probe equals the full-batch
    gradient norm recomputed, independently, at the trajectory's params."""
    data = gbl.problems.two_spirals(jax.random.PRNGKey(0), 32)
    model = gbl.mlp([3], data.head)
    out = gbl.sweep(
        model,
        optax.adam(0.05),
        data,
        key=jax.random.PRNGKey(1),
        seeds=2,
        steps=200,
        log_every=log_every,
        batch_size=8,
        keep_trajectory=True,
        probes={"g": gbl.probes.grad_norm()},
    )
    assert out.probes["g"].shape == (2, 200 // log_every)

    def norm(params):
        grads = jax.grad(lambda p: gbl.nll(model.apply(p, data.x), data.y))(params)
        return jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))

    for seed in range(2):
        for w in (0, 200 // log_every - 1):
            params = jax.tree.map(lambda a: a[seed, w], out.trajectory)
            assert float(out.probes["g"][seed, w]) == pytest.approx(float(norm(params)), rel=1e-4)
