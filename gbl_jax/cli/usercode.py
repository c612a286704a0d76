"""The user's own model and data on the command line, and the fingerprints that pin them.

``--model module:function`` names a function that takes no arguments and returns a model (a
``gbl.Model``, or any object with ``init`` and ``apply``). ``--data FILE`` is a .npz or .csv
file (``gbl.problems.load``); ``--data module:function`` a function that takes no arguments and
returns a ``Data`` or an (x, y) pair. Modules are imported from the current folder first, then
from the installed packages, so a script beside the run is found without installing it.

What a run used is fingerprinted (SHA-256 of the data's arrays, of the model module's source
file, and of the params the model builds: their tree, shapes, dtypes and values at PRNGKey(0))
and stored in config.json, so ``--resume`` can refuse to mix chunks of two datasets or two
models. Every failure is a ``ValueError`` of one line naming the option; user code that calls
``sys.exit`` fails too, rather than ending the command as if it had succeeded.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from gbl_jax.checks import first_bad_index
from gbl_jax.data.data_record import Data
from gbl_jax.data.datasets import load
from gbl_jax.nets.models import check_model

SPEC = re.compile(r"([A-Za-z_][\w.]*):([A-Za-z_]\w*)")


def is_spec(text: str) -> bool:
    """True for ``module:function`` (and not an existing file of that name)."""
    return bool(SPEC.fullmatch(text)) and not Path(text).exists()


def import_function(spec: str, option: str) -> Callable:
    """The function ``module:function``, imported from the current folder or the packages."""
    match = SPEC.fullmatch(spec)
    if not match:
        raise ValueError(f"{option} {spec}: expected module:function (e.g. mymodels:cnn)")
    module_name, name = match.groups()
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.split(".")[0] == err.name.split(".")[0]:
            raise ValueError(
                f"{option} {spec}: no module named {module_name!r} in the current "
                f"folder ({here}) or the installed packages"
            ) from None
        raise ValueError(f"{option} {spec}: importing {module_name} failed: {err}") from None
    except SystemExit as err:
        raise ValueError(
            f"{option} {spec}: importing {module_name} called sys.exit({err.code!r})"
        ) from None
    except Exception as err:  # the user's module raised at import: say so in one line
        raise ValueError(
            f"{option} {spec}: importing {module_name} failed: {type(err).__name__}: {err}"
        ) from None
    fn = getattr(module, name, None)
    if not callable(fn):
        what = "is not callable" if fn is not None else "is not defined"
        raise ValueError(
            f"{option} {spec}: {name} {what} in {module.__name__} "
            f"({getattr(module, '__file__', '?')})"
        )
    return fn


def _call(fn: Callable, spec: str, option: str) -> Any:
    try:
        return fn()
    except SystemExit as err:  # would end the command with its code, as if all went well
        raise ValueError(f"{option} {spec}: {spec}() called sys.exit({err.code!r})") from None
    except Exception as err:
        raise ValueError(
            f"{option} {spec}: calling {spec}() failed: {type(err).__name__}: {err}"
        ) from None


def load_model(spec: str):
    """The model that ``module:function()`` returns, checked against the protocol."""
    model = _call(import_function(spec, "--model"), spec, "--model")
    try:
        check_model(model)
    except ValueError as err:
        raise ValueError(
            f"--model {spec}: returned {type(model).__name__}, not a model: {err}"
        ) from None
    return model


def not_a_file(path: str) -> str:
    """Why ``path`` is no data file: missing, a folder, a FIFO or another special file."""
    kind = next(
        (
            what
            for test, what in (
                (Path.is_dir, "a directory"),
                (Path.is_fifo, "a FIFO"),
                (Path.is_socket, "a socket"),
                (Path.is_block_device, "a device"),
                (Path.is_char_device, "a device"),
            )
            if test(Path(path))
        ),
        None,
    )
    if kind is None:
        return "no such file (or a module:function that names one)"
    return f"is {kind}, not a regular file (.npz or .csv)"


def load_data(spec: str) -> Data:
    """The data of ``--data``: a file (``problems.load``) or ``module:function()``."""
    if not is_spec(spec):
        if not Path(spec).is_file():
            raise ValueError(f"--data {spec}: {not_a_file(spec)}")
        return load(spec)
    data = _call(import_function(spec, "--data"), spec, "--data")
    if isinstance(data, Data):
        _check_arrays(spec, data.x, data.y, "")
        if data.test is not None:
            _check_arrays(spec, data.test.x, data.test.y, "test ")
        return data
    # a str or a dict of two would unpack into two names, not two arrays
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"--data {spec}: returned {type(data).__name__}; expected a "
            "gbl.problems.Data or an (x, y) pair"
        )
    x, y = _check_arrays(spec, data[0], data[1], "")
    return Data(x, y, None, spec.split(":")[1])


def _check_arrays(spec: str, x, y, split: str) -> tuple[np.ndarray, np.ndarray]:
    """x and y of ``--data module:function`` as arrays of real, finite numbers and one length."""
    arrays = []
    for name, a in (("x", x), ("y", y)):
        try:
            a = np.asarray(a)
        except Exception as err:  # noqa: BLE001 - whatever the object raises, one line
            raise ValueError(
                f"--data {spec}: {split}{name} is not an array ({type(err).__name__}: {err})"
            ) from None
        floating = jnp.issubdtype(a.dtype, jnp.floating)  # bfloat16 too
        if not (floating or a.dtype == np.bool_ or jnp.issubdtype(a.dtype, jnp.integer)):
            raise ValueError(
                f"--data {spec}: {split}{name} has dtype {a.dtype} (shape "
                f"{list(a.shape)}); it must hold real numbers"
            )
        if a.ndim == 0:
            raise ValueError(
                f"--data {spec}: {split}{name} is a single number; it must be an array [N, ...]"
            )
        if floating:
            bad = ~np.isfinite(a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32))
        if floating and bad.any():
            index = first_bad_index(bad)
            raise ValueError(
                f"--data {spec}: {split}{name}[{', '.join(map(str, index))}] = "
                f"{a[index].item()!r} is not finite; clean the data before training"
            )
        arrays.append(a)
    if arrays[0].shape[0] != arrays[1].shape[0]:
        raise ValueError(
            f"--data {spec}: {split}x {list(arrays[0].shape)} and y "
            f"{list(arrays[1].shape)} differ in length (axis 0)"
        )
    return arrays[0], arrays[1]


def data_fingerprint(data: Data) -> str:
    """SHA-256 of the data's arrays (x, y and the test split's), with their shapes and dtypes."""
    digest = hashlib.sha256()
    parts = [data.x, data.y]
    if getattr(data, "test", None) is not None:
        parts += [data.test.x, data.test.y]
    for a in parts:
        a = np.ascontiguousarray(np.asarray(a))
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def model_fingerprint(spec: str) -> str | None:
    """SHA-256 of the source file of the module that ``--model`` names (None if it has none)."""
    module = sys.modules.get(spec.split(":")[0])
    try:
        source = inspect.getsourcefile(module) if module is not None else None
    except TypeError:
        source = None
    if source is None or not Path(source).is_file():
        return None
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()


def params_fingerprint(params) -> tuple[str, dict[str, str]]:
    """What a model built, to pin it: (SHA-256 of every leaf's path, dtype, shape and bytes,
    {leaf path: "float32[2, 16]"}).

    ``params`` should be ``model.init(PRNGKey(0), x)``: a width read from another module or an
    environment variable, or a changed init, then changes the fingerprint even when the
    ``--model`` module's source does not.
    """
    import jax

    digest, shapes = hashlib.sha256(), {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = jax.tree_util.keystr(path)
        a = np.asarray(leaf)
        shapes[name] = f"{a.dtype}{list(a.shape)}"
        digest.update(f"{name} {shapes[name]}\n".encode())
        if a.dtype != object:  # an object leaf's bytes are addresses: its type stands for it
            digest.update(np.ascontiguousarray(a).tobytes())
        else:
            digest.update(type(leaf).__qualname__.encode())
    return digest.hexdigest(), shapes
