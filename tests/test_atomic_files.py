"""Files written whole or not at all: the user's umask, strict JSON, CSV, npz, no leftovers."""

import errno
import json
import os

import numpy as np
import pytest

from gbl_jax import atomic_files


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_get_the_users_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        atomic_files.write_json(tmp_path / "a.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_json_is_strict_nan_and_infinity_become_null(tmp_path):
    path = tmp_path / "r.json"
    atomic_files.write_json(
        path,
        {
            "mean": float("nan"),
            "v": [np.float32(np.inf), 1.5, np.int64(3)],
            "a": np.array([np.nan, 2.0]),
            "ok": np.bool_(True),
        },
    )

    def refuse(token):
        raise AssertionError(f"{token} in strict JSON")

    data = json.loads(path.read_text(), parse_constant=refuse)
    assert data == {"mean": None, "v": [None, 1.5, 3], "a": [None, 2.0], "ok": True}


def test_csv_has_one_row_per_run(tmp_path):
    path = tmp_path / "final_losses.csv"
    atomic_files.write_csv(
        path,
        {
            "seed": [0, 1],
            "final_loss": np.asarray([0.5, np.nan]),
            "diverged": np.asarray([False, True]),
        },
    )
    assert path.read_text().splitlines() == ["seed,final_loss,diverged", "0,0.5,0", "1,nan,1"]


def test_a_negative_zero_is_written_as_zero(tmp_path):
    # a perfect fit's loss, -mean(log p) of zeros, is -0.0
    loss = -np.mean(np.zeros(3, np.float32))
    assert np.signbit(loss)
    atomic_files.write_csv(tmp_path / "f.csv", {"final_loss": np.asarray([loss, 0.5])})
    assert (tmp_path / "f.csv").read_text().splitlines() == ["final_loss", "0.0", "0.5"]
    atomic_files.write_json(tmp_path / "r.json", {"min": loss, "v": [np.float64(-0.0)]})
    assert "-0.0" not in (tmp_path / "r.json").read_text()


@pytest.mark.parametrize("compress", [False, True])
def test_npz_round_trips(tmp_path, compress):
    arrays = {"losses": np.arange(6.0).reshape(2, 3), "keys/0": np.array([1, 2], np.uint32)}
    atomic_files.write_npz(tmp_path / "c.npz", arrays, compress)
    with np.load(tmp_path / "c.npz") as f:
        assert set(f.files) == set(arrays)
        for k, v in arrays.items():
            np.testing.assert_array_equal(f[k], v)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    atomic_files.write_json(path, {"old": 1})
    with pytest.raises(TypeError):
        atomic_files.write_json(path, {"new": object()})  # not JSON: fails before any rename
    with pytest.raises(TypeError):
        atomic_files.atomic_write(path, "not bytes")  # fails inside the temporary file
    assert json.loads(path.read_text()) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_full_disk_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left") as caught:
        atomic_files.write_json(tmp_path / "results.json", {"a": 1})
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(tmp_path / "results.json")
    assert not list(tmp_path.iterdir())
