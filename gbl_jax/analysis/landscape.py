"""The loss landscape between trained seeds: straight paths, barriers, alignment and basins.

``interpolate`` and ``barrier`` evaluate the loss on the segment between two parameter vectors
(one pair, or many seeds at once); ``align`` removes the permutation and sign symmetries of an
mlp's hidden units before interpolating; ``basins`` groups seeds by the function they compute.
Nothing here reads a model's params except ``align`` (mlp layout only); this module sits
downstream of the engine, which never imports it.

References:
  Goodfellow, Vinyals & Saxe (2015), "Qualitatively characterizing neural network optimization
    problems"; Frankle et al. (2020), "Linear mode connectivity and the lottery ticket
    hypothesis"; Ainsworth, Hayase & Srinivasa (2023), "Git Re-Basin"; Fort, Hu &
    Lakshminarayanan (2019), "Deep ensembles: a loss landscape perspective".
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

from gbl_jax.analysis.seed_chunks import analysis_chunk, over_seeds
from gbl_jax.analysis.spreads import wilson_interval
from gbl_jax.analysis.stacked_params import init_shapes, is_stacked, leaf_shapes, pair_layout
from gbl_jax.checks import require_finite_number, require_int
from gbl_jax.engine.results import SweepResult, stacked_of
from gbl_jax.nets.mlp import ACTIVATIONS
from gbl_jax.nets.models import apply_model, check_model
from gbl_jax.probability.costs import Loss, nll

_ODD = ("tanh", "identity")  # f(-z) = -f(z): a hidden unit's sign can be flipped too


def _from_result(where: str, params_a, params_b):
    """(params_a, params_b): a ``SweepResult`` (no grid, kept params) as its init -> final."""
    if isinstance(params_a, SweepResult):
        if params_b is not None:
            raise ValueError(
                f"{where}: given a SweepResult, params_b is its final params; pass "
                "params_b=None (or pass two params trees)"
            )
        params, init, _ = stacked_of(params_a, where, need_init=True)
        return init, params
    if params_b is None:
        raise ValueError(
            f"{where}: params_b is missing (it may be None only when params_a is a SweepResult)"
        )
    return params_a, params_b


def path_bytes(num: int, n_params: int, x_size: int) -> int:
    """Bytes one seed's path takes while ``interpolate`` evaluates it, roughly: ``num`` points,
    each a copy of the params and the activations of the data."""
    return 4 * num * (n_params + 16 * x_size)


def interpolate(
    model,
    data,
    params_a,
    params_b=None,
    *,
    num: int = 25,
    loss: Loss = nll,
    chunk_size: int | None = None,
    stacked: bool | None = None,
) -> np.ndarray:
    """The loss along the segment (1 - a) params_a + a params_b, a = linspace(0, 1, num).

    Args:
      model: any model (``init``, ``apply``); evaluated with ``key=None``.
      data: an (x [N, ...], y [N, ...]) pair.
      params_a, params_b: one seed's params, or stacked over seeds (every leaf with a leading
        seeds axis); a single side is broadcast against every seed of the stacked one. Or a
        ``SweepResult`` without a grid (``out.cell(...)``) kept with ``keep_params`` as
        params_a and None: each seed's path from its init to its final params.
      num: points on the segment, >= 2; the first and last are the endpoints.
      loss: ``(dist, y) -> scalar``.
      chunk_size: seeds per compiled call (default: from a rough memory budget).
      stacked: None to tell stacked from single params by ``model.init``'s shapes (where init
        cannot be traced with (key, x): by the trees alone, one side with an extra leading
        axis, or both with one leading size on every leaf); True/False says so for both sides.

    Returns:
      [num] for one pair, [seeds, num] when either side is stacked (host numpy).

    References:
      Goodfellow, Vinyals & Saxe (2015).
    """
    check_model(model)
    params_a, params_b = _from_result("interpolate", params_a, params_b)
    num = require_int("interpolate: num", num, 2)
    x, y = map(jnp.asarray, data)
    a_stacked, b_stacked, seeds = pair_layout("interpolate", model, x, params_a, params_b, stacked)

    def curve(pa, pb, x, y):
        alphas = jnp.linspace(0.0, 1.0, num)

        def at(alpha):
            p = jax.tree.map(
                lambda u, v: ((1 - alpha) * u + alpha * v).astype(jnp.result_type(u)), pa, pb
            )
            return loss(apply_model(model, p, x, key=None), y)

        return jax.vmap(at)(alphas)

    if seeds is None:
        return np.asarray(jax.jit(curve)(params_a, params_b, x, y))
    n_params = sum(int(np.prod(s[1:] if a_stacked else s)) for s in leaf_shapes(params_a))
    size = analysis_chunk(chunk_size, seeds, path_bytes(num, n_params, int(x.size)))
    return over_seeds(
        curve, (params_a, params_b, x, y), (a_stacked, b_stacked, False, False), seeds, size
    )


def barrier(
    model,
    data,
    params_a,
    params_b=None,
    *,
    num: int = 25,
    loss: Loss = nll,
    chunk_size: int | None = None,
    stacked: bool | None = None,
) -> np.ndarray:
    """The loss barrier max_a [L(a) - ((1 - a) L(0) + a L(1))] on the segment between params.

    Args: as for ``interpolate``.

    Returns:
      [] for one pair, [seeds] when stacked (host numpy); 0 when the path is convex.

    References:
      Frankle et al. (2020), definition of linear mode connectivity.
    """
    curve = interpolate(
        model, data, params_a, params_b, num=num, loss=loss, chunk_size=chunk_size, stacked=stacked
    ).astype(np.float64)
    alphas = np.linspace(0.0, 1.0, curve.shape[-1])
    chord = (1 - alphas) * curve[..., :1] + alphas * curve[..., -1:]
    return np.max(curve - chord, axis=-1)


def _mlp_layers(name: str, params, lead: int) -> tuple[list[tuple], tuple]:
    """[(w, b) per hidden layer], (w, b) of the head as numpy; raises unless an mlp's layout."""
    try:
        hidden = [(np.asarray(layer["w"]), np.asarray(layer["b"])) for layer in params["hidden"]]
        head = (np.asarray(params["head"]["w"]), np.asarray(params["head"]["b"]))
        ok = isinstance(params["hidden"], (list, tuple)) and set(params) == {"hidden", "head"}
    except (TypeError, KeyError, IndexError):
        ok = False
    if not ok:
        raise ValueError(
            f"align: {name} is not gbl.mlp params ({{'hidden': [{{'w', 'b'}}, ...], "
            "'head': {'w', 'b'}})"
        )
    width = None
    for i, (w, b) in enumerate(hidden + [head]):
        if (
            w.ndim != lead + 2
            or b.ndim != lead + 1
            or b.shape[-1] != w.shape[-1]
            or (width is not None and w.shape[-2] != width)
        ):
            raise ValueError(
                f"align: {name} layer {i} has w {list(w.shape)}, b {list(b.shape)}; "
                f"expected w [{'seeds, ' * lead}in, out] and b [out] chained by width"
            )
        width = w.shape[-1]
    if lead and len({a.shape[0] for pair in hidden + [head] for a in pair}) != 1:
        raise ValueError(f"align: {name} leaves disagree on the number of seeds")
    return hidden, head


