"""The landscape report of stacked seeds: monotone paths, symmetric barrier matrices, basins,
one cell of a saved grid, and the figure."""

import jax
import matplotlib
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax.analysis.landscape_report import (
    cell_of,
    landscape_figure,
    landscape_report,
    monotone_paths,
)

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def xor_run():
    data = gbl.problems.xor()
    model = gbl.mlp([2], data.head)
    out = gbl.sweep(
        model,
        optax.adam(0.05),
        data,
        key=jax.random.PRNGKey(0),
        seeds=6,
        steps=300,
        keep_params=True,
    )
    return model, data, out


def test_report_of_a_small_xor_sweep(xor_run):
    model, data, out = xor_run
    diverged = np.zeros(6, bool)
    diverged[5] = True  # left out everywhere, as a diverged seed would be
    rep = landscape_report(
        model, data, out.init_params, out.params, diverged=diverged, pairs=3, num=7
    )
    assert rep.curves.shape == (6, 7)
    np.testing.assert_allclose(rep.curves[:, -1], out.final_loss, rtol=1e-4, atol=1e-6)
    assert not rep.usable[5] and not rep.monotone[5] and np.all(rep.monotone <= rep.usable)
    assert rep.barriers["seeds"] == [0, 1, 2]
    for name in ("unaligned", "aligned"):
        matrix = rep.barriers[name]
        assert matrix.shape == (3, 3) and np.allclose(matrix, matrix.T)
        assert np.all(np.diag(matrix) == 0) and np.all(matrix >= -1e-6)
    assert rep.basins.labels[5] == -1 and rep.basins.count.sum() == 5
    doc = rep.as_dict()
    assert doc["diverged"] == 1 and doc["interpolation"]["n"] == int(rep.usable.sum())
    assert doc["interpolation"]["monotone"] == int(rep.monotone.sum())
    upper = rep.barriers["unaligned"][np.triu_indices(3, 1)]
    assert doc["barriers"]["median"] == pytest.approx(np.median(upper))
    low, high = doc["interpolation"]["interval_95"]
    assert low <= doc["interpolation"]["monotone_share"] <= high


def test_monotone_means_no_rise_beyond_float_noise(xor_run):
    falling = np.array([3.0, 2.0, 1.0, 0.5])
    curves = np.stack(
        [
            falling,
            falling + [0, 0, 0, 0.5 + 1e-3],  # a real bump at the end
            falling + [0, 0, 1.0 + 1e-7, 0],  # flat, then up by 1e-7: float noise
            falling + [0, 0, 1.0 + 1e-4, 0],  # flat, then up by 1e-4: a bump
            [3.0, np.nan, 1.0, 0.5],
        ]
    )
    np.testing.assert_array_equal(monotone_paths(curves), [True, False, True, False, False])
    assert monotone_paths(curves, rtol=1e-4).tolist() == [True, False, True, True, False]
    model, data, out = xor_run  # the report uses the same rule
    rep = landscape_report(model, data, out.init_params, out.params, pairs=1, num=7)
    np.testing.assert_array_equal(rep.monotone, rep.usable & monotone_paths(rep.curves))


def test_one_pair_or_none_gives_no_median(xor_run):
    model, data, out = xor_run
    rep = landscape_report(model, data, out.init_params, out.params, pairs=1, num=3)
    assert rep.barriers["seeds"] == [0] and rep.as_dict()["barriers"]["median"] is None


def test_cell_of_picks_one_cell_of_a_grid():
    grid = {"learning_rate": [0.01, 0.1], "init_scale": [0.5, 1.0, 2.0]}
    tree = {"w": np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)}  # [*G, seeds, ...]
    stored = {
        "params": tree,
        "init_params": jax.tree.map(lambda a: -a, tree),
        "diverged": np.arange(24).reshape(2, 3, 4) % 5 == 0,
    }
    init, final, diverged, values = cell_of(stored, grid, 4, 4)
    np.testing.assert_array_equal(final["w"], tree["w"][1, 1])
    np.testing.assert_array_equal(init["w"], -tree["w"][1, 1])
    np.testing.assert_array_equal(diverged, stored["diverged"][1, 1])
    assert values == {"learning_rate": 0.1, "init_scale": 1.0}
    one = {
        "params": {"w": tree["w"][0, 0]},
        "init_params": {"w": tree["w"][0, 0]},
        "diverged": np.zeros(4, bool),
    }  # no grid: the only cell is every seed
    _, final, _, values = cell_of(one, {}, 4, 0)
    assert values == {} and final["w"].shape == (4, 5)


def test_the_figure_has_the_paths_and_both_matrices(xor_run):
    model, data, out = xor_run
    rep = landscape_report(model, data, out.init_params, out.params, pairs=3, num=5)
    fig = landscape_figure(rep.curves, rep.monotone, rep.barriers, title="xor")
    titles = [ax.get_title() for ax in fig.axes]
    assert "barrier" in titles and "barrier after align" in titles
    assert fig.axes[0].get_xlabel().startswith("alpha")
    matplotlib.pyplot.close(fig)


def test_without_alignment_the_report_takes_any_params_and_says_none(xor_run):
    model, data, out = xor_run
    flat = gbl.Model(
        lambda key, x: {"v": model.init(key, x)},  # not gbl.mlp's layout
        lambda params, x: model.apply(params["v"], x),
    )
    wrap = lambda tree: {"v": tree}  # noqa: E731
    with pytest.raises(ValueError, match="align: params_ref is not gbl.mlp params"):
        landscape_report(flat, data, wrap(out.init_params), wrap(out.params), pairs=3, num=5)
    rep = landscape_report(
        flat, data, wrap(out.init_params), wrap(out.params), pairs=3, num=5, align_units=False
    )
    plain = landscape_report(model, data, out.init_params, out.params, pairs=3, num=5)
    np.testing.assert_allclose(rep.barriers["unaligned"], plain.barriers["unaligned"], rtol=1e-6)
    assert rep.barriers["aligned"] is None and rep.as_dict()["barriers"]["median_aligned"] is None
    fig = landscape_figure(rep.curves, rep.monotone, rep.barriers, title="xor")
    assert "barrier" in [ax.get_title() for ax in fig.axes]
    assert "barrier after align" not in [ax.get_title() for ax in fig.axes]
    matplotlib.pyplot.close(fig)
