"""How a sweep's runs become compiled calls: chunk sizes, vmap or side by side, sharding.

A chunk of ``chunk_size`` runs is one compiled call. Each device takes ``chunk_size / devices``
of them (``shard_map`` over the devices): vmapped, or, for a few large runs on CPU, side by side
(separate unbatched loops in one program), or alone (one run per device is the plain single
run). ``one_shot_fn`` builds the call of a whole run; ``segment_fns`` the pieces of a
compacted run to convergence (start, advance a segment, finish), as ``sweeps`` uses them.

The default chunk size comes from the compiled step itself (the bytes of every intermediate of
one run's gradient step, read from its jaxpr), whatever the params' layout. On CPU, a run whose
step is large already keeps the core busy, and batching runs only adds cache pressure and slower
batched-matmul kernels, so such runs are not vmapped: ``CPU_SIDE_BY_SIDE`` of them go in one
program as separate, unbatched loops (each run's arithmetic is the single run's, bit for bit);
smaller ones are vmapped, as many as keep one chunk near ``CPU_CACHE_BUDGET``. On an accelerator
the chunk is as large as a quarter of the device memory allows. Over a sweep's seeds, analyses
chunk their own work (``gbl_jax.analysis.seed_chunks``). Measurements behind these constants:
BENCHMARKS.md ("Notes moved from chunking.py").
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from gbl_jax.engine.runconfig import RunConfig
from gbl_jax.engine.seeds_last import vmap_last
from gbl_jax.engine.training import make_engine, probe_options
from gbl_jax.nets.models import apply_model, is_stochastic

try:  # jax >= 0.6
    from jax import shard_map as _shard_map

    _NO_CHECK = {"check_vma": False}
except ImportError:  # pragma: no cover - older jax
    from jax.experimental.shard_map import shard_map as _shard_map

    _NO_CHECK = {"check_rep": False}

CPU_CACHE_BUDGET = 16 * 2**20  # bytes of step intermediates per vmapped chunk on CPU
# Per-run step bytes above which CPU runs are not vmapped: between the benchmark's small and
# large nets under every jax version measured (the count follows the jaxpr jax traces).
CPU_LOOP_ABOVE = 384 * 2**10
CPU_SIDE_BY_SIDE = 4  # such runs per device and call, as separate loops in one program
# Per-run step bytes at or below which CPU runs of a full-batch, deterministic model go
# seeds-last (``gbl_jax.engine.seeds_last``): the tiny nets, which measured faster so.
SEEDS_LAST_AT_MOST = 192 * 2**10
# Seeds-last chunks hold this many times CPU_CACHE_BUDGET: their loops run over longer minor
# axes, which XLA:CPU also splits between cores.
SEEDS_LAST_CHUNKS = 4
MAX_CHUNK = 65536
# A vmapped CPU chunk whose step intermediates (all its runs) reach this many bytes is split
# into one group of runs per core a device has, each group its own vmapped loop in the same
# program: XLA:CPU runs independent loops on separate threads, while one vmapped loop of small
# batched matmuls keeps to about one core (BENCHMARKS.md, "Real data: MNIST-1D"). Below it the
# compile time a second copy of the loop costs would outweigh the gain.
CPU_GROUPS_ABOVE = 8 * 2**20
SEGMENTS = 16  # segments of the budget between repacks (run to convergence)


def tree_bytes(tree) -> int:
    """Bytes of a pytree of arrays (or of their shapes)."""
    return sum(math.prod(a.shape) * np.dtype(a.dtype).itemsize for a in jax.tree.leaves(tree))


def _jaxpr_bytes(jaxpr) -> int:
    """Bytes of every value an equation of ``jaxpr`` (and its sub-jaxprs) produces."""
    total = 0
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            aval = getattr(var, "aval", None)
            if hasattr(aval, "shape") and hasattr(aval, "dtype"):
                total += math.prod(aval.shape) * aval.dtype.itemsize  # typed keys too (key<fry>: 8)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += _jaxpr_bytes(inner)
    return total


def step_bytes(cfg: RunConfig, x: jax.Array, y: jax.Array) -> tuple[int, int]:
    """(parameter bytes, bytes of the intermediates of one gradient step) of one run."""
    return _step_bytes(
        cfg, jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(y.shape, y.dtype)
    )


@functools.lru_cache(maxsize=64)
def _step_bytes(cfg: RunConfig, x, y) -> tuple[int, int]:
    # traced once per configuration: a repeated sweep pays nothing for its default chunking
    params = jax.eval_shape(cfg.model.init, jax.random.PRNGKey(0), x)
    bs = x.shape[0] if cfg.batch_size is None else cfg.batch_size
    xb = jax.ShapeDtypeStruct((bs,) + x.shape[1:], x.dtype)
    yb = jax.ShapeDtypeStruct((bs,) + y.shape[1:], y.dtype)
    objective = lambda p, a, b: cfg.loss(apply_model(cfg.model, p, a, None), b)  # noqa: E731
    jaxpr = jax.make_jaxpr(jax.value_and_grad(objective))(params, xb, yb)
    return tree_bytes(params), _jaxpr_bytes(jaxpr.jaxpr)


def _device_budget(device) -> int | None:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return stats["bytes_limit"] // 4
    return None


def auto_chunk_size(
    cfg: RunConfig, x: jax.Array, y: jax.Array, *, runs: int, devices: Sequence[Any]
) -> int:
    """The default number of runs per compiled call (a multiple of ``len(devices)``).

    CPU: ``CPU_SIDE_BY_SIDE`` runs per device and call, side by side (``side_by_side``), when a
    run's step intermediates exceed ``CPU_LOOP_ABOVE``; otherwise ``CPU_CACHE_BUDGET`` over the
    step bytes (``SEEDS_LAST_CHUNKS`` times it for seeds-last runs), rounded to a power of two.
    Accelerators: a quarter of device memory over a per-run estimate (params and optimizer state
    x 8, step intermediates, the curves). Capped by ``MAX_CHUNK`` and the number of runs.
    """
    param_bytes, act_bytes = step_bytes(cfg, x, y)
    run_bytes = (
        8 * param_bytes
        + act_bytes
        + 4 * (cfg.steps // cfg.log_every) * (1 + len(cfg.metrics) * (2 if cfg.has_eval else 1))
    )
    n_dev = len(devices)
    budget = _device_budget(devices[0])
    if devices[0].platform == "cpu" or budget is None:
        if _large_cpu_step(devices, act_bytes):
            per_device = CPU_SIDE_BY_SIDE
        else:
            last = seeds_last(cfg, x, y, devices=devices)
            budget = CPU_CACHE_BUDGET * (SEEDS_LAST_CHUNKS if last else 1)
            per_device = 2 ** round(math.log2(max(budget / max(act_bytes, 1), 1)))
        per_device = min(per_device, max(1, 2**30 // run_bytes))
    else:
        per_device = max(1, budget // run_bytes)
    per_device = min(per_device, MAX_CHUNK, -(-runs // n_dev))
    return max(1, per_device) * n_dev


def cpu_groups(
    cfg: RunConfig,
    x: jax.Array,
    y: jax.Array,
    *,
    chunk_size: int,
    devices: Sequence[Any],
    vmapped: bool,
    last: bool,
) -> int:
    """Groups of runs per device of a vmapped CPU chunk (1: one vmapped loop): the cores per
    device when the chunk's step intermediates reach ``CPU_GROUPS_ABOVE`` and every group gets
    two runs or more."""
    cores = (os.cpu_count() or 1) // len(devices)
    per_device = chunk_size // len(devices)
    if devices[0].platform != "cpu" or not vmapped or last or cores < 2 or per_device < 2 * cores:
        return 1
    return cores if per_device * step_bytes(cfg, x, y)[1] >= CPU_GROUPS_ABOVE else 1


def _large_cpu_step(devices: Sequence[Any], act_bytes: int) -> bool:
    return devices[0].platform == "cpu" and act_bytes > CPU_LOOP_ABOVE


def side_by_side(
    cfg: RunConfig, x: jax.Array, y: jax.Array, *, chunk_size: int, devices: Sequence[Any]
) -> bool:
    """Whether a device's runs of a chunk go side by side (separate loops in one program, no
    vmap): on CPU, for runs whose step exceeds ``CPU_LOOP_ABOVE``, up to ``CPU_SIDE_BY_SIDE``
    runs per device (more would multiply the compile time; those vmap)."""
    per_device = chunk_size // len(devices)
    return 1 < per_device <= CPU_SIDE_BY_SIDE and _large_cpu_step(devices, step_bytes(cfg, x, y)[1])


def seeds_last(cfg: RunConfig, x: jax.Array, y: jax.Array, *, devices: Sequence[Any]) -> bool:
    """Whether a chunk's runs go seeds-last (``gbl_jax.engine.seeds_last.vmap_last``) rather than
    ``jax.vmap``: on CPU, full-batch runs of a deterministic model whose step is at most
    ``SEEDS_LAST_AT_MOST`` bytes (the tiny nets: every array of a run is a handful of numbers,
    and with the runs on the minor axis each op is one vectorized loop over them). Minibatch
    runs gather examples per run, and a stochastic model draws per-run keys in the step: both
    would leave the fast rules every step, so they vmap; so do runs with probes (Hessian-vector
    products are not among the rules)."""
    return (
        devices[0].platform == "cpu"
        and cfg.batch_size is None
        and not cfg.probes
        and not is_stochastic(cfg.model)
        and step_bytes(cfg, x, y)[1] <= SEEDS_LAST_AT_MOST
    )


@functools.lru_cache(maxsize=None)
def without_library_fusions(platform: str) -> tuple:
    """XLA compile options that keep XLA:CPU from handing reductions and dots to a library
    (YNNPACK "ynn" fusions, jaxlib 0.10's default), as (name, value) pairs; () elsewhere.

    Three programs need them. Tiny runs (``tiny_step_options``), for speed. Every analysis over
    seeds (``analysis.seed_chunks.over_seeds``) and every run with probes
    (``training.probe_options``), for correctness: jaxlib 0.10.2 miscompiles a ynn fusion of a
    broadcast operand, a reduction over its last axis and a subtraction of the result from it
    (``a[None] - sum(a[None] * b[:, None], -1)[..., None]`` at [4, 60, 398, 2]), the pattern of
    a vmapped Hessian of log_softmax (tests/analysis/test_seed_chunks.py keeps the
    reproduction). The option is probed once; a jaxlib that lacks it gets none."""
    if platform != "cpu":
        return ()
    options = (("xla_cpu_experimental_ynn_fusion_type", ""),)
    try:
        jax.jit(lambda v: v + 1, compiler_options=dict(options)).lower(1.0).compile()
    except Exception:  # noqa: BLE001 - an unknown option is reported in several ways
        return ()
    return options


def tiny_step_options(platform: str) -> tuple:
    """XLA compile options for the programs of tiny runs on ``platform``: no library fusions,
    which for arrays of a handful of numbers per run cost more than the loops they replace."""
    return without_library_fusions(platform)


def vmaps(size: int, devices: Sequence[Any], side: bool) -> bool:
    """Whether a chunk of ``size`` runs vmaps each device's share (several runs, not side by
    side); such chunks carry their params in reading order (``loop_order``)."""
    return size // len(devices) > 1 and not side


def _named(fn: Callable, name: str) -> Callable:
    fn.__name__ = fn.__qualname__ = name  # what XLA's compile log and count_compiles show
    return fn


def batched(
    fn: Callable,
    in_axes: tuple,
    size: int,
    devices: tuple,
    name: str,
    side: bool = False,
    last: bool = False,
    groups: int = 1,
    safe: dict | None = None,
) -> Callable:
    """``fn`` over a leading run axis of ``size``, jitted: vmapped over each device's share
    (``shard_map`` over ``devices``; with ``last``, seeds-last and compiled with
    ``tiny_step_options``; with ``groups`` > 1, that share cut into ``groups`` vmapped loops side
    by side), or called unbatched, once per run, when a device has one run or ``side`` (side by
    side). Arguments with axis None are shared by every run. ``safe``: compile options of a run
    with probes (``training.probe_options``)."""
    per_device = size // len(devices)
    options = dict(tiny_step_options(devices[0].platform)) if last else dict(safe or {})
    if per_device == 1 or side:

        def mapped(*args):
            outs = [
                fn(
                    *[
                        jax.tree.map(lambda a: a[i], arg) if ax == 0 else arg
                        for arg, ax in zip(args, in_axes)
                    ]
                )
                for i in range(per_device)
            ]
            return jax.tree.map(lambda *o: jnp.stack(o), *outs)
    elif last:
        mapped = vmap_last(fn, in_axes)
    elif groups > 1:
        one = jax.vmap(fn, in_axes=in_axes)
        cuts = np.linspace(0, per_device, groups + 1).astype(int)

        def mapped(*args):
            outs = [
                one(
                    *[
                        jax.tree.map(lambda a: a[lo:hi], arg) if ax == 0 else arg
                        for arg, ax in zip(args, in_axes)
                    ]
                )
                for lo, hi in zip(cuts[:-1], cuts[1:])
            ]
            return jax.tree.map(lambda *o: jnp.concatenate(o), *outs)
    else:
        mapped = jax.vmap(fn, in_axes=in_axes)
    if len(devices) == 1:
        return jax.jit(_named(mapped, name), compiler_options=options or None)
    mesh = Mesh(np.asarray(devices), ("runs",))
    specs = tuple(PartitionSpec("runs") if ax == 0 else PartitionSpec() for ax in in_axes)
    sharded = _shard_map(
        mapped, mesh=mesh, in_specs=specs, out_specs=PartitionSpec("runs"), **_NO_CHECK
    )
    return jax.jit(_named(lambda *args: sharded(*args), name), compiler_options=options or None)


def _keys(k_init, k_data, impl):
    """Raw key data back to typed keys inside the program (``impl`` None: legacy raw keys)."""
    if impl is None:
        return k_init, k_data
    return jax.random.wrap_key_data(k_init, impl=impl), jax.random.wrap_key_data(k_data, impl=impl)


@functools.lru_cache(maxsize=32)
def one_shot_fn(
    cfg: RunConfig,
    size: int,
    devices: tuple,
    keep_params: bool,
    impl,
    side: bool,
    last: bool = False,
    shared_data: bool = False,
    groups: int = 1,
):
    """The compiled call of a chunk of ``size`` whole runs (``training``'s engine ``run`` each):
    (key data, key data, hypers, x, y, eval x, eval y) -> {name: [size, ...]}. Vmapped runs
    carry their params in reading order (``loop_order``); seeds-last (``last``) and unbatched
    ones as the user's tree. With ``shared_data`` the data key is one key for every run (no run
    axis): what the runs draw from it is computed once. ``groups``: as for ``batched``."""
    vmapped = vmaps(size, devices, side)
    last = last and vmapped
    run = make_engine(cfg, reading_order=vmapped and not last, carry_sums=last).run

    def one(k_init, k_data, hypers, x, y, ex, ey):
        out = run(*_keys(k_init, k_data, impl), hypers, x, y, ex, ey)
        if not keep_params:
            out = {k: v for k, v in out.items() if k not in ("params", "init_params")}
        return out

    return batched(
        one,
        (0, None if shared_data else 0, 0, None, None, None, None),
        size,
        devices,
        "gbl_sweep_chunk",
        side,
        last,
        groups=groups,
        safe=probe_options(cfg),
    )


@functools.lru_cache(maxsize=32)
def segment_fns(
    cfg: RunConfig, devices: tuple, impl, vmapped: bool, side: bool, last: bool = False
):
    """The compiled pieces of a compacted run: start, advance (per chunk size), finish."""
    last = last and vmapped
    engine = make_engine(cfg, reading_order=vmapped and not last, carry_sums=last)
    n_units = engine.layout.n_units
    seg_units = -(-n_units // SEGMENTS)
    guard = seg_units * -(-n_units // seg_units) > n_units

    def begin(k_init, k_data, hypers, x):
        return engine.start(*_keys(k_init, k_data, impl), hypers, x)

    @functools.lru_cache(maxsize=None)
    def start(size):
        return batched(begin, (0, 0, 0, None), size, devices, "gbl_sweep_start", side, last)

    @functools.lru_cache(maxsize=None)
    def advance(size):
        fn = lambda s, x, y, ex, ey, u0: engine.advance(
            s,
            x,
            y,
            ex,
            ey,
            u0,
            seg_units,  # noqa
            guard,
        )
        return batched(
            fn, (0, None, None, None, None, None), size, devices, "gbl_sweep_segment", side, last
        )

    @functools.lru_cache(maxsize=None)
    def finish(size):
        return batched(
            engine.finish,
            (0, None, None, None, None),
            size,
            devices,
            "gbl_sweep_finish",
            side,
            last,
        )

    @functools.lru_cache(maxsize=None)
    def predict(size):
        return batched(engine.predict, (0, None, 0), size, devices, "gbl_sweep_predict", side, last)

    return engine, seg_units, start, advance, finish, predict
