"""Every experiment script runs end to end (tiny settings) and writes its table and figure."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {
    "xor_failure_rates": ["--seeds", "4", "--steps", "20", "--widths", "2,3"],
    "convex_control": ["--seeds", "4", "--steps", "20"],
    "width_spread": ["--seeds", "2", "--steps", "10", "--widths", "2,4"],
    "safran_shamir": ["--seeds", "2", "--steps", "600", "--ks", "4", "--grad-tol", "0.02"],
    "xor_critical_points": ["--seeds", "8", "--steps", "2000", "--grad-tol", "0.005",
                            "--perturb-seeds", "4", "--widths", "2"],
    "bishop_mdn": ["--steps", "10", "--n", "50"],
    "mse_vs_nll": ["--steps", "3"],
    "noise_sources": ["--seeds", "2", "--steps", "10"],
    "lr_init_grid": ["--seeds", "4", "--steps", "20"],
    "landscape": ["--seeds", "4", "--steps", "10", "--pairs-of", "3", "--widths", "4,8"],
    "mnist1d_seeds": ["--seeds", "4", "--cnn-seeds", "2", "--vary-seeds", "2", "--steps", "20"],
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_script_writes_a_table_and_a_figure(name, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", f"{name}.py"), *TINY[name],
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, env=env,
                          cwd=os.path.join(ROOT, "scripts"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (tmp_path / f"{name}.md").read_text()
    assert table.startswith("| ") and "Made by `python scripts/" in table
    assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_runs_a_workload_at_a_given_seed_count(tmp_path):
    """The benchmark a GPU session runs in one call: --only/--seeds, the JSON and its tables."""
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench.py"), "--only",
                           "small", "--seeds", "8", "--rounds", "1", "--skip-memory", "--out",
                           str(out)], capture_output=True, text=True, timeout=600, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = {r["contender"]: r for r in result["rows"]}
    assert {"loop", "vmap", "sweep"} <= set(rows) and {r["workload"] for r in rows.values()} == {
        "small-8"}
    assert all(r["seeds"] == 8 and r["run_s"] > 0 for r in rows.values())
    ratio = result["time_over_best_plain"]["small-8"]["sweep"]
    best_plain = min(rows["loop"]["run_s"], rows["vmap"]["run_s"])
    assert ratio == pytest.approx(rows["sweep"]["run_s"] / best_plain)
    assert "| small-8 (8 x 2-8-1) | sweep |" in proc.stdout


def test_bench_mnist1d_times_sweep_against_a_hand_written_vmap(tmp_path):
    """Same keys, same minibatches: the sweep's and the hand-written training's final losses agree
    (after 5 steps, before rounding has grown), and the timed calls compile nothing."""
    pytest.importorskip("mnist1d")
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_mnist1d.py"),
                           "--seeds", "2", "--steps", "5", "--rounds", "1", "--skip-sharded",
                           "--out", str(out)], capture_output=True, text=True, timeout=600,
                          env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {(r["workload"], r["contender"]): r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {("mlp", "hand"), ("mlp", "sweep"), ("cnn", "hand"), ("cnn", "sweep")}
    for (workload, contender), r in rows.items():
        assert r["seeds"] == 2 and r["steps"] == 5 and r["compiles_in_timed_calls"] == 0
        assert r["max_abs_final_loss_difference_vs_hand"] < 1e-5, (workload, contender)
        assert r["ratio_median"] == pytest.approx(rows[(workload, "hand")]["median_s"]
                                                  / r["median_s"])
    assert "| cnn | sweep | 2 | 5 |" in proc.stdout
