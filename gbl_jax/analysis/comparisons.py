"""Paired comparison of two sweeps: does configuration A succeed more often, or end lower, than B?

Seed i of two sweeps with the same key, seed count and ``vary`` starts from the same init and sees
the same data stream, so the two runs of a seed are a matched pair. Paired tests use that: the
seeds both configurations solve, or both fail, say nothing about which is better; only the
discordant seeds do (McNemar), and per-seed loss differences cancel the luck of the draw that
both runs share (a paired bootstrap). Comparing two sets of independent seeds instead needs many
more seeds for the same power, and is not offered here.

References:
  McNemar (1947), "Note on the sampling error of the difference between correlated proportions
  or percentages".
  Wilson (1927), "Probable inference, the law of succession, and statistical inference".
  Efron & Tibshirani (1993), "An Introduction to the Bootstrap", chapter 13 (percentile
  intervals).
  Picard (2021), "torch.manual_seed(3407) is all you need"; Bouthillier et al. (2021),
  "Accounting for variance in machine learning benchmarks": why seeds must be controlled.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gbl_jax.checks import require_finite_number, require_int
from gbl_jax.engine.results import require_pandas
from gbl_jax.analysis.spreads import wilson_interval

_CHUNK_ELEMENTS = 1 << 22   # resampled values held at once by the bootstrap (32 MiB of float64)
# More resamples than this change a percentile interval by far less than the seeds' own sampling
# error; the cap keeps a typo (1e12) from allocating terabytes and running for days.
MAX_RESAMPLES = 10**7


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    Under the null each discordant pair is A-only or B-only with probability 1/2, so
    ``p = min(1, 2 P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``; 1 when ``b + c == 0``.
    The largest term, pmf(min(b, c)), is taken in log space and the smaller ones as ratios to
    it, so nothing overflows for millions of pairs.

    Args:
      b: pairs where only A succeeded.
      c: pairs where only B succeeded.

    References:
      McNemar (1947), "Note on the sampling error of the difference between correlated
      proportions or percentages".
    """
    b, c = require_int("mcnemar_exact: b", b, 0), require_int("mcnemar_exact: c", c, 0)
    n, m = b + c, min(b, c)
    if n == 0:
        return 1.0
    log_pmf_m = math.lgamma(n + 1) - math.lgamma(m + 1) - math.lgamma(n - m + 1) - n * math.log(2)
    # pmf(k - 1) / pmf(k) = k / (n - k + 1) <= 1 for k <= m <= n / 2: the terms below m shrink
    k = np.arange(m, 0, -1, dtype=np.float64)
    tail = 1.0 + np.sum(np.cumprod(k / (n - k + 1)))
    return min(1.0, 2.0 * math.exp(log_pmf_m + math.log(tail)))


def _rng(seed: int | None, key: Any) -> np.random.Generator:
    if seed is not None and key is not None:
        raise ValueError("paired_bootstrap_median: pass seed or key, not both")
    if key is None:
        return np.random.default_rng(require_int("paired_bootstrap_median: seed", 0 if seed is None
                                                 else seed, 0))
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key, dtype=np.uint32).ravel().tolist())


