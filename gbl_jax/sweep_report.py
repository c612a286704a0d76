"""What a finished sweep reports: the numbers results.json holds, and its figures.

``results_of`` gathers the spread of the final losses, the success rate at the config's threshold
with its Wilson 95% interval (per grid cell on a grid), convergence and the critical-point counts;
``figures_of`` draws the figures a run folder keeps. Both read a merged ``SweepResult`` (grid axes
first) and a resolved config; ``RunFolder.finish`` writes what they return.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

import gbl_jax
from gbl_jax import plots
from gbl_jax.spreads import spread as spread_of


def versions() -> dict:
    """The versions a run was made with (gbl_jax, jax, jaxlib, Python)."""
    import jax
    import jaxlib

    return {"gbl_jax": gbl_jax.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "python": sys.version.split()[0]}


def title(config: dict, grid: dict) -> str:
    """The figures' title: the config in brief, the grid's axes and the threshold."""
    shown = {k: v for k, v in config.items() if k != "threshold"}
    if "learning_rate" in grid:   # the grid's axis shows the learning rates
        shown["lr"] = None
    text = plots.describe(shown)
    if grid:
        text += ", grid " + " x ".join(grid)
    return text + f", threshold {config['threshold']:.4g}"


def results_of(result, config: dict, info: dict, cp=None) -> dict:
    """What results.json holds (numpy values: ``json_safe`` them to write).

    Args:
      result: the merged ``SweepResult``.
      config: the resolved config (``threshold`` and ``threshold_rule`` included).
      info: versions, devices, processes, wall_s, compile_s and compile_cache.
      cp: ``CriticalPoints`` of every run (flattened cell-major), or None.
    """
    grid, threshold = result.grid, config["threshold"]
    spread = spread_of(result.final_loss, result.diverged)
    low, high = spread.success_interval(threshold)
    all_diverged = np.asarray(spread.n_ok) == 0
    results: dict[str, Any] = {
        "config": config, "versions": info["versions"], "devices": info["devices"],
        "threshold": {"value": threshold, "rule": config["threshold_rule"]},
        "spread": spread.as_dict(),
        "success_rate": {"threshold": threshold, "rate": spread.success_rate(threshold),
                         "successes": spread.successes(threshold), "n": spread.n_ok,
                         "interval_95": {"low": low, "high": high, "method": "Wilson"}},
        "processes": info["processes"], "wall_s": info["wall_s"],
        "compile_s": info["compile_s"],
        "compile_cache": info["compile_cache"],
    }
    if np.all(all_diverged):
        results["note"] = "all seeds diverged: the statistics are null"
    elif np.any(all_diverged):
        results["note"] = (f"every seed diverged in {int(np.sum(all_diverged))} of "
                           f"{all_diverged.size} cells: their statistics are null")
    if grid:
        results["grid"] = grid
    if config["grad_tol"] is not None:
        steps = result.converged_step[result.converged_step >= 0]
        results["converged"] = {"grad_tol": config["grad_tol"], "runs": int(steps.size),
                                "median_step": float(np.median(steps)) if steps.size else None}
    if cp is not None:
        kinds = cp.kind.reshape(result.final_loss.shape)
        results["critical_points"] = {
            "counts": cp.counts(), "method": cp.method, "grad_tol": cp.grad_tol,
            "eig_tol": cp.eig_tol}
        if grid:
            results["critical_points"]["counts_per_cell"] = {
                k: np.sum(kinds == k, axis=-1) for k in cp.counts()}
    return results


def figures_of(result, config: dict, title: str, cp=None) -> dict:
    """{stem: Figure} of a finished sweep (names in ``runstore.FIGURES``).

    Every run pooled: the final-loss histogram and the loss curves by outcome; on a grid of one
    or two axes, the success rate per cell (and its heatmap for two); with ``cp``, the critical
    points.
    """
    grid, threshold = result.grid, config["threshold"]
    spread = spread_of(result.final_loss, result.diverged)
    flat_loss, flat_bad = result.final_loss.reshape(-1), result.diverged.reshape(-1)
    pooled = " (all cells)" if grid else ""
    out = {"final_losses": plots.final_loss_histogram(flat_loss, flat_bad, threshold=threshold,
                                                      title=title + pooled)}
    success = ~flat_bad & (np.where(flat_bad, np.inf, flat_loss) < threshold)
    out["curves"] = plots.loss_curves_by_outcome(
        result.losses.reshape(-1, result.losses.shape[-1]), result.log_every, success=success,
        diverged=flat_bad, title=title + pooled)
    if grid and len(grid) <= 2:
        rate = spread.success_rate(threshold)
        low, high = spread.success_interval(threshold)
        out["grid_success"] = plots.grid_success(grid, rate, low, high, spread.median,
                                                 threshold=threshold, title=title)
        if len(grid) == 2:
            out["grid_heatmap"] = plots.grid_heatmap(grid, rate, threshold=threshold, low=low,
                                                     high=high, title=title)
    if cp is not None:
        out["critical_points"] = plots.critical_points_figure(cp.loss, cp.index, cp.kind,
                                                              title=title)
    return out
