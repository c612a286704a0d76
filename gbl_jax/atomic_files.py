"""Files written whole or not at all, with the user's umask: bytes, strict JSON and CSV; and
files opened for reading only when they are regular files (``open_regular``).

Every file is written to a temporary name in its folder and renamed into place, so a crash leaves
the old file or the new one, never half of one; ``is_temporary`` knows the temporary names
(``.<name>.<8 random characters>.gbl-jax.tmp``) a crash can leave behind, and no other name. A
failed write (a full disk) raises ``OSError`` naming the file it was writing. JSON is strict: NaN and infinity become null, since
most JSON readers refuse the ``NaN`` token Python writes by default; a negative zero (the -mean of
zero log-probabilities) is written as 0.0 in JSON and CSV.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Mapping

import numpy as np


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


_SUFFIX = ".gbl-jax.tmp"
_RANDOM = re.compile(r"[a-z0-9_]{8}")  # what tempfile.mkstemp puts between prefix and suffix


def temporary_affixes(path: Path) -> dict[str, str]:
    """The ``prefix`` and ``suffix`` of ``tempfile.mkstemp`` for a temporary copy of ``path``."""
    return {"prefix": f".{path.name}.", "suffix": _SUFFIX}


def is_temporary(name: str, of: str) -> bool:
    """Whether the file ``name`` is a temporary copy of the file ``of`` that ``atomic_write``
    made (a crash can leave one), as opposed to a user's file of a similar name."""
    affixes = temporary_affixes(Path(of))
    prefix, suffix = affixes["prefix"], affixes["suffix"]
    return (
        name.startswith(prefix)
        and name.endswith(suffix)
        and bool(_RANDOM.fullmatch(name[len(prefix) : -len(suffix)]))
    )


def _temporary_copy(path: Path, data: bytes) -> str:
    """A synced temporary file beside ``path`` holding ``data``; its name."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, **temporary_affixes(path))
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from err
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    return tmp


def atomic_write(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` via a temporary file in the same folder and a rename.

    The file gets mode 0o666 minus the umask, like any file the user makes.

    Raises:
      OSError: the write failed (its ``filename`` is ``path``); ``path`` is as it was.
    """
    write_together([(path, data)])


def write_together(files: list[tuple[Path, bytes]]) -> None:
    """Writes several files as one set: every temporary copy is written and synced first, and
    only then are they renamed into place, in order.

    The last file marks the set complete (results.json beside sweep.npz): when there are several,
    it is removed before the others are renamed and comes back last, so a crash among the renames
    leaves a set without its last file (which readers refuse as unfinished), never new files
    beside an old last one that describes others.

    Raises:
      OSError: a write failed (naming its file); every file is as it was.
    """
    temporaries: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            temporaries.append((_temporary_copy(path, data), path))
        if len(files) > 1:
            files[-1][0].unlink(missing_ok=True)
        while temporaries:
            tmp, path = temporaries[0]
            try:
                os.replace(tmp, path)
            except OSError as err:
                raise OSError(err.errno, err.strerror, str(path)) from err
            temporaries.pop(0)
    finally:
        for tmp, _ in temporaries:
            Path(tmp).unlink(missing_ok=True)


def json_safe(obj: Any) -> Any:
    """``obj`` with numpy values as Python ones and every NaN or infinity as None."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) + 0.0 if math.isfinite(obj) else None  # + 0.0: -0.0 becomes 0.0
    return obj


def json_bytes(obj) -> bytes:
    """Strict JSON (no NaN or Infinity tokens): non-finite numbers become null.

    Raises:
      TypeError: ``obj`` holds something JSON cannot (as ``json.dumps``).
    """
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False)
    return (text + "\n").encode()


def write_json(path: Path, obj) -> None:
    """Strict JSON (``json_bytes``), written atomically."""
    atomic_write(path, json_bytes(obj))


def _cell(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value) + 0.0)  # a loss of exactly 0 (-mean of zeros is -0.0): 0.0
    return str(value)


def write_csv(path: Path, columns: Mapping[str, Iterable]) -> None:
    """One row per entry of the (equally long) columns; floats as Python's repr, bools as 0/1."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(columns))
    for row in zip(*(list(np.asarray(c).tolist()) for c in columns.values())):
        writer.writerow([_cell(v) for v in row])
    atomic_write(path, text.getvalue().encode())


def npz_bytes(arrays: Mapping[str, Any], compress: bool = False) -> bytes:
    """NumPy's .npz of ``arrays`` (zip-compressed when ``compress``), in memory."""
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def write_npz(path: Path, arrays: Mapping[str, Any], compress: bool = False) -> None:
    """NumPy's .npz of ``arrays`` (zip-compressed when ``compress``), written atomically."""
    atomic_write(path, npz_bytes(arrays, compress))


def open_regular(path) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file.

    A FIFO of that name would block the read until something writes to it (forever, in a folder
    someone sent you), and a device may never end; both are refused before a byte is read.

    Raises:
      OSError: the file cannot be opened (FileNotFoundError when it does not exist).
      ValueError: it is not a regular file (naming what it is).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once, without a writer
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = (
                "a folder"
                if stat.S_ISDIR(mode)
                else "a FIFO (named pipe)"
                if stat.S_ISFIFO(mode)
                else "a socket"
                if stat.S_ISSOCK(mode)
                else "a device"
            )
            raise ValueError(
                f"{os.fspath(path)} is {kind}, not a regular file; reading it could block forever"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
