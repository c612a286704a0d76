"""Figures of init-sensitivity sweeps: each function returns a Figure; ``save`` writes it.

The module never chooses a backend (so ``plt.show()`` keeps working in a notebook) and imports
pyplot only when a figure is drawn. Inputs are host NumPy arrays, one entry per seed.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from gbl_jax.analysis.spreads import wilson_interval
from gbl_jax.analysis.surface_plots import curve_figure, surface_figure
from gbl_jax.atomic_files import atomic_write

__all__ = [
    "critical_points_figure",
    "curve_figure",
    "ensemble_figure",
    "final_loss_by_cell",
    "final_loss_histogram",
    "grid_heatmap",
    "grid_success",
    "instability_figure",
    "loss_curve_bands",
    "loss_curves_by_outcome",
    "metric_histogram",
    "probe_curves",
    "save",
    "surface_figure",
]

OUTCOME_COLORS = {"succeeded": "tab:blue", "failed": "tab:orange", "diverged": "tab:gray"}
KIND_COLORS = {
    "minimum": "tab:blue",
    "saddle": "tab:red",
    "not_converged": "tab:olive",
    "diverged": "tab:gray",
}


def _pyplot():
    import matplotlib.pyplot as plt  # lazily: importing gbl_jax must not pick a backend

    return plt


def _axes(ax, figsize=(6.4, 4.0)):
    """The given axes and its figure, or a new constrained-layout figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    return _pyplot().subplots(figsize=figsize, layout="constrained")


def _no_offset(ax):
    """Plain tick labels (no '+1e3' offset text that can collide with the axis label)."""
    from matplotlib.ticker import ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):
        if isinstance(axis.get_major_formatter(), ScalarFormatter):
            axis.get_major_formatter().set_useOffset(False)


def _all_positive(values) -> bool:
    """True if there are values and every one is finite and positive (a log axis can show them)."""
    v = np.asarray(values, dtype=np.float64)
    return bool(v.size and np.all(np.isfinite(v)) and v.min() > 0)


def _spans_decades(values, decades: float) -> bool:
    """True if every value is finite and positive and max / min exceeds 10**decades."""
    v = np.asarray(values, dtype=np.float64)
    return _all_positive(v) and v.max() / v.min() > 10.0**decades


def _title(ax, title):
    """A title (often long: a run's configuration) that wraps rather than runs off the figure."""
    ax.set_title(title, fontsize="medium", wrap=True)


