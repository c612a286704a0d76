"""Low-loss curves between two solutions: a Bezier curve with trained bends (Garipov et al. 2018).

``curve`` trains the middle control point(s) of phi(t) = sum_k C(n, k) t^k (1 - t)^(n - k) w_k,
whose ends w_0 = params_a and w_n = params_b stay fixed, to minimize E_{t ~ U(0, 1)} L(phi(t))
with t drawn afresh every step; many pairs at once (one vmapped ``lax.scan``, chunked over
pairs by ``seed_chunks.over_seeds``). It returns the loss along t on the curve and on the straight
line (what ``gbl.barrier`` measures), optionally after aligning params_b to params_a.

References:
  Garipov, Izmailov, Podoprikhin, Vetrov & Wilson (2018), "Loss surfaces, mode connectivity,
    and fast ensembling of DNNs", section 3 (Bezier curve, equation 3 and training).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gbl_jax.analysis.landscape import align as align_params
from gbl_jax.analysis.seed_chunks import analysis_chunk, over_seeds
from gbl_jax.analysis.stacked_params import leaf_shapes, pair_layout
from gbl_jax.checks import require_int
from gbl_jax.nets.models import apply_model, check_model
from gbl_jax.probability.costs import Loss, nll


def bernstein(t, n: int) -> jax.Array:
    """[n + 1] Bernstein weights C(n, k) t^k (1 - t)^(n - k) of a degree-n Bezier curve at t."""
    k = jnp.arange(n + 1)
    coef = jnp.asarray([math.comb(n, int(i)) for i in range(n + 1)], jnp.float32)
    return coef * jnp.power(t, k) * jnp.power(1 - t, n - k)


def curve_point(params_a, bends, params_b, t):
    """phi(t) for one pair: ends params_a, params_b and ``bends`` (leaves [bends, ...])."""
    n = jax.tree.leaves(bends)[0].shape[0] + 1
    w = bernstein(jnp.asarray(t, jnp.float32), n)
    return jax.tree.map(
        lambda a, m, b: (
            w[0] * a + jnp.tensordot(w[1:n].astype(m.dtype), m, axes=1) + w[n] * b
        ).astype(a.dtype),
        params_a,
        bends,
        params_b,
    )


class Curve(NamedTuple):
    """Losses along trained Bezier curves and straight lines between pairs of params.

    Attributes:
      t: [num] points along both paths, 0 and 1 included.
      loss: [pairs, num] (or [num] for one pair) the loss along the trained curve.
      line: the same shape: the loss along the straight line (1 - t) a + t b.
      params_a, params_b: the ends (params_b after alignment when ``aligned``).
      bends: the trained control points, leaves [pairs, bends, ...] (or [bends, ...]).
      aligned: whether params_b was aligned to params_a (``gbl.align``) first.
      train_loss: [pairs, steps] (or [steps]) the sampled objective L(phi(t)) per step.
    """

    t: np.ndarray
    loss: np.ndarray
    line: np.ndarray
    params_a: Any
    params_b: Any
    bends: Any
    aligned: bool
    train_loss: np.ndarray

    @property
    def barrier(self) -> np.ndarray:
        """max_t [L(phi(t)) - ((1 - t) L(a) + t L(b))] along the curve, per pair."""
        return _barrier(self.loss, self.t)

    @property
    def line_barrier(self) -> np.ndarray:
        """The same along the straight line (``gbl.barrier``'s definition)."""
        return _barrier(self.line, self.t)

    def at(self, t: float):
        """phi(t): the params on each curve at ``t`` (leaves [pairs, ...] or one pair's)."""
        stacked = np.ndim(self.loss) == 2
        fn = jax.vmap(curve_point, in_axes=(0, 0, 0, None)) if stacked else curve_point
        return fn(self.params_a, self.bends, self.params_b, t)

    def to_frame(self):
        """One row per pair and t: pair, t, curve, line, aligned."""
        import pandas as pd

        loss, line = np.atleast_2d(self.loss), np.atleast_2d(self.line)
        pairs, num = loss.shape
        return pd.DataFrame(
            {
                "pair": np.repeat(np.arange(pairs), num),
                "t": np.tile(self.t, pairs),
                "curve": loss.reshape(-1),
                "line": line.reshape(-1),
                "aligned": self.aligned,
            }
        )


def _barrier(values, t) -> np.ndarray:
    v = np.asarray(values, np.float64)
    chord = (1 - t) * v[..., :1] + t * v[..., -1:]
    return np.max(v - chord, axis=-1)


def _broadcast(tree, pairs: int):
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (pairs,) + jnp.shape(a)), tree)


