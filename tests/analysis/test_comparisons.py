"""compare: McNemar against scipy and by hand, the paired table, the bootstrap, refusals."""

import functools
import importlib
import json
import math
import sys
from fractions import Fraction
from types import SimpleNamespace

import jax
import numpy as np
import optax
import pytest
from scipy import stats

import gbl_jax as gbl
from gbl_jax import Comparison, compare, wilson_interval
from gbl_jax.analysis.comparisons import mcnemar_exact, paired_bootstrap_median

compare_module = importlib.import_module("gbl_jax.analysis.comparisons")
KEYS = np.arange(10 * 3 * 2, dtype=np.uint32).reshape(10, 3, 2)


def fake(final_loss, diverged=None, *, keys=KEYS, vary=("init", "data"), grid=None):
    """A SweepResult-like record with only the fields compare reads."""
    final_loss = np.asarray(final_loss, dtype=np.float32)
    diverged = np.zeros(final_loss.shape, bool) if diverged is None else np.asarray(diverged)
    return SimpleNamespace(
        final_loss=final_loss, diverged=diverged, keys=keys, vary=vary, grid=grid or {}
    )


# Seeds 0-2 both succeed, 3-6 only A (B's seed 6 diverged with a low loss: still a failure),
# 7 only B, 8-9 neither (A's seed 9 diverged). Threshold 0.5.
LOSS_A = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.8, 0.7, np.nan]
DIV_A = [False] * 9 + [True]
LOSS_B = [0.2, 0.2, 0.2, 0.9, 0.9, 0.9, 0.1, 0.3, 0.6, 0.6]
DIV_B = [False] * 6 + [True] + [False] * 3


@pytest.fixture
def hand():
    return compare(fake(LOSS_A, DIV_A), fake(LOSS_B, DIV_B), threshold=0.5)


def hand_mcnemar(b, c):
    """2 P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), in exact rationals."""
    n = b + c
    tail = Fraction(sum(math.comb(n, k) for k in range(min(b, c) + 1)), 2**n)
    return float(min(Fraction(1), 2 * tail))


@pytest.mark.parametrize(
    "b, c",
    [
        (0, 0),
        (0, 5),
        (5, 0),
        (7, 7),
        (3, 20),
        (20, 3),
        (1, 2),
        (0, 1),
        (10, 11),
        (40, 70),
        (100, 200),
    ],
)
def test_mcnemar_matches_scipy_binomtest_and_exact_rationals(b, c):
    p = mcnemar_exact(b, c)
    expected = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5).pvalue
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    np.testing.assert_allclose(p, hand_mcnemar(b, c), rtol=1e-12)
    assert p == mcnemar_exact(c, b)


def test_mcnemar_known_values_and_large_counts():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32, rel=1e-14)
    assert mcnemar_exact(7, 7) == 1.0
    # a million discordant pairs: no overflow, still scipy's value
    p = mcnemar_exact(499_000, 501_000)
    assert 0 < p < 1
    np.testing.assert_allclose(p, stats.binomtest(499_000, 1_000_000).pvalue, rtol=1e-8)
    assert mcnemar_exact(480_000, 520_000) == 0.0  # below the smallest double, as scipy's
    with pytest.raises(ValueError, match="b must be an integer >= 0"):
        mcnemar_exact(-1, 3)


def test_hand_built_table_counts_and_rates(hand):
    assert isinstance(hand, Comparison)
    assert (hand.n, hand.threshold) == (10, 0.5)
    assert (hand.both, hand.only_a, hand.only_b, hand.neither) == (3, 4, 1, 2)
    assert (hand.successes_a, hand.successes_b) == (7, 4)
    assert (hand.rate_a, hand.rate_b) == (0.7, 0.4)
    assert hand.rate_diff == pytest.approx(0.3)
    assert (hand.n_diverged_a, hand.n_diverged_b, hand.n_paired) == (1, 1, 8)
    # b = 4, c = 1: 2 (C(5,0) + C(5,1)) / 2^5 = 12 / 32
    assert hand.mcnemar_p == pytest.approx(12 / 32, rel=1e-14)
    # differences over seeds 0-5, 7, 8: three -0.1, three -0.8, 0.5, 0.1
    assert hand.median_diff == pytest.approx(-0.1, abs=1e-6)
    low, high = hand.median_diff_ci
    assert low <= hand.median_diff <= high
    assert hand.bootstrap == 10_000


