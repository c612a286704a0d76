"""Compile once per configuration, not per object: JAX's persistent compilation cache.

``train`` and ``sweep`` reuse their compiled functions while the model, optimizer and loss are
the same Python objects. Rebuilding them (re-running a notebook cell that calls
``optax.adam(0.05)``) makes new objects, so JAX traces again; with the persistent cache on, XLA
finds the compiled program on disk by the traced computation's fingerprint and skips compiling.

  gbl.enable_compilation_cache()             # ~/.cache/gbl_jax/xla (or $XDG_CACHE_HOME)
  gbl.enable_compilation_cache("/scratch/xla")

The command line turns it on by default (``--no-compile-cache`` turns it off).
``count_compiles()`` counts XLA compilations in a block (for tests and benchmarks).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import jax

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
