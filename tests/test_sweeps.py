"""sweep: equals single runs, chunking, divergence isolation, sharding across devices."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax import problems, sweeps

DATA = problems.xor()
MODEL = gbl.mlp([2], DATA.head)
ADAM = optax.adam(0.05)
KEY = jax.random.PRNGKey(7)
SEEDS, STEPS = 10, 200


@pytest.fixture(scope="module")
def full():
    return gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=SEEDS, steps=STEPS, log_every=1,
                     keep_params=True)


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
    np.testing.assert_allclose(coarse.losses, full.losses.reshape(SEEDS, -1, 20).mean(-1), rtol=1e-4,
                               atol=1e-6)
    auto = gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=SEEDS, steps=STEPS)
    assert auto.log_every == 2 and auto.losses.shape == (SEEDS, 100)


def test_chunking_and_seed_ranges_do_not_change_results(full):
    chunked = gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=SEEDS, steps=STEPS, log_every=1, chunk_size=3)
    assert chunked.chunk_size == 3
    np.testing.assert_allclose(chunked.final_loss, full.final_loss, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(chunked.losses, full.losses, rtol=1e-4, atol=1e-6)
    part = gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=SEEDS, steps=STEPS, log_every=1, seed_range=(4, 9))
    np.testing.assert_allclose(part.final_loss, full.final_loss[4:9], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(part.keys, full.keys[4:9])
    seen = []
    gbl.sweep(MODEL, ADAM, DATA, key=KEY, seeds=SEEDS, steps=STEPS, chunk_size=4,
              progress=lambda done, total: seen.append((done, total)))
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
    out = gbl.sweep(gbl.mlp([8], data.head, activation="relu"), optax.sgd(1e5), data, key=KEY,
                    seeds=4, steps=50)
    assert out.diverged.all()
    s = gbl.spread(out)
    assert s.n_diverged == 4 and np.isnan(s.mean) and np.isnan(s.success_rate(1.0))
    assert "all 4 seeds diverged" in s.summary()


def test_bad_sweep_arguments_raise():
    for kwargs, message in [(dict(seeds=0), "seeds"), (dict(chunk_size=0), "chunk_size"),
                            (dict(seed_range=(5, 3)), "seed_range"), (dict(steps=0), "steps")]:
        args = dict(key=KEY, seeds=4, steps=10) | kwargs
        with pytest.raises(ValueError, match=message):
            gbl.sweep(MODEL, ADAM, DATA, **args)


def test_auto_chunk_size_follows_the_model_size():
    cpu = jax.devices("cpu")[:1]
    spirals = problems.two_spirals(KEY, 256)
    small = sweeps.auto_chunk_size(gbl.mlp([8], spirals.head), spirals, seeds=4096, steps=300,
                                   batch_size=None, log_every=3, devices=cpu)
    wide = sweeps.auto_chunk_size(gbl.mlp([128], spirals.head), spirals, seeds=4096, steps=300,
                                  batch_size=None, log_every=3, devices=cpu)
    assert wide == 1 and small >= 64   # a wide seed loops; small ones vmap
    assert sweeps.auto_chunk_size(gbl.mlp([8], spirals.head), spirals, seeds=5, steps=300,
                                  batch_size=None, log_every=3, devices=cpu) == 5


SHARDED = textwrap.dedent("""
    import json, sys
    import jax, optax
    import gbl_jax as gbl
    data = gbl.problems.xor()
    model, adam = gbl.mlp([2], data.head), optax.adam(0.05)
    kw = dict(key=jax.random.PRNGKey(7), seeds=10, steps=100, log_every=10)
    many = gbl.sweep(model, adam, data, **kw)
    one = gbl.sweep(model, adam, data, devices=jax.devices()[:1], **kw)
    json.dump({"devices": len(jax.devices()), "chunk": many.chunk_size,
               "many": many.final_loss.tolist(), "one": one.final_loss.tolist(),
               "many_curves": many.losses.tolist(), "one_curves": one.losses.tolist()}, sys.stdout)
""")


def test_sharded_across_four_cpu_devices_equals_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True, env=env,
                          timeout=300, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["devices"] == 4 and out["chunk"] % 4 == 0
    np.testing.assert_allclose(out["many"], out["one"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["many_curves"], out["one_curves"], rtol=1e-4, atol=1e-6)