def test_wilson_intervals_are_spreads_wilson_interval(hand):
    assert hand.interval_a == wilson_interval(7, 10)
    assert hand.interval_b == wilson_interval(4, 10)
    ci = stats.binomtest(7, 10).proportion_ci(method="wilson")
    np.testing.assert_allclose(hand.interval_a, (ci.low, ci.high), rtol=1e-9)


def test_a_diverged_seed_is_a_failure_and_leaves_the_loss_difference():
    # B's seed 0 is flagged diverged with a finite loss below the threshold
    a, b = fake([0.1, 0.1, 0.9]), fake([0.05, 0.3, 0.7], [True, False, False])
    c = compare(a, b, threshold=0.5)
    assert (c.both, c.only_a, c.only_b, c.neither) == (1, 1, 0, 1)
    assert (c.n_diverged_a, c.n_diverged_b, c.n_paired) == (0, 1, 2)
    assert c.median_diff == pytest.approx(np.median([0.1 - 0.3, 0.9 - 0.7]), abs=1e-6)
    # a non-finite loss counts as diverged even without the flag
    c = compare(fake([np.nan, 0.1, 0.1]), fake([0.1, 0.1, 0.1]), threshold=0.5)
    assert (c.n_diverged_a, c.only_b, c.n_paired) == (1, 1, 2)
    # one paired seed: a median but no interval; none: neither
    one = compare(fake([np.nan, 0.1, np.nan]), fake([0.2, 0.3, 0.1]), threshold=0.5)
    assert one.median_diff == pytest.approx(-0.2) and np.isnan(one.median_diff_ci).all()
    none = compare(fake([np.nan] * 3, [True] * 3), fake([0.2, 0.3, 0.1]), threshold=0.5)
    assert none.n_paired == 0 and np.isnan(none.median_diff)
    assert (none.neither, none.only_b) == (0, 3) and none.mcnemar_p == pytest.approx(0.25)


def slow_bootstrap(diff, resamples, seed, level=0.95):
    """One resample at a time, the same draws, medians and quantiles written out by hand."""
    rng = np.random.default_rng(seed)
    n = len(diff)
    medians = []
    for _ in range(resamples):
        u = rng.random(n)
        sample = sorted(diff[int(math.floor(x * n))] for x in u)
        mid = n // 2
        medians.append(sample[mid] if n % 2 else (sample[mid - 1] + sample[mid]) / 2)
    medians.sort()

    def quantile(q):  # numpy's default (linear) rule
        h = (resamples - 1) * q
        lo = int(math.floor(h))
        return medians[lo] + (h - lo) * (medians[min(lo + 1, resamples - 1)] - medians[lo])

    return quantile((1 - level) / 2), quantile((1 + level) / 2)


@pytest.mark.parametrize("n", [7, 12])
def test_bootstrap_equals_a_slow_loop(n, monkeypatch):
    diff = np.random.default_rng(1).normal(size=n)
    _, low, high = paired_bootstrap_median(diff, resamples=500, seed=3)
    np.testing.assert_allclose((low, high), slow_bootstrap(list(diff), 500, 3), rtol=1e-12)
    # chunk boundaries do not change the draws
    monkeypatch.setattr(compare_module, "_CHUNK_ELEMENTS", 3 * n + 1)
    assert paired_bootstrap_median(diff, resamples=500, seed=3)[1:] == (low, high)


def test_bootstrap_refuses_more_resamples_than_it_could_hold():
    # np.empty(10**12) float64 would be 8 TB; refused before anything is allocated
    with pytest.raises(ValueError, match="at most 10,000,000.*got 1,000,000,000,000"):
        paired_bootstrap_median(np.arange(5.0), resamples=10**12)


def test_bootstrap_covers_a_large_shift_and_is_reproducible():
    diff = np.random.default_rng(0).normal(-1.0, 0.5, size=300)
    median, low, high = paired_bootstrap_median(diff)
    assert median == np.median(diff)
    assert low < median < high and low < -1.0 < high and high < 0 and high - low < 0.3
    assert paired_bootstrap_median(diff) == paired_bootstrap_median(diff, seed=0)
    # the interval's ends are order statistics of the medians: few resamples tell seeds apart
    few = functools.partial(paired_bootstrap_median, diff, resamples=200)
    assert few(seed=1) != few(seed=0)
    key = jax.random.PRNGKey(5)
    assert few(key=key) == few(key=key) and few(key=key) != few(key=jax.random.PRNGKey(6))
    assert few(key=jax.random.key(5)) == few(key=key)
    with pytest.raises(ValueError, match="seed or key, not both"):
        paired_bootstrap_median(diff, seed=1, key=key)
    with pytest.raises(ValueError, match="1-D"):
        paired_bootstrap_median(diff.reshape(30, 10))