def _match(ref_hidden, ref_head, hidden, head, flip: bool, max_iter: int):
    """Weight matching by coordinate ascent over layers: (perms, signs) per hidden layer."""
    ws = [w.astype(np.float64) for w, _ in hidden] + [head[0].astype(np.float64)]
    bs = [b.astype(np.float64) for _, b in hidden]
    ref_ws = [w.astype(np.float64) for w, _ in ref_hidden] + [ref_head[0].astype(np.float64)]
    perms = [np.arange(b.shape[0]) for b in bs]
    signs = [np.ones(b.shape[0]) for b in bs]
    for sweep in range(max_iter + 1):
        changed = False
        for i in range(len(bs)):
            w_in = ws[i] if i == 0 else signs[i - 1][:, None] * ws[i][perms[i - 1]]
            sim = ref_ws[i].T @ w_in + np.outer(ref_hidden[i][1], bs[i])  # [ref units, units]
            # The first sweep goes forward on incoming weights and biases alone (the next layer
            # is not matched yet); from a good start, coordinate ascent rarely sticks.
            if sweep > 0:
                w_out = ws[i + 1]
                if i + 1 < len(bs):
                    w_out = w_out[:, perms[i + 1]] * signs[i + 1]
                sim = sim + ref_ws[i + 1] @ w_out.T
            _, perm = linear_sum_assignment(np.abs(sim) if flip else sim, maximize=True)
            sign = np.where(sim[np.arange(len(perm)), perm] < 0, -1.0, 1.0) if flip else signs[i]
            if not (np.array_equal(perm, perms[i]) and np.array_equal(sign, signs[i])):
                perms[i], signs[i], changed = perm, sign, True
        if sweep > 0 and not changed:
            break
    return perms, signs


