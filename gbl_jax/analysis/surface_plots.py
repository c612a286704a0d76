"""Figures of loss surfaces (``gbl.surface``) and curves between seeds (``gbl.curve``);
``plots`` re-exports them, as ``plots.surface_figure`` and ``plots.curve_figure``."""

from __future__ import annotations

import numpy as np


def _pyplot():
    import matplotlib.pyplot as plt  # lazily: importing gbl_jax must not pick a backend

    return plt


def _center(surface, name):
    """Each seed's value at the grid's middle (the trained params when ``points`` is odd)."""
    v = surface.values[name]
    mid = (len(surface.coords) - 1) // 2
    return v[(slice(None), 0) + (mid,) * surface.dims]


def _bands_1d(ax, surface, name):
    a = surface.coords
    v = np.asarray(surface.values[name], np.float64)[~surface.diverged]
    for s in range(min(len(v), 32)):
        ax.plot(a, v[s, 0], color="0.75", lw=0.6, zorder=1)
    mid, low, high = surface.band(name, over="seeds")
    ax.fill_between(a, low, high, alpha=0.25, color="tab:blue", label="95% of seeds (draw 0)")
    if v.shape[1] > 1:
        _, d_low, d_high = surface.band(name, over="draws")
        ax.plot(a, d_low, "--", color="tab:orange", lw=1)
        ax.plot(
            a,
            d_high,
            "--",
            color="tab:orange",
            lw=1,
            label=f"95% of {v.shape[1]} directions (median seed)",
        )
    ax.plot(a, mid, color="tab:blue", lw=2, label="median")
    ax.set_xlabel(f"step along the {surface.directions} direction")
    ax.set_ylabel(name)
    ax.legend(fontsize=7)


def surface_figure(surface, *, name: str = "loss", seeds=None, title: str = ""):
    """Slices of the loss around trained seeds (Li et al. 2018).

    One direction: ``name`` (left) and accuracy or test loss (right) along it, one grey line
    per seed, the median and the middle 95% over seeds, and with several draws the middle
    95% over directions. Two directions: contours of ``name`` for each seed in ``seeds``
    (default: the seeds with the lowest and the highest value at the center: a well-trained
    and a stuck one), with the trajectory's projection for "pca".

    Args:
      surface: a ``gbl.Surface`` of dims 1 or 2.
      name: which value to draw.
      seeds: seeds to draw as contours (dims 2).
      title: the figure's title.
    """
    plt = _pyplot()
    if name not in surface.values:
        raise ValueError(f"surface_figure: no {name!r}; the surface has {sorted(surface.values)}")
    if surface.dims == 1:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
        other = next(
            (n for n in ("accuracy", "test_loss") if n in surface.values and n != name), None
        )
        _bands_1d(axes[0], surface, name)
        if other is not None:
            _bands_1d(axes[1], surface, other)
        else:
            axes[1].set_visible(False)
    elif surface.dims == 2:
        center = _center(surface, name)
        ok = np.flatnonzero(~surface.diverged & np.isfinite(center))
        if seeds is None:
            seeds = (
                []
                if not ok.size
                else sorted(
                    {int(ok[np.argmin(center[ok])]), int(ok[np.argmax(center[ok])])},
                    key=lambda s: center[s],
                )
            )
        seeds = list(seeds)
        if not seeds:
            raise ValueError("surface_figure: no seed to draw (every seed diverged)")
        fig, axes = plt.subplots(
            1, len(seeds), figsize=(4.4 * len(seeds), 3.9), layout="constrained", squeeze=False
        )
        a = surface.coords
        for ax, s in zip(axes[0], seeds):
            v = np.asarray(surface.values[name][s, 0], np.float64)
            finite = v[np.isfinite(v)]
            levels: np.ndarray | int = 16
            if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
                levels = np.geomspace(finite.min(), finite.max(), 16)
            cs = ax.contour(a, a, v.T, levels=levels, cmap="viridis", linewidths=0.8)
            fig.colorbar(cs, ax=ax, shrink=0.8, format="%.3g")
            ax.plot([0], [0], "k*", ms=8)
            if surface.path is not None:
                ax.plot(
                    surface.path[s, :, 0],
                    surface.path[s, :, 1],
                    ".-",
                    color="tab:red",
                    ms=3,
                    lw=0.8,
                    label="trajectory",
                )
                ax.legend(fontsize=7)
            share = ""
            if surface.explained is not None:
                share = f"; explains {surface.explained[s, 0]:.0%}, {surface.explained[s, 1]:.0%}"
            ax.set_title(f"seed {s}: {name} {center[s]:.3g} at the center{share}", fontsize=9)
            ax.set_xlabel(f"{surface.directions} direction 1")
            ax.set_ylabel(f"{surface.directions} direction 2")
    else:
        raise ValueError(f"surface_figure: draws 1 or 2 directions, got dims={surface.dims}")
    fig.suptitle(title, fontsize=10)
    return fig


def _curve_panel(ax, c, label):
    t = c.t
    for values, color, what in ((c.line, "tab:orange", "line"), (c.loss, "tab:blue", "curve")):
        v = np.atleast_2d(np.asarray(values, np.float64))
        low, mid, high = np.nanquantile(v, [0.025, 0.5, 0.975], axis=0)
        for row in v[:32]:
            ax.plot(t, row, color=color, lw=0.5, alpha=0.35)
        barrier = c.line_barrier if what == "line" else c.barrier
        ax.plot(
            t, mid, color=color, lw=2, label=f"{what}: median barrier {np.nanmedian(barrier):.3g}"
        )
        if v.shape[0] > 1:
            ax.fill_between(t, low, high, color=color, alpha=0.15)
    ax.set_xlabel("t (0: params_a, 1: params_b)")
    ax.set_ylabel("training loss")
    ax.set_title(label, fontsize=9)
    ax.legend(fontsize=7)


def curve_figure(curve, aligned=None, *, title: str = ""):
    """The loss along trained Bezier curves beside the straight lines between the same pairs
    (Garipov et al. 2018): one thin line per pair, the median and middle 95% over pairs, and
    the median barrier (``gbl.barrier``'s definition) of each path in the legend; with
    ``aligned`` (a ``gbl.Curve`` of the aligned pairs) a second panel.

    Args:
      curve: a ``gbl.Curve``.
      aligned: an optional ``gbl.Curve`` of the same pairs after ``gbl.align``.
      title: the figure's title.
    """
    plt = _pyplot()
    panels = [(curve, "aligned first" if curve.aligned else "as trained")]
    if aligned is not None:
        panels.append((aligned, "aligned first" if aligned.aligned else "as trained"))
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(5.2 * len(panels), 3.8),
        layout="constrained",
        squeeze=False,
        sharey=True,
    )
    for ax, (c, label) in zip(axes[0], panels):
        _curve_panel(ax, c, label)
    fig.suptitle(title, fontsize=10)
    return fig
