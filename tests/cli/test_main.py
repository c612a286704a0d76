"""The gbl-jax command line: end to end in subprocesses, resume and refusals in process.

Finished run folders are made once per module (``plain``, ``two_devices``, ``grid_run``) and
copied where a test changes them.
"""

import csv
import errno
import fcntl
import io
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile

import jax
import numpy as np
import pytest
from test_runstore import damage_member  # tests/cli is on the path beside this file

import gbl_jax as gbl
from gbl_jax.analysis import landscape_report
from gbl_jax.cli import build, runstore
from gbl_jax.cli import main as cli
from gbl_jax.engine import sweeps
from gbl_jax.nets import inits
from gbl_jax.nets.mlp import ACTIVATIONS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = [
    "--problem",
    "xor",
    "--hidden",
    "2",
    "--seeds",
    "12",
    "--steps",
    "200",
    "--chunk-size",
    "4",
    "--cpu-devices",
    "1",
]
GRID = [
    "--problem",
    "xor",
    "--hidden",
    "2",
    "--seeds",
    "8",
    "--steps",
    "100",
    "--chunk-size",
    "4",
    "--cpu-devices",
    "1",
    "--lr",
    "0.01,0.1,0.2",
    "--init-scale",
    "0.5,1",
    "--classify",
    "--keep-params",
    "--grad-tol",
    "1e-4",
]
KINDS = {"minimum", "saddle", "not_converged", "diverged"}


def _run(*args, cwd=ROOT, cache=None):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = " ".join(
        f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f
    )  # not a forced device count
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "gbl_jax.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def _main(*args):
    """The command in this process (JAX's compile cache stays off: it is process-wide)."""
    return cli.main([*args, "--no-compile-cache"])


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _strict_json(path):
    def refuse(token):
        raise AssertionError(f"{path} holds {token}: not strict JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _one_line_error(err, message):
    assert message in err, err
    assert err.startswith("gbl-jax: error:") and err.strip().count("\n") == 0, err


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def plain(tmp_path_factory, cache_home):
    out = tmp_path_factory.mktemp("plain") / "xor"
    old = os.umask(0o022)
    try:
        proc = _run("sweep", *SMALL, "--out", str(out), "--compile-cache", str(cache_home / "xla"))
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory, cache_home):
    out = tmp_path_factory.mktemp("two") / "xor"
    proc = _run(
        "sweep",
        "--problem",
        "xor",
        "--seeds",
        "8",
        "--steps",
        "50",
        "--chunk-size",
        "4",
        "--cpu-devices",
        "2",
        "--out",
        str(out),
        cache=cache_home,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "xor"
    assert _main("sweep", *GRID, "--out", str(out)) == 0
    return out


def test_sweep_writes_every_output_and_a_summary(plain, cache_home):
    out, proc = plain
    results = _strict_json(out / "results.json")
    assert results["config"]["seeds"] == 12 and results["config"]["chunk_size"] == 4
    assert results["config"]["devices"] == 1 and len(results["devices"]) == 1
    assert {"jax", "jaxlib", "gbl_jax"} <= set(results["versions"])
    assert results["spread"]["n"] == 12 and results["compile_s"] > 0
    rows = _csv(out / "final_losses.csv")
    assert list(rows[0]) == ["seed", "final_loss", "diverged"]
    assert [int(r["seed"]) for r in rows] == list(range(12))
    losses = np.array([float(r["final_loss"]) for r in rows])
    np.testing.assert_allclose(results["spread"]["mean"], losses.mean(), rtol=1e-6)
    rate = results["success_rate"]
    assert rate["rate"] == np.mean(losses < 0.1) and rate["interval_95"]["method"] == "Wilson"
    assert results["threshold"] == {"value": 0.1, "rule": results["config"]["threshold_rule"]}
    assert "0.1 nats" in results["threshold"]["rule"]
    saved = gbl.load(out)
    assert saved.losses.shape == (12, 100) and saved.log_every == 2 and saved.params is None
    np.testing.assert_array_equal(saved.final_loss, losses.astype(np.float32))
    for stem in ("final_losses", "curves"):
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    assert "median" in proc.stdout and str(out) in proc.stdout and "0.1 nats" in proc.stdout
    # the files follow the umask (022 here), not mkstemp's 0600
    assert (out / "results.json").stat().st_mode & 0o777 == 0o644
    assert any((out / "chunks").glob("runs_*.npz")) and (out / runstore.MARKER).is_file()
    # the compile cache is on by default and recorded
    assert results["compile_cache"] == str(cache_home / "xla") and any(
        (cache_home / "xla").iterdir()
    )
    # everything in the folder is a file the run folder knows it wrote
    written = {p for p in runstore.RunFolder(out).written()}
    assert {p for p in out.rglob("*") if p.is_file()} - written == {
        out / runstore.MARKER,
        out / runstore.MANIFEST,
    }
    assert {p.name for p in written if p.parent == out} == set(runstore.RunFolder(out).listed())


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gbl-jax {gbl.__version__}"


def test_options_come_from_the_library_registries():
    sweep = cli.parser()._subparsers._group_actions[0].choices["sweep"]
    choices = {a.dest: a.choices for a in sweep._actions}
    assert choices["activation"] == sorted(ACTIVATIONS)
    assert choices["init"] == sorted(inits.INITS)
    assert set(choices["head"]) == {
        "gaussian",
        "heteroscedastic_gaussian",
        "laplace",
        "bernoulli",
        "categorical",
        "mixture_density",
    }


def test_cpu_devices_takes_effect_and_resume_keeps_the_device_count(two_devices, tmp_path):
    results = _strict_json(two_devices / "results.json")
    assert results["devices"] == ["cpu:0", "cpu:1"] and results["config"]["devices"] == 2
    # a lost chunk is recomputed on the stored two devices: the same numbers
    broken = _copy(two_devices, tmp_path / "broken")
    for path in runstore.RunFolder(broken).written():
        if path.name not in ("config.json",) and "runs_000000000000" not in path.name:
            path.unlink()
    assert _main("sweep", "--out", str(broken), "--resume", "--cpu-devices", "1") == 2
    proc = _run("sweep", "--out", str(broken), "--resume", "--no-compile-cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (broken / "final_losses.csv").read_text() == (
        two_devices / "final_losses.csv"
    ).read_text()


def test_existing_results_are_never_overwritten_without_force(plain, tmp_path, capsys):
    out = _copy(plain[0], tmp_path / "run")
    (out / "notes.txt").write_text("mine")
    before = (out / "final_losses.csv").read_bytes()
    assert _main("sweep", *SMALL, "--out", str(out), "--seed", "3") == 2
    _one_line_error(capsys.readouterr().err, "already holds results")
    assert (out / "final_losses.csv").read_bytes() == before
    assert _main("sweep", *SMALL, "--out", str(out), "--seed", "3", "--force") == 0
    assert (out / "final_losses.csv").read_bytes() != before
    assert (out / "notes.txt").read_text() == "mine"


def test_force_never_touches_a_folder_gbl_jax_did_not_make(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "chunks").mkdir(parents=True)
    (out / "config.json").write_text("my notes")
    (out / "chunks" / "part1.txt").write_text("my data")
    assert _main("sweep", *SMALL, "--out", str(out), "--force") == 2
    _one_line_error(capsys.readouterr().err, "did not write")
    assert (out / "config.json").read_text() == "my notes"
    assert (out / "chunks" / "part1.txt").read_text() == "my data"
    assert sorted(p.name for p in out.rglob("*")) == ["chunks", "config.json", "part1.txt"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--problem", "spiral"], "unknown problem"),
        (["--seeds", "0"], "--seeds"),
        (["--steps", "-5"], "--steps"),
        (["--hidden", "4,x"], "--hidden"),
        (["--hidden", "99999999999999999999"], "of host memory"),
        (["--seeds", "100000000000"], "needs about"),
        (["--seed", str(2**70)], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--lr", "inf"], "--lr"),
        (["--lr", "0.1,nan"], "--lr"),
        (["--lr", "0.1,0.1"], "--lr repeats 0.1"),
        (["--lr", "0.1,0.1000000001"], "(as 0.10000000149011612 in float32"),
        (["--grid", "learning_rate=0,0.1"], "--grid learning_rate must be > 0"),
        (["--init-scale", "-1"], "--init-scale"),
        (["--threshold", "nan"], "--threshold"),
        (["--threshold", "-1"], "no seed could succeed"),
        (["--loss", "mse", "--threshold", "0"], "no seed could succeed"),
        (["--grad-tol", "0"], "--grad-tol"),
        (["--cpu-devices", "0"], "--cpu-devices"),
        (["--log-every", "500"], "--log-every"),
        (["--batch-size", "5"], "batch_size"),
        (["--problem", "circles", "--n", "1"], "circles: n"),
        (["--head", "gaussian"], "needs targets"),
        (["--problem", "sine", "--head", "bernoulli"], "shape"),
        (["--optimizer", "lbfgs"], "invalid choice"),
        (["--grad-tol", "1e-4,1e-3"], "--grad-tol takes one number"),
        (["--grad-tol", "1e-50"], "--grad-tol: 1e-50 is 0 in float32"),
        (["--grad-tol", "-1e-4"], "--grad-tol values must be"),  # a negative value needs no "="
        (["--n", "1000000000000"], "--n 1000000000000: problem xor has 4 points"),
        (["--lr", "1e-46"], "float32"),
        (["--init-scale", "1e-50"], "float32"),
        (["--lr", "1e39"], "float32"),
        (
            ["--grid", "beta=0.5"],
            "optimizer adam has no numeric hyperparameter 'beta'; --grid takes "
            "b1, b2, eps, eps_root, learning_rate, init_scale",
        ),
        (
            ["--optimizer", "sgd", "--grid", "momentum=0.9"],
            "--grid takes learning_rate, init_scale",
        ),
        (["--lr", "0.1", "--grid", "learning_rate=0.1,0.2"], "learning_rate is given twice"),
        (["--grid", "b1=0.8", "--grid", "b1=0.9"], "b1 is given twice"),
        (["--grid", "b1"], "--grid takes NAME=VALUES"),
        (["--grid", "b1="], "--grid b1 must be a number"),
        (["--grid", "b1=0.8,high"], "--grid b1 must be a number"),
        (["--grid", "eps=1e-50"], "--grid eps: 1e-50 is 0 in float32"),
        (["--grid", "b2=1e39,0.9"], "--grid b2: 1e+39 is inf in float32"),
    ],
)
def test_bad_input_is_one_line_exit_two_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "bad"
    assert _main("sweep", *SMALL, *args, "--out", str(out)) == 2
    _one_line_error(capsys.readouterr().err, message)
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "100000000000"], "needs about"),
        (["--seed", str(2**70)], "--seed must be an integer in [0, 4294967294]"),
    ],
)
def test_bad_input_in_a_real_process_has_no_traceback(tmp_path, args, message):
    out = tmp_path / "bad"
    proc = _run("sweep", *SMALL, *args, "--out", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    _one_line_error(proc.stderr, message)
    assert not out.exists()


def test_an_out_that_cannot_be_made_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _main("sweep", *SMALL, "--out", str(blocker / "sub")) == 2
    _one_line_error(capsys.readouterr().err, "not writable")
    assert _main("sweep", *SMALL, "--out", "/proc/gbl-jax-test") == 2
    _one_line_error(capsys.readouterr().err, "/proc/gbl-jax-test")
    assert not os.path.exists("/proc/gbl-jax-test")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda doc: "{not json", "not JSON"),
        (
            lambda doc: json.dumps(
                {**doc, "config": {k: v for k, v in doc["config"].items() if k != "steps"}}
            ),
            "lacks steps",
        ),
        (lambda doc: json.dumps({**doc, "config": {**doc["config"], "seeds": "many"}}), "--seeds"),
        (lambda doc: json.dumps([1, 2]), "no \"config\""),
    ]
    + [
        (
            lambda doc, k=key, v=value: json.dumps({**doc, "config": {**doc["config"], k: v}}),
            f"unknown {key} {value!r}",
        )
        for key, value in (
            ("optimizer", ["adam"]),
            ("activation", {"tanh": 1}),
            ("loss", ["nll"]),
            ("problem", ["xor"]),
            ("head", ["bernoulli"]),
            ("init", 0),
        )
    ],
)
def test_a_malformed_config_on_resume_is_one_line(plain, tmp_path, capsys, damage, message):
    out = _copy(plain[0], tmp_path / "run")
    doc = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(damage(doc))
    assert _main("sweep", "--out", str(out), "--resume") == 2
    _one_line_error(capsys.readouterr().err, message)


