"""What a finished sweep reports: the numbers results.json holds, and its figures.

``results_of`` gathers the spread of the final losses, the success rate at the config's threshold
with its Wilson 95% interval (per grid cell on a grid), convergence and the critical-point counts;
``figures_of`` draws the figures a run folder keeps, under ``title`` (the config in brief, the
grid's axes by their names). Both read a merged ``SweepResult`` (grid axes first) and a resolved
config; ``RunFolder.finish`` writes what they return, and ``summary`` is the table
``gbl-jax sweep`` prints from them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from gbl_jax.analysis import plots, seed_stats
from gbl_jax.analysis.spreads import metric_values
from gbl_jax.analysis.spreads import spread as spread_of
from gbl_jax.analysis.variance import variance_table
from gbl_jax.cli import build


def describe(config: dict, hyperparameters: dict | None = None) -> str:
    """A config in brief, e.g. "xor, hidden 2 tanh, adam lr=0.05, 2000 steps, 1024 seeds".

    Args:
      config: a resolved sweep config; problem, hidden, activation, optimizer, steps and seeds
        are shown.
      hyperparameters: {name: value} shown after the optimizer, by their option's name
        (``build.SHORT_FORMS``: learning_rate as lr).
    """
    widths = [w for w in str(config["hidden"]).split(",") if w]
    if config.get("model"):  # --model: the user's network, named by its source
        network = f"model {config['model']}"
    elif config.get("channels"):  # --channels: the built-in 1-D CNN
        network = f"cnn1d channels {config['channels']}"
    else:
        network = (
            f"hidden {'-'.join(widths)} {config['activation']}" if widths else "no hidden layer"
        )
    data = config.get("data")  # --data: the file's name (or module:function), not a problem
    source = Path(str(data)).name if data else str(config["problem"])
    optimizer = " ".join(
        [
            str(config["optimizer"]),
            *(
                f"{build.SHORT_FORMS.get(k, k)}={float(v):g}"
                for k, v in (hyperparameters or {}).items()
            ),
        ]
    )
    return ", ".join(
        [
            source,
            network,
            optimizer,
            f"{int(config['steps'])} steps",
            f"{int(config['seeds'])} seeds",
        ]
    )


def title(config: dict, grid: dict) -> str:
    """The figures' title: the config in brief with the hyperparameters that are not on the
    grid, the grid's axes (by their names) and the threshold."""
    fixed = {
        k: v
        for k, v in build.hyperparameters(config).items()
        if k not in grid and k != "init_scale"
    }  # init_scale is on the grid unless 1
    text = describe(config, fixed)
    if grid:
        text += ", grid " + " x ".join(grid)
    return text + f", threshold {config['threshold']:.4g}"


INTERVAL_STATS = ("mean", "std", "iqm", "median")


def metric_name(config: dict, result) -> str:
    """The value a run reports: ``--metric``, else test_accuracy for a classifier with a
    held-out split, else the final loss."""
    if config.get("metric"):
        return config["metric"]
    return "test_accuracy" if "test_accuracy" in result.final_metrics else "final_loss"


def metric_report(result, config: dict) -> dict:
    """The chosen metric's statistics with percentile-bootstrap 95% intervals (per cell on a
    grid), and on a crossed design its variance components."""
    name = metric_name(config, result)
    s = spread_of(result, metric=name)
    report: dict[str, Any] = {
        "name": name,
        "n_ok": s.n_ok,
        "method": f"percentile bootstrap, {seed_stats.RESAMPLES} resamples, 95%",
    }
    for stat in INTERVAL_STATS:
        low, high = s.interval(stat)
        report[stat] = getattr(s, stat)
        report[f"{stat}_interval"] = {"low": low, "high": high}
    if result.crossed:
        report["variance_components"] = _variance_per_cell(result, name)
    return report


