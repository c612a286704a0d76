"""Probes: what a run's training went through, measured at the end of every logging window.

``gbl.sweep(..., probes={"sharpness": gbl.probes.sharpness()})`` evaluates each probe inside the
step loop at each window's end, on the params there and the full-batch training objective
``L(params) = loss(model.apply(params, x), y)``; ``out.probes[name]`` holds the values with the
seeds' axis, ``grid_shape + (seeds, windows, ...)`` (a probe may return any pytree of arrays).
NaN from the window a run diverged in.

A probe is a ``Probe(fn, init)``: ``init(params) -> state`` sees the initial params,
``fn(objective, params, state) -> (value, state)`` runs at each window's end, and the state rides
in the run's carry from window to window (a warm start). A plain ``fn(objective, params) ->
value`` is a stateless probe. Equal probes (``sharpness(iters=20)`` built twice) compare equal,
so the compiled run is reused.

References:
  Cohen, Kaur, Li, Kolter & Talwalkar (2021), "Gradient descent on neural networks typically
  occurs at the edge of stability": sharpness by power iteration on Hessian-vector products.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from gbl_jax.checks import require_int

__all__ = ["Probe", "distance_from_init", "grad_norm", "sharpness"]


def _stateless(params):
    return ()


class Probe(NamedTuple):
    """A probe: ``fn(objective, params, state) -> (value, state)``, ``init(params) -> state``.

    ``options`` (hashable) are passed to ``fn`` and ``init`` as keywords, so that two probes
    built with the same options are equal (one compiled run serves both).
    """

    fn: Callable
    init: Callable = _stateless
    options: tuple = ()

    def start(self, params):
        return self.init(params, **dict(self.options))

    def __call__(self, objective, params, state):
        return self.fn(objective, params, state, **dict(self.options))


def _dot(a, b) -> jax.Array:
    return sum(jnp.vdot(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)))


def hvp(objective: Callable, params, v):
    """H v for the Hessian H of ``objective`` at ``params``: forward-over-reverse
    (``jax.jvp`` of ``jax.grad``), one gradient's cost twice over, no Hessian formed."""
    return jax.jvp(jax.grad(objective), (params,), (v,))[1]


def _sharpness_init(params, *, iters):
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(0), len(leaves))
    v = jax.tree.unflatten(
        treedef,
        [jax.random.normal(k, jnp.shape(a), jnp.result_type(a)) for k, a in zip(keys, leaves)],
    )
    return jax.tree.map(lambda a: a / _norm(v).astype(a.dtype), v)


def _sharpness(objective, params, v, *, iters):
    def body(_, carry):
        v, _ = carry
        hv = hvp(objective, params, v)
        size = _norm(hv)
        # a zero H v (a flat point) leaves v as it was instead of dividing by 0
        safe = jnp.where(size > 0, size, 1.0)
        return jax.tree.map(
            lambda h, u: jnp.where(size > 0, h / safe.astype(h.dtype), u), hv, v
        ), _dot(v, hv)

    v, value = jax.lax.fori_loop(0, iters, body, (v, jnp.zeros((), jnp.float32)))
    return jnp.asarray(value, jnp.float32), v


def sharpness(iters: int = 20) -> Probe:
    """The top eigenvalue of the Hessian of the full-batch training objective, by power iteration.

    ``iters`` Hessian-vector products (``hvp``) per window, warm-started from the previous
    window's vector (the first from a fixed random unit vector); the value is the Rayleigh
    quotient v^T H v of the last iterate before its update. Power iteration finds the eigenvalue
    of largest magnitude: the top one whenever it dominates the negative ones, as along training
    (Cohen et al. 2021). Under full-batch gradient descent with step size lr it rises to about
    2 / lr (the edge of stability).

    Args:
      iters: Hessian-vector products per window (>= 1).
    """
    return Probe(_sharpness, _sharpness_init, (("iters", require_int("iters", iters, 1)),))


def _grad_norm(objective, params, state):
    return jnp.asarray(_norm(jax.grad(objective)(params)), jnp.float32), state


def grad_norm() -> Probe:
    """The global L2 norm of the full-batch training objective's gradient."""
    return Probe(_grad_norm)


def _remember(params):
    return params


def _distance(objective, params, init):
    return jnp.asarray(_norm(jax.tree.map(jnp.subtract, params, init)), jnp.float32), init


def distance_from_init() -> Probe:
    """||params - initial params||, the global L2 norm over every leaf."""
    return Probe(_distance, _remember)


class _Plain(NamedTuple):
    fn: Callable

    def __call__(self, objective, params, state):
        return self.fn(objective, params), state


def check_probes(probes: Mapping[str, Any] | None) -> tuple:
    """``probes`` as ((name, Probe), ...); a plain ``fn(objective, params)`` becomes a stateless
    Probe. Raises ValueError for names that are not strings or values that are not callable."""
    if probes is None:
        return ()
    if not isinstance(probes, Mapping):
        raise ValueError(f"probes must be a dict {{name: probe}}, got {type(probes).__name__}")
    out = []
    for name, probe in probes.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"probes: names must be non-empty strings, got {name!r}")
        if not isinstance(probe, Probe):
            if not callable(probe):
                raise ValueError(
                    f"probes[{name!r}] must be a gbl.probes probe or a function "
                    f"(objective, params) -> value, got {probe!r}"
                )
            probe = Probe(_Plain(probe))
        out.append((name, probe))
    return tuple(out)
