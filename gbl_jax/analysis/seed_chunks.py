"""Analyses over a sweep's seeds, in chunks of bounded memory.

An analysis that maps a per-seed function over many seeds (a path's losses, a Hessian, a
surface's grid, a curve's training) runs it as one jitted ``jax.vmap`` over a chunk of seeds at a
time (``over_seeds``), the chunk sized to a byte budget (``analysis_chunk``), so memory stays
bounded however many seeds there are. The engine's sweeps chunk their runs in
``gbl_jax.engine.chunking``; this is the analysis layer's own counterpart.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import numpy as np

from gbl_jax.checks import require_int
from gbl_jax.engine.chunking import without_library_fusions

# Bytes of per-seed work (Hessians, Lanczos bases, a path's losses and outputs) in one compiled
# call of an analysis that maps over a sweep's seeds (``over_seeds``): a rough bound on memory.
ANALYSIS_CHUNK_BYTES = 256 * 2**20


def analysis_chunk(
    chunk_size: int | None,
    seeds: int,
    per_seed_bytes: int,
    where: str = "chunk_size",
    *,
    budget: int = ANALYSIS_CHUNK_BYTES,
) -> int:
    """Seeds per compiled call of ``over_seeds``: ``chunk_size`` when given (checked), else as
    many as keep ``per_seed_bytes`` each within ``budget``; at most ``seeds``."""
    if chunk_size is not None:
        return min(require_int(where, chunk_size, 1), seeds)
    return int(np.clip(budget // max(per_seed_bytes, 1), 1, seeds))


def over_seeds(fn: Callable, args: tuple, mapped: Sequence[bool], seeds: int, size: int):
    """``jax.vmap(fn)`` over the leading axis of the mapped args, in chunks of ``size`` seeds.

    The last chunk is padded by repeating the last seed, so every chunk has one shape and the
    jitted function compiles once; each chunk's results come to the host before the next runs,
    so memory is bounded by one chunk. Compiled without XLA:CPU's library fusions
    (``chunking.without_library_fusions``: jaxlib 0.10's miscompile them for Hessians of a
    softmax). Returns host numpy arrays of leading size ``seeds``.
    """
    options = dict(without_library_fusions(jax.devices()[0].platform))
    run = jax.jit(
        jax.vmap(fn, in_axes=tuple(0 if m else None for m in mapped)),
        compiler_options=options or None,
    )
    outs = []
    for lo in range(0, seeds, size):
        index = np.minimum(np.arange(lo, lo + size), seeds - 1)
        chunk = [
            jax.tree.map(lambda a: a[index], arg) if m else arg for arg, m in zip(args, mapped)
        ]
        outs.append(jax.tree.map(np.asarray, run(*chunk)))
    return jax.tree.map(lambda *a: np.concatenate(a)[:seeds], *outs)
