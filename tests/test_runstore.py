"""The sweep folder: atomic writes, chunk bookkeeping, refusing incomplete merges."""

import numpy as np
import pytest

from gbl_jax import runstore
from gbl_jax.sweeps import SweepChunk


def _chunk(start, stop):
    m = stop - start
    return SweepChunk(np.arange(start, stop), {"final_loss": np.arange(start, stop, dtype=np.float32),
                                               "diverged": np.zeros(m, bool),
                                               "losses": np.ones((m, 3), np.float32)})


def test_chunks_round_trip_in_seed_order(tmp_path):
    for start, stop in ((4, 8), (0, 4), (8, 10)):
        runstore.save_chunk(tmp_path, _chunk(start, stop))
    assert sorted(runstore.done_chunks(tmp_path)) == [0, 4, 8]
    merged = runstore.load_chunks(tmp_path, 10)
    np.testing.assert_array_equal(merged["final_loss"], np.arange(10))
    assert merged["losses"].shape == (10, 3)
    assert not list(tmp_path.glob("chunks/.*tmp"))   # no temporary files left behind


def test_missing_seeds_are_an_error(tmp_path):
    runstore.save_chunk(tmp_path, _chunk(0, 4))
    with pytest.raises(ValueError, match="cover 4 of 10"):
        runstore.load_chunks(tmp_path, 10)


def test_atomic_write_replaces_whole_files_and_has_results(tmp_path):
    target = tmp_path / "results.json"
    runstore.write_json(target, {"a": 1})
    runstore.write_json(target, {"a": 2})
    assert target.read_text().strip().endswith("}") and '"a": 2' in target.read_text()
    assert runstore.has_results(tmp_path) and not runstore.has_results(tmp_path / "nothing")


def test_csv_has_one_row_per_seed(tmp_path):
    path = tmp_path / "final_losses.csv"
    runstore.write_final_losses_csv(path, np.asarray([0.5, np.nan]), np.asarray([False, True]))
    assert path.read_text().splitlines() == ["seed,final_loss,diverged", "0,0.5,0", "1,nan,1"]


def test_unwritable_paths_are_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="not writable"):
        runstore.check_writable(blocker / "out")
    runstore.check_writable(tmp_path / "new" / "deeper")   # a creatable folder is fine