def align(params_ref, params, *, activation: str | Callable = "tanh", max_iter: int = 100):
    """Permutes (and for odd activations sign-flips) an mlp's hidden units to match params_ref.

    The network's function is unchanged: unit j of layer l becomes s_j times old unit perm[j]
    (its column of w, entry of b, and row of the next layer's w). Per hidden layer the
    assignment maximizes the similarity of incoming weights, bias and outgoing weights
    (|<ref_j, p_k>| with sign flips), iterated over layers until nothing changes.

    Args:
      params_ref: one ``gbl.mlp`` params tree, the target.
      params: params of the same widths, one seed or stacked over seeds (aligned seed by seed).
      activation: the mlp's activation name; "tanh" and "identity" allow sign flips, other
        names (and callables) permutation only.
      max_iter: cap on sweeps over the layers.

    Returns:
      ``params`` with the same structure and shapes, aligned.

    References:
      Ainsworth, Hayase & Srinivasa (2023), weight matching (algorithm 1).
    """
    if not callable(activation) and activation not in ACTIVATIONS:
        raise ValueError(
            f"align: unknown activation {activation!r}; choose one of "
            f"{sorted(ACTIVATIONS)} or pass a callable (permutation only)"
        )
    max_iter = require_int("align: max_iter", max_iter, 1)
    ref_hidden, ref_head = _mlp_layers("params_ref", params_ref, 0)
    try:
        lead = min(max(np.ndim(params["head"]["w"]) - 2, 0), 1)
    except (TypeError, KeyError, IndexError):
        lead = 0
    hidden, head = _mlp_layers("params", params, lead)
    ref_shapes = [w.shape for w, _ in ref_hidden] + [ref_head[0].shape]
    shapes = [w.shape[lead:] for w, _ in hidden] + [head[0].shape[lead:]]
    if shapes != ref_shapes:
        raise ValueError(f"align: params have layer shapes {shapes}, params_ref {ref_shapes}")
    flip = activation in _ODD

    def one(hidden, head) -> list[tuple[np.ndarray, np.ndarray]]:
        perms, signs = _match(ref_hidden, ref_head, hidden, head, flip, max_iter)
        in_dim = (hidden[0][0] if hidden else head[0]).shape[0]
        out, prev, prev_sign = [], np.arange(in_dim), np.ones(in_dim)
        for (w, b), perm, sign in zip(hidden, perms, signs):
            rows = w[prev] * prev_sign[:, None].astype(w.dtype)
            out.append((rows[:, perm] * sign.astype(w.dtype), b[perm] * sign.astype(b.dtype)))
            prev, prev_sign = perm, sign
        return out + [(head[0][prev] * prev_sign[:, None].astype(head[0].dtype), head[1])]

    per_seed = (
        [
            one([(w[s], b[s]) for w, b in hidden], (head[0][s], head[1][s]))
            for s in range(head[0].shape[0])
        ]
        if lead
        else [one(hidden, head)]
    )
    merged = [
        tuple(jnp.asarray(np.stack(arrays) if lead else arrays[0]) for arrays in zip(*pairs))
        for pairs in zip(*per_seed)
    ]  # per layer: (w, b) over seeds
    layers = [{**old, "w": w, "b": b} for old, (w, b) in zip(params["hidden"], merged)]
    w_head, b_head = merged[-1]
    return {
        **params,
        "hidden": type(params["hidden"])(layers),
        "head": {**params["head"], "w": w_head, "b": b_head},
    }


