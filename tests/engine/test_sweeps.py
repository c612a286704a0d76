"""sweep: equals single runs, chunking, divergence isolation, sharding across devices."""

import json
import os
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax.data import problems
from gbl_jax.engine import memory

DATA = problems.xor()
MODEL = gbl.mlp([2], DATA.head)
ADAM = optax.adam(0.05)
KEY = jax.random.PRNGKey(7)
SEEDS, STEPS = 10, 200


@pytest.fixture(scope="module")
def full():
    return gbl.sweep(
        MODEL, ADAM, DATA, key=KEY, seeds=SEEDS, steps=STEPS, log_every=1, keep_params=True
    )


def test_seed_i_is_the_single_run_with_key_i(full):
    keys = jax.random.split(KEY, SEEDS)
    assert full.final_loss.shape == (SEEDS,) and full.losses.shape == (SEEDS, STEPS)
    np.testing.assert_array_equal(full.keys, np.asarray(keys))
    for i in (0, 3, SEEDS - 1):
        single = gbl.train(MODEL, ADAM, DATA, key=keys[i], steps=STEPS)
        np.testing.assert_allclose(full.final_loss[i], single.final_loss, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(full.losses[i], single.losses, rtol=1e-4, atol=1e-6)
        for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(single.params)):
            np.testing.assert_allclose(a[i], b, rtol=1e-3, atol=1e-5)
    # The seeds really differ: XOR with 2 hidden units lands in different places.
    assert np.ptp(full.final_loss) > 0.1


def test_logged_losses_are_window_means(full):
    coarse = gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=SEEDS, steps=STEPS, log_every=20)
    assert coarse.losses.shape == (SEEDS, STEPS // 20) and coarse.log_every == 20
    np.testing.assert_allclose(
        coarse.losses, full.losses.reshape(SEEDS, -1, 20).mean(-1), rtol=1e-4, atol=1e-6
    )
    auto = gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=SEEDS, steps=STEPS)
    assert auto.log_every == 2 and auto.losses.shape == (SEEDS, 100)