def paired_bootstrap_median(diff, *, resamples: int = 10_000, seed: int | None = None,
                            key: Any = None, level: float = 0.95) -> tuple[float, float, float]:
    """Median of paired differences and its percentile bootstrap interval.

    Each resample draws ``len(diff)`` seed indices with replacement (pairs stay together, which
    is what makes the bootstrap paired) as ``floor(u * n)`` for ``u`` uniform in [0, 1), one
    row of ``n`` uniforms per resample, in chunks of at most ``_CHUNK_ELEMENTS`` values.

    Args:
      diff: [n] per-seed differences, loss_a - loss_b, of the seeds where both ran finite.
      resamples: bootstrap resamples, at most ``MAX_RESAMPLES``.
      seed: seed of the numpy ``Generator`` (default 0, so results repeat); or
      key: a JAX key whose key data seeds it.
      level: coverage of the percentile interval.

    Returns:
      (median, low, high); the median is NaN for no seeds, the interval NaN for fewer than 2.

    References:
      Efron & Tibshirani (1993), "An Introduction to the Bootstrap", section 13.3 (percentile
      interval).
    """
    diff_N = np.asarray(diff, dtype=np.float64)
    if diff_N.ndim != 1:
        raise ValueError(f"paired_bootstrap_median: diff must be 1-D [seeds], got shape "
                         f"{list(diff_N.shape)}")
    resamples = require_int("paired_bootstrap_median: resamples", resamples, 1)
    if resamples > MAX_RESAMPLES:
        raise ValueError(f"paired_bootstrap_median: resamples must be at most {MAX_RESAMPLES:,} "
                         f"(10,000 is plenty for a 95% interval), got {resamples:,}")
    level = require_finite_number("paired_bootstrap_median: level", level, positive=True)
    if level >= 1:
        raise ValueError(f"paired_bootstrap_median: level must be in (0, 1), got {level}")
    rng = _rng(seed, key)
    n = diff_N.size
    if n < 2:
        return (float(diff_N[0]) if n else float("nan")), float("nan"), float("nan")
    rows = max(1, min(resamples, _CHUNK_ELEMENTS // n))
    medians_B = np.empty(resamples)
    for start in range(0, resamples, rows):
        stop = min(start + rows, resamples)
        idx_RN = (rng.random((stop - start, n)) * n).astype(np.int64)
        medians_B[start:stop] = np.median(diff_N[idx_RN], axis=1)
    low, high = np.quantile(medians_B, [(1 - level) / 2, (1 + level) / 2])
    return float(np.median(diff_N)), float(low), float(high)


def _clean(v):
    if isinstance(v, tuple):
        return [_clean(x) for x in v]
    if isinstance(v, (int, np.integer)):
        return int(v)
    return float(v) if np.isfinite(v) else None


class Comparison(NamedTuple):
    """What ``compare`` returns: A's and B's success side by side, paired seed by seed.

    A seed succeeds when it did not diverge and its final loss is below ``threshold``. A diverged
    seed is a failure here (rates are out of all ``n`` seeds, unlike ``Spread.success_rate``,
    which leaves diverged seeds out), so the 2x2 table covers every seed.

    Attributes:
      n, threshold: seeds per sweep; the success threshold.
      successes_a, successes_b, rate_a, rate_b: successes and their share of ``n``.
      interval_a, interval_b: Wilson 95% intervals (low, high) of the rates.
      both, only_a, only_b, neither: the paired 2x2 table (sums to ``n``).
      mcnemar_p: two-sided exact McNemar p-value from ``only_a`` and ``only_b``.
      median_diff, median_diff_ci: median over seeds of loss_a - loss_b (negative: A ends
        lower) and its paired percentile bootstrap 95% interval (low, high); over the
        ``n_paired`` seeds where neither run diverged.
      n_diverged_a, n_diverged_b: diverged seeds of each.
      bootstrap: number of bootstrap resamples behind ``median_diff_ci``.
    """

    n: int
    threshold: float
    successes_a: int
    successes_b: int
    rate_a: float
    rate_b: float
    interval_a: tuple[float, float]
    interval_b: tuple[float, float]
    both: int
    only_a: int
    only_b: int
    neither: int
    mcnemar_p: float
    median_diff: float
    median_diff_ci: tuple[float, float]
    n_paired: int
    n_diverged_a: int
    n_diverged_b: int
    bootstrap: int

    @property
    def rate_diff(self) -> float:
        """rate_a - rate_b, which equals (only_a - only_b) / n."""
        return self.rate_a - self.rate_b

    def verdict(self, alpha: float = 0.05) -> str:
        """One line: which configuration succeeds more often, if McNemar's test says so."""
        if self.mcnemar_p < alpha:
            better = "A" if self.only_a > self.only_b else "B"
            return f"{better} succeeds more often (McNemar exact p = {self.mcnemar_p:.3g})"
        return (f"no significant difference in success at {alpha:g} "
                f"(McNemar exact p = {self.mcnemar_p:.3g})")

    def as_dict(self) -> dict:
        """The fields and ``rate_diff``, for JSON (intervals as [low, high], NaN as None)."""
        out = {k: _clean(v) for k, v in self._asdict().items()}
        out["rate_diff"] = _clean(self.rate_diff)
        return out

    def summary(self, alpha: float = 0.05) -> str:
        """A short plain-text table: A and B side by side, the paired table, the verdict."""
        def rate(r, ci):
            return f"{r:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
        lo, hi = self.median_diff_ci
        lines = [
            f"{self.n} paired seeds, success: final loss < {self.threshold:g}",
            f"{'':>20}  {'A':>22}  {'B':>22}",
            f"{'successes':>20}  {self.successes_a:>22}  {self.successes_b:>22}",
            f"{'rate [95% CI]':>20}  {rate(self.rate_a, self.interval_a):>22}  "
            f"{rate(self.rate_b, self.interval_b):>22}",
            f"{'diverged':>20}  {self.n_diverged_a:>22}  {self.n_diverged_b:>22}",
            "paired seeds:        B succeeds  B fails",
            f"  A succeeds         {self.both:>10}  {self.only_a:>7}",
            f"  A fails            {self.only_b:>10}  {self.neither:>7}",
            f"McNemar exact p = {self.mcnemar_p:.3g}",
            f"median loss A - B = {self.median_diff:.4g}, 95% CI [{lo:.4g}, {hi:.4g}] "
            f"({self.n_paired} seeds, {self.bootstrap} resamples)",
            self.verdict(alpha),
        ]
        return "\n".join(lines)

    def to_frame(self):
        """A one-row pandas DataFrame of ``as_dict`` (intervals split into _low / _high)."""
        pd = require_pandas()
        row = {}
        for k, v in self.as_dict().items():
            if isinstance(v, list):
                row[f"{k}_low"], row[f"{k}_high"] = (np.nan if x is None else x for x in v)
            else:
                row[k] = np.nan if v is None else v
        return pd.DataFrame([row])


def _wilson(successes: int, n: int) -> tuple[float, float]:
    low, high = wilson_interval(successes, n)
    return float(low), float(high)


def _check_one_cell(name: str, out) -> tuple[np.ndarray, np.ndarray]:
    loss, diverged = np.asarray(out.final_loss), np.asarray(out.diverged, dtype=bool)
    grid = dict(getattr(out, "grid", None) or {})
    if grid or loss.ndim != 1:
        shape = [len(v) for v in grid.values()] or list(loss.shape[:-1])
        axes = ", ".join(f"{k}=..." for k in grid) or "name=..."
        raise ValueError(f"compare: {name} has a grid of shape {shape}; take one cell with "
                         f"{name}.cell({axes})")
    if diverged.shape != loss.shape:
        raise ValueError(f"compare: {name}.diverged has shape {list(diverged.shape)}, "
                         f"final_loss {list(loss.shape)}")
    return loss, diverged | ~np.isfinite(loss)


def _check_paired(out_a, out_b, n_a: int, n_b: int) -> None:
    if n_a != n_b:
        raise ValueError(f"compare: out_a has {n_a} seeds and out_b {n_b}; paired seeds need "
                         "the same seeds in both")
    unpaired = ("compare: the seeds of out_a and out_b are not paired: {why}. Runs from a "
                "different --seed / key, seed_range or vary cannot be paired, and an unpaired "
                "comparison is not offered")
    if out_a.keys is None or out_b.keys is None:
        raise ValueError(unpaired.format(why="a result has no keys to check"))
    if not np.array_equal(np.asarray(out_a.keys), np.asarray(out_b.keys)):
        raise ValueError(unpaired.format(why="their keys differ"))
    if tuple(out_a.vary) != tuple(out_b.vary):
        raise ValueError(unpaired.format(
            why=f"out_a varied {tuple(out_a.vary)} between seeds and out_b {tuple(out_b.vary)}"))


def compare(out_a, out_b, *, threshold: float, resamples: int = 10_000, seed: int | None = None,
            key: Any = None) -> Comparison:
    """Compares two sweeps seed by seed: success (McNemar exact) and final loss (paired bootstrap).

    Args:
      out_a, out_b: ``SweepResult``s without a grid (take one with ``out.cell(...)``) from the
        same key, seed count and ``vary``, so seed i is the same init and data in both.
      threshold: a seed succeeds when it did not diverge and its final loss is below it.
      resamples: bootstrap resamples for ``median_diff_ci``.
      seed, key: the bootstrap's randomness (see ``paired_bootstrap_median``; default seed 0).

    Returns:
      A ``Comparison``.

    Raises:
      ValueError: a result has a grid, or the seeds are not paired (different seed counts,
        keys or ``vary``).

    References:
      McNemar (1947); Wilson (1927); Efron & Tibshirani (1993); Picard (2021) and Bouthillier
      et al. (2021) on seeds as a source of variance.
    """
    threshold = require_finite_number("compare: threshold", threshold)
    loss_a, div_a = _check_one_cell("out_a", out_a)
    loss_b, div_b = _check_one_cell("out_b", out_b)
    _check_paired(out_a, out_b, loss_a.size, loss_b.size)
    n = loss_a.size
    ok_a = ~div_a & (np.where(div_a, np.inf, loss_a) < threshold)
    ok_b = ~div_b & (np.where(div_b, np.inf, loss_b) < threshold)
    both, only_a = int(np.sum(ok_a & ok_b)), int(np.sum(ok_a & ~ok_b))
    only_b, neither = int(np.sum(~ok_a & ok_b)), int(np.sum(~ok_a & ~ok_b))
    paired = ~div_a & ~div_b
    diff = loss_a[paired].astype(np.float64) - loss_b[paired].astype(np.float64)
    median, low, high = paired_bootstrap_median(diff, resamples=resamples, seed=seed, key=key)
    s_a, s_b = both + only_a, both + only_b
    return Comparison(
        n=n, threshold=threshold, successes_a=s_a, successes_b=s_b, rate_a=s_a / n,
        rate_b=s_b / n, interval_a=_wilson(s_a, n), interval_b=_wilson(s_b, n), both=both,
        only_a=only_a, only_b=only_b, neither=neither, mcnemar_p=mcnemar_exact(only_a, only_b),
        median_diff=median, median_diff_ci=(low, high), n_paired=int(paired.sum()),
        n_diverged_a=int(div_a.sum()), n_diverged_b=int(div_b.sum()), bootstrap=resamples)