def test_a_second_writer_is_locked_out(plain, tmp_path, capsys):
    out = _copy(plain[0], tmp_path / "run")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with open(out / runstore.MARKER) as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for extra in (["--resume"], [*SMALL, "--force"]):
            assert _main("sweep", "--out", str(out), *extra) == 2
            _one_line_error(capsys.readouterr().err, "in use by another gbl-jax process")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_all_diverged_gives_strict_json_with_the_reason(tmp_path, capsys):
    out = tmp_path / "bad"
    args = [
        "--problem",
        "xor",
        "--seeds",
        "4",
        "--steps",
        "20",
        "--activation",
        "identity",
        "--optimizer",
        "sgd",
        "--lr",
        "1e10",
        "--cpu-devices",
        "1",
        "--out",
        str(out),
    ]
    assert _main("sweep", *args) == 0
    results = _strict_json(out / "results.json")
    assert results["spread"]["n_diverged"] == 4 and results["spread"]["mean"] is None
    assert results["success_rate"]["rate"] is None and "all seeds diverged" in results["note"]
    assert "all seeds diverged" in capsys.readouterr().out


def _interrupt_after_first_chunk(monkeypatch):
    real_run_plan = sweeps.run_plan

    def interrupted(plan, skip=lambda pos: False):
        for i, chunk in enumerate(real_run_plan(plan, skip)):
            if i == 1:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(sweeps, "run_plan", interrupted)
    return real_run_plan


def test_resume_after_an_interrupt_equals_an_uninterrupted_run(tmp_path, monkeypatch, capsys):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert _main("sweep", *SMALL, "--out", str(whole)) == 0
    real_run_plan = _interrupt_after_first_chunk(monkeypatch)
    assert _main("sweep", *SMALL, "--out", str(broken)) == 130
    assert "--resume" in capsys.readouterr().err
    assert (
        len(list((broken / "chunks").glob("*.npz"))) == 1 and not (broken / "results.json").exists()
    )
    assert _main("sweep", *SMALL, "--out", str(broken)) == 2  # a partial sweep: --resume or --force
    monkeypatch.setattr(sweeps, "run_plan", real_run_plan)
    assert _main("sweep", "--out", str(broken), "--resume", "--seeds", "99") == 2
    assert _main("sweep", "--out", str(broken), "--resume", "--cpu-devices", "2") == 2
    _one_line_error(capsys.readouterr().err.splitlines()[-1], "device")
    assert _main("sweep", "--out", str(broken), "--resume", "--seeds", "12", "--lr", "0.05") == 0
    assert (broken / "final_losses.csv").read_text() == (whole / "final_losses.csv").read_text()


def test_resume_refuses_a_different_grid(tmp_path, monkeypatch, capsys):
    out, _ = _interrupted(tmp_path, monkeypatch)
    capsys.readouterr()
    before = _files(out)
    for grid in ("b1=0.8,0.9", "learning_rate=0.01", "init_scale=0.5"):
        assert _main("sweep", "--out", str(out), "--resume", "--grid", grid) == 2
        # named as given: --grid learning_rate=..., not --lr
        _one_line_error(
            capsys.readouterr().err, f"--grid {grid} conflicts with the interrupted sweep's"
        )
    assert _files(out) == before
    assert _main("sweep", "--out", str(out), "--resume", "--grid", "learning_rate=0.05") == 0


def test_lr_and_init_scale_are_short_forms_of_grid(tmp_path):
    def config(*args):
        args = cli.parser().parse_args(["sweep", *args, "--out", str(tmp_path / "run")])
        return build.resolve_sweep(args)[1]

    assert config("--lr", "0.01,0.05", "--init-scale", "2") == config(
        "--grid", "learning_rate=0.01,0.05", "--grid", "init_scale=2"
    )
    assert config("--lr", "0.01,0.05")["lr"] == [0.01, 0.05] and not (tmp_path / "run").exists()


