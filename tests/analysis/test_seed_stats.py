"""seed_stats: the IQM against scipy, bootstrap intervals, exact expected best / worst of n."""

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from gbl_jax.analysis import seed_stats

RNG = np.random.default_rng(0)
VALUES = RNG.gamma(2.0, size=37)


@pytest.mark.parametrize("n", [1, 3, 4, 7, 37, 100])
def test_iqm_is_scipys_quarter_trimmed_mean(n):
    v = RNG.normal(size=n)
    assert seed_stats.iqm(v) == pytest.approx(scipy.stats.trim_mean(v, 0.25), rel=1e-12)


def test_every_named_statistic_matches_numpy():
    v = VALUES
    expected = {
        "mean": v.mean(),
        "std": v.std(),
        "min": v.min(),
        "max": v.max(),
        "median": np.median(v),
        "q10": np.quantile(v, 0.1),
        "q90": np.quantile(v, 0.9),
        "iqr": np.quantile(v, 0.75) - np.quantile(v, 0.25),
        "iqm": scipy.stats.trim_mean(v, 0.25),
    }
    for name, value in expected.items():
        assert seed_stats.statistic(name)(v[None], 1)[0] == pytest.approx(value, rel=1e-12)
    with pytest.raises(ValueError, match="statistic must be one of mean, std"):
        seed_stats.statistic("mode")


def test_bootstrap_interval_agrees_with_scipy_and_is_reproducible():
    for stat, fn in (("mean", np.mean), ("std", np.std), ("median", np.median)):
        ours = seed_stats.bootstrap_interval(VALUES, stat, resamples=20_000, seed=1)
        theirs = scipy.stats.bootstrap(
            (VALUES,), fn, n_resamples=20_000, method="percentile", random_state=2
        ).confidence_interval
        scale = VALUES.std() / np.sqrt(VALUES.size)
        assert ours[0] == pytest.approx(theirs.low, abs=0.1 * scale)
        assert ours[1] == pytest.approx(theirs.high, abs=0.1 * scale)
        assert ours == seed_stats.bootstrap_interval(VALUES, stat, resamples=20_000, seed=1)
        assert ours[0] < fn(VALUES) < ours[1]
    # the mean's interval narrows as 1 / sqrt(n)
    wide = np.subtract(*seed_stats.bootstrap_interval(VALUES[:9])[::-1])
    big = RNG.gamma(2.0, size=900)
    narrow = np.subtract(*seed_stats.bootstrap_interval(big)[::-1])
    assert 5 < wide / narrow < 20
    assert seed_stats.bootstrap_interval([2.5]) == (2.5, 2.5)
    assert all(np.isnan(seed_stats.bootstrap_interval([])))


def test_bootstrap_refuses_bad_settings():
    for kwargs, words in (
        ({"level": 1.0}, "level must lie in"),
        ({"resamples": 10}, ">= 100"),
        ({"seed": -1}, "seed must be an integer >= 0"),
    ):
        with pytest.raises(ValueError, match=words):
            seed_stats.bootstrap_interval(VALUES, **kwargs)


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_expected_extremes_are_the_exact_averages_over_draws(n):
    v = np.array([0.3, 0.1, 0.9, 0.4, 0.4, 2.0])
    subsets = list(itertools.combinations(v, n))
    assert seed_stats.expected_extreme(v, n, largest=True) == pytest.approx(
        np.mean([max(c) for c in subsets]), rel=1e-12
    )
    assert seed_stats.expected_extreme(v, n, largest=False) == pytest.approx(
        np.mean([min(c) for c in subsets]), rel=1e-12
    )
    draws = list(itertools.product(v, repeat=n))
    assert seed_stats.expected_extreme(v, n, largest=True, replace=True) == pytest.approx(
        np.mean([max(c) for c in draws]), rel=1e-12
    )
    assert seed_stats.expected_extreme(v, n, largest=False, replace=True) == pytest.approx(
        np.mean([min(c) for c in draws]), rel=1e-12
    )


def test_expected_extremes_of_many_seeds_and_their_limits():
    v = RNG.normal(size=1000)
    assert seed_stats.expected_extreme(v, 1, largest=True) == pytest.approx(v.mean())
    assert seed_stats.expected_extreme(v, 1000, largest=False) == pytest.approx(v.min())
    best = [seed_stats.expected_extreme(v, n, largest=True) for n in (1, 2, 10, 100)]
    assert np.all(np.diff(best) > 0)
    # E[max of 2 normals] = 1 / sqrt(pi)
    assert best[1] == pytest.approx(v.mean() + v.std() / np.sqrt(np.pi), abs=0.06)
    with pytest.raises(ValueError, match=r"n = 1001 seeds cannot be drawn without replacement"):
        seed_stats.expected_extreme(v, 1001, largest=True)
    assert seed_stats.expected_extreme(v, 1001, largest=True, replace=True) < v.max()
    assert np.isnan(seed_stats.expected_extreme([], 3, largest=True))


def _brute_prob_greater(a, b):
    return np.mean([(x > y) + 0.5 * (x == y) for x in a for y in b])


