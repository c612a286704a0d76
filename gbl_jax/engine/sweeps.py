"""Init sensitivity: train one model from many random initializations at once, over a grid.

SGD on a non-convex loss has no convergence guarantee and depends on where it starts (section
6.2); ``sweep`` measures that dependence and ``spread`` summarizes it.

Runs. A sweep trains ``cells x seeds`` runs: every cell of the Cartesian product of ``grid``
(hyperparameters of an ``optax.inject_hyperparams`` optimizer, and ``init_scale``) times every
seed. Seed i uses the same keys in every cell (common random numbers: cells compare paired).
``vary`` says which randomness differs between seeds: the initialization, the data stream
(minibatch order and a stochastic model's keys), or both.

Execution. Runs (flattened cell-major) go in chunks of ``chunk_size``: each chunk is one compiled
call of ``jax.vmap`` of the training function (one run per device is the plain single run; a few
large CPU runs go side by side, see below), sharded across ``devices`` with ``shard_map``.
Chunks are dispatched one ahead of the one being gathered to the host, so memory is bounded by
one or two chunks whatever the number of runs. The last chunk is padded to the full size (no
recompile) and the padding dropped.

Run to convergence. With ``grad_tol``, a chunk runs its budget in segments; between segments the
runs still active (neither converged nor diverged) are repacked into a smaller chunk (halving
sizes, each compiled once), so compute follows the active runs instead of the slowest one, and
a chunk whose runs have all stopped ends early. Results equal the uncompacted run
(``compact=False``) to float tolerance: frozen runs log their frozen values either way.

How runs are grouped into compiled calls (chunk sizes, vmap or side by side, sharding):
``gbl_jax.engine.chunking``.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gbl_jax.checks import require_finite_number, require_int
from gbl_jax.engine import memory
from gbl_jax.engine.chunking import (
    auto_chunk_size,
    cpu_groups,
    one_shot_fn,
    seeds_last,
    segment_fns,
    side_by_side,
    vmaps,
)
from gbl_jax.engine.results import SweepResult
from gbl_jax.engine.runconfig import RunConfig, check_run, default_log_every, is_typed_key
from gbl_jax.engine.training import split_keys, weight_leaves
from gbl_jax.nets.models import is_stochastic
from gbl_jax.probability.costs import Loss, nll

VARY = ("init", "data")
PERTURB = ("perturb",)  # Summers & Dinneen 2021: seed 0's run, one initial weight one ulp away


class SweepChunk(NamedTuple):
    """Results of the runs ``runs`` (flattened cell-major indices), host numpy arrays."""

    runs: np.ndarray
    out: dict

    @property
    def start(self) -> int:
        return int(self.runs[0])

    @property
    def stop(self) -> int:
        return int(self.runs[-1]) + 1


def check_grid(grid: Mapping[str, Sequence[float]] | None) -> dict[str, np.ndarray]:
    """The grid as {name: float64 values}; raises on empty lists, non-numeric values and values
    that repeat (in float32, how cells enter the program). ``check_run`` checks the rest
    (``runconfig.check_hyper_values``: signs, and values the run's dtype cannot hold)."""
    if grid is None:
        return {}
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid must be a dict {{name: [values]}}, got {type(grid).__name__}")
    out = {}
    for name, values in grid.items():
        if not isinstance(name, str):
            raise ValueError(f"grid keys must be hyperparameter names, got {name!r}")
        values = list(values) if isinstance(values, (list, tuple, np.ndarray)) else None
        if not values:
            raise ValueError(f"grid[{name!r}] must be a non-empty list of numbers")
        out[name] = np.asarray([require_finite_number(f"grid[{name!r}] value", v) for v in values])
        held = out[name].astype(np.float32)
        _, first, counts = np.unique(held, return_index=True, return_counts=True)
        if np.any(counts > 1):
            dup = held[np.sort(first[counts > 1])[0]]
            same = [v for v, h in zip(out[name].tolist(), held) if h == dup]
            raise ValueError(
                f"grid[{name!r}] repeats {same[0]!r}"
                + (f" (as {float(dup)!r} in float32: {same})" if len(set(same)) > 1 else "")
                + f": every cell must differ, got {list(values)}"
            )
    return out


class Crossed(NamedTuple):
    """A crossed design as ``sweep(seeds=...)``: every one of ``init`` inits trained with every one
    of ``data`` data orders (``gbl.crossed``)."""

    init: int
    data: int

    @property
    def seeds(self) -> int:
        return self.init * self.data


def crossed(*, init: int, data: int) -> Crossed:
    """``seeds=gbl.crossed(init=I, data=D)``: I x D runs, every init with every data order.

    Seed s = i D + d trains init i (the init of ordinary seed i D) on data order d (the data
    stream of ordinary seed d), so the result's seeds form an [I, D] table
    (``out.crossed == (I, D)``, ``init_seed`` and ``data_seed`` in ``to_frame``) that
    ``gbl.variance_components`` splits into init, data-order and residual variance. Data orders
    differ only where the data stream draws something: minibatches (``batch_size``) or a
    stochastic model.

    References:
      Bouthillier et al. (2021), "Accounting for variance in machine learning benchmarks".
    """
    return Crossed(require_int("crossed: init", init, 1), require_int("crossed: data", data, 1))


class SweepPlan(NamedTuple):
    """A validated sweep: everything fixed before the first chunk runs (see ``plan_sweep``)."""

    cfg: RunConfig
    data: tuple  # (x, y, eval_x, eval_y)
    keys: np.ndarray  # [seeds, ...] the seeds' key data
    k_init: np.ndarray  # [seeds, ...] key data after ``vary``
    k_data: np.ndarray  # [seeds, ...]
    impl: Any  # the keys' PRNG implementation (None: legacy raw uint32 keys)
    grid: dict  # {name: float64 values}
    cells: np.ndarray  # [cells, len(grid)] float32 values, cell-major
    seeds: int
    runs: np.ndarray  # flattened run indices (cell * seeds + seed) this plan computes
    chunk_size: int  # runs per compiled call
    devices: tuple
    keep_params: bool
    compact: bool
    vary: tuple
    side_by_side: bool  # a device's runs of a chunk as separate loops, not vmapped
    seeds_last: bool = False  # vmapped runs laid out seeds-last (``chunking.seeds_last``)
    crossed: tuple = ()  # (inits, data orders) of a crossed design, () otherwise
    shared_data: bool = False  # every run has the same data key: a chunk passes it once
    groups: int = 1  # vmapped loops per device of a chunk (``chunking.cpu_groups``)
    perturb: np.ndarray | None = None  # [seeds] float32 weight index each seed moves (-1: none)

    @property
    def grid_shape(self) -> tuple:
        return tuple(len(v) for v in self.grid.values())

    @property
    def log_every(self) -> int:
        return self.cfg.log_every

    @property
    def vmapped(self) -> bool:
        """Whether a device runs several runs of a chunk at once (vmapped), not one."""
        return vmaps(self.chunk_size, self.devices, self.side_by_side)

    def chunk_starts(self) -> range:
        """Positions in ``runs`` where chunks begin."""
        return range(0, len(self.runs), self.chunk_size)

    def chunk_runs(self, pos: int) -> np.ndarray:
        return self.runs[pos : pos + self.chunk_size]

    def inputs(self, runs: np.ndarray):
        """Per-run inputs of a chunk, padded to ``chunk_size`` with copies of the last run."""
        runs = np.concatenate([runs, np.repeat(runs[-1:], self.chunk_size - len(runs))])
        seed, cell = runs % self.seeds, runs // self.seeds
        hypers = {name: self.cells[cell, j] for j, name in enumerate(self.grid)}
        if self.perturb is not None:
            hypers["perturb"] = self.perturb[seed]
        return self.k_init[seed], self.k_data[seed], hypers

    def one_shot_inputs(self, runs: np.ndarray):
        """``inputs`` for ``chunk_fn``: with ``shared_data``, the one data key, unbatched, so
        every run of the chunk reads the same minibatches from one gather, one permutation per
        epoch, and the first layer of all runs is one matmul against their weights side by side
        (the same runs up to float rounding)."""
        k_init, k_data, hypers = self.inputs(runs)
        return (k_init, k_data[0] if self.shared_data else k_data, hypers)

    def compile(self):
        """Compiles the chunk function ahead of time (returns seconds); the run then reuses it."""
        begin = time.perf_counter()
        if self.cfg.grad_tol is not None and self.compact:
            start = segment_fns(
                self.cfg, self.devices, self.impl, self.vmapped, self.side_by_side, self.seeds_last
            )[2]
            start(self.chunk_size).lower(*self.inputs(self.runs[:1]), self.data[0]).compile()
        else:
            self.chunk_fn().lower(*self.one_shot_inputs(self.runs[:1]), *self.data).compile()
        return time.perf_counter() - begin

    def chunk_fn(self) -> Callable:
        """The compiled function of one chunk (without ``grad_tol``)."""
        return one_shot_fn(
            self.cfg,
            self.chunk_size,
            self.devices,
            self.keep_params,
            self.impl,
            self.side_by_side,
            self.seeds_last,
            self.shared_data,
            self.groups,
        )


def plan_sweep(
    model,
    optimizer: optax.GradientTransformation,
    data,
    *,
    key: jax.Array,
    seeds: int,
    steps: int,
    batch_size: int | None = None,
    loss: Loss = nll,
    log_every: int | None = None,
    chunk_size: int | None = None,
    keep_params: bool = False,
    devices: Sequence[Any] | None = None,
    seed_range: tuple[int, int] | None = None,
    vary: Sequence[str] = VARY,
    grid: Mapping[str, Sequence[float]] | None = None,
    metrics: Mapping[str, Callable] | None = None,
    eval_data=None,
    grad_tol: float | None = None,
    compact: bool = True,
    dtype=None,
    keep_predictions: bool = False,
    keep_trajectory: bool = False,
    probes: Mapping[str, Any] | None = None,
) -> SweepPlan:
    """Validates a sweep's arguments (as ``sweep``) and resolves its defaults; compiles nothing."""
    design = seeds if isinstance(seeds, Crossed) else None
    if design is not None:
        if tuple(vary) != VARY:
            raise ValueError(
                f"a crossed design varies the init and the data order by "
                f"construction; leave vary at its default, got vary={tuple(vary)}"
            )
        seeds = design.seeds
    seeds = require_int("seeds", seeds, 1)
    if log_every is None:
        log_every = default_log_every(steps) if isinstance(steps, int) and steps >= 1 else 1
    vary = tuple(vary)
    if vary != PERTURB and (
        not vary or any(v not in VARY for v in vary) or len(set(vary)) != len(vary)
    ):
        raise ValueError(
            f"vary must be a non-empty subset of {VARY}, or {PERTURB} alone, got {vary}"
        )
    grid = check_grid(grid)
    cfg, arrays = check_run(
        model,
        optimizer,
        data,
        key=key,
        steps=steps,
        batch_size=batch_size,
        loss=loss,
        log_every=log_every,
        metrics=metrics,
        eval_data=eval_data,
        grad_tol=grad_tol,
        grid=grid,
        dtype=dtype,
        keep_predictions=keep_predictions,
        keep_trajectory=keep_trajectory,
        probes=probes,
    )
    if keep_trajectory and cfg.grad_tol is not None and compact:
        raise ValueError(
            "keep_trajectory with grad_tol needs compact=False: a compacted run "
            "repacks its seeds between segments and keeps no trajectory"
        )
    if (
        "init" not in vary
        and vary != PERTURB
        and seeds > 1
        and not is_stochastic(cfg.model)
        and (cfg.batch_size in (None, len(arrays[0])))
    ):
        raise ValueError(
            f"vary={vary} would run {seeds} identical copies: every seed shares seed 0's init, and "
            f"with full batches (batch_size={cfg.batch_size}) a deterministic model draws nothing "
            "from the data stream, so the spread would be 0 by construction; vary 'init' too, "
            "or pass a batch_size below the number of examples (minibatch order), or a "
            "stochastic model (dropout)"
        )
    if (
        design is not None
        and design.data > 1
        and not is_stochastic(cfg.model)
        and (cfg.batch_size in (None, len(arrays[0])))
    ):
        raise ValueError(
            f"crossed(init={design.init}, data={design.data}): with full batches "
            f"(batch_size={cfg.batch_size}) a deterministic model draws nothing from the data "
            "stream, so its data orders are identical; pass a batch_size below the number of "
            "examples, or a stochastic model"
        )
    devices = tuple(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must not be empty")
    start, stop = (0, seeds) if seed_range is None else tuple(seed_range)
    if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= seeds):
        raise ValueError(
            f"seed_range must satisfy 0 <= start < stop <= seeds ({seeds}), got {seed_range}"
        )
    n_runs = math.prod(len(v) for v in grid.values()) * (stop - start)
    # before anything that grows with the runs is allocated: splitting n keys peaks near 3.5x
    # their [n, 3] key data (measured), the run index is 2 int64s a run, and the results are
    # held twice while the chunks merge
    result = memory.result_bytes(
        cfg,
        jax.ShapeDtypeStruct(arrays[0].shape, arrays[0].dtype),
        bool(keep_params),
        None if arrays[2] is None else jax.ShapeDtypeStruct(arrays[2].shape, arrays[2].dtype),
    )
    memory.require(
        f"this sweep ({seeds} seeds, {n_runs} runs: keys, run index and "
        f"{memory.size_text(result)} of results a run)",
        4 * 3 * memory.key_bytes(key) * seeds + (16 + 2 * result) * n_runs,
        memory.available(),
        "host memory",
        memory.FEWER,
    )
    cells = np.asarray(list(itertools.product(*grid.values())), np.float32)
    cells = cells.reshape(len(cells), len(grid))
    runs = (np.arange(len(cells))[:, None] * seeds + np.arange(start, stop)[None, :]).reshape(-1)
    if chunk_size is None:
        chunk_size = auto_chunk_size(cfg, arrays[0], arrays[1], runs=len(runs), devices=devices)
    if require_int("chunk_size", chunk_size, 1) % len(devices):
        raise ValueError(
            f"chunk_size must be a positive multiple of the device count "
            f"({len(devices)}), got {chunk_size!r}"
        )
    chunk_size = min(chunk_size, -(-len(runs) // len(devices)) * len(devices))  # no all-padding
    keys, impl = _seed_keys(key, seeds)
    k_init, k_data = keys[:, 0], keys[:, 1]
    if "init" not in vary:
        k_init = np.repeat(k_init[:1], seeds, axis=0)
    if "data" not in vary:
        k_data = np.repeat(k_data[:1], seeds, axis=0)
    perturb = _perturb_indices(cfg, arrays[0], key, seeds) if vary == PERTURB else None
    if design is not None:  # seed i D + d: ordinary seed i D's init, ordinary seed d's data
        seed = np.arange(seeds)
        k_init, k_data = k_init[seed // design.data * design.data], k_data[seed % design.data]
    side = side_by_side(cfg, arrays[0], arrays[1], chunk_size=int(chunk_size), devices=devices)
    last = not side and seeds_last(cfg, arrays[0], arrays[1], devices=devices)
    shared = len(runs) > 1 and bool(np.all(k_data == k_data[:1]))
    groups = cpu_groups(
        cfg,
        arrays[0],
        arrays[1],
        chunk_size=int(chunk_size),
        devices=devices,
        vmapped=vmaps(int(chunk_size), devices, side),
        last=last,
    )
    return SweepPlan(
        cfg,
        arrays,
        keys[:, 2],
        k_init,
        k_data,
        impl,
        grid,
        cells,
        seeds,
        runs,
        int(chunk_size),
        devices,
        bool(keep_params),
        bool(compact),
        vary,
        side,
        last,
        crossed=tuple(design) if design is not None else (),
        shared_data=shared,
        groups=groups,
        perturb=perturb,
    )


@functools.lru_cache(maxsize=16)
def _split_fn(seeds: int):
    def split(key):
        keys = jax.random.split(key, seeds)
        return jnp.stack([*jax.vmap(split_keys)(keys), keys], 1)

    return jax.jit(split)


def _seed_keys(key, seeds: int) -> tuple[np.ndarray, Any]:
    """[seeds, 3, ...] key data: (k_init, k_data, the seed's key) per seed, and the PRNG impl.

    One compiled program per seed count, gathered to the host once, so preparing a chunk's
    inputs is numpy indexing.
    """
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    typed = is_typed_key(key)
    out = _split_fn(seeds)(key)
    if typed:
        return np.asarray(jax.random.key_data(out)), jax.random.key_impl(key)
    return np.asarray(out), None


def _perturb_indices(cfg: RunConfig, x, key, seeds: int) -> np.ndarray:
    """[seeds] float32: -1 for seed 0, and for seed s >= 1 the weight it moves,
    ``randint(fold_in(split(key, seeds)[s], 0), (), 0, W)`` over the run's W weights
    (``training.perturb_weight``); exact in float32, the hyperparameters' dtype, below 2^24."""
    shapes = jax.eval_shape(cfg.model.init, key, x)
    weights = sum(
        int(np.prod(leaf.shape))
        for leaf, w in zip(jax.tree.leaves(shapes), weight_leaves(shapes))
        if w
    )
    if not 0 < weights < 2**24:
        raise ValueError(
            f"vary=('perturb',) moves one of the model's weights (floating leaves of "
            f"ndim >= 2); this model has {weights}, need between 1 and 2^24"
        )
    index = jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k, 0), (), 0, weights))(
        jax.random.split(key, seeds)
    )
    return np.where(np.arange(seeds) == 0, -1, np.asarray(index)).astype(np.float32)


def _run_compacted(plan: SweepPlan, k_init, k_data, hypers) -> dict:
    """One chunk run to convergence in segments, repacking the active runs between them."""
    engine, seg_units, start, advance, finish, predict = segment_fns(
        plan.cfg, plan.devices, plan.impl, plan.vmapped, plan.side_by_side, plan.seeds_last
    )
    lay, size, n_dev = engine.layout, plan.chunk_size, len(plan.devices)
    x, y, ex, ey = plan.data
    state, init_params = start(size)(k_init, k_data, hypers, x)
    names = engine.metric_names
    losses = np.full((size, lay.n_logs), np.nan, np.float32)
    metrics = {n: np.full((size, lay.n_logs), np.nan, np.float32) for n in names}
    ladder = sorted({size} | {n_dev * 2**k for k in range(32) if n_dev * 2**k < size})
    for u0 in range(0, lay.n_units, seg_units):
        diverged, conv, frozen_loss, frozen_metrics = jax.device_get(
            (state.diverged, state.converged_step, state.frozen_loss, state.frozen_metrics)
        )
        cols = slice(
            u0 * lay.windows_per_unit, min(u0 + seg_units, lay.n_units) * lay.windows_per_unit
        )
        active = ~diverged & (conv < 0)
        done = ~active
        losses[done, cols] = np.where(diverged[done], np.nan, frozen_loss[done])[:, None]
        for n in names:
            metrics[n][done, cols] = np.where(diverged[done], np.nan, frozen_metrics[n][done])[
                :, None
            ]
        idx = np.flatnonzero(active)
        if not idx.size:
            continue
        bucket = next(b for b in ladder if b >= idx.size)
        if bucket == size:
            state, logs = advance(size)(state, x, y, ex, ey, u0)
            rows = np.arange(size)
        else:
            padded = jnp.asarray(np.concatenate([idx, np.repeat(idx[-1:], bucket - idx.size)]))
            part = jax.tree.map(lambda a: a[padded], state)
            part, logs = advance(bucket)(part, x, y, ex, ey, u0)
            take = jnp.asarray(idx)
            state = jax.tree.map(lambda full, p: full.at[take].set(p[: idx.size]), state, part)
            rows = idx
        logs = jax.device_get(logs)
        width = cols.stop - cols.start
        losses[rows, cols] = logs["losses"][: len(rows), :width]
        for n in names:
            metrics[n][rows, cols] = logs["metrics"][n][: len(rows), :width]
    state, final, final_metrics = finish(size)(state, x, y, ex, ey)
    out = {
        "losses": losses,
        "metrics": metrics,
        "final_loss": final,
        "final_metrics": final_metrics,
        "diverged": state.diverged,
        "converged_step": state.converged_step,
    }
    if plan.keep_params:
        out.update(params=state.params, init_params=init_params)
    if plan.cfg.keep_predictions:
        out["predictions"] = predict(size)(state.params, ex, state.diverged)
    return out


def run_plan(
    plan: SweepPlan, skip: Callable[[int], bool] = lambda pos: False
) -> Iterator[SweepChunk]:
    """Runs a plan chunk by chunk, yielding each ``SweepChunk`` once it is on the host.

    ``skip(pos)`` leaves out chunks already done (resuming); ``pos`` indexes ``plan.runs``. A
    chunk's results do not depend on which other chunks run, so a resumed sweep equals an
    uninterrupted one.
    """
    compacted = plan.cfg.grad_tol is not None and plan.compact

    def dispatch(pos):
        runs = plan.chunk_runs(pos)
        if compacted:
            return runs, _run_compacted(plan, *plan.inputs(runs))
        return runs, plan.chunk_fn()(*plan.one_shot_inputs(runs), *plan.data)

    def gather(runs, out):
        out = jax.tree.map(lambda a: np.asarray(a)[: len(runs)], jax.device_get(out))
        return SweepChunk(runs, out)

    pending = None
    for pos in plan.chunk_starts():
        if skip(pos):
            continue
        launched = dispatch(pos)  # async: runs while the previous chunk is copied to the host
        if pending is not None:
            yield gather(*pending)
        pending = launched
    if pending is not None:
        yield gather(*pending)


def merge_chunks(plan: SweepPlan, chunks: Sequence[SweepChunk], wall_s: float) -> SweepResult:
    """Assembles chunks (in run order) into a ``SweepResult`` with the grid axes first."""
    n_seeds = len(plan.runs) // max(1, len(plan.cells))
    shape = plan.grid_shape + (n_seeds,)
    cat = lambda *a: np.concatenate(a).reshape(shape + a[0].shape[1:])  # noqa: E731
    out = (
        jax.tree.map(cat, *[c.out for c in chunks])
        if len(chunks) > 1
        else jax.tree.map(lambda a: a.reshape(shape + a.shape[1:]), chunks[0].out)
    )
    seeds = np.unique(plan.runs % plan.seeds)
    return SweepResult(
        final_loss=out["final_loss"],
        diverged=out["diverged"],
        losses=out["losses"],
        keys=plan.keys[seeds],
        params=out.get("params"),
        init_params=out.get("init_params"),
        metrics=out["metrics"],
        final_metrics=out["final_metrics"],
        converged_step=out["converged_step"],
        grid={k: v.tolist() for k, v in plan.grid.items()},
        vary=plan.vary,
        log_every=plan.log_every,
        chunk_size=plan.chunk_size,
        wall_s=wall_s,
        predictions=out.get("predictions"),
        trajectory=out.get("trajectory"),
        probes=out.get("probes", {}),
        crossed=plan.crossed if len(seeds) == plan.seeds else (),
    )


def sweep(
    model,
    optimizer: optax.GradientTransformation,
    data,
    *,
    key: jax.Array,
    seeds: int,
    steps: int,
    batch_size: int | None = None,
    loss: Loss = nll,
    log_every: int | None = None,
    vary: Sequence[str] = VARY,
    grid: Mapping[str, Sequence[float]] | None = None,
    metrics: Mapping[str, Callable] | None = None,
    eval_data=None,
    grad_tol: float | None = None,
    keep_params: bool = False,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    seed_range: tuple[int, int] | None = None,
    compact: bool = True,
    dtype=None,
    keep_predictions: bool = False,
    keep_trajectory: bool = False,
    probes: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Trains ``model`` from ``seeds`` random initializations in every cell of ``grid``.

    Run (cell c, seed i) is ``train(..., **out.rerun(i, c))``: without ``vary`` or a grid that
    is ``train(key=jax.random.split(key, seeds)[i])``.

    Args:
      model, optimizer, data, steps, batch_size, loss, metrics, eval_data, grad_tol, dtype: as
        for ``gbl.train``.
      key: base key; seed i uses ``jax.random.split(key, seeds)[i]``.
      seeds: number of initializations (per cell), or ``gbl.crossed(init=I, data=D)``: I x D
        runs per cell, every init with every data order.
      log_every: steps per logged window (default: about 100 points per curve).
      vary: which randomness differs between seeds: ("init", "data") (default), ("init",)
        (every seed uses seed 0's data stream) or ("data",) (every seed uses seed 0's init;
        refused where the data stream draws nothing: full batches of a deterministic model),
        or ("perturb",): every seed is seed 0's run (its init and data stream) except that seed
        s >= 1 moves one initial weight to its next float toward +inf (one ulp in the run's
        dtype, after ``init_scale``): weight ``randint(fold_in(split(key, seeds)[s], 0), (), 0,
        W)`` of the W weights (floating leaves of ndim >= 2, in ``jax.tree.leaves`` order, each
        raveled in C order); seed 0 is unperturbed (Summers & Dinneen 2021).
      grid: {name: [values]}: numeric hyperparameters of an ``optax.inject_hyperparams``
        optimizer (e.g. ``learning_rate``) and ``init_scale`` (every weight of ndim >= 2 times
        it); every cell of their product runs, in one compiled computation. Values are
        distinct, ``learning_rate`` > 0 and ``init_scale`` >= 0 (0: the zero-init control), and
        none rounds to 0 or inf in float32 or the run's dtype (``runconfig.check_hyper_values``).
      keep_params: also return every run's final and initial params (memory grows with runs).
      keep_predictions: also return every run's predictive distribution on ``eval_data``
        (``out.predictions``: the model's distribution with a leading [*grid, seeds] axis; NaN
        where a run diverged), what ``gbl.disagreement`` and ``gbl.ensemble`` read.
      keep_trajectory: also return every run's params at the end of each logging window
        (``out.trajectory``: the params with leading [*grid, seeds, steps // log_every] axes;
        a frozen run repeats its frozen params), what ``gbl.surface(directions="pca")`` reads.
        Memory: steps // log_every params trees a run, counted in the sweep's memory check
        (raise ``log_every`` for fewer); with ``grad_tol`` it needs ``compact=False``.
      probes: {name: probe} evaluated at each window's end on the params and the full-batch
        training objective (``gbl.probes``: ``sharpness()``, ``grad_norm()``,
        ``distance_from_init()``, or your own); ``out.probes[name]`` [*grid, seeds, T, ...].
        Not with ``grad_tol``.
      chunk_size: runs per compiled call (default: ``chunking.auto_chunk_size``); whether they
        vmap or go side by side follows ``chunking.side_by_side``.
      devices: devices to shard runs over (default: all of ``jax.devices()``).
      seed_range: (start, stop) to run only those seeds of every cell (for several hosts).
      compact: with ``grad_tol``, repack the active runs between segments (see the module).
      progress: called as ``progress(runs_done, runs_total)`` after each chunk.

    Returns:
      A ``SweepResult`` with the grid's axes first.

    Raises:
      ValueError: for any bad argument, and, with the figures, for a sweep whose keys and
        results (``plan_sweep``) or training chunk (``memory.check_sweep``) would not fit in memory.

    References:
      Goodfellow, Bengio & Courville (2016), section 6.2 (sensitivity to initial parameters).
      Summers & Dinneen (2021), "Nondeterminism and instability in neural network optimization".
    """
    begin = time.perf_counter()
    plan = plan_sweep(
        model,
        optimizer,
        data,
        key=key,
        seeds=seeds,
        steps=steps,
        batch_size=batch_size,
        loss=loss,
        log_every=log_every,
        chunk_size=chunk_size,
        keep_params=keep_params,
        devices=devices,
        seed_range=seed_range,
        vary=vary,
        grid=grid,
        metrics=metrics,
        eval_data=eval_data,
        grad_tol=grad_tol,
        compact=compact,
        dtype=dtype,
        keep_predictions=keep_predictions,
        keep_trajectory=keep_trajectory,
        probes=probes,
    )
    memory.check_sweep(plan)
    chunks = []
    for chunk in run_plan(plan):
        chunks.append(chunk)
        if progress is not None:
            progress(sum(len(c.runs) for c in chunks), len(plan.runs))
    return merge_chunks(plan, chunks, time.perf_counter() - begin)