def test_chunking_and_seed_ranges_do_not_change_results(full):
    chunked = gbl.sweep(
        MODEL, ADAM, DATA, key=KEY, seeds=SEEDS, steps=STEPS, log_every=1, chunk_size=3
    )
    assert chunked.chunk_size == 3
    np.testing.assert_allclose(chunked.final_loss, full.final_loss, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(chunked.losses, full.losses, rtol=1e-4, atol=1e-6)
    part = gbl.sweep(
        MODEL, ADAM, DATA, key=KEY, seeds=SEEDS, steps=STEPS, log_every=1, seed_range=(4, 9)
    )
    np.testing.assert_allclose(part.final_loss, full.final_loss[4:9], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(part.keys, full.keys[4:9])
    seen = []
    gbl.sweep(
        MODEL,
        ADAM,
        DATA,
        key=KEY,
        seeds=SEEDS,
        steps=STEPS,
        chunk_size=4,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(4, 10), (8, 10), (10, 10)]


def test_a_diverging_seed_never_touches_the_others():
    data = problems.sine(jax.random.PRNGKey(0), 16)
    model = gbl.mlp([4], data.head)
    sgd = optax.sgd(0.1)

    def poisoned(dist, y):
        # NaN for the seeds whose mean prediction wanders above 0.05: some, not all.
        return gbl.nll(dist, y) + jnp.where(jnp.mean(dist.loc) > 0.05, jnp.nan, 0.0)

    kw = dict(key=KEY, seeds=16, steps=100, log_every=1, keep_params=True, chunk_size=16)
    clean = gbl.sweep(model, sgd, data, **kw)
    dirty = gbl.sweep(model, sgd, data, loss=poisoned, **kw)
    bad = dirty.diverged
    assert 0 < bad.sum() < 16
    np.testing.assert_array_equal(dirty.final_loss[~bad], clean.final_loss[~bad])
    np.testing.assert_array_equal(dirty.losses[~bad], clean.losses[~bad])
    assert np.all(np.isnan(dirty.final_loss[bad])) and np.all(np.isnan(dirty.losses[bad, -1]))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(dirty.params))
    s = gbl.spread(dirty)
    assert s.n == 16 and s.n_diverged == bad.sum()
    np.testing.assert_allclose(s.mean, clean.final_loss[~bad].mean(), rtol=1e-6)


def test_a_sweep_where_every_seed_diverges_returns_cleanly():
    data = problems.sine(jax.random.PRNGKey(0), 16)
    out = gbl.sweep(
        gbl.mlp([8], data.head, activation="relu"), optax.sgd(1e5), data, key=KEY, seeds=4, steps=50
    )
    assert out.diverged.all()
    s = gbl.spread(out)
    assert s.n_diverged == 4 and np.isnan(s.mean) and np.isnan(s.success_rate(1.0))
    assert "all 4 seeds diverged" in s.summary()


def test_bad_sweep_arguments_raise():
    for kwargs, message in [
        (dict(seeds=0), "seeds"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(seed_range=(5, 3)), "seed_range"),
        (dict(steps=0), "steps"),
    ]:
        args = dict(key=KEY, seeds=4, steps=10) | kwargs
        with pytest.raises(ValueError, match=message):
            gbl.sweep(MODEL, ADAM, DATA, **args)


SHARDED = textwrap.dedent("""
    import json, sys
    import jax, optax
    import gbl_jax as gbl
    gbl.use_cpu_cores(4)   # the one call, before any computation
    data = gbl.problems.xor()
    model, adam = gbl.mlp([2], data.head), optax.adam(0.05)
    kw = dict(key=jax.random.PRNGKey(7), seeds=10, steps=100, log_every=10)
    many = gbl.sweep(model, adam, data, **kw)
    one = gbl.sweep(model, adam, data, devices=jax.devices()[:1], **kw)
    try:
        gbl.use_cpu_cores(2)
        late = "no error"
    except ValueError:
        late = "ValueError"
    json.dump({"devices": len(jax.devices()), "chunk": many.chunk_size,
               "many": many.final_loss.tolist(), "one": one.final_loss.tolist(),
               "many_curves": many.losses.tolist(), "one_curves": one.losses.tolist(),
               "late": late}, sys.stdout)
""")


def test_sharded_across_four_cpu_devices_equals_one_device():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = " ".join(
        f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f
    )  # not a forced device count
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["devices"] == 4 and out["chunk"] % 4 == 0 and out["late"] == "ValueError"
    np.testing.assert_allclose(out["many"], out["one"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["many_curves"], out["one_curves"], rtol=1e-4, atol=1e-6)


# ---- grids, noise sources, measurements, convergence ------------------------------------------

INJECTED = optax.inject_hyperparams(optax.adam)(learning_rate=0.05)
LRS, SCALES = [0.002, 0.005, 0.01], [0.5, 1.0]


@pytest.fixture(scope="module")
def grid_out():
    return gbl.sweep(
        MODEL,
        INJECTED,
        DATA,
        key=KEY,
        seeds=6,
        steps=100,
        log_every=10,
        grid={"learning_rate": LRS, "init_scale": SCALES},
        keep_params=True,
    )


def test_grid_axes_come_first_and_cells_equal_train(grid_out):
    out = grid_out
    assert out.final_loss.shape == (3, 2, 6) and out.losses.shape == (3, 2, 6, 10)
    assert out.diverged.shape == (3, 2, 6) and out.converged_step.shape == (3, 2, 6)
    assert list(out.grid) == ["learning_rate", "init_scale"] and out.grid["learning_rate"] == LRS
    keys = jax.random.split(KEY, 6)
    for (i, lr), (j, scale), seed in [((0, 0.002), (1, 1.0), 2), ((2, 0.01), (0, 0.5), 5)]:
        init = lambda key, x, s=scale: jax.tree.map(
            lambda a: a * s if a.ndim >= 2 else a, MODEL.init(key, x)
        )
        scaled = gbl.Model(init, MODEL.apply)
        single = gbl.train(scaled, optax.adam(lr), DATA, key=keys[seed], steps=100, log_every=10)
        np.testing.assert_allclose(out.final_loss[i, j, seed], single.final_loss, rtol=1e-5)
        np.testing.assert_allclose(out.losses[i, j, seed], single.losses, rtol=1e-5)
        again = gbl.train(MODEL, INJECTED, DATA, steps=100, log_every=10, **out.rerun(seed, (i, j)))
        np.testing.assert_allclose(out.final_loss[i, j, seed], again.final_loss, rtol=1e-6)
    # common random numbers: seed i starts from the same init (up to the scale) in every cell
    w = out.init_params["hidden"][0]["w"]
    np.testing.assert_allclose(w[0, 0], w[2, 0])
    np.testing.assert_allclose(w[0, 0], 0.5 * w[0, 1], rtol=1e-6)


def test_spread_on_a_grid_has_grid_shaped_fields_and_wilson_intervals(grid_out):
    s = gbl.spread(grid_out)
    assert s.mean.shape == (3, 2) and s.n_diverged.shape == (3, 2)
    np.testing.assert_allclose(s.median, np.median(grid_out.final_loss, axis=-1), rtol=1e-6)
    rate = s.success_rate(0.6)
    np.testing.assert_allclose(rate, np.mean(grid_out.final_loss < 0.6, axis=-1))
    low, high = s.success_interval(0.6)
    assert low.shape == (3, 2) and np.all(low <= rate) and np.all(rate <= high)


def test_a_grid_compiles_once_and_rebuilt_objects_reuse_it():
    grid = {"learning_rate": [0.01, 0.02]}
    with gbl.count_compiles() as count:
        gbl.sweep(MODEL, INJECTED, DATA, key=KEY, seeds=4, steps=40, grid=grid, chunk_size=8)
    assert count.training == 1  # every cell x seed in one compiled program


def test_bad_grids_are_refused():
    cases = [
        ({"learning_rate": []}, "non-empty"),
        ({"learning_rate": ["a"]}, "number"),
        ({"momentum": [0.9]}, "accepted"),
        ({"learning_rate": [float("nan")]}, "finite"),
    ]
    for grid, message in cases:
        with pytest.raises(ValueError, match=message):
            gbl.sweep(MODEL, INJECTED, DATA, key=KEY, seeds=2, steps=10, grid=grid)
    with pytest.raises(ValueError, match="inject_hyperparams"):
        gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=2, steps=10, grid={"learning_rate": [0.1]})


def test_grid_values_that_would_train_wrong_are_refused():
    cases = [
        ({"learning_rate": [0.1, -0.05]}, r"learning_rate must be > 0.*-0\.05"),
        ({"init_scale": [1e-50]}, r"init_scale.*1e-50 is 0 in float32"),
        ({"learning_rate": [0.1, 0.2, 0.1]}, r"grid\['learning_rate'\] repeats 0\.1"),
        ({"init_scale": [1.0, 1]}, r"grid\['init_scale'\] repeats 1\.0"),
    ]
    for grid, message in cases:
        with pytest.raises(ValueError, match=message):
            gbl.sweep(MODEL, INJECTED, DATA, key=KEY, seeds=2, steps=10, grid=grid)


def test_identical_copies_are_refused():
    """vary=("data",) on full batches of a deterministic model: every seed is the same run."""
    with pytest.raises(ValueError, match=r"identical.*batch_size"):
        gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=3, steps=10, vary=("data",))
    one = gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=1, steps=10, vary=("data",))
    assert one.final_loss.shape == (1,)


