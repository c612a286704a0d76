"""Statistics of one value per seed: the IQM, percentile-bootstrap intervals, and the expected best
and worst of n seeds drawn from a sweep's population.

Pure numpy functions of a 1-D array of values (the seeds that did not diverge); ``Spread`` calls
them per grid cell. The definitions are ../shared/reference/round4-methods.md's:

  lo, hi = bootstrap_interval(values, "iqm")          # 95%, 2,000 resamples, seeded
  expected_extreme(values, 5, largest=False)          # E[min] of 5 seeds, without replacement

References:
  Agarwal et al. (2021), "Deep reinforcement learning at the edge of the statistical precipice"
  (rliable): the IQM and percentile-bootstrap intervals over runs.
  Bouthillier et al. (2021), "Accounting for variance in machine learning benchmarks".
  Dodge et al. (2019), "Show your work: improved reporting of experimental results": expected
  best of n from the order statistics.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from gbl_jax.checks import require_finite_number, require_int

QUANTILES = {"q10": 0.1, "q25": 0.25, "median": 0.5, "q75": 0.75, "q90": 0.9}
RESAMPLES = 2_000
MAX_RESAMPLE_VALUES = 2**26   # one bootstrap's index array at most (512 MiB of int64)


def iqm(values, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end), as rliable and
    ``scipy.stats.trim_mean(values, 0.25)`` compute it (floor(0.25 n) values cut at each end)."""
    v = np.sort(np.asarray(values, np.float64), axis=axis)
    n = v.shape[axis]
    cut = int(0.25 * n)
    return np.mean(np.take(v, np.arange(cut, n - cut), axis=axis), axis=axis)


def _quantile(q: float) -> Callable:
    return lambda v, axis: np.quantile(v, q, axis=axis)


STATISTICS: dict[str, Callable] = {
    "mean": lambda v, axis: np.mean(v, axis=axis),
    "std": lambda v, axis: np.std(v, axis=axis),
    "iqm": iqm,
    "min": lambda v, axis: np.min(v, axis=axis),
    "max": lambda v, axis: np.max(v, axis=axis),
    "iqr": lambda v, axis: (np.quantile(v, 0.75, axis=axis) - np.quantile(v, 0.25, axis=axis)),
    **{name: _quantile(q) for name, q in QUANTILES.items()},
}


def statistic(name: str) -> Callable:
    """The function ``(values, axis) -> array`` behind a statistic's name (``STATISTICS``)."""
    if name not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {name!r}")
    return STATISTICS[name]


def bootstrap_interval(values, stat: str = "mean", *, level: float = 0.95,
                       resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic over seeds.

    Resamples the seeds with replacement ``resamples`` times (a ``numpy.random.Generator`` seeded
    with ``seed``, so the interval is reproducible), computes the statistic of each resample and
    returns its (1 - level) / 2 and (1 + level) / 2 quantiles. NaN with no values; a single value
    gives a zero-width interval.

    Args:
      values: [n] the per-seed values (diverged seeds already left out).
      stat: a name of ``STATISTICS``: mean, std, iqm, median, q10 ... q90, iqr, min, max.
      level: the coverage, in (0, 1).
      resamples: at least 100.
      seed: the resampling's seed.

    Returns:
      (low, high) as floats.
    """
    fn = statistic(stat)
    level = require_finite_number("bootstrap: level", level)
    if not 0 < level < 1:
        raise ValueError(f"bootstrap: level must lie in (0, 1), got {level!r}")
    resamples = require_int("bootstrap: resamples", resamples, 100)
    v = np.asarray(values, np.float64).reshape(-1)
    if not v.size:
        return math.nan, math.nan
    rng = np.random.default_rng(require_int("bootstrap: seed", seed, 0))
    block = max(1, MAX_RESAMPLE_VALUES // v.size)   # resamples per block: bounded memory
    stats = np.concatenate([fn(v[rng.integers(0, v.size, (min(block, resamples - lo), v.size))],
                               1) for lo in range(0, resamples, block)])
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _log_comb(n: np.ndarray, k: int) -> np.ndarray:
    """log C(n, k) elementwise, -inf where n < k."""
    n = np.asarray(n, np.float64)
    lg = np.vectorize(math.lgamma, otypes=[np.float64])
    with np.errstate(invalid="ignore"):
        out = lg(n + 1) - math.lgamma(k + 1) - lg(np.maximum(n - k, 0) + 1)
    return np.where(n >= k, out, -np.inf)


def expected_extreme(values, n: int, *, largest: bool, replace: bool = False) -> float:
    """E[max] (``largest``) or E[min] of ``n`` seeds drawn from ``values``, exactly.

    The population is the empirical distribution of the N values. Without replacement (n
    distinct seeds, as a rerun of n seeds of this sweep would be), with v_(1) <= ... <= v_(N):
    E[max] = sum_i v_(i) C(i-1, n-1) / C(N, n) and E[min] = sum_i v_(i) C(N-i, n-1) / C(N, n);
    with replacement, P(max = v_(i)) = (i/N)^n - ((i-1)/N)^n and E[min] alike from the top.

    Args:
      values: [N] the per-seed values (diverged seeds already left out).
      n: seeds drawn, 1 <= n (<= N without replacement).
      largest: the expected maximum when True, the minimum when False.
      replace: draw with replacement.

    Returns:
      The expectation as a float (NaN when there are no values).
    """
    n = require_int("expected best/worst: n", n, 1)
    v = np.sort(np.asarray(values, np.float64).reshape(-1))
    size = v.size
    if not size:
        return math.nan
    if not replace and n > size:
        raise ValueError(f"expected best/worst: n = {n} seeds cannot be drawn without replacement "
                         f"from {size}; pass replace=True or n <= {size}")
    if not largest:
        v = v[::-1]   # E[min]: the same weights over the ranks counted from the top
    i = np.arange(1, size + 1)
    if replace:
        weights = (i / size) ** n - ((i - 1) / size) ** n
    else:
        weights = np.exp(_log_comb(i - 1, n - 1) - _log_comb(np.asarray(size), n))
    return float(np.sum(weights * v))
