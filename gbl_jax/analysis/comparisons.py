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

from gbl_jax.analysis.seed_stats import two_sample
from gbl_jax.analysis.spreads import better_when_higher, metric_values, wilson_interval
from gbl_jax.checks import require_finite_number, require_int
from gbl_jax.engine.results import require_pandas
from gbl_jax.engine.runconfig import is_typed_key

_CHUNK_ELEMENTS = 1 << 22  # resampled values held at once by the bootstrap (32 MiB of float64)
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
        return np.random.default_rng(
            require_int("paired_bootstrap_median: seed", 0 if seed is None else seed, 0)
        )
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if is_typed_key(key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key, dtype=np.uint32).ravel().tolist())


def paired_bootstrap_median(
    diff, *, resamples: int = 10_000, seed: int | None = None, key: Any = None, level: float = 0.95
) -> tuple[float, float, float]:
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
        raise ValueError(
            f"paired_bootstrap_median: diff must be 1-D [seeds], got shape {list(diff_N.shape)}"
        )
    resamples = require_int("paired_bootstrap_median: resamples", resamples, 1)
    if resamples > MAX_RESAMPLES:
        raise ValueError(
            f"paired_bootstrap_median: resamples must be at most {MAX_RESAMPLES:,} "
            f"(10,000 is plenty for a 95% interval), got {resamples:,}"
        )
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
    if v is None or isinstance(v, (str, bool, np.bool_)):
        return bool(v) if isinstance(v, np.bool_) else v
    if isinstance(v, tuple):
        return [_clean(x) for x in v]
    if isinstance(v, (int, np.integer)):
        return int(v)
    return float(v) if np.isfinite(v) else None


