"""The run folder: chunks named by run range, the marker and lock, deleting only what gbl-jax
wrote, refusing sweeps that would not fit (its atomic writes: test_atomic_files.py)."""

import fcntl
import os
import tempfile

import jax
import numpy as np
import pytest

from gbl_jax import atomic_files
from gbl_jax.atomic_files import write_json
from gbl_jax.cli import runstore
from gbl_jax.cli.budgets import disk_bytes, sweep_host_bytes
from gbl_jax.cli.runstore import RunError, RunFolder
from gbl_jax.engine.sweeps import SweepChunk

STAMP = '{"config": {"steps": 20}}'  # runner.made_by of the sweep
PARAMS = {"hidden": [{"w": np.zeros((2, 3)), "b": np.zeros(3)}], "head": {"w": np.zeros((3, 1))}}


def _chunk(start, stop, params=False):
    m = stop - start
    out = {
        "final_loss": np.arange(start, stop, dtype=np.float32),
        "diverged": np.zeros(m, bool),
        "losses": np.ones((m, 3), np.float32),
        "converged_step": np.full(m, -1),
        "metrics": {},
        "final_metrics": {},
    }
    if params:
        stacked = jax.tree.map(lambda a: np.stack([a + i for i in range(start, stop)]), PARAMS)
        out.update(params=stacked, init_params=stacked)
    return SweepChunk(np.arange(start, stop), out)


def _made(tmp_path, name="run"):
    folder = RunFolder(tmp_path / name)
    folder.create({"config": {"seeds": 10}}, force=False)
    return folder


def test_chunks_are_named_by_run_range_and_round_trip_with_params(tmp_path):
    folder = _made(tmp_path)
    for start, stop in ((4, 8), (0, 4), (8, 10)):
        folder.save_chunk(_chunk(start, stop, params=True), STAMP)
    names = sorted(p.name for p in (folder.path / "chunks").iterdir())
    assert names == [
        "runs_000000000000-000000000004.npz",
        "runs_000000000004-000000000008.npz",
        "runs_000000000008-000000000010.npz",
    ]
    assert folder.done() == {(0, 4), (4, 8), (8, 10)}
    chunks = folder.load_chunks(runstore.chunk_template(PARAMS), 10, STAMP)
    np.testing.assert_array_equal(
        np.concatenate([c.out["final_loss"] for c in chunks]), np.arange(10)
    )
    assert chunks[1].out["params"]["hidden"][0]["w"].shape == (4, 2, 3)
    assert chunks[1].out["params"]["hidden"][0]["w"][0, 0, 0] == 4
    with pytest.raises(RunError, match="steps=20 then, 30 now"):
        folder.check_chunks([(0, 4), (4, 8), (8, 10)], '{"config": {"steps": 30}}')
    with pytest.raises(RunError, match="another configuration"):
        folder.load_chunks(runstore.chunk_template(PARAMS), 10, '{"config": {"steps": 30}}')


