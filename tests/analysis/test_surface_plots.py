"""Tests for gbl_jax.analysis.surface_plots: the surface and curve figures."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gbl_jax as gbl  # noqa: E402
from gbl_jax import Curve, Surface  # noqa: E402


def _surface(dims, draws=1):
    coords = np.linspace(-1, 1, 5)
    grid = np.meshgrid(*([coords] * dims), indexing="ij")
    bowl = sum(g**2 for g in grid)
    loss = np.stack(
        [np.stack([bowl * (s + 1) + 0.1 * r + s for r in range(draws)]) for s in range(3)]
    )
    return Surface(
        coords,
        {"loss": loss, "accuracy": 1 - loss / loss.max()},
        "filter",
        np.array([False, False, True]),
    )


def test_surface_figure_draws_the_best_and_worst_seed_as_contours():
    fig = gbl.plots.surface_figure(_surface(2), title="t")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    # seed 2 diverged: the lowest (seed 0, center 0) and highest (seed 1, center 1) remain
    assert titles == ["seed 0: loss 0 at the center", "seed 1: loss 1 at the center"]
    with pytest.raises(ValueError, match="no 'nll'"):
        gbl.plots.surface_figure(_surface(2), name="nll")


def test_surface_figure_one_direction_shows_bands_over_seeds_and_draws():
    s = _surface(1, draws=3)
    fig = gbl.plots.surface_figure(s)
    left = fig.axes[0]
    labels = left.get_legend_handles_labels()[1]
    assert "95% of 3 directions (median seed)" in labels and "median" in labels
    median = next(line for line in left.get_lines() if line.get_label() == "median")
    np.testing.assert_allclose(median.get_ydata(), np.median(s.values["loss"][:2, 0], axis=0))
    with pytest.raises(ValueError, match="dims=3"):
        gbl.plots.surface_figure(_surface(3))


def test_curve_figure_reports_each_paths_median_barrier():
    t = np.linspace(0, 1, 5)
    line = np.array([[0, 1, 2, 1, 0], [0, 2, 4, 2, 0.0]])
    loss = line / 4
    c = Curve(t, loss, line, None, None, None, False, np.zeros((2, 3)))
    fig = gbl.plots.curve_figure(c, c._replace(aligned=True))
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["line: median barrier 3", "curve: median barrier 0.75"]
    assert [ax.get_title() for ax in fig.axes] == ["as trained", "aligned first"]
    np.testing.assert_allclose(c.line_barrier, [2.0, 4.0])
