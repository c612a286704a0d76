"""The loss surface around each seed's trained params: 1-D and 2-D slices (Li et al. 2018).

``surface`` evaluates L(theta + a_1 d_1 + ... + a_k d_k) on a grid of (a_1, ..., a_k) around
every seed's final params theta, along directions that are filter-normalized random draws, the
principal directions of the seed's own training trajectory, or given by the user. Every seed and
every grid point is one vmapped program (``seed_chunks.over_seeds`` over seeds, ``lax.map`` in
batches over the grid), chunked so that one step holds at most ``ANALYSIS_CHUNK_BYTES`` (on
CPU, ``CPU_CACHE_BUDGET``: batched matmuls out of cache measured up to 2.5x slower a point).

References:
  Li, Xu, Taylor, Studer & Goldstein (2018), "Visualizing the loss landscape of neural nets":
    filter normalization (section 4), trajectory PCA (section 7).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gbl_jax.analysis.seed_chunks import ANALYSIS_CHUNK_BYTES, analysis_chunk, over_seeds
from gbl_jax.analysis.stacked_params import init_shapes, is_stacked, leaf_shapes
from gbl_jax.checks import require_finite_number, require_int
from gbl_jax.engine.chunking import CPU_CACHE_BUDGET
from gbl_jax.engine.results import SweepResult, stacked_of
from gbl_jax.nets.models import apply_model, check_model
from gbl_jax.probability.costs import Loss, accuracy, nll

DIRECTIONS = ("filter", "pca")


class Surface(NamedTuple):
    """Values of the loss (and accuracy) on a grid around each seed's params.

    Attributes:
      coords: [points] the grid along every direction: span * (-1 ... 1), 0 in the middle when
        ``points`` is odd.
      values: {name: [seeds, draws, points, ...(dims times)]}: "loss" and, for classifiers,
        "accuracy" on the training data; "test_loss", "test_accuracy" on the held-out split.
        NaN for diverged seeds.
      directions: "filter", "pca" or "given".
      diverged: [seeds] seeds left out (NaN everywhere).
      explained: [seeds, dims] with "pca": the share of the trajectory's variance each
        direction explains; else None.
      path: [seeds, checkpoints, dims] with "pca": the trajectory projected on the directions
        (in grid units, the final params at 0); else None.
    """

    coords: np.ndarray
    values: dict
    directions: str
    diverged: np.ndarray
    explained: np.ndarray | None = None
    path: np.ndarray | None = None

    @property
    def dims(self) -> int:
        return next(iter(self.values.values())).ndim - 2

    def band(self, name: str = "loss", *, over: str = "both", level: float = 0.95):
        """(median, low, high) over the grid: the central ``level`` range of the values over
        seeds ("seeds": the first draw of each), over directions ("draws": within each seed,
        then the median over seeds) or over both (every seed and draw pooled). Diverged seeds
        are left out. Each [points, ...]."""
        if name not in self.values:
            raise ValueError(f"band: no {name!r}; this surface has {sorted(self.values)}")
        if over not in ("seeds", "draws", "both"):
            raise ValueError(f"band: over must be 'seeds', 'draws' or 'both', got {over!r}")
        v = np.asarray(self.values[name], np.float64)[~self.diverged]
        q = [(1 - level) / 2, 0.5, (1 + level) / 2]
        if over == "seeds":
            low, mid, high = np.nanquantile(v[:, 0], q, axis=0)
        elif over == "draws":
            low, mid, high = np.nanmedian(np.nanquantile(v, q, axis=1), axis=1)
        else:
            low, mid, high = np.nanquantile(v.reshape((-1,) + v.shape[2:]), q, axis=0)
        return mid, low, high

    def mean_interval(
        self,
        name: str = "loss",
        *,
        over: str = "seeds",
        level: float = 0.95,
        resamples: int = 2000,
        seed: int = 0,
    ):
        """(mean, low, high) over the grid: the mean value and its percentile-bootstrap
        ``level`` interval, resampling seeds (each seed's mean over its draws) or directions
        (each draw's mean over the seeds); diverged seeds left out. Each [points, ...].

        References:
          round 4's convention: percentile bootstrap, >= 2,000 resamples, a seeded numpy
          Generator.
        """
        if name not in self.values:
            raise ValueError(f"mean_interval: no {name!r}; this surface has {sorted(self.values)}")
        if over not in ("seeds", "draws"):
            raise ValueError(f"mean_interval: over must be 'seeds' or 'draws', got {over!r}")
        resamples = require_int("mean_interval: resamples", resamples, 1)
        v = np.asarray(self.values[name], np.float64)[~self.diverged]
        v = v.mean(axis=1) if over == "seeds" else v.mean(axis=0)  # [n, points...]
        n = v.shape[0]
        if n == 0:
            raise ValueError("mean_interval: every seed diverged")
        # resample as multinomial counts: [resamples, n] @ [n, grid] instead of gathering
        counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), resamples)
        means = counts @ v.reshape(n, -1) / n
        low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2], axis=0)
        shape = v.shape[1:]
        return v.mean(axis=0), low.reshape(shape), high.reshape(shape)

    def to_frame(self):
        """One row per seed, draw and grid point: seed, draw, a1..ak and every value."""
        import pandas as pd

        shape = next(iter(self.values.values())).shape
        index = np.indices(shape).reshape(len(shape), -1)
        cols = {"seed": index[0], "draw": index[1]}
        for k in range(self.dims):
            cols[f"a{k + 1}"] = self.coords[index[2 + k]]
        cols.update({n: np.asarray(v).reshape(-1) for n, v in self.values.items()})
        return pd.DataFrame(cols)


def default_filter_axes(params) -> Any:
    """Li et al.'s filters: the last axis (one output unit) of each leaf of ndim >= 2, None
    (no direction) for biases and other leaves of ndim < 2."""
    return jax.tree.map(lambda p: -1 if np.ndim(p) >= 2 else None, params)


def filter_normalize(direction, params, axes, biases: bool = False):
    """``direction`` with each filter rescaled to the norm of the same filter of ``params``.

    Args:
      direction, params: two trees of one structure and shapes.
      axes: a tree of the same structure: per leaf the axis that indexes its filters, or None
        for a leaf whose direction is zero (with ``biases``, such a leaf is one filter).
      biases: keep leaves of axis None as one whole filter instead of zeroing them.

    Returns:
      d_j / ||d_j|| * ||theta_j|| for every filter j (norms over every other axis).

    References:
      Li et al. (2018), section 4, equation (filter-wise normalization).
    """

    def one(d, p, axis):
        if axis is None:
            if not biases:
                return jnp.zeros_like(d)
            return d / (jnp.linalg.norm(d) + 1e-10) * jnp.linalg.norm(p)
        axis = axis % d.ndim
        other = tuple(i for i in range(d.ndim) if i != axis)
        norm = lambda a: jnp.sqrt(jnp.sum(jnp.square(a), axis=other, keepdims=True))  # noqa
        return d / (norm(d) + 1e-10) * norm(p)

    leaves, treedef = jax.tree.flatten(direction)
    return jax.tree.unflatten(
        treedef,
        [
            one(d, p, a)
            for d, p, a in zip(leaves, treedef.flatten_up_to(params), treedef.flatten_up_to(axes))
        ],
    )


def _axes_of(model, params_one, filter_axes):
    """The filter axes tree: the argument, the model's ``filter_axes(params)``, or Li's rule."""
    fn = filter_axes if filter_axes is not None else getattr(model, "filter_axes", None)
    axes = (
        default_filter_axes(params_one) if fn is None else (fn(params_one) if callable(fn) else fn)
    )
    want = jax.tree.structure(params_one)
    try:  # an axis (or None) where the params have a leaf
        flat = want.flatten_up_to(axes)
    except (ValueError, TypeError):
        raise ValueError(
            f"surface: filter_axes has structure "
            f"{jax.tree.structure(axes, is_leaf=lambda a: a is None)}; the params "
            f"have {want}"
        ) from None
    for a, p in zip(flat, jax.tree.leaves(params_one)):
        if a is not None and not (
            isinstance(a, (int, np.integer)) and -np.ndim(p) <= a < np.ndim(p)
        ):
            raise ValueError(
                f"surface: filter axis {a!r} for a leaf of shape "
                f"{list(np.shape(p))}; each must be an axis of its leaf or None"
            )
    return axes


def pca_directions(trajectory, params, dims: int):
    """Per seed, the top ``dims`` principal directions of [theta_t - theta_final].

    Args:
      trajectory: params with leading [seeds, checkpoints] axes (``out.trajectory``).
      params: the final params, [seeds, ...] on every leaf.
      dims: directions per seed.

    Returns:
      (directions with leading [seeds, dims] axes, each scaled to the trajectory's largest
      |projection| on it so that a grid coordinate of 1 reaches the farthest checkpoint;
      explained [seeds, dims] variance shares; path [seeds, checkpoints, dims] in grid units).

    References:
      Li et al. (2018), section 7.
    """
    flat_t = np.concatenate(
        [
            np.asarray(a, np.float64).reshape(a.shape[:2] + (-1,))
            for a in jax.tree.leaves(trajectory)
        ],
        axis=-1,
    )
    flat_p = np.concatenate(
        [np.asarray(a, np.float64).reshape(a.shape[:1] + (-1,)) for a in jax.tree.leaves(params)],
        axis=-1,
    )
    seeds, checkpoints = flat_t.shape[:2]
    if checkpoints < dims:
        raise ValueError(
            f"surface: directions='pca' with dims={dims} needs at least {dims} "
            f"checkpoints; the trajectory has {checkpoints}"
        )
    dirs = np.zeros((seeds, dims, flat_p.shape[1]))
    explained = np.full((seeds, dims), np.nan)
    path = np.full((seeds, checkpoints, dims), np.nan)
    for s in range(seeds):
        m = flat_t[s] - flat_p[s]
        if not np.isfinite(m).all():
            continue
        _, sv, vt = np.linalg.svd(m, full_matrices=False)
        total = np.sum(sv**2)
        proj = m @ vt[:dims].T  # [checkpoints, dims]
        scale = np.maximum(np.max(np.abs(proj), axis=0), 1e-12)
        dirs[s] = vt[:dims] * scale[:, None]
        explained[s] = sv[:dims] ** 2 / total if total > 0 else 0.0
        path[s] = proj / scale
    leaves, treedef = jax.tree.flatten(params)
    out, at = [], 0
    for leaf in leaves:
        size = int(np.prod(leaf.shape[1:]))
        out.append(
            dirs[:, :, at : at + size].reshape((seeds, dims) + leaf.shape[1:]).astype(leaf.dtype)
        )
        at += size
    return jax.tree.unflatten(treedef, out), explained, path


def _stacked_params(model, x, out):
    """(params [seeds, ...], diverged [seeds], trajectory or None) of a result or a params tree."""
    if isinstance(out, SweepResult):
        params, _, diverged = stacked_of(out, "surface")
        return params, diverged, getattr(out, "trajectory", None)
    ref = init_shapes(model, x)
    if ref is not None and not is_stacked("surface", "params", out, ref):
        out = jax.tree.map(lambda a: jnp.asarray(a)[None], out)
    shapes = leaf_shapes(out)
    if not shapes or len({s[0] if s else None for s in shapes}) != 1 or not all(shapes):
        raise ValueError(
            f"surface: params must be a SweepResult (keep_params=True) or params "
            f"stacked over seeds, got leaf shapes {shapes}"
        )
    return out, np.zeros(shapes[0][0], bool), None


def _classifier_metric(model, params_one, x, y) -> bool:
    """Whether ``accuracy`` applies to the model's output on (x, y)."""
    try:
        jax.eval_shape(lambda p: accuracy(apply_model(model, p, x, None), y), params_one)
        return True
    except (ValueError, TypeError):
        return False


def surface(
    model,
    data,
    out,
    *,
    dims: int = 2,
    points: int = 41,
    span: float = 1.0,
    directions: Any = "filter",
    draws: int = 1,
    key: jax.Array | None = None,
    biases: bool = False,
    filter_axes: Any = None,
    eval_data=None,
    loss: Loss = nll,
    chunk_size: int | None = None,
) -> Surface:
    """The loss (and accuracy) around every seed's final params on a ``points^dims`` grid.

    Value at grid point (a_1, .., a_k) of seed s, draw r: L(theta_s + sum_k a_k d_{s,r,k}).

    Args:
      model: any model (``init``, ``apply``); evaluated with ``key=None``.
      data: an (x [N, ...], y [N, ...]) pair; its ``test`` split (or ``eval_data``) gives the
        held-out values.
      out: a ``SweepResult`` without a grid (``out.cell(...)``) run with ``keep_params`` (and
        ``keep_trajectory`` for "pca"), or params stacked over seeds (or one seed's).
      dims: 1 (curves) or 2 (surfaces), or more.
      points: grid points along each direction, >= 2 (odd keeps 0 on the grid).
      span: the grid runs over [-span, span] along each direction.
      directions: "filter" (Li et al.: each direction d ~ N(0, I) drawn per seed and draw, each
        filter rescaled to the norm of the params' same filter, see ``filter_normalize``),
        "pca" (each seed's top principal directions of its trajectory, scaled to reach its
        farthest checkpoint at 1; needs ``keep_trajectory`` on the sweep), or a params tree
        with leading [dims] (shared) or [seeds, dims] axes, used as given.
      draws: random direction sets per seed ("filter" only): the spread over them says how
        much a picture depends on its direction.
      key: draws the "filter" directions (default ``jax.random.PRNGKey(0)``); seed s, draw r
        uses ``fold_in(fold_in(key, s), r)``.
      biases: "filter": give leaves without filters (biases) a direction too, each rescaled
        as one filter; by default they stay at zero.
      filter_axes: a tree like one seed's params (or a function of them) with the axis of
        each leaf that indexes its filters, None for none; default the model's
        ``filter_axes`` attribute where it has one, else the last axis of every leaf of
        ndim >= 2 (right for ``gbl.mlp``, flax Dense and Conv kernels; an equinox Linear's
        weight is [out, in]: pass axis 0).
      eval_data: held-out (x, y) (default ``data.test`` where it exists).
      loss: ``(dist, y) -> scalar``.
      chunk_size: seeds per compiled call (default: from ``ANALYSIS_CHUNK_BYTES``).

    Returns:
      A ``Surface``.

    References:
      Li et al. (2018), "Visualizing the loss landscape of neural nets", sections 4 and 7.
    """
    check_model(model)
    dims = require_int("surface: dims", dims, 1)
    points = require_int("surface: points", points, 2)
    draws = require_int("surface: draws", draws, 1)
    span = require_finite_number("surface: span", span, positive=True)
    x, y = map(jnp.asarray, data)
    test = eval_data if eval_data is not None else getattr(data, "test", None)
    params, diverged, trajectory = _stacked_params(model, x, out)
    seeds = leaf_shapes(params)[0][0]
    one = jax.tree.map(lambda a: a[0], params)
    kind, explained, path = "given", None, None
    given = None
    if isinstance(directions, str):
        if directions not in DIRECTIONS:
            raise ValueError(
                f"surface: directions must be one of {DIRECTIONS} or a params "
                f"tree, got {directions!r}"
            )
        kind = directions
        if kind == "pca":
            if draws != 1:
                raise ValueError(
                    f"surface: directions='pca' are fixed per seed; draws must be 1, got {draws}"
                )
            if trajectory is None:
                raise ValueError(
                    "surface: directions='pca' needs each seed's trajectory: run "
                    "the sweep with keep_trajectory=True"
                )
            given, explained, path = pca_directions(trajectory, params, dims)
    else:
        given = _given_directions(directions, one, seeds, dims)
    axes = _axes_of(model, one, filter_axes) if kind == "filter" else None
    key = jax.random.PRNGKey(0) if key is None else key
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.arange(seeds))

    coords = span * (np.arange(points) - (points - 1) / 2) / ((points - 1) / 2)
    grid = np.stack(np.meshgrid(*([coords] * dims), indexing="ij"), -1).reshape(-1, dims)
    splits = [(x, y)] + ([tuple(map(jnp.asarray, test))] if test is not None else [])
    metrics = {"loss": loss}
    if _classifier_metric(model, one, x, y):
        metrics["accuracy"] = accuracy
    names = [
        (f"test_{n}" if i else n, i, f) for i in range(len(splits)) for n, f in metrics.items()
    ]

    n_params = sum(int(np.prod(s)) for s in leaf_shapes(one))
    per_point = 4 * (n_params + 16 * sum(int(np.prod(a.shape)) for a, _ in splits))
    n_grid = draws * len(grid)
    # Points per step of the grid's loop and seeds per call: on CPU as many as keep one step's
    # activations in cache (a point of MNIST-1D's MLP on 4000 examples ran 1.6-1.7 ms alone or
    # 4 at a time, 3.6 ms 8 at a time and 4.2 ms 25 at a time: batched matmuls out of cache).
    cpu = jax.devices()[0].platform == "cpu"
    budget = CPU_CACHE_BUDGET if cpu else ANALYSIS_CHUNK_BYTES
    batch = int(np.clip(budget // per_point, 1, n_grid))
    per_seed = batch * per_point + 4 * n_params * draws * dims
    size = analysis_chunk(chunk_size, seeds, per_seed, "surface: chunk_size", budget=budget)
    grid_j = jnp.asarray(np.tile(grid, (draws, 1)), jnp.float32)  # [draws * P, dims]
    draw_j = jnp.repeat(jnp.arange(draws), len(grid))

    def directions_of(p, k, g):
        if kind == "filter":

            def draw(r):
                ks = jax.random.split(jax.random.fold_in(k, r), dims)

                def one_dir(kd):
                    leaves, treedef = jax.tree.flatten(p)
                    sub = jax.random.split(kd, len(leaves))
                    d = jax.tree.unflatten(
                        treedef,
                        [jax.random.normal(s, a.shape, a.dtype) for s, a in zip(sub, leaves)],
                    )
                    return filter_normalize(d, p, axes, biases)

                return jax.vmap(one_dir)(ks)

            return jax.vmap(draw)(jnp.arange(draws))  # [draws, dims, ...]
        return jax.tree.map(lambda a: a[None], g)  # [1, dims, ...]

    def evaluate(p, k, g, *split_arrays):
        dirs = directions_of(p, k, g)

        def at(point):
            coord, r = point
            moved = jax.tree.map(
                lambda a, d: (a + jnp.tensordot(coord.astype(d.dtype), d[r], axes=1)).astype(
                    a.dtype
                ),
                p,
                dirs,
            )
            vals = []
            for i in range(len(splits)):
                dist = apply_model(model, moved, split_arrays[2 * i], key=None)
                vals += [
                    jnp.asarray(f(dist, split_arrays[2 * i + 1]), jnp.float32)
                    for n, j, f in names
                    if j == i
                ]
            return jnp.stack(vals)

        return jax.lax.map(at, (grid_j, draw_j), batch_size=batch)  # [draws * P, metrics]

    g_arg = given if given is not None else jnp.zeros((seeds,), jnp.float32)
    # given directions carry a seeds axis ([seeds, dims, ...]) or are shared ([dims, ...])
    g_mapped = given is None or len(leaf_shapes(given)[0]) == len(leaf_shapes(one)[0]) + 2
    args = (params, keys, g_arg) + tuple(a for s in splits for a in s)
    mapped = (True, True, g_mapped) + (False,) * (2 * len(splits))
    raw = over_seeds(evaluate, args, mapped, seeds, size)  # [seeds, D*P, M]
    raw = raw.reshape((seeds, draws) + (points,) * dims + (len(names),))
    raw[diverged] = np.nan
    values = {n: raw[..., m] for m, (n, _, _) in enumerate(names)}
    return Surface(coords, values, kind, diverged, explained, path)


def _given_directions(directions, one, seeds: int, dims: int):
    """User directions as [seeds, dims, ...] or [dims, ...] leaves; raises naming the shapes."""
    want = jax.tree.structure(one)
    if jax.tree.structure(directions) != want:
        raise ValueError(
            f"surface: directions has structure {jax.tree.structure(directions)}; "
            f"the params have {want}"
        )
    shapes, single = leaf_shapes(directions), leaf_shapes(one)
    if all(s == (dims,) + r for s, r in zip(shapes, single)):
        return jax.tree.map(jnp.asarray, directions)
    if all(s == (seeds, dims) + r for s, r in zip(shapes, single)):
        return jax.tree.map(jnp.asarray, directions)
    raise ValueError(
        f"surface: directions have leaf shapes {shapes}; with dims={dims} each "
        f"leaf is [dims, ...] or [seeds, dims, ...] around one seed's {single}"
    )


__all__ = ["Surface", "default_filter_axes", "filter_normalize", "pca_directions", "surface"]
