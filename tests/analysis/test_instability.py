"""Instability analysis: children against a plain SGD loop, barriers against gbl.barrier."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax import Instability
from gbl_jax.analysis.instability import error
from gbl_jax.engine import continuation
from gbl_jax.engine.runconfig import check_run

DATA = gbl.problems.two_spirals(jax.random.PRNGKey(1), 48)
MODEL = gbl.mlp([6], gbl.heads.bernoulli())
OPT = optax.sgd(0.1, momentum=0.9)
KEY = jax.random.PRNGKey(0)
BATCH = 16
STEPS = 20
AT = (0, 8, 20)


@pytest.fixture(scope="module")
def res():
    return gbl.instability(
        MODEL,
        OPT,
        DATA,
        key=KEY,
        parents=3,
        steps=STEPS,
        at=AT,
        children=3,
        batch_size=BATCH,
        align="tanh",
        keep_params=True,
        num=11,
    )


def _loop(params, opt_state, k_data, first, count):
    """Plain SGD steps with train's documented data order (one permutation per epoch)."""
    x, y = DATA
    per_epoch = x.shape[0] // BATCH
    grad = jax.jit(jax.grad(lambda p, xb, yb: gbl.nll(MODEL.apply(p, xb), yb)))
    for t in range(first, first + count):
        order = jax.random.permutation(jax.random.fold_in(k_data, t // per_epoch), x.shape[0])
        idx = order[(t % per_epoch) * BATCH : (t % per_epoch + 1) * BATCH]
        updates, opt_state = OPT.update(grad(params, x[idx], y[idx]), opt_state, params)
        params = optax.apply_updates(params, updates)
    return params, opt_state


def test_children_continue_the_parent_on_their_own_data_order(res):
    p, k = 1, 8
    k_init, k_data = jax.random.split(jax.random.split(KEY, 3)[p])
    params = MODEL.init(k_init, DATA.x)
    parent, state = _loop(params, OPT.init(params), k_data, 0, k)
    for c in range(3):
        child_key = jax.random.split(jax.random.fold_in(k_data, k), 3)[c]
        want, _ = _loop(parent, state, child_key, k, STEPS - k)
        got = jax.tree.map(lambda a: a[p, c], res.params[k])
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    kids = jax.tree.leaves(res.params[k])[0][p]
    assert not np.allclose(kids[0], kids[1])  # other data orders, other ends


def test_barriers_equal_gbl_barrier_on_the_same_pairs(res):
    assert res.pairs == ((0, 1), (0, 2), (1, 2))
    assert res.evaluated_on == "train"  # two_spirals has no held-out split
    for i, k in enumerate(AT):
        for j, (a, b) in enumerate(res.pairs):
            pa = jax.tree.map(lambda t: t[:, a], res.params[k])
            pb = jax.tree.map(lambda t: t[:, b], res.params[k])
            np.testing.assert_allclose(
                res.barriers["loss"][i, :, j], gbl.barrier(MODEL, DATA, pa, pb, num=11), atol=1e-7
            )
            np.testing.assert_allclose(
                res.barriers["error"][i, :, j],
                gbl.barrier(MODEL, DATA, pa, pb, num=11, loss=error),
                atol=1e-7,
            )
            aligned = jax.tree.map(
                lambda *t: jnp.stack(t),
                *[
                    gbl.align(jax.tree.map(lambda t: t[q], pa), jax.tree.map(lambda t: t[q], pb))
                    for q in range(3)
                ],
            )
            np.testing.assert_allclose(
                res.barriers["aligned_loss"][i, :, j],
                gbl.barrier(MODEL, DATA, pa, aligned, num=11),
                atol=1e-7,
            )


def test_children_spawned_at_the_end_are_the_parent(res):
    # k = steps: no steps left, every child is its parent and the path is one point
    assert np.all(res.barriers["error"][-1] == 0)
    assert np.all(np.abs(res.barriers["loss"][-1]) < 1e-6)
    assert np.any(res.barriers["error"][0] > 0)  # spawned at init they do differ


def test_stable_rate_counts_parents_with_wilson_intervals(res):
    tol = float(np.median(res.barriers["error"][0])) + 1e-9
    rate = res.stable_rate(tol)
    stable = np.all(res.barriers["error"] < tol, axis=-1).sum(axis=1)
    np.testing.assert_array_equal(rate.stable, stable)
    np.testing.assert_array_equal(rate.n, [3, 3, 3])
    low, high = gbl.wilson_interval(stable, 3)
    np.testing.assert_allclose(rate.low, low)
    np.testing.assert_allclose(rate.high, high)
    assert rate.crossing(0.5) == next(k for k, s in zip(AT, stable) if s / 3 >= 0.5)
    frame = res.to_frame()
    assert len(frame) == 3 * 3 * 3
    row = frame[(frame.k == 8) & (frame.parent == 2) & (frame.child_a == 1)].iloc[0]
    assert row.error_barrier == res.barriers["error"][1, 2, 2]


def test_continuing_on_its_own_key_is_the_run_train_makes():
    opt = optax.adam(0.05)  # a step count in the state: continuing must carry it on
    cfg, (x, y, _, _) = check_run(
        MODEL, opt, DATA, key=KEY, steps=12, batch_size=BATCH, loss=gbl.nll, log_every=12
    )
    k_init, k_data = jax.random.split(KEY)
    size = len(jax.devices())  # one run, padded to a chunk per device
    runs = continuation.start(cfg, k_init[None], k_data[None], x, size)
    runs, _ = continuation.resume(cfg, runs, k_data[None], x, y, first=0, count=5, size=size)
    runs, _ = continuation.resume(cfg, runs, k_data[None], x, y, first=5, count=7, size=size)
    want = gbl.train(MODEL, opt, DATA, key=KEY, steps=12, batch_size=BATCH).params
    for g, w in zip(jax.tree.leaves(runs.params), jax.tree.leaves(want)):
        np.testing.assert_allclose(g[0], w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(at=(0, 30)), r"at must hold distinct steps in \[0, steps=20\]"),
        (dict(at=(4, 4)), "distinct"),
        (dict(at=()), "non-empty"),
        (dict(children=1), "children"),
        (dict(batch_size=None), "identical"),
        (dict(num=5), "num"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    args = dict(key=KEY, parents=2, steps=STEPS, at=AT, batch_size=BATCH) | kwargs
    with pytest.raises(ValueError, match=match):
        gbl.instability(MODEL, OPT, DATA, **args)


def test_stable_rate_refuses_a_missing_metric():
    res = Instability(
        np.asarray([0]), {"loss": np.zeros((1, 2, 1))}, ((0, 1),), 5, 2, 2, "train", None, 0.0
    )
    with pytest.raises(ValueError, match="no 'error' barriers"):
        res.stable_rate()


def test_the_figure_draws_the_stable_rate_and_each_parents_worst_barrier(res):
    import matplotlib

    matplotlib.use("Agg")
    fig = gbl.plots.instability_figure(res, tol=0.005)
    left, right = fig.axes[:2]
    rate = res.stable_rate(0.005)
    lines = {tuple(np.round(np.asarray(line.get_ydata(), float), 12)) for line in right.get_lines()}
    assert tuple(np.round(rate.rate, 12)) in lines
    median = np.median(np.max(res.barriers["error"], axis=-1), axis=1)
    assert any(np.allclose(line.get_ydata(), median) for line in left.get_lines())
    fig = gbl.plots.probe_curves(np.ones((3, 4)), 5, lines={"2 / lr": 2.0})
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [5, 10, 15, 20])
    assert ax.get_lines()[-1].get_ydata()[0] == 2.0
