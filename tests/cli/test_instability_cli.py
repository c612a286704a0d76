"""gbl-jax instability: the API's numbers in a run folder that resumes, locks and refuses."""

import csv
import fcntl
import io
import json
import shutil

import jax
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax.cli import main as cli
from gbl_jax.cli import runstore

ARGS = [
    "--problem",
    "two_spirals",
    "--n",
    "64",
    "--hidden",
    "6",
    "--optimizer",
    "momentum",
    "--lr",
    "0.05",
    "--batch-size",
    "16",
    "--steps",
    "24",
    "--at",
    "0,8,24",
    "--parents",
    "3",
    "--seed",
    "2",
]


def _main(*args):
    return cli.main(["instability", *args])


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("inst") / "run"
    assert _main(*ARGS, "--out", str(out)) == 0
    return out


def test_the_folder_holds_the_apis_barriers(finished):
    data = gbl.problems.two_spirals(jax.random.PRNGKey(3), 64)  # the command's data: seed + 1
    res = gbl.instability(
        gbl.mlp([6], gbl.heads.bernoulli()),
        optax.sgd(0.05, momentum=0.9),
        data,
        key=jax.random.PRNGKey(2),
        parents=3,
        steps=24,
        at=(0, 8, 24),
        batch_size=16,
    )
    rows = _rows(finished / "instability.csv")
    assert len(rows) == 3 * 3
    got = np.asarray([float(r["error_barrier"]) for r in rows]).reshape(3, 3, 1)
    np.testing.assert_allclose(got, res.barriers["error"], atol=1e-7)
    stable = _rows(finished / "stable.csv")
    rate = res.stable_rate(0.02)
    np.testing.assert_allclose([float(r["error_rate"]) for r in stable], rate.rate)
    np.testing.assert_allclose([float(r["error_low"]) for r in stable], rate.low)
    report = json.loads((finished / "instability.json").read_text())
    assert report["crossing"]["error"] == rate.crossing(0.5)
    assert (finished / "instability.png").stat().st_size > 0


def test_resume_runs_only_the_k_not_saved(finished, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    for name in ("instability.json", "instability_k000000024.npz"):
        (out / name).unlink()  # interrupted after k = 8
    with np.load(out / "instability_k000000000.npz") as f:
        arrays = dict(f)
    arrays["barrier/error"] = np.full_like(arrays["barrier/error"], 0.5)  # marks k = 0 as read
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (out / "instability_k000000000.npz").write_bytes(buffer.getvalue())
    assert _main("--out", str(out), "--resume") == 0
    rows, before = _rows(out / "instability.csv"), _rows(finished / "instability.csv")
    assert all(float(r["error_barrier"]) == 0.5 for r in rows if r["k"] == "0")
    # k = 24 ran again, its parents continued from the state saved at k = 8: the same numbers
    assert [r for r in rows if r["k"] != "0"] == [r for r in before if r["k"] != "0"]
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "already holds results; pass --resume"),
        (["--resume"], "is finished; --force runs it again"),
    ],
)
def test_finished_results_are_never_overwritten_silently(finished, extra, message, capsys):
    before = {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    args = ["--out", str(finished), *extra] if extra else [*ARGS, "--out", str(finished)]
    assert _main(*args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()} == before


def test_a_second_writer_is_locked_out_and_bad_options_are_one_line(finished, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    (out / "instability.json").unlink()
    with open(out / runstore.MARKER) as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert _main("--out", str(out), "--resume") == 2
        assert "in use by another gbl-jax process" in capsys.readouterr().err
    for args, message in (
        (["--at", "0,30"], "past --steps"),
        (["--at", "1.5"], "integer"),
        (["--children", "1"], "children"),
        (["--tol", "a,b"], "tol"),
        (["--batch-size", "64"], "identical with full batches"),
    ):
        assert _main(*ARGS, *args, "--out", str(tmp_path / "new")) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not (tmp_path / "new").exists()  # refused before anything is written
    assert _main("--out", str(out), "--resume", "--parents", "5") == 2
    assert "drop --parents" in capsys.readouterr().err


def test_sweep_probes_and_perturb_at_the_command_line(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert (
        cli.main(
            [
                "sweep",
                "--problem",
                "xor",
                "--hidden",
                "2",
                "--optimizer",
                "sgd",
                "--lr",
                "0.5",
                "--seeds",
                "4",
                "--steps",
                "50",
                "--probe",
                "sharpness",
                "--probe",
                "distance_from_init",
                "--vary",
                "perturb",
                "--cpu-devices",
                "1",
                "--no-compile-cache",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    got = gbl.load(out)
    want = gbl.sweep(
        gbl.mlp([2], gbl.heads.bernoulli()),
        optax.sgd(0.5),
        gbl.problems.xor(),
        key=jax.random.PRNGKey(0),
        seeds=4,
        steps=50,
        vary=("perturb",),
        probes={
            "sharpness": gbl.probes.sharpness(),
            "distance_from_init": gbl.probes.distance_from_init(),
        },
    )
    assert got.vary == ("perturb",)
    for name in want.probes:
        np.testing.assert_allclose(got.probes[name], want.probes[name], rtol=1e-5, atol=1e-7)
    for args, message in (
        (["--probe", "hessian"], "probe"),
        (["--vary", "seeds"], "vary"),
        (["--probe", "grad_norm", "--grad-tol", "1e-3"], "--grad-tol"),
    ):
        assert (
            cli.main(
                [
                    "sweep",
                    "--problem",
                    "xor",
                    "--seeds",
                    "2",
                    "--steps",
                    "5",
                    *args,
                    "--out",
                    str(tmp_path / "bad"),
                ]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