def test_compare_passes_the_bootstrap_seed_through():
    a, b = fake(np.linspace(0.1, 1.0, 10)), fake(np.linspace(0.2, 0.6, 10) ** 2)
    base = compare(a, b, threshold=0.5, resamples=200)
    assert compare(a, b, threshold=0.5, resamples=200, seed=0) == base
    other = compare(a, b, threshold=0.5, resamples=200, seed=9)
    assert other.median_diff == base.median_diff and other.median_diff_ci != base.median_diff_ci
    assert other.bootstrap == 200


def test_refuses_a_grid():
    grid = {"learning_rate": [0.1, 0.2, 0.3], "init_scale": [1.0, 2.0]}
    gridded = fake(np.zeros((3, 2, 10)), grid=grid)
    with pytest.raises(
        ValueError,
        match=r"out_a has a grid of shape \[3, 2\]; take one cell "
        r"with out_a\.cell\(learning_rate=\.\.\., init_scale",
    ):
        compare(gridded, fake(np.zeros(10)), threshold=0.5)
    with pytest.raises(ValueError, match=r"out_b has a grid of shape \[3, 2\].*out_b\.cell\("):
        compare(fake(np.zeros(10)), gridded, threshold=0.5)


def test_a_success_table_refuses_unpaired_seeds():
    a = fake(np.zeros(10))
    with pytest.raises(ValueError, match="out_a has 10 seeds and out_b 4"):
        compare(a, fake(np.zeros(4), keys=KEYS[:4]), threshold=0.5)
    with pytest.raises(ValueError, match="not paired: their keys differ.*drop the threshold"):
        compare(a, fake(np.zeros(10), keys=KEYS + 1), threshold=0.5)
    with pytest.raises(ValueError, match="not paired: their keys differ"):
        compare(a, fake(np.zeros(10), keys=KEYS + 1), paired=True)
    with pytest.raises(
        ValueError,
        match=r"not paired: out_a varied \('init', 'data'\).*"
        r"\('init',\).*cannot be paired",
    ):
        compare(a, fake(np.zeros(10), vary=("init",)), threshold=0.5)
    with pytest.raises(ValueError, match="not paired: a result has no keys"):
        compare(a, fake(np.zeros(10), keys=None), threshold=0.5)
    with pytest.raises(ValueError, match="threshold must be a finite"):
        compare(a, a, threshold=float("nan"))


def test_as_dict_is_json_and_summary_says_the_verdict(hand):
    d = hand.as_dict()
    assert set(d) == set(Comparison._fields) | {"rate_diff"}
    assert d["interval_a"] == list(wilson_interval(7, 10)) and d["only_a"] == 4
    json.dumps(d, allow_nan=False)
    one = compare(fake([np.nan, 0.1, np.nan]), fake([0.2, 0.3, 0.1]), threshold=0.5)
    assert one.as_dict()["median_diff_ci"] == [None, None]
    json.dumps(one.as_dict(), allow_nan=False)

    text = hand.summary()
    assert "no significant difference in success at 0.05 (McNemar exact p = 0.375)" in text
    assert "0.700 [" in text and "0.400 [" in text and "median loss A - B = -0.1" in text
    better_a = compare(fake([0.1] * 10), fake([0.9] * 10), threshold=0.5)
    assert better_a.verdict() == "A succeeds more often (McNemar exact p = 0.00195)"
    better_b = compare(fake([0.9] * 10), fake([0.1] * 10), threshold=0.5)
    assert better_b.summary().endswith("B succeeds more often (McNemar exact p = 0.00195)")


def test_to_frame_is_one_row_and_names_pandas_when_missing(hand, monkeypatch):
    pytest.importorskip("pandas")
    frame = hand.to_frame()
    assert len(frame) == 1
    assert frame.loc[0, "only_a"] == 4 and frame.loc[0, "rate_diff"] == pytest.approx(0.3)
    row = frame.loc[0]
    assert (row["interval_a_low"], row["interval_a_high"]) == wilson_interval(7, 10)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        hand.to_frame()


DATA = gbl.problems.xor()
MODEL = gbl.mlp([2], gbl.heads.bernoulli())
KEY = jax.random.PRNGKey(0)


