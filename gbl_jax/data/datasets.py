"""Real data: MNIST-1D and scikit-learn's digits, built offline, and a loader for .npz and .csv.

The data sets come from packages behind the extra ``pip install 'gbl_jax[data]'``; without it,
calling one raises an ImportError that names the extra. Each returns a ``Data`` whose ``test`` is
the held-out split. ``gbl.problems`` re-exports ``mnist1d``, ``digits`` and ``load``.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import importlib
import math
import os
import random
import threading
import warnings
import zipfile
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import jax.numpy as jnp
import numpy as np

from gbl_jax.checks import first_bad_index
from gbl_jax.data.data_record import Data
from gbl_jax.nets import heads

_INT32_MAX = np.iinfo(np.int32).max
_build_lock = threading.Lock()  # the RNG states saved and restored below are process-wide


def _require(package: str, distribution: str, caller: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise ImportError(
            f"gbl.problems.{caller} needs the {distribution} package, an optional "
            "extra: pip install 'gbl_jax[data]'"
        ) from err


@contextlib.contextmanager
def _global_rngs_kept():
    """Puts numpy's and ``random``'s global states back afterwards, whatever the body seeds."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _make(x, y, head, name: str, x_test, y_test) -> Data:
    test = Data(jnp.asarray(x_test), jnp.asarray(y_test), head, f"{name}_test")
    return Data(jnp.asarray(x), jnp.asarray(y), head, name, test=test)


@functools.lru_cache(maxsize=2)
def _mnist1d_arrays(shuffle_seq: bool) -> tuple[np.ndarray, ...]:
    """(x, y, x_test, y_test) from the package's own generator with its default arguments."""
    module = importlib.import_module("mnist1d.data")
    args = module.get_dataset_args()
    args.shuffle_seq = shuffle_seq
    # make_dataset seeds numpy's and random's global generators (np.random.seed, random.seed).
    with _build_lock, _global_rngs_kept():
        built = module.make_dataset(args)
    return (
        built["x"].astype(np.float32),
        built["y"].astype(np.int32),
        built["x_test"].astype(np.float32),
        built["y_test"].astype(np.int32),
    )


def mnist1d(*, shuffle_seq: bool = False) -> Data:
    """MNIST-1D (Greydanus 2020): ten 1-D digit templates, padded, sheared, shifted and noised.

    Built offline by the ``mnist1d`` package's generator with its default arguments (5000
    examples, seed 42; nothing downloaded or written) and kept in memory after the first call
    (about a second to build). The arrays are the package's, cast to float32 / int32. Numpy's and
    ``random``'s global states are as they were before the call.

    Args:
      shuffle_seq: the package's shuffled variant: one fixed permutation of the 40 positions for
        every example, which removes the spatial prior a convolution relies on.

    Returns:
      Data with x [4000, 40] float32, y [4000] int32 in [0, 10), head categorical(10), and test
      the held-out x [1000, 40], y [1000].

    References:
      Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024 (arXiv:2011.14439).
    """
    _require("mnist1d", "mnist1d", "mnist1d")
    x, y, x_test, y_test = _mnist1d_arrays(bool(shuffle_seq))
    name = "mnist1d_shuffled" if shuffle_seq else "mnist1d"
    return _make(x, y, heads.categorical(10), name, x_test, y_test)


def _digits_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) of the digits: a fixed permutation, its first n // 4 held out."""
    order = np.random.default_rng(0).permutation(n)
    return order[n // 4 :], order[: n // 4]


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, ...]:
    bunch = importlib.import_module("sklearn.datasets").load_digits()
    x, y = np.asarray(bunch.data, np.float64), np.asarray(bunch.target)
    train, test = _digits_split(len(y))
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a pixel constant on the training rows: 0, not NaN
    standard = ((x - mean) / std).astype(np.float32)
    y = y.astype(np.int32)
    return standard[train], y[train], standard[test], y[test]


def digits() -> Data:
    """scikit-learn's 8x8 handwritten digits (bundled with the package), standardized.

    A fixed split: ``np.random.default_rng(0).permutation(1797)``, its first 449 rows held out as
    ``test`` and the other 1348 for training. Each of the 64 pixels is standardized with the
    training rows' mean and standard deviation only (a pixel constant on the training rows is
    divided by 1), and the test rows with the same statistics.

    Returns:
      Data with x [1348, 64] float32, y [1348] int32 in [0, 10), head categorical(10), and test
      x [449, 64], y [449].

    References:
      Alpaydin & Kaynak, "Optical Recognition of Handwritten Digits", UCI repository (1998).
    """
    _require("sklearn", "scikit-learn", "digits")
    x, y, x_test, y_test = _digits_arrays()
    return _make(x, y, heads.categorical(10), "digits", x_test, y_test)


def _fail(path, message: str) -> NoReturn:
    raise ValueError(f"{os.fspath(path)}: {message}")


