"""Instability analysis: when is a run's fate decided by its start, not its data order?

A parent trains k steps; ``children`` copies of it continue to ``steps`` on other data orders;
the barrier on the straight line between two children says whether SGD's noise after step k
still sends them to different basins. Frankle et al. call a network stable at k when the error
barrier is below 2%. ``gbl.instability`` measures it over many parents at once: the parents train
0 -> k1 -> k2 -> ... in segments (a prefix is trained once, not once per k) and at each k every
parent's children continue, all parents x children in one compiled program per segment
(``gbl_jax.engine.continuation``).

Definitions (round 4 methods). Children theta_1, theta_2 of one parent; the error along
(1 - a) theta_1 + a theta_2 at ``num`` evenly spaced a (ends included); instability =
max_a err(a) - (err(0) + err(1)) / 2, which is ``gbl.barrier`` with the error as the loss (the
same for the loss). With more than two children every pair counts; a parent is stable at k
when every pair's barrier is below ``tol``.

References:
  Frankle, Dziugaite, Roy & Carbin (2020), "Linear mode connectivity and the lottery ticket
  hypothesis", section 3 (instability analysis).
"""

from __future__ import annotations

import itertools
import time
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gbl_jax.analysis.landscape import align as align_params
from gbl_jax.analysis.landscape import barrier
from gbl_jax.analysis.spreads import wilson_interval
from gbl_jax.checks import require_finite_number, require_int
from gbl_jax.engine import continuation
from gbl_jax.engine.results import require_pandas
from gbl_jax.engine.runconfig import check_run
from gbl_jax.engine.training import split_keys
from gbl_jax.nets.models import apply_model, is_stochastic
from gbl_jax.probability.costs import Loss, nll
from gbl_jax.probability.distributions import Bernoulli, Categorical

METRICS = ("error", "loss")


def error(dist, y) -> jax.Array:
    """Share of examples whose most probable class is not the label (1 - ``gbl.accuracy``)."""
    if isinstance(dist, Categorical):
        return jnp.mean(jnp.argmax(dist.logits, axis=-1) != jnp.asarray(y))
    return jnp.mean((dist.logits > 0) != (jnp.asarray(y) > 0))


class StableRate(NamedTuple):
    """P(stable | k): the share of parents whose children's barriers all stay below ``tol``.

    Attributes:
      at: [K] the steps k children were spawned at.
      stable: [K] parents stable at k; n: [K] parents counted (finite barriers only).
      rate, low, high: [K] stable / n and its Wilson 95% interval.
      tol, metric, aligned: what was thresholded.
    """

    at: np.ndarray
    stable: np.ndarray
    n: np.ndarray
    rate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    tol: float
    metric: str
    aligned: bool

    def crossing(self, p: float = 0.5) -> int | None:
        """The first k with P(stable | k) >= p (None when no k reaches it)."""
        hit = np.flatnonzero(self.rate >= p)
        return int(self.at[hit[0]]) if hit.size else None


class Instability(NamedTuple):
    """What ``gbl.instability`` returns.

    Attributes:
      at: [K] spawn steps k.
      barriers: {name: [K, parents, pairs]} for name in "error", "loss" (the error only for a
        classifier), and "aligned_error", "aligned_loss" with ``align``; NaN where a child
        diverged.
      pairs: ((i, j), ...) the children compared by each pair column.
      steps, children, parents: the run's sizes.
      evaluated_on: "test" (data.test or eval_data) or "train" (the training data).
      params: with ``keep_params``, {k: the children's params, every leaf [parents, children,
        ...]}; else None.
      wall_s: seconds, training and barriers.
    """

    at: np.ndarray
    barriers: dict
    pairs: tuple
    steps: int
    children: int
    parents: int
    evaluated_on: str
    params: dict | None
    wall_s: float

    def stable_rate(
        self, tol: float = 0.02, *, metric: str = "error", aligned: bool = False
    ) -> StableRate:
        """P(stable | k) with Wilson 95% intervals: a parent is stable at k when every pair of
        its children has a ``metric`` barrier below ``tol`` (Frankle et al.: error, 0.02)."""
        tol = require_finite_number("stable_rate: tol", tol)
        name = f"aligned_{metric}" if aligned else metric
        if name not in self.barriers:
            raise ValueError(
                f"stable_rate: no {name!r} barriers here; have {sorted(self.barriers)}"
            )
        b = self.barriers[name]
        ok = np.all(np.isfinite(b), axis=-1)
        stable = np.sum(ok & np.all(b < tol, axis=-1), axis=1)  # NaN < tol is False
        n = np.sum(ok, axis=1)
        low, high = wilson_interval(stable, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = stable / n
        return StableRate(
            self.at, stable, n, rate, np.asarray(low), np.asarray(high), tol, metric, aligned
        )

    def to_frame(self):
        """pandas: one row per k x parent x pair: k, parent, child_a, child_b, and each barrier
        (``error_barrier``, ``loss_barrier``, ``aligned_...``)."""
        pd = require_pandas()
        k, parent, pair = np.meshgrid(
            self.at, np.arange(self.parents), np.arange(len(self.pairs)), indexing="ij"
        )
        pairs = np.asarray(self.pairs).reshape(-1, 2)
        columns = {
            "k": k.ravel(),
            "parent": parent.ravel(),
            "child_a": pairs[pair.ravel(), 0],
            "child_b": pairs[pair.ravel(), 1],
        }
        columns.update({f"{name}_barrier": b.ravel() for name, b in self.barriers.items()})
        return pd.DataFrame(columns)


def _check_at(at, steps: int) -> np.ndarray:
    try:
        values = [int(v) for v in at]
        ok = all(float(v) == int(v) for v in at) and values
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"at must be a non-empty list of integer steps, got {at!r}")
    if min(values) < 0 or max(values) > steps or len(set(values)) != len(values):
        raise ValueError(f"at must hold distinct steps in [0, steps={steps}], got {list(at)}")
    return np.asarray(sorted(values))


