"""Sweep figures are written as PNG, including the degenerate cases."""

import numpy as np

from gbl_jax import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_histogram_and_bands_write_pngs(tmp_path):
    rng = np.random.default_rng(0)
    final = np.concatenate([rng.uniform(1e-4, 1e-3, 50), rng.uniform(0.3, 0.4, 50), [np.nan]])
    diverged = ~np.isfinite(final)
    plots.final_loss_histogram(final, diverged, tmp_path / "h.png", title="t")
    curves = np.abs(rng.normal(size=(20, 30))) + 1e-3
    curves[3, 10:] = np.nan   # a diverged seed
    plots.loss_curve_bands(curves, 5, tmp_path / "c.png", title="t")
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG and (tmp_path / "c.png").read_bytes()[:8] == PNG


def test_all_diverged_still_draws(tmp_path):
    plots.final_loss_histogram(np.full(4, np.nan), np.ones(4, bool), tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG
