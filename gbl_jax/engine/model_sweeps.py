"""Architecture as a grid axis: one sweep per model, stacked into one result.

A width or a depth changes the params' shapes, so the models of an axis cannot share one compiled
program as a hyperparameter grid does; ``sweep_models`` runs one ``sweep`` per model (a compile
each) with the same key and seeds, so seed i starts from the same key in every model and the
cells compare paired, and stacks the results with the model axes first:

  out = gbl.sweep_models({"hidden": [2, 8, 32]}, lambda hidden: gbl.mlp([hidden], head),
                         optax.adam(0.05), data, key=key, seeds=256, steps=1000)
  gbl.spread(out, metric="test_accuracy").to_frame()      # one row per width
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from gbl_jax.engine.results import SweepResult
from gbl_jax.engine.sweeps import sweep


def _check_axes(axes: Any) -> dict[str, list[float]]:
    if not isinstance(axes, Mapping) or not axes:
        raise ValueError(f"sweep_models: axes must be a non-empty {{name: [values]}}, got {axes!r}")
    checked = {}
    for name, values in axes.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"sweep_models: an axis name must be an identifier (the factory's "
                f"keyword), got {name!r}"
            )
        values = list(values) if isinstance(values, (list, tuple, np.ndarray)) else None
        if not values or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            raise ValueError(
                f"sweep_models: axes[{name!r}] must be a non-empty list of finite "
                f"numbers, got {axes[name]!r}"
            )
        if len(set(values)) != len(values):
            raise ValueError(f"sweep_models: axes[{name!r}] repeats a value: {values}")
        checked[name] = values
    return checked


def _stack(results: Sequence[SweepResult], shape: tuple) -> dict:
    def stack(*arrays):
        a = np.stack([np.asarray(x) for x in arrays])
        return a.reshape(shape + a.shape[1:])

    first = results[0]
    return dict(
        final_loss=stack(*(r.final_loss for r in results)),
        diverged=stack(*(r.diverged for r in results)),
        losses=stack(*(r.losses for r in results)),
        converged_step=stack(*(r.converged_step for r in results)),
        metrics={k: stack(*(r.metrics[k] for r in results)) for k in first.metrics},
        final_metrics={
            k: stack(*(r.final_metrics[k] for r in results)) for k in first.final_metrics
        },
    )


def sweep_models(
    axes: Mapping[str, Sequence[float]],
    factory: Callable[..., Any],
    optimizer,
    data,
    *,
    key,
    seeds,
    steps: int,
    progress: Callable[[int, int], None] | None = None,
    **sweep_kwargs,
) -> SweepResult:
    """Sweeps one model per cell of ``axes`` and stacks the results, model axes first.

    Args:
      axes: {name: [values]}: each cell of their product is a model, ``factory(**cell)`` (e.g.
        ``{"hidden": [2, 8, 32]}`` with ``lambda hidden: gbl.mlp([hidden], head)``); names are
        the factory's keywords, values finite numbers.
      factory: builds a model from one cell's values.
      optimizer, data, key, seeds, steps, **sweep_kwargs: as for ``gbl.sweep`` (a ``grid`` of
        hyperparameters included: its axes follow the model axes). ``keep_params`` is refused:
        params of different architectures do not stack.
      progress: ``progress(runs_done, runs_total)`` over all the models.

    Returns:
      A ``SweepResult`` whose ``grid`` starts with ``axes`` and whose ``model_axes`` names them;
      ``out.cell(hidden=8)`` is model 8's result, ``rerun`` repeats a run with that model.

    Raises:
      ValueError: bad axes, ``keep_params``, a factory that fails, or any error of ``sweep``.
    """
    axes = _check_axes(axes)
    if sweep_kwargs.get("keep_params"):
        raise ValueError(
            "sweep_models: keep_params=True cannot stack params of different "
            "architectures; sweep the model you need with keep_params=True"
        )
    clash = [name for name in axes if name in (sweep_kwargs.get("grid") or {})]
    if clash:
        raise ValueError(f"sweep_models: {clash} is both a model axis and a grid axis")
    cells = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    results, done = [], 0
    for cell in cells:
        try:
            model = factory(**cell)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"sweep_models: factory({', '.join(f'{k}={v!r}' for k, v in cell.items())}) "
                f"failed: {err}"
            ) from err

        def each(runs_done, runs_total, before=done):
            if progress is not None:
                progress(before + runs_done, runs_total * len(cells))

        results.append(
            sweep(
                model,
                optimizer,
                data,
                key=key,
                seeds=seeds,
                steps=steps,
                progress=each,
                **sweep_kwargs,
            )
        )
        done += int(np.size(results[-1].final_loss))
    return stack_models(axes, results)


def stack_models(
    axes: Mapping[str, Sequence[float]], results: Sequence[SweepResult]
) -> SweepResult:
    """Results of one sweep per cell of ``axes`` (cell-major, same key, seeds and grid) as one
    result, model axes first (``model_axes`` names them); params are dropped (their shapes
    differ between models).

    Raises:
      ValueError: a count that is not the product of the axes, or results that do not stack
        (other seeds, grids, keys or metrics).
    """
    axes = _check_axes(axes)
    shape = tuple(len(v) for v in axes.values())
    if len(results) != math.prod(shape):
        raise ValueError(f"stack_models: {len(results)} results for axes of shape {list(shape)}")
    first = results[0]
    for r in results[1:]:
        same = (
            np.shape(r.final_loss) == np.shape(first.final_loss)
            and r.grid == first.grid
            and np.array_equal(np.asarray(r.keys), np.asarray(first.keys))
            and set(r.final_metrics) == set(first.final_metrics)
            and tuple(r.crossed) == tuple(first.crossed)
        )
        if not same:
            raise ValueError(
                "stack_models: the results differ in seeds, grid, keys, metrics or "
                "design; sweep every model with the same arguments"
            )
    return first._replace(
        **_stack(results, shape),
        params=None,
        init_params=None,
        grid={**{k: [float(v) for v in values] for k, values in axes.items()}, **first.grid},
        wall_s=float(sum(r.wall_s for r in results)),
        model_axes=tuple(axes) + tuple(first.model_axes),
    )