def _variance_per_cell(result, name: str):
    values = np.asarray(metric_values(result, name), np.float64)
    diverged = np.asarray(result.diverged, bool)

    def one(idx):
        if diverged[idx].any():
            return {
                "note": f"{int(diverged[idx].sum())} runs diverged: a crossed table needs every run"
            }
        vc = variance_table(values[idx].reshape(result.crossed), metric=name)
        return {
            **{k: getattr(vc, k) for k in ("init", "data", "residual")},
            "intervals": {k: list(v) for k, v in vc.intervals.items()},
            "clipped": list(vc.clipped),
            "inits": vc.n_init,
            "orders": vc.n_data,
        }

    cells = [one(idx) for idx in np.ndindex(values.shape[:-1])]
    return cells[0] if not result.grid else cells


def results_of(result, config: dict, info: dict, cp=None) -> dict:
    """What results.json holds (numpy values: ``json_safe`` them to write).

    Args:
      result: the merged ``SweepResult``.
      config: the resolved config (``threshold`` and ``threshold_rule`` included).
      info: versions, devices, processes, wall_s (the sweep), compile_s, classify_s (the
        end points' classification, None without it) and compile_cache.
      cp: ``CriticalPoints`` of every run (flattened cell-major), or None.
    """
    threshold = config["threshold"]
    spread = spread_of(result)
    low, high = spread.success_interval(threshold)
    all_diverged = np.asarray(spread.n_ok) == 0
    results: dict[str, Any] = {
        "config": config,
        "versions": info["versions"],
        "devices": info["devices"],
        "threshold": {"value": threshold, "rule": config["threshold_rule"]},
        "spread": spread.as_dict(),
        "success_rate": {
            "threshold": threshold,
            "rate": spread.success_rate(threshold),
            "successes": spread.successes(threshold),
            "n": spread.n_ok,
            "interval_95": {"low": low, "high": high, "method": "Wilson"},
        },
        "processes": info["processes"],
        "wall_s": info["wall_s"],
        "compile_s": info["compile_s"],
        "compile_cache": info["compile_cache"],
        **({"classify_s": info["classify_s"]} if info.get("classify_s") is not None else {}),
    }
    results["metric"] = metric_report(result, config)
    test = {
        name[5:]: _metric_stats(values, result.diverged)
        for name, values in result.final_metrics.items()
        if name.startswith("test_")
    }
    if test:
        results["test"] = test
    if np.all(all_diverged):
        results["note"] = "all seeds diverged: the statistics are null"
    elif np.any(all_diverged):
        results["note"] = (
            f"every seed diverged in {int(np.sum(all_diverged))} of "
            f"{all_diverged.size} cells: their statistics are null"
        )
    if config["grad_tol"] is not None:
        steps = result.converged_step[result.converged_step >= 0]
        results["converged"] = {
            "grad_tol": config["grad_tol"],
            "runs": int(steps.size),
            "median_step": float(np.median(steps)) if steps.size else None,
        }
    if cp is not None:
        kinds = cp.kind.reshape(result.final_loss.shape)
        results["critical_points"] = {
            "counts": cp.counts(),
            "method": cp.method,
            "grad_tol": cp.grad_tol,
            "eig_tol": cp.eig_tol,
        }
        if result.grid:
            results["critical_points"]["counts_per_cell"] = {
                k: np.sum(kinds == k, axis=-1) for k in cp.counts()
            }
    return results


def _metric_stats(values, diverged) -> dict:
    """The spread of a final metric over the non-diverged seeds, and best minus worst."""
    spread = spread_of(np.asarray(values, np.float64), np.asarray(diverged))
    return {**spread.as_dict(), "best_minus_worst": np.asarray(spread.max) - np.asarray(spread.min)}


