"""How much memory a sweep needs, estimated before anything is allocated, and refused with the
figures when it would not fit.

A sweep holds, in host memory, its seeds' keys, the index of its runs and every run's results
(loss and metric curves, final values, kept params), twice while the chunks merge; and one chunk
training at a time, on the device (host memory on CPU): per run its params, gradient, optimizer
state and the intermediates of one step (``chunking.step_bytes``, an upper bound: XLA reuses
buffers). ``sweeps.plan_sweep`` checks the first part before it splits a key; ``sweeps.sweep``
checks the chunk before the first one runs. What the command line's sweep also holds (its merged
results, the end points' classification, its files on disk) is ``gbl_jax.cli.budgets``'.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp

from gbl_jax.engine.chunking import step_bytes, tree_bytes
from gbl_jax.engine.runconfig import RunConfig, is_typed_key
from gbl_jax.nets.models import apply_model

FEWER = (
    "use fewer seeds or a seed_range at a time, log fewer points (log_every), or leave "
    "keep_params off"
)


def available() -> int | None:
    """Bytes of host memory a new allocation can take (MemAvailable on Linux), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def size_text(n: float) -> str:
    """Bytes in binary units, three significant digits: ``size_text(3 * 2**30) == '3 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def require(what: str, need: int, have: int | None, where: str, hint: str) -> None:
    """Raises ValueError when ``need`` bytes exceed ``have`` (None: unknown, no check)."""
    if have is not None and need > have:
        raise ValueError(
            f"{what} needs about {size_text(need)} of {where} but "
            f"{size_text(have)} is available; {hint}"
        )


def key_bytes(key) -> int:
    """Bytes of one key's data (a typed key's too)."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if is_typed_key(key):
        return tree_bytes(jax.eval_shape(jax.random.key_data, key))
    return tree_bytes(key)


@functools.lru_cache(maxsize=64)
def result_bytes(
    cfg: RunConfig,
    x: jax.ShapeDtypeStruct,
    keep_params: bool,
    eval_x: jax.ShapeDtypeStruct | None = None,
) -> int:
    """Bytes of one run's results: loss and metric curves, final values, kept params, and
    with ``cfg.keep_predictions`` its predictive distribution on ``eval_x``."""
    names = len(cfg.metric_names)
    params = jax.eval_shape(cfg.model.init, jax.random.PRNGKey(0), x)
    kept = tree_bytes(params) if keep_params else 0
    predictions = 0
    if cfg.keep_predictions and eval_x is not None:
        predictions = tree_bytes(
            jax.eval_shape(lambda p, e: apply_model(cfg.model, p, e, None), params, eval_x)
        )
    trajectory = tree_bytes(params) * (cfg.steps // cfg.log_every) if cfg.keep_trajectory else 0
    return (
        9
        + 4 * names
        + 4 * (cfg.steps // cfg.log_every) * (1 + names)
        + 2 * kept
        + predictions
        + trajectory
    )


@functools.lru_cache(maxsize=64)
def train_bytes(cfg: RunConfig, x: jax.ShapeDtypeStruct, y: jax.ShapeDtypeStruct) -> int:
    """Bytes one run needs while it trains: params, gradient, optimizer state, every
    intermediate of one step and, with minibatches, the epoch's order of the examples."""
    param_bytes, step = step_bytes(cfg, x, y)
    params = jax.eval_shape(cfg.model.init, jax.random.PRNGKey(0), x)
    order = 4 * x.shape[0] if cfg.batch_size is not None else 0
    return 2 * param_bytes + tree_bytes(jax.eval_shape(cfg.optimizer.init, params)) + step + order


def check_sweep(plan) -> None:
    """Raises ValueError, with the figures, when a ``SweepPlan``'s chunk would not fit: beside
    the results in host memory, or in an accelerator's memory."""
    x, y = (jax.ShapeDtypeStruct(a.shape, a.dtype) for a in plan.data[:2])
    ex = plan.data[2]
    result = result_bytes(
        plan.cfg,
        x,
        plan.keep_params,
        None if ex is None else jax.ShapeDtypeStruct(ex.shape, ex.dtype),
    )
    train = train_bytes(plan.cfg, x, y) + result
    n, size, n_dev = len(plan.runs), plan.chunk_size, len(plan.devices)
    chunk = size * train + tree_bytes(plan.data)
    results = 2 * n * result
    hint = (
        FEWER
        if results > chunk
        else "use a smaller chunk_size"
        if size > n_dev
        else "use a smaller model or batch_size"
    )
    what = (
        f"this sweep ({n} runs: {size_text(result)} of results each; a chunk of {size} "
        f"training, {size_text(train)} each)"
    )
    device = plan.devices[0]
    stats = (
        device.memory_stats()
        if device.platform != "cpu" and hasattr(device, "memory_stats")
        else None
    )
    if stats and stats.get("bytes_limit"):
        require(
            what,
            -(-chunk // n_dev),
            stats["bytes_limit"],
            f"{device.platform} memory per device",
            hint,
        )
        chunk = 0
    require(what, results + chunk, available(), "host memory", hint)
