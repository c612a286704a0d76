"""What each seed converged to: the gradient and the Hessian's spectrum at its final params.

At a point where the gradient (nearly) vanishes, the Hessian's eigenvalues say what it is: all
>= 0 a minimum (zeros are flat directions), some < 0 a saddle. Eigenvalues within
``eig_tol * max(1, rho)`` of zero count as flat, where rho is the largest |eigenvalue|.

Small models (P <= ``max_exact`` parameters) get the whole spectrum: ``ravel_pytree``,
``jax.hessian``, ``eigvalsh``, vmapped over seeds in chunks of bounded memory. Larger ones get the
extreme eigenvalues from Lanczos iteration on Hessian-vector products.

References:
  Dauphin et al. (2014), "Identifying and attacking the saddle point problem in high-dimensional
  non-convex optimization".
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gbl_jax.analysis.seed_chunks import analysis_chunk, over_seeds
from gbl_jax.checks import require_finite_number, require_int
from gbl_jax.engine.results import SweepResult, stacked_of
from gbl_jax.nets.models import apply_model, check_model
from gbl_jax.probability.costs import nll

KINDS = ("minimum", "saddle", "not_converged", "diverged")


class CriticalPoints(NamedTuple):
    """Per-seed curvature at the given params; every array is host numpy of shape [seeds].

    Attributes:
      loss: the full-data loss.
      grad_norm: the full-data gradient's L2 norm.
      min_eig, max_eig: the Hessian's extreme eigenvalues.
      index: fraction of eigenvalues below ``-eig_tol * max(1, rho)``; NaN for Lanczos.
      n_flat: number of eigenvalues within that of zero; -1 for Lanczos.
      kind: "minimum" | "saddle" | "not_converged" | "diverged" (see ``critical_points``).
      method: "exact" or "lanczos".
      grad_tol, eig_tol: the tolerances used.
      eigenvalues: the ascending spectra [seeds, P] (exact path), else None.
    """

    loss: np.ndarray
    grad_norm: np.ndarray
    min_eig: np.ndarray
    max_eig: np.ndarray
    index: np.ndarray  # type: ignore[assignment]  # the field shadows tuple.index
    n_flat: np.ndarray
    kind: np.ndarray
    method: str
    grad_tol: float
    eig_tol: float
    eigenvalues: np.ndarray | None

    def counts(self) -> dict[str, int]:
        """Seeds of each kind, every kind present."""
        return {k: int(np.sum(self.kind == k)) for k in KINDS}


def _check_data(data) -> tuple[jax.Array, jax.Array]:
    if not isinstance(data, tuple) or len(data) != 2:
        raise ValueError(f"data must be an (x, y) pair, got {type(data).__name__}")
    x, y = (jnp.asarray(a) for a in data)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"data: x {list(x.shape)} and y {list(y.shape)} need the same leading (examples) axis"
        )
    return x, y


def _check_stacked(model, x, params) -> int:
    """The number of seeds; raises unless every leaf is [seeds] + its shape from model.init."""
    leaves, treedef = jax.tree.flatten(params)
    if not leaves:
        raise ValueError("params has no arrays")
    shapes = [tuple(jnp.shape(a)) for a in leaves]
    if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
        raise ValueError(
            f"params must be stacked over seeds (every leaf [seeds, ...], e.g. "
            f"sweep(..., keep_params=True).params, or of a grid sweep one cell's: "
            f"out.cell(...)); leaf shapes are {shapes}"
        )
    ref = jax.eval_shape(lambda k: model.init(k, x), jax.random.PRNGKey(0))
    if jax.tree.structure(ref) != treedef:
        raise ValueError(
            f"params is not a params tree of this model: structure {treedef}, "
            f"model.init gives {jax.tree.structure(ref)}"
        )
    for shape, ref_leaf in zip(shapes, jax.tree.leaves(ref)):
        if len(shape) > len(ref_leaf.shape) + 1 and shape[
            -len(ref_leaf.shape) or len(shape) :
        ] == tuple(ref_leaf.shape):
            raise ValueError(
                f"params has {len(shape) - len(ref_leaf.shape) - 1} leading axes before the seeds "
                f"(a leaf of shape {list(shape)}): a grid sweep's params; take one cell with "
                "out.cell(name=value, ...) and pass it (or its .params)"
            )
        if shape[1:] != tuple(ref_leaf.shape):
            raise ValueError(
                f"params must be stacked over seeds: a leaf of shape {list(shape)} should be "
                f"[seeds] + {list(ref_leaf.shape)} (its shape from model.init); stack single runs "
                "with jax.tree.map(lambda *a: jnp.stack(a), *params_list)"
            )
    return shapes[0][0]


def _spectrum_stats(eig: jax.Array, eig_tol: float):
    """Index and number of flat directions of one ascending spectrum."""
    threshold = eig_tol * jnp.maximum(1.0, jnp.max(jnp.abs(eig)))
    return jnp.mean(eig < -threshold), jnp.sum(jnp.abs(eig) <= threshold)


def _lanczos_extremes(hvp: Callable, key: jax.Array, dim: int, steps: int, dtype):
    """(smallest, largest) Ritz values of ``steps`` Lanczos steps with full reorthogonalization.

    Lanczos is shift-invariant (H and H - sI span the same Krylov space), so one run gives both
    ends; a shifted operator only helps power iteration.
    """
    # Row 0 starts the run; row i + 1 restarts it after a breakdown at step i.
    random_KP = jax.random.normal(key, (steps + 1, dim), dtype)
    eps = jnp.finfo(dtype).eps

    def orthogonalize(w, basis):
        # Twice is enough (Kahan's "twice is enough" for classical Gram-Schmidt).
        w = w - basis.T @ (basis @ w)
        return w - basis.T @ (basis @ w)

    def step(i, carry):
        basis, alpha, beta, v, scale = carry
        basis = basis.at[i].set(v)
        w = hvp(v)
        a = jnp.vdot(v, w)
        w = orthogonalize(w, basis)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.abs(a) + b)
        # An invariant subspace was found: go on from a random direction orthogonal to it (beta = 0
        # splits T into blocks, each a projection of H, so no Ritz value leaves H's range).
        fresh = orthogonalize(random_KP[i + 1], basis)
        broke = b <= 100 * eps * scale
        v_next = jnp.where(broke, fresh / jnp.linalg.norm(fresh), w / jnp.where(broke, 1, b))
        return basis, alpha.at[i].set(a), beta.at[i].set(jnp.where(broke, 0, b)), v_next, scale

    v0 = random_KP[0]
    init = (
        jnp.zeros((steps, dim), dtype),
        jnp.zeros(steps, dtype),
        jnp.zeros(steps, dtype),
        v0 / jnp.linalg.norm(v0),
        jnp.zeros((), dtype),
    )
    _, alpha, beta, _, _ = jax.lax.fori_loop(0, steps, step, init)
    tridiagonal = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    ritz = _safe_eigvalsh(tridiagonal)
    return ritz[0], ritz[-1]


def _safe_eigvalsh(matrix: jax.Array) -> jax.Array:
    """eigvalsh, NaN for a non-finite matrix (never handed to LAPACK)."""
    finite = jnp.all(jnp.isfinite(matrix))
    eig = jnp.linalg.eigvalsh(jnp.where(finite, matrix, 0))
    return jnp.where(finite, eig, jnp.nan)


def critical_points(
    model,
    data,
    params,
    *,
    loss: Callable[[Any, jax.Array], jax.Array] = nll,
    grad_tol: float = 1e-3,
    eig_tol: float = 1e-4,
    diverged=None,
    max_exact: int = 2000,
    chunk_size: int | None = None,
    lanczos_steps: int = 64,
    key: jax.Array | None = None,
) -> CriticalPoints:
    """Classifies each seed's params as a minimum, a saddle, not converged, or diverged.

    A seed is "diverged" if flagged in ``diverged`` or if its params, loss, gradient or
    curvature are non-finite; else "not_converged" if its gradient norm exceeds ``grad_tol``;
    else "saddle" if its smallest eigenvalue is below ``-eig_tol * max(1, rho)`` (rho the
    largest |eigenvalue|), else "minimum".

    Args:
      model: any model (``init``, ``apply``); stochastic ones are evaluated with ``key=None``.
      data: an (x [N, ...], y [N, ...]) pair; the loss and its derivatives use all of it.
      params: stacked over seeds: every leaf [seeds, ...], as ``sweep(..., keep_params=True)``;
        or a ``SweepResult`` without a grid (``out.cell(...)``), whose final params and
        ``diverged`` flags are used.
      loss: any ``(dist, y) -> scalar``.
      grad_tol: gradient norm at or below which a seed has converged.
      eig_tol: relative tolerance for an eigenvalue to count as zero.
      diverged: optional bool [seeds], e.g. ``sweep(...).diverged``.
      max_exact: the largest parameter count P that gets the exact spectrum; above it Lanczos.
      chunk_size: seeds per vmapped chunk (default: as many as fit
        ``seed_chunks.ANALYSIS_CHUNK_BYTES``).
      lanczos_steps: Lanczos iterations (at most P are run).
      key: start vectors for Lanczos (default ``PRNGKey(0)``).

    Returns:
      A ``CriticalPoints`` of host numpy arrays. Each call compiles once (a jitted, vmapped chunk;
      the last chunk is padded).

    Raises:
      ValueError: params not stacked over seeds, bad tolerances, or mismatched data.

    References:
      Dauphin et al. (2014), "Identifying and attacking the saddle point problem in
      high-dimensional non-convex optimization", section 3 and figure 1.
    """
    check_model(model)
    if isinstance(params, SweepResult):
        params, _, flags = stacked_of(params, "critical_points")
        diverged = flags if diverged is None else diverged
    grad_tol = require_finite_number("critical_points: grad_tol", grad_tol, nonnegative=True)
    eig_tol = require_finite_number("critical_points: eig_tol", eig_tol, nonnegative=True)
    max_exact = require_int("critical_points: max_exact", max_exact, 0)
    lanczos_steps = require_int("critical_points: lanczos_steps", lanczos_steps, 1)
    x, y = _check_data(data)
    seeds = _check_stacked(model, x, params)
    flagged = np.zeros(seeds, bool) if diverged is None else np.asarray(diverged, bool)
    if flagged.shape != (seeds,):
        raise ValueError(f"diverged must have shape [seeds] = [{seeds}], got {list(flagged.shape)}")

    flat_SP = jax.vmap(lambda p: ravel_pytree(p)[0])(params)
    unravel = ravel_pytree(jax.tree.map(lambda a: a[0], params))[1]
    dim, dtype = flat_SP.shape[1], flat_SP.dtype
    exact = dim <= max_exact
    steps = min(lanczos_steps, dim)

    def objective(theta, x, y):
        return loss(apply_model(model, unravel(theta), x, key=None), y)

    out = jax.eval_shape(objective, flat_SP[0], x, y)
    if out.shape != ():
        raise ValueError(f"loss must return a scalar, got shape {list(out.shape)}")

    def one_seed(theta, seed_key, x, y):
        f = lambda t: objective(t, x, y)  # noqa: E731
        value, grad = jax.value_and_grad(f)(theta)
        if exact:
            hessian = jax.hessian(f)(theta)
            eig = _safe_eigvalsh(0.5 * (hessian + hessian.T))
            index, n_flat = _spectrum_stats(eig, eig_tol)
            return value, jnp.linalg.norm(grad), eig[0], eig[-1], index, n_flat, eig
        hvp = lambda v: jax.jvp(jax.grad(f), (theta,), (v,))[1]  # noqa: E731
        lo, hi = _lanczos_extremes(hvp, seed_key, dim, steps, dtype)
        return value, jnp.linalg.norm(grad), lo, hi

    chunk = analysis_chunk(
        chunk_size,
        seeds,
        3 * dim * (dim if exact else steps) * dtype.itemsize,
        "critical_points: chunk_size",
    )
    # each seed's Lanczos start: split(key, seeds padded to whole chunks), as it always was
    keys = jax.random.split(
        jax.random.PRNGKey(0) if key is None else key, -(-seeds // chunk) * chunk
    )[:seeds]
    results = list(
        over_seeds(one_seed, (flat_SP, keys, x, y), (True, True, False, False), seeds, chunk)
    )
    value, grad_norm, min_eig, max_eig = results[:4]
    if exact:
        index, n_flat, eigenvalues = results[4], results[5].astype(np.int64), results[6]
    else:
        index, n_flat, eigenvalues = np.full(seeds, np.nan), np.full(seeds, -1), None

    finite_params = np.all(np.isfinite(np.asarray(flat_SP[:seeds])), axis=1)
    finite = finite_params & np.isfinite(value) & np.isfinite(grad_norm) & np.isfinite(min_eig)
    finite &= np.isfinite(max_eig)
    index = np.where(finite, index, np.nan)
    n_flat = np.where(finite, n_flat, -1)
    threshold = eig_tol * np.maximum(1.0, np.maximum(np.abs(min_eig), np.abs(max_eig)))
    kind = np.where(min_eig < -threshold, "saddle", "minimum")
    kind = np.where(grad_norm > grad_tol, "not_converged", kind)
    kind = np.where(flagged | ~finite, "diverged", kind).astype(str)
    return CriticalPoints(
        value,
        grad_norm,
        min_eig,
        max_eig,
        index,
        n_flat,
        kind,
        "exact" if exact else "lanczos",
        grad_tol,
        eig_tol,
        eigenvalues,
    )
