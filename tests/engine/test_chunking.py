"""Chunking: the default chunk size follows the compiled step; large CPU runs go side by side,
each the single run bit for bit."""

import re

import jax
import numpy as np
import optax

import gbl_jax as gbl
from gbl_jax.data import problems
from gbl_jax.engine import chunking, sweeps

DATA = problems.xor()
MODEL = gbl.mlp([2], DATA.head)
ADAM = optax.adam(0.05)
KEY = jax.random.PRNGKey(7)
SEEDS, STEPS = 10, 200


def test_auto_chunk_size_follows_the_compiled_step(monkeypatch):
    cpu = jax.devices("cpu")[:1]
    spirals = problems.two_spirals(KEY, 256)
    chunk = lambda hidden, seeds=4096: (
        sweeps.plan_sweep(  # noqa: E731
            gbl.mlp(hidden, spirals.head),
            ADAM,
            spirals,
            key=KEY,
            seeds=seeds,
            steps=300,
            devices=cpu,
        ).chunk_size
    )
    plan = lambda hidden, seeds=4096, **kw: sweeps.plan_sweep(  # noqa: E731
        gbl.mlp(hidden, spirals.head),
        ADAM,
        spirals,
        key=KEY,
        seeds=seeds,
        steps=300,
        devices=cpu,
        **kw,
    )
    for hidden in ([128], [32, 32]):  # a large step runs unbatched, four loops side by side
        assert chunk(hidden) == chunking.CPU_SIDE_BY_SIDE == 4
        assert plan(hidden).side_by_side and not plan(hidden).vmapped
    assert chunk([128], seeds=3) == 3 and plan([128], seeds=3).side_by_side
    assert not plan([128], chunk_size=1).side_by_side
    assert plan([128], chunk_size=16).vmapped  # more than CPU_SIDE_BY_SIDE: vmapped
    assert chunk([8]) >= 64 and plan([8]).vmapped and not plan([8]).side_by_side  # small: vmap
    assert chunk([8], seeds=5) == 5
    # the line is the step's bytes, whatever jax traces: just above it a net goes side by side
    act = chunking.step_bytes(plan([8]).cfg, *spirals)[1]
    monkeypatch.setattr(chunking, "CPU_LOOP_ABOVE", act - 1)
    assert chunk([8]) == 4 and plan([8]).side_by_side
    monkeypatch.setattr(chunking, "CPU_LOOP_ABOVE", act)
    assert chunk([8]) >= 64 and not plan([8]).side_by_side


def _while_loops(plan) -> int:
    """While loops in the chunk's compiled (optimized, inlined) HLO."""
    hlo = plan.chunk_fn().lower(*plan.inputs(plan.runs[:1]), *plan.data).compile().as_text()
    return len(re.findall(r"= .*\bwhile\(", hlo))


def test_side_by_side_runs_are_the_single_runs_bit_for_bit(monkeypatch):
    monkeypatch.setattr(chunking, "CPU_LOOP_ABOVE", 0)  # XOR's tiny step counts as large
    kw = dict(key=KEY, seeds=SEEDS, steps=STEPS, log_every=1, devices=jax.devices()[:1])
    side = sweeps.plan_sweep(MODEL, ADAM, DATA, **kw)
    assert side.side_by_side and side.chunk_size == 4  # 10 seeds: the last chunk is padded
    one = sweeps.plan_sweep(MODEL, ADAM, DATA, chunk_size=1, **kw)
    vmapped = sweeps.plan_sweep(MODEL, ADAM, DATA, chunk_size=8, **kw)
    loops = _while_loops(one)
    assert _while_loops(side) == 4 * loops and _while_loops(vmapped) == loops
    a, b = gbl.sweep(MODEL, ADAM, DATA, **kw), gbl.sweep(MODEL, ADAM, DATA, chunk_size=1, **kw)
    assert a.chunk_size == 4
    np.testing.assert_array_equal(a.final_loss, b.final_loss)
    np.testing.assert_array_equal(a.losses, b.losses)
    single = gbl.train(MODEL, ADAM, DATA, key=jax.random.split(KEY, SEEDS)[9], steps=STEPS)
    np.testing.assert_allclose(a.final_loss[9], single.final_loss, rtol=1e-4, atol=1e-6)
    # run to convergence: the compacted segments go side by side too
    data = problems.circles(jax.random.PRNGKey(0), 32)
    conv = dict(
        key=KEY, seeds=6, steps=1000, log_every=20, grad_tol=3e-3, devices=jax.devices()[:1]
    )
    model, sgd = gbl.mlp((), data.head), optax.sgd(0.5)
    fast = gbl.sweep(model, sgd, data, **conv)
    slow = gbl.sweep(model, sgd, data, compact=False, chunk_size=1, **conv)
    assert fast.chunk_size == 4 and np.ptp(fast.converged_step) > 0
    np.testing.assert_array_equal(fast.converged_step, slow.converged_step)
    np.testing.assert_allclose(fast.final_loss, slow.final_loss, rtol=1e-6)
    np.testing.assert_allclose(fast.losses, slow.losses, rtol=1e-6)


def test_a_model_that_draws_typed_keys_sweeps():
    """Step bytes count typed keys (key<fry>) by their itemsize: apply may make one."""
    data = problems.xor()
    mlp = gbl.mlp([2], data.head)

    def apply(params, x):
        noise = jax.random.normal(jax.random.key(0), x.shape) * 0.0  # a typed key inside
        return mlp.apply(params, x + noise)

    model = gbl.Model(mlp.init, apply)
    out = gbl.sweep(model, optax.adam(0.05), data, key=jax.random.PRNGKey(0), seeds=4, steps=20)
    ref = gbl.sweep(mlp, optax.adam(0.05), data, key=jax.random.PRNGKey(0), seeds=4, steps=20)
    np.testing.assert_allclose(out.final_loss, ref.final_loss, rtol=1e-6)