def _is_classifier(model, params, x) -> bool:
    dist = jax.eval_shape(lambda p: apply_model(model, p, x[:1], None), params)
    return isinstance(dist, (Bernoulli, Categorical))


def _child_keys(k_data, at: np.ndarray, children: int):
    """[K, parents * children] keys: child c of parent p at k draws its data stream from
    ``split(fold_in(k_data_p, k), children)[c]``."""

    def per_parent(kd, k):
        return jax.random.split(jax.random.fold_in(kd, k), children)

    return [
        jax.vmap(per_parent, in_axes=(0, None))(k_data, int(k)).reshape((-1,) + k_data.shape[1:])
        for k in at
    ]


def instability(
    model,
    optimizer,
    data,
    *,
    key: jax.Array,
    parents: int,
    steps: int,
    at: Sequence[int],
    children: int = 2,
    batch_size: int | None = None,
    loss: Loss = nll,
    eval_data=None,
    align: str | Callable | None = None,
    num: int = 25,
    chunk_size: int | None = None,
    keep_params: bool = False,
    dtype=None,
) -> Instability:
    """Instability analysis (Frankle et al. 2020) over ``parents`` parents at once.

    Parent p is the run ``gbl.train(..., key=jax.random.split(key, parents)[p])`` makes (the
    seed p of a sweep) up to step k; child c of it at k continues to ``steps`` from the parent's
    params and optimizer state on the data stream of ``split(fold_in(k_data_p, k),
    children)[c]``, with ``k_init, k_data_p = split(split(key, parents)[p])``.

    Args:
      model, optimizer, data, batch_size, loss, dtype: as for ``gbl.train`` (any model, any
        optax optimizer: SGD with momentum as in the paper, Adam).
      key: base key.
      parents: number of parents (>= 1).
      steps: total steps of every child.
      at: spawn steps k, distinct, in [0, steps]; the parents train through them in order.
      children: children per parent and k (>= 2); every pair of them is compared.
      eval_data: the (x, y) pair the barriers are measured on (default ``data.test``, else the
        training data).
      align: None, or the mlp's activation (e.g. "tanh"): also barriers after ``gbl.align``
        matches the second child's hidden units to the first's (``gbl.mlp`` params only).
      num: points on each segment (>= 11; ends included).
      chunk_size: runs per compiled call (default: the sweeps' for this model).
      keep_params: keep every child's final params (``res.params[k]``).

    Returns:
      An ``Instability``: barriers [K, parents, pairs] per metric, ``stable_rate(tol)``,
      ``to_frame()``; ``gbl.plots.instability_figure(res)`` draws it.

    Raises:
      ValueError: bad sizes or steps; children that could not differ (full batches of a
        deterministic model draw nothing from the data stream).

    References:
      Frankle, Dziugaite, Roy & Carbin (2020), "Linear mode connectivity and the lottery ticket
      hypothesis".
    """
    return run_instability(
        model,
        optimizer,
        data,
        key=key,
        parents=parents,
        steps=steps,
        at=at,
        children=children,
        batch_size=batch_size,
        loss=loss,
        eval_data=eval_data,
        align=align,
        num=num,
        chunk_size=chunk_size,
        keep_params=keep_params,
        dtype=dtype,
    )