class Basins(NamedTuple):
    """Seeds grouped by the function they compute; basins numbered by increasing median loss.

    Attributes:
      labels: [seeds] basin of each seed; -1 for a diverged seed (excluded everywhere).
      share: [B] fraction of the non-diverged seeds in each basin.
      share_ci: [B, 2] Wilson 95% interval of each share.
      loss: [B] median loss of each basin's seeds.
      count: [B] seeds per basin.
      leader: [B] index of each basin's leader (its lowest-loss seed).
    """

    labels: np.ndarray
    share: np.ndarray
    share_ci: np.ndarray
    loss: np.ndarray
    count: np.ndarray  # type: ignore[assignment]  # the field shadows tuple.count
    leader: np.ndarray

    def summary(self) -> str:
        lines = [
            f"{'basin':>5} {'seeds':>6} {'share':>6} {'95% CI':>15} {'median loss':>12} "
            f"{'leader':>6}"
        ]
        for b in range(len(self.count)):
            lines.append(
                f"{b:>5} {self.count[b]:>6} {self.share[b]:>6.3f} "
                f"[{self.share_ci[b, 0]:.3f}, {self.share_ci[b, 1]:.3f}] "
                f"{self.loss[b]:>12.4g} {self.leader[b]:>6}"
            )
        lines.append(f"diverged: {int(np.sum(self.labels < 0))} of {len(self.labels)} seeds")
        return "\n".join(lines)


def _default_predict(dist) -> jax.Array:
    """What ``basins`` compares by default: an array output itself, a distribution's probs or
    mean, or the arrays of any other pytree output."""
    if isinstance(dist, jax.Array):  # apply returns its prediction (a loss reads it); its
        return dist  # .mean() would be one number for all of it
    probs = getattr(dist, "probs", None)
    if probs is not None:
        return probs() if callable(probs) else probs
    if callable(getattr(dist, "mean", None)):
        return dist.mean()
    leaves = jax.tree.leaves(dist)
    if not leaves or not all(isinstance(leaf, jax.Array) for leaf in leaves):
        raise ValueError(
            f"basins: model.apply returns a {type(dist).__name__}, which has no "
            "probs or mean() and is not a pytree of arrays; pass predict=(apply's "
            "output -> array) to say what to compare"
        )
    return jnp.concatenate([jnp.reshape(leaf, (-1,)) for leaf in leaves])


