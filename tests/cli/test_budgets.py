"""The command line's memory and disk budgets (gbl_jax.cli.budgets)."""

import pytest

from gbl_jax.cli import budgets
from gbl_jax.engine import memory


def test_a_sweeps_budget_counts_each_copy_of_its_results():
    # 3 runs, 10 logged losses, 100 bytes of params, 7 of predictions, params kept, classified:
    # one copy of the results is 3 * (4 * 10 + 16) + 2 * 3 * 100 = 768 bytes
    host, disk = budgets.sweep_bytes(3, 10, 100, 7, keep_params=True, classify=True)
    # twice while merging, 8 bytes of index per run, 3 * (100 + 32) of spectra, 3 * 3 * 7 predictions
    assert host == 2 * 768 + 24 + 396 + 63
    # twice on disk, seven figures (runstore.FIGURES) of 4 MiB, two copies of the predictions
    assert disk == 2 * 768 + 7 * 4 * 2**20 + 42
    assert budgets.sweep_bytes(3, 10, 100, 0, keep_params=False, classify=False) == (
        2 * 3 * 56 + 24,
        2 * 3 * 56 + 7 * 4 * 2**20,
    )


def test_data_that_would_not_fit_four_times_is_refused(monkeypatch):
    monkeypatch.setattr(memory, "available", lambda: 4000)
    budgets.check_data_fits("--n 10: the data", 1000, "hint")  # 4 x 1000 fits exactly
    budgets.check_data_fits("--n 10: the data", None, "hint")  # unknown size: no check
    with pytest.raises(ValueError) as err:
        budgets.check_data_fits("--n 10: the data", 1500, "use a smaller --n")
    assert str(err.value) == (
        "--n 10: the data (1.46 KiB, x4 while training) needs about 5.86 KiB of host memory "
        "but 3.91 KiB is available; use a smaller --n"
    )