def figures_of(result, config: dict, title: str, cp=None) -> dict:
    """{stem: Figure} of a finished sweep (names in ``runstore.FIGURES``).

    The final losses (a histogram; on a grid, one distribution per cell with its own success
    interval, never one pooled over cells), the loss curves by outcome (every run); on a grid of
    one or two axes, the success rate per cell (and its heatmap for two); with ``cp``, the
    critical points.
    """
    grid, threshold = result.grid, config["threshold"]
    spread = spread_of(result)
    flat_loss, flat_bad = result.final_loss.reshape(-1), result.diverged.reshape(-1)
    pooled = " (all cells)" if grid else ""
    if grid:
        final = plots.final_loss_by_cell(
            grid, result.final_loss, result.diverged, threshold=threshold, title=title
        )
    else:
        final = plots.final_loss_histogram(flat_loss, flat_bad, threshold=threshold, title=title)
    out = {"final_losses": final}
    success = ~flat_bad & (np.where(flat_bad, np.inf, flat_loss) < threshold)
    out["curves"] = plots.loss_curves_by_outcome(
        result.losses.reshape(-1, result.losses.shape[-1]),
        result.log_every,
        success=success,
        diverged=flat_bad,
        title=title + pooled,
    )
    if grid and len(grid) <= 2:
        rate = spread.success_rate(threshold)
        low, high = spread.success_interval(threshold)
        out["grid_success"] = plots.grid_success(
            grid, rate, low, high, spread.median, threshold=threshold, title=title
        )
        if len(grid) == 2:
            out["grid_heatmap"] = plots.grid_heatmap(
                grid, rate, threshold=threshold, low=low, high=high, title=title
            )
    if "test_accuracy" in result.final_metrics:
        acc = result.final_metrics["test_accuracy"]
        if grid:
            out["test_accuracy"] = plots.final_loss_by_cell(
                grid, acc, result.diverged, title=title, xlabel="test accuracy"
            )
        else:
            out["test_accuracy"] = plots.metric_histogram(
                acc, result.diverged, "test accuracy", title=title
            )
    if cp is not None:
        out["critical_points"] = plots.critical_points_figure(
            cp.loss, cp.index, cp.kind, title=title
        )
    return out


def _pct(rate, low, high) -> str:
    if rate is None:
        return "n/a (every seed diverged)"
    return f"{100 * rate:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _metric_rows(metric: dict | None) -> list[tuple[str, str]]:
    """The summary's rows for the reported metric of a run without a grid: its mean, std and
    IQM with bootstrap intervals, and a crossed design's variance components."""
    if not metric or metric.get("mean") is None:
        return []

    def with_ci(stat):
        ci = metric[f"{stat}_interval"]
        return f"{metric[stat]:.4g} [{ci['low']:.4g}, {ci['high']:.4g}]"

    rows = [
        (
            metric["name"],
            f"mean {with_ci('mean')}, std {with_ci('std')}, IQM {with_ci('iqm')} (95% bootstrap)",
        )
    ]
    vc = metric.get("variance_components")
    if isinstance(vc, dict) and "note" in vc:
        rows.append(("variance", vc["note"]))
    elif isinstance(vc, dict):
        total = vc["init"] + vc["data"] + vc["residual"]
        parts = []
        for name in ("init", "data", "residual"):
            low, high = vc["intervals"][name]
            share = f", {100 * vc[name] / total:.0f}%" if total > 0 else ""
            parts.append(f"{name} {vc[name]:.3g} [{low:.3g}, {high:.3g}]{share}")
        clipped = (
            f" (negative estimates clipped to 0: {', '.join(vc['clipped'])})"
            if vc["clipped"]
            else ""
        )
        rows.append((f"variance ({vc['inits']} x {vc['orders']})", "; ".join(parts) + clipped))
    return rows


def _metric_cell(metric: dict | None, pick) -> str:
    """A grid row's mean of the reported metric with its bootstrap interval."""
    if not metric or pick(metric["mean"]) is None:
        return ""
    ci = metric["mean_interval"]
    return f"  {pick(metric['mean']):.4g} [{pick(ci['low']):.4g}, {pick(ci['high']):.4g}]"