def test_a_zero_init_scale_runs_and_its_cell_says_identical(tmp_path, capsys):
    # Issue 30 item 10: --init-scale 0 is the zero-init control, refused by the engine since
    # round 3 although round 2 documented it
    out = tmp_path / "zero"
    assert (
        _main(
            "sweep",
            "--problem",
            "xor",
            "--hidden",
            "2",
            "--init-scale",
            "0,1",
            "--seeds",
            "4",
            "--steps",
            "50",
            "--chunk-size",
            "4",
            "--cpu-devices",
            "1",
            "--out",
            str(out),
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "init_scale=0 (identical runs)" in printed and "init_scale=1 (identical" not in printed
    assert _strict_json(out / "results.json")["spread"]["identical"] == [True, False]


def test_a_grid_over_any_hyperparameter_names_its_axes(tmp_path, capsys):
    out = tmp_path / "b1"
    assert (
        _main(
            "sweep",
            "--problem",
            "xor",
            "--hidden",
            "2",
            "--optimizer",
            "adam",
            "--grid",
            "b1=0.8,0.9",
            "--grid",
            "learning_rate=0.01,0.05",
            "--seeds",
            "4",
            "--steps",
            "50",
            "--chunk-size",
            "4",
            "--cpu-devices",
            "1",
            "--out",
            str(out),
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "grid        learning_rate (2) x b1 (2)" in printed
    assert "learning_rate=0.05 b1=0.9" in printed
    assert "adam lr=[0.01, 0.05] b1=[0.8, 0.9]" in printed
    axes = [(lr, b1) for lr in (0.01, 0.05) for b1 in (0.8, 0.9)]
    config = _strict_json(out / "config.json")["config"]
    assert config["lr"] == [0.01, 0.05] and config["grid"] == {"b1": [0.8, 0.9]}
    results = _strict_json(out / "results.json")
    assert results["sweep"]["grid"] == [
        {"name": "learning_rate", "values": [0.01, 0.05]},
        {"name": "b1", "values": [0.8, 0.9]},
    ]
    cells = _csv(out / "cells.csv")
    assert list(cells[0])[:2] == ["learning_rate", "b1"]
    assert [(float(r["learning_rate"]), float(r["b1"])) for r in cells] == axes
    rows = _csv(out / "final_losses.csv")
    assert [(float(r["learning_rate"]), float(r["b1"])) for r in rows] == [
        cell for cell in axes for _ in range(4)
    ]
    losses = np.array([float(r["final_loss"]) for r in rows]).reshape(2, 2, 4)
    assert not np.array_equal(losses[:, 0], losses[:, 1])  # b1 took effect
    saved = gbl.load(out)
    assert saved.grid == {"learning_rate": [0.01, 0.05], "b1": [0.8, 0.9]}
    np.testing.assert_array_equal(saved.cell(learning_rate=0.05, b1=0.8).final_loss, losses[1, 0])
    assert (out / "grid_heatmap.png").is_file()


def _interrupted(tmp_path, monkeypatch):
    """A folder of SMALL interrupted after its first chunk; sweeps.run_plan restored."""
    out = tmp_path / "broken"
    real_run_plan = _interrupt_after_first_chunk(monkeypatch)
    assert _main("sweep", *SMALL, "--out", str(out)) == 130
    monkeypatch.setattr(sweeps, "run_plan", real_run_plan)
    return out, sorted((out / "chunks").iterdir())


def _files(out):
    return {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize("change", ["steps", "lr", "grid", "x64"])
def test_resume_refuses_chunks_another_configuration_made(tmp_path, monkeypatch, capsys, change):
    out, (chunk,) = _interrupted(tmp_path, monkeypatch)
    capsys.readouterr()
    if change != "x64":
        doc = json.loads((out / "config.json").read_text())
        doc["config"][change] = {"steps": 100, "lr": 0.01, "grid": {"b1": 0.8}}[change]
        (out / "config.json").write_text(json.dumps(doc))
    before = _files(out)
    if change == "x64":
        with jax.enable_x64(True):
            assert _main("sweep", "--out", str(out), "--resume") == 2
    else:
        assert _main("sweep", "--out", str(out), "--resume") == 2
    err = capsys.readouterr().err
    _one_line_error(err, chunk.name)
    assert change in err and "--force" in err
    assert _files(out) == before


DAMAGE = {
    "truncated": lambda chunk: chunk.write_bytes(chunk.read_bytes()[:300]),  # a full disk
    "a member's bytes": lambda chunk: damage_member(chunk, "final_loss.npy"),  # a CRC error
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_chunk_is_recomputed_on_resume_and_said(
    plain, tmp_path, monkeypatch, capsys, damage
):
    out, (chunk,) = _interrupted(tmp_path, monkeypatch)
    DAMAGE[damage](chunk)
    capsys.readouterr()
    assert _main("sweep", "--out", str(out), "--resume") == 0
    err = capsys.readouterr().err
    assert f"{chunk} is damaged" in err and "recomputing" in err
    assert (out / "final_losses.csv").read_text() == (plain[0] / "final_losses.csv").read_text()


def test_a_chunk_of_another_chunking_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    out, (chunk,) = _interrupted(tmp_path, monkeypatch)
    stray = chunk.with_name("runs_000000000002-000000000006.npz")
    shutil.copy(chunk, stray)
    capsys.readouterr()
    before = _files(out)
    assert _main("sweep", "--out", str(out), "--resume") == 2
    _one_line_error(capsys.readouterr().err, f"{stray} is not a chunk of this sweep")
    assert _files(out) == before


def test_a_full_disk_while_writing_figures_names_the_file_and_resume_finishes(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "full"
    real_fsync = os.fsync

    def fsync(fd):  # the disk fills up while a PDF figure is written
        if ".pdf" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert _main("sweep", *SMALL, "--out", str(out)) == 2
    err = capsys.readouterr().err.splitlines()[-1]  # after the progress bar
    _one_line_error(err, "No space left on device")
    assert f"{out / 'final_losses.pdf'}" in err and f"gbl-jax sweep --out {out} --resume" in err
    assert not list(out.glob("*.pdf")) and not list(out.glob(".*.tmp"))  # no half a figure
    assert not (out / "results.json").exists()
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert _main("sweep", "--out", str(out), "--resume") == 0
    assert (out / "results.json").exists() and (out / "final_losses.pdf").stat().st_size > 1000


def test_a_second_multi_process_run_is_refused_before_it_starts(plain, tmp_path, capsys):
    out = _copy(plain[0], tmp_path / "run")
    before = _files(out)
    for held in (fcntl.LOCK_SH, fcntl.LOCK_EX):  # however the running sweep holds the folder
        with open(out / runstore.MARKER) as f:
            fcntl.flock(f, held | fcntl.LOCK_NB)
            for extra in (["--force"], ["--resume"]):
                args = [*SMALL, *extra] if extra == ["--force"] else extra
                assert _main("sweep", "--out", str(out), "--processes", "2", *args) == 2
                err = capsys.readouterr().err
                _one_line_error(err, "in use by another gbl-jax process")
                assert "started" not in err and "--resume" not in err
    assert _files(out) == before


def test_landscape_of_a_truncated_sweep_is_one_line(grid_run, tmp_path, capsys):
    out = _copy(grid_run, tmp_path / "run")
    arrays = out / "sweep.npz"
    arrays.write_bytes(arrays.read_bytes()[:1000])
    assert (
        _main(
            "landscape", "--out", str(out), "--cell", "learning_rate=0.1", "--cell", "init_scale=1"
        )
        == 2
    )
    _one_line_error(capsys.readouterr().err, f"{arrays} cannot be read")


def test_tour_refuses_a_seed_jax_cannot_take(capsys):
    assert cli.main(["tour", "--seed", "99999999999999999999"]) == 2
    _one_line_error(capsys.readouterr().err, "--seed must be an integer in [0, 4294967294]")


def test_a_grid_writes_one_row_per_cell_and_seed(grid_run):
    rows = _csv(grid_run / "final_losses.csv")
    assert list(rows[0]) == [
        "learning_rate",
        "init_scale",
        "seed",
        "final_loss",
        "diverged",
        "converged_step",
        "kind",
        "grad_norm",
        "min_eig",
        "max_eig",
        "index",
    ]
    cells = [(float(r["learning_rate"]), float(r["init_scale"])) for r in rows]
    assert cells == [(lr, s) for lr in (0.01, 0.1, 0.2) for s in (0.5, 1.0) for _ in range(8)]
    assert [int(r["seed"]) for r in rows] == list(range(8)) * 6
    results = _strict_json(grid_run / "results.json")
    # the axes in the arrays' order, not sorted by name (a dict would be sorted in the file)
    assert results["sweep"]["grid"] == [
        {"name": "learning_rate", "values": [0.01, 0.1, 0.2]},
        {"name": "init_scale", "values": [0.5, 1.0]},
    ]
    assert "order" in results["sweep"]["grid_order"]
    losses = np.array([float(r["final_loss"]) for r in rows]).reshape(3, 2, 8)
    rate = results["success_rate"]
    np.testing.assert_allclose(rate["rate"], np.mean(losses < 0.1, axis=-1))
    low, high = np.array(rate["interval_95"]["low"]), np.array(rate["interval_95"]["high"])
    assert low.shape == (3, 2) and np.all(low <= np.array(rate["rate"])) and np.all(high >= low)
    np.testing.assert_allclose(results["spread"]["median"], np.median(losses, axis=-1), rtol=1e-6)
    for stem in ("grid_success", "grid_heatmap", "critical_points"):
        assert (grid_run / f"{stem}.png").is_file() and (grid_run / f"{stem}.pdf").is_file()


def test_classify_and_grad_tol_add_per_seed_columns_and_counts(grid_run):
    rows = _csv(grid_run / "final_losses.csv")
    results = _strict_json(grid_run / "results.json")
    kinds = [r["kind"] for r in rows]
    assert set(kinds) <= KINDS
    counts = results["critical_points"]["counts"]
    assert counts == {k: kinds.count(k) for k in KINDS}
    per_cell = np.array(results["critical_points"]["counts_per_cell"]["not_converged"])
    assert per_cell.shape == (3, 2) and per_cell.sum() == counts["not_converged"]
    for r in rows:
        assert (float(r["grad_norm"]) > 1e-4) == (r["kind"] == "not_converged")
        assert float(r["min_eig"]) <= float(r["max_eig"]) and int(r["converged_step"]) >= -1
    assert results["converged"]["grad_tol"] == 1e-4
    assert results["classify_s"] > 0  # timed apart from the sweep's wall_s


def test_keep_params_stores_every_runs_params(grid_run):
    saved = gbl.load(grid_run)
    assert saved.params["hidden"][0]["w"].shape == (3, 2, 8, 2, 2)
    assert saved.init_params["head"]["w"].shape == (3, 2, 8, 2, 1)
    assert saved.diverged.shape == (3, 2, 8) and saved.grid == {
        "learning_rate": [0.01, 0.1, 0.2],
        "init_scale": [0.5, 1.0],
    }
    cell = saved.cell(learning_rate=0.2, init_scale=0.5)
    np.testing.assert_array_equal(cell.params["head"]["b"], saved.params["head"]["b"][2, 0])
    assert gbl.critical_points(
        gbl.mlp([2], gbl.heads.bernoulli()), gbl.problems.xor(), cell
    ).kind.shape == (8,)


def test_cells_csv_has_one_row_per_cell_in_the_arrays_order(grid_run):
    cells = _csv(grid_run / "cells.csv")
    results = _strict_json(grid_run / "results.json")
    rate = np.array(results["success_rate"]["rate"])
    assert [(float(r["learning_rate"]), float(r["init_scale"])) for r in cells] == [
        (lr, s) for lr in (0.01, 0.1, 0.2) for s in (0.5, 1.0)
    ]
    np.testing.assert_allclose([float(r["success_rate"]) for r in cells], rate.reshape(-1))
    np.testing.assert_allclose(
        [float(r["median"]) for r in cells], np.array(results["spread"]["median"]).reshape(-1)
    )
    assert all(
        float(r["success_low"]) <= float(r["success_rate"]) <= float(r["success_high"])
        for r in cells
    )


def test_compare_pairs_two_run_folders(grid_run, plain, capsys):
    assert (
        _main(
            "compare",
            str(grid_run),
            str(grid_run),
            "--cell",
            "learning_rate=0.2",
            "--cell",
            "init_scale=1",
            "--resamples",
            "200",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "McNemar" in printed and "p = 1" in printed
    # a grid without --cell, seeds that are not paired: one line, exit 2
    assert _main("compare", str(grid_run), str(grid_run)) == 2
    _one_line_error(capsys.readouterr().err.splitlines()[-1], "--cell")
    # 12 seeds against 8: not paired, so compared as independent samples, without McNemar
    assert (
        _main(
            "compare",
            str(plain[0]),
            str(grid_run),
            "--cell",
            "learning_rate=0.2",
            "--cell",
            "init_scale=1",
            "--resamples",
            "200",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "final_loss, A vs B, 12 and 8 unpaired seeds" in printed and "McNemar" not in printed
    assert "mann-whitney p = " in printed
    # a threshold asks for the success table, which needs pairs: one line, exit 2
    assert (
        _main(
            "compare",
            str(plain[0]),
            str(grid_run),
            "--cell",
            "learning_rate=0.2",
            "--cell",
            "init_scale=1",
            "--threshold",
            "0.1",
        )
        == 2
    )
    _one_line_error(capsys.readouterr().err.splitlines()[-1], "out_a has 12 seeds and out_b 8")
    assert _main("compare", str(grid_run), "/nonexistent") == 2
    capsys.readouterr()
    assert (
        _main(
            "compare",
            str(grid_run),
            str(grid_run),
            "--cell",
            "learning_rate=0.2",
            "--cell",
            "init_scale=1",
            "--resamples",
            str(10**12),
        )
        == 2
    )
    _one_line_error(capsys.readouterr().err, "--resamples must be an integer in [100, 10000000]")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda out: _edit_results(out, lambda d: d.update(format="3")), "the integer 3"),
        (lambda out: _edit_results(out, lambda d: d["sweep"].pop("grid")), "grid is missing"),
        (
            lambda out: _edit_results(out, lambda d: d["sweep"]["grid"].reverse()),
            "disagrees with the arrays",
        ),
        (lambda out: _fifo(out / "sweep.npz"), "FIFO"),
    ],
)
def test_compare_and_landscape_of_a_damaged_folder_are_one_line(
    grid_run, tmp_path, capsys, damage, message
):
    out = _copy(grid_run, tmp_path / "run")
    damage(out)
    cell = ["--cell", "learning_rate=0.2", "--cell", "init_scale=1"]
    assert _main("compare", str(out), str(grid_run), *cell) == 2
    _one_line_error(capsys.readouterr().err, message)
    assert _main("landscape", "--out", str(out), *cell) == 2
    _one_line_error(capsys.readouterr().err, message)


def _edit_results(out, edit):
    doc = json.loads((out / "results.json").read_text())
    edit(doc)
    (out / "results.json").write_text(json.dumps(doc))


def _fifo(path):
    path.unlink()
    os.mkfifo(path)


def test_a_grid_resumes_to_the_same_results(grid_run, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    _interrupt_after_first_chunk(monkeypatch)
    assert _main("sweep", *GRID, "--out", str(broken)) == 130
    monkeypatch.undo()
    assert _main("sweep", "--out", str(broken), "--resume") == 0
    assert (broken / "final_losses.csv").read_text() == (grid_run / "final_losses.csv").read_text()


def test_landscape_of_a_sweep_with_params(grid_run, tmp_path, capsys):
    out = _copy(grid_run, tmp_path / "run")
    for cell, words in (
        (["--cell", "3"], "--cell takes NAME=VALUE"),
        ([], "name a value of every grid axis; learning_rate has [0.01, 0.1, 0.2]"),
        (["--cell", "learning_rate=0.3"], "learning_rate=0.3 is not on the grid"),
    ):
        assert _main("landscape", "--out", str(out), *cell) == 2
        _one_line_error(capsys.readouterr().err, words)
    assert (
        _main(
            "landscape",
            "--out",
            str(out),
            "--cell",
            "learning_rate=0.1",
            "--cell",
            "init_scale=1",
            "--pairs",
            "4",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "monotone paths" in printed and "basin" in printed
    report = _strict_json(out / "landscape.json")
    assert report["cell"] == {"learning_rate": 0.1, "init_scale": 1.0}
    assert 0 <= report["interpolation"]["monotone_share"] <= 1
    assert len(report["barriers"]["seeds"]) == 4
    unaligned, aligned = (np.array(report["barriers"][k]) for k in ("unaligned", "aligned"))
    assert unaligned.shape == aligned.shape == (4, 4) and np.allclose(unaligned, unaligned.T)
    assert sum(report["basins"]["count"]) == 8 - report["diverged"]
    assert len(_csv(out / "interpolation.csv")) == 8 * 25
    assert len(_csv(out / "barriers.csv")) == 6 and len(_csv(out / "basins.csv")) == 8
    assert (out / "landscape.png").is_file() and (out / "landscape.pdf").is_file()


def test_a_data_file_that_would_not_fit_is_refused_before_it_is_read(tmp_path, capsys):
    bomb = tmp_path / "bomb.npz"  # a few hundred bytes declaring 8 TB
    with zipfile.ZipFile(bomb, "w") as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
        )
        archive.writestr("x.npy", header.getvalue())
        archive.writestr("y.npy", header.getvalue())
    assert (
        _main(
            "sweep",
            "--data",
            str(bomb),
            "--seeds",
            "2",
            "--steps",
            "2",
            "--cpu-devices",
            "1",
            "--out",
            str(tmp_path / "out"),
        )
        == 2
    )
    _one_line_error(
        capsys.readouterr().err,
        "its arrays (14.6 TiB, x4 while training) needs about 58.2 TiB of host memory",
    )
    assert not (tmp_path / "out").exists()


def test_landscape_refuses_a_num_that_would_not_fit_before_any_work(grid_run, tmp_path, capsys):
    out = _copy(grid_run, tmp_path / "run")
    before = _files(out)
    assert (
        _main(
            "landscape",
            "--out",
            str(out),
            "--num",
            "1000000000",
            "--cell",
            "learning_rate=0.1",
            "--cell",
            "init_scale=1",
        )
        == 2
    )
    _one_line_error(capsys.readouterr().err, "this landscape needs about")
    assert _files(out) == before


def test_landscape_refuses_a_sweep_without_params(plain, capsys):
    assert _main("landscape", "--out", str(plain[0])) == 2
    _one_line_error(capsys.readouterr().err, "--keep-params")


@pytest.mark.parametrize(
    "problem", ["xor", "two_spirals", "circles", "sine", "bishop_inverse", "teacher_student"]
)
def test_every_problem_runs_with_its_default_head_and_threshold(problem, tmp_path, capsys):
    out = tmp_path / problem
    size = [] if problem == "xor" else ["--n", "32"]  # xor's four points are fixed
    args = [
        "sweep",
        "--problem",
        problem,
        "--hidden",
        "3",
        "--seeds",
        "4",
        "--steps",
        "20",
        *size,
        "--cpu-devices",
        "1",
        "--out",
        str(out),
    ]
    assert _main(*args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    results = _strict_json(out / "results.json")
    assert results["config"]["problem"] == problem and results["spread"]["n"] == 4
    assert len(_csv(out / "final_losses.csv")) == 4
    threshold = results["threshold"]
    assert threshold["rule"].startswith("default") and threshold["rule"] in printed
    if problem == "sine":  # unit-variance Gaussian NLL of an R^2 = 0.9 fit, not 0.1 nats
        import jax

        from gbl_jax.data import problems

        y = np.asarray(problems.make("sine", jax.random.PRNGKey(1), 32).y, np.float64)
        expected = 0.5 * math.log(2 * math.pi) + 0.05 * y.var()
        assert (
            threshold["value"] == pytest.approx(expected, rel=1e-5)
            and "R^2 = 0.9" in threshold["rule"]
        )


def test_problems_and_tour(capsys):
    assert cli.main(["problems"]) == 0
    listed = capsys.readouterr().out
    assert "bishop_inverse" in listed and "two_spirals" in listed
    assert cli.main(["tour"]) == 0
    nll_line = next(line for line in capsys.readouterr().out.splitlines() if "nll =" in line)
    values = [float(part.split()[0]) for part in nll_line.split("=")[1:]]
    assert abs(values[0] - values[-1]) < 1e-5


def test_two_processes_give_the_same_results_as_one(plain, tmp_path, cache_home):
    out = tmp_path / "two"
    proc = _run("sweep", *SMALL, "--out", str(out), "--processes", "2", cache=cache_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "started 2 processes" in proc.stderr and "median" in proc.stdout
    assert _strict_json(out / "results.json")["processes"] == 2
    assert (out / "final_losses.csv").read_text() == (plain[0] / "final_losses.csv").read_text()


def test_a_killed_process_is_reported_and_resume_completes(plain, tmp_path, cache_home):
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", XDG_CACHE_HOME=str(cache_home))
    env["XLA_FLAGS"] = " ".join(
        f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f
    )  # not a forced device count
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gbl_jax.cli.main",
            "sweep",
            *SMALL,
            "--out",
            str(out),
            "--processes",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        started = next(line for line in launcher.stderr if "started 2 processes" in line)
        second = int(started.split("pids ")[1].split(")")[0].split(", ")[1])
        deadline = time.time() + 120  # the sweep has started: process 0 made the run folder
        while not (out / "config.json").exists() and time.time() < deadline:
            time.sleep(0.02)
        os.kill(second, signal.SIGKILL)
        _, err = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode == 1 and "process 1 exited" in err and "--resume" in err
    assert not (out / "results.json").exists()
    assert _main("sweep", "--out", str(out), "--resume") == 0
    assert (out / "final_losses.csv").read_text() == (plain[0] / "final_losses.csv").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--processes", "2"], "needs --out"),
        (["--coordinator", "127.0.0.1:1", "--out", "x"], "go together"),
        (
            [
                "--coordinator",
                "127.0.0.1:1",
                "--num-processes",
                "2",
                "--process-id",
                "2",
                "--out",
                "x",
            ],
            "--process-id",
        ),
        (
            ["--coordinator", "bogus", "--num-processes", "2", "--process-id", "1", "--out", "x"],
            "--coordinator must be HOST:PORT",
        ),
        (
            [
                "--coordinator",
                "127.0.0.1:1",
                "--num-processes",
                "2",
                "--process-id",
                "1",
                "--join-timeout",
                "1,2",
                "--out",
                "x",
            ],
            "--join-timeout takes one number",
        ),
    ],
)
def test_multi_process_options_are_checked(tmp_path, capsys, args, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _main("sweep", *SMALL, *args) == 2
    _one_line_error(capsys.readouterr().err, message)
    assert not list(tmp_path.iterdir())


def test_a_missing_coordinator_or_a_taken_port_is_one_line_in_bounded_time(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert (
            _main(
                "sweep",
                *SMALL,
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                "0",
                "--out",
                "x",
            )
            == 2
        )
        _one_line_error(capsys.readouterr().err, f"cannot listen on the coordinator's port {port}")
    begin = time.monotonic()  # the port is free now: nothing answers there
    assert (
        _main(
            "sweep",
            *SMALL,
            "--coordinator",
            f"127.0.0.1:{port}",
            "--num-processes",
            "2",
            "--process-id",
            "1",
            "--join-timeout",
            "1",
            "--out",
            "x",
        )
        == 2
    )
    assert time.monotonic() - begin < 30
    _one_line_error(
        capsys.readouterr().err, f"no coordinator answered at 127.0.0.1:{port} within 1 s"
    )
    assert not list(tmp_path.iterdir())


USER_MODULE = '''
import numpy as np
import gbl_jax as gbl

def net():
    return gbl.mlp([4], gbl.heads.categorical(3), activation="relu")

def flat():   # apply returns raw scores, not a distribution
    return gbl.Model(lambda k, x: {"w": np.zeros((x.shape[1], 2), np.float32)},
                     lambda p, x: x @ p["w"])

def env_net():   # a width the module's source does not show
    import os
    return gbl.mlp([int(os.environ.get("GBL_TEST_WIDTH", "4"))], gbl.heads.categorical(3))

def flax_net():
    import flax.linen as nn
    return gbl.models.from_flax(nn.Dense(3), gbl.Categorical)

def leave():
    import sys
    sys.exit(0)

def blobs():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = (rng.normal(size=(60, 2)) + 3 * np.eye(3)[y, :2]).astype(np.float32)
    test = gbl.problems.Data(x[:15] + 0.1, y[:15])
    return gbl.problems.Data(x, y, gbl.heads.categorical(3), "blobs", test=test)

def text():
    return "xy"

def mapping():
    return {"x": np.zeros((4, 2)), "y": np.zeros(4)}

def inf_labels():
    return np.zeros((4, 2), np.float32), np.array([0.0, 1.0, np.inf, 1.0])

def half_labels():
    return np.zeros((4, 2), np.float32), np.array([0.0, 1.0, 0.5, 1.0])
'''
USER = ["--seeds", "8", "--steps", "40", "--chunk-size", "4", "--cpu-devices", "1"]


@pytest.fixture()
def user_folder(tmp_path, monkeypatch):
    """A folder with the user's own module (named for the test) and data file, made current."""
    name = f"usernet_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    rng = np.random.default_rng(1)
    y = np.arange(40) % 2
    x = rng.normal(size=(40, 3)) + y[:, None]
    np.savez(tmp_path / "mine.npz", x=x, y=y, x_test=x[:10] * 1.1, y_test=y[:10])
    monkeypatch.chdir(tmp_path)
    return tmp_path, name


@pytest.mark.parametrize(
    "fn, message",
    [
        ("text", "returned str; expected"),
        ("mapping", "returned dict; expected"),
        ("inf_labels", "y[2] = inf is not finite"),
        ("half_labels", "--head categorical needs integer labels [N] with >= 2 classes"),
    ],
)
def test_data_a_function_returns_is_one_line_when_unusable(user_folder, capsys, fn, message):
    folder, name = user_folder
    assert (
        _main(
            "sweep",
            "--data",
            f"{name}:{fn}",
            "--head",
            "categorical",
            *USER,
            "--out",
            str(folder / "run"),
        )
        == 2
    )
    _one_line_error(capsys.readouterr().err, message)
    assert not (folder / "run").exists()


def test_data_file_with_a_test_split_reports_test_nll_and_accuracy(user_folder, capsys):
    folder, _ = user_folder
    out = folder / "run"
    assert _main("sweep", "--data", "mine.npz", "--hidden", "3", *USER, "--out", str(out)) == 0
    rows = _csv(out / "final_losses.csv")
    assert list(rows[0]) == [
        "seed",
        "final_loss",
        "diverged",
        "accuracy",
        "test_accuracy",
        "test_nll",
    ]
    results = _strict_json(out / "results.json")
    acc = np.array([float(r["test_accuracy"]) for r in rows])
    assert results["test"]["accuracy"]["mean"] == pytest.approx(acc.mean(), rel=1e-6)
    assert results["test"]["accuracy"]["best_minus_worst"] == pytest.approx(acc.max() - acc.min())
    assert all(0 <= a <= 1 for a in acc) and "test accuracy" in capsys.readouterr().out
    assert (out / "test_accuracy.png").is_file()
    config = _strict_json(out / "config.json")["config"]
    assert config["data"] == str(folder / "mine.npz") and len(config["data_sha256"]) == 64
    # the same data's test accuracy by hand, for seed 3, from the saved params-free result
    saved = gbl.load(out)
    np.testing.assert_array_equal(saved.final_metrics["test_accuracy"], acc.astype(np.float32))


def test_own_model_and_data_by_import_path(user_folder, capsys):
    folder, name = user_folder
    out = folder / "run"
    assert (
        _main(
            "sweep", "--model", f"{name}:net", "--data", f"{name}:blobs", *USER, "--out", str(out)
        )
        == 0
    )
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["model", f"{name}:net"] in rows and ["data", f"{name}:blobs"] in rows
    assert not any(row[:1] in (["problem"], ["hidden"]) for row in rows)  # not what ran
    config = _strict_json(out / "config.json")["config"]
    assert config["model"] == f"{name}:net" and len(config["model_sha256"]) == 64
    assert config["data"] == f"{name}:blobs" and config["problem"] is None
    assert "test_nll" in _csv(out / "final_losses.csv")[0]


def test_own_code_refusals_are_one_line(user_folder, capsys):
    folder, name = user_folder
    os.mkfifo(folder / "pipe.npz")
    cases = [
        (["--model", f"{name}:net", "--hidden", "8"], "ignores --hidden; drop it"),
        (["--model", f"{name}:net", "--hidden", "2"], "ignores --hidden; drop it"),
        (
            ["--model", f"{name}:net", "--activation", "tanh", "--init", "glorot_normal"],
            "ignores --activation, --init; drop them",
        ),
        (["--data", "mine.npz", "--problem", "xor"], "--data replaces --problem"),
        (["--data", "missing.npz"], "no such file"),
        (["--data", "."], "--data .: is a directory, not a regular file"),
        (["--data", "pipe.npz"], "--data pipe.npz: is a FIFO, not a regular file"),
        (["--model", f"{name}:leave", "--data", "mine.npz"], "leave() called sys.exit(0)"),
        (["--model", f"{name}:nothing", "--data", "mine.npz"], "nothing is not defined"),
        (["--model", "nomodule_q:net", "--data", "mine.npz"], "no module named"),
        (["--model", f"{name}:flat", "--data", "mine.npz"], "has no log_prob"),
    ]
    for args, words in cases:
        assert _main("sweep", *args, *USER, "--out", str(folder / "refused")) == 2
        _one_line_error(capsys.readouterr().err.strip().splitlines()[-1], words)
    assert not (folder / "refused").exists()


def test_resume_refuses_changed_data_or_model(user_folder, monkeypatch, capsys):
    folder, name = user_folder
    out = folder / "run"
    _interrupt_after_first_chunk(monkeypatch)
    args = ["--model", f"{name}:net", "--data", "mine.npz", *USER, "--out", str(out)]
    assert _main("sweep", *args) == 130
    monkeypatch.undo()
    monkeypatch.chdir(folder)
    assert _main("sweep", "--out", str(out), "--resume", "--hidden", "2") == 2  # the default
    _one_line_error(capsys.readouterr().err.strip().splitlines()[-1], "ignores --hidden")
    with np.load(folder / "mine.npz") as f:
        arrays = dict(f)
    arrays["x"][0, 0] += 1.0
    np.savez(folder / "mine.npz", **arrays)
    resume = ["--out", str(out), "--resume", "--model", f"{name}:net"]
    assert _main("sweep", *resume) == 2
    _one_line_error(capsys.readouterr().err.strip().splitlines()[-1], "--data")
    arrays["x"][0, 0] -= 1.0
    np.savez(folder / "mine.npz", **arrays)
    (folder / f"{name}.py").write_text(USER_MODULE + "\n# edited\n")
    assert _main("sweep", *resume) == 2
    _one_line_error(capsys.readouterr().err.strip().splitlines()[-1], "--model")
    (folder / f"{name}.py").write_text(USER_MODULE)
    assert _main("sweep", *resume) == 0


PAYLOAD = '''
import pathlib
import numpy as np
import gbl_jax as gbl

def ran():
    pathlib.Path(MARKER).touch()

ran()   # on import, and in each function

def net():
    ran()
    return gbl.mlp([2], gbl.heads.bernoulli())

def points():
    ran()
    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    return gbl.problems.Data(x, (x[:, 0] > 0).astype(np.int32), gbl.heads.bernoulli(), "points")
'''


def test_a_run_folder_never_runs_the_code_it_names(user_folder):
    folder, name = user_folder
    marker, payload = folder / "payload_ran", f"payload_{name}"
    (folder / f"{payload}.py").write_text(PAYLOAD.replace("MARKER", repr(str(marker))))
    out = folder / "sent"
    code = ["--model", f"{payload}:net", "--data", f"{payload}:points"]
    assert _main("sweep", *code, "--keep-params", *USER, "--out", str(out)) == 0
    marker.unlink()
    shutil.copy(folder / f"{payload}.py", out)  # the folder as sent: its payload beside it
    for args in (
        ["landscape", "--out", "."],
        ["sweep", "--out", ".", "--resume"],
        ["landscape", "--out", ".", "--data", f"{payload}:points"],
    ):
        proc = _run(*args, cwd=out)  # a fresh process: nothing imported or cached before
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        _one_line_error(proc.stderr, f"add --model {payload}:net")
        assert not marker.exists()
    proc = _run("landscape", "--out", ".", *code, "--pairs", "2", "--num", "3", cwd=out)
    assert proc.returncode == 0 and marker.exists(), proc.stderr[-2000:]  # named: it runs


def test_resume_refuses_a_model_built_otherwise_from_the_same_source(
    user_folder, monkeypatch, capsys
):
    folder, name = user_folder
    out = folder / "run"
    monkeypatch.setenv("GBL_TEST_WIDTH", "4")
    real_run_plan = _interrupt_after_first_chunk(monkeypatch)
    args = ["--model", f"{name}:env_net", "--data", f"{name}:blobs"]
    assert _main("sweep", *args, *USER, "--out", str(out)) == 130
    monkeypatch.setattr(sweeps, "run_plan", real_run_plan)
    monkeypatch.setenv("GBL_TEST_WIDTH", "6")
    build.clear_cache()  # as a new process would build it
    capsys.readouterr()
    assert _main("sweep", "--out", str(out), "--resume", *args) == 2
    _one_line_error(
        capsys.readouterr().err,
        f"--model {name}:env_net builds other params than "
        "this sweep began with (['head']['w']: float32[4, 3] then, "
        "float32[6, 3] now)",
    )
    monkeypatch.setenv("GBL_TEST_WIDTH", "4")
    build.clear_cache()
    assert _main("sweep", "--out", str(out), "--resume", *args) == 0


def test_a_folder_from_before_the_params_fingerprint_resumes_and_says_so(
    user_folder, monkeypatch, capsys
):
    folder, name = user_folder
    out = folder / "run"
    real_run_plan = _interrupt_after_first_chunk(monkeypatch)
    args = ["--model", f"{name}:net", "--data", "mine.npz"]
    assert _main("sweep", *args, *USER, "--out", str(out)) == 130
    monkeypatch.setattr(sweeps, "run_plan", real_run_plan)
    new = ("params_sha256", "params_shapes")
    doc = json.loads((out / "config.json").read_text())
    assert all(key in doc["config"] for key in new)
    (out / "config.json").write_text(
        json.dumps({**doc, "config": {k: v for k, v in doc["config"].items() if k not in new}})
    )
    for path in (out / "chunks").glob("*.npz"):  # stamped as an older gbl-jax stamped them
        with np.load(path) as f:
            arrays = dict(f)
        stamp = json.loads(str(arrays[runstore.MADE_BY]))
        stamp["config"] = {k: v for k, v in stamp["config"].items() if k not in new}
        np.savez(
            path, **{**arrays, runstore.MADE_BY: np.asarray(json.dumps(stamp, sort_keys=True))}
        )
    capsys.readouterr()
    assert _main("sweep", "--out", str(out), "--resume", "--model", f"{name}:net") == 0
    assert "predates the fingerprint of the built params" in capsys.readouterr().err


def test_landscape_refuses_data_changed_since_the_sweep(user_folder, capsys):
    folder, _ = user_folder
    out = folder / "run"
    assert (
        _main(
            "sweep",
            "--data",
            "mine.npz",
            "--hidden",
            "2",
            "--keep-params",
            *USER,
            "--out",
            str(out),
        )
        == 0
    )
    with np.load(folder / "mine.npz") as f:
        arrays = dict(f)
    arrays["y"][0] = 1 - arrays["y"][0]
    np.savez(folder / "mine.npz", **arrays)
    capsys.readouterr()
    assert _main("landscape", "--out", str(out)) == 2
    _one_line_error(
        capsys.readouterr().err, f"--data {folder / 'mine.npz'} changed since this sweep began"
    )
    assert not (out / "landscape.json").exists()


def test_landscape_of_a_flax_model_without_alignment(user_folder, capsys):
    folder, name = user_folder
    out = folder / "run"
    model = ["--model", f"{name}:flax_net"]
    assert (
        _main("sweep", *model, "--data", "mine.npz", "--keep-params", *USER, "--out", str(out)) == 0
    )
    capsys.readouterr()
    assert _main("landscape", "--out", str(out), *model, "--pairs", "3") == 2
    _one_line_error(capsys.readouterr().err, "is not gbl.mlp params")
    assert (
        _main(
            "landscape", "--out", str(out), *model, "--pairs", "3", "--num", "5", "--align", "none"
        )
        == 0
    )
    assert "not aligned (--align none)" in capsys.readouterr().out
    report = _strict_json(out / "landscape.json")
    assert report["align"] == "none" and report["barriers"]["aligned"] is None
    assert report["barriers"]["median_aligned"] is None and len(report["barriers"]["seeds"]) == 3
    assert list(_csv(out / "barriers.csv")[0]) == ["seed_a", "seed_b", "barrier"]


def test_landscape_of_a_model_aligns_by_permutations_only(user_folder, monkeypatch, capsys):
    # config.json holds the default activation (tanh), not the --model's (relu here): sign flips,
    # right only for odd activations, would change this net's function and its aligned barriers
    folder, name = user_folder
    out = folder / "run"
    code = ["--model", f"{name}:net", "--data", f"{name}:blobs"]
    assert _main("sweep", *code, "--keep-params", *USER, "--out", str(out)) == 0
    seen, real_align = [], landscape_report.align

    def spy(*args, activation, **kwargs):
        seen.append(activation)
        return real_align(*args, activation=activation, **kwargs)

    monkeypatch.setattr(landscape_report, "align", spy)
    assert _main("landscape", "--out", str(out), *code, "--pairs", "3", "--num", "3") == 0
    assert seen and not {"tanh", "identity"} & set(seen)


def test_two_processes_run_the_users_model_and_data(user_folder, cache_home):
    folder, name = user_folder
    one, two = folder / "one", folder / "two"
    args = ["--model", f"{name}:net", "--data", "mine.npz", *USER[:-2]]
    assert _main("sweep", *args, "--cpu-devices", "1", "--out", str(one)) == 0
    proc = _run("sweep", *args, "--out", str(two), "--processes", "2", cwd=folder, cache=cache_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _strict_json(two / "results.json")["processes"] == 2
    assert (two / "final_losses.csv").read_text() == (one / "final_losses.csv").read_text()


LEARNED_SCALE_MODULE = '''
import jax
import jax.numpy as jnp
import gbl_jax as gbl


def _init(key, x):
    return {"loc": jnp.zeros(1), "raw_scale": jnp.zeros(1)}


def _apply(p, x):   # a constant predictor whose scale is fitted
    shape = (x.shape[0], 1)
    return gbl.Normal(jnp.broadcast_to(p["loc"], shape),
                      jnp.broadcast_to(jax.nn.softplus(p["raw_scale"]), shape))


def constant():
    return gbl.Model(_init, _apply)
'''


def test_a_model_that_learns_its_scale_gets_the_learned_scale_threshold(tmp_path, monkeypatch):
    # Issue 30: the default threshold of a --model came from the data's head (a unit-variance
    # Gaussian for float targets), so a constant predictor with a fitted scale passed 100%
    name = f"scalenet_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(LEARNED_SCALE_MODULE)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 2))
    np.savez(tmp_path / "reg.npz", x=x, y=0.5 * rng.normal(size=(40, 1)) + x[:, :1])
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert (
        _main(
            "sweep",
            "--model",
            f"{name}:constant",
            "--data",
            "reg.npz",
            "--seeds",
            "2",
            "--steps",
            "300",
            "--lr",
            "0.05",
            "--cpu-devices",
            "1",
            "--out",
            str(out),
        )
        == 0
    )
    results = _strict_json(out / "results.json")
    assert "fitted variance" in results["threshold"]["rule"]
    y = np.load(tmp_path / "reg.npz")["y"]
    assert results["threshold"]["value"] == pytest.approx(
        0.5 * np.log(2 * np.pi * np.e * 0.1 * y.var()), rel=1e-5
    )
    assert results["success_rate"]["rate"] == 0.0


def test_the_help_names_only_files_the_run_folder_has(capsys):
    # Issue 30: --keep-params's help named params.npz, a file this version never writes
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "initial and final params in sweep.npz" in text and "params.npz" not in text.replace(
        "sweep.npz", ""
    )


def test_the_package_runs_as_python_dash_m():
    # cli/__main__.py imported a name that does not exist, so `python -m gbl_jax.cli` failed
    proc = subprocess.run(
        [sys.executable, "-m", "gbl_jax.cli", "problems"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu"),
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "xor" in proc.stdout


def test_compare_of_a_metric_refuses_runs_on_different_data(plain, tmp_path, capsys):
    # Issue 31: a breast-cancer run against an XOR run reported "256 paired seeds"
    other = tmp_path / "circles"
    assert (
        _main(
            "sweep",
            "--problem",
            "circles",
            "--hidden",
            "2",
            "--seeds",
            "12",
            "--steps",
            "50",
            "--cpu-devices",
            "1",
            "--out",
            str(other),
        )
        == 0
    )
    capsys.readouterr()
    assert _main("compare", str(plain[0]), str(other), "--resamples", "200") == 2
    _one_line_error(capsys.readouterr().err, "different data or losses (problem 'xor' vs 'circles'")
    assert (
        _main(
            "compare",
            str(plain[0]),
            str(other),
            "--resamples",
            "200",
            "--allow-different",
            "--metric",
            "final_loss",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "compared as asked: problem 'xor' vs 'circles'" in printed
    assert "12 paired seeds" in printed and "wilcoxon p = " in printed
    assert _main("compare", str(plain[0]), str(plain[0]), "--metric", "test_accuracy") == 2
    _one_line_error(capsys.readouterr().err, "no metric 'test_accuracy' in this result")


def test_a_crossed_design_reports_its_variance_components(tmp_path, capsys):
    out = tmp_path / "crossed"
    assert (
        _main(
            "sweep",
            "--problem",
            "circles",
            "--hidden",
            "3",
            "--crossed",
            "3,2",
            "--batch-size",
            "16",
            "--steps",
            "60",
            "--cpu-devices",
            "1",
            "--out",
            str(out),
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "variance (3 x 2)" in printed and "(95% bootstrap)" in printed
    results = _strict_json(out / "results.json")
    assert results["config"]["crossed"] == [3, 2] and results["config"]["seeds"] == 6
    metric = results["metric"]
    assert metric["name"] == "final_loss"  # no held-out split
    vc = metric["variance_components"]
    saved = gbl.load(out)
    assert saved.crossed == (3, 2)
    expected = gbl.variance_components(saved, resamples=100)
    assert [vc[k] for k in ("init", "data", "residual")] == pytest.approx(
        [expected.init, expected.data, expected.residual], rel=1e-6
    )
    rows = _csv(out / "final_losses.csv")
    assert [int(r["init_seed"]) for r in rows] == [0, 0, 1, 1, 2, 2]
    assert [int(r["data_seed"]) for r in rows] == [0, 1, 0, 1, 0, 1]
    cells = _csv(out / "cells.csv")
    assert (
        float(cells[0]["final_loss_mean_low"])
        <= float(cells[0]["final_loss_mean"])
        <= float(cells[0]["final_loss_mean_high"])
    )
    for args, words in (
        (["--crossed", "3"], "--crossed takes INITS,ORDERS"),
        (["--crossed", "3,1"], "two integers >= 2"),
        (["--crossed", "3,2", "--seeds", "5"], "runs 6 seeds; drop --seeds 5"),
        (["--crossed", "2,2"], "with full batches"),
    ):
        assert (
            _main(
                "sweep",
                "--problem",
                "circles",
                *args,
                "--steps",
                "10",
                "--cpu-devices",
                "1",
                "--out",
                str(tmp_path / "refused"),
            )
            == 2
        )
        _one_line_error(capsys.readouterr().err.strip().splitlines()[-1], words)


def test_the_reported_metric_defaults_to_test_accuracy_with_intervals(user_folder, capsys):
    folder, _ = user_folder
    out = folder / "metric"
    assert (
        _main(
            "sweep",
            "--data",
            "mine.npz",
            "--hidden",
            "3",
            "--lr",
            "0.01,0.1",
            *USER,
            "--out",
            str(out),
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "mean test_accuracy (95% CI)" in printed
    results = _strict_json(out / "results.json")
    metric = results["metric"]
    acc = gbl.load(out).final_metrics["test_accuracy"].astype(np.float64)
    assert metric["name"] == "test_accuracy"
    np.testing.assert_allclose(metric["mean"], acc.mean(axis=1), rtol=1e-6)
    assert all(
        lo <= m <= hi
        for lo, m, hi in zip(
            metric["mean_interval"]["low"], metric["mean"], metric["mean_interval"]["high"]
        )
    )
    cells = _csv(out / "cells.csv")
    assert [float(c["test_accuracy_mean"]) for c in cells] == pytest.approx(acc.mean(axis=1))
    assert (
        _main(
            "sweep",
            "--data",
            "mine.npz",
            "--hidden",
            "3",
            "--metric",
            "brier",
            *USER,
            "--out",
            str(folder / "refused"),
        )
        == 2
    )
    _one_line_error(
        capsys.readouterr().err.strip().splitlines()[-1],
        "--metric brier: this run measures final_loss, accuracy, test_nll",
    )


def test_hidden_given_several_times_is_a_model_axis(tmp_path, capsys):
    # Issue 31 item 5: the width as an axis at the command line, one sweep per model
    out = tmp_path / "widths"
    args = [
        "--problem",
        "xor",
        "--hidden",
        "2",
        "3",
        "--seeds",
        "8",
        "--steps",
        "100",
        "--cpu-devices",
        "1",
        "--out",
        str(out),
    ]
    assert _main("sweep", *args) == 0
    printed = capsys.readouterr().out
    assert "final_loss per --hidden (8 seeds each" in printed and "hidden=3 " in printed
    stacked = gbl.load(out)
    assert stacked.grid == {"hidden": [2.0, 3.0]} and stacked.model_axes == ("hidden",)
    for width in (2, 3):
        alone = gbl.load(out / f"hidden-{width}")
        np.testing.assert_array_equal(stacked.cell(hidden=width).final_loss, alone.final_loss)
    cells = _csv(out / "cells.csv")
    assert [float(c["hidden"]) for c in cells] == [2.0, 3.0]
    assert (out / "models.png").is_file()
    # resuming a finished axis keeps both runs and rebuilds the stacked result
    (out / "results.json").unlink()
    assert _main("sweep", "--hidden", "2", "3", "--out", str(out), "--resume") == 0
    assert "hidden-2 is finished; kept" in capsys.readouterr().out
    np.testing.assert_array_equal(gbl.load(out).final_loss, stacked.final_loss)
    for extra, words in (
        (["--hidden", "2", "2"], "repeats a value"),
        (["--hidden", "2", "4,x"], "--hidden must be a comma list"),
        ([], "already holds files; pass --force"),
        (["--processes", "2"], "one sweep per model in this process"),
    ):
        assert _main("sweep", *args, *extra) == 2
        _one_line_error(capsys.readouterr().err.strip().splitlines()[-1], words)


def test_keep_predictions_and_the_ensemble_command(user_folder, capsys):
    # Issue 32: each seed's predictions kept in the run folder, read by gbl-jax ensemble
    folder, _ = user_folder
    out = folder / "kept"
    assert (
        _main(
            "sweep",
            "--data",
            "mine.npz",
            "--hidden",
            "3",
            *USER,
            "--keep-predictions",
            "--out",
            str(out),
        )
        == 0
    )
    capsys.readouterr()
    saved = gbl.load(out)
    assert isinstance(saved.predictions, gbl.Categorical)
    assert saved.predictions.logits.shape == (8, 10, 2)
    assert _main("ensemble", str(out), "--sizes", "1,2,8,64", "--draws", "3") == 0
    printed = capsys.readouterr().out
    assert "disagreement" in printed and "x the mean test error" in printed
    rows = _csv(out / "ensemble.csv")
    assert [int(r["size"]) for r in rows] == [1, 2, 8]  # 64 > 8 seeds: dropped
    y = np.load(folder / "mine.npz")["y_test"]
    expected = gbl.ensemble(saved, y, sizes=(8,), draws=1).values["nll"][0, 0]
    assert float(rows[-1]["nll"]) == pytest.approx(expected, rel=1e-6)
    assert (out / "ensemble.png").is_file()
    plain = folder / "plain"
    assert _main("sweep", "--data", "mine.npz", "--hidden", "3", *USER, "--out", str(plain)) == 0
    capsys.readouterr()
    assert _main("ensemble", str(plain)) == 2
    _one_line_error(
        capsys.readouterr().err, "kept no predictions: run the sweep with --keep-predictions"
    )
    assert (
        _main(
            "sweep",
            "--problem",
            "xor",
            "--seeds",
            "2",
            "--steps",
            "5",
            "--cpu-devices",
            "1",
            "--keep-predictions",
            "--out",
            str(folder / "xor"),
        )
        == 2
    )
    _one_line_error(capsys.readouterr().err, "this data has none")