def test_vary_separates_the_noise_sources():
    data = problems.circles(jax.random.PRNGKey(1), 32)
    model = gbl.mlp([4], data.head)
    sgd = optax.sgd(0.1)
    kw = dict(key=KEY, seeds=4, steps=40, batch_size=8, log_every=4, keep_params=True)
    init_only = gbl.sweep(model, sgd, data, vary=("init",), **kw)
    data_only = gbl.sweep(model, sgd, data, vary=("data",), **kw)
    first = lambda tree: tree["hidden"][0]["w"]  # noqa: E731
    assert np.ptp(first(data_only.init_params), axis=0).max() == 0  # one init for all
    assert np.ptp(first(init_only.init_params), axis=0).max() > 0
    assert np.ptp(data_only.final_loss) > 0  # the data order still differs
    for out in (init_only, data_only):
        single = gbl.train(model, sgd, data, steps=40, batch_size=8, log_every=4, **out.rerun(3))
        np.testing.assert_allclose(out.final_loss[3], single.final_loss, rtol=1e-5)
    with pytest.raises(ValueError, match="vary"):
        gbl.sweep(model, sgd, data, vary=("dropout",), **kw)


def test_metrics_and_eval_data_are_logged_and_final():
    train, test = (
        problems.circles(jax.random.PRNGKey(1), 64),
        problems.circles(jax.random.PRNGKey(2), 32),
    )
    model = gbl.mlp([4], train.head)
    accuracy = lambda dist, y: jnp.mean((dist.probs() > 0.5) == (y > 0.5))  # noqa: E731
    out = gbl.sweep(
        model,
        ADAM,
        train,
        key=KEY,
        seeds=3,
        steps=60,
        log_every=20,
        metrics={"accuracy": accuracy},
        eval_data=test,
        keep_params=True,
    )
    assert set(out.metrics) == {"accuracy", "test_nll", "test_accuracy"}
    assert out.metrics["accuracy"].shape == (3, 3) and out.final_metrics["test_nll"].shape == (3,)
    for i in range(3):
        params = jax.tree.map(lambda a: a[i], out.params)
        np.testing.assert_allclose(
            out.final_metrics["test_nll"][i],
            gbl.nll(model.apply(params, test.x), test.y),
            rtol=1e-5,
        )
        np.testing.assert_allclose(
            out.final_metrics["accuracy"][i],
            accuracy(model.apply(params, train.x), train.y),
            rtol=1e-6,
        )
    single = gbl.train(
        model,
        ADAM,
        train,
        key=jax.random.split(KEY, 3)[1],
        steps=60,
        log_every=20,
        metrics={"accuracy": accuracy},
        eval_data=test,
    )
    np.testing.assert_allclose(single.metrics["test_nll"], out.metrics["test_nll"][1], rtol=1e-5)
    # with no logged window ending after the last step, the last window's metric is the final one
    np.testing.assert_allclose(out.metrics["accuracy"][:, -1], out.final_metrics["accuracy"])


