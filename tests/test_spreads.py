"""spread: statistics against numpy, divergence accounting, success rate."""

import numpy as np
import pytest

import gbl_jax as gbl


def test_spread_matches_numpy_over_the_finite_losses():
    losses = np.array([0.5, 0.1, np.nan, 0.3, np.inf, 0.9, 0.2])
    s = gbl.spread(losses)
    ok = np.array([0.5, 0.1, 0.3, 0.9, 0.2])
    assert s.n == 7 and s.n_diverged == 2 and s.n_ok == 5
    np.testing.assert_allclose([s.mean, s.std, s.min, s.median, s.max], [ok.mean(), ok.std(), 0.1, 0.3, 0.9])
    np.testing.assert_allclose([s.q10, s.q25, s.q75, s.q90], np.quantile(ok, [0.1, 0.25, 0.75, 0.9]))
    np.testing.assert_allclose(s.iqr, np.quantile(ok, 0.75) - np.quantile(ok, 0.25))
    assert s.success_rate(0.25) == pytest.approx(2 / 5)
    assert set(s.as_dict()) == {"n", "n_diverged", "mean", "std", "min", "q10", "q25", "median", "q75",
                                "q90", "max", "iqr"}


def test_explicit_flags_exclude_finite_losses_too():
    s = gbl.spread(np.array([1.0, 2.0, 3.0]), diverged=np.array([False, True, False]))
    assert s.n_diverged == 1 and s.mean == pytest.approx(2.0) and s.std == pytest.approx(1.0)


def test_spread_rejects_bad_shapes():
    with pytest.raises(ValueError, match="final losses"):
        gbl.spread(np.zeros((3, 2)))
