"""How much of a metric's spread over seeds comes from the init, how much from the data order.

A crossed design (``gbl.crossed(init=I, data=D)``) trains every one of I inits with every one of D
data orders, one run per pair: a two-way table ``values[i, d]``. Its two-way random-effects
ANOVA (no replication) splits the variance of a run's value into an init component, a data-order
component, and the interaction plus run-to-run noise, which one run per cell cannot separate:

  vc = gbl.variance_components(out, metric="test_accuracy")
  vc.init, vc.data, vc.residual, vc.interval("init"), vc.to_frame()

With per-example correctness on the held-out set (``correct=[seeds, n]``), it also reports Jordan
(2024)'s binomial prediction of the accuracy's std: how spread out the seeds' test accuracies
would be if they differed only by which examples each got right, independently.

References:
  Montgomery, "Design and analysis of experiments", the two-factor random-effects model without
  replication (expected mean squares).
  Bouthillier et al. (2021), "Accounting for variance in machine learning benchmarks".
  Jordan (2024), "On the variance of neural network training with respect to test sets and
  distributions".
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np

from gbl_jax.analysis.seed_stats import binomial_accuracy_std
from gbl_jax.analysis.spreads import metric_values
from gbl_jax.checks import require_finite_number, require_int
from gbl_jax.engine.results import require_pandas

COMPONENTS = ("init", "data", "residual")
BOOTSTRAP_VALUES = 2**24  # values of the resampled tables held at once (128 MiB)


def mean_squares(values_ID: np.ndarray) -> np.ndarray:
    """[..., 3]: (MS_init, MS_data, MS_resid) of two-way tables [..., I, D], one value per cell.

    SS_init = D sum_i (r_i - m)^2 on I - 1 degrees of freedom, SS_data = I sum_d (c_d - m)^2 on
    D - 1, SS_resid = sum_id (v_id - r_i - c_d + m)^2 on (I - 1)(D - 1); r, c, m the row, column
    and grand means.
    """
    v = np.asarray(values_ID, np.float64)
    n_init, n_data = v.shape[-2:]
    row, col = v.mean(axis=-1), v.mean(axis=-2)
    grand = row.mean(axis=-1)
    ms_init = n_data * np.sum((row - grand[..., None]) ** 2, axis=-1) / (n_init - 1)
    ms_data = n_init * np.sum((col - grand[..., None]) ** 2, axis=-1) / (n_data - 1)
    resid = v - row[..., :, None] - col[..., None, :] + grand[..., None, None]
    ms_resid = np.sum(resid**2, axis=(-2, -1)) / ((n_init - 1) * (n_data - 1))
    return np.stack([ms_init, ms_data, ms_resid], axis=-1)


def components(values_ID: np.ndarray) -> np.ndarray:
    """[..., 3]: (init, data, residual) variance estimates of tables [..., I, D] by the method of
    moments, before clipping: s2_resid = MS_resid, s2_init = (MS_init - MS_resid) / D,
    s2_data = (MS_data - MS_resid) / I."""
    n_init, n_data = np.shape(values_ID)[-2:]
    ms = mean_squares(values_ID)
    return np.stack(
        [(ms[..., 0] - ms[..., 2]) / n_data, (ms[..., 1] - ms[..., 2]) / n_init, ms[..., 2]],
        axis=-1,
    )


class VarianceComponents(NamedTuple):
    """The variance of a metric split into init, data order and interaction + residual.

    Attributes:
      metric: the value analysed.
      n_init, n_data: inits and data orders of the crossed table (one run per pair).
      mean: the metric's mean over all runs.
      init, data, residual: the components, negative estimates clipped to 0.
      raw: {name: estimate before clipping}.
      clipped: names whose estimate was negative and is reported as 0.
      intervals: {name: (low, high)} percentile-bootstrap intervals, resampling inits and data
        orders independently (each resample's estimates clipped the same way).
      level: the intervals' coverage.
      measured_std: the metric's std over all runs (ddof 0).
      binomial_std: with per-example correctness, Jordan (2024)'s prediction of that std from
        the test set's sampling alone, sqrt(sum_i p_i (1 - p_i)) / n; None without it.
    """

    metric: str
    n_init: int
    n_data: int
    mean: float
    init: float
    data: float
    residual: float
    raw: Mapping[str, float]
    clipped: tuple
    intervals: Mapping[str, tuple]
    level: float
    measured_std: float = float("nan")
    binomial_std: float | None = None

    @property
    def total(self) -> float:
        """init + data + residual: the variance of one run's value under the model."""
        return self.init + self.data + self.residual

    def share(self, name: str) -> float:
        """A component's share of ``total`` (NaN when the total is 0)."""
        if name not in COMPONENTS:
            raise ValueError(f"share: name must be one of {', '.join(COMPONENTS)}, got {name!r}")
        return getattr(self, name) / self.total if self.total > 0 else float("nan")

    def interval(self, name: str) -> tuple:
        """The bootstrap interval (low, high) of a component."""
        if name not in COMPONENTS:
            raise ValueError(f"interval: name must be one of {', '.join(COMPONENTS)}, got {name!r}")
        return self.intervals[name]

    def to_frame(self):
        """A pandas DataFrame, one row per component: variance, std, share, low, high, clipped."""
        pd = require_pandas()
        rows = [
            {
                "metric": self.metric,
                "component": name,
                "variance": getattr(self, name),
                "std": float(np.sqrt(getattr(self, name))),
                "share": self.share(name),
                "low": self.intervals[name][0],
                "high": self.intervals[name][1],
                "clipped": name in self.clipped,
            }
            for name in COMPONENTS
        ]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """A short plain-text table."""
        lines = [
            f"variance components of {self.metric} ({self.n_init} inits x {self.n_data} "
            f"data orders, mean {self.mean:.6g}):"
        ]
        for name in COMPONENTS:
            low, high = self.intervals[name]
            note = " (negative estimate, clipped to 0)" if name in self.clipped else ""
            lines.append(
                f"  {name:>8}  {getattr(self, name):.4g}  share {self.share(name):.2f}  "
                f"{100 * self.level:g}% CI [{low:.4g}, {high:.4g}]{note}"
            )
        if self.binomial_std is not None:
            lines.append(
                f"  measured std {self.measured_std:.4g}; test-set sampling alone "
                f"(binomial) {self.binomial_std:.4g}"
            )
        return "\n".join(lines)


def variance_table(
    values_ID,
    *,
    metric: str = "value",
    level: float = 0.95,
    resamples: int = 2_000,
    seed: int = 0,
    binomial_std: float | None = None,
) -> VarianceComponents:
    """Variance components of a crossed table ``values[init, data]`` (one run per pair).

    Args:
      values_ID: [I, D] finite values, I, D >= 2.
      metric: the name to report.
      level, resamples, seed: the bootstrap's coverage, count (>= 100) and numpy seed.

    Returns:
      A ``VarianceComponents``.
    """
    v = np.asarray(values_ID, np.float64)
    if v.ndim != 2 or min(v.shape) < 2:
        raise ValueError(
            f"variance components need a table [inits, data orders] with at least 2 "
            f"of each, got shape {list(v.shape)}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError(
            f"variance components: {int((~np.isfinite(v)).sum())} runs have a "
            "non-finite value (diverged?); a crossed table needs every run"
        )
    level = require_finite_number("variance components: level", level)
    if not 0 < level < 1:
        raise ValueError(f"variance components: level must lie in (0, 1), got {level!r}")
    resamples = require_int("variance components: resamples", resamples, 100)
    raw = components(v)
    rng = np.random.default_rng(require_int("variance components: seed", seed, 0))
    n_init, n_data = v.shape
    block = max(1, BOOTSTRAP_VALUES // v.size)  # resampled tables per block: bounded memory
    boot = []
    for lo in range(0, resamples, block):
        size = min(block, resamples - lo)
        rows = rng.integers(0, n_init, (size, n_init, 1))
        cols = rng.integers(0, n_data, (size, 1, n_data))
        boot.append(components(v[rows, cols]))
    boot = np.maximum(np.concatenate(boot), 0.0)
    quantiles = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=0)
    estimates = np.maximum(raw, 0.0)
    return VarianceComponents(
        metric=metric,
        n_init=n_init,
        n_data=n_data,
        mean=float(v.mean()),
        init=float(estimates[0]),
        data=float(estimates[1]),
        residual=float(estimates[2]),
        raw=dict(zip(COMPONENTS, map(float, raw))),
        clipped=tuple(name for name, value in zip(COMPONENTS, raw) if value < 0),
        intervals={
            name: (float(quantiles[0, j]), float(quantiles[1, j]))
            for j, name in enumerate(COMPONENTS)
        },
        level=level,
        measured_std=float(v.std()),
        binomial_std=binomial_std,
    )


def variance_components(
    out,
    *,
    metric: str = "final_loss",
    correct=None,
    level: float = 0.95,
    resamples: int = 2_000,
    seed: int = 0,
) -> VarianceComponents:
    """Splits the variance of a metric over a crossed sweep's runs into init, data order, and
    interaction + residual (two-way random effects, one run per init and order).

    Args:
      out: a ``SweepResult`` of ``sweep(..., seeds=gbl.crossed(init=I, data=D))`` without a grid
        (take one with ``out.cell(...)``), I, D >= 2, no run diverged.
      metric: "final_loss" (default) or any final metric (``gbl.spread``'s names).
      correct: optional [seeds, n] per-example correctness on the held-out set (bool); adds
        Jordan (2024)'s binomial prediction of the accuracy's std from test-set sampling alone.
      level, resamples, seed: the bootstrap intervals' coverage, count (>= 100) and seed.

    Returns:
      A ``VarianceComponents``: ``init``, ``data``, ``residual``, ``interval(name)``,
      ``to_frame()``.

    References:
      Bouthillier et al. (2021), "Accounting for variance in machine learning benchmarks".
    """
    design = tuple(getattr(out, "crossed", ()) or ())
    if not design:
        raise ValueError(
            "variance_components: this result is not a crossed design; sweep with "
            "seeds=gbl.crossed(init=I, data=D) (gbl-jax sweep --crossed I,D)"
        )
    if out.grid:
        names = ", ".join(f"{k}=..." for k in out.grid)
        raise ValueError(
            f"variance_components: this result has a grid {list(out.grid_shape)}; "
            f"take one cell with out.cell({names})"
        )
    values = np.asarray(metric_values(out, metric), np.float64)
    diverged = np.asarray(out.diverged, bool)
    if diverged.any():
        raise ValueError(
            f"variance_components: {int(diverged.sum())} runs diverged; a crossed "
            "table needs every run (lower the learning rate, or drop those inits)"
        )
    binomial = None
    if correct is not None:
        correct = np.asarray(correct)
        if correct.ndim != 2 or correct.shape[0] != values.size:
            raise ValueError(
                f"variance_components: correct must be [seeds, examples] with "
                f"{values.size} seeds, got shape {list(correct.shape)}"
            )
        binomial = binomial_accuracy_std(correct)
    return variance_table(
        values.reshape(design),
        metric=metric,
        level=level,
        resamples=resamples,
        seed=seed,
        binomial_std=binomial,
    )
