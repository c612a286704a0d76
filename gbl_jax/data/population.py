"""Closed-form population losses: a ReLU student learning a ReLU teacher under x ~ N(0, I).

Safran & Shamir (2018), "Spurious local minima are common in two-layer ReLU networks": teacher
x -> sum_j relu(v_j . x) with orthonormal v (k units), student x -> sum_i relu(w_i . x) (n units),
both with output weights fixed to one, and the population squared loss

  L(w) = 1/2 E[(sum_i relu(w_i . x) - sum_j relu(v_j . x))^2],

which needs no data: E[relu(a . x) relu(b . x)] = |a||b| / (2 pi) (sin t + (pi - t) cos t), t the
angle between a and b (the arc-cosine kernel of degree 1; Cho & Saul 2009).

Written in c = cos t, d/dc (sqrt(1 - c^2) + (pi - arccos c) c) = pi - arccos c is finite at
c = 1, but autodiff of each term alone is inf - inf = NaN there, so the kernel has a hand-written
JVP; its slope has one too, whose derivative 1 / sqrt(1 - c^2) is set to 0 at c = 1 (the limit of
its product with dc^2 as the angle closes), so the Hessian is finite at aligned units. A unit's
kernel with itself is |w|^2 / 2, written out.

  student, data, loss = relu_student(n=8, k=8)
  out = gbl.sweep(student, optax.sgd(0.1), data, key=key, seeds=64, steps=6000, loss=loss,
                  grad_tol=1e-4)
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gbl_jax.checks import require_int
from gbl_jax.data.data_record import Data
from gbl_jax.nets.models import Model


@jax.custom_jvp
def arc_kernel(c: jax.Array) -> jax.Array:
    """sqrt(1 - c^2) + (pi - arccos c) c for c in [-1, 1] (clipped); elementwise."""
    c = jnp.clip(c, -1.0, 1.0)
    return jnp.sqrt(1.0 - c * c) + (math.pi - jnp.arccos(c)) * c


@jax.custom_jvp
def _arc_slope(c):
    """pi - arccos c, the kernel's derivative."""
    return math.pi - jnp.arccos(jnp.clip(c, -1.0, 1.0))


@arc_kernel.defjvp
def _arc_kernel_jvp(primals, tangents):
    (c,), (dc,) = primals, tangents
    return arc_kernel(c), _arc_slope(c) * dc


@_arc_slope.defjvp
def _arc_slope_jvp(primals, tangents):
    (c,), (dc,) = primals, tangents
    # 1 / sqrt(1 - c^2) is infinite at c = 1, but there dc vanishes to first order in the angle,
    # so its term of the Hessian tends to 0.
    s = 1.0 - jnp.clip(c, -1.0, 1.0) ** 2
    safe = jnp.where(s > 0, s, 1.0)
    return _arc_slope(c), jnp.where(s > 0, jax.lax.rsqrt(safe), 0.0) * dc


def relu_gram(a: jax.Array, b: jax.Array) -> jax.Array:
    """E[relu(a_i . x) relu(b_j . x)] under x ~ N(0, I) for rows of a [p, d], b [q, d]: [p, q].

    Rows must be nonzero (the angle is undefined at 0); for a with itself use ``relu_self_gram``.
    """
    na, nb = jnp.linalg.norm(a, axis=1), jnp.linalg.norm(b, axis=1)
    cos = (a @ b.T) / (na[:, None] * nb[None, :])
    return na[:, None] * nb[None, :] * arc_kernel(cos) / (2 * math.pi)


def relu_self_gram(a: jax.Array) -> jax.Array:
    """``relu_gram(a, a)`` with the diagonal |a_i|^2 / 2 written out (its angle is always 0)."""
    diag = jnp.eye(a.shape[0], dtype=bool)
    na = jnp.linalg.norm(a, axis=1)
    cos = jnp.where(diag, 0.0, (a @ a.T) / (na[:, None] * na[None, :]))
    off = na[:, None] * na[None, :] * arc_kernel(cos) / (2 * math.pi)
    return jnp.where(diag, 0.5 * jnp.sum(a * a, axis=1)[:, None], off)


def relu_population_loss(w: jax.Array, v: jax.Array) -> jax.Array:
    """1/2 E[(sum_i relu(w_i . x) - sum_j relu(v_j . x))^2], student w [n, d], teacher v [k, d]."""
    return 0.5 * (relu_self_gram(w).sum() - 2 * relu_gram(w, v).sum() + relu_self_gram(v).sum())


class PopulationProblem(NamedTuple):
    """A student model, dummy data (the loss needs none) and the loss ``loss(w, y)`` for sweep."""

    model: Model
    data: Data
    loss: Callable


def relu_student(n: int, k: int) -> PopulationProblem:
    """n ReLU units learning the teacher e_1..e_k on R^k (Safran & Shamir 2018).

    The model's params are the student's weights w [n, k], Xavier (Glorot) normal; ``apply``
    hands them to the loss. Data: x [1, k] and y [1, 1] zeros, a placeholder the loss ignores.
    """
    require_int("n", n, 1)
    require_int("k", k, 1)
    teacher = jnp.eye(k)

    def init(key, x):
        return jax.random.normal(key, (n, k), x.dtype) * math.sqrt(2.0 / (n + k))

    def loss(w, y):
        return relu_population_loss(w, teacher.astype(w.dtype))

    data = Data(jnp.zeros((1, k)), jnp.zeros((1, 1)), None, f"relu_teacher k={k}")
    return PopulationProblem(Model(init, lambda w, x: w, name=f"relu student n={n}"), data, loss)