@pytest.fixture(scope="module")
def xor_sweeps():
    def run(lr, key=KEY):
        return gbl.sweep(MODEL, optax.adam(lr), DATA, key=key, seeds=64, steps=300)

    return run(0.05), run(0.01), run(0.05, jax.random.PRNGKey(1))


def test_compare_real_sweeps(xor_sweeps):
    fast, slow, _ = xor_sweeps
    c = compare(fast, slow, threshold=0.1)
    assert c.both + c.only_a + c.only_b + c.neither == c.n == 64
    assert c.successes_a == gbl.spread(fast).successes(0.1)
    assert c.successes_b == gbl.spread(slow).successes(0.1)
    assert c.n_paired == 64 - int(np.sum(fast.diverged | slow.diverged))
    np.testing.assert_allclose(
        c.median_diff, np.median(fast.final_loss - slow.final_loss), rtol=1e-6
    )
    itself = compare(fast, fast, threshold=0.1)
    assert (itself.only_a, itself.only_b, itself.mcnemar_p) == (0, 0, 1.0)
    assert itself.median_diff == 0.0 and itself.median_diff_ci == (0.0, 0.0)


def test_real_sweeps_from_different_keys_are_refused(xor_sweeps):
    fast, _, other_key = xor_sweeps
    with pytest.raises(ValueError, match="not paired: their keys differ"):
        compare(fast, other_key, threshold=0.1)


def test_cells_of_one_grid_sweep_are_paired():
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.05)
    out = gbl.sweep(
        MODEL, opt, DATA, key=KEY, seeds=16, steps=100, grid={"learning_rate": [0.05, 0.01]}
    )
    with pytest.raises(
        ValueError,
        match=r"out_a has a grid of shape \[2\]; take one cell with "
        r"out_a\.cell\(learning_rate=\.\.\.\)",
    ):
        compare(out, out.cell(learning_rate=0.01), threshold=0.3)
    c = compare(out.cell(learning_rate=0.05), out.cell(learning_rate=0.01), threshold=0.3)
    assert c.n == 16 and c.both + c.only_a + c.only_b + c.neither == 16
    assert c.successes_a == gbl.spread(out).successes(0.3)[0]


def test_the_distribution_of_any_metric_paired_and_unpaired():
    rng = np.random.default_rng(5)
    acc_a, acc_b = rng.uniform(0.7, 0.9, 10), rng.uniform(0.6, 1.0, 10)

    def with_acc(acc, **kw):
        out = fake(np.ones(10), **kw)
        out.final_metrics = {"test_accuracy": acc}
        return out

    c = compare(with_acc(acc_a), with_acc(acc_b), metric="test_accuracy", resamples=500)
    assert c.paired and c.test == "wilcoxon" and c.threshold is None and c.mcnemar_p is None
    assert c.test_p == pytest.approx(stats.wilcoxon(acc_a - acc_b).pvalue)
    assert c.prob_better == pytest.approx(np.mean(acc_a > acc_b))  # higher is better
    assert c.spread_ratio == pytest.approx(acc_a.std() / acc_b.std())
    assert c.spread_p == pytest.approx(stats.levene(acc_a, acc_b, center="median").pvalue)
    summary = c.summary()
    assert summary.startswith("test_accuracy, A vs B, 10 paired seeds") and "McNemar" not in summary
    json.dumps(c.as_dict())
    # other keys: the same values as independent samples
    u = compare(
        with_acc(acc_a), with_acc(acc_b, keys=KEYS + 1), metric="test_accuracy", resamples=500
    )
    assert not u.paired and u.test == "mann-whitney" and u.n_paired == 0
    assert u.test_p == pytest.approx(stats.mannwhitneyu(acc_a, acc_b).pvalue)
    assert "10 and 10 unpaired seeds" in u.summary()
    forced = compare(
        with_acc(acc_a), with_acc(acc_b), metric="test_accuracy", paired=False, resamples=500
    )
    assert forced.test_p == u.test_p
    # a threshold on an accuracy: success is above it
    t = compare(
        with_acc(acc_a), with_acc(acc_b), metric="test_accuracy", threshold=0.8, resamples=500
    )
    assert t.successes_a == int(np.sum(acc_a > 0.8)) and "test_accuracy > 0.8" in t.summary()
    with pytest.raises(ValueError, match=r"no metric 'test_nll'"):
        compare(with_acc(acc_a), with_acc(acc_b), metric="test_nll")
    with pytest.raises(ValueError, match=r"resamples must be at most 10,000,000"):
        compare(with_acc(acc_a), with_acc(acc_b), resamples=10**12)
