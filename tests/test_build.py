"""A sweep's config: defaults filled and every option checked with one line, a grid from
several values, the run built from it, and the threshold filled in or refused."""

import numpy as np
import pytest

from gbl_jax import build
from gbl_jax.build import UsageError


def test_resolving_fills_defaults_and_is_idempotent():
    config = build.resolve_config({"lr": "0.01,0.1", "hidden": " 4,4 "})
    assert config["hidden"] == "4,4" and config["lr"] == [0.01, 0.1]
    assert config["steps"] == 2000 and config["log_every"] == 20 and config["head"] is None
    stored = {**config, "devices": 1, "chunk_size": 8}
    assert build.resolve_config(stored, stored=True) == stored


def test_a_stored_config_must_be_complete():
    with pytest.raises(UsageError, match="lacks steps"):
        build.resolve_config({k: v for k, v in build.SWEEP_DEFAULTS.items() if k != "steps"},
                             stored=True)


@pytest.mark.parametrize("value, message", [("1,x", "comma list"), ("inf", "finite"),
                                            ("0", "> 0"), ("0.1,0.1", "distinct"), ([], "finite")])
def test_numbers_are_checked_with_the_flags_name(value, message):
    with pytest.raises(UsageError, match=message) as err:
        build.check_numbers("lr", value, 0.0, strict=True)
    assert str(err.value).startswith("--lr")


def test_integers_are_checked_with_their_range():
    assert build.check_int("seeds", 3, 1) == 3 and build.check_int("n", None, 1, none=True) is None
    for bad in (0, True, 2.0, "3"):
        with pytest.raises(UsageError, match=r"--seeds must be an integer >= 1"):
            build.check_int("seeds", bad, 1)


def test_the_grid_is_every_option_given_several_values():
    assert build.grid_of({"lr": 0.05, "init_scale": 1.0}) == {}
    assert build.grid_of({"lr": [0.1, 0.2], "init_scale": 2.0}) == {
        "learning_rate": [0.1, 0.2], "init_scale": [2.0]}


def test_build_and_threshold_of_a_regression_problem():
    config = build.resolve_config({"problem": "sine", "n": 16, "hidden": "3"})
    run = build.build(config)
    assert run.head.name == "gaussian(1)" and run.grid == {} and run.data.x.shape == (16, 1)
    assert build.build(config) is run   # the same options: the same objects, compiled once
    build.set_threshold(config, run.head, run.data.y)
    assert config["threshold_rule"].startswith("default: unit-variance Gaussian")
    floor = 0.5 * np.log(2 * np.pi)
    assert floor < config["threshold"] < floor + 0.05 * float(np.var(run.data.y)) + 1e-5
    with pytest.raises(UsageError, match="no seed could succeed"):
        build.set_threshold({**config, "threshold": 0.5}, run.head, run.data.y)


def test_a_head_that_does_not_fit_the_targets_is_refused():
    with pytest.raises(UsageError, match="needs targets"):
        build.build(build.resolve_config({"problem": "xor", "head": "gaussian"}))
