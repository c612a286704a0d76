"""A sweep's config: defaults filled and every option checked with one line, a grid from
several values, the run built from it, and the threshold filled in or refused."""

import jax.numpy as jnp
import numpy as np
import pytest

import gbl_jax as gbl
from gbl_jax.cli import build
from gbl_jax.cli.build import UsageError


def test_resolving_fills_defaults_and_is_idempotent():
    config = build.resolve_config({"lr": "0.01,0.1", "hidden": " 4,4 "})
    assert config["hidden"] == "4,4" and config["lr"] == [0.01, 0.1]
    assert config["steps"] == 2000 and config["log_every"] == 20 and config["head"] is None
    stored = {**config, "devices": 1, "chunk_size": 8}
    assert build.resolve_config(stored, stored=True) == stored


def test_a_stored_config_must_be_complete():
    with pytest.raises(UsageError, match="lacks steps"):
        build.resolve_config(
            {k: v for k, v in build.SWEEP_DEFAULTS.items() if k != "steps"}, stored=True
        )


@pytest.mark.parametrize(
    "value, message",
    [
        ("1,x", "comma list"),
        ("inf", "finite"),
        ("0", "> 0"),
        ("0.1,0.1", "distinct"),
        ([], "finite"),
    ],
)
def test_numbers_are_checked_with_the_flags_name(value, message):
    with pytest.raises(UsageError, match=message) as err:
        build.check_numbers("lr", value, 0.0, strict=True)
    assert str(err.value).startswith("--lr")


def test_integers_are_checked_with_their_range():
    assert build.check_int("seeds", 3, 1) == 3 and build.check_int("n", None, 1, none=True) is None
    for bad in (0, True, 2.0, "3"):
        with pytest.raises(UsageError, match=r"--seeds must be an integer >= 1"):
            build.check_int("seeds", bad, 1)


def test_the_grid_is_every_hyperparameter_given_several_values():
    assert build.grid_of({"lr": 0.05, "init_scale": 1.0, "grid": {}}) == {}
    assert build.grid_of({"lr": [0.1, 0.2], "init_scale": 2.0, "grid": {}}) == {
        "learning_rate": [0.1, 0.2],
        "init_scale": [2.0],
    }
    assert build.grid_of(
        {"lr": 0.05, "init_scale": 1.0, "grid": {"b1": [0.8, 0.9], "eps": 1e-7}}
    ) == {"b1": [0.8, 0.9]}


def test_grid_takes_any_numeric_hyperparameter_of_the_optimizer():
    assert build.hyperparameter_names("adam") == ("b1", "b2", "eps", "eps_root", "learning_rate")
    assert build.hyperparameter_names("momentum") == ("learning_rate", "momentum")
    config = build.resolve_config({"grid": ["eps=1e-7", "b1=0.8,0.9", "learning_rate=0.01,0.1"]})
    assert config["lr"] == [0.01, 0.1] and config["grid"] == {"b1": [0.8, 0.9], "eps": 1e-7}
    assert list(build.grid_of(config)) == ["learning_rate", "b1"]  # then the others by name
    # the short forms are the same entries, and a resolved config resolves to itself
    assert config == build.resolve_config({"lr": "0.01,0.1", "grid": ["b1=0.8,0.9", "eps=1e-7"]})
    assert build.resolve_config(config) == config
    assert build.resolve_config({"grid": ["init_scale=0.5,2"]}) == build.resolve_config(
        {"init_scale": "0.5,2"}
    )
    run = build.build(build.resolve_config({"optimizer": "momentum", "grid": ["momentum=0.5,0.8"]}))
    assert run.grid == {"momentum": [0.5, 0.8]}
    # a stored config from before --grid has no "grid": it is an empty one
    stored = {**config, "devices": 1, "chunk_size": 8}
    del stored["grid"]
    assert build.resolve_config(stored, stored=True)["grid"] == {}


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"grid": ["beta=0.5"]},
            "--grid beta: optimizer adam has no numeric hyperparameter 'beta'; "
            "--grid takes b1, b2, eps, eps_root, learning_rate, init_scale",
        ),
        ({"optimizer": "sgd", "grid": ["momentum=0.9"]}, "--grid takes learning_rate, init_scale"),
        ({"lr": "0.1", "grid": ["learning_rate=0.2"]}, "learning_rate is given twice (--lr and"),
        ({"init_scale": "2", "grid": ["init_scale=2"]}, "init_scale is given twice"),
        ({"grid": ["b1=0.8", "b1=0.9"]}, "b1 is given twice"),
        ({"grid": ["b1"]}, "--grid takes NAME=VALUES"),
        ({"grid": ["=0.5"]}, "--grid takes NAME=VALUES"),
        ({"grid": ["b1="]}, "--grid b1 must be a number or a comma list"),
        ({"grid": ["b1=0.8,x"]}, "--grid b1 must be a number or a comma list"),
        ({"grid": ["b1=0.8,0.8"]}, "--grid b1 repeats 0.8: every cell must differ"),
        ({"grid": ["learning_rate=-1"]}, "--grid learning_rate must be > 0, got -1.0"),
        ({"grid": ["init_scale=1e-50"]}, "--grid init_scale: 1e-50 is 0 in float32"),
        ({"grid": ["eps=1e-50"]}, "--grid eps: 1e-50 is 0 in float32"),
        ({"grid": ["b2=1e39"]}, "--grid b2: 1e+39 is inf in float32"),
    ],
)
def test_bad_grid_entries_are_refused_in_one_line(raw, message):
    with pytest.raises(UsageError) as err:
        build.resolve_config(raw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_build_and_threshold_of_a_regression_problem():
    config = build.resolve_config({"problem": "sine", "n": 16, "hidden": "3"})
    run = build.build(config)
    assert run.head.name == "gaussian(1)" and run.grid == {} and run.data.x.shape == (16, 1)
    assert build.build(config) is run  # the same options: the same objects, compiled once
    build.set_threshold(config, run.head, run.data.y)
    assert config["threshold_rule"].startswith("default: unit-variance Gaussian")
    floor = 0.5 * np.log(2 * np.pi)
    assert floor < config["threshold"] < floor + 0.05 * float(np.var(run.data.y)) + 1e-5
    with pytest.raises(UsageError, match="no seed could succeed"):
        build.set_threshold({**config, "threshold": 0.5}, run.head, run.data.y)


def test_a_head_that_does_not_fit_the_targets_is_refused():
    with pytest.raises(UsageError, match="needs targets"):
        build.build(build.resolve_config({"problem": "xor", "head": "gaussian"}))


def test_the_threshold_of_a_model_follows_the_family_it_returns():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 2)), jnp.float32)
    data = gbl.problems.Data(x, x[:, :1], gbl.heads.gaussian(1), "mine")

    def head_of(model, **config):
        run = build.Built(data, model, data.head, None, None, {}, {})
        return build.threshold_head({"model": "m:f", "head": None, **config}, run)

    assert head_of(gbl.mlp([3], gbl.heads.gaussian(1))) == "gaussian(1)"
    assert (
        head_of(gbl.mlp([3], gbl.heads.heteroscedastic_gaussian(1)))
        == "heteroscedastic_gaussian(1)"
    )
    assert (
        head_of(gbl.mlp([3], gbl.heads.laplace(1, learn_scale=True)))
        == "laplace(1, learn_scale=True)"
    )
    assert head_of(gbl.mlp([3], gbl.heads.laplace(1))) == "laplace(1)"
    assert head_of(gbl.mlp([3], gbl.heads.categorical(4))) == "categorical"
    assert head_of(gbl.mlp([3], gbl.heads.mixture_density(2, 1))) == "mixture_density"
    # an explicit --head, or no --model, keeps the config's head
    assert head_of(gbl.mlp([3], gbl.heads.categorical(4)), head="gaussian") is data.head


