"""What a finished sweep reports: its figures' title names the config and the grid's axes by the
engine's names (the numbers and figures themselves: test_cli.py, end to end)."""

from gbl_jax.cli import build, sweep_report


def test_describe_gives_the_config_in_brief():
    config = {
        "problem": "xor",
        "hidden": "2",
        "activation": "tanh",
        "optimizer": "adam",
        "steps": 2000,
        "seeds": 1024,
    }
    assert sweep_report.describe(config, {"learning_rate": 0.05}) == (
        "xor, hidden 2 tanh, adam lr=0.05, 2000 steps, 1024 seeds"
    )
    assert sweep_report.describe({**config, "hidden": ""}).startswith("xor, no hidden layer, adam,")
    # --data, --model and --channels runs are named by what they ran, not by the defaults
    user = {**config, "data": "/tmp/runs/train.npz", "model": "mynets:make"}
    assert sweep_report.describe(user).startswith("train.npz, model mynets:make, adam,")
    cnn = {**config, "problem": "mnist1d", "channels": "32,32"}
    assert sweep_report.describe(cnn).startswith("mnist1d, cnn1d channels 32,32, adam,")


def test_the_title_shows_fixed_hyperparameters_and_names_the_grids_axes():
    config = {
        **build.resolve_config({"grid": ["b1=0.8,0.9", "eps=1e-7"], "lr": "0.01,0.05"}),
        "threshold": 0.1,
    }
    grid = build.grid_of(config)
    assert list(grid) == ["learning_rate", "b1"]
    assert sweep_report.title(config, grid) == (
        "xor, hidden 2 tanh, adam eps=1e-07, 2000 steps, 1024 seeds, grid learning_rate x b1, "
        "threshold 0.1"
    )
    plain = {**build.resolve_config({}), "threshold": 0.1}
    assert sweep_report.title(plain, {}) == (
        "xor, hidden 2 tanh, adam lr=0.05, 2000 steps, 1024 seeds, threshold 0.1"
    )
