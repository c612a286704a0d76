"""Training: one ``jax.jit``, nested ``lax.scan``s over steps, any model, any optax optimizer.

Keys (so that a sweep can reproduce any single run). ``train(key, data_key=None)``:
``k_init, k_data = jax.random.split(key)``, and ``data_key`` (when given) replaces ``k_data``.
``params = model.init(k_init, x)``. With minibatches, epoch e draws the permutation
``jax.random.permutation(fold_in(k_data, e), N)`` and step t takes its slice
``t mod (N // batch_size)`` (the last partial batch is dropped). A stochastic model's apply key
at step t is ``fold_in(split(k_data)[1], t)``; evaluation passes ``key=None``.

Bookkeeping is paid per block, not per step. Steps run in blocks of at most ``CHECK_EVERY``
steps (windows of ``log_every`` steps tile the blocks, or blocks tile a window). A step only
updates the params and adds its loss to a running sum; at the end of a block the library checks
that the loss sum and the params are finite (a NaN poisons both, so nothing is missed) and, with
``grad_tol``, whether the full-data gradient norm fell below it. A run that went non-finite is
*diverged*: it is put back to the params and optimizer state at the start of the block (its last
finite snapshot) and stays there; its logged losses are NaN from that window on and its final
loss is NaN. A run whose gradient norm fell below ``grad_tol`` is *converged*: frozen at that
point, ``converged_step`` records the step, and its later windows log its full-data loss there.
Every check reduces over one run's values only, so under ``vmap`` one seed never touches another.

The pieces are module functions of one ``EngineSpec`` (the configuration and the loop's form),
which ``make_engine`` binds into an ``Engine``: ``_start``; ``_advance`` scans ``_unit``s, each
of steps (``_run_steps`` over ``_step``), windows or check blocks, then ``_check`` (divergence,
convergence) and ``_record`` (the window logs); ``_finish`` runs the tail and the final loss.

References:
  Goodfellow, Bengio & Courville (2016), section 6.2 (gradient-based learning), 5.9 (SGD).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gbl_jax.engine import shuffle
from gbl_jax.engine.loop_order import LoopCarry, first_use_order
from gbl_jax.engine.runconfig import RunConfig, check_key, check_run, is_typed_key, set_hyperparams
from gbl_jax.nets.models import apply_model, is_stochastic
from gbl_jax.probability.costs import Loss, nll

CHECK_EVERY = 50  # at most this many steps between finiteness / convergence checks


class TrainResult(NamedTuple):
    """What ``train`` returns.

    Attributes:
      params: the trained parameters (frozen at the last finite values if diverged, at the
        converged point if converged).
      losses: [steps // log_every] mean training loss over each window of ``log_every`` steps
        (NaN once diverged).
      final_loss: loss on the full data after the last step (NaN if diverged).
      diverged: whether the loss or the parameters became non-finite.
      metrics: {name: [steps // log_every]} each metric at the end of each window.
      final_metrics: {name: scalar} each metric after the last step.
      converged_step: the step at which the gradient norm fell below ``grad_tol`` (-1: never).
      init_params: the initial parameters.
      probes: {name: [steps // log_every, ...]} each probe at the end of each window.
    """

    params: Any
    losses: jax.Array
    final_loss: jax.Array
    diverged: jax.Array
    metrics: dict
    final_metrics: dict
    converged_step: jax.Array
    init_params: Any
    probes: dict = {}


class Layout(NamedTuple):
    """How ``steps`` split into units (one compiled loop body), windows and check blocks."""

    steps: int
    log_every: int
    windows_per_unit: int  # > 1 only when a check block holds several windows
    blocks_per_unit: int  # > 1 only when a window holds several check blocks
    block_steps: int
    n_units: int
    tail: int  # steps after the last window: run unlogged

    @property
    def n_logs(self) -> int:
        return self.n_units * self.windows_per_unit

    @property
    def unit_steps(self) -> int:
        return self.blocks_per_unit * self.block_steps


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, max(1, min(n, at_most)) + 1) if n % d == 0)


def layout(steps: int, log_every: int) -> Layout:
    """Tiles ``steps`` into windows of ``log_every`` and check blocks of <= ``CHECK_EVERY``."""
    n_logs = steps // log_every
    if log_every <= CHECK_EVERY:
        per = _largest_divisor(n_logs, CHECK_EVERY // log_every)
        return Layout(
            steps, log_every, per, 1, per * log_every, n_logs // per, steps - n_logs * log_every
        )
    block = _largest_divisor(log_every, CHECK_EVERY)
    return Layout(
        steps, log_every, 1, log_every // block, block, n_logs, steps - n_logs * log_every
    )


class RunState(NamedTuple):
    """One run between units (stacked over runs in a sweep)."""

    params: Any
    opt_state: Any
    k_data: jax.Array
    diverged: jax.Array  # bool
    converged_step: jax.Array  # int32, -1 while running
    frozen_loss: jax.Array  # full-data loss where it converged
    frozen_metrics: dict  # metrics where it converged
    order: jax.Array  # int32 [N]: the current epoch's order of the examples ([0]
    #                             with full batches); drawn once per epoch, carried across blocks
    probe_state: Any = ()  # {name: state} of each probe (``gbl_jax.engine.probes``)


def _all_finite(value: jax.Array, tree) -> jax.Array:
    """Whether ``value`` and every float in ``tree`` are finite, as one fused sum.

    A NaN or inf anywhere makes the sum non-finite; a finite sum only overflows when the params
    are ~1e36, which is divergence by any measure.
    """
    total = value + sum(
        jnp.sum(leaf)
        for leaf in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)
    )
    return jnp.isfinite(total)


def _tree_select(pred: jax.Array, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _roll_back(keep: jax.Array, old, new):
    """The optimizer state of a block's end, rolled back to ``old`` where ``keep`` (frozen or
    diverged runs), except its integer leaves (step counts): a frozen run never steps again, so
    its count is never read, and a count that every run advances alike stays one number for all
    the runs of a sweep rather than one per run (Adam's bias correction then costs one power a
    step, not one per run and step)."""

    def leaf(a, b):
        return b if jnp.issubdtype(jnp.result_type(b), jnp.integer) else jnp.where(keep, a, b)

    return jax.tree.map(leaf, old, new)


def _global_norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)))


def _scale_init(params, scale):
    """Every floating leaf with ndim >= 2 (a weight matrix or kernel) times ``scale``."""
    return jax.tree.map(
        lambda leaf: (
            leaf * jnp.asarray(scale, leaf.dtype)
            if jnp.ndim(leaf) >= 2 and jnp.issubdtype(jnp.result_type(leaf), jnp.floating)
            else leaf
        ),
        params,
    )


def weight_leaves(params) -> list[bool]:
    """Which leaves of ``params`` are weights: floating, ndim >= 2 (matrices and kernels)."""
    return [
        jnp.ndim(leaf) >= 2 and jnp.issubdtype(jnp.result_type(leaf), jnp.floating)
        for leaf in jax.tree.leaves(params)
    ]


def perturb_weight(params, index):
    """``params`` with weight number ``index`` moved to its next float toward +inf (one ulp,
    ``numpy.nextafter`` in the leaf's dtype); ``index`` < 0 changes nothing. Weights are counted
    over the leaves ``weight_leaves`` picks, in ``jax.tree.leaves`` order, each raveled in C
    order (Summers & Dinneen 2021)."""
    leaves, treedef = jax.tree.flatten(params)
    index, offset, out = jnp.asarray(index).astype(jnp.int32), 0, []
    for leaf, weight in zip(leaves, weight_leaves(params)):
        if weight:
            flat = offset + jnp.arange(leaf.size, dtype=jnp.int32).reshape(leaf.shape)
            up = jnp.nextafter(leaf, jnp.asarray(jnp.inf, leaf.dtype))
            leaf, offset = jnp.where(flat == index, up, leaf), offset + leaf.size
        out.append(leaf)
    return jax.tree.unflatten(treedef, out)


class Engine(NamedTuple):
    """The pure pieces of one run; ``sweep`` vmaps them over runs.

    start(k_init, k_data, hypers, x) -> (RunState, init_params)
    advance(state, x, y, eval_x, eval_y, unit_start, n_units, guard) -> (state, logs)
    finish(state, x, y, eval_x, eval_y) -> (state, final_loss, final_metrics)
    run(k_init, k_data, hypers, x, y, eval_x, eval_y) -> dict (start, every unit, finish)
    predict(params, eval_x, diverged) -> the predictive distribution on eval_x (NaN where
      diverged)
    resume(params, opt_state, k_data, x, y, first, count) -> (params, opt_state, mean loss):
      ``count`` more steps (traced: one program for every count) from global step ``first``
      on the data stream of ``k_data`` (the epoch of step ``first`` drawn from it), unchecked:
      a run that diverges goes NaN
    """

    start: Callable
    advance: Callable
    finish: Callable
    run: Callable
    layout: Layout
    metric_names: tuple
    predict: Callable | None = None
    resume: Callable | None = None


class EngineSpec(NamedTuple):
    """What the engine's functions read besides arrays: the validated configuration and the two
    forms of the step loop ``make_engine`` chooses (the same arithmetic either way)."""

    cfg: RunConfig
    reading_order: bool = False  # carry the params in the forward pass's reading order
    carry_sums: bool = False  # sum each window's losses in the step loop's carry

    @property
    def layout(self) -> Layout:
        return layout(self.cfg.steps, self.cfg.log_every)

    @property
    def stochastic(self) -> bool:
        return is_stochastic(self.cfg.model)

    @property
    def metrics(self) -> dict:
        return dict(self.cfg.metrics)

    @property
    def names(self) -> tuple:
        return self.cfg.metric_names

    @property
    def probes(self) -> dict:
        return dict(self.cfg.probes)

    @property
    def windowed(self) -> bool:
        """Whether anything is read at every window's end (metrics, probes, the trajectory)."""
        return bool(self.names or self.probes or self.cfg.keep_trajectory)


def _objective(spec: EngineSpec, params, xb, yb, key=None):
    """The training loss of ``params`` on a batch (``key``: a stochastic model's apply key)."""
    return spec.cfg.loss(apply_model(spec.cfg.model, params, xb, key), yb)


def _evaluate(spec: EngineSpec, params, x, y, ex, ey) -> dict:
    """{name: float32} each metric on the training data, and ``test_*`` on the held-out set."""
    out = {}
    metric_fns = spec.metrics
    if metric_fns:
        dist = apply_model(spec.cfg.model, params, x, None)
        out.update({n: jnp.asarray(f(dist, y), jnp.float32) for n, f in metric_fns.items()})
    if spec.cfg.has_eval:
        dist = apply_model(spec.cfg.model, params, ex, None)
        out["test_nll"] = jnp.asarray(nll(dist, ey), jnp.float32)
        out.update(
            {f"test_{n}": jnp.asarray(f(dist, ey), jnp.float32) for n, f in metric_fns.items()}
        )
    return out


def _epoch_order(batch_size: int, k_data, t, n):
    """The order of the examples in the epoch of step t (one permutation per epoch)."""
    return shuffle.permutation(jax.random.fold_in(k_data, t // (n // batch_size)), n)


def _first_order(batch_size: int | None, k_data, t, n):
    """The order of the epoch of step t, carried into the step loop ([0] with full batches)."""
    if batch_size is None:
        return jnp.zeros((0,), jnp.int32)
    return _epoch_order(batch_size, k_data, t, n)


def _batch(batch_size: int | None, x, y, order, t):
    """Minibatch t: the next ``batch_size`` examples of its epoch's order (full batch: all)."""
    if batch_size is None:
        return x, y
    bs = batch_size
    idx = jax.lax.dynamic_slice_in_dim(order, (t % (x.shape[0] // bs)) * bs, bs)
    return x[idx], y[idx]


def _start(spec: EngineSpec, k_init, k_data, hypers, x):
    """A run's first state: the model's init (cast, scaled, perturbed as ``hypers`` say) and
    the optimizer's state with the hyperparameters of ``hypers``; (RunState, init_params)."""
    cfg = spec.cfg
    params = cfg.model.init(k_init, x)
    if cfg.dtype is not None:
        params = jax.tree.map(
            lambda p: p.astype(cfg.dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p,
            params,
        )
    if "init_scale" in hypers:
        params = _scale_init(params, hypers["init_scale"])
    if "perturb" in hypers:
        params = perturb_weight(params, hypers["perturb"])
    opt_state = cfg.optimizer.init(params)
    opt_hypers = {k: v for k, v in hypers.items() if k not in ("init_scale", "perturb")}
    if opt_hypers:
        opt_state = set_hyperparams(opt_state, opt_hypers)
    nan = jnp.asarray(jnp.nan, jnp.float32)
    state = RunState(
        params,
        opt_state,
        k_data,
        jnp.asarray(False),
        jnp.asarray(-1, jnp.int32),
        nan,
        {n: nan for n in spec.names},
        _first_order(cfg.batch_size, k_data, 0, x.shape[0]),
        {n: p.start(params) for n, p in spec.probes.items()},
    )
    return state, params


def _step(spec: EngineSpec, carry: LoopCarry, k_data, k_apply, x, y, state, t):
    """Optimizer step t: ``state`` (packed params, opt_state, epoch order) -> (state, loss).

    The epoch's order rides in the state (and in RunState between blocks) and is drawn again
    only when an epoch begins (a cond on the step, which is the same for every vmapped run, so
    it stays a branch); BENCHMARKS.md, "Notes moved from training.py", says what a draw costs.
    """
    packed, opt_state, order = state
    bs = spec.cfg.batch_size
    if bs is not None:
        n = x.shape[0]
        order = jax.lax.cond(
            (t > 0) & (t % (n // bs) == 0),
            lambda: _epoch_order(bs, k_data, t, n),
            lambda: order,
        )
    params = carry.unpack(packed)
    xb, yb = _batch(bs, x, y, order, t)
    key = jax.random.fold_in(k_apply, t) if spec.stochastic else None
    value, grads = jax.value_and_grad(functools.partial(_objective, spec))(params, xb, yb, key)
    updates, opt_state = spec.cfg.optimizer.update(grads, opt_state, params)
    return (carry.pack(optax.apply_updates(params, updates)), opt_state, order), value


def _window_sums(step: Callable, state, first, count: int, window: int, carry_sums: bool):
    """``step`` over steps ``first .. first + count``: (state, sums [count // window]), the loss
    summed over each ``window`` steps. The losses leave the loop as its outputs (no running sum
    in the carry), the cheapest form of a scan on XLA:CPU for runs vmapped run-first; with
    ``carry_sums`` they are summed in the carry (the same sums up to their order of addition)."""
    if carry_sums:
        zero = jnp.zeros((), jax.eval_shape(step, state, first)[1].dtype)  # the loss's

        def summed(state, w):
            def add(c, t):
                state, total = c
                state, value = step(state, t)
                return (state, total + value), None

            (state, total), _ = jax.lax.scan(
                add, (state, zero), first + w * window + jnp.arange(window)
            )
            return state, total

        return jax.lax.scan(summed, state, jnp.arange(count // window))
    state, values = jax.lax.scan(step, state, first + jnp.arange(count))
    return state, jnp.sum(values.reshape(count // window, window), axis=1)


def _reading_order(spec: EngineSpec, params, x, y, k_apply) -> LoopCarry:
    """The params' leaves in the order the forward pass reads them (see ``loop_order``)."""
    leaves = jax.tree.leaves(params)
    treedef = jax.tree.structure(params)
    key = jax.random.fold_in(k_apply, 0) if spec.stochastic else None
    order = first_use_order(
        lambda ls, xb, yb, k: _objective(spec, jax.tree.unflatten(treedef, ls), xb, yb, k),
        leaves,
        x,
        y,
        key,
    )
    return LoopCarry(params, order)


def _run_steps(spec: EngineSpec, params, opt_state, order, k_data, x, y, first, count, window):
    """``count`` optimizer steps from global step ``first``, ``order`` the examples' order of
    the epoch step ``first`` is in; returns (params, opt_state, order, sums [count // window]),
    the loss summed over each ``window`` steps."""
    k_apply = jax.random.split(k_data)[1] if spec.stochastic else None
    carry = (
        _reading_order(spec, params, x, y, k_apply)
        if spec.reading_order
        else LoopCarry(params, range(len(jax.tree.leaves(params))))
    )
    step = functools.partial(_step, spec, carry, k_data, k_apply, x, y)
    state = (carry.pack(params), opt_state, order)
    (packed, opt_state, order), sums = _window_sums(
        step, state, first, count, window, spec.carry_sums
    )
    return carry.unpack(packed), opt_state, order, sums


def _check(
    spec: EngineSpec, state: RunState, params, opt_state, order, total, t_end, x, y, ex, ey
) -> RunState:
    """End of a block: divergence (roll back), convergence (freeze) and frozen runs."""
    frozen = state.diverged | (state.converged_step >= 0)
    diverged = state.diverged | (~frozen & ~_all_finite(total, params))
    converged_step, frozen_loss, frozen_metrics = (
        state.converged_step,
        state.frozen_loss,
        state.frozen_metrics,
    )
    if spec.cfg.grad_tol is not None:
        value, grads = jax.value_and_grad(functools.partial(_objective, spec))(params, x, y)
        new = ~frozen & ~diverged & (_global_norm(grads) < spec.cfg.grad_tol)
        converged_step = jnp.where(new, t_end, converged_step).astype(jnp.int32)
        frozen_loss = jnp.where(new, value.astype(jnp.float32), frozen_loss)
        if spec.names:
            frozen_metrics = _tree_select(
                new, _evaluate(spec, params, x, y, ex, ey), frozen_metrics
            )
    keep = frozen | diverged
    params = _tree_select(keep, state.params, params)
    opt_state = _roll_back(keep, state.opt_state, opt_state)
    return RunState(
        params,
        opt_state,
        state.k_data,
        diverged,
        converged_step,
        frozen_loss,
        frozen_metrics,
        order,
        state.probe_state,
    )


def _block(spec: EngineSpec, state: RunState, x, y, ex, ey, first, count):
    """``count`` steps then a check; returns the new state and the block's loss sum."""
    params, opt_state, order, sums = _run_steps(
        spec, state.params, state.opt_state, state.order, state.k_data, x, y, first, count, count
    )
    total = sums[0]
    return _check(spec, state, params, opt_state, order, total, first + count, x, y, ex, ey), total


def _probe(spec: EngineSpec, params, probe_state, x, y):
    """Every probe at ``params``: ({name: value}, {name: state})."""
    full = lambda p: _objective(spec, p, x, y)  # noqa: E731 - the full-batch training objective
    out = {n: p(full, params, probe_state[n]) for n, p in spec.probes.items()}
    return {n: v for n, (v, _) in out.items()}, {n: st for n, (_, st) in out.items()}


def _record(
    spec: EngineSpec, state_before: RunState, state_after: RunState, sums, mets, probed=None
):
    """Window values of one unit: NaN once diverged, the frozen values once converged."""
    conv = state_before.converged_step >= 0
    w = jnp.arange(sums.shape[0])
    newly = state_after.diverged & ~state_before.diverged
    poisoned = (jnp.cumsum(~jnp.isfinite(sums)) > 0) | (w == sums.shape[0] - 1)
    bad = state_before.diverged | (newly & poisoned)
    nan = jnp.asarray(jnp.nan, jnp.float32)
    losses = jnp.where(
        bad,
        nan,
        jnp.where(conv, state_before.frozen_loss, (sums / spec.cfg.log_every).astype(jnp.float32)),
    )
    mets = {
        n: jnp.where(bad, nan, jnp.where(conv, state_before.frozen_metrics[n], m))
        for n, m in mets.items()
    }
    probed = jax.tree.map(
        lambda v: (
            jnp.where(
                bad.reshape(bad.shape + (1,) * (v.ndim - 1)), jnp.asarray(jnp.nan, v.dtype), v
            )
            if jnp.issubdtype(v.dtype, jnp.floating)
            else v
        ),
        probed or {},
    )
    return losses, mets, probed


def _trajectory(spec: EngineSpec, state_before: RunState, path):
    """With ``keep_trajectory``: the params at each window's end of one unit, [windows, ...] per
    leaf; a run frozen (converged or diverged) before the unit keeps its frozen params (its
    steps inside the unit are rolled back)."""
    if not spec.cfg.keep_trajectory:
        return ()
    frozen = state_before.diverged | (state_before.converged_step >= 0)
    return jax.tree.map(
        lambda old, new: jnp.where(frozen, old[None], new), state_before.params, path
    )


def _unit(spec: EngineSpec, state: RunState, x, y, ex, ey, u):
    """Unit ``u`` (one compiled loop body): (state, (losses, metrics, probes, trajectory)), each
    with one entry per window of the unit."""
    lay = spec.layout
    first = u * lay.unit_steps
    if lay.blocks_per_unit == 1 and not spec.windowed:
        return _unit_of_steps(spec, state, x, y, ex, ey, first)
    if lay.blocks_per_unit == 1:
        return _unit_of_windows(spec, state, x, y, ex, ey, first)
    return _unit_of_blocks(spec, state, x, y, ex, ey, first)


def _unit_of_steps(spec: EngineSpec, state: RunState, x, y, ex, ey, first):
    """Nothing read at window ends: one loop over the unit's steps, then one check; the window
    sums come from its per-step losses."""
    lay = spec.layout
    params, opt_state, order, sums = _run_steps(
        spec,
        state.params,
        state.opt_state,
        state.order,
        state.k_data,
        x,
        y,
        first,
        lay.unit_steps,
        spec.cfg.log_every,
    )
    new = _check(
        spec, state, params, opt_state, order, jnp.sum(sums), first + lay.unit_steps, x, y, ex, ey
    )
    return new, _record(spec, state, new, sums, {}) + ((),)


def _window(spec: EngineSpec, k_data, x, y, ex, ey, first, carry, w):
    """Window ``w`` of a unit from step ``first``: its steps, then the metrics, probes and params
    at its end (what ``_unit_of_windows`` reads there)."""
    params, opt_state, order, probe_state = carry
    log_every = spec.cfg.log_every
    params, opt_state, order, sums = _run_steps(
        spec, params, opt_state, order, k_data, x, y, first + w * log_every, log_every, log_every
    )
    probed, probe_state = _probe(spec, params, probe_state, x, y)
    mets = _evaluate(spec, params, x, y, ex, ey) if spec.names else {}
    return (params, opt_state, order, probe_state), (
        sums[0],
        mets,
        probed,
        params if spec.cfg.keep_trajectory else (),
    )


def _unit_of_windows(spec: EngineSpec, state: RunState, x, y, ex, ey, first):
    """Several windows in one check block, read at each window's end; one check at the end."""
    lay = spec.layout
    window = functools.partial(_window, spec, state.k_data, x, y, ex, ey, first)
    (params, opt_state, order, probe_state), (sums, mets, probed, path) = jax.lax.scan(
        window,
        (state.params, state.opt_state, state.order, state.probe_state),
        jnp.arange(lay.windows_per_unit),
    )
    new = _check(
        spec, state, params, opt_state, order, jnp.sum(sums), first + lay.unit_steps, x, y, ex, ey
    )
    return new._replace(probe_state=probe_state), (
        _record(spec, state, new, sums, mets, probed) + (_trajectory(spec, state, path),)
    )


def _one_block(spec: EngineSpec, x, y, ex, ey, first, state: RunState, b):
    """Check block ``b`` of a unit from step ``first``: (state, its loss sum, or a frozen run's
    frozen loss times the block's steps)."""
    block_steps = spec.layout.block_steps
    new, total = _block(spec, state, x, y, ex, ey, first + b * block_steps, block_steps)
    frozen_loss = state.frozen_loss.astype(total.dtype) * block_steps
    return new, jnp.where(state.converged_step >= 0, frozen_loss, total)


def _unit_of_blocks(spec: EngineSpec, state: RunState, x, y, ex, ey, first):
    """One window of several check blocks; read at its end."""
    lay = spec.layout
    one_block = functools.partial(_one_block, spec, x, y, ex, ey, first)
    new, totals = jax.lax.scan(one_block, state, jnp.arange(lay.blocks_per_unit))
    mets = _evaluate(spec, new.params, x, y, ex, ey) if spec.names else {}
    mets = {n: m[None] for n, m in mets.items()}
    probed, probe_state = _probe(spec, new.params, new.probe_state, x, y)
    probed = jax.tree.map(lambda v: v[None], probed)
    path = jax.tree.map(lambda a: a[None], new.params) if spec.cfg.keep_trajectory else ()
    return new._replace(probe_state=probe_state), (
        _record(spec, state, new, jnp.sum(totals)[None], mets, probed)
        + (_trajectory(spec, state, path),)
    )


def _skipped_unit(spec: EngineSpec, state: RunState):
    """The logs of a unit past the last (NaN), as ``_unit`` shapes them."""
    windows = spec.layout.windows_per_unit
    return (
        jnp.full((windows,), jnp.nan, jnp.float32),
        {n: jnp.full((windows,), jnp.nan, jnp.float32) for n in spec.names},
        {},  # check_run refuses probes with grad_tol, the only guarded runs
        jax.tree.map(lambda a: jnp.full((windows,) + a.shape, jnp.nan, a.dtype), state.params)
        if spec.cfg.keep_trajectory
        else (),
    )


def _advance(
    spec: EngineSpec, state: RunState, x, y, ex, ey, unit_start, n_units: int, guard: bool = False
):
    """Runs units ``unit_start .. unit_start + n_units``; with ``guard``, units past the last
    are skipped (``unit_start`` is the same for every run, so the skip is a real branch under
    ``vmap``)."""
    n_total = spec.layout.n_units

    def body(state, u):
        if not guard:
            return _unit(spec, state, x, y, ex, ey, u)
        empty = _skipped_unit(spec, state)
        return jax.lax.cond(
            u < n_total, lambda s: _unit(spec, s, x, y, ex, ey, u), lambda s: (s, empty), state
        )

    state, (losses, mets, probed, path) = jax.lax.scan(
        body, state, unit_start + jnp.arange(n_units)
    )
    logs = {
        "losses": losses.reshape(-1),
        "metrics": {n: m.reshape(-1) for n, m in mets.items()},
        "probes": jax.tree.map(lambda v: v.reshape((-1,) + v.shape[2:]), probed),
    }
    if spec.cfg.keep_trajectory:
        logs["trajectory"] = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), path)
    return state, logs


def _finish(spec: EngineSpec, state: RunState, x, y, ex, ey):
    """The unlogged tail, then the final loss and metrics (NaN where diverged)."""
    lay = spec.layout
    if lay.tail:
        state, _ = _block(spec, state, x, y, ex, ey, lay.n_units * lay.unit_steps, lay.tail)
    final = _objective(spec, state.params, x, y)
    diverged = state.diverged | ~jnp.isfinite(final)
    state = state._replace(diverged=diverged)
    nan = jnp.asarray(jnp.nan, jnp.float32)
    final_metrics = {
        n: jnp.where(diverged, nan, m)
        for n, m in (_evaluate(spec, state.params, x, y, ex, ey) if spec.names else {}).items()
    }
    return state, jnp.where(diverged, nan, final.astype(jnp.float32)), final_metrics


def _predict(spec: EngineSpec, params, ex, diverged):
    """The model's predictive distribution on ``ex``, NaN where the run diverged."""
    dist = apply_model(spec.cfg.model, params, ex, None)
    nan = jnp.asarray(jnp.nan, jnp.float32)
    return jax.tree.map(
        lambda leaf: (
            jnp.where(diverged, nan.astype(leaf.dtype), leaf)
            if jnp.issubdtype(leaf.dtype, jnp.floating)
            else leaf
        ),
        dist,
    )


def _run(spec: EngineSpec, k_init, k_data, hypers, x, y, ex, ey) -> dict:
    """One whole run: start, every unit, finish; {name: array} as ``train`` and ``sweep`` read."""
    cfg = spec.cfg
    state, init_params = _start(spec, k_init, k_data, hypers, x)
    state, logs = _advance(spec, state, x, y, ex, ey, 0, spec.layout.n_units)
    state, final, final_metrics = _finish(spec, state, x, y, ex, ey)
    out = {
        "params": state.params,
        "init_params": init_params,
        "losses": logs["losses"],
        "metrics": logs["metrics"],
        "final_loss": final,
        "final_metrics": final_metrics,
        "diverged": state.diverged,
        "converged_step": state.converged_step,
    }
    if spec.probes:
        out["probes"] = logs["probes"]
    if cfg.keep_predictions:
        out["predictions"] = _predict(spec, state.params, ex, state.diverged)
    if cfg.keep_trajectory:
        out["trajectory"] = logs["trajectory"]
    return out


def _resume(spec: EngineSpec, params, opt_state, k_data, x, y, first, count):
    """``count`` unchecked steps from step ``first`` (see ``Engine``)."""
    order = _first_order(spec.cfg.batch_size, k_data, first, x.shape[0])

    def one(t, carry):  # a loop of dynamic length: one program for every count
        params, opt_state, order, total = carry
        params, opt_state, order, sums = _run_steps(
            spec, params, opt_state, order, k_data, x, y, t, 1, 1
        )
        return params, opt_state, order, total + sums[0].astype(jnp.float32)

    params, opt_state, _, total = jax.lax.fori_loop(
        first, first + count, one, (params, opt_state, order, jnp.zeros((), jnp.float32))
    )
    return params, opt_state, total / jnp.maximum(count, 1)


def make_engine(cfg: RunConfig, reading_order: bool = False, carry_sums: bool = False) -> Engine:
    """Builds the run's pure functions for a validated configuration (nothing is jitted here):
    the module's functions over one ``EngineSpec``.

    ``reading_order``: carry the params through the step loop in the order the forward pass
    reads them (``gbl_jax.engine.loop_order``); ``sweep`` asks for it when it vmaps runs.
    ``carry_sums``: each logging window's loss sum runs along in the step loop's carry instead
    of leaving it as one output per step (the same sums up to their order of addition); ``sweep``
    asks for it when it lays runs out seeds-last (``gbl_jax.engine.seeds_last``). The arithmetic
    of a step is the same either way; BENCHMARKS.md, "Notes moved from training.py", has what
    each form measured.
    """
    spec = EngineSpec(cfg, reading_order, carry_sums)

    def bind(fn: Callable) -> Callable:
        return functools.partial(fn, spec)

    return Engine(
        bind(_start),
        bind(_advance),
        bind(_finish),
        bind(_run),
        spec.layout,
        spec.names,
        bind(_predict),
        bind(_resume),
    )


@functools.lru_cache(maxsize=64)
def _compiled_run(cfg: RunConfig):
    run = make_engine(cfg).run
    return jax.jit(_named_run(run), compiler_options=probe_options(cfg) or None)


def probe_options(cfg: RunConfig) -> dict:
    """Compile options of a run with probes: without XLA:CPU's library fusions, which jaxlib
    0.10 miscompiles for second derivatives of a softmax (``chunking.without_library_fusions``);
    {} without probes."""
    if not cfg.probes:
        return {}
    from gbl_jax.engine.chunking import without_library_fusions  # chunking imports this module

    return dict(without_library_fusions(jax.devices()[0].platform))


def _named_run(run: Callable) -> Callable:
    def gbl_train(k_init, k_data, hypers, x, y, ex, ey):
        return run(k_init, k_data, hypers, x, y, ex, ey)

    return gbl_train


def split_keys(key: jax.Array, data_key: jax.Array | None = None):
    """(k_init, k_data) of a run: ``split(key)``, with ``data_key`` replacing the second."""
    k_init, k_data = jax.random.split(key)
    return k_init, (k_data if data_key is None else data_key)


def train(
    model,
    optimizer: optax.GradientTransformation,
    data,
    *,
    key: jax.Array,
    steps: int,
    batch_size: int | None = None,
    loss: Loss = nll,
    data_key: jax.Array | None = None,
    log_every: int = 1,
    metrics: Mapping[str, Callable] | None = None,
    eval_data=None,
    grad_tol: float | None = None,
    hyperparams: Mapping[str, float] | None = None,
    dtype=None,
    probes: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Trains ``model`` on ``data`` from the initialization drawn with ``key``.

    Args:
      model: anything with ``init(key, x)`` and ``apply(params, x)`` (``gbl.Model``, ``gbl.mlp``,
        ``gbl.models.from_flax`` / ``from_equinox``).
      optimizer: any optax ``GradientTransformation``. An equal one (``optax.adam(0.05)``
        built again) reuses the compiled function (``gbl_jax.engine.compilation.canonical``).
      data: an (x [N, ...], y [N, ...]) pair: a ``gbl.problems`` record or a tuple of arrays.
      key: the run's key; ``k_init, k_data = jax.random.split(key)``.
      steps: number of optimizer steps (compile time does not grow with it).
      batch_size: None for full-batch gradient descent, else minibatch SGD.
      loss: any ``(dist, y) -> scalar``; ``gbl.squared_error`` gives squared error behind the
        same output unit.
      data_key: drives the minibatch order and a stochastic model's apply keys (default: from
        ``key``); fix it to vary only the initialization, or fix ``key`` to vary only the data.
      log_every: steps per logged window mean of the training loss.
      metrics: {name: fn(dist, y) -> scalar}, evaluated on the full training data at the end of
        every window and after the last step.
      eval_data: an (x, y) pair evaluated likewise: ``test_nll`` and ``test_<name>``.
      grad_tol: stop (freeze) the run once its full-data gradient norm is below this, checked
        every <= ``CHECK_EVERY`` steps; ``converged_step`` says when.
      hyperparams: values for the numeric hyperparameters of an ``optax.inject_hyperparams``
        optimizer and ``init_scale`` (weights times it): one cell of a ``sweep`` grid.
      dtype: cast params and floating data to this dtype (default: the params follow the
        model's init, which for ``gbl.mlp`` follows the data).
      probes: {name: probe} evaluated at each window's end (``gbl.probes``; see ``sweep``).

    Returns:
      A ``TrainResult``.
    """
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
        grid={k: [v] for k, v in (hyperparams or {}).items()},
        dtype=dtype,
        probes=probes,
    )
    x, y, ex, ey = arrays
    if data_key is not None:  # one key of the same kind as ``key``, or the run would not trace
        data_key = check_key(data_key, "data_key")
        typed = [is_typed_key(k) for k in (check_key(key), data_key)]
        if typed[0] != typed[1]:
            kinds = ["jax.random.key (typed)" if t else "jax.random.PRNGKey (raw)" for t in typed]
            raise ValueError(
                f"data_key must be the same kind of key as key: key is a {kinds[0]}, "
                f"data_key a {kinds[1]}"
            )
    k_init, k_data = split_keys(key, data_key)
    hypers = {k: jnp.asarray(v, jnp.float32) for k, v in (hyperparams or {}).items()}
    out = _compiled_run(cfg)(k_init, k_data, hypers, x, y, ex, ey)
    return TrainResult(
        out["params"],
        out["losses"],
        out["final_loss"],
        out["diverged"],
        out["metrics"],
        out["final_metrics"],
        out["converged_step"],
        out["init_params"],
        out.get("probes", {}),
    )