def _quiet(fn, *args, **kwargs):
    """Calls a NaN-aware NumPy reduction without its all-NaN-slice warnings."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def save(fig, stem) -> list[Path]:
    """Writes ``stem.png`` (150 dpi) and ``stem.pdf`` (vector), each whole or not at all (drawn
    to memory, then written atomically: an interrupted or failed write never leaves a truncated
    figure over an earlier one), then closes the figure.

    Returns:
      The two paths written.
    """
    paths = [Path(f"{stem}.png"), Path(f"{stem}.pdf")]
    try:
        for path, options in zip(paths, ({"dpi": 150}, {})):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=path.suffix[1:], **options)
            atomic_write(path, buffer.getvalue())
    finally:
        _pyplot().close(fig)
    return paths


def final_loss_histogram(final_loss, diverged, *, threshold=None, ax=None, title: str = ""):
    """Histogram of the non-diverged final losses, with the success threshold and failure share.

    Bins are log-spaced when the losses are positive and span more than two decades. The dashed
    threshold line is labelled with the share of non-diverged seeds at or above it and its Wilson
    95% interval; the diverged count sits in the legend.

    Args:
      final_loss: [seeds] final losses.
      diverged: [seeds] bool.
      threshold: success threshold (final loss below it), or None for no line.
      ax: axes to draw on; a new figure if None.
      title: axes title.

    Returns:
      The Figure.
    """
    fig, ax = _axes(ax)
    final_loss = np.asarray(final_loss, dtype=np.float64)
    diverged = np.asarray(diverged, dtype=bool)
    ok = final_loss[~diverged & np.isfinite(final_loss)]
    n_bad = int(diverged.sum())
    label = f"{ok.size} seeds" + (f" shown, {n_bad} diverged" if n_bad else "")
    if ok.size:
        log = _spans_decades(ok, 2)
        bins = np.geomspace(ok.min(), ok.max(), 50) if log else 50
        ax.hist(ok, bins=bins, color="tab:blue", label=label)
        if log:
            ax.set_xscale("log")
    else:
        ax.plot([], [], " ", label=label)
    if threshold is not None:
        n_fail = int(np.sum(ok >= threshold))
        low, high = wilson_interval(n_fail, ok.size)
        share = (
            f"{100 * n_fail / ok.size:.1f}% above {threshold:g} (95% CI {100 * low:.1f}-"
            f"{100 * high:.1f}%)"
            if ok.size
            else f"threshold {threshold:g}"
        )
        ax.axvline(threshold, color="k", linestyle="--", linewidth=1, label=share)
    ax.set_xlabel("final loss")
    ax.set_ylabel("seeds")
    _title(ax, title)
    _no_offset(ax)
    ax.legend(fontsize="small")
    return fig


def final_loss_by_cell(
    grid: dict,
    final_loss,
    diverged,
    *,
    threshold=None,
    title: str = "",
    max_legend: int = 12,
    xlabel: str = "final loss",
):
    """Final losses of a grid kept apart: one empirical CDF per cell, never pooled.

    Each line is the share of a cell's non-diverged seeds whose final loss is at most x; with a
    threshold, the legend gives each cell's success rate and its own Wilson 95% interval (at
    most ``max_legend`` cells are labelled; the rest are in cells.csv and ``spread``).

    Args:
      grid: {name: values}, dict order = the leading axes of the arrays.
      final_loss, diverged: [*grid_shape, seeds].
      threshold: success threshold (final loss below it), or None.
      title: axes title.
      xlabel: what ``final_loss`` is (any per-seed number can be drawn this way).

    Returns:
      The Figure.
    """
    loss = np.asarray(final_loss, dtype=np.float64)
    bad = np.asarray(diverged, dtype=bool) | ~np.isfinite(loss)
    shape = tuple(len(v) for v in grid.values())
    if not grid or loss.shape[:-1] != shape or bad.shape != loss.shape:
        raise ValueError(
            f"final_loss_by_cell: need arrays [*{list(shape)}, seeds], got "
            f"{list(loss.shape)} and {list(np.shape(diverged))}"
        )
    fig, ax = _axes(None, figsize=(10.0, 4.4))
    ok_all = loss[~bad]
    log = _spans_decades(ok_all, 2)
    cells = list(np.ndindex(shape))
    colors = _pyplot().get_cmap("viridis")(np.linspace(0, 0.9, len(cells)))
    for color, idx in zip(colors, cells):
        ok = np.sort(loss[idx][~bad[idx]])
        name = " ".join(f"{k}={_label(v[i])}" for (k, v), i in zip(grid.items(), idx))
        if threshold is not None:
            wins = int(np.sum(ok < threshold))
            low, high = wilson_interval(wins, ok.size)
            name += (
                f": {100 * wins / ok.size:.0f}% [{100 * low:.0f}, {100 * high:.0f}]"
                if ok.size
                else ": all diverged"
            )
        label = name if len(cells) <= max_legend else None
        if ok.size:
            ax.step(ok, np.arange(1, ok.size + 1) / ok.size, where="post", color=color, label=label)
        elif label:
            ax.plot([], [], color=color, label=label)
    if log:
        ax.set_xscale("log")
    if threshold is not None:
        ax.axvline(
            threshold,
            color="k",
            linestyle="--",
            linewidth=1,
            label=f"threshold {threshold:g} (success below; 95% Wilson CI per cell)",
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of the cell's non-diverged seeds")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _title(
        ax,
        title
        + (
            ""
            if len(cells) <= max_legend
            else f" ({len(cells)} cells; per-cell rates in cells.csv)"
        ),
    )
    return fig


def metric_histogram(values, diverged, name: str, *, ax=None, title: str = ""):
    """Histogram of a per-seed number (e.g. test accuracy) over the non-diverged seeds, with its
    mean, min and max in the legend.

    Args:
      values: [seeds]; diverged: [seeds] bool (left out, counted in the legend).
      name: what the values are (the x label).

    Returns:
      The Figure.
    """
    fig, ax = _axes(ax)
    values = np.asarray(values, dtype=np.float64)
    bad = np.asarray(diverged, dtype=bool) | ~np.isfinite(values)
    ok = values[~bad]
    label = f"{ok.size} seeds" + (f", {int(bad.sum())} diverged" if bad.any() else "")
    if ok.size:
        label += (
            f": mean {ok.mean():.4g}, std {ok.std():.2g}, min {ok.min():.4g}, max {ok.max():.4g}"
        )
        ax.hist(ok, bins=min(50, max(10, ok.size // 4)), color="tab:blue", label=label)
        ax.axvline(ok.mean(), color="k", linestyle="--", linewidth=1)
    else:
        ax.plot([], [], " ", label=label)
    ax.set_xlabel(name)
    ax.set_ylabel("seeds")
    ax.legend(fontsize="small")
    _title(ax, title)
    _no_offset(ax)
    return fig


def loss_curve_bands(losses, log_every: int, *, ax=None, title: str = ""):
    """Median training loss with 25-75% and 10-90% bands over seeds, against the step.

    Args:
      losses: [seeds, T] logged training losses (NaN once a seed diverged).
      log_every: steps between logged losses.
      ax: axes to draw on; a new figure if None.
      title: axes title.

    Returns:
      The Figure.
    """
    fig, ax = _axes(ax)
    losses = np.atleast_2d(np.asarray(losses, dtype=np.float64))
    steps = (np.arange(losses.shape[1]) + 1) * log_every
    if losses.size:
        q = _quiet(np.nanquantile, losses, [0.1, 0.25, 0.5, 0.75, 0.9], axis=0)
        ax.fill_between(steps, q[0], q[4], alpha=0.2, color="tab:blue", label="10-90%")
        ax.fill_between(steps, q[1], q[3], alpha=0.4, color="tab:blue", label="25-75%")
        ax.plot(steps, q[2], color="tab:blue", label="median")
        ax.legend(fontsize="small")
        if _all_positive(q[0][np.isfinite(q[0])]):
            ax.set_yscale("log")
    _label_curves(ax, title)
    return fig


def _label_curves(ax, title):
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    _title(ax, title)
    _no_offset(ax)


def _sample(rng, idx, n, max_curves):
    """A proportional share of ``max_curves`` of ``idx``, but at least 20 of a rare outcome."""
    k = min(idx.size, max(round(max_curves * idx.size / max(n, 1)), min(20, max_curves)))
    return np.sort(rng.choice(idx, size=k, replace=False))


def loss_curves_by_outcome(
    losses,
    log_every: int,
    *,
    success=None,
    diverged=None,
    ax=None,
    title: str = "",
    max_curves: int = 200,
):
    """Individual training curves coloured by outcome, with each outcome's median in bold.

    On a bimodal sweep a median-and-band plot hides the two populations; this draws a fixed
    random sample of curves per outcome (succeeded / failed / diverged), rare outcomes kept
    visible. Falls back to ``loss_curve_bands`` when ``success`` is None.

    Args:
      losses: [seeds, T] logged training losses (NaN once a seed diverged).
      log_every: steps between logged losses.
      success: [seeds] bool, final loss below the threshold; None for quantile bands.
      diverged: [seeds] bool; None means a curve with any non-finite entry.
      ax: axes to draw on; a new figure if None.
      title: axes title.
      max_curves: about how many thin curves to draw in all.

    Returns:
      The Figure.
    """
    if success is None:
        return loss_curve_bands(losses, log_every, ax=ax, title=title)
    fig, ax = _axes(ax)
    losses = np.atleast_2d(np.asarray(losses, dtype=np.float64))
    losses = np.where(np.isfinite(losses), losses, np.nan)
    if diverged is None:
        diverged = np.isnan(losses).any(axis=1)
    diverged = np.asarray(diverged, dtype=bool)
    success = np.asarray(success, dtype=bool) & ~diverged
    outcome = np.where(diverged, "diverged", np.where(success, "succeeded", "failed"))
    steps = (np.arange(losses.shape[1]) + 1) * log_every
    rng = np.random.default_rng(0)  # display-only subsample; fixed so figures are reproducible
    for name, color in OUTCOME_COLORS.items():
        idx = np.flatnonzero(outcome == name)
        if not idx.size:
            continue
        thin = losses[_sample(rng, idx, len(losses), max_curves)]
        ax.plot(steps, thin.T, color=color, alpha=0.25, linewidth=0.6, gid=name)
        ax.plot(
            steps,
            _quiet(np.nanmedian, losses[idx], axis=0),
            color=color,
            linewidth=2.2,
            gid=name,
            label=f"{name} ({idx.size}), median",
        )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    if _all_positive(losses[np.isfinite(losses)]):
        ax.set_yscale("log")
    _label_curves(ax, title)
    return fig


def _positions(values):
    """x positions and whether the axis is categorical, log or linear."""
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        x = None
    if x is None or x.ndim != 1 or not np.all(np.isfinite(x)):
        return np.arange(len(values), dtype=np.float64), "category"
    return x, ("log" if _spans_decades(x, 1) else "linear")


def _label(value) -> str:
    """A grid value as a tick label: numbers with %g, anything else with str."""
    number = isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))
    return f"{value:g}" if number else str(value)


def _set_x(ax, name, values, x, scale):
    """Ticks at the grid values, labelled as given (category) or with %g."""
    from matplotlib.ticker import NullLocator

    if scale == "log":
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(x, [_label(v) for v in values])
    ax.set_xlabel(name)


def grid_success(grid: dict, rate, low, high, median_loss, *, threshold, title: str = ""):
    """Success rate (Wilson error bars) and median final loss against each axis of a 1-D/2-D grid.

    One row per grid axis: left, success rate against that axis' values (one line per value of
    the other axis on a 2-D grid); right, median final loss. Log x when values span > 1 decade.

    Args:
      grid: {name: values}, dict order = array axes.
      rate, low, high: [*grid_shape] success rate and its interval, fractions.
      median_loss: [*grid_shape] median final loss of the non-diverged seeds.
      threshold: the success threshold (final loss below it).
      title: figure title.

    Returns:
      The Figure.
    """
    names = list(grid)
    arrays = [np.asarray(a, dtype=np.float64) for a in (rate, low, high, median_loss)]
    shape = tuple(len(grid[n]) for n in names)
    if len(names) not in (1, 2) or any(a.shape != shape for a in arrays):
        raise ValueError(
            f"grid_success: need a 1-D or 2-D grid with arrays of shape {shape}, got "
            f"{[a.shape for a in arrays]}"
        )
    from matplotlib.ticker import PercentFormatter

    fig, axes = _pyplot().subplots(
        len(names), 2, figsize=(10, 3.6 * len(names)), layout="constrained", squeeze=False
    )
    for i, name in enumerate(names):
        x, scale = _positions(grid[name])
        rate_i, low_i, high_i, med_i = (np.moveaxis(a, i, 0).reshape(shape[i], -1) for a in arrays)
        other = names[1 - i] if len(names) == 2 else None
        for j in range(rate_i.shape[1]):
            label = f"{other}={_label(grid[other][j])}" if other else None
            err = np.maximum([rate_i[:, j] - low_i[:, j], high_i[:, j] - rate_i[:, j]], 0)
            line = axes[i, 0].errorbar(
                x, rate_i[:, j], yerr=err, marker="o", capsize=3, label=label
            )
            axes[i, 1].plot(x, med_i[:, j], marker="o", color=line[0].get_color(), label=label)
        axes[i, 0].set_ylim(-0.03, 1.03)
        axes[i, 0].yaxis.set_major_formatter(PercentFormatter(1.0))
        axes[i, 0].set_ylabel(f"success (final loss < {threshold:g})")
        axes[i, 1].axhline(threshold, color="k", linestyle="--", linewidth=1)
        axes[i, 1].set_ylabel("median final loss")
        if _spans_decades(np.append(med_i[np.isfinite(med_i)], threshold), 1):
            axes[i, 1].set_yscale("log")
        for ax in axes[i]:
            _set_x(ax, name, grid[name], x, scale)
        if other:
            axes[i, 0].legend(fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return fig


def grid_heatmap(grid: dict, rate, *, threshold, low=None, high=None, ax=None, title: str = ""):
    """Annotated heatmap of the success rate over a 2-D grid ("xx%", "±yy" given low and high).

    Args:
      grid: {row name: values, column name: values}.
      rate: [rows, cols] success rate, fractions (NaN where no seed finished).
      threshold: the success threshold (final loss below it).
      low, high: optional [rows, cols] interval bounds for the "±" half-width.
      ax: axes to draw on; a new figure if None.
      title: axes title.

    Returns:
      The Figure.
    """
    names = list(grid)
    rate = np.asarray(rate, dtype=np.float64)
    if len(names) != 2 or rate.shape != (len(grid[names[0]]), len(grid[names[1]])):
        raise ValueError(
            f"grid_heatmap: need a 2-D grid and rate of its shape, got {names} and "
            f"rate {rate.shape}"
        )
    fig, ax = _axes(ax, figsize=(1.2 * rate.shape[1] + 2.5, 0.7 * rate.shape[0] + 1.8))
    image = ax.imshow(rate, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    half = None if low is None or high is None else (np.asarray(high) - np.asarray(low)) / 2
    for (r, c), value in np.ndenumerate(rate):
        text = "n/a" if np.isnan(value) else f"{100 * value:.0f}%"
        if half is not None and np.isfinite(value) and np.isfinite(half[r, c]):
            text += f"\n±{100 * half[r, c]:.0f}"
        ax.text(
            c,
            r,
            text,
            ha="center",
            va="center",
            fontsize="small",
            color="w" if value < 0.6 else "k",
        )
    ax.set_yticks(np.arange(rate.shape[0]), [_label(v) for v in grid[names[0]]])
    ax.set_xticks(np.arange(rate.shape[1]), [_label(v) for v in grid[names[1]]])
    ax.set_ylabel(names[0])
    ax.set_xlabel(names[1])
    fig.colorbar(image, ax=ax, label=f"success (final loss < {threshold:g})")
    _title(ax, title)
    return fig


def critical_points_figure(loss, index, kind, *, title: str = ""):
    """Index of the end point against its loss, and the final-loss histogram stacked by kind.

    Args:
      loss: [seeds] final loss.
      index: [seeds] fraction of negative Hessian eigenvalues at the end point.
      kind: [seeds] str: "minimum", "saddle", "not_converged" or "diverged".
      title: figure title.

    Returns:
      The Figure.

    References:
      Dauphin et al. (2014), "Identifying and attacking the saddle point problem in
      high-dimensional non-convex optimization", figure 1.
    """
    loss = np.asarray(loss, dtype=np.float64)
    index = np.asarray(index, dtype=np.float64)
    kind = np.asarray(kind).astype(str)
    unknown = sorted(set(kind.tolist()) - set(KIND_COLORS))
    if unknown:
        raise ValueError(
            f"critical_points_figure: unknown kinds {unknown}; use {list(KIND_COLORS)}"
        )
    fig, (left, right) = _pyplot().subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    shown = np.isfinite(loss) & np.isfinite(index)
    log = _spans_decades(loss[shown], 2)
    present = [(name, color) for name, color in KIND_COLORS.items() if np.any(kind == name)]
    for name, color in present:
        mask = (kind == name) & shown
        left.scatter(
            loss[mask],
            index[mask],
            s=12,
            alpha=0.7,
            color=color,
            label=f"{name} ({np.sum(kind == name)})",
        )
    if shown.any():
        bins = np.geomspace(loss[shown].min(), loss[shown].max(), 40) if log else 40
        right.hist(
            [loss[(kind == name) & shown] for name, _ in present],
            bins=bins,
            stacked=True,
            color=[color for _, color in present],
        )
    for ax in (left, right):
        if log:
            ax.set_xscale("log")
        ax.set_xlabel("final loss")
        _no_offset(ax)
    left.set_ylabel("index (fraction of negative eigenvalues)")
    right.set_ylabel("seeds")
    if present:
        left.legend(fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return fig


def ensemble_figure(curve, disagreement=None, *, title: str = ""):
    """Ensembles of seeds against their size: the mixture's NLL (left) and, for classifiers,
    its accuracy and ECE (right), each the mean over the draws with the range of the middle
    95%; the title gives the seeds' pairwise disagreement when there is one.

    Args:
      curve: a ``gbl.EnsembleCurve``.
      disagreement: a ``gbl.Disagreement`` or None.
      title: the figure's title.
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    sizes = np.asarray(curve.sizes)
    others = [m for m in ("accuracy", "ece", "mse") if m in curve.values]
    for ax, names in ((left, ["nll"]), (right, others)):
        for name in names:
            low, high = curve.interval(name)
            ax.plot(sizes, curve.mean(name), "o-", label=name)
            ax.fill_between(sizes, low, high, alpha=0.25)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("ensemble size (seeds)")
        ax.legend(fontsize=8)
    left.set_ylabel("NLL of the mixture")
    extra = ""
    if disagreement is not None:
        extra = f"; pairwise disagreement {disagreement.mean:.3g}" + (
            f" ({disagreement.ratio:.2f} x the test error)" if disagreement.ratio else ""
        )
    fig.suptitle((title + extra).strip("; "), fontsize=10)
    return fig


