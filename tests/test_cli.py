"""The gbl-jax command line: end to end in subprocesses, resume in process."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gbl_jax import cli, sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--problem", "xor", "--hidden", "2", "--seeds", "12", "--steps", "200", "--chunk-size", "4",
         "--cpu-devices", "1"]


def _run(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    return subprocess.run([sys.executable, "-m", "gbl_jax.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_sweep_writes_every_output_and_a_summary(tmp_path):
    out = tmp_path / "xor"
    proc = _run("sweep", *SMALL, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["seeds"] == 12 and results["config"]["chunk_size"] == 4
    assert results["config"]["devices"] == 1
    assert {"jax", "jaxlib", "gbl_jax"} <= set(results["versions"])
    assert results["spread"]["n"] == 12 and results["compile_s"] > 0 and results["devices"]
    rows = _csv(out / "final_losses.csv")
    assert [int(r["seed"]) for r in rows] == list(range(12))
    losses = np.array([float(r["final_loss"]) for r in rows])
    np.testing.assert_allclose(results["spread"]["mean"], losses.mean(), rtol=1e-6)
    curves = np.load(out / "curves.npz")
    assert curves["losses"].shape == (12, 100) and int(curves["log_every"]) == 2
    for png in ("final_losses.png", "curves.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "median" in proc.stdout and str(out) in proc.stdout


def test_existing_results_are_never_overwritten_without_force(tmp_path):
    out = tmp_path / "run"
    assert _run("sweep", *SMALL, "--out", str(out)).returncode == 0
    before = (out / "final_losses.csv").read_bytes()
    again = _run("sweep", *SMALL, "--out", str(out), "--seed", "3")
    assert again.returncode == 2 and "already holds results" in again.stderr
    assert (out / "final_losses.csv").read_bytes() == before
    forced = _run("sweep", *SMALL, "--out", str(out), "--seed", "3", "--force")
    assert forced.returncode == 0 and (out / "final_losses.csv").read_bytes() != before


@pytest.mark.parametrize("args, message", [
    (["--problem", "spiral"], "unknown problem"),
    (["--seeds", "0"], "--seeds"),
    (["--steps", "-5"], "--steps"),
    (["--hidden", "4,x"], "--hidden"),
    (["--head", "gaussian"], "needs targets"),
    (["--problem", "sine", "--head", "bernoulli"], "shape"),
    (["--optimizer", "lbfgs"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_two_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "bad"
    proc = _run("sweep", *SMALL, *args, "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("gbl-jax: error:")
    assert not out.exists()


def test_unwritable_out_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = _run("sweep", *SMALL, "--out", str(blocker / "sub"))
    assert proc.returncode == 2 and "not writable" in proc.stderr


def test_problems_and_tour():
    listed = _run("problems")
    assert listed.returncode == 0 and "bishop_inverse" in listed.stdout and "two_spirals" in listed.stdout
    tour = _run("tour")
    assert tour.returncode == 0, tour.stderr
    nll_line = next(line for line in tour.stdout.splitlines() if "nll =" in line)
    values = [float(part.split()[0]) for part in nll_line.split("=")[1:]]
    assert abs(values[0] - values[-1]) < 1e-5


def test_resume_after_an_interrupt_equals_an_uninterrupted_run(tmp_path, monkeypatch, capsys):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert cli.main(["sweep", *SMALL, "--out", str(whole)]) == 0

    real_run_plan = sweeps.run_plan

    def interrupted(plan, skip=lambda start: False):
        for i, chunk in enumerate(real_run_plan(plan, skip)):
            if i == 1:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(sweeps, "run_plan", interrupted)
    assert cli.main(["sweep", *SMALL, "--out", str(broken)]) == 130
    assert "--resume" in capsys.readouterr().err
    assert len(list((broken / "chunks").glob("*.npz"))) == 1 and not (broken / "results.json").exists()
    again = cli.main(["sweep", *SMALL, "--out", str(broken)])
    assert again == 2   # holds a partial sweep: needs --resume or --force
    monkeypatch.setattr(sweeps, "run_plan", real_run_plan)
    assert cli.main(["sweep", "--out", str(broken), "--resume", "--seeds", "99"]) == 2
    assert cli.main(["sweep", "--out", str(broken), "--resume"]) == 0
    assert (broken / "final_losses.csv").read_text() == (whole / "final_losses.csv").read_text()


@pytest.mark.parametrize("problem", ["xor", "two_spirals", "circles", "sine", "bishop_inverse",
                                     "teacher_student"])
def test_every_problem_runs_with_its_default_head(problem, tmp_path, capsys):
    out = tmp_path / problem
    args = ["sweep", "--problem", problem, "--hidden", "3", "--seeds", "4", "--steps", "20", "--n", "32",
            "--cpu-devices", "1", "--out", str(out)]
    assert cli.main(args) == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["problem"] == problem and results["spread"]["n"] == 4
    assert len(_csv(out / "final_losses.csv")) == 4
