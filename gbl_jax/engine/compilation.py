"""Compile once per configuration, not per object.

``train`` and ``sweep`` key their compiled functions on the run's configuration, whose model,
optimizer, loss and metrics are first made ``canonical``: an object equal in value to one seen
before (a new ``optax.adam(0.05)``, a rebuilt ``gbl.mlp``, a re-run notebook cell) is replaced by
that earlier object, so the second call finds the compiled program instead of tracing and
compiling again. Objects that cannot be compared by value (flax and equinox modules, class
instances) are compared by identity; for those, JAX's persistent compilation cache skips XLA's
compile (tracing remains):

  gbl.enable_compilation_cache()             # ~/.cache/gbl_jax/xla (or $XDG_CACHE_HOME)
  gbl.enable_compilation_cache("/scratch/xla")

The command line turns it on by default (``--no-compile-cache`` turns it off).
``count_compiles()`` counts XLA compilations in a block (for tests and benchmarks)."""

from __future__ import annotations

import contextlib
import dis
import functools
import hashlib
import os
import sys
import sysconfig
import types
from pathlib import Path
from typing import Iterator

import jax
import numpy as np
from jax.experimental.compilation_cache import compilation_cache as _compilation_cache

_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT = "/jax/compilation_cache/cache_hits"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gbl_jax/xla``, or ``~/.cache/gbl_jax/xla``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gbl_jax" / "xla"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Turns on JAX's persistent compilation cache in ``path``; returns the folder.

    Every compiled program is stored, however fast it compiled (JAX's default keeps only those
    over a second, and most of a small sweep's programs take less).
    """
    folder = Path(path) if path is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if getattr(jax.config, "jax_compilation_cache_dir", None) != str(folder):
        # JAX opens its cache at the first compilation; one opened elsewhere (an earlier call,
        # $JAX_COMPILATION_CACHE_DIR) is closed so the next compilation opens this folder
        _compilation_cache.reset_cache()
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


class CompileCount:
    """What was compiled inside a ``count_compiles`` block.

    Attributes:
      names: the name of every program XLA compiled (eager operations included).
      cache_hits: programs found in the persistent cache instead of compiled.
    """

    def __init__(self):
        self.names: list[str] = []
        self.cache_hits = 0

    @property
    def compiled(self) -> int:
        """Every XLA compilation, eager operations (a ``jax.random.split``) included."""
        return len(self.names)

    @property
    def training(self) -> int:
        """Compilations of gbl_jax's training programs (named ``gbl_...``)."""
        return sum("gbl_" in name for name in self.names)

    def __repr__(self) -> str:
        training = sorted({name for name in self.names if "gbl_" in name})
        return (
            f"CompileCount(compiled={self.compiled}, training={self.training}, "
            f"cache_hits={self.cache_hits}"
            + (f", training programs={training}" if training else "")
            + ")"
        )


_ACTIVE: list[CompileCount] = []
_LISTENING = False


def _on_duration(event: str, duration: float, **kwargs) -> None:
    if event == _BACKEND_COMPILE:
        for counter in _ACTIVE:
            counter.names.append(str(kwargs.get("fun_name", "")))


def _on_event(event: str, **kwargs) -> None:
    if event == _CACHE_HIT:
        for counter in _ACTIVE:
            counter.cache_hits += 1


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileCount]:
    """Counts XLA compilations inside the block (a cache hit on disk is not a compilation)."""
    global _LISTENING
    if not _LISTENING:
        jax.monitoring.register_event_duration_secs_listener(_on_duration)
        jax.monitoring.register_event_listener(_on_event)
        _LISTENING = True
    counter = CompileCount()
    _ACTIVE.append(counter)
    try:
        yield counter
    finally:
        _ACTIVE.remove(counter)


# ---- equal in value, compiled once --------------------------------------------------------------

_CANONICAL_SIZE = 256
# fingerprint -> (the first object seen with it, the objects its fingerprint names by id: kept
# alive while the entry lives, so no id in a stored fingerprint is reused by another object)
_canonical: dict = {}
_MUTABLE = (list, dict, set, bytearray, types.SimpleNamespace)
_LIBRARY_PATHS = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)


class _Unshareable(Exception):
    """A part whose value could change after the call (a list, a user's object): no sharing."""


def _is_module_level(fn) -> bool:
    """A function reachable by its module and qualified name (the same object every time)."""
    qualname = getattr(fn, "__qualname__", "")
    target = sys.modules.get(getattr(fn, "__module__", None) or "")
    if target is None or "<" in qualname:
        return False
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return target is fn


@functools.lru_cache(maxsize=1024)
def _from_library(module_name: str | None) -> bool:
    """Whether a module is installed code (the standard library, site-packages, gbl_jax), whose
    functions and objects a user does not redefine between calls; a notebook's or a script's
    own module is not."""
    if not module_name:
        return False
    if module_name.split(".")[0] in ("gbl_jax", "builtins", "jax", "jaxlib", "numpy"):
        return True
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    return bool(path) and os.path.abspath(str(path)).startswith(_LIBRARY_PATHS)


