"""How spread out the final losses of a sweep are: the numbers a paper's "x% of runs failed" needs.

References:
  Goodfellow, Bengio & Courville (2016), section 6.2: SGD on non-convex losses is sensitive to
  the initial parameters; a convex model (logistic regression) is not.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import numpy as np

from gbl_jax.analysis import seed_stats
from gbl_jax.checks import require_finite_number
from gbl_jax.engine.results import grid_columns, require_pandas

_STATS = ("mean", "std", "min", "q10", "q25", "median", "q75", "q90", "max", "iqr")
Z95 = 1.959963984540054  # the two-sided 95% normal quantile


def wilson_interval(successes, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion: (low, high), elementwise; NaN where n == 0.

    center (p + z^2/2n) / (1 + z^2/n), half-width z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n).

    References:
      Wilson (1927), "Probable inference, the law of succession, and statistical inference".
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError(f"wilson_interval: need 0 <= successes <= n, got {k} of {n}")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        center = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact ends where the count is 0 or n (the formula gives them up to rounding)
    low = np.where((k == 0) & (n > 0), 0.0, np.clip(center - half, 0.0, 1.0))
    high = np.where((k == n) & (n > 0), 1.0, np.clip(center + half, 0.0, 1.0))
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def better_when_higher(metric: str) -> bool:
    """Whether larger values of ``metric`` are better: an accuracy; losses, NLLs and errors are
    better lower. The one rule ``Spread`` and ``compare`` follow."""
    return "accuracy" in metric


def _scalar(a):
    a = np.asarray(a)
    return a.item() if a.ndim == 0 else a


class Spread(NamedTuple):
    """Summary of one value per seed (the final loss by default) over the seeds that did not
    diverge.

    On a sweep over a grid, every field is an array of the grid's shape (one value per cell);
    otherwise a number.

    Attributes:
      n: number of seeds.
      n_diverged: seeds whose loss or params went non-finite; excluded from every statistic.
      mean, std (population, ddof=0), min, q10, q25, median, q75, q90, max, iqr (q75 - q25):
        NaN when every seed diverged.
      final_loss: [*grid_shape, seeds] the values summarized: the final losses, or the metric's
        values (``values`` is the same array under a name that fits any metric).
      ok: [*grid_shape, seeds] bool, the seeds that did not diverge.
      grid: {name: values} of the grid's axes in order (from a ``SweepResult``; {} otherwise).
      metric: the name of the value summarized ("final_loss", "accuracy", "test_accuracy", ...).
    """

    n: int
    n_diverged: int
    mean: float
    std: float
    min: float
    q10: float
    q25: float
    median: float
    q75: float
    q90: float
    max: float
    iqr: float
    final_loss: np.ndarray
    ok: np.ndarray
    grid: Mapping[str, Sequence[float]] = {}
    metric: str = "final_loss"

    @property
    def n_ok(self):
        return _scalar(np.sum(self.ok, axis=-1))

    @property
    def values(self) -> np.ndarray:
        """[*grid_shape, seeds] the values summarized (the field ``final_loss``)."""
        return self.final_loss

    @property
    def higher_is_better(self) -> bool:
        """Whether larger values are better (``better_when_higher``)."""
        return better_when_higher(self.metric)

    def _per_cell(self, fn) -> object:
        cells = [fn(self.final_loss[i][self.ok[i]]) for i in np.ndindex(self.ok.shape[:-1])]
        return _scalar(
            np.asarray(cells, np.float64).reshape(self.ok.shape[:-1] + np.shape(cells[0]))
        )

    @property
    def iqm(self):
        """Interquartile mean (rliable): the mean of the middle 50% of the non-diverged values."""
        return self._per_cell(lambda v: seed_stats.iqm(v) if v.size else np.nan)

    def interval(
        self,
        stat: str = "mean",
        *,
        level: float = 0.95,
        resamples: int = seed_stats.RESAMPLES,
        seed: int = 0,
    ):
        """Percentile-bootstrap interval (low, high) of a statistic over the non-diverged seeds.

        Args:
          stat: "mean", "std", "iqm", "median", "q10", "q25", "q75", "q90", "iqr", "min", "max".
          level: coverage (default 95%); resamples: at least 100 (default 2,000); seed: the
            resampling's seed (the interval is reproducible).

        Returns:
          (low, high): floats, or arrays of the grid's shape.
        """
        lows_highs = self._per_cell(
            lambda v: seed_stats.bootstrap_interval(
                v, stat, level=level, resamples=resamples, seed=seed
            )
        )
        lows_highs = np.asarray(lows_highs)
        return _scalar(lows_highs[..., 0]), _scalar(lows_highs[..., 1])

    def seeds_for(self, half_width: float, *, level: float = 0.95):
        """Seeds an interval of the mean at most +-``half_width`` wide needs, from this spread's
        std (normal approximation: ceil((z std / half_width)^2)); per cell on a grid."""
        seeds = self._per_cell(
            lambda v: seed_stats.seeds_for_interval(
                float(np.std(v)) if v.size else 0.0, half_width, level=level
            )
        )
        return _scalar(np.asarray(seeds).astype(np.int64))

    def expected_best(self, n: int, *, replace: bool = False):
        """The expected best value of ``n`` seeds drawn from this sweep's non-diverged seeds:
        E[min] of a loss, E[max] of an accuracy (``higher_is_better``), exact from the order
        statistics (``seed_stats.expected_extreme``); without replacement unless ``replace``."""
        return self._per_cell(
            lambda v: seed_stats.expected_extreme(
                v, n, largest=self.higher_is_better, replace=replace
            )
        )

    def expected_worst(self, n: int, *, replace: bool = False):
        """The expected worst value of ``n`` seeds drawn from this sweep's non-diverged seeds:
        E[max] of a loss, E[min] of an accuracy; as ``expected_best``."""
        return self._per_cell(
            lambda v: seed_stats.expected_extreme(
                v, n, largest=not self.higher_is_better, replace=replace
            )
        )

    @property
    def converged_losses(self) -> np.ndarray:
        """The final losses of the seeds that did not diverge (a sweep without a grid)."""
        if self.final_loss.ndim != 1:
            raise ValueError(
                "converged_losses: a grid has a different number per cell; index "
                "final_loss with ok per cell"
            )
        return self.final_loss[self.ok]

    @property
    def identical(self):
        """Whether every non-diverged seed ended at one and the same loss (per cell on a grid):
        identical runs, as ``init_scale=0`` gives (every seed starts from zero weights and the
        symmetry between units is never broken). False with fewer than two such seeds."""
        highest = np.max(np.where(self.ok, self.final_loss, -np.inf), axis=-1)
        lowest = np.min(np.where(self.ok, self.final_loss, np.inf), axis=-1)
        return _scalar((highest == lowest) & (np.sum(self.ok, axis=-1) > 1))

    def successes(self, threshold: float):
        """Non-diverged seeds whose value is better than ``threshold``: below it for a loss,
        above it for an accuracy (``higher_is_better``); per cell on a grid."""
        threshold = require_finite_number("threshold", threshold)
        sign = -1.0 if self.higher_is_better else 1.0
        better = self.ok & (np.where(self.ok, sign * self.final_loss, np.inf) < sign * threshold)
        return _scalar(np.sum(better, axis=-1))

    def success_rate(self, threshold: float):
        """Share of non-diverged seeds better than ``threshold`` (``successes``; NaN if none)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return _scalar(
                np.asarray(self.successes(threshold), np.float64)
                / np.asarray(self.n_ok, np.float64)
            )

    def success_interval(self, threshold: float, z: float = Z95):
        """Wilson 95% interval (low, high) of ``success_rate(threshold)``."""
        return wilson_interval(self.successes(threshold), self.n_ok, z)

    def as_dict(self) -> dict:
        """The statistics, for JSON: numbers, or nested lists on a grid (NaN as None)."""

        def clean(v):
            a = np.asarray(v, dtype=np.float64)
            if a.ndim == 0:
                return (
                    None
                    if not np.isfinite(a)
                    else (int(a) if a == int(a) and isinstance(v, (int, np.integer)) else float(a))
                )
            return [clean(x) for x in a.tolist()] if a.ndim == 1 else [clean(x) for x in a]

        out = {"n": clean(self.n), "n_diverged": clean(self.n_diverged)}
        out.update({k: clean(getattr(self, k)) for k in _STATS})
        identical = np.asarray(self.identical)
        out["identical"] = bool(identical) if identical.ndim == 0 else identical.tolist()
        return out

    def to_frame(self, threshold: float | None = None):
        """A pandas DataFrame with one row per grid cell (one row without a grid).

        Columns: the grid axes by name (``axis_0``, ... for a bare array of losses), n,
        n_diverged, n_ok, every statistic and the iqm, and with ``threshold`` the successes, success_rate and
        its Wilson 95% interval (success_low, success_high).
        """
        pd = require_pandas()
        shape = np.shape(self.final_loss)[:-1]
        grid = self.grid or {f"axis_{j}": range(size) for j, size in enumerate(shape)}
        columns = grid_columns(grid, shape)
        flat = lambda v: np.asarray(v).reshape(-1)  # noqa: E731
        columns.update(n=flat(self.n), n_diverged=flat(self.n_diverged), n_ok=flat(self.n_ok))
        columns.update({k: flat(getattr(self, k)).astype(np.float64) for k in _STATS + ("iqm",)})
        if threshold is not None:
            low, high = self.success_interval(threshold)
            columns.update(
                threshold=np.full(len(columns["n"]), float(threshold)),
                successes=flat(self.successes(threshold)),
                success_rate=flat(self.success_rate(threshold)),
                success_low=flat(low),
                success_high=flat(high),
            )
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        if self.final_loss.ndim != 1:
            axes = {k: len(v) for k, v in self.grid.items()} or list(self.final_loss.shape[:-1])
            return (
                f"Spread(grid {axes}, {self.final_loss.shape[-1]} seeds per cell; see the "
                "fields or to_frame())"
            )
        stats = ", ".join(
            f"{k}={getattr(self, k):.4g}" for k in ("mean", "std", "min", "median", "max")
        )
        named = "" if self.metric == "final_loss" else f"{self.metric}: "
        return f"Spread({named}n={self.n}, n_diverged={self.n_diverged}, {stats})"

    def summary(self) -> str:
        """A short plain-text table (one cell: the sweep without a grid)."""
        if self.final_loss.ndim != 1:
            text = f"a grid of {list(self.final_loss.shape[:-1])} cells; see the fields"
            same = np.argwhere(np.asarray(self.identical))
            if len(same):
                names = list(self.grid) or [f"axis_{j}" for j in range(same.shape[1])]
                values = list(self.grid.values()) or [range(n) for n in self.final_loss.shape]
                cells = [
                    "("
                    + ", ".join(f"{n}={values[j][i]:g}" for j, (n, i) in enumerate(zip(names, idx)))
                    + ")"
                    for idx in same
                ]
                text += f"; identical runs in {', '.join(cells)}"
            return text
        if self.n_ok == 0:
            return f"all {self.n} seeds diverged: no statistics"
        head = f"{self.n} seeds, {self.n_diverged} diverged"
        if self.identical:
            head += f"; all {self.n_ok} runs are identical (one final loss, as init_scale 0 gives)"
        rows = "\n".join(f"  {k:>6}  {getattr(self, k):.6g}" for k in _STATS)
        return f"{head}\n{rows}"


