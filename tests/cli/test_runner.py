"""A sweep config run into its folder: checks before the first file, chunks bound to the
configuration that made them, one run per folder (end to end through the command line:
test_cli.py)."""

import jax
import numpy as np
import pytest

from gbl_jax.cli import build, launch, runner
from gbl_jax.cli.runstore import RunError, RunFolder
from gbl_jax.engine import memory
from gbl_jax.engine.sweeps import SweepChunk

DEVICES = jax.devices()[:1]


def _config(**options):
    return build.resolve_config(
        {"problem": "xor", "hidden": "2", "seeds": 12, "steps": 20, **options}
    )


def test_chunk_size_is_capped_at_the_number_of_runs(tmp_path):
    config = _config(chunk_size=2_000_000)
    planned = runner.plan_run(config, DEVICES, RunFolder(tmp_path / "run"))
    assert planned.plan.chunk_size == 12 and config["chunk_size"] == 12
    assert not (tmp_path / "run").exists()


def test_a_chunk_that_would_not_fit_in_memory_is_refused_with_its_size(tmp_path, monkeypatch):
    # 2-1e8-1: 1.6 GB of params, 3.2 GB of Adam state and ~17 GB of step intermediates per run;
    # the results alone (the old estimate) fit in 16 GiB
    monkeypatch.setattr(memory, "available", lambda: 16 * 2**30)
    config = _config(hidden="100000000", seeds=4)
    with pytest.raises(
        RunError,
        match=r"a chunk of 1 training, 2\d.\d GiB each\) needs about "
        r"2\d.\d GiB of host memory but 16 GiB",
    ):
        runner.plan_run(config, DEVICES, RunFolder(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_the_fingerprint_binds_config_precision_and_devices():
    config = _config(chunk_size=4)
    config.update(devices=1)
    base = runner.made_by(config, DEVICES)
    assert runner.made_by(dict(config), DEVICES) == base
    assert runner.made_by({**config, "steps": 21}, DEVICES) != base
    assert runner.made_by({**config, "devices": 2}, DEVICES) != base
    with jax.enable_x64(True):
        assert runner.made_by(config, DEVICES) != base
    # --grid: a grid-less sweep stamps as before the option existed (old chunks still resume)
    assert (
        config["grid"] == {}
        and runner.made_by({k: v for k, v in config.items() if k != "grid"}, DEVICES) == base
    )
    assert runner.made_by({**config, "grid": {"b1": [0.8, 0.9]}}, DEVICES) != base


def test_one_run_at_a_time_per_folder_whatever_its_process_count(tmp_path, monkeypatch):
    # process 0 of a running two-process sweep, then process 0 of a second one with --force
    monkeypatch.setattr(launch, "barrier", lambda name, count, ok=True: ok)
    config = _config(chunk_size=4)
    first = RunFolder(tmp_path / "run")
    runner.open_folder(first, config, resume=False, force=False, index=0, count=2)
    first.save_chunk(_chunk(), "made by the first run")
    before = sorted(p.name for p in first.path.rglob("*"))
    for resume in (False, True):
        with pytest.raises(RunError, match="in use by another gbl-jax process"):
            runner.open_folder(
                RunFolder(first.path), config, resume=resume, force=True, index=0, count=2
            )
    assert sorted(p.name for p in first.path.rglob("*")) == before
    first.close()


def _chunk():
    out = {
        "final_loss": np.zeros(4, np.float32),
        "diverged": np.zeros(4, bool),
        "losses": np.zeros((4, 2), np.float32),
        "converged_step": np.full(4, -1),
        "metrics": {},
        "final_metrics": {},
    }
    return SweepChunk(np.arange(4), out)