def instability_figure(res, *, tol: float = 0.02, metric: str = "error", title: str = ""):
    """Instability analysis: each parent's largest ``metric`` barrier between its children
    against the spawn step k (left: points, median line, ``tol`` dashed), and P(stable | k)
    with its Wilson 95% interval (right), unaligned and, when computed, aligned.

    Args:
      res: a ``gbl.Instability``.
      tol: the stability threshold (Frankle et al.: 0.02 error).
      metric: "error" or "loss".
      title: the figure's title.
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    at = np.asarray(res.at)
    x = np.arange(len(at))  # k on evenly spaced positions (k = 0 has no log)
    rng = np.random.default_rng(0)
    for aligned, color in ((False, "tab:blue"), (True, "tab:orange")):
        name = f"aligned_{metric}" if aligned else metric
        if name not in res.barriers:
            continue
        worst = np.max(res.barriers[name], axis=-1)  # [K, parents]
        label = "aligned" if aligned else "unaligned"
        jitter = rng.uniform(-0.15, 0.15, worst.shape[1])
        for i in range(len(at)):
            left.plot(
                x[i] + jitter + (0.2 if aligned else 0),
                worst[i],
                ".",
                color=color,
                alpha=0.35,
                markersize=4,
            )
        left.plot(
            x + (0.2 if aligned else 0),
            np.nanmedian(worst, axis=1),
            "-",
            color=color,
            label=f"{label} median",
        )
        rate = res.stable_rate(tol, metric=metric, aligned=aligned)
        right.errorbar(
            x,
            rate.rate,
            yerr=[rate.rate - rate.low, rate.high - rate.rate],
            fmt="o-",
            color=color,
            capsize=3,
            label=label,
        )
    left.axhline(tol, color="gray", linestyle="--", linewidth=1, label=f"tol {tol:g}")
    for ax in (left, right):
        ax.set_xticks(x, [str(int(k)) for k in at])
        ax.set_xlabel("spawn step k")
        ax.legend(fontsize=8)
    left.set_ylabel(f"{metric} barrier between children")
    right.set_ylabel(f"P(stable | k), {metric} barrier < {tol:g}")
    right.set_ylim(-0.02, 1.02)
    right.axhline(0.5, color="gray", linestyle=":", linewidth=1)
    fig.suptitle(
        title
        or f"instability: {res.parents} parents x {res.children} children, "
        f"{res.steps} steps, barriers on the {res.evaluated_on} set",
        fontsize=10,
    )
    return fig


def probe_curves(
    values, log_every: int, *, name: str = "sharpness", lines=None, ax=None, title: str = ""
):
    """A probe's value against the step, one line per seed (up to 32 drawn), with horizontal
    reference ``lines`` ({label: value}, e.g. {"2 / lr": 2 / lr}).

    Args:
      values: [seeds, T] (or [T]) one probe's values at the windows' ends (``out.probes[name]``).
      log_every: steps per window.
    """
    fig, ax = _axes(ax)
    values = np.atleast_2d(np.asarray(values, np.float64))
    steps = log_every * (1 + np.arange(values.shape[-1]))
    for row in values[:32]:
        ax.plot(steps, row, linewidth=1, alpha=0.6)
    for i, (label, value) in enumerate((lines or {}).items()):
        ax.axhline(value, color=f"C{i}", linestyle="--", linewidth=1, label=label)
    if lines:
        ax.legend(fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel(name)
    _title(ax, title)
    return fig
