"""A sweep's folder on disk: written chunk by chunk, atomically, so nothing finished is lost.

Layout of ``out/``: ``config.json`` (written first; identifies the sweep), ``chunks/`` (one
``.npz`` per finished chunk, each written to a temporary name and renamed into place), then at
the end ``results.json``, ``final_losses.csv``, ``curves.npz`` and the plots.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from gbl_jax.sweeps import SweepChunk

CONFIG, RESULTS = "config.json", "results.json"
OUTPUTS = (CONFIG, RESULTS, "final_losses.csv", "curves.npz", "final_losses.png", "curves.png",
           "final_losses.pdf", "curves.pdf", "chunks")


def atomic_write(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def has_results(out: Path) -> bool:
    """Whether ``out`` holds anything a sweep writes."""
    return out.is_dir() and any((out / name).exists() for name in OUTPUTS)


def check_writable(out: Path) -> None:
    """Raises ValueError unless ``out`` (or the folder it would be made in) is writable."""
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} is not writable ({probe} is not a writable folder)")


def _chunk_path(out: Path, start: int) -> Path:
    return out / "chunks" / f"seeds_{start:09d}.npz"


def save_chunk(out: Path, chunk: SweepChunk) -> None:
    """Writes one finished chunk atomically."""
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, runs=chunk.runs, final_loss=chunk.out["final_loss"],
             diverged=chunk.out["diverged"], losses=chunk.out["losses"])
    atomic_write(_chunk_path(out, chunk.start), buffer.getvalue())


def done_chunks(out: Path) -> dict[int, Path]:
    """Finished chunks on disk, by first seed."""
    folder = out / "chunks"
    if not folder.is_dir():
        return {}
    return {int(p.stem.split("_")[1]): p for p in folder.glob("seeds_*.npz")}


def load_chunks(out: Path, seeds: int) -> dict[str, np.ndarray]:
    """Concatenates all chunks; raises ValueError if any seed is missing."""
    parts = [np.load(p) for _, p in sorted(done_chunks(out).items())]
    covered = sum(len(p["runs"]) for p in parts)
    if covered != seeds:
        raise ValueError(f"{out}: chunks cover {covered} of {seeds} seeds")
    return {k: np.concatenate([p[k] for p in parts]) for k in ("final_loss", "diverged", "losses")}


def write_final_losses_csv(path: Path, final_loss: np.ndarray, diverged: np.ndarray) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["seed", "final_loss", "diverged"])
    for i, (loss, bad) in enumerate(zip(final_loss.tolist(), diverged.tolist())):
        writer.writerow([i, repr(float(loss)), int(bad)])
    atomic_write(path, text.getvalue().encode())
