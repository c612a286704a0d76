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
import warnings
from typing import Callable

import numpy as np

from gbl_jax.checks import require_finite_number, require_int

QUANTILES = {"q10": 0.1, "q25": 0.25, "median": 0.5, "q75": 0.75, "q90": 0.9}
RESAMPLES = 2_000
MAX_RESAMPLE_VALUES = 2**26  # one bootstrap's index array at most (512 MiB of int64)


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
    "iqr": lambda v, axis: np.quantile(v, 0.75, axis=axis) - np.quantile(v, 0.25, axis=axis),
    **{name: _quantile(q) for name, q in QUANTILES.items()},
}


def statistic(name: str) -> Callable:
    """The function ``(values, axis) -> array`` behind a statistic's name (``STATISTICS``)."""
    if name not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {name!r}")
    return STATISTICS[name]


def bootstrap_interval(
    values, stat: str = "mean", *, level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
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
    block = max(1, MAX_RESAMPLE_VALUES // v.size)  # resamples per block: bounded memory
    stats = np.concatenate(
        [
            fn(v[rng.integers(0, v.size, (min(block, resamples - lo), v.size))], 1)
            for lo in range(0, resamples, block)
        ]
    )
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _log_comb(n: np.ndarray, k: int) -> np.ndarray:
    """log C(n, k) elementwise, -inf where n < k."""
    from scipy.special import gammaln

    n = np.asarray(n, np.float64)
    out = gammaln(n + 1) - gammaln(k + 1) - gammaln(np.maximum(n - k, 0) + 1)
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
        raise ValueError(
            f"expected best/worst: n = {n} seeds cannot be drawn without replacement "
            f"from {size}; pass replace=True or n <= {size}"
        )
    if not largest:
        v = v[::-1]  # E[min]: the same weights over the ranks counted from the top
    i = np.arange(1, size + 1)
    if replace:
        weights = (i / size) ** n - ((i - 1) / size) ** n
    else:
        weights = np.exp(_log_comb(i - 1, n - 1) - _log_comb(np.asarray(size), n))
    return float(np.sum(weights * v))


def _prob_greater(a: np.ndarray, b: np.ndarray) -> float:
    """P(A > B) for independent draws from the two samples, ties counting one half: the
    Mann-Whitney U statistic of A over n_a n_b."""
    sorted_b = np.sort(b)
    below = np.searchsorted(sorted_b, a, side="left")
    at_or_below = np.searchsorted(sorted_b, a, side="right")
    return float(np.sum(below + 0.5 * (at_or_below - below)) / (a.size * b.size))


def _spread_ratio(a_RN: np.ndarray, b_RN: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.std(a_RN, axis=-1) / np.std(b_RN, axis=-1)


def _p_value(test: Callable, *args, **kwargs) -> float:
    """A scipy test's p-value; NaN where the test is undefined (too few or constant values)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns of ties and small samples
            return float(test(*args, **kwargs).pvalue)
    except ValueError:
        return math.nan


def two_sample(
    a,
    b,
    *,
    paired: bool,
    higher_is_better: bool,
    resamples: int = RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """How two sets of per-seed values differ: in mean, in who is better, in spread.

    Args:
      a, b: [n_a], [n_b] values (diverged seeds left out; with ``paired``, pair i is
        (a[i], b[i]) and n_a == n_b).
      paired: resample pairs together, and test with Wilcoxon's signed-rank test; otherwise
        resample each sample on its own and test with Mann-Whitney's U.
      higher_is_better: what "better" means for ``prob_better``.
      resamples, level, seed: the percentile bootstrap's count, coverage and numpy seed.
      With fewer than 2 values on a side every statistic but the means is NaN.

    Returns:
      {mean_a, mean_b, mean_diff (a - b), mean_diff_ci, test ("wilcoxon" / "mann-whitney"),
      test_p, prob_better (P(a better than b): for pairs the share of pairs, otherwise over
      independent draws, ties one half; rliable's probability of improvement), prob_better_ci,
      std_a, std_b (ddof 0), spread_ratio (std_a / std_b), spread_ratio_ci, spread_p
      (Brown-Forsythe: Levene's test around the medians)}.

    References:
      Agarwal et al. (2021), rliable: probability of improvement, percentile bootstrap.
      Brown & Forsythe (1974), "Robust tests for the equality of variances".
    """
    import scipy.stats

    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    if paired and a.size != b.size:
        raise ValueError(f"two_sample: paired values need equal sizes, got {a.size} and {b.size}")
    resamples = require_int("two_sample: resamples", resamples, 100)
    level = require_finite_number("two_sample: level", level)
    if not 0 < level < 1:
        raise ValueError(f"two_sample: level must lie in (0, 1), got {level!r}")
    rng = np.random.default_rng(require_int("two_sample: seed", seed, 0))
    if min(a.size, b.size) < 2:  # no spread to compare, no test to run
        nan2 = (math.nan, math.nan)
        return {
            "mean_a": float(np.mean(a)) if a.size else math.nan,
            "mean_b": float(np.mean(b)) if b.size else math.nan,
            "mean_diff": math.nan,
            "mean_diff_ci": nan2,
            "test": "wilcoxon" if paired else "mann-whitney",
            "test_p": math.nan,
            "prob_better": math.nan,
            "prob_better_ci": nan2,
            "std_a": math.nan,
            "std_b": math.nan,
            "spread_ratio": math.nan,
            "spread_ratio_ci": nan2,
            "spread_p": math.nan,
        }
    sign = 1.0 if higher_is_better else -1.0
    block = max(1, MAX_RESAMPLE_VALUES // (a.size + b.size))
    diffs, probs, ratios = [], [], []
    for lo in range(0, resamples, block):
        size = min(block, resamples - lo)
        idx_a = rng.integers(0, a.size, (size, a.size))
        idx_b = idx_a if paired else rng.integers(0, b.size, (size, b.size))
        a_RN, b_RN = a[idx_a], b[idx_b]
        diffs.append(a_RN.mean(axis=1) - b_RN.mean(axis=1))
        ratios.append(_spread_ratio(a_RN, b_RN))
        if paired:
            d_RN = sign * (a_RN - b_RN)
            probs.append(np.mean(d_RN > 0, axis=1) + 0.5 * np.mean(d_RN == 0, axis=1))
        else:
            probs.append(np.array([_prob_greater(sign * x, sign * y) for x, y in zip(a_RN, b_RN)]))
    cut = [(1 - level) / 2, (1 + level) / 2]

    def ci(values):
        values = np.concatenate(values)
        values = values[~np.isnan(values)]  # a ratio of two constant resamples is 0 / 0
        if not values.size:
            return math.nan, math.nan
        low, high = np.quantile(values, cut)
        return float(low), float(high)

    if paired:
        d = sign * (a - b)
        prob = float(np.mean(d > 0) + 0.5 * np.mean(d == 0))
        test, p = "wilcoxon", (1.0 if np.all(a == b) else _p_value(scipy.stats.wilcoxon, a - b))
    else:
        prob = _prob_greater(sign * a, sign * b)
        test, p = "mann-whitney", _p_value(scipy.stats.mannwhitneyu, a, b, alternative="two-sided")
    return {
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "mean_diff": float(a.mean() - b.mean()),
        "mean_diff_ci": ci(diffs),
        "test": test,
        "test_p": p,
        "prob_better": prob,
        "prob_better_ci": ci(probs),
        "std_a": float(a.std()),
        "std_b": float(b.std()),
        "spread_ratio": float(_spread_ratio(a, b)),
        "spread_ratio_ci": ci(ratios),
        "spread_p": _p_value(scipy.stats.levene, a, b, center="median"),
    }


def binomial_accuracy_std(correct_SN) -> float:
    """Jordan (2024)'s prediction of the std of test accuracy over seeds from test-set sampling
    alone: sqrt(sum_i p_i (1 - p_i)) / n, with p_i the share of seeds that get example i right.

    If each seed got each example right independently with probability p_i, its accuracy's
    variance over seeds would be sum_i p_i (1 - p_i) / n^2; a measured std near this says the
    seeds differ like independent coin flips per example (the test set's sampling, not a
    difference between the trained functions).

    Args:
      correct_SN: [seeds, n] per-seed, per-example correctness (bool or 0/1).

    References:
      Jordan (2024), "On the variance of neural network training with respect to test sets and
      distributions", section 3.
    """
    c = np.asarray(correct_SN, np.float64)
    if c.ndim != 2 or not c.size:
        raise ValueError(
            f"binomial_accuracy_std: correctness must be [seeds, examples], got "
            f"shape {list(c.shape)}"
        )
    if np.any((c != 0) & (c != 1)):
        raise ValueError("binomial_accuracy_std: correctness must be 0 or 1 per seed and example")
    p_N = c.mean(axis=0)
    return float(np.sqrt(np.sum(p_N * (1 - p_N))) / c.shape[1])


def seeds_for_interval(std: float, half_width: float, *, level: float = 0.95) -> int:
    """Seeds a normal-approximation interval of the mean needs to be at most +-``half_width``:
    ceil((z std / half_width)^2), z the two-sided ``level`` quantile."""
    std = require_finite_number("seeds_for_interval: std", std, nonnegative=True)
    half_width = require_finite_number("seeds_for_interval: half_width", half_width, positive=True)
    level = require_finite_number("seeds_for_interval: level", level)
    if not 0 < level < 1:
        raise ValueError(f"seeds_for_interval: level must lie in (0, 1), got {level!r}")
    import scipy.stats

    z = float(scipy.stats.norm.ppf(0.5 + level / 2))
    return max(1, math.ceil((z * std / half_width) ** 2))
