"""The landscape report of a sweep's seeds: the loss along init -> final, barriers between end
points before and after aligning hidden units, and basins; with its figure.

Built on ``landscape``'s public functions, for params stacked over seeds (a ``--keep-params``
run folder's params.npz, or ``sweep(..., keep_params=True)``):

    rep = landscape_report(model, data, out.init_params, out.params, diverged=out.diverged)
    rep.as_dict()["interpolation"]["monotone_share"]
    fig = landscape_figure(rep.curves, rep.monotone, rep.barriers, title="xor")

References:
  Goodfellow, Vinyals & Saxe (2015); Frankle et al. (2020); Ainsworth, Hayase & Srinivasa
  (2023); Fort, Hu & Lakshminarayanan (2019): as cited in ``gbl_jax.analysis.landscape``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import numpy as np

from gbl_jax.analysis.landscape import Basins, align, barrier, basins, interpolate, path_bytes
from gbl_jax.analysis.spreads import wilson_interval
from gbl_jax.probability.costs import nll

__all__ = [
    "MONOTONE_RTOL",
    "LandscapeReport",
    "cell_of",
    "landscape_figure",
    "landscape_report",
    "monotone_paths",
    "report_bytes",
]

CSV_ROW_BYTES = 160  # a row of interpolation.csv while it is written: arrays, Python numbers, text

MONOTONE_RTOL = 1e-6  # a rise smaller than this (relative) is float noise, not a bump


class LandscapeReport(NamedTuple):
    """What ``landscape_report`` found.

    Attributes:
      curves: [seeds, num] loss along init -> final of each seed.
      monotone: [seeds] bool, the curve never rises (diverged and non-finite curves excluded).
      usable: [seeds] bool, not diverged and a finite curve.
      barriers: {"seeds": [K] the first usable seeds, "unaligned", "aligned": [K, K] symmetric
        barrier matrices, zero diagonal; "aligned" None when the report did not align}.
      basins: ``Basins`` of the final params.
      diverged: [seeds] bool, as given.
      num, tol: as given.
    """

    curves: np.ndarray
    monotone: np.ndarray
    usable: np.ndarray
    barriers: dict
    basins: Basins
    diverged: np.ndarray
    num: int
    tol: float

    def as_dict(self) -> dict:
        """The report as landscape.json holds it (numpy values; ``json_safe`` them to write)."""
        monotone, n = self.monotone.sum(), self.usable.sum()
        low, high = wilson_interval(int(monotone), int(n))
        a, b = np.triu_indices(len(self.barriers["seeds"]), 1)
        b_ = self.basins
        return {
            "diverged": int(self.diverged.sum()),
            "interpolation": {
                "num": self.num,
                "monotone": int(monotone),
                "n": int(n),
                "monotone_share": monotone / max(n, 1),
                "interval_95": [low, high],
            },
            "barriers": {
                **self.barriers,
                "median": _median(self.barriers["unaligned"], a, b),
                "median_aligned": (
                    None
                    if self.barriers["aligned"] is None
                    else _median(self.barriers["aligned"], a, b)
                ),
            },
            "basins": {
                "tol": self.tol,
                "count": b_.count,
                "share": b_.share,
                "share_ci": b_.share_ci,
                "loss": b_.loss,
                "leader": b_.leader,
            },
        }


def _median(matrix, a, b):
    return float(np.median(matrix[a, b])) if len(a) else None


def _take(tree, idx):
    return jax.tree.map(lambda x: x[idx], tree)


def monotone_paths(curves: np.ndarray, rtol: float = MONOTONE_RTOL) -> np.ndarray:
    """[seeds] bool: the loss never rises between neighbouring points of a path (a rise below
    ``rtol`` relative to the loss is float noise). ``curves``: [seeds, num]; a non-finite curve
    is not monotone."""
    curves = np.asarray(curves)
    steps = np.diff(curves, axis=1)
    return np.all(np.isfinite(curves), axis=1) & np.all(
        steps <= rtol * (1 + np.abs(curves[:, :-1])), axis=1
    )


def cell_of(stored: dict, grid: dict, seeds: int, cell: int) -> tuple[Any, Any, np.ndarray, dict]:
    """One grid cell of a run folder's params (``RunFolder.load_params``).

    Args:
      stored: {"params", "init_params": trees [*G, seeds, ...], "diverged": [*G, seeds]}.
      grid: {name: values}, the leading axes G in order.
      seeds: seeds per cell.
      cell: the cell's cell-major index.

    Returns:
      (init params, final params, diverged [seeds] bool, {name: the cell's value}).
    """
    cells = math.prod(len(v) for v in grid.values())

    def pick(a):
        return np.asarray(a).reshape((cells, seeds) + np.shape(a)[len(grid) + 1 :])[cell]

    final, init = (jax.tree.map(pick, stored[k]) for k in ("params", "init_params"))
    diverged = pick(stored["diverged"]).astype(bool)
    values = {
        k: v[i]
        for (k, v), i in zip(
            grid.items(), np.unravel_index(cell, tuple(len(v) for v in grid.values()))
        )
    }
    return init, final, diverged, values


def report_bytes(seeds: int, pairs: int, num: int, n_params: int, x_size: int) -> tuple[int, int]:
    """(host memory, disk) a landscape report and its files take, roughly, before it starts.

    Memory: one seed's path being evaluated (``landscape.path_bytes``), every seed's curve and
    the pairs' barrier curves (unaligned and aligned), and interpolation.csv (seeds x num rows)
    made in memory before it is written. Disk: interpolation.csv's text.
    """
    k = min(pairs, seeds)
    points = (seeds + k * (k - 1)) * num
    rows = seeds * num
    return path_bytes(num, n_params, x_size) + 4 * points + CSV_ROW_BYTES * rows, 48 * rows


def landscape_report(
    model,
    data,
    init_params,
    params,
    *,
    diverged=None,
    pairs: int = 16,
    num: int = 25,
    tol: float = 0.05,
    loss=nll,
    activation: str = "tanh",
    align_units: bool = True,
) -> LandscapeReport:
    """Interpolation init -> final per seed, barriers among the first seeds, and basins.

    Args:
      model, data, loss: as for ``gbl_jax.interpolate``.
      init_params, params: initial and final params, stacked over seeds.
      diverged: optional [seeds] bool; these seeds are left out of every statistic.
      pairs: barriers between the first ``pairs`` usable seeds (pairs * (pairs - 1) / 2 paths,
        twice: as trained, and after ``align`` to the lower seed of each pair).
      num: points on each path.
      tol: basins: largest max-abs difference of predictions within a basin.
      activation: the mlp's hidden activation, for ``align`` (odd ones allow sign flips).
      align_units: also the barriers after ``align``, which takes ``gbl.mlp`` params only; False
        leaves them out (``barriers["aligned"]`` is None) for params of any other layout.

    Returns:
      A ``LandscapeReport``.
    """
    curves = interpolate(model, data, init_params, params, num=num, loss=loss)
    seeds = curves.shape[0]
    diverged = np.zeros(seeds, bool) if diverged is None else np.asarray(diverged, bool)
    usable = ~diverged & np.all(np.isfinite(curves), axis=1)
    monotone = usable & monotone_paths(curves)
    ids = np.flatnonzero(usable)[:pairs]
    a, b = np.triu_indices(len(ids), 1)
    matrices = {
        "seeds": ids.tolist(),
        "unaligned": np.zeros((len(ids),) * 2),
        "aligned": np.zeros((len(ids),) * 2) if align_units else None,
    }
    if len(a):
        upper = barrier(
            model,
            data,
            _take(params, ids[a]),
            _take(params, ids[b]),
            num=num,
            loss=loss,
            stacked=True,
        )
        matrices["unaligned"][a, b] = matrices["unaligned"][b, a] = upper
    if len(a) and align_units:
        # align every later seed to each earlier one: the pairs in triu order, row by row
        aligned = [
            align(_take(params, i), _take(params, ids[k + 1 :]), activation=activation)
            for k, i in enumerate(ids[:-1])
        ]
        aligned = jax.tree.map(lambda *x: np.concatenate(x), *aligned)
        upper_aligned = barrier(
            model, data, _take(params, ids[a]), aligned, num=num, loss=loss, stacked=True
        )
        matrices["aligned"][a, b] = matrices["aligned"][b, a] = upper_aligned
    found = basins(model, data, params, tol=tol, loss=loss, diverged=diverged)
    return LandscapeReport(curves, monotone, usable, matrices, found, diverged, num, tol)


def landscape_figure(curves, monotone, barriers: dict, title: str = ""):
    """Loss along init -> final per seed, and the barrier matrices (unaligned, aligned).

    Args:
      curves: [seeds, num] loss along each path; monotone: [seeds] bool.
      barriers: {"seeds": [K], "unaligned": [K, K], "aligned": [K, K] or None (not aligned)}.
      title: the figure's title.

    Returns:
      A matplotlib Figure (``plots.save`` writes it).
    """
    import matplotlib.pyplot as plt  # lazily: importing gbl_jax must not pick a backend

    fig, axes = plt.subplots(1, 3, figsize=(12.6, 3.8), layout="constrained")
    alphas = np.linspace(0.0, 1.0, curves.shape[1])
    for flag, color, name in ((True, "tab:blue", "monotone"), (False, "tab:orange", "with a bump")):
        rows = curves[(monotone == flag) & np.all(np.isfinite(curves), axis=1)][:200]
        if len(rows):
            axes[0].plot(alphas, rows.T, color=color, alpha=0.3, linewidth=0.7)
            axes[0].plot([], [], color=color, label=f"{name} ({int(np.sum(monotone == flag))})")
    axes[0].set_xlabel("alpha (0 = init, 1 = final)")
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize="small")
    matrices = [barriers["unaligned"], barriers["aligned"]]
    if matrices[1] is None:
        axes[2].set_axis_off()
        axes[2].text(0.5, 0.5, "hidden units not aligned", ha="center", va="center")
        matrices = matrices[:1]
    top = max(float(np.nanmax(m)) if np.isfinite(m).any() else 0.0 for m in matrices)
    for ax, matrix, name in zip(axes[1:], matrices, ("barrier", "barrier after align")):
        image = ax.imshow(matrix, vmin=0, vmax=max(top, 1e-12), cmap="magma")
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("seed")
        ax.set_ylabel("seed")
        ticks = np.arange(len(barriers["seeds"]))
        ax.set_xticks(ticks, [str(s) for s in barriers["seeds"]], fontsize="x-small", rotation=90)
        ax.set_yticks(ticks, [str(s) for s in barriers["seeds"]], fontsize="x-small")
        fig.colorbar(image, ax=ax)
    fig.suptitle(title, fontsize="medium")
    return fig