def curve(
    model,
    data,
    params_a,
    params_b,
    *,
    steps: int,
    bends: int = 1,
    optimizer: optax.GradientTransformation | None = None,
    batch_size: int | None = None,
    num: int = 25,
    key: jax.Array | None = None,
    loss: Loss = nll,
    align: str | None = None,
    chunk_size: int | None = None,
    stacked: bool | None = None,
) -> Curve:
    """Trains a Bezier curve between params_a and params_b (each pair at once) and evaluates it.

    phi(t) = sum_k C(n, k) t^k (1 - t)^(n - k) w_k with n = bends + 1, w_0 = params_a and
    w_n = params_b fixed; the bends start on the straight line (w_k = a + k/n (b - a)) and are
    trained on E_{t ~ U(0, 1)} L(phi(t)), one t per step, drawn afresh every step.

    Args:
      model: any model (``init``, ``apply``); evaluated with ``key=None``.
      data: an (x [N, ...], y [N, ...]) pair, the training data.
      params_a, params_b: one seed's params, or stacked over pairs (a leading axis on every
        leaf); a single side is shared by every pair of the other.
      steps: optimizer steps on the bends, >= 1.
      bends: trained control points (1: the quadratic Bezier curve of Garipov et al.).
      optimizer: any optax optimizer for the bends (default ``optax.adam(1e-2)``).
      batch_size: None for full-batch steps, else minibatches drawn with replacement per step.
      num: points along t in [0, 1] where the curve and the line are evaluated, >= 2.
      key: draws t (and minibatches); default ``jax.random.PRNGKey(0)``; pair i uses
        ``fold_in(key, i)``.
      loss: ``(dist, y) -> scalar``, the training objective and the reported loss.
      align: None, or a ``gbl.mlp`` activation name: params_b is first aligned to params_a
        with ``gbl.align`` (weight matching, pair by pair), which leaves its function unchanged.
      chunk_size: pairs per compiled call (default: from a rough memory budget).
      stacked: as for ``gbl.interpolate``.

    Returns:
      A ``Curve``: losses [pairs, num] ([num] for one pair) along the curve and the line.

    References:
      Garipov et al. (2018), section 3; Frankle et al. (2020) for the line's barrier.
    """
    check_model(model)
    steps = require_int("curve: steps", steps, 1)
    bends = require_int("curve: bends", bends, 1)
    num = require_int("curve: num", num, 2)
    if batch_size is not None:
        batch_size = require_int("curve: batch_size", batch_size, 1)
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    x, y = map(jnp.asarray, data)
    if batch_size is not None and batch_size > x.shape[0]:
        raise ValueError(f"curve: batch_size {batch_size} exceeds the {x.shape[0]} examples")
    a_stacked, b_stacked, n_pairs = pair_layout("curve", model, x, params_a, params_b, stacked)
    single = n_pairs is None
    pairs = 1 if n_pairs is None else n_pairs
    pa = _broadcast(params_a, pairs) if not a_stacked else params_a
    pb = _broadcast(params_b, pairs) if not b_stacked else params_b
    if align is not None:
        ref = jax.tree.map(np.asarray, pa)
        pb = jax.tree.map(
            jnp.asarray,
            jax.tree.map(
                lambda *a: np.stack(a),
                *[
                    align_params(
                        jax.tree.map(lambda a: a[i], ref),
                        jax.tree.map(lambda a: a[i], pb),
                        activation=align,
                    )
                    for i in range(pairs)
                ],
            ),
        )
    key = jax.random.PRNGKey(0) if key is None else key
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(pairs))
    ts = jnp.linspace(0.0, 1.0, num)

    def objective(bend, a, b, t, xb, yb):
        return loss(apply_model(model, curve_point(a, bend, b, t), xb, key=None), yb)

    def one(a, b, k, x, y):
        frac = (jnp.arange(1, bends + 1) / (bends + 1)).astype(jnp.float32)
        bend = jax.tree.map(
            lambda u, v: (
                u[None] + jnp.reshape(frac, (-1,) + (1,) * u.ndim) * (v - u)[None]
            ).astype(u.dtype),
            a,
            b,
        )
        state = optimizer.init(bend)

        def step(carry, s):
            bend, state = carry
            k_t, k_b = jax.random.split(jax.random.fold_in(k, s))
            t = jax.random.uniform(k_t)
            if batch_size is None:
                xb, yb = x, y
            else:
                idx = jax.random.randint(k_b, (batch_size,), 0, x.shape[0])
                xb, yb = x[idx], y[idx]
            value, grads = jax.value_and_grad(objective)(bend, a, b, t, xb, yb)
            updates, state = optimizer.update(grads, state, bend)
            return (optax.apply_updates(bend, updates), state), value

        (bend, _), values = jax.lax.scan(step, (bend, state), jnp.arange(steps))
        along = jax.vmap(lambda t: objective(bend, a, b, t, x, y))(ts)
        line = jax.vmap(
            lambda t: loss(
                apply_model(
                    model,
                    jax.tree.map(lambda u, v: ((1 - t) * u + t * v).astype(u.dtype), a, b),
                    x,
                    key=None,
                ),
                y,
            )
        )(ts)
        return along, line, bend, values

    n_params = sum(int(np.prod(s[1:])) for s in leaf_shapes(pa))
    per_pair = 4 * ((6 + 3 * bends) * n_params + 16 * int(x.size) * 2)
    size = analysis_chunk(chunk_size, pairs, per_pair, "curve: chunk_size")
    along, line, bend, values = over_seeds(
        one, (pa, pb, keys, x, y), (True, True, True, False, False), pairs, size
    )
    if single:
        along, line, values = along[0], line[0], values[0]
        bend = jax.tree.map(lambda a: a[0], bend)
        pa, pb = params_a, jax.tree.map(lambda a: a[0], pb)
    return Curve(np.asarray(ts), along, line, pa, pb, bend, align is not None, values)


__all__ = ["Curve", "bernstein", "curve", "curve_point"]