def test_a_model_of_an_unknown_family_on_headless_data_asks_for_a_threshold():
    # a --model with (x, y) data and no --head: its Normal still finds its rule; a family the
    # default thresholds do not know asks for --threshold in one line
    x = jnp.ones((4, 2))
    data = gbl.problems.Data(x, x, None, "pairs")
    normal = gbl.mlp([2], gbl.heads.gaussian(2))
    run = build.Built(data, normal, None, None, None, {}, {})
    assert build.threshold_head({"model": "m:f", "head": None}, run) == "gaussian(2)"
    mvn = gbl.Model(
        lambda key, x: {"b": jnp.zeros(2)},
        lambda p, x: gbl.MultivariateNormalTriL(
            x + p["b"][None], jnp.broadcast_to(jnp.eye(2), (x.shape[0], 2, 2))
        ),
    )
    head = build.threshold_head({"model": "m:f", "head": None}, run._replace(model=mvn))
    assert head is None
    with pytest.raises(
        UsageError,
        match=r"--model m:f's distribution is none of the families.*"
        r"pass --threshold",
    ):
        build.set_threshold({"model": "m:f", "threshold": None, "loss": "nll"}, head, x)
    build.set_threshold({"model": "m:f", "threshold": 0.5, "loss": "nll"}, head, x)


def test_one_number_is_one_number():
    assert build.check_number("grad_tol", "0.5", 0.0, strict=True) == 0.5
    with pytest.raises(UsageError, match=r"^--grad-tol takes one number, got '1,2'$"):
        build.check_number("grad_tol", "1,2", 0.0, strict=True)
    with pytest.raises(UsageError, match=r"^--grad-tol values must be finite numbers > 0"):
        build.check_number("grad_tol", "0", 0.0, strict=True)


@pytest.mark.parametrize(
    "name, value, spelled, message",
    [
        ("learning_rate", "0.1,0.1000000001", "--lr", "--lr repeats 0.1 (as 0.10000000149011612"),
        ("learning_rate", "0", "--grid learning_rate", "--grid learning_rate must be > 0, got 0.0"),
        ("init_scale", "-1", "--init-scale", "--init-scale must be >= 0"),
        ("b2", "1e39", "--grid b2", "--grid b2: 1e+39 is inf in float32"),
        ("eps", "nan", "--grid eps", "--grid eps must be a finite number, got nan"),
    ],
)
def test_hyperparameters_are_checked_by_the_engines_rules_with_the_flags_name(
    name, value, spelled, message
):
    with pytest.raises(UsageError) as err:
        build.hyper_values(name, value, spelled)
    assert str(err.value).startswith(message) and "grid[" not in str(err.value)


def test_hyperparameter_values_the_engine_accepts_pass_as_given():
    assert build.hyper_values("init_scale", "0", "--init-scale") == 0.0  # the zero-init control
    assert build.hyper_values("learning_rate", "0.1,0.2", "--lr") == [0.1, 0.2]
    assert build.hyper_values("learning_rate", [0.05], "--lr") == 0.05