def summary(results: dict, out: Path) -> str:
    """The printed table: the spread (or one row per grid cell), the threshold and its rule."""
    config, spread, rate = results["config"], results["spread"], results["success_rate"]
    ci = rate["interval_95"]
    threshold = f"{results['threshold']['value']:.6g}"
    hypers = [
        f"{build.SHORT_FORMS.get(k, k)}={v}"
        for k, v in build.hyperparameters(config).items()
        if k != "init_scale"
    ]
    source = ("data", config["data"]) if config["data"] else ("problem", config["problem"])
    network = (
        ("model", config["model"])
        if config["model"]
        else ("channels", config["channels"])
        if config["channels"]
        else ("hidden", config["hidden"] or "(none)")
    )
    rows = [
        source,
        network,
        ("optimizer", " ".join([config["optimizer"], *hypers])),
        ("steps", config["steps"]),
        ("seeds", config["seeds"]),
    ]
    lines = []
    grid = {g["name"]: g["values"] for g in results["sweep"]["grid"]}
    if not grid:
        rows.append(
            (
                "diverged",
                spread["n_diverged"]
                if not spread.get("identical")
                else f"{spread['n_diverged']} (identical runs)",
            )
        )
        for name in ("mean", "std", "min", "q10", "median", "q90", "max"):
            value = spread[name]
            rows.append((name, "n/a" if value is None else f"{value:.6g}"))
        rows.append(
            (
                f"final loss < {threshold}",
                _pct(rate["rate"], ci["low"], ci["high"])
                + (" of non-diverged (95% CI)" if rate["rate"] is not None else ""),
            )
        )
        rows += _metric_rows(results.get("metric"))
        for name, stats in results.get("test", {}).items():
            if stats["mean"] is not None:
                rows.append(
                    (
                        f"test {name}",
                        f"mean {stats['mean']:.4g}, std {stats['std']:.2g}, "
                        f"min {stats['min']:.4g}, max {stats['max']:.4g} (best - worst "
                        f"{stats['best_minus_worst']:.3g})",
                    )
                )
    else:
        rows.append(("grid", " x ".join(f"{k} ({len(v)})" for k, v in grid.items())))
        metric = results.get("metric")
        lines.append(
            f"  {'cell':<32}  {'diverged':>8}  {'median':>10}  success < {threshold} "
            "(95% CI)" + (f"  mean {metric['name']} (95% CI)" if metric else "")
        )
        for idx in itertools.product(*(range(len(v)) for v in grid.values())):
            pick = lambda a: _at(a, idx)  # noqa: E731
            cell = " ".join(f"{k}={v[i]:g}" for (k, v), i in zip(grid.items(), idx))
            if spread.get("identical") and pick(spread["identical"]):
                cell += " (identical runs)"
            median = pick(spread["median"])
            lines.append(
                f"  {cell:<32}  {int(pick(spread['n_diverged'])):>8}  "
                f"{'n/a' if median is None else f'{median:.4g}':>10}  "
                f"{_pct(pick(rate['rate']), pick(ci['low']), pick(ci['high']))}"
                + _metric_cell(metric, pick)
            )
    rows.append(("threshold", f"{threshold} ({results['threshold']['rule']})"))
    if "converged" in results:
        conv = results["converged"]
        rows.append((f"grad norm < {conv['grad_tol']:g}", f"{conv['runs']} runs"))
    if "critical_points" in results:
        rows.append(
            (
                "end points",
                ", ".join(f"{n} {k}" for k, n in results["critical_points"]["counts"].items()),
            )
        )
    if "note" in results:
        rows.append(("note", results["note"]))
    rows.append(
        (
            "time",
            f"{results['wall_s']:.1f} s (compile {results['compile_s']:.1f} s)"
            + (
                f", classifying the end points {results['classify_s']:.1f} s"
                if "classify_s" in results
                else ""
            ),
        )
    )
    rows.append(("written to", str(out)))
    width = max(len(k) for k, _ in rows)
    table = [f"  {k:<{width}}  {v}" for k, v in rows]
    return "\n".join(table + lines)


def _at(nested, idx):
    for i in idx:
        nested = nested[i]
    return nested
