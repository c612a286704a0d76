"""sweep_models: the stacked result equals one sweep per model, axes first, rerun and save."""

import jax
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax.data import problems

DATA = problems.circles(jax.random.PRNGKey(1), 32)
KEY = jax.random.PRNGKey(3)
OPT = optax.inject_hyperparams(optax.adam)(learning_rate=0.05)


def factory(hidden):
    return gbl.mlp([int(hidden)], DATA.head)


def test_a_model_axis_stacks_one_sweep_per_model(tmp_path):
    seen = []
    out = gbl.sweep_models(
        {"hidden": [2, 5]},
        factory,
        OPT,
        DATA,
        key=KEY,
        seeds=3,
        steps=30,
        grid={"learning_rate": [0.01, 0.1]},
        progress=lambda d, t: seen.append((d, t)),
    )
    assert list(out.grid) == ["hidden", "learning_rate"] and out.model_axes == ("hidden",)
    assert out.final_loss.shape == (2, 2, 3) and out.params is None
    for i, width in enumerate((2, 5)):
        alone = gbl.sweep(
            factory(width),
            OPT,
            DATA,
            key=KEY,
            seeds=3,
            steps=30,
            grid={"learning_rate": [0.01, 0.1]},
        )
        np.testing.assert_array_equal(out.final_loss[i], alone.final_loss)
        np.testing.assert_array_equal(out.losses[i], alone.losses)
    assert seen[-1] == (12, 12)
    cell = out.cell(hidden=5, learning_rate=0.1)
    again = gbl.train(factory(5), OPT, DATA, steps=30, **cell.rerun(2))
    np.testing.assert_allclose(cell.final_loss[2], again.final_loss, rtol=1e-5)
    assert cell.rerun(2)["hyperparams"] == pytest.approx({"learning_rate": 0.1})
    frame = gbl.spread(out).to_frame()
    assert frame["hidden"].tolist() == [2, 2, 5, 5]
    out.save(tmp_path / "widths")
    loaded = gbl.load(tmp_path / "widths")
    assert loaded.model_axes == ("hidden",) and loaded.grid == out.grid


def test_bad_model_axes_are_refused():
    run = lambda axes, **kw: gbl.sweep_models(
        axes,
        factory,
        OPT,
        DATA,
        key=KEY,
        seeds=2,  # noqa
        steps=5,
        **kw,
    )
    with pytest.raises(ValueError, match="non-empty"):
        run({})
    with pytest.raises(ValueError, match=r"axes\['hidden'\] must be a non-empty list of finite"):
        run({"hidden": ["wide"]})
    with pytest.raises(ValueError, match="repeats a value"):
        run({"hidden": [2, 2]})
    with pytest.raises(ValueError, match="keep_params=True cannot stack"):
        run({"hidden": [2]}, keep_params=True)
    with pytest.raises(ValueError, match=r"factory\(depth=2\) failed"):
        run({"depth": [2]})
