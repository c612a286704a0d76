"""Init sensitivity: train one model from many random initializations at once.

SGD on a non-convex loss has no convergence guarantee and depends on where it starts (section
6.2); ``sweep`` measures that dependence and ``spread`` summarizes it.

Execution. Seeds run in chunks of ``chunk_size``: each chunk is one compiled call of
``jax.vmap`` of the training function over that many keys (a chunk of one is the plain
single-seed run), sharded across ``devices`` with ``shard_map``. Chunks are dispatched from
Python one ahead of the one being gathered to the host, so memory is bounded by one or two chunks
whatever the number of seeds. The last chunk is padded to the full size (no recompile) and the
padding dropped.

The default chunk size comes from the model. On CPU, a seed whose own layers are large
(activations over ``CPU_LOOP_ABOVE`` bytes) already keeps the core busy, and batching seeds only
adds cache pressure and slower batched-matmul kernels, so such seeds run one per call (a loop);
smaller seeds are vmapped, as many as keep one chunk's activations near ``CPU_CACHE_BUDGET``.
On an accelerator the chunk is as large as a quarter of the device memory allows.
``chunk_size=`` overrides it. Measurements behind these constants: BENCHMARKS.md.

Several hosts: start each process with ``jax.distributed.initialize()`` and give each a disjoint
``seed_range`` (for example ``jax.process_index()``'s share) with ``devices=jax.local_devices()``;
seed i is the same run whichever process computes it, so the per-host results concatenate.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gbl_jax.costs import nll
from gbl_jax.nets import Model
from gbl_jax.training import Loss, check_config, make_run

try:  # jax >= 0.6
    from jax import shard_map as _shard_map

    _NO_CHECK = {"check_vma": False}
except ImportError:  # pragma: no cover - older jax
    from jax.experimental.shard_map import shard_map as _shard_map

    _NO_CHECK = {"check_rep": False}

CPU_CACHE_BUDGET = 16 * 2**20   # bytes of activations per vmapped chunk on CPU
CPU_LOOP_ABOVE = 128 * 2**10    # per-seed activation bytes above which CPU runs seeds one by one
MAX_CHUNK = 65536


class SweepChunk(NamedTuple):
    """Results for seeds ``start`` to ``stop`` (host numpy arrays)."""

    start: int
    stop: int
    final_loss: np.ndarray
    diverged: np.ndarray
    losses: np.ndarray
    params: Any


class SweepResult(NamedTuple):
    """What ``sweep`` returns (host numpy arrays).

    Attributes:
      final_loss: [seeds] full-data loss after training (NaN where diverged).
      diverged: [seeds] bool: the training loss, the params or the final loss went non-finite.
      losses: [seeds, steps // log_every] mean training loss over each window of log_every steps.
      keys: [seeds, ...] the key data of each seed: ``jax.random.split(key, seeds)[i]``; pass
        ``jax.random.wrap_key_data(keys[i])`` (or the raw key) to ``train`` to rerun seed i.
      params: stacked final params [seeds, ...] if ``keep_params``, else None.
      log_every: steps per logged loss.
      chunk_size: seeds per compiled call.
      wall_s: wall-clock seconds, compile included.
    """

    final_loss: np.ndarray
    diverged: np.ndarray
    losses: np.ndarray
    keys: np.ndarray
    params: Any
    log_every: int
    chunk_size: int
    wall_s: float


def _size_floats(model: Model, in_dim: int, batch: int) -> tuple[int, int]:
    """(parameter count, floats of layer outputs one forward pass makes: batch x (in + widths))."""
    shapes = jax.eval_shape(lambda k: model.init(k, in_dim), jax.random.PRNGKey(0))
    params = sum(math.prod(s.shape) for s in jax.tree.leaves(shapes))
    widths = [layer["w"].shape[1] for layer in shapes["hidden"]] + [shapes["head"]["w"].shape[1]]
    return params, batch * (in_dim + sum(widths))


def _device_budget(device) -> int | None:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return stats["bytes_limit"] // 4
    return None


def auto_chunk_size(model: Model, data, *, seeds: int, steps: int, batch_size: int | None,
                    log_every: int, devices: Sequence[Any]) -> int:
    """The default number of seeds per compiled call (a multiple of ``len(devices)``).

    CPU: one seed per device when a seed's activations exceed ``CPU_LOOP_ABOVE`` (measured: a
    2-128-1 net on 256 points runs fastest as a loop, and vmaps of 2 to 64 such seeds are slower
    per seed); otherwise round(CPU_CACHE_BUDGET / per-seed activation bytes) to a power of two
    (a 2-8-1 net runs ~1.4x faster vmapped than looped). Accelerators: a quarter of device
    memory over a per-seed estimate of params, optimizer state, gradients and activations.
    Always capped by memory, by ``MAX_CHUNK`` and by the seed count.
    """
    x, _ = data
    n, in_dim = x.shape
    bs = n if batch_size is None else batch_size
    n_params, act_floats = _size_floats(model, in_dim, bs)
    act_bytes = 4 * 3 * act_floats   # forward, backward, temporaries
    seed_bytes = 4 * 8 * n_params + act_bytes + 4 * (steps // log_every)
    n_dev = len(devices)
    budget = _device_budget(devices[0])
    if devices[0].platform == "cpu" or budget is None:
        if act_bytes > CPU_LOOP_ABOVE:
            per_device = 1
        else:
            per_device = 2 ** round(math.log2(max(CPU_CACHE_BUDGET / act_bytes, 1)))
        per_device = min(per_device, max(1, (2**30) // seed_bytes))
    else:
        per_device = max(1, budget // seed_bytes)
    per_device = min(per_device, MAX_CHUNK, -(-seeds // n_dev))
    return max(1, per_device) * n_dev


@functools.lru_cache(maxsize=32)
def _chunk_fn(model, optimizer, loss, steps, batch_size, log_every, chunk_size, devices,
              keep_params):
    run = make_run(model, optimizer, loss, steps, batch_size, log_every)

    def one(key, x, y):
        params, losses, final, diverged = run(key, x, y)
        return (params if keep_params else None), losses, final, diverged

    if chunk_size == 1:
        return jax.jit(lambda keys, x, y: jax.tree.map(lambda a: a[None], one(keys[0], x, y)))
    batched = jax.vmap(one, in_axes=(0, None, None))
    if len(devices) == 1:
        return jax.jit(batched)
    mesh = Mesh(np.asarray(devices), ("seeds",))
    seeds, rep = PartitionSpec("seeds"), PartitionSpec()
    sharded = _shard_map(batched, mesh=mesh, in_specs=(seeds, rep, rep), out_specs=seeds,
                         **_NO_CHECK)
    return jax.jit(sharded, in_shardings=(NamedSharding(mesh, seeds), NamedSharding(mesh, rep),
                                          NamedSharding(mesh, rep)))


def _default_log_every(steps: int) -> int:
    return max(1, -(-steps // 100))


class SweepPlan(NamedTuple):
    """A validated sweep: everything fixed before the first chunk runs (see ``plan_sweep``)."""

    x: jax.Array
    y: jax.Array
    keys: jax.Array
    start: int
    stop: int
    log_every: int
    chunk_size: int
    devices: tuple
    fn: Callable

    def chunk_starts(self) -> range:
        return range(self.start, self.stop, self.chunk_size)


def plan_sweep(model: Model, optimizer: optax.GradientTransformation, data, *, key: jax.Array,
               seeds: int, steps: int, batch_size: int | None = None, loss: Loss = nll,
               log_every: int | None = None, chunk_size: int | None = None,
               keep_params: bool = False, devices: Sequence[Any] | None = None,
               seed_range: tuple[int, int] | None = None) -> SweepPlan:
    """Validates a sweep's arguments (as ``sweep``) and resolves its defaults; compiles nothing."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    if log_every is None:
        log_every = _default_log_every(steps) if isinstance(steps, int) and steps >= 1 else 1
    x, y = check_config(model, optimizer, data, key=key, steps=steps, batch_size=batch_size,
                        loss=loss, log_every=log_every)
    devices = tuple(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must not be empty")
    start, stop = (0, seeds) if seed_range is None else tuple(seed_range)
    if not 0 <= start < stop <= seeds:
        raise ValueError(f"seed_range must satisfy 0 <= start < stop <= seeds ({seeds}), got "
                         f"{seed_range}")
    if chunk_size is None:
        chunk_size = auto_chunk_size(model, (x, y), seeds=stop - start, steps=steps,
                                     batch_size=batch_size, log_every=log_every, devices=devices)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1 \
            or chunk_size % len(devices):
        raise ValueError(f"chunk_size must be a positive multiple of the device count "
                         f"({len(devices)}), got {chunk_size!r}")
    fn = _chunk_fn(model, optimizer, loss, steps, batch_size, log_every, chunk_size, devices,
                   keep_params)
    return SweepPlan(x, y, jax.random.split(key, seeds), start, stop, log_every, chunk_size,
                     devices, fn)


def run_plan(plan: SweepPlan, skip: Callable[[int], bool] = lambda start: False
             ) -> Iterator[SweepChunk]:
    """Runs a plan chunk by chunk, yielding each ``SweepChunk`` once it is on the host.

    ``skip(start)`` leaves out chunks already done (resuming). A chunk's results do not depend
    on which other chunks run, so a resumed sweep equals an uninterrupted one.
    """
    size = plan.chunk_size

    def dispatch(lo):
        hi = min(lo + size, plan.stop)
        chunk_keys = plan.keys[lo:hi]
        if hi - lo < size:   # pad with copies of the last key; dropped in gather
            pad = jnp.repeat(chunk_keys[-1:], size - (hi - lo), axis=0)
            chunk_keys = jnp.concatenate([chunk_keys, pad])
        return lo, hi, plan.fn(chunk_keys, plan.x, plan.y)

    def gather(lo, hi, out):
        params, losses, final, diverged = jax.device_get(out)
        m = hi - lo
        params = None if params is None else jax.tree.map(lambda a: a[:m], params)
        return SweepChunk(lo, hi, final[:m], diverged[:m], losses[:m], params)

    pending = None
    for lo in plan.chunk_starts():
        if skip(lo):
            continue
        launched = dispatch(lo)   # async: runs while the previous chunk is copied to the host
        if pending is not None:
            yield gather(*pending)
        pending = launched
    if pending is not None:
        yield gather(*pending)


def key_data(keys: jax.Array) -> np.ndarray:
    """Raw uint32 data of a key array (typed or legacy keys alike)."""
    if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        keys = jax.random.key_data(keys)
    return np.asarray(keys)


def sweep(model: Model, optimizer: optax.GradientTransformation, data, *, key: jax.Array,
          seeds: int, steps: int, batch_size: int | None = None, loss: Loss = nll,
          log_every: int | None = None, chunk_size: int | None = None, keep_params: bool = False,
          devices: Sequence[Any] | None = None, seed_range: tuple[int, int] | None = None,
          progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Trains ``model`` from ``seeds`` random initializations; seed i is ``train(key=keys[i])``.

    Args:
      model, optimizer, data, steps, batch_size, loss: as for ``gbl.train``.
      key: base key; seed i uses ``jax.random.split(key, seeds)[i]``.
      seeds: number of initializations.
      log_every: steps per logged loss (default: about 100 points per curve).
      chunk_size: seeds per compiled call (default: ``auto_chunk_size``).
      keep_params: also return every seed's final params (memory grows with seeds).
      devices: devices to shard the seed axis over (default: all of ``jax.devices()``).
      seed_range: (start, stop) to run only those seeds (for several hosts).
      progress: called as ``progress(seeds_done, seeds_total)`` after each chunk.

    Returns:
      A ``SweepResult``; its rows are seeds ``seed_range[0]`` to ``seed_range[1]``.

    References:
      Goodfellow, Bengio & Courville (2016), section 6.2 (sensitivity to initial parameters).
    """
    begin = time.perf_counter()
    plan = plan_sweep(model, optimizer, data, key=key, seeds=seeds, steps=steps,
                      batch_size=batch_size, loss=loss, log_every=log_every,
                      chunk_size=chunk_size, keep_params=keep_params, devices=devices,
                      seed_range=seed_range)
    chunks = []
    for chunk in run_plan(plan):
        chunks.append(chunk)
        if progress is not None:
            progress(chunk.stop - plan.start, plan.stop - plan.start)
    params = None
    if keep_params:
        params = jax.tree.map(lambda *a: np.concatenate(a), *[c.params for c in chunks])
    return SweepResult(
        final_loss=np.concatenate([c.final_loss for c in chunks]),
        diverged=np.concatenate([c.diverged for c in chunks]),
        losses=np.concatenate([c.losses for c in chunks]),
        keys=key_data(plan.keys[plan.start:plan.stop]), params=params,
        log_every=plan.log_every, chunk_size=plan.chunk_size,
        wall_s=time.perf_counter() - begin)
