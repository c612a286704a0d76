"""Every experiment script runs end to end (tiny settings) and writes its table and figure."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import gbl_jax as gbl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {
    "xor_failure_rates": ["--seeds", "4", "--steps", "20", "--widths", "2,3"],
    "convex_control": ["--seeds", "4", "--steps", "20"],
    "width_spread": ["--seeds", "2", "--steps", "10", "--widths", "2,4"],
    "safran_shamir": ["--seeds", "2", "--steps", "600", "--ks", "4", "--grad-tol", "0.02"],
    "xor_critical_points": [
        "--seeds",
        "8",
        "--steps",
        "2000",
        "--grad-tol",
        "0.005",
        "--perturb-seeds",
        "4",
        "--widths",
        "2",
    ],
    "bishop_mdn": ["--steps", "10", "--n", "50"],
    "mse_vs_nll": ["--steps", "3"],
    "noise_sources": ["--seeds", "2", "--steps", "10"],
    "lr_init_grid": ["--seeds", "4", "--steps", "20"],
    "landscape": ["--seeds", "4", "--steps", "10", "--pairs-of", "3", "--widths", "4,8"],
    "mnist1d_seeds": ["--seeds", "4", "--cnn-seeds", "2", "--vary-seeds", "2", "--steps", "20"],
    "seed_variance": ["--inits", "2", "--orders", "2", "--steps", "10", "--widths", "4,8"],
    "seed_ensembles": ["--seeds", "4", "--steps", "10", "--draws", "2", "--sizes", "1,2,4"],
    "instability": [
        "--parents",
        "2",
        "--steps",
        "20",
        "--at",
        "0,10",
        "--eos-steps",
        "60",
        "--eos-seeds",
        "2",
        "--perturb-seeds",
        "2",
    ],
    "surface_speed": [
        "--seeds",
        "2",
        "--points",
        "5",
        "--steps",
        "10",
        "--loop-sample",
        "3",
        "--matmul",
        "256",
    ],
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_script_writes_a_table_and_a_figure(name, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", f"{name}.py"),
            *TINY[name],
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=os.path.join(ROOT, "scripts"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (tmp_path / f"{name}.md").read_text()
    assert table.startswith("| ") and "Made by `python scripts/" in table
    assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_runs_a_workload_at_a_given_seed_count(tmp_path):
    """The benchmark a GPU session runs in one call: --only/--seeds, the JSON and its tables."""
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", "bench.py"),
            "--only",
            "small",
            "--seeds",
            "8",
            "--rounds",
            "1",
            "--skip-memory",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = {r["contender"]: r for r in result["rows"]}
    assert {"loop", "vmap", "sweep"} <= set(rows) and {r["workload"] for r in rows.values()} == {
        "small-8"
    }
    assert all(r["seeds"] == 8 and r["run_s"] > 0 for r in rows.values())
    ratio = result["time_over_best_plain"]["small-8"]["sweep"]
    best_plain = min(rows["loop"]["run_s"], rows["vmap"]["run_s"])
    assert ratio == pytest.approx(rows["sweep"]["run_s"] / best_plain)
    assert "| small-8 (8 x 2-8-1) | sweep |" in proc.stdout


def test_bench_c_reference_trains_as_optax_adam_does_from_the_same_weights(tmp_path):
    """scripts/tiny_mlp_ref.c (bench.py's c-ref contender): from given weights, 50 full-batch
    Adam steps on XOR end at the loss plain JAX + optax.adam reaches from them (1e-4 relative).
    Skipped when there is no C compiler."""
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler")
    import jax
    import jax.numpy as jnp
    import optax

    spec = importlib.util.spec_from_file_location(
        "bench", os.path.join(ROOT, "scripts", "bench.py")
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    hid, steps, lr = 3, 50, 0.05
    exe, _ = bench.build_c_ref(hid)
    assert exe is not None, "a C compiler is present but tiny_mlp_ref.c did not compile"
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0], np.float32)
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(2, hid)).astype(np.float32), 0.1 * rng.normal(size=hid)
    w2, b2 = rng.normal(size=hid).astype(np.float32), np.float32(0.2)
    params = [w1, b1.astype(np.float32), w2, b2]
    bench.write_c_data(str(tmp_path / "xor.txt"), x, y)
    (tmp_path / "init.txt").write_text(
        " ".join(repr(float(v)) for p in params for v in np.ravel(p))
    )
    out = bench.run_c_ref(exe, str(tmp_path / "xor.txt"), steps, 3, lr, str(tmp_path / "init.txt"))

    def loss(p):
        z = jnp.tanh(x @ p[0] + p[1][None]) @ p[2] + p[3][None]
        return jnp.mean(optax.sigmoid_binary_cross_entropy(z, y))

    opt = optax.adam(lr)

    @jax.jit
    def step(p, s):
        u, s = opt.update(jax.grad(loss)(p), s, p)
        return optax.apply_updates(p, u), s

    p, s = [jnp.asarray(v) for v in params], None
    s = opt.init(p)
    for _ in range(steps):
        p, s = step(p, s)
    expected = float(loss(p))
    assert abs(expected - float(loss([jnp.asarray(v) for v in params]))) > 0.05  # it trained
    assert out["first_final_loss"] == pytest.approx(expected, rel=1e-4)
    assert out["mean_final_loss"] == pytest.approx(expected, rel=1e-4)  # all 3 seeds alike
    assert out["fail_fraction"] in (0.0, 1.0) and out["loop_s"] > 0


def test_bench_mnist1d_times_sweep_against_a_hand_written_vmap(tmp_path):
    """Same keys, same minibatches: the sweep's and the hand-written training's final losses agree
    (after 5 steps, before rounding has grown), and the timed calls compile nothing."""
    pytest.importorskip("mnist1d")
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", "bench_mnist1d.py"),
            "--seeds",
            "2",
            "--steps",
            "5",
            "--rounds",
            "1",
            "--skip-sharded",
            "--no-torch",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {(r["workload"], r["contender"]): r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {("mlp", "hand"), ("mlp", "sweep"), ("cnn", "hand"), ("cnn", "sweep")}
    for (workload, contender), r in rows.items():
        assert r["seeds"] == 2 and r["steps"] == 5 and r["compiles_in_timed_calls"] == 0
        assert r["max_abs_final_loss_difference_vs_hand"] < 1e-5, (workload, contender)
        assert r["ratio_median"] == pytest.approx(
            rows[(workload, "hand")]["median_s"] / r["median_s"]
        )
    assert "| cnn | sweep | 2 | 5 |" in proc.stdout


def test_profile_mnist1d_times_the_step_s_parts_and_the_epoch_order(tmp_path):
    """The engine's epoch order equals jax's in the profile's own run, and every part is timed."""
    pytest.importorskip("mnist1d")
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    out = tmp_path / "profile.json"
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", "profile_mnist1d.py"),
            "--seeds",
            "2",
            "--steps",
            "2",
            "--sweep-steps",
            "5",
            "--rounds",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["orders_identical"] is True and result["seeds"] == 2
    assert set(result["best"]) == {
        "step",
        "fwd+bwd",
        "adam",
        "gather",
        "order-jax",
        "order-gbl",
        "sweep",
        "sweep-init",
        "sweep-1loop",
    }
    assert all(v > 0 for v in result["best"].values())


def test_bench_mnist1d_s_pytorch_peer_trains_the_same_nets():
    """Where torch is installed: its MLP and CNN train (the full-data loss falls from about
    log 10 = 2.30 at init) and it times beside the others at two step counts."""
    pytest.importorskip("torch")
    pytest.importorskip("mnist1d")
    spec = importlib.util.spec_from_file_location(
        "bench_mnist1d", os.path.join(ROOT, "scripts", "bench_mnist1d.py")
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data = gbl.problems.mnist1d()
    for name in ("mlp", "cnn"):
        untrained = bench.make_torch(name, 3, 0, data)()
        trained = bench.make_torch(name, 3, 60, data)()
        assert untrained.shape == (3,) and np.all(np.abs(untrained - np.log(10)) < 0.6), name
        assert np.all(trained < untrained - 0.2), (name, untrained, trained)