def test_run_to_convergence_freezes_and_compaction_changes_nothing():
    data = problems.circles(jax.random.PRNGKey(0), 32)
    model = gbl.mlp((), data.head)  # convex: every seed converges, at different times
    kw = dict(
        key=KEY, seeds=8, steps=2000, log_every=20, grad_tol=1e-3, chunk_size=8, keep_params=True
    )
    sgd = optax.sgd(0.5)
    fast = gbl.sweep(model, sgd, data, **kw)
    slow = gbl.sweep(model, sgd, data, compact=False, **kw)
    conv = fast.converged_step
    assert np.all(conv > 0) and np.all(conv % 20 == 0) and np.ptp(conv) > 0
    np.testing.assert_array_equal(conv, slow.converged_step)
    np.testing.assert_allclose(fast.final_loss, slow.final_loss, rtol=1e-6)
    np.testing.assert_allclose(fast.losses, slow.losses, rtol=1e-6)
    for i in (0, 7):  # frozen where it converged: the gradient there is below the tolerance
        params = jax.tree.map(lambda a: a[i], fast.params)
        grads = jax.grad(lambda p: gbl.nll(model.apply(p, data.x), data.y))(params)
        norm = np.sqrt(sum(float(jnp.sum(g**2)) for g in jax.tree.leaves(grads)))
        assert norm < 1e-3
        window = conv[i] // 20
        np.testing.assert_array_equal(fast.losses[i, window:], fast.losses[i, window])
    single = gbl.train(
        model, sgd, data, key=jax.random.split(KEY, 8)[7], steps=2000, log_every=20, grad_tol=1e-3
    )
    assert int(single.converged_step) == conv[7]