def damage_member(path, member):
    """Flips a byte inside one member's data of a (stored, uncompressed) .npz: the zip directory
    and every other member stay whole, only that member's CRC fails."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        offset = z.getinfo(member).header_offset
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[offset + 26 : offset + 30])
    at = offset + 30 + name_len + extra_len + 130  # past the .npy header, inside the data
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_a_chunk_with_a_damaged_member_is_damaged_not_whole(tmp_path):
    folder = _made(tmp_path)
    for start, stop in ((0, 4), (4, 8)):
        folder.save_chunk(_chunk(start, stop), STAMP)
    damage_member(folder.chunk_path(0, 4), "final_loss.npy")
    whole, damaged = folder.check_chunks([(0, 4), (4, 8)], STAMP)
    assert whole == {(4, 8)} and damaged == {(0, 4): folder.chunk_path(0, 4)}


def test_a_fifo_is_refused_instead_of_blocking(tmp_path):
    folder = _made(tmp_path)
    folder.close()
    (folder.path / "chunks").mkdir()
    os.mkfifo(folder.chunk_path(0, 4))
    with pytest.raises(RunError, match="is a FIFO.*move it away"):
        folder.check_chunks([(0, 4)], STAMP)
    assert folder.chunk_path(0, 4).exists()  # not taken for a damaged chunk and deleted
    folder.file(runstore.CONFIG).unlink()
    os.mkfifo(folder.file(runstore.CONFIG))
    with pytest.raises(RunError, match="FIFO"):
        folder.read_config()


def test_missing_or_doubled_runs_are_an_error(tmp_path):
    folder = _made(tmp_path)
    folder.save_chunk(_chunk(0, 4), STAMP)
    with pytest.raises(RunError, match="cover 4 of 10"):
        folder.load_chunks(runstore.chunk_template(), 10, STAMP)
    folder.save_chunk(_chunk(2, 6), STAMP)
    folder.save_chunk(_chunk(6, 10), STAMP)
    with pytest.raises(RunError, match="twice"):
        folder.load_chunks(runstore.chunk_template(), 10, STAMP)


def test_a_folder_gbl_jax_did_not_make_is_never_used_or_cleared(tmp_path):
    user = tmp_path / "mine"
    (user / "chunks").mkdir(parents=True)
    (user / "config.json").write_text("my own")
    (user / "chunks" / "part1.txt").write_text("my own")
    for force in (False, True):
        with pytest.raises(RunError, match="did not write"):
            RunFolder(user).check_new(force=force)
    assert (user / "config.json").read_text() == "my own"
    RunFolder(tmp_path / "empty").check_new(force=False)  # a new folder is fine
    (tmp_path / "empty2").mkdir()
    RunFolder(tmp_path / "empty2").check_new(force=False)  # and an empty one


def test_force_deletes_only_what_gbl_jax_wrote(tmp_path):
    folder = _made(tmp_path)
    folder.save_chunk(_chunk(0, 4), STAMP)
    folder.record([runstore.RESULTS])  # as finish does before it writes
    write_json(folder.file(runstore.RESULTS), {})
    (folder.path / "notes.txt").write_text("mine")
    (folder.path / "chunks" / "part1.txt").write_text("mine")
    folder.close()
    with pytest.raises(RunError, match="already holds results"):
        folder.check_new(force=False)
    folder.check_new(force=True)
    folder.create({"config": {}}, force=True)
    folder.close()
    left = sorted(str(p.relative_to(folder.path)) for p in folder.path.rglob("*"))
    assert left == [
        ".gbl-jax-files",
        ".gbl-jax-run",
        "chunks",
        "chunks/part1.txt",
        "config.json",
        "notes.txt",
    ]


def test_force_deletes_no_user_file_of_a_name_gbl_jax_writes_or_wrote(tmp_path):
    # params.npz and curves.npz are names an old version wrote; this one never does
    folder = _made(tmp_path)
    folder.record([runstore.RESULTS, "final_losses.png"])
    write_json(folder.file(runstore.RESULTS), {})
    (folder.path / "final_losses.png").write_bytes(b"ours")
    for name in ("params.npz", "curves.npz", "curves.png", "landscape.json"):
        (folder.path / name).write_text("mine")
    folder.close()
    folder.create({"config": {}}, force=True)
    folder.close()
    left = sorted(p.name for p in folder.path.iterdir())
    assert left == [
        ".gbl-jax-files",
        ".gbl-jax-run",
        "config.json",
        "curves.npz",
        "curves.png",
        "landscape.json",
        "params.npz",
    ]
    assert folder.listed() == ["config.json"]


def test_a_folder_without_a_manifest_gets_one_listing_what_it_holds_of_ours(tmp_path):
    folder = _made(tmp_path)
    folder.close()
    (folder.path / runstore.MANIFEST).unlink()  # a folder an earlier version made
    write_json(folder.file(runstore.RESULTS), {})
    (folder.path / "params.npz").write_text("mine")
    assert folder.listed() is None
    assert {p.name for p in folder.written()} == {"config.json", "results.json"}
    folder.record(["landscape.json"])
    assert folder.listed() == ["config.json", "landscape.json", "results.json"]
    folder.file(runstore.MANIFEST).write_text('{"files": ["../elsewhere"]}')
    with pytest.raises(RunError, match="cannot tell which files here it wrote"):
        folder.check_new(force=True)


def test_force_deletes_no_user_file_that_looks_like_a_temporary(tmp_path):
    folder = _made(tmp_path)
    folder.record([runstore.RESULTS, runstore.CSV])
    write_json(folder.file(runstore.RESULTS), {})
    user = folder.path / ".final_losses.csv.user.tmp"
    user.write_text("mine")
    _, crashed = tempfile.mkstemp(
        dir=folder.path, **atomic_files.temporary_affixes(folder.file(runstore.CSV))
    )  # what a crash inside atomic_write leaves
    folder.close()
    folder.create({"config": {}}, force=True)
    folder.close()
    assert user.read_text() == "mine" and not os.path.exists(crashed)


def test_the_lock_keeps_a_second_writer_out(tmp_path):
    folder = _made(tmp_path)
    other = RunFolder(folder.path)
    with pytest.raises(RunError, match="in use by another gbl-jax process"):
        other.lock()
    folder.close()
    other.lock()
    with open(folder.path / runstore.MARKER) as f, pytest.raises(BlockingIOError):
        fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    other.close()


def test_read_config_says_what_is_wrong(tmp_path):
    with pytest.raises(RunError, match="not a gbl-jax run folder"):
        RunFolder(tmp_path / "nothing").read_config()
    folder = _made(tmp_path)
    folder.close()
    assert folder.read_config()["config"] == {"seeds": 10}
    folder.file(runstore.CONFIG).write_text("{not json")
    with pytest.raises(RunError, match="not JSON"):
        folder.read_config()
    folder.file(runstore.CONFIG).write_text('{"config": {}, "format": 1}')
    with pytest.raises(RunError, match="format 1"):
        folder.read_config()


def test_unwritable_paths_and_files_are_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunError, match="not writable"):
        RunFolder(blocker / "out").check_new(force=False)
    with pytest.raises(RunError, match="is a file"):
        RunFolder(blocker).check_new(force=False)
    RunFolder(tmp_path / "new" / "deeper").check_new(force=False)  # creatable is fine


def test_a_sweep_that_does_not_fit_is_refused_with_its_size(tmp_path):
    memory = sweep_host_bytes(10**11, 100, 36, keep_params=False, classify=False)
    disk = disk_bytes(10**11, 100, 36, keep_params=False)
    assert memory > 10**13 and disk > 10**13
    with pytest.raises(RunError, match=r"needs about \d.* TiB of memory"):
        RunFolder(tmp_path / "x").check_space(memory, disk, "what")
    RunFolder(tmp_path / "x").check_space(10**6, 10**6, "what")