class Comparison(NamedTuple):
    """What ``compare`` returns: how A's and B's per-seed values differ, and with a threshold,
    their success side by side, paired seed by seed.

    The distribution of the metric (always): its mean difference with a bootstrap interval and a
    test, the probability that A is better than B, and the spread ratio with an equal-spread
    test, over the non-diverged seeds (``seed_stats.two_sample``). Paired when the runs pair
    (same keys, seed count and ``vary``), unpaired otherwise; ``paired`` says which.

    With ``threshold`` (paired runs only): a seed succeeds when it did not diverge and its value
    is better than ``threshold``. A diverged seed is a failure here (rates are out of all ``n``
    seeds, unlike ``Spread.success_rate``, which leaves diverged seeds out), so the 2x2 table
    covers every seed. Without one these fields are None.

    Attributes:
      n, threshold: seeds of A; the success threshold (None without one).
      successes_a, successes_b, rate_a, rate_b: successes and their share of ``n``.
      interval_a, interval_b: Wilson 95% intervals (low, high) of the rates.
      both, only_a, only_b, neither: the paired 2x2 table (sums to ``n``).
      mcnemar_p: two-sided exact McNemar p-value from ``only_a`` and ``only_b``.
      median_diff, median_diff_ci: median over seeds of a - b (negative: A ends lower) and its
        paired percentile bootstrap 95% interval (low, high); over the ``n_paired`` seeds
        where neither run diverged (unpaired: None).
      n_diverged_a, n_diverged_b: diverged seeds of each.
      bootstrap: number of bootstrap resamples behind every interval.
      metric: the value compared ("final_loss", "test_accuracy", ...).
      paired: whether seed i of A was matched with seed i of B.
      n_b: seeds of B.
      mean_a, mean_b, mean_diff, mean_diff_ci: means over the non-diverged seeds and a - b with
        its bootstrap interval.
      test, test_p: "wilcoxon" (signed-rank, paired) or "mann-whitney" (unpaired), two-sided.
      prob_better, prob_better_ci: P(A better than B) (higher for an accuracy, lower for a
        loss; ties count one half), rliable's probability of improvement.
      std_a, std_b, spread_ratio, spread_ratio_ci, spread_p: the stds (ddof 0), std_a / std_b
        with its bootstrap interval, and the Brown-Forsythe test of equal spread.
    """

    n: int
    threshold: float | None
    successes_a: int | None
    successes_b: int | None
    rate_a: float | None
    rate_b: float | None
    interval_a: tuple | None
    interval_b: tuple | None
    both: int | None
    only_a: int | None
    only_b: int | None
    neither: int | None
    mcnemar_p: float | None
    median_diff: float | None
    median_diff_ci: tuple | None
    n_paired: int
    n_diverged_a: int
    n_diverged_b: int
    bootstrap: int
    metric: str = "final_loss"
    paired: bool = True
    n_b: int | None = None
    mean_a: float = math.nan
    mean_b: float = math.nan
    mean_diff: float = math.nan
    mean_diff_ci: tuple = (math.nan, math.nan)
    test: str = ""
    test_p: float = math.nan
    prob_better: float = math.nan
    prob_better_ci: tuple = (math.nan, math.nan)
    std_a: float = math.nan
    std_b: float = math.nan
    spread_ratio: float = math.nan
    spread_ratio_ci: tuple = (math.nan, math.nan)
    spread_p: float = math.nan

    @property
    def rate_diff(self) -> float | None:
        """rate_a - rate_b, which equals (only_a - only_b) / n (None without a threshold)."""
        return None if self.threshold is None else self.rate_a - self.rate_b

    def verdict(self, alpha: float = 0.05) -> str:
        """One line: which configuration succeeds more often if McNemar's test says so (with a
        threshold), else whether the values differ and whether their spreads do."""
        if self.threshold is not None:
            if self.mcnemar_p < alpha:
                better = "A" if self.only_a > self.only_b else "B"
                return f"{better} succeeds more often (McNemar exact p = {self.mcnemar_p:.3g})"
            return (
                f"no significant difference in success at {alpha:g} "
                f"(McNemar exact p = {self.mcnemar_p:.3g})"
            )
        name = "Wilcoxon signed-rank" if self.test == "wilcoxon" else "Mann-Whitney"
        if self.test_p < alpha:
            a_better = self.prob_better > 0.5
            level = (
                f"A is better than B in {self.metric}"
                if a_better
                else f"B is better than A in {self.metric}"
            )
        else:
            level = f"no significant difference in {self.metric} at {alpha:g}"
        spread = (
            ("A is more spread out" if self.spread_ratio > 1 else "B is more spread out")
            if self.spread_p < alpha
            else "no significant difference in spread"
        )
        return (
            f"{level} ({name} p = {self.test_p:.3g}); {spread} (Brown-Forsythe p = "
            f"{self.spread_p:.3g})"
        )

    def as_dict(self) -> dict:
        """The fields and ``rate_diff``, for JSON (intervals as [low, high], NaN as None)."""
        out = {k: _clean(v) for k, v in self._asdict().items()}
        out["rate_diff"] = _clean(self.rate_diff)
        return out

    def summary(self, alpha: float = 0.05) -> str:
        """A short plain-text table: the metric's difference and spreads, with a threshold the
        success table, and the verdict."""

        def ci(pair, fmt=".4g"):
            return f"[{pair[0]:{fmt}}, {pair[1]:{fmt}}]"

        seeds = (
            f"{self.n} paired seeds" if self.paired else f"{self.n} and {self.n_b} unpaired seeds"
        )
        lines = [
            f"{self.metric}, A vs B, {seeds} ({self.n_diverged_a} and {self.n_diverged_b} "
            f"diverged, left out)",
            f"  mean A {self.mean_a:.4g}, B {self.mean_b:.4g}; A - B {self.mean_diff:.4g} "
            f"95% CI {ci(self.mean_diff_ci)}; {self.test} p = {self.test_p:.3g}",
            f"  P(A better than B) {self.prob_better:.3f} 95% CI {ci(self.prob_better_ci, '.3f')}",
            f"  std A {self.std_a:.4g}, B {self.std_b:.4g}; ratio A / B {self.spread_ratio:.3g} "
            f"95% CI {ci(self.spread_ratio_ci, '.3g')}; Brown-Forsythe p = {self.spread_p:.3g}",
        ]
        if self.threshold is not None:

            def rate(r, interval):
                return f"{r:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"

            lo, hi = self.median_diff_ci
            relation = ">" if better_when_higher(self.metric) else "<"
            name = "loss" if self.metric == "final_loss" else self.metric
            lines += [
                f"success: {self.metric} {relation} {self.threshold:g}",
                f"{'':>20}  {'A':>22}  {'B':>22}",
                f"{'successes':>20}  {self.successes_a:>22}  {self.successes_b:>22}",
                f"{'rate [95% CI]':>20}  {rate(self.rate_a, self.interval_a):>22}  "
                f"{rate(self.rate_b, self.interval_b):>22}",
                f"{'diverged':>20}  {self.n_diverged_a:>22}  {self.n_diverged_b:>22}",
                "paired seeds:        B succeeds  B fails",
                f"  A succeeds         {self.both:>10}  {self.only_a:>7}",
                f"  A fails            {self.only_b:>10}  {self.neither:>7}",
                f"McNemar exact p = {self.mcnemar_p:.3g}",
                f"median {name} A - B = {self.median_diff:.4g}, 95% CI [{lo:.4g}, {hi:.4g}] "
                f"({self.n_paired} seeds, {self.bootstrap} resamples)",
            ]
        lines.append(self.verdict(alpha))
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