class Store:
    """Where a resumable analysis keeps each finished k (the command line's run folder):
    ``done()`` -> {k: {name: [parents, pairs]}}, ``parents(k, like)`` -> the parents' state at k
    (a tree like ``like``), ``save(k, barriers, parents)``. The base class keeps nothing."""

    def done(self) -> dict:
        return {}

    def parents(self, k: int, like):
        raise KeyError(k)

    def save(self, k: int, barriers: dict, parents) -> None:
        pass


def run_instability(
    model,
    optimizer,
    data,
    *,
    key,
    parents,
    steps,
    at,
    children=2,
    batch_size=None,
    loss=nll,
    eval_data=None,
    align=None,
    num=25,
    chunk_size=None,
    keep_params=False,
    dtype=None,
    store: Store | None = None,
) -> Instability:
    """``instability`` with a ``Store``: the k it holds are read, not run again, and the parents
    continue from its last one; every k finished is saved before the next begins."""
    begin = time.perf_counter()
    store = Store() if store is None else store
    parents = require_int("parents", parents, 1)
    children = require_int("children", children, 2)
    num = require_int("num", num, 11)
    steps = require_int("steps", steps, 1)
    at = _check_at(at, steps)
    cfg, (x, y, ex, ey) = check_run(
        model,
        optimizer,
        data,
        key=key,
        steps=steps,
        batch_size=batch_size,
        loss=loss,
        log_every=steps,
        eval_data=eval_data,
        dtype=dtype,
    )
    if not is_stochastic(cfg.model) and cfg.batch_size in (None, x.shape[0]):
        raise ValueError(
            f"children of one parent would be identical: with full batches "
            f"(batch_size={cfg.batch_size}) a deterministic model draws nothing from "
            "the data stream; pass a batch_size below the number of examples "
            f"({x.shape[0]}) or a stochastic model"
        )
    test = getattr(data, "test", None) if eval_data is None else eval_data
    on = "train" if test is None else "test"
    if ex is None:
        ex, ey = (x, y) if test is None else map(jnp.asarray, test)
    size = continuation.chunk_size_for(cfg, x, y, parents * children, chunk_size)
    size_p = continuation.chunk_size_for(cfg, x, y, parents, chunk_size)

    k_init, k_data = jax.vmap(split_keys)(jax.random.split(key, parents))
    par = continuation.start(cfg, k_init, k_data, x, size_p)
    classify = _is_classifier(model, jax.tree.map(lambda a: a[0], par.params), x)
    metrics = {"error": error, "loss": loss} if classify else {"loss": loss}
    pairs = tuple(itertools.combinations(range(children), 2))
    names = list(metrics) + ([f"aligned_{m}" for m in metrics] if align is not None else [])
    out = {name: np.full((len(at), parents, len(pairs)), np.nan) for name in names}
    kept = {} if keep_params else None

    done = store.done()
    finished = 0
    while finished < len(at) and int(at[finished]) in done:
        finished += 1
    prev = 0
    if finished:
        prev = int(at[finished - 1])
        par = store.parents(prev, par)
    for i, (k, keys) in enumerate(zip(at, _child_keys(k_data, at, children))):
        if i < finished:
            for name in names:
                out[name][i] = done[int(k)][name]
            continue
        par, _ = continuation.resume(
            cfg, par, k_data, x, y, first=prev, count=int(k) - prev, size=size_p
        )
        prev = int(k)
        spawned = jax.tree.map(lambda a: jnp.repeat(a, children, axis=0), par)
        kids, _ = continuation.resume(
            cfg, spawned, keys, x, y, first=int(k), count=steps - int(k), size=size
        )
        final = jax.tree.map(lambda a: a.reshape((parents, children) + a.shape[1:]), kids.params)
        if keep_params:
            kept[int(k)] = jax.tree.map(np.asarray, final)
        for j, (a, b) in enumerate(pairs):
            pa = jax.tree.map(lambda t: t[:, a], final)
            pb = jax.tree.map(lambda t: t[:, b], final)
            sides = [("", pb)]
            if align is not None:
                aligned = [
                    align_params(
                        jax.tree.map(lambda t: t[p], pa),
                        jax.tree.map(lambda t: t[p], pb),
                        activation=align,
                    )
                    for p in range(parents)
                ]
                sides.append(("aligned_", jax.tree.map(lambda *t: jnp.stack(t), *aligned)))
            for prefix, other in sides:
                for m, fn in metrics.items():
                    out[prefix + m][i, :, j] = barrier(
                        model, (ex, ey), pa, other, num=num, loss=fn, stacked=True
                    )
        store.save(int(k), {name: out[name][i] for name in names}, par)
    return Instability(
        at, out, pairs, steps, children, parents, on, kept, time.perf_counter() - begin
    )
