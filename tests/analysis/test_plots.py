"""Sweep figures: each function returns a Figure, degenerate inputs too; save writes PNG and PDF."""

import errno
import os
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from gbl_jax import wilson_interval
from gbl_jax.analysis import plots

matplotlib.use("Agg")  # the test chooses the backend, as the command line does
import matplotlib.pyplot as plt  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _bimodal(seeds=60, steps=30):
    rng = np.random.default_rng(0)
    final = np.concatenate([rng.uniform(1e-4, 1e-3, seeds // 2), rng.uniform(0.3, 0.4, seeds // 2)])
    curves = np.geomspace(1.0, final, steps).T * (1 + 0.05 * rng.random((seeds, steps)))
    final[3], curves[3, 10:] = np.nan, np.nan  # a diverged seed
    return final, ~np.isfinite(final), curves


def test_import_leaves_the_backend_alone():
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    code = (
        "import matplotlib; b = matplotlib.get_backend(); import gbl_jax.analysis.plots; "
        "assert matplotlib.get_backend() == b, (b, matplotlib.get_backend())"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def test_save_writes_png_and_pdf(tmp_path):
    final, diverged, _ = _bimodal()
    fig = plots.final_loss_histogram(final, diverged, threshold=0.1, title="t")
    paths = plots.save(fig, tmp_path / "h")
    assert [p.name for p in paths] == ["h.png", "h.pdf"]
    assert paths[0].read_bytes()[:8] == PNG and paths[1].read_bytes()[:4] == b"%PDF"
    assert not plt.fignum_exists(fig.number)


def test_save_never_leaves_half_a_figure_over_an_earlier_one(tmp_path, monkeypatch):
    """A failed write (here the disk fills while the PDF is flushed) keeps the earlier PDF whole
    and leaves no temporary file."""
    final, diverged, _ = _bimodal()
    plots.save(plots.final_loss_histogram(final, diverged), tmp_path / "h")
    before = (tmp_path / "h.pdf").read_bytes()
    real_fsync = os.fsync

    def fsync(fd):
        if ".pdf" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    fig = plots.final_loss_histogram(final, diverged, threshold=0.1, title="second")
    with pytest.raises(OSError, match="No space left"):
        plots.save(fig, tmp_path / "h")
    assert (tmp_path / "h.pdf").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp")) and not plt.fignum_exists(fig.number)


def test_histogram_draws_the_threshold_and_failure_share():
    final, diverged, _ = _bimodal()
    fig = plots.final_loss_histogram(final, diverged, threshold=0.1)
    ax = fig.axes[0]
    lines = [ln for ln in ax.lines if np.allclose(ln.get_xdata(), 0.1)]
    assert len(lines) == 1
    assert lines[0].get_label().startswith("50.8% above 0.1 (95% CI")  # 30 of 59
    assert ax.get_xscale() == "log"
    assert any("59 seeds shown, 1 diverged" == t.get_text() for t in ax.get_legend().get_texts())


@pytest.mark.parametrize(
    "final, diverged",
    [
        (np.full(4, np.nan), np.ones(4, bool)),  # all diverged
        (np.array([0.5]), np.array([False])),  # a single seed
        (np.zeros(5), np.zeros(5, bool)),  # zero losses: no log axis
    ],
)
def test_histogram_degenerate(final, diverged):
    fig = plots.final_loss_histogram(final, diverged, threshold=0.1)
    assert isinstance(fig, Figure) and fig.axes[0].get_xscale() == "linear"
    fig.canvas.draw()


def test_curves_coloured_by_outcome():
    final, diverged, curves = _bimodal()
    success = final < 0.1
    fig = plots.loss_curves_by_outcome(curves, 5, success=success, max_curves=30)
    ax = fig.axes[0]
    colours = {}
    for line in ax.lines:
        colours.setdefault(line.get_gid(), set()).add(to_hex(line.get_color()))
    assert set(colours) == {"succeeded", "failed", "diverged"}
    assert all(len(c) == 1 for c in colours.values())
    assert len(set.union(*colours.values())) == 3
    assert ax.get_yscale() == "log"
    assert sum(ln.get_linewidth() > 2 for ln in ax.lines) == 3  # one bold median per outcome


def test_curves_sample_at_most_about_max_curves_and_keep_rare_outcomes():
    rng = np.random.default_rng(1)
    curves = rng.uniform(0.1, 1.0, (1000, 8))
    success = np.arange(1000) >= 5  # 5 failures in 1000
    fig = plots.loss_curves_by_outcome(curves, 1, success=success, max_curves=100)
    gids = [ln.get_gid() for ln in fig.axes[0].lines]
    assert gids.count("failed") == 5 + 1 and gids.count("succeeded") == 100 + 1


@pytest.mark.parametrize(
    "curves",
    [
        np.full((4, 10), np.nan),  # all diverged
        np.linspace(1.0, 0.1, 10)[None],  # a single seed
        np.zeros((3, 10)),  # zero losses: linear y
    ],
)
def test_curves_degenerate(curves):
    for success in (None, np.zeros(len(curves), bool)):
        fig = plots.loss_curves_by_outcome(curves, 10, success=success, title="t")
        assert isinstance(fig, Figure)
        fig.canvas.draw()


def test_bands_fallback_draws_on_a_given_axes():
    _, _, curves = _bimodal()
    fig, ax = plt.subplots()
    assert plots.loss_curves_by_outcome(curves, 5, ax=ax) is fig
    assert plots.loss_curve_bands(curves, 5, ax=ax) is fig
    assert ax.get_legend() is not None


def _rates(shape, seeds=64):
    rng = np.random.default_rng(2)
    k = rng.integers(0, seeds + 1, shape)
    low, high = wilson_interval(k, np.full(shape, seeds))
    return k / seeds, low, high, rng.uniform(1e-3, 1.0, shape)


def test_grid_success_1d_and_2d():
    fig = plots.grid_success(
        {"lr": [0.001, 0.01, 0.1, 1.0]}, *_rates((4,)), threshold=0.1, title="1-D"
    )
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    grid = {"width": [2, 3, 4], "activation": ["tanh", "relu"]}
    fig = plots.grid_success(grid, *_rates((3, 2)), threshold=0.1, title="2-D")
    assert len(fig.axes) == 4 and fig.axes[0].get_xscale() == "linear"
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == ["tanh", "relu"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["2", "3", "4"]


def test_grid_success_degenerate_and_bad_shapes():
    rate = np.full((1,), np.nan)  # a one-point grid where every seed diverged
    fig = plots.grid_success({"lr": [0.1]}, rate, rate, rate, rate, threshold=0.1)
    fig.canvas.draw()
    with pytest.raises(ValueError, match="shape"):
        plots.grid_success({"lr": [0.1, 1.0]}, *_rates((3,)), threshold=0.1)


def test_grid_heatmap_annotates_cells():
    grid = {"width": [2, 3, 4], "lr": [0.01, 0.1]}
    rate, low, high, _ = _rates((3, 2))
    rate[0, 0] = np.nan
    fig = plots.grid_heatmap(grid, rate, threshold=0.1, low=low, high=high, title="t")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 6 and texts[0] == "n/a" and "%\n±" in texts[1]
    with pytest.raises(ValueError):
        plots.grid_heatmap({"lr": [0.1]}, np.ones(1), threshold=0.1)


def test_critical_points_figure():
    rng = np.random.default_rng(3)
    kinds = np.array(["minimum", "saddle", "not_converged", "diverged"])[rng.integers(0, 4, 40)]
    loss = np.where(kinds == "diverged", np.nan, 10 ** rng.uniform(-4, 0, 40))
    index = np.where(kinds == "minimum", 0.0, rng.uniform(0, 0.5, 40))
    fig = plots.critical_points_figure(loss, index, kinds, title="t")
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    fig.canvas.draw()
    for loss, index, kinds in [
        (np.full(3, np.nan), np.full(3, np.nan), ["diverged"] * 3),
        (np.zeros(1), np.zeros(1), ["minimum"]),
    ]:
        plots.critical_points_figure(loss, index, np.array(kinds)).canvas.draw()
    with pytest.raises(ValueError, match="unknown kinds"):
        plots.critical_points_figure(np.zeros(1), np.zeros(1), np.array(["maximum"]))


def test_final_loss_by_cell_keeps_cells_apart_with_their_own_intervals():
    grid = {"learning_rate": [0.01, 0.1, 0.2], "init_scale": [0.5, 1.0]}
    rng = np.random.default_rng(0)
    loss = rng.uniform(0.0, 0.2, size=(3, 2, 40))
    loss[2, 1] = 0.5  # one cell never succeeds
    diverged = np.zeros(loss.shape, bool)
    diverged[0, 0, :5] = True
    fig = plots.final_loss_by_cell(grid, loss, diverged, threshold=0.1)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(ax.lines) == 6 + 1  # one line per cell and the threshold
    for i, j in np.ndindex(3, 2):
        ok = loss[i, j][~diverged[i, j]]
        wins = int(np.sum(ok < 0.1))
        low, high = wilson_interval(wins, ok.size)
        name = f"learning_rate={grid['learning_rate'][i]:g} init_scale={grid['init_scale'][j]:g}"
        want = f"{name}: {100 * wins / ok.size:.0f}% [{100 * low:.0f}, {100 * high:.0f}]"
        assert want in labels, (want, labels)
    # each line is its own cell's empirical CDF: it ends at 1 over that cell's seeds
    assert all(line.get_ydata()[-1] == 1.0 for line in ax.lines[:6])
    assert len(ax.lines[0].get_xdata()) == 35
    with pytest.raises(ValueError, match="seeds"):
        plots.final_loss_by_cell(grid, loss[:2], diverged[:2])


def test_metric_histogram_states_the_spread():
    values = np.array([0.9, 0.92, 0.95, np.nan, 0.91])
    fig = plots.metric_histogram(values, np.zeros(5, bool), "test accuracy")
    label = fig.axes[0].get_legend().get_texts()[0].get_text()
    assert "4 seeds, 1 diverged" in label and "min 0.9," in label and "max 0.95" in label
    assert fig.axes[0].get_xlabel() == "test accuracy"