@functools.lru_cache(maxsize=4096)
def _global_names(code) -> tuple[str, ...]:
    """Names a code object (and the code objects nested in it) looks up as globals."""
    names = [
        ins.argval
        for ins in dis.get_instructions(code)
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    ]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    return tuple(dict.fromkeys(names))


def _array_key(a: np.ndarray, kind: str, weak: bool):
    return (kind, a.dtype.str, a.shape, weak, hashlib.blake2b(a.tobytes(), digest_size=16).digest())


def _fingerprint(obj, keep: list, seen: frozenset = frozenset(), depth: int = 0):
    """A hashable value equal only for objects that compute the same thing, whatever happens to
    them after the call; raises ``_Unshareable`` where that cannot be promised.

    By value: atoms (floats by their bits, so 0.0 and -0.0 differ), exact tuples and
    NamedTuples, exact ``functools.partial``, JAX arrays and read-only numpy arrays (type, dtype,
    shape, weak type and a digest of the bytes), and functions defined in user code: their code,
    defaults, closure values and the globals their code loads (so ``optax.adam(0.05)`` built twice
    is one value, and a helper redefined or a global changed in a notebook makes another). By
    identity (appended to ``keep``): classes, modules, and functions and objects of installed
    libraries. Unshareable: mutable containers, writable numpy arrays, tracers and instances of
    the user's own classes, whose state a later call could see changed.
    """
    kind = type(obj)
    if kind in (type(None), bool, int, str, bytes):
        return (kind, obj)
    if kind is float:
        return (kind, obj.hex())
    if kind is complex:
        return (kind, obj.real.hex(), obj.imag.hex())
    if id(obj) in seen or depth > 24:
        raise _Unshareable
    seen = seen | {id(obj)}
    rec = lambda o: _fingerprint(o, keep, seen, depth + 1)  # noqa: E731
    if isinstance(obj, (type, types.ModuleType)):
        keep.append(obj)
        return ("id", id(obj))
    if isinstance(obj, _MUTABLE):
        raise _Unshareable
    if kind is tuple or (
        isinstance(obj, tuple) and hasattr(kind, "_fields") and not getattr(obj, "__dict__", None)
    ):  # NamedTuples, no attributes
        return (kind, tuple(rec(o) for o in obj))
    if isinstance(obj, jax.Array):
        if isinstance(obj, jax.core.Tracer):
            raise _Unshareable
        return _array_key(np.asarray(obj), "jax", bool(getattr(obj, "weak_type", False)))
    if isinstance(obj, np.ndarray):
        if obj.flags.writeable or obj.dtype.hasobject:
            raise _Unshareable
        return _array_key(obj, "numpy", False)
    if isinstance(obj, np.generic) and not isinstance(obj, np.object_):
        return _array_key(np.asarray(obj), kind.__name__, False)
    if isinstance(obj, np.dtype):
        return ("dtype", obj.str)
    if kind is functools.partial:
        return (kind, rec(obj.func), rec(obj.args), rec(obj.keywords or None))
    if isinstance(obj, types.MethodType):
        return ("method", rec(obj.__func__), rec(obj.__self__))
    if isinstance(obj, types.FunctionType) and not (
        _is_module_level(obj) and _from_library(obj.__module__)
    ):
        code = obj.__code__
        cells = tuple(
            rec(c.cell_contents) if _filled(c) else ("empty",) for c in (obj.__closure__ or ())
        )
        names = tuple(
            (n, rec(obj.__globals__[n])) for n in _global_names(code) if n in obj.__globals__
        )
        kwdefaults = tuple(sorted((obj.__kwdefaults__ or {}).items()))
        return ("function", code, rec(obj.__defaults__), rec(kwdefaults), cells, names)
    if _from_library(getattr(kind, "__module__", None)) or isinstance(obj, types.FunctionType):
        keep.append(obj)
        return ("id", id(obj))
    raise _Unshareable


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def canonical(obj):
    """``obj``, or an earlier object equal to it in value (see ``_fingerprint``).

    The run configuration holds the canonical model, optimizer, loss and metrics, so a second
    ``sweep`` with a new ``optax.adam(0.05)`` or a rebuilt ``gbl.mlp`` finds the compiled program
    of the first instead of tracing and compiling again. Objects that cannot be promised equal
    (flax and equinox modules, the user's own classes, closures over lists or dicts such as
    ``optax.inject_hyperparams``'s) stay their own.
    """
    keep: list = []
    try:
        key = _fingerprint(obj, keep)
    except _Unshareable:
        return obj
    if key[0] == "id":
        return obj
    found = _canonical.get(key)
    if found is not None:
        return found[0]
    _canonical[key] = (obj, keep)
    if len(_canonical) > _CANONICAL_SIZE:
        _canonical.pop(next(iter(_canonical)))
    return obj
