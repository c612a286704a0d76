"""Runs started, then continued from given params and optimizer state on given data keys.

What ``gbl.instability`` spawns (Frankle et al. 2020): parents start as ``train`` would start
them and advance in segments; at a step k copies continue with other data keys. Every run of a
call is one ``jax.vmap`` lane of one compiled program (the step count is traced: no recompile
per segment length or per run), in chunks of ``chunk_size`` runs sharded over the devices as a sweep's chunks are
(``chunking``); the last chunk is padded so every chunk has one shape.

A continued run follows ``train``'s data conventions (``gbl_jax.engine.training``): from step
``first`` on data key ``k``, epoch e's order is ``permutation(fold_in(k, e), N)`` and step t
takes slice ``t mod (N // batch_size)`` of it, so a run continued on its own key is the run
``train`` makes. Nothing is checked along the way: a run that diverges ends NaN.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gbl_jax.engine.chunking import auto_chunk_size, batched
from gbl_jax.engine.runconfig import RunConfig
from gbl_jax.engine.training import make_engine


class Runs(NamedTuple):
    """Runs between segments, stacked over a leading runs axis (device arrays)."""

    params: Any
    opt_state: Any


@functools.lru_cache(maxsize=16)
def _start_fn(cfg: RunConfig, size: int, devices: tuple):
    engine = make_engine(cfg)

    def start(k_init, k_data, x):
        state, _ = engine.start(k_init, k_data, {}, x)
        return Runs(state.params, state.opt_state)

    return batched(start, (0, 0, None), size, devices, "gbl_continuation_start")


@functools.lru_cache(maxsize=16)
def _resume_fn(cfg: RunConfig, size: int, devices: tuple):
    engine = make_engine(cfg)

    def resume(runs, k_data, x, y, first, count):
        params, opt_state, mean = engine.resume(
            runs.params, runs.opt_state, k_data, x, y, first, count
        )
        return Runs(params, opt_state), mean

    return batched(
        resume, (0, 0, None, None, None, None), size, devices, "gbl_continuation_segment"
    )


def _chunks(n: int, size: int):
    for lo in range(0, n, size):
        yield lo, np.minimum(np.arange(lo, lo + size), n - 1)


def _concat(parts, n: int):
    return jax.tree.map(lambda *a: jnp.concatenate(a)[:n], *parts)


def chunk_size_for(
    cfg: RunConfig, x: jax.Array, y: jax.Array, runs: int, chunk_size: int | None = None
) -> int:
    """Runs per compiled call: ``chunk_size`` (rounded up to a multiple of the device count),
    or the sweeps' default (``chunking.auto_chunk_size``)."""
    n_dev = len(jax.devices())
    if chunk_size is not None:
        return -(-max(1, min(int(chunk_size), runs)) // n_dev) * n_dev
    return auto_chunk_size(cfg, x, y, runs=runs, devices=tuple(jax.devices()))


def start(cfg: RunConfig, k_init: jax.Array, k_data: jax.Array, x: jax.Array, size: int) -> Runs:
    """Each run's initial params and optimizer state, as ``train`` draws them.

    Args:
      k_init, k_data: [runs] keys (``training.split_keys`` of each run's key).
      size: runs per compiled call, a multiple of the device count.
    """
    fn, n = _start_fn(cfg, size, tuple(jax.devices())), k_init.shape[0]
    return _concat([fn(k_init[i], k_data[i], x) for _, i in _chunks(n, size)], n)


def resume(
    cfg: RunConfig,
    runs: Runs,
    k_data: jax.Array,
    x: jax.Array,
    y: jax.Array,
    *,
    first: int,
    count: int,
    size: int,
) -> tuple[Runs, np.ndarray]:
    """``count`` more steps of every run from global step ``first`` on its key in ``k_data``.

    Returns:
      (the runs after the steps, [runs] their mean training loss over the steps).
    """
    n = k_data.shape[0]
    if count == 0:
        return runs, np.full((n,), np.nan, np.float32)
    fn = _resume_fn(cfg, size, tuple(jax.devices()))
    parts, means = [], []
    for _, i in _chunks(n, size):
        part, mean = fn(
            jax.tree.map(lambda a: a[i], runs),
            k_data[i],
            x,
            y,
            jnp.asarray(first, jnp.int32),
            jnp.asarray(count, jnp.int32),
        )
        parts.append(part)
        means.append(np.asarray(mean))
    return _concat(parts, n), np.concatenate(means)[:n]
