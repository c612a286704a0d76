"""Tests for ``gbl-jax surface DIR`` (gbl_jax.cli.surface)."""

import csv
import json

import jax
import numpy as np
import pytest

import gbl_jax as gbl
from gbl_jax.cli import build, runstore
from gbl_jax.cli import main as cli

SWEEP = [
    "--problem",
    "two_spirals",
    "--n",
    "48",
    "--hidden",
    "6",
    "--seeds",
    "5",
    "--steps",
    "200",
    "--cpu-devices",
    "1",
    "--no-compile-cache",
]


def _main(*args):
    return cli.main([*args, "--no-compile-cache"])


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _one_line_error(err, message):
    assert message in err, err
    assert err.startswith("gbl-jax: error:") and err.strip().count("\n") == 0, err


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    out = tmp_path_factory.mktemp("surface") / "run"
    assert cli.main(["sweep", *SWEEP, "--keep-params", "--out", str(out)]) == 0
    return out


def test_surface_command_matches_the_api_and_never_overwrites(kept, capsys):
    capsys.readouterr()
    assert (
        _main(
            "surface",
            str(kept),
            "--points",
            "5",
            "--span",
            "0.5",
            "--seed",
            "3",
            "--curve-pairs",
            "2",
            "--curve-steps",
            "100",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "loss at the center" in printed and "median barrier" in printed
    saved = gbl.load(kept)
    report = json.loads((kept / "surface.json").read_text())
    np.testing.assert_allclose(report["center"]["loss"], saved.final_loss, rtol=1e-5)
    run = build.build(build.stored_config(runstore.RunFolder(kept)))
    s = gbl.surface(
        run.model, run.data, saved, points=5, span=0.5, key=jax.random.PRNGKey(3), loss=run.loss
    )
    rows = _csv(kept / "surface.csv")
    assert len(rows) == 5 * 25
    np.testing.assert_allclose(
        [float(r["loss"]) for r in rows], s.values["loss"].reshape(-1), rtol=1e-5
    )
    bez = _csv(kept / "bezier.csv")
    a = jax.tree.map(lambda p: p[0:4:2], saved.params)
    b = jax.tree.map(lambda p: p[1:4:2], saved.params)
    line = np.array([float(r["line"]) for r in bez]).reshape(2, -1)
    np.testing.assert_allclose(
        line,
        gbl.interpolate(run.model, run.data, a, b, num=line.shape[1], loss=run.loss),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        report["curves"]["line_barrier"],
        gbl.barrier(run.model, run.data, a, b, loss=run.loss),
        rtol=1e-5,
        atol=1e-6,
    )
    for name in ("surface.png", "surface.pdf", "bezier.png", "bezier.pdf"):
        assert (kept / name).is_file()
    assert (kept / "curves.png").is_file()  # the sweep's own figure is left alone
    before = (kept / "surface.csv").read_bytes()
    assert _main("surface", str(kept), "--points", "3") == 2
    _one_line_error(capsys.readouterr().err, "already holds surface.csv")
    assert (kept / "surface.csv").read_bytes() == before
    assert (
        _main("surface", str(kept), "--points", "3", "--dims", "1", "--draws", "2", "--tag", "one")
        == 0
    )
    assert len(_csv(kept / "surface-one.csv")) == 5 * 2 * 3
    assert "surface-one.csv" in runstore.RunFolder(kept).listed()


def test_surface_command_refuses_bad_runs_and_options(kept, tmp_path, capsys):
    plain = tmp_path / "plain"
    assert cli.main(["sweep", *SWEEP, "--out", str(plain)]) == 0
    capsys.readouterr()
    assert _main("surface", str(plain)) == 2
    _one_line_error(capsys.readouterr().err, "kept no params: run the sweep with --keep-params")
    assert _main("surface", str(kept), "--directions", "pca") == 2
    _one_line_error(capsys.readouterr().err, "keep_trajectory=True")
    assert _main("surface", str(kept), "--dims", "3") == 2
    _one_line_error(capsys.readouterr().err, "dims")
    assert _main("surface", str(kept), "--curve-pairs", "3", "--tag", "x") == 2
    _one_line_error(capsys.readouterr().err, "needs 6 non-diverged seeds")
    assert _main("surface", str(kept), "--tag", "../x") == 2
    _one_line_error(capsys.readouterr().err, "--tag")