def basins(
    model,
    data,
    params,
    *,
    tol: float = 0.05,
    loss: Loss = nll,
    predict: Callable[[Any], jax.Array] | None = None,
    diverged=None,
    chunk_size: int | None = None,
) -> Basins:
    """Groups stacked seeds whose predictions on the data agree within ``tol``.

    Leader clustering, deterministic: seeds in order of increasing loss; each joins the first
    basin whose leader's predictions differ from its own by at most ``tol`` (max abs over the
    data), else founds a new basin. Comparing functions, not weights, keeps permutation and
    sign symmetries from splitting one solution.

    Args:
      model, data, loss, chunk_size: as for ``interpolate``.
      params: params stacked over seeds (every leaf with a leading seeds axis), or a
        ``SweepResult`` without a grid (``out.cell(...)``), whose final params and ``diverged``
        flags are used.
      tol: largest max-abs difference of predictions within a basin.
      predict: ``dist -> array`` to compare (default: what apply returns when that is an
        array, else ``dist.probs`` where the distribution has it, else ``dist.mean()``, else
        the arrays of apply's output). A model whose apply returns its params
        (``gbl.population.relu_student``) needs ``predict``: weight by weight, permuted units
        would split one solution; e.g. ``predict=lambda w: jax.nn.relu(probe @ w.T).sum(-1)``
        on probe inputs.
      diverged: optional [seeds] bool, e.g. a sweep's ``diverged``; these seeds, and any with a
        non-finite loss, prediction or param, get label -1.

    Returns:
      A ``Basins`` record.

    References:
      Fort, Hu & Lakshminarayanan (2019); Goodfellow, Bengio & Courville (2016), section 6.2.
    """
    check_model(model)
    if isinstance(params, SweepResult):
        params, _, flags = stacked_of(params, "basins")
        diverged = flags if diverged is None else diverged
    tol = require_finite_number("basins: tol", tol, nonnegative=True)
    x, y = map(jnp.asarray, data)
    ref = init_shapes(model, x)
    shapes = leaf_shapes(params)
    single = ref is not None and not is_stacked("basins", "params", params, ref)
    if single or not shapes or not all(shapes) or len({s[0] for s in shapes}) != 1:
        raise ValueError(
            f"basins: params must be stacked over seeds (a leading seeds axis on "
            f"every leaf), got leaf shapes {shapes}"
        )
    seeds = shapes[0][0]
    bad = np.zeros(seeds, bool) if diverged is None else np.array(diverged, bool)
    if bad.shape != (seeds,):
        raise ValueError(f"basins: diverged has shape {list(bad.shape)}, expected [{seeds}]")
    show = predict or _default_predict

    def one(p, x, y):
        dist = apply_model(model, p, x, key=None)
        if predict is None and dist is p:
            raise ValueError(
                "basins: model.apply returns its params (as gbl.population.relu_student does): "
                "compared weight by weight, seeds that compute one function with permuted units "
                "would each found a basin; pass predict=(params -> what the model computes), "
                "e.g. predict=lambda w: jax.nn.relu(probe @ w.T).sum(-1) on probe inputs, or "
                "predict=lambda w: w to compare the weights anyway"
            )
        return loss(dist, y), jnp.reshape(jnp.asarray(show(dist)), (-1,))

    n_params = sum(int(np.prod(s[1:])) for s in shapes)
    size = analysis_chunk(chunk_size, seeds, 4 * (n_params + 16 * int(x.size)))
    losses, preds = over_seeds(one, (params, x, y), (True, False, False), seeds, size)
    for leaf in jax.tree.leaves(params):
        bad |= ~np.isfinite(np.asarray(leaf, np.float64).reshape(seeds, -1)).all(axis=1)
    bad |= ~np.isfinite(losses) | ~np.isfinite(preds).all(axis=1)

    leaders: list[int] = []
    members: list[list[int]] = []
    for s in sorted(map(int, np.flatnonzero(~bad)), key=lambda s: (losses[s], s)):
        for b, lead in enumerate(leaders):
            if np.max(np.abs(preds[s] - preds[lead])) <= tol:
                members[b].append(s)
                break
        else:
            leaders.append(s)
            members.append([s])
    medians = [float(np.median(losses[m])) for m in members]
    order = sorted(range(len(leaders)), key=lambda b: (medians[b], b))
    labels = np.full(seeds, -1)
    for new, b in enumerate(order):
        labels[members[b]] = new
    count = np.array([len(members[b]) for b in order], dtype=int)
    n_ok = int(np.sum(~bad))
    low, high = wilson_interval(count, np.full_like(count, n_ok))
    return Basins(
        labels=labels,
        share=count / max(n_ok, 1),
        share_ci=np.stack([np.asarray(low), np.asarray(high)], axis=-1).reshape(-1, 2),
        loss=np.array([medians[b] for b in order]),
        count=count,
        leader=np.array([leaders[b] for b in order], dtype=int),
    )