def _shape(a: np.ndarray) -> list[int]:
    return list(a.shape)


def _read_npz(path) -> dict[str, np.ndarray]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        _fail(path, "not a readable .npz archive (np.savez writes one)")
    if isinstance(archive, np.ndarray):
        _fail(path, "holds one unnamed array (an .npy file); save x and y with np.savez")
    with archive:
        names, arrays = list(archive.files), {}
        for name in ("x", "y", "x_test", "y_test"):
            if name in names:
                try:
                    arrays[name] = archive[name]
                except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
                    _fail(path, f"array {name} could not be read ({err})")
                except MemoryError as err:  # a small compressed file can declare terabytes
                    _fail(path, f"array {name} does not fit in memory ({err})")
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        _fail(
            path,
            f"lacks the array{'s' if len(missing) > 1 else ''} {' and '.join(missing)}; "
            f"it has {', '.join(names) if names else 'none'} (save x, y and optionally "
            "x_test, y_test)",
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, lack = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        _fail(path, f"has {have} but not {lack}; a test split needs both")
    for name, a in arrays.items():
        if a.dtype != np.bool_ and not (
            np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
        ):
            _fail(path, f"array {name} has dtype {a.dtype}; it must hold real numbers")
    return arrays


def declared_bytes(path: str | os.PathLike) -> int | None:
    """Bytes the arrays of a data file will take once read, from what the file declares, without
    reading its data: the .npy headers of a .npz's x, y, x_test and y_test (a small compressed
    file can declare gigabytes); for a .csv, float64 for every cell it can hold (a cell takes at
    least 2 bytes, "0,"). None when the file cannot tell (``load`` then says what is wrong)."""
    path = Path(path)
    try:
        if not path.is_file():  # a FIFO would block the zip reader
            return None
        if path.suffix.lower() == ".csv":
            return 8 * (path.stat().st_size // 2)
        total = 0
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            for name in ("x", "y", "x_test", "y_test"):
                if f"{name}.npy" not in members:
                    continue
                with archive.open(f"{name}.npy") as f:
                    version = np.lib.format.read_magic(f)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(f)
                total += math.prod(shape) * dtype.itemsize
        return total
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _number(path, text: str, line: int, column: int) -> float:
    try:
        return float(text)
    except ValueError:
        what = "is empty" if not text else f"is {text!r}, not a number"
        _fail(path, f"line {line}, column {column} {what}")


def _read_csv(path) -> dict[str, np.ndarray]:
    try:  # utf-8-sig: Excel and Windows tools start a UTF-8 file with a byte order mark
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [
                (i, [cell.strip() for cell in row])
                for i, row in enumerate(csv.reader(f), 1)
                if any(cell.strip() for cell in row)
            ]
    except UnicodeDecodeError as err:
        _fail(path, f"not a text file ({err})")
    if rows and not any(_is_number(cell) for cell in rows[0][1]):
        rows = rows[1:]  # a header line
    elif len(rows) > 1 and rows[0][1] == [str(i) for i in range(len(rows[0][1]))]:
        # pandas' to_csv(index=False) names a frame's unnamed columns 0, 1, ..., n-1
        warnings.warn(
            f"{os.fspath(path)}: line {rows[0][0]} ({','.join(rows[0][1])}) taken as "
            "a header (pandas' default column names), not as data; to keep it as "
            "data, add a header line of names above it",
            UserWarning,
            stacklevel=3,
        )
        rows = rows[1:]
    if not rows:
        _fail(path, "has no data rows")
    width = len(rows[0][1])
    if width < 2:
        _fail(
            path,
            f"line {rows[0][0]} has {width} column; a .csv needs x columns and a last column y",
        )
    values = []
    for line, cells in rows:
        if len(cells) != width:
            _fail(path, f"line {line} has {len(cells)} columns, line {rows[0][0]} has {width}")
        values.append([_number(path, cell, line, c) for c, cell in enumerate(cells, 1)])
        bad = [c for c, v in enumerate(values[-1], 1) if not math.isfinite(v)]
        if bad:
            _fail(
                path,
                f"line {line}, column {bad[0]} is {cells[bad[0] - 1]!r}, not finite; "
                "clean the data before training",
            )
    table = np.asarray(values, np.float64)
    return {"x": table[:, :-1], "y": table[:, -1]}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _finite(path, name: str, original: np.ndarray, cast: np.ndarray) -> None:
    bad = ~np.isfinite(cast)
    if bad.any():
        index = first_bad_index(bad)
        where = ", ".join(map(str, index))
        value = original[index].item()
        why = "not finite" if not np.isfinite(value) else "beyond float32's range"
        count = int(bad.sum())
        more = f", the first of {count}" if count > 1 else ""
        _fail(path, f"{name}[{where}] = {value!r} is {why}{more}; clean the data before training")


def _is_labels(y: np.ndarray) -> bool:
    """Whether y reads as class labels: one axis, whole numbers only."""
    if y.ndim != 1:
        return False
    if y.dtype == np.bool_ or np.issubdtype(y.dtype, np.integer):
        return True
    return bool(np.isfinite(y).all() and np.array_equal(y, np.round(y)))


def load(path: str | os.PathLike) -> Data:
    """A data set from a file: ``.npz`` (arrays x, y and optionally x_test, y_test) or ``.csv``.

    A ``.csv`` (UTF-8, with or without a byte order mark) holds numbers only, one example a row,
    an optional header line, the last column y and the others x; it has no test split. The first
    line is a header when no cell of it is a number, or when it reads ``0,1,...,n-1`` (the column
    names pandas' ``to_csv(index=False)`` writes for an unnamed frame; a UserWarning says so).

    x becomes float32 [N, ...] (it needs a feature axis: save one feature as [N, 1]). A 1-D y
    whose values are all whole numbers (in train and test alike) becomes int32 class labels [N]
    with head categorical(K), K = 1 + the largest label of either split (no head if K < 2).
    Otherwise y becomes float32: [N] as [N, 1] with head gaussian(1), [N, D] as it is with head
    gaussian(D); save whole-number regression targets as [N, 1] to keep them targets.

    Args:
      path: the file; its stem names the Data (and ``<stem>_test`` its test split).

    Returns:
      Data(x, y, head, name, test=Data or None).

    Raises:
      ValueError: naming the file and what is wrong with it: missing, empty, an unknown suffix, an
        array missing (with the arrays it has), mismatched shapes (both named), a cell that is not
        a number (its line and column), a NaN or inf (its first index).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        _fail(path, "no such file")
    if not path.is_file():
        _fail(path, "not a file")
    if suffix not in (".npz", ".csv"):
        _fail(
            path,
            f"unknown suffix {path.suffix!r}; load reads .npz (arrays x, y, optionally "
            "x_test, y_test) and .csv (numbers, the last column y)",
        )
    if path.stat().st_size == 0:
        _fail(path, "is empty")
    arrays = _read_npz(path) if suffix == ".npz" else _read_csv(path)
    return _to_data(path, arrays)


def _to_data(path: Path, arrays: dict[str, np.ndarray]) -> Data:
    pairs = [("x", "y")] + ([("x_test", "y_test")] if "x_test" in arrays else [])
    for xn, yn in pairs:
        x, y = arrays[xn], arrays[yn]
        if x.ndim < 2:
            _fail(
                path,
                f"{xn} has shape {_shape(x)}; it must be [N, features...] (save a single "
                "feature as [N, 1])",
            )
        if y.ndim not in (1, 2):
            _fail(
                path,
                f"{yn} has shape {_shape(y)}; it must be [N] (labels or targets) or "
                "[N, D] (targets)",
            )
        if x.shape[0] != y.shape[0]:
            _fail(path, f"{xn} {_shape(x)} and {yn} {_shape(y)} differ in length (axis 0)")
        if x.shape[0] == 0:
            _fail(path, f"{xn} {_shape(x)} has no examples")
    if len(pairs) == 2:
        for name in ("x", "y"):
            train, test = arrays[name], arrays[f"{name}_test"]
            if train.shape[1:] != test.shape[1:]:
                _fail(
                    path,
                    f"{name} {_shape(train)} and {name}_test {_shape(test)} differ past axis 0",
                )

    labels = all(_is_labels(arrays[yn]) for _, yn in pairs)
    out = {}
    for name, a in arrays.items():
        if name.startswith("x") or not labels:
            with np.errstate(over="ignore"):  # _finite names the value that overflowed
                out[name] = a.astype(np.float32)
            _finite(path, name, a, out[name])
    if labels:
        for _, yn in pairs:
            y = arrays[yn]
            bad = (y < 0) | (y > _INT32_MAX)
            if bad.any():
                i = int(np.argmax(bad))
                _fail(
                    path,
                    f"{yn} holds whole numbers, read as class labels 0..K-1, but "
                    f"{yn}[{i}] = {y[i].item()!r}; relabel them, or save y as [N, 1] for "
                    "regression",
                )
            out[yn] = y.astype(np.int32)
        classes = 1 + max(int(out[yn].max()) for _, yn in pairs)
        head = heads.categorical(classes) if classes >= 2 else None
    else:
        for _, yn in pairs:
            if out[yn].ndim == 1:
                out[yn] = out[yn][:, None]
        head = heads.gaussian(out["y"].shape[1])
    name = path.stem
    if len(pairs) == 2:
        return _make(out["x"], out["y"], head, name, out["x_test"], out["y_test"])
    return Data(jnp.asarray(out["x"]), jnp.asarray(out["y"]), head, name)