def test_two_unpaired_samples_against_scipy_and_brute_force():
    a = np.round(RNG.normal(0.3, 1.0, 40), 1)  # rounded: ties on purpose
    b = np.round(RNG.normal(0.0, 2.0, 30), 1)
    out = seed_stats.two_sample(a, b, paired=False, higher_is_better=True, resamples=4000)
    assert out["test"] == "mann-whitney"
    assert out["test_p"] == pytest.approx(scipy.stats.mannwhitneyu(a, b).pvalue, rel=1e-12)
    u = scipy.stats.mannwhitneyu(a, b).statistic
    assert out["prob_better"] == pytest.approx(u / (a.size * b.size), rel=1e-12)
    assert out["prob_better"] == pytest.approx(_brute_prob_greater(a, b), rel=1e-12)
    assert out["spread_p"] == pytest.approx(
        scipy.stats.levene(a, b, center="median").pvalue, rel=1e-12
    )
    assert out["mean_diff"] == pytest.approx(a.mean() - b.mean())
    assert out["spread_ratio"] == pytest.approx(a.std() / b.std())
    for name in ("mean_diff", "prob_better", "spread_ratio"):
        low, high = out[f"{name}_ci"]
        assert low < out[name] < high
    # the unpaired bootstrap of the mean difference is the two-sample one, as scipy's
    theirs = scipy.stats.bootstrap(
        (a, b),
        lambda x, y, axis: x.mean(axis) - y.mean(axis),
        n_resamples=4000,
        method="percentile",
        random_state=1,
    )
    se = np.sqrt(a.var() / a.size + b.var() / b.size)
    assert out["mean_diff_ci"][0] == pytest.approx(theirs.confidence_interval.low, abs=0.1 * se)
    assert out["mean_diff_ci"][1] == pytest.approx(theirs.confidence_interval.high, abs=0.1 * se)
    # a loss: better is lower, so the probability flips
    loss = seed_stats.two_sample(a, b, paired=False, higher_is_better=False, resamples=100)
    assert loss["prob_better"] == pytest.approx(_brute_prob_greater(b, a), rel=1e-12)


def test_two_paired_samples_against_scipy():
    b = RNG.normal(size=50)
    a = b + RNG.normal(0.2, 0.3, 50)
    a[:3] = b[:3]  # three ties: half a win each
    out = seed_stats.two_sample(a, b, paired=True, higher_is_better=True, resamples=2000)
    assert out["test"] == "wilcoxon"
    assert out["test_p"] == pytest.approx(scipy.stats.wilcoxon(a - b).pvalue, rel=1e-12)
    d = a - b
    assert out["prob_better"] == pytest.approx(np.mean(d > 0) + 0.5 * np.mean(d == 0))
    low, high = out["mean_diff_ci"]
    assert low < d.mean() < high and high - low < 4 * 0.3 / np.sqrt(50) * 1.96
    same = seed_stats.two_sample(b, b, paired=True, higher_is_better=True, resamples=100)
    assert same["test_p"] == 1.0 and same["prob_better"] == 0.5
    with pytest.raises(ValueError, match="paired values need equal sizes, got 50 and 49"):
        seed_stats.two_sample(a, b[:49], paired=True, higher_is_better=True)
    one = seed_stats.two_sample(a[:1], b, paired=False, higher_is_better=True)
    assert one["mean_a"] == a[0] and np.isnan(one["test_p"]) and np.isnan(one["spread_ratio"])


def test_the_binomial_prediction_of_test_accuracy_std():
    # independent coin flips per example: the measured std over many seeds is the prediction
    p_N = RNG.uniform(0.5, 1.0, 400)
    correct = RNG.random((20_000, 400)) < p_N
    measured = correct.mean(axis=1).std()
    assert seed_stats.binomial_accuracy_std(correct) == pytest.approx(measured, rel=0.03)
    # by hand on a tiny table: p = (1, 0.5, 0) -> sqrt(0.25) / 3
    tiny = np.array([[1, 1, 0], [1, 0, 0]])
    assert seed_stats.binomial_accuracy_std(tiny) == pytest.approx(0.5 / 3)
    with pytest.raises(ValueError, match=r"\[seeds, examples\], got shape \[3\]"):
        seed_stats.binomial_accuracy_std(np.ones(3))
    with pytest.raises(ValueError, match="0 or 1"):
        seed_stats.binomial_accuracy_std(np.full((2, 2), 0.5))


def test_seeds_for_an_interval_of_a_given_width():
    # z = 1.96, std 0.01, +-0.001: (19.6)^2 = 384.2 -> 385
    assert seed_stats.seeds_for_interval(0.01, 0.001) == 385
    assert seed_stats.seeds_for_interval(0.0, 0.001) == 1
    assert seed_stats.seeds_for_interval(0.01, 0.001, level=0.99) == math.ceil(
        (scipy.stats.norm.ppf(0.995) * 10) ** 2
    )
    with pytest.raises(ValueError, match="half_width must be a positive finite number"):
        seed_stats.seeds_for_interval(0.01, 0.0)
