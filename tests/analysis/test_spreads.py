"""spread: statistics against numpy, divergence accounting, success rate."""

import itertools

import numpy as np
import pytest
import scipy.stats

import gbl_jax as gbl


def test_spread_matches_numpy_over_the_finite_losses():
    losses = np.array([0.5, 0.1, np.nan, 0.3, np.inf, 0.9, 0.2])
    s = gbl.spread(losses)
    ok = np.array([0.5, 0.1, 0.3, 0.9, 0.2])
    assert s.n == 7 and s.n_diverged == 2 and s.n_ok == 5
    np.testing.assert_allclose(
        [s.mean, s.std, s.min, s.median, s.max], [ok.mean(), ok.std(), 0.1, 0.3, 0.9]
    )
    np.testing.assert_allclose(
        [s.q10, s.q25, s.q75, s.q90], np.quantile(ok, [0.1, 0.25, 0.75, 0.9])
    )
    np.testing.assert_allclose(s.iqr, np.quantile(ok, 0.75) - np.quantile(ok, 0.25))
    assert s.success_rate(0.25) == pytest.approx(2 / 5)
    assert set(s.as_dict()) == {
        "n",
        "n_diverged",
        "mean",
        "std",
        "min",
        "q10",
        "q25",
        "median",
        "q75",
        "q90",
        "max",
        "iqr",
        "identical",
    }


def test_explicit_flags_exclude_finite_losses_too():
    s = gbl.spread(np.array([1.0, 2.0, 3.0]), diverged=np.array([False, True, False]))
    assert s.n_diverged == 1 and s.mean == pytest.approx(2.0) and s.std == pytest.approx(1.0)


def test_spread_rejects_bad_shapes():
    with pytest.raises(ValueError, match="final losses"):
        gbl.spread(np.float32(0.5))
    with pytest.raises(ValueError, match="same shape"):
        gbl.spread(np.zeros((3, 2)), diverged=np.zeros(3, bool))


def test_a_grid_of_losses_gives_fields_per_cell():
    losses = np.array([[0.5, 0.1, np.nan, 0.3], [0.9, 0.8, 0.7, np.inf]])
    s = gbl.spread(losses)
    np.testing.assert_array_equal(s.n_diverged, [1, 1])
    np.testing.assert_allclose(s.mean, [0.3, 0.8])
    np.testing.assert_allclose(s.success_rate(0.4), [2 / 3, 0.0])
    assert s.as_dict()["mean"] == pytest.approx([0.3, 0.8])
    with pytest.raises(ValueError, match="grid"):
        s.converged_losses


def test_wilson_interval_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 10), (3, 10), (10, 10), (512, 1024), (1, 500)]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        np.testing.assert_allclose(
            gbl.wilson_interval(k, n), (ci.low, ci.high), rtol=1e-9, atol=1e-12
        )
    s = gbl.spread(np.array([0.05, 0.2, 0.01, 0.3]))
    ci = stats.binomtest(2, 4).proportion_ci(method="wilson")
    np.testing.assert_allclose(s.success_interval(0.1), (ci.low, ci.high), rtol=1e-9)
    assert np.isnan(gbl.wilson_interval(0, 0)[0])


def test_to_frame_of_plain_losses_is_one_row_and_of_a_batch_one_row_per_cell():
    pytest.importorskip("pandas")
    losses = np.array([0.05, 0.2, np.nan, 0.01, 0.5])
    row = gbl.spread(losses).to_frame(0.1)
    assert len(row) == 1 and int(row.n[0]) == 5 and int(row.n_diverged[0]) == 1
    assert int(row.successes[0]) == 2 and row.success_rate[0] == 0.5
    assert (row.success_low[0], row.success_high[0]) == pytest.approx(gbl.wilson_interval(2, 4))
    assert row["median"][0] == pytest.approx(np.median([0.05, 0.2, 0.01, 0.5]))
    assert "threshold" not in gbl.spread(losses).to_frame().columns
    # a bare [2, 3, seeds] array: axis_0, axis_1 index the cells, row-major
    batch = np.arange(24, dtype=float).reshape(2, 3, 4)
    table = gbl.spread(batch).to_frame()
    assert list(zip(table.axis_0, table.axis_1)) == [(i, j) for i in range(2) for j in range(3)]
    np.testing.assert_allclose(table["mean"], batch.mean(axis=-1).reshape(-1))


def test_thresholds_that_are_not_finite_numbers_are_refused():
    # Issue 30: success_rate(nan) and to_frame(nan) said 0% (every comparison with NaN is False)
    s = gbl.spread(np.array([0.1, 0.2, 0.3]))
    for bad in (np.nan, np.inf, "0.1", None):
        with pytest.raises(ValueError, match=r"threshold must be a finite number"):
            s.success_rate(bad)
        with pytest.raises(ValueError, match=r"threshold must be a finite number"):
            s.success_interval(bad)
    with pytest.raises(ValueError, match=r"threshold must be a finite number, got nan"):
        s.to_frame(np.nan)


