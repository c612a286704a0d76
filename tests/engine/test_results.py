"""Results as data: one grid cell, tidy frames, and the run folder saved and loaded exactly."""

import json
import math
import os
import shutil
import zipfile

import jax
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax.engine import results

LR, SCALE = [0.01, 0.05, 0.2], [0.5, 1.0]  # a non-square grid: 3 x 2, lr first


@pytest.fixture(scope="module")
def grid_out():
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.05)
    return gbl.sweep(
        gbl.mlp([2], gbl.heads.bernoulli()),
        opt,
        gbl.problems.xor(),
        key=jax.random.PRNGKey(0),
        seeds=6,
        steps=60,
        grid={"learning_rate": LR, "init_scale": SCALE},
        keep_params=True,
        metrics={"accuracy": lambda d, y: ((d.logits > 0) == (y > 0)).mean()},
        grad_tol=1e-6,
    )


def _equal(a, b):
    """Every array of two results equal (NaN equal to NaN), and the same grid and settings."""
    for name in ("final_loss", "diverged", "losses", "keys", "converged_step"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert np.asarray(getattr(a, name)).dtype == np.asarray(getattr(b, name)).dtype, name
    for name in ("metrics", "final_metrics"):
        assert list(getattr(a, name)) == list(getattr(b, name))
        for k in getattr(a, name):
            np.testing.assert_array_equal(getattr(a, name)[k], getattr(b, name)[k])
    for name in ("params", "init_params"):
        assert jax.tree.structure(getattr(a, name)) == jax.tree.structure(getattr(b, name))
        for x, y in zip(jax.tree.leaves(getattr(a, name)), jax.tree.leaves(getattr(b, name))):
            np.testing.assert_array_equal(x, y)
    assert a.grid == b.grid and list(a.grid) == list(b.grid)
    assert tuple(a.vary) == tuple(b.vary) and a.hyperparams == b.hyperparams
    assert (a.log_every, a.chunk_size, a.wall_s) == (b.log_every, b.chunk_size, b.wall_s)


def test_save_and_load_round_trip_every_array(grid_out, tmp_path):
    folder = grid_out.save(tmp_path / "run", config={"note": "xor"})
    back = gbl.load(folder)
    _equal(grid_out, back)
    doc = json.loads((folder / "results.json").read_text())
    assert doc["format"] == results.RESULTS_FORMAT and doc["config"] == {"note": "xor"}
    # the axes in the arrays' order, said so
    assert [g["name"] for g in doc["sweep"]["grid"]] == ["learning_rate", "init_scale"]
    assert doc["sweep"]["arrays"]["final_loss"]["shape"] == [3, 2, 6]


def test_a_cell_saves_and_loads_too(grid_out, tmp_path):
    cell = grid_out.cell(learning_rate=0.05, init_scale=1.0)
    _equal(cell, gbl.load(cell.save(tmp_path / "cell")))


def test_save_never_overwrites_unless_asked(grid_out, tmp_path):
    folder = grid_out.save(tmp_path / "run")
    before = (folder / "sweep.npz").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        grid_out.cell(learning_rate=0.2, init_scale=0.5).save(folder)
    assert (folder / "sweep.npz").read_bytes() == before
    grid_out.cell(learning_rate=0.2, init_scale=0.5).save(folder, overwrite=True)
    assert gbl.load(folder).grid == {}


def test_save_checks_the_config_before_it_replaces_anything(grid_out, tmp_path):
    folder = grid_out.save(tmp_path / "run", config={"note": "first"})
    before = {n: (folder / n).read_bytes() for n in ("sweep.npz", "results.json")}
    cell = grid_out.cell(learning_rate=0.2, init_scale=0.5)
    with pytest.raises(ValueError, match="cannot hold the config.*nothing was written"):
        cell.save(folder, overwrite=True, config={"optimizer": object()})
    assert {n: (folder / n).read_bytes() for n in before} == before
    assert sorted(p.name for p in folder.iterdir()) == ["results.json", "sweep.npz"]
    _equal(grid_out, gbl.load(folder))


def test_save_replaces_both_files_or_neither(grid_out, tmp_path, monkeypatch):
    folder = grid_out.save(tmp_path / "run")
    before = {n: (folder / n).read_bytes() for n in ("sweep.npz", "results.json")}
    real = os.fsync
    calls = []

    def full_on_the_second(fd):  # results.json's copy finds the disk full
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", full_on_the_second)
    with pytest.raises(OSError, match="No space left"):
        grid_out.cell(learning_rate=0.2, init_scale=0.5).save(folder, overwrite=True)
    assert {n: (folder / n).read_bytes() for n in before} == before
    assert sorted(p.name for p in folder.iterdir()) == ["results.json", "sweep.npz"]


def test_load_refuses_damaged_folders_saying_which(grid_out, tmp_path):
    folder = grid_out.save(tmp_path / "run")
    doc = json.loads((folder / "results.json").read_text())
    (folder / "results.json").write_text(json.dumps({**doc, "format": 99}))
    with pytest.raises(ValueError, match="format 99.*reads format 3"):
        gbl.load(folder)
    del doc["format"]
    (folder / "results.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="2 or older"):
        gbl.load(folder)
    doc["format"] = results.RESULTS_FORMAT
    (folder / "results.json").write_text(json.dumps(doc)[:50])
    with pytest.raises(ValueError, match="not readable JSON"):
        gbl.load(folder)
    (folder / "results.json").write_text(json.dumps(doc))
    whole = (folder / "sweep.npz").read_bytes()
    (folder / "sweep.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="truncated"):
        gbl.load(folder)
    _rewrite(folder, whole, drop="losses")
    with pytest.raises(ValueError, match="lacks.*losses"):
        gbl.load(folder)
    (folder / "sweep.npz").unlink()
    with pytest.raises(ValueError, match="missing"):
        gbl.load(folder)
    with pytest.raises(ValueError, match="no results.json"):
        gbl.load(tmp_path)


def _set(where, key, value):
    def edit(doc):
        target = where(doc)
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value

    return edit


_DELETE = object()
_SWEEP = lambda d: d["sweep"]  # noqa: E731
_PARAMS = lambda d: d["sweep"]["params"]  # noqa: E731
_ARRAYS = lambda d: d["sweep"]["arrays"]  # noqa: E731

# results.json edited by hand: each is refused with a ValueError naming the field, never a
# KeyError / IndexError / TypeError from inside load
MALFORMED = {
    "format a string": (_set(lambda d: d, "format", "3"), "the integer 3, not '3'"),
    "no sweep entry": (_set(lambda d: d, "sweep", _DELETE), "no \"sweep\" entry"),
    "sweep empty": (_set(lambda d: d, "sweep", {}), "arrays_file is missing"),
    "sweep a list": (_set(lambda d: d, "sweep", []), "no \"sweep\" entry"),
    "grid missing": (_set(_SWEEP, "grid", _DELETE), "grid is missing"),
    "final_loss missing": (_set(_ARRAYS, "final_loss", _DELETE), "lacks \\['final_loss'\\]"),
    "keys missing": (_set(_ARRAYS, "keys", _DELETE), "lacks \\['keys'\\]"),
    "an array's shape a string": (
        _set(_ARRAYS, "losses", {"shape": "3", "dtype": "<f4"}),
        "arrays.losses must be",
    ),
    "params leaves a string": (_set(_PARAMS, "leaves", "4"), "params.leaves must be an integer"),
    "params leaves missing": (_set(_PARAMS, "leaves", _DELETE), "params.leaves is missing"),
    "params tree malformed": (_set(_PARAMS, "tree", {"dict": 5}), "params.tree has a node 'dict'"),
    "params tree leaf unknown": (
        _set(_PARAMS, "tree", {"list": [{"leaf": 0}, {"leaf": 9}]}),
        "params.tree numbers its leaves \\[0, 9\\]",
    ),
    "params a list": (_set(_SWEEP, "params", [1]), "params must be null or"),
    "log_every null": (_set(_SWEEP, "log_every", None), "log_every must be an integer >= 1"),
    "a metric without an array": (
        lambda d: d["sweep"]["metrics"].append("ghost"),
        "lacks \\['metrics/ghost'\\]",
    ),
    "metrics a string": (_set(_SWEEP, "metrics", "accuracy"), "metrics must be a list"),
    "a grid entry without a name": (lambda d: d["sweep"]["grid"][0].pop("name"), "grid\\[0\\]"),
    "arrays_file an int": (_set(_SWEEP, "arrays_file", 3), "arrays_file must be a file name"),
    "arrays_file a path": (_set(_SWEEP, "arrays_file", "../sweep.npz"), "arrays_file must be"),
    "vary missing": (_set(_SWEEP, "vary", _DELETE), "vary is missing"),
    # the grid must agree with the arrays' axes (issue 30, item 5)
    "grid axes swapped": (lambda d: d["sweep"]["grid"].reverse(), "disagrees with the arrays"),
    "grid axis dropped": (lambda d: d["sweep"]["grid"].pop(), "disagrees with the arrays"),
    "grid value dropped": (
        lambda d: d["sweep"]["grid"][0]["values"].pop(),
        "disagrees with the arrays",
    ),
    "grid axis named twice": (
        lambda d: d["sweep"]["grid"][1].update(name="learning_rate"),
        "names an axis twice",
    ),
}


@pytest.fixture(scope="module")
def saved_doc(grid_out, tmp_path_factory):
    folder = grid_out.save(tmp_path_factory.mktemp("saved") / "run")
    return folder, (folder / "results.json").read_text()


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_load_refuses_a_malformed_results_json_naming_the_field(saved_doc, tmp_path, case):
    src, text = saved_doc
    folder = tmp_path / "run"
    shutil.copytree(src, folder)
    edit, message = MALFORMED[case]
    doc = json.loads(text)
    edit(doc)
    (folder / "results.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message) as err:
        gbl.load(folder)
    assert str(err.value).startswith("load: ") and "\n" not in str(err.value)


def test_a_wall_time_json_wrote_as_null_loads_as_nan(grid_out, tmp_path):
    folder = grid_out._replace(wall_s=float("nan")).save(tmp_path / "run")
    assert json.loads((folder / "results.json").read_text())["sweep"]["wall_s"] is None
    assert math.isnan(gbl.load(folder).wall_s)


def test_load_refuses_a_fifo_instead_of_blocking(saved_doc, tmp_path):
    src, _ = saved_doc
    folder = tmp_path / "run"
    shutil.copytree(src, folder)
    (folder / "sweep.npz").unlink()
    os.mkfifo(folder / "sweep.npz")
    with pytest.raises(ValueError, match="sweep.npz cannot be read.*FIFO"):
        gbl.load(folder)
    (folder / "results.json").unlink()
    os.mkfifo(folder / "results.json")
    with pytest.raises(ValueError, match="results.json is not readable.*FIFO"):
        gbl.load(folder)


def _rewrite(folder, whole, drop):
    """sweep.npz again, whole but without the array ``drop``."""
    path = folder / "sweep.npz"
    path.write_bytes(whole)
    with np.load(path) as f:
        kept = {k: f[k] for k in f.files if k != drop}
    np.savez(path, **kept)
    assert zipfile.is_zipfile(path)


def test_cell_takes_the_named_cell_on_a_non_square_grid(grid_out):
    cell = grid_out.cell(learning_rate=0.2, init_scale=0.5)
    np.testing.assert_array_equal(cell.final_loss, grid_out.final_loss[2, 0])
    np.testing.assert_array_equal(cell.losses, grid_out.losses[2, 0])
    np.testing.assert_array_equal(
        cell.final_metrics["accuracy"], grid_out.final_metrics["accuracy"][2, 0]
    )
    np.testing.assert_array_equal(
        cell.init_params["head"]["w"], grid_out.init_params["head"]["w"][2, 0]
    )
    assert cell.grid == {} and cell.hyperparams == {"learning_rate": 0.2, "init_scale": 0.5}
    # a cell's run is still repeatable: its rerun carries the cell's hyperparameters
    assert cell.rerun(3)["hyperparams"] == grid_out.rerun(3, (2, 0))["hyperparams"]


def test_cell_refuses_what_it_cannot_name(grid_out):
    with pytest.raises(ValueError, match="init_scale has \\[0.5, 1\\]"):
        grid_out.cell(learning_rate=0.2)
    with pytest.raises(ValueError, match="learning_rate=0.3 is not on the grid"):
        grid_out.cell(learning_rate=0.3, init_scale=0.5)
    with pytest.raises(ValueError, match="momentum.*not a grid axis"):
        grid_out.cell(momentum=0.9, learning_rate=0.2, init_scale=0.5)


def test_to_frame_has_one_row_per_cell_and_seed(grid_out):
    frame = grid_out.to_frame()
    assert list(frame.columns) == [
        "learning_rate",
        "init_scale",
        "seed",
        "final_loss",
        "diverged",
        "converged_step",
        "accuracy",
    ]
    assert len(frame) == 3 * 2 * 6
    row = frame[(frame.learning_rate == 0.2) & (frame.init_scale == 0.5) & (frame.seed == 4)]
    assert float(row.final_loss.iloc[0]) == float(grid_out.final_loss[2, 0, 4])
    assert float(row.accuracy.iloc[0]) == float(grid_out.final_metrics["accuracy"][2, 0, 4])
    cell = grid_out.cell(learning_rate=0.05, init_scale=1.0).to_frame()
    assert (cell.learning_rate == 0.05).all() and list(cell.seed) == list(range(6))


def test_spread_to_frame_rows_follow_the_cells(grid_out):
    table = gbl.spread(grid_out).to_frame(0.1)
    assert [(r.learning_rate, r.init_scale) for r in table.itertuples()] == [
        (lr, s) for lr in LR for s in SCALE
    ]
    for r in table.itertuples():
        cell = grid_out.cell(learning_rate=r.learning_rate, init_scale=r.init_scale)
        ok = ~cell.diverged
        assert r.successes == np.sum(ok & (cell.final_loss < 0.1))
        assert r.median == pytest.approx(np.median(cell.final_loss[ok]))
        low, high = gbl.wilson_interval(r.successes, r.n_ok)
        assert (r.success_low, r.success_high) == pytest.approx((low, high))
    # three lines of pandas from a sweep to a paper table
    paper = table.pivot(index="learning_rate", columns="init_scale", values="success_rate")
    assert paper.loc[0.2, 0.5] == table.success_rate[4]


def test_analysis_functions_take_a_cell_and_refuse_a_grid(grid_out):
    model, data = gbl.mlp([2], gbl.heads.bernoulli()), gbl.problems.xor()
    cell = grid_out.cell(learning_rate=0.2, init_scale=1.0)
    cp = gbl.critical_points(model, data, cell)
    same = gbl.critical_points(model, data, cell.params, diverged=cell.diverged)
    np.testing.assert_array_equal(cp.grad_norm, same.grad_norm)
    curves = gbl.interpolate(model, data, cell, num=5)
    np.testing.assert_allclose(
        curves, gbl.interpolate(model, data, cell.init_params, cell.params, num=5)
    )
    assert gbl.barrier(model, data, cell, num=5).shape == (6,)
    assert gbl.basins(model, data, cell).labels.shape == (6,)
    for fn in (
        lambda o: gbl.critical_points(model, data, o),
        lambda o: gbl.interpolate(model, data, o),
        lambda o: gbl.basins(model, data, o),
    ):
        with pytest.raises(ValueError, match=r"out.cell\(learning_rate=..., init_scale=...\)"):
            fn(grid_out)
    with pytest.raises(ValueError, match="out.cell"):
        gbl.critical_points(model, data, grid_out.params)
    with pytest.raises(ValueError, match="keep_params=True"):
        gbl.basins(model, data, cell._replace(params=None))


def test_held_out_metrics_saved_under_their_old_names_load_under_test(tmp_path):
    # issue 31: one name per value; results saved before named the held-out metrics eval_*
    data = gbl.problems.circles(jax.random.PRNGKey(1), 16)
    out = gbl.sweep(
        gbl.mlp([2], data.head),
        optax.adam(0.05),
        data,
        key=jax.random.PRNGKey(0),
        seeds=2,
        steps=10,
        eval_data=(data.x, data.y),
    )
    assert set(out.final_metrics) == {"test_nll"}
    folder = out.save(tmp_path / "run")
    doc = json.loads((folder / "results.json").read_text())
    doc["sweep"]["final_metrics"] = ["eval_nll"]
    doc["sweep"]["metrics"] = ["eval_nll"]
    arrays = dict(np.load(folder / "sweep.npz"))
    for kind in ("metrics", "final_metrics"):
        arrays[f"{kind}/eval_nll"] = arrays.pop(f"{kind}/test_nll")
        doc["sweep"]["arrays"][f"{kind}/eval_nll"] = doc["sweep"]["arrays"].pop(f"{kind}/test_nll")
    np.savez(folder / "sweep.npz", **arrays)
    (folder / "results.json").write_text(json.dumps(doc))
    old = gbl.load(folder)
    np.testing.assert_array_equal(old.final_metrics["test_nll"], out.final_metrics["test_nll"])
    assert gbl.spread(old, metric="test_nll").mean == pytest.approx(
        float(np.mean(out.final_metrics["test_nll"]))
    )


def test_a_result_is_replaced_field_by_field():
    # Issue 30: dataclasses.replace fails on a NamedTuple; SweepResult says what to use instead
    data = gbl.problems.xor()
    out = gbl.sweep(
        gbl.mlp([2], data.head), optax.adam(0.05), data, key=jax.random.PRNGKey(0), seeds=2, steps=5
    )
    changed = out.replace(wall_s=1.5)
    assert changed.wall_s == 1.5 and changed.final_loss is out.final_loss
    assert out.__replace__(wall_s=2.0).wall_s == 2.0
    with pytest.raises(ValueError, match=r"\['wall'\] is not a field of SweepResult; its fields"):
        out.replace(wall=1.0)
    assert "out.replace(" in gbl.SweepResult.__doc__
