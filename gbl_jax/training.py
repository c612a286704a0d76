"""Training: one ``jax.jit``, one ``lax.scan`` over steps, any optax optimizer.

How keys are used (so that a sweep can reproduce any single run):
``k_init, k_data = jax.random.split(key)``; ``params = model.init(k_init, in_dim)``; with
minibatches, epoch e draws the permutation ``jax.random.permutation(fold_in(k_data, e), N)`` and
step t takes its slice ``t mod (N // batch_size)`` (the last partial batch is dropped).

A run whose loss or parameters become non-finite is *diverged*: its logged losses are NaN from
that step on, its final loss is NaN, and its parameters and optimizer state are frozen at the last
finite checkpoint (taken every ``_block_size(steps)`` steps: the largest divisor of ``steps`` up
to ``CHECKPOINT_EVERY`` = 50). The check reduces over one run's parameters only, so under
``vmap`` one seed's NaN can never touch another seed.

References:
  Goodfellow, Bengio & Courville (2016), section 6.2 (gradient-based learning), 5.9 (SGD).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gbl_jax.costs import nll
from gbl_jax.nets import Model

Loss = Callable[[Any, jax.Array], jax.Array]

_TRACES = {"train": 0}
CHECKPOINT_EVERY = 50   # steps between the finite snapshots a diverged run is frozen at


class TrainResult(NamedTuple):
    """What ``train`` returns.

    Attributes:
      params: the trained parameters (frozen at the last finite values if diverged).
      losses: [steps] training loss at each step, before that step's update (NaN once diverged).
      final_loss: loss on the full data after the last step (NaN if diverged).
      diverged: whether the loss or the parameters became non-finite.
    """

    params: Any
    losses: jax.Array
    final_loss: jax.Array
    diverged: jax.Array


def trace_count() -> int:
    """How many times a training function has been traced (compiled) in this process."""
    return _TRACES["train"]


def _all_finite(value: jax.Array, tree) -> jax.Array:
    """Whether ``value`` and every float in ``tree`` are finite, as one fused sum.

    A NaN or inf anywhere makes the sum non-finite; a finite sum only overflows when the params
    are ~1e36, which is divergence by any measure. One reduction per leaf and a single scalar
    predicate keep the check cheap inside the step.
    """
    total = value + sum(jnp.sum(leaf) for leaf in jax.tree.leaves(tree)
                        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact))
    return jnp.isfinite(total)


def _block_size(steps: int) -> int:
    """The largest divisor of ``steps`` that is at most ``CHECKPOINT_EVERY``."""
    return max(d for d in range(1, min(steps, CHECKPOINT_EVERY) + 1) if steps % d == 0)


def _tree_select(pred: jax.Array, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def make_run(model: Model, optimizer: optax.GradientTransformation, loss: Loss, steps: int,
             batch_size: int | None, log_every: int = 1) -> Callable:
    """The pure training function ``run(key, x, y) -> (params, losses, final_loss, diverged)``.

    ``losses`` has ``steps // log_every`` entries, each the mean training loss over its window of
    ``log_every`` steps (any remainder steps run unlogged). Not jitted: ``train`` jits it, and
    ``sweep`` vmaps it over keys first.
    """

    def run(key, x, y):
        _TRACES["train"] += 1
        n, in_dim = x.shape
        k_init, k_data = jax.random.split(key)
        params = model.init(k_init, in_dim)
        objective = lambda p, xb, yb: loss(model.apply(p, xb), yb)

        def batch(t):
            if batch_size is None:
                return x, y
            per_epoch = n // batch_size
            perm = jax.random.permutation(jax.random.fold_in(k_data, t // per_epoch), n)
            idx = jax.lax.dynamic_slice_in_dim(perm, (t % per_epoch) * batch_size, batch_size)
            return x[idx], y[idx]

        n_logs = steps // log_every

        def step(carry, t):
            params, opt_state, diverged, log = carry
            value, grads = jax.value_and_grad(objective)(params, *batch(t))
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            diverged = diverged | ~_all_finite(value, params)
            recorded = jnp.where(diverged, jnp.nan, value)
            # A running buffer of window means: the curve costs n_logs floats, not steps.
            slot = jnp.minimum(t // log_every, n_logs - 1)
            logged = jax.lax.dynamic_index_in_dim(log, slot, keepdims=False) + jnp.where(
                t < n_logs * log_every, recorded / log_every, 0.0)
            log = jax.lax.dynamic_update_index_in_dim(log, logged, slot, 0)
            return (params, opt_state, diverged, log), None

        def block(carry, first_step):
            # Freezing every step (a select or cond on params and optimizer state) costs up to
            # 60% of a small net's step on XLA:CPU; a snapshot per block costs one select per
            # `block_size` steps. A diverged run restarts each block from its snapshot and is
            # put back at the end, so it stays frozen at its last finite checkpoint.
            start_params, start_state = carry[0], carry[1]
            params, opt_state, diverged, log = jax.lax.scan(
                step, carry, first_step + jnp.arange(block_size))[0]
            params, opt_state = _tree_select(diverged, (start_params, start_state),
                                             (params, opt_state))
            return (params, opt_state, diverged, log), None

        block_size = _block_size(steps)
        carry = (params, optimizer.init(params), jnp.asarray(False), jnp.zeros(n_logs))
        carry = jax.lax.scan(block, carry, jnp.arange(0, steps, block_size))[0]
        params, _, diverged, losses = carry
        final = objective(params, x, y)
        diverged = diverged | ~jnp.isfinite(final)
        return params, losses, jnp.where(diverged, jnp.nan, final), diverged

    return run


@functools.lru_cache(maxsize=64)
def _compiled_run(model, optimizer, loss, steps, batch_size, log_every):
    return jax.jit(make_run(model, optimizer, loss, steps, batch_size, log_every))


def check_config(model: Model, optimizer, data, *, key: jax.Array, steps: int,
                 batch_size: int | None, loss: Loss, log_every: int = 1):
    """Validates a training configuration before anything compiles; returns (x, y).

    Raises ValueError for mismatched x / y lengths, a head that does not fit y, a batch size
    larger than the data, ``steps < 1`` and a loss that is not a scalar.
    """
    if not isinstance(model, Model):
        raise ValueError(f"model must come from gbl_jax.mlp, got {type(model).__name__}")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise ValueError("optimizer must be an optax GradientTransformation")
    try:
        x, y = data
    except (TypeError, ValueError) as err:
        raise ValueError("data must be an (x, y) pair") from err
    x, y = jnp.asarray(x), jnp.asarray(y)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    if x.ndim != 2:
        raise ValueError(f"x must be [N, in_dim], got shape {list(x.shape)}")
    if y.ndim < 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"x and y must have the same number of examples; got x {list(x.shape)}, "
                         f"y {list(y.shape)}")
    for name, value, least in (("steps", steps, 1), ("log_every", log_every, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if log_every > steps:
        raise ValueError(f"log_every ({log_every}) must not exceed steps ({steps})")
    n = x.shape[0]
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or not 1 <= batch_size <= n):
        raise ValueError(f"batch_size must be None or an integer in [1, {n}] (the number of "
                         f"examples), got {batch_size!r}")
    bs = n if batch_size is None else batch_size
    params = jax.eval_shape(lambda k: model.init(k, x.shape[1]), key)
    out = jax.eval_shape(lambda p, xb, yb: loss(model.apply(p, xb), yb), params,
                         jax.ShapeDtypeStruct((bs,) + x.shape[1:], x.dtype),
                         jax.ShapeDtypeStruct((bs,) + y.shape[1:], y.dtype))
    if getattr(out, "shape", None) != ():
        raise ValueError(f"loss must return a scalar, got shape {getattr(out, 'shape', out)}")
    return x, y


def train(model: Model, optimizer: optax.GradientTransformation, data, *, key: jax.Array,
          steps: int, batch_size: int | None = None, loss: Loss = nll) -> TrainResult:
    """Trains ``model`` on ``data`` from the initialization drawn with ``key``.

    Args:
      model: from ``gbl_jax.mlp``.
      optimizer: any optax ``GradientTransformation``. Reuse the same object to reuse the
        compiled function: a second call with the same model, optimizer, loss, steps, batch
        size and data shapes does not recompile.
      data: an (x [N, in_dim], y [N, ...]) pair, e.g. a ``gbl_jax.problems`` record.
      key: the run's key; see the module docstring for how it is split.
      steps: number of optimizer steps (compile time does not grow with it).
      batch_size: None for full-batch gradient descent, else minibatch SGD.
      loss: any ``(dist, y) -> scalar``; ``gbl.squared_error`` gives squared error behind the
        same output unit.

    Returns:
      A ``TrainResult``.
    """
    x, y = check_config(model, optimizer, data, key=key, steps=steps, batch_size=batch_size,
                        loss=loss)
    params, losses, final, diverged = _compiled_run(model, optimizer, loss, steps, batch_size, 1)(
        key, x, y)
    return TrainResult(params, losses, final, diverged)