def test_a_sweep_that_would_not_fit_in_memory_is_refused_with_the_figure(monkeypatch):
    monkeypatch.setattr(memory, "available", lambda: 16 * 2**30)
    for seeds in (2**31, 2**40):  # before: killed for memory / a raw MemoryError
        with pytest.raises(
            ValueError,
            match=r"\(\d+ seeds, \d+ runs: keys.*needs about "
            r"[\d.]+ [TPG]iB of host memory but 16 GiB is "
            r"available; use fewer seeds",
        ):
            gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=seeds, steps=10)
    # 2**26 runs x 100 logged losses: 52 GiB of results held twice
    with pytest.raises(ValueError, match=r"67108864 runs.*needs about 5\d.\d GiB of host memory"):
        gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=2**26, steps=100, log_every=1)
    # 2-1e8-1: params, Adam state and step intermediates; one run does not fit
    huge = gbl.mlp([10**8], DATA.head)
    with pytest.raises(ValueError, match=r"a chunk of 1 training.*use a smaller model"):
        gbl.sweep(huge, ADAM, DATA, key=KEY, seeds=2, steps=10, chunk_size=1)
    assert (
        gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=4, steps=10, chunk_size=1000).chunk_size == 4
    )  # a chunk larger than the sweep only pads


def test_a_zero_init_scale_is_the_control_of_identical_runs():
    # Issue 30 item 10: round 2 documented init_scale 0 as a grid value (every seed starts from
    # zero weights and the symmetry is never broken); values that underflow to 0 stay refused.
    out = gbl.sweep(
        MODEL,
        INJECTED,
        DATA,
        key=KEY,
        seeds=3,
        steps=10,
        keep_params=True,
        grid={"init_scale": [0.0, 1.0]},
    )
    zero = out.cell(init_scale=0.0)
    assert np.all(zero.final_loss == zero.final_loss[0])
    for leaf in jax.tree.leaves(zero.params):
        np.testing.assert_array_equal(leaf, np.broadcast_to(leaf[0], leaf.shape))
    assert len(set(np.asarray(out.cell(init_scale=1.0).final_loss).tolist())) == 3
    s = gbl.spread(out)
    np.testing.assert_array_equal(s.identical, [True, False])
    assert "identical runs in (init_scale=0)" in s.summary()
    with pytest.raises(ValueError, match=r"init_scale must be >= 0.*-1\.0"):
        gbl.sweep(MODEL, INJECTED, DATA, key=KEY, seeds=2, steps=10, grid={"init_scale": [-1.0]})