def test_identical_runs_are_named_in_the_summary():
    same = gbl.spread(np.array([0.25, 0.25, np.nan, 0.25]))
    assert same.identical and "all 3 runs are identical" in same.summary()
    assert same.as_dict()["identical"] is True
    differ = gbl.spread(np.array([0.25, 0.25, 0.2500001]))
    assert not differ.identical and "identical" not in differ.summary()
    assert not gbl.spread(np.array([0.25, np.nan])).identical  # one run is not a pair
    grid = gbl.spread(np.array([[0.5, 0.5], [0.1, 0.2]]))
    np.testing.assert_array_equal(grid.identical, [True, False])
    assert grid.summary().endswith("identical runs in (axis_0=0)")


def test_reprs_say_what_a_spread_holds_without_dumping_arrays():
    s = gbl.spread(np.array([0.5, 0.1, np.nan, 0.3]))
    assert (
        repr(s) == "Spread(n=4, n_diverged=1, mean=0.3, std=0.1633, min=0.1, median=0.3, max=0.5)"
    )
    grid = gbl.spread(np.zeros((2, 3, 5)))
    assert repr(grid) == "Spread(grid [2, 3], 5 seeds per cell; see the fields or to_frame())"


def _sweep_with_held_out_metrics():
    import jax
    import optax

    train = gbl.problems.circles(jax.random.PRNGKey(0), 48)
    test = gbl.problems.circles(jax.random.PRNGKey(1), 32)
    model = gbl.mlp([3], train.head)
    return gbl.sweep(
        model,
        optax.adam(0.05),
        train,
        key=jax.random.PRNGKey(2),
        seeds=16,
        steps=60,
        metrics={"accuracy": gbl.accuracy},
        eval_data=(test.x, test.y),
    )


def test_spread_of_any_metric_with_bootstrap_intervals_and_expected_extremes():
    out = _sweep_with_held_out_metrics()
    s = gbl.spread(out, metric="test_accuracy")
    acc = np.asarray(out.final_metrics["test_accuracy"], np.float64)
    assert s.metric == "test_accuracy" and s.higher_is_better
    np.testing.assert_array_equal(s.values, acc)
    assert s.mean == pytest.approx(acc.mean()) and s.std == pytest.approx(acc.std())
    assert gbl.spread(out, metric="eval_accuracy").mean == s.mean  # the other spelling
    assert s.iqm == pytest.approx(scipy.stats.trim_mean(acc, 0.25))
    low, high = s.interval("iqm")
    assert low <= s.iqm <= high and (low, high) == s.interval("iqm")
    assert s.expected_best(4) == pytest.approx(
        np.mean([max(c) for c in itertools.combinations(acc, 4)])
    )
    assert s.expected_worst(1) == pytest.approx(acc.mean())
    assert s.success_rate(0.75) == pytest.approx(np.mean(acc > 0.75))  # better is higher
    loss = gbl.spread(out)
    assert not loss.higher_is_better and loss.metric == "final_loss"
    assert loss.expected_best(16) == pytest.approx(np.min(out.final_loss))
    assert repr(s).startswith("Spread(test_accuracy: n=16, n_diverged=0, mean=")
    assert "iqm" in s.to_frame()
    with pytest.raises(ValueError, match=r"no metric 'test_brier'.*has final_loss, accuracy"):
        gbl.spread(out, metric="test_brier")


def test_grid_cells_get_their_own_intervals():
    losses = np.array([[0.5, 0.1, 0.3, 0.2], [0.9, 0.8, 0.7, 0.6]])
    s = gbl.spread(losses)
    low, high = s.interval("mean", resamples=500)
    assert low.shape == high.shape == (2,)
    assert np.all(low <= s.mean) and np.all(s.mean <= high)
    np.testing.assert_allclose(
        s.expected_best(2),
        [np.mean([min(c) for c in itertools.combinations(row, 2)]) for row in losses],
    )


def test_seeds_for_an_interval_of_the_mean():
    s = gbl.spread(np.array([0.9, 0.92, 0.88, 0.91, 0.89]))
    z = scipy.stats.norm.ppf(0.975)
    assert s.seeds_for(0.001) == int(np.ceil((z * np.std(s.values) / 0.001) ** 2))
    np.testing.assert_array_equal(
        gbl.spread(np.array([[0.5, 0.5], [0.0, 1.0]])).seeds_for(0.1),
        [1, int(np.ceil((z * 0.5 / 0.1) ** 2))],
    )