def _check_one_cell(name: str, out, metric: str) -> tuple[np.ndarray, np.ndarray]:
    loss, diverged = metric_values(out, metric), np.asarray(out.diverged, dtype=bool)
    grid = dict(getattr(out, "grid", None) or {})
    if grid or loss.ndim != 1:
        shape = [len(v) for v in grid.values()] or list(loss.shape[:-1])
        axes = ", ".join(f"{k}=..." for k in grid) or "name=..."
        raise ValueError(
            f"compare: {name} has a grid of shape {shape}; take one cell with {name}.cell({axes})"
        )
    if diverged.shape != loss.shape:
        raise ValueError(
            f"compare: {name}.diverged has shape {list(diverged.shape)}, "
            f"{metric} {list(loss.shape)}"
        )
    return loss, diverged | ~np.isfinite(loss)


def _why_unpaired(out_a, out_b, n_a: int, n_b: int) -> str | None:
    """Why seed i of A and seed i of B are not the same init and data, or None if they are."""
    if n_a != n_b:
        return f"out_a has {n_a} seeds and out_b {n_b}"
    if getattr(out_a, "keys", None) is None or getattr(out_b, "keys", None) is None:
        return "a result has no keys to check"
    if not np.array_equal(np.asarray(out_a.keys), np.asarray(out_b.keys)):
        return "their keys differ"
    if tuple(out_a.vary) != tuple(out_b.vary):
        return f"out_a varied {tuple(out_a.vary)} between seeds and out_b {tuple(out_b.vary)}"
    return None


def pairs(out_a, out_b) -> bool:
    """Whether seed i of ``out_a`` and of ``out_b`` are the same init and data (``compare``
    pairs them): the same seed count, keys and ``vary``."""
    return _why_unpaired(out_a, out_b, np.size(out_a.final_loss), np.size(out_b.final_loss)) is None