def test_a_crossed_design_trains_every_init_with_every_data_order(tmp_path):
    data = problems.circles(jax.random.PRNGKey(1), 32)
    model = gbl.mlp([4], data.head)
    sgd = optax.sgd(0.1)
    kw = dict(key=KEY, steps=40, batch_size=8, log_every=4, keep_params=True)
    out = gbl.sweep(model, sgd, data, seeds=gbl.crossed(init=3, data=2), **kw)
    plain = gbl.sweep(model, sgd, data, seeds=6, **kw)
    assert out.crossed == (3, 2) and out.final_loss.shape == (6,) and plain.crossed == ()
    first = lambda tree: np.asarray(tree["hidden"][0]["w"])  # noqa: E731
    init, plain_init = first(out.init_params), first(plain.init_params)
    for s in range(6):  # seed i D + d starts from ordinary seed i D's init
        np.testing.assert_array_equal(init[s], plain_init[s // 2 * 2])
    # ordinary seed 0 and crossed seed 0 share init and data: the same run
    np.testing.assert_allclose(out.final_loss[0], plain.final_loss[0], rtol=1e-6)
    # the same init on two data orders ends apart; each seed reruns alone
    assert out.final_loss[0] != out.final_loss[1]
    for s in (3, 5):
        single = gbl.train(model, sgd, data, steps=40, batch_size=8, log_every=4, **out.rerun(s))
        np.testing.assert_allclose(out.final_loss[s], single.final_loss, rtol=1e-5)
    frame = out.to_frame()
    assert frame["init_seed"].tolist() == [0, 0, 1, 1, 2, 2]
    assert frame["data_seed"].tolist() == [0, 1, 0, 1, 0, 1]
    out.save(tmp_path / "crossed")
    assert gbl.load(tmp_path / "crossed").crossed == (3, 2)


def test_crossed_designs_refuse_what_cannot_cross():
    with pytest.raises(ValueError, match="crossed: data must be an integer >= 1"):
        gbl.crossed(init=4, data=0)
    with pytest.raises(ValueError, match="leave vary at its default"):
        gbl.sweep(
            MODEL, ADAM, DATA, key=KEY, seeds=gbl.crossed(init=2, data=2), steps=10, vary=("init",)
        )
    with pytest.raises(ValueError, match=r"crossed\(init=2, data=2\): with full batches"):
        gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=gbl.crossed(init=2, data=2), steps=10)


def test_runs_of_one_data_stream_draw_it_once():
    """vary=("init",): every run reads the same minibatches, so the chunk passes one data key
    and draws one permutation per epoch for all runs (its sorts have no run axis), while the
    runs stay those of gbl.train (float rounding: the first layer is one matmul for all)."""
    from gbl_jax.engine import sweeps

    data = problems.circles(jax.random.PRNGKey(1), 32)
    model = gbl.mlp([4], data.head)
    sgd = optax.sgd(0.1)
    kw = dict(key=KEY, seeds=4, steps=40, batch_size=8, log_every=4)
    plans = {
        vary: sweeps.plan_sweep(model, sgd, data, vary=vary, **kw)
        for vary in (("init",), ("init", "data"))
    }
    assert plans[("init",)].shared_data and not plans[("init", "data")].shared_data
    for vary, plan in plans.items():
        hlo = plan.chunk_fn().lower(*plan.one_shot_inputs(plan.runs), *plan.data).as_text()
        sorted_shapes = set(re.findall(r"call @sort\w*\((?:[^)]*)\) : \(tensor<([0-9x]+)x", hlo))
        expected = {f"{plan.chunk_size}x32"} if vary == ("init", "data") else {"32"}
        assert sorted_shapes == expected, (vary, sorted_shapes)
    out = gbl.sweep(model, sgd, data, vary=("init",), **kw)
    for i in (0, 3):
        single = gbl.train(model, sgd, data, steps=40, batch_size=8, log_every=4, **out.rerun(i))
        np.testing.assert_allclose(out.final_loss[i], single.final_loss, rtol=1e-5)


def test_a_large_cpu_chunk_runs_as_one_vmapped_loop_per_core(monkeypatch):
    """chunking.cpu_groups: on a 2-core CPU with one device, a chunk past CPU_GROUPS_ABOVE runs
    as two vmapped loops side by side in one program (two while loops), with the same runs."""
    from gbl_jax.engine import chunking, sweeps

    data = problems.circles(jax.random.PRNGKey(1), 32)
    model = gbl.mlp([4], data.head)
    kw = dict(
        key=KEY,
        seeds=8,
        steps=12,
        batch_size=8,
        log_every=4,
        chunk_size=8,
        devices=jax.devices()[:1],
    )
    monkeypatch.setattr(chunking.os, "cpu_count", lambda: 2)
    one = sweeps.plan_sweep(model, ADAM, data, **kw)
    monkeypatch.setattr(chunking, "CPU_GROUPS_ABOVE", 0)
    two = sweeps.plan_sweep(model, ADAM, data, **kw)
    assert (one.groups, two.groups) == (1, 2)
    for plan, loops in ((one, 1), (two, 2)):
        hlo = plan.chunk_fn().lower(*plan.one_shot_inputs(plan.runs), *plan.data).as_text()
        top = hlo.split("func.func private")[0]  # the entry function: its outermost loops
        assert top.count("stablehlo.while") == loops, plan.groups
    grouped = gbl.sweep(model, ADAM, data, **kw)
    monkeypatch.setattr(chunking, "CPU_GROUPS_ABOVE", 2**62)
    plain = gbl.sweep(model, ADAM, data, **kw)
    np.testing.assert_allclose(grouped.final_loss, plain.final_loss, rtol=1e-6)
    np.testing.assert_allclose(grouped.losses, plain.losses, rtol=1e-6)