def _stats(losses: np.ndarray, ok: np.ndarray) -> tuple:
    values = losses[ok].astype(np.float64)
    if not values.size:
        return (float("nan"),) * len(_STATS)
    q10, q25, median, q75, q90 = np.quantile(values, [0.1, 0.25, 0.5, 0.75, 0.9])
    return (
        values.mean(),
        values.std(),
        values.min(),
        q10,
        q25,
        median,
        q75,
        q90,
        values.max(),
        q75 - q25,
    )


def metric_values(out, metric: str) -> np.ndarray:
    """``out``'s per-seed values of ``metric``: final_loss, or a final metric by name; a held-out
    metric answers to both of its spellings (``test_accuracy`` and ``eval_accuracy``)."""
    if metric == "final_loss":
        return np.asarray(out.final_loss)
    finals = dict(getattr(out, "final_metrics", {}) or {})
    for name in (
        metric,
        *(
            prefix + metric.split("_", 1)[1]
            for prefix in ("test_", "eval_")
            if metric.startswith(("test_", "eval_"))
        ),
    ):
        if name in finals:
            return np.asarray(finals[name])
    raise ValueError(
        f"no metric {metric!r} in this result; it has final_loss"
        + "".join(f", {name}" for name in finals)
    )


def spread(out, diverged=None, *, metric: str = "final_loss") -> Spread:
    """Summarizes one value per seed, per grid cell when there is a grid.

    Args:
      out: a ``SweepResult`` (its ``diverged`` flags are used), or an array of values
        [..., seeds], where a non-finite value counts as diverged.
      diverged: optional bool flags of the same shape, with an array.
      metric: which value of a ``SweepResult``: "final_loss" (default), or the name of any of
        its final metrics ("accuracy", "test_accuracy" / "eval_accuracy", "test_nll", ...). With
        an array it only names the values (an "accuracy" is better when higher).

    Returns:
      A ``Spread``; its fields have the shape of the leading (grid) axes.
    """
    if not isinstance(metric, str):
        raise ValueError(f"spread: metric must be a name, got {metric!r}")
    grid = dict(getattr(out, "grid", {}) or {})
    if hasattr(out, "final_loss"):
        losses, flags = metric_values(out, metric), np.asarray(out.diverged)
    else:
        losses = np.asarray(out, dtype=np.float64)
        flags = np.zeros(losses.shape, bool) if diverged is None else np.asarray(diverged)
    if losses.ndim < 1 or flags.shape != losses.shape:
        raise ValueError(
            f"spread: expected final losses [..., seeds] and flags of the same shape, "
            f"got {list(losses.shape)} and {list(flags.shape)}"
        )
    ok = ~(flags.astype(bool) | ~np.isfinite(losses))
    grid_shape = losses.shape[:-1]
    cells = [_stats(losses[i], ok[i]) for i in np.ndindex(grid_shape)]
    stats = np.asarray(cells, dtype=np.float64).reshape(grid_shape + (len(_STATS),))
    fields = [_scalar(stats[..., j]) for j in range(len(_STATS))]
    n = _scalar(np.full(grid_shape, losses.shape[-1]))
    if grid and tuple(len(v) for v in grid.values()) != grid_shape:
        raise ValueError(
            f"spread: the grid's axes {[len(v) for v in grid.values()]} do not match "
            f"the final losses' leading axes {list(grid_shape)}"
        )
    return Spread(n, _scalar(np.sum(~ok, axis=-1)), *fields, losses, ok, grid, metric)
