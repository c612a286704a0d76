"""variance components: the ANOVA by hand, known components recovered, clipping, bad tables."""

import jax
import numpy as np
import optax
import pytest

import gbl_jax as gbl
from gbl_jax.analysis import variance


def _by_hand(v):
    """The two-way table's sums of squares with explicit loops, and the moment estimates."""
    n_i, n_d = len(v), len(v[0])
    grand = sum(sum(row) for row in v) / (n_i * n_d)
    rows = [sum(row) / n_d for row in v]
    cols = [sum(v[i][d] for i in range(n_i)) / n_i for d in range(n_d)]
    ss_i = sum(n_d * (r - grand) ** 2 for r in rows)
    ss_d = sum(n_i * (c - grand) ** 2 for c in cols)
    ss_total = sum((v[i][d] - grand) ** 2 for i in range(n_i) for d in range(n_d))
    ss_r = ss_total - ss_i - ss_d
    ms_i, ms_d, ms_r = ss_i / (n_i - 1), ss_d / (n_d - 1), ss_r / ((n_i - 1) * (n_d - 1))
    return [(ms_i - ms_r) / n_d, (ms_d - ms_r) / n_i, ms_r]


def test_components_match_the_anova_table_by_hand():
    v = [[1.0, 2.0, 3.0, 0.5], [2.0, 4.0, 6.0, 1.0], [0.0, 0.0, 3.0, 2.5]]
    np.testing.assert_allclose(variance.components(np.asarray(v)), _by_hand(v), rtol=1e-12)
    # an additive table has no residual: the components are the effects' sample variances
    a, b = np.array([0.1, -0.4, 0.9]), np.array([1.0, 2.0, 0.0, -1.0, 0.5])
    est = variance.components(a[:, None] + b[None, :])
    np.testing.assert_allclose(est, [a.var(ddof=1), b.var(ddof=1), 0.0], atol=1e-12)


def test_known_components_are_recovered_with_intervals_that_cover_them():
    rng = np.random.default_rng(0)
    n_i, n_d = 80, 60
    table = (
        rng.normal(0, 0.3, (n_i, 1))
        + rng.normal(0, 0.2, (1, n_d))
        + rng.normal(0, 0.1, (n_i, n_d))
        + 0.7
    )
    vc = variance.variance_table(table, metric="test_accuracy", resamples=400, seed=3)
    assert (vc.n_init, vc.n_data, vc.metric) == (80, 60, "test_accuracy")
    assert vc.mean == pytest.approx(table.mean())
    truth = {"init": 0.09, "data": 0.04, "residual": 0.01}
    for name, value in truth.items():
        assert getattr(vc, name) == pytest.approx(value, rel=0.5)
        low, high = vc.interval(name)
        assert low < value < high and low < getattr(vc, name) < high
    assert vc.clipped == () and vc.total == pytest.approx(vc.init + vc.data + vc.residual)
    assert sum(vc.share(n) for n in truth) == pytest.approx(1.0)
    frame = vc.to_frame()
    assert frame["component"].tolist() == ["init", "data", "residual"]
    np.testing.assert_allclose(frame["std"] ** 2, frame["variance"])
    assert vc == variance.variance_table(table, metric="test_accuracy", resamples=400, seed=3)
    assert "init" in vc.summary() and "80 inits x 60 data orders" in vc.summary()


def test_a_negative_estimate_is_clipped_and_said():
    # the rows' and the columns' means are all equal: both effects estimate below 0
    flat = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]])
    raw = variance.components(flat)
    assert raw[0] < 0 and raw[1] < 0
    vc = variance.variance_table(flat, resamples=100)
    assert vc.init == vc.data == 0.0 and vc.clipped == ("init", "data")
    assert vc.raw["init"] == raw[0] and vc.residual == pytest.approx(raw[2])
    assert vc.summary().count("clipped to 0") == 2
    assert vc.intervals["init"][0] >= 0.0


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match=r"at least 2 of each, got shape \[1, 5\]"):
        variance.variance_table(np.zeros((1, 5)))
    with pytest.raises(ValueError, match=r"1 runs have a non-finite value"):
        variance.variance_table(np.array([[0.0, 1.0], [np.nan, 2.0]]))
    with pytest.raises(ValueError, match=r"level must lie in"):
        variance.variance_table(np.eye(3), level=95)
    with pytest.raises(ValueError, match=r"share: name must be one of init, data, residual"):
        variance.variance_table(np.eye(3), resamples=100).share("order")


def _crossed_sweep(**kwargs):
    """A 4 x 3 crossed sweep on circles (one compile for the tests that read it)."""
    data = gbl.problems.circles(jax.random.PRNGKey(1), 32)
    model = gbl.mlp([4], data.head)
    return gbl.sweep(
        model,
        optax.sgd(0.1),
        data,
        key=jax.random.PRNGKey(0),
        steps=40,
        batch_size=8,
        metrics={"accuracy": gbl.accuracy},
        seeds=gbl.crossed(init=4, data=3),
        **kwargs,
    )


def test_variance_components_of_a_crossed_sweep():
    out = _crossed_sweep()
    vc = gbl.variance_components(out, resamples=200)
    expected = variance.components(np.asarray(out.final_loss, np.float64).reshape(4, 3))
    np.testing.assert_allclose([vc.raw[n] for n in variance.COMPONENTS], expected, rtol=1e-12)
    acc = gbl.variance_components(out, metric="accuracy", resamples=200)
    assert acc.metric == "accuracy" and acc.mean == pytest.approx(
        np.mean(out.final_metrics["accuracy"])
    )
    plain = out.replace(crossed=())
    with pytest.raises(ValueError, match=r"not a crossed design; sweep with seeds=gbl.crossed"):
        gbl.variance_components(plain)


def test_the_binomial_prediction_rides_along_with_correctness():
    out = _crossed_sweep()
    correct = np.random.default_rng(0).random((12, 50)) < 0.8
    vc = gbl.variance_components(out, metric="accuracy", correct=correct, resamples=100)
    p = correct.mean(axis=0)
    assert vc.binomial_std == pytest.approx(np.sqrt(np.sum(p * (1 - p))) / 50)
    assert vc.measured_std == pytest.approx(np.std(out.final_metrics["accuracy"]))
    assert "test-set sampling alone (binomial)" in vc.summary()
    with pytest.raises(ValueError, match=r"correct must be \[seeds, examples\] with 12 seeds"):
        gbl.variance_components(out, metric="accuracy", correct=correct[:5])