def compare(
    out_a,
    out_b,
    *,
    metric: str = "final_loss",
    threshold: float | None = None,
    paired: bool | None = None,
    resamples: int = 10_000,
    seed: int | None = None,
    key: Any = None,
) -> Comparison:
    """Compares two sweeps' per-seed values: mean, who is better, spread; with ``threshold``,
    success seed by seed (McNemar exact) too.

    Args:
      out_a, out_b: ``SweepResult``s without a grid (take one with ``out.cell(...)``).
      metric: the value compared: "final_loss" (default) or any final metric of both results
        ("test_accuracy", "accuracy", ...; ``gbl.spread``'s names).
      threshold: a seed succeeds when it did not diverge and its value is better than it (below
        for a loss, above for an accuracy); needs paired runs.
      paired: None (default) pairs seed i with seed i when the runs pair (same key, seed count
        and ``vary``: the same init and data); True requires that; False compares the two sets
        of seeds as independent samples.
      resamples: bootstrap resamples for every interval (at least 100).
      seed, key: the bootstrap's randomness (see ``paired_bootstrap_median``; default seed 0).

    Returns:
      A ``Comparison``.

    Raises:
      ValueError: a result has a grid or lacks the metric, fewer than 2 non-diverged seeds on a
        side, or ``paired=True`` / ``threshold`` with runs that do not pair.

    References:
      McNemar (1947); Wilson (1927); Efron & Tibshirani (1993); Agarwal et al. (2021, rliable)
      on the probability of improvement; Brown & Forsythe (1974); Picard (2021) and Bouthillier
      et al. (2021) on seeds as a source of variance.
    """
    if not isinstance(metric, str):
        raise ValueError(f"compare: metric must be a name, got {metric!r}")
    if threshold is not None:
        threshold = require_finite_number("compare: threshold", threshold)
    if paired not in (None, True, False):
        raise ValueError(f"compare: paired must be None, True or False, got {paired!r}")
    resamples = require_int("compare: resamples", resamples, 100)
    if resamples > MAX_RESAMPLES:
        raise ValueError(f"compare: resamples must be at most {MAX_RESAMPLES:,}, got {resamples:,}")
    value_a, div_a = _check_one_cell("out_a", out_a, metric)
    value_b, div_b = _check_one_cell("out_b", out_b, metric)
    why = _why_unpaired(out_a, out_b, value_a.size, value_b.size)
    if why is not None and (paired or threshold is not None):
        raise ValueError(
            f"compare: the seeds of out_a and out_b are not paired: {why}. Runs from "
            "a different --seed / key, seed_range or vary cannot be paired"
            + (
                ": a success table (threshold) needs pairs; drop the threshold for "
                "an unpaired comparison"
                if threshold is not None
                else ""
            )
        )
    is_paired = why is None and paired is not False
    rng_seed = int(_rng(seed, key).integers(0, 2**31))
    higher = better_when_higher(metric)
    both_ok = ~div_a & ~div_b if is_paired else None
    sample_a = value_a[both_ok] if is_paired else value_a[~div_a]
    sample_b = value_b[both_ok] if is_paired else value_b[~div_b]
    stats = two_sample(
        sample_a,
        sample_b,
        paired=is_paired,
        higher_is_better=higher,
        resamples=resamples,
        seed=rng_seed,
    )
    common = dict(
        n=value_a.size,
        n_b=value_b.size,
        n_diverged_a=int(div_a.sum()),
        n_diverged_b=int(div_b.sum()),
        bootstrap=resamples,
        metric=metric,
        paired=is_paired,
        n_paired=int(both_ok.sum()) if is_paired else 0,
        **stats,
    )
    if threshold is None:
        return Comparison(
            threshold=None,
            successes_a=None,
            successes_b=None,
            rate_a=None,
            rate_b=None,
            interval_a=None,
            interval_b=None,
            both=None,
            only_a=None,
            only_b=None,
            neither=None,
            mcnemar_p=None,
            median_diff=None,
            median_diff_ci=None,
            **common,
        )
    n = value_a.size
    sign = -1.0 if higher else 1.0
    ok_a = ~div_a & (np.where(div_a, np.inf, sign * value_a) < sign * threshold)
    ok_b = ~div_b & (np.where(div_b, np.inf, sign * value_b) < sign * threshold)
    both, only_a = int(np.sum(ok_a & ok_b)), int(np.sum(ok_a & ~ok_b))
    only_b, neither = int(np.sum(~ok_a & ok_b)), int(np.sum(~ok_a & ~ok_b))
    diff = sample_a.astype(np.float64) - sample_b.astype(np.float64)
    median, low, high = paired_bootstrap_median(diff, resamples=resamples, seed=seed, key=key)
    s_a, s_b = both + only_a, both + only_b
    return Comparison(
        threshold=threshold,
        successes_a=s_a,
        successes_b=s_b,
        rate_a=s_a / n,
        rate_b=s_b / n,
        interval_a=_wilson(s_a, n),
        interval_b=_wilson(s_b, n),
        both=both,
        only_a=only_a,
        only_b=only_b,
        neither=neither,
        mcnemar_p=mcnemar_exact(only_a, only_b),
        median_diff=median,
        median_diff_ci=(low, high),
        **common,
    )
