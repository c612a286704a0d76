"""One seed's params or many: telling a params tree stacked over seeds from a single one.

The analyses that take params (``interpolate``, ``barrier``, ``basins``, ``surface``,
``curve``) accept one seed's tree or a tree with a leading seeds axis on every leaf. They tell
which from ``model.init``'s shapes (``init_shapes``, ``is_stacked``), or, where init cannot be
traced with (key, x), from the trees alone (``pair_layout``).
"""

from __future__ import annotations

import jax
import numpy as np


def leaf_shapes(tree) -> list[tuple[int, ...]]:
    """The shape of every leaf of ``tree``, in leaf order."""
    return [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(tree)]


def init_shapes(model, x):
    """One seed's params as shapes, or None when ``model.init(key, x)`` cannot be traced."""
    try:
        return jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    except Exception:  # an init that needs more than (key, x): fall back on the trees alone
        return None


def _one_more_axis(shapes, single) -> bool:
    """Whether every shape is its single counterpart with one leading axis, of one size."""
    return (
        all(len(s) == len(r) + 1 and s[1:] == r for s, r in zip(shapes, single))
        and len({s[0] for s in shapes}) == 1
    )


def is_stacked(where: str, name: str, tree, ref) -> bool:
    """Whether ``tree`` is ``ref``'s params with one leading seeds axis on every leaf."""
    if jax.tree.structure(tree) != jax.tree.structure(ref):
        raise ValueError(
            f"{where}: {name} is not a params tree of this model: structure "
            f"{jax.tree.structure(tree)}, model.init gives {jax.tree.structure(ref)}"
        )
    shapes, single = leaf_shapes(tree), leaf_shapes(ref)
    if shapes == single:
        return False
    if _one_more_axis(shapes, single):
        return True
    raise ValueError(
        f"{where}: {name} has leaf shapes {shapes}; one seed of this model has "
        f"{single} (stacked params add one leading seeds axis to every leaf)"
    )


def pair_layout(where: str, model, x, params_a, params_b, stacked) -> tuple[bool, bool, int | None]:
    """(a stacked, b stacked, seeds or None); raises ValueError for trees that do not pair up."""
    if jax.tree.structure(params_a) != jax.tree.structure(params_b):
        raise ValueError(
            f"{where}: params_a and params_b differ in structure: "
            f"{jax.tree.structure(params_a)} vs {jax.tree.structure(params_b)}"
        )
    ref = init_shapes(model, x) if stacked is None else None
    if ref is not None:
        flags = (
            is_stacked(where, "params_a", params_a, ref),
            is_stacked(where, "params_b", params_b, ref),
        )
    else:
        shapes_a, shapes_b = leaf_shapes(params_a), leaf_shapes(params_b)
        if shapes_a == shapes_b:
            # Without init's shapes: one leading size shared by every leaf reads as seeds.
            shared = all(shapes_a) and len({s[0] for s in shapes_a}) == 1
            flags = (shared if stacked is None else bool(stacked),) * 2
        elif _one_more_axis(shapes_a, shapes_b) and stacked is None:
            flags = (True, False)
        elif _one_more_axis(shapes_b, shapes_a) and stacked is None:
            flags = (False, True)
        else:
            raise ValueError(
                f"{where}: leaf shapes do not pair up (stacked={stacked}): params_a "
                f"{shapes_a}, params_b {shapes_b}"
            )
    sizes = {s[0] for f, t in zip(flags, (params_a, params_b)) if f for s in leaf_shapes(t)}
    if len(sizes) > 1:
        raise ValueError(
            f"{where}: stacked params disagree on the number of seeds: {sorted(sizes)}"
        )
    return flags[0], flags[1], (sizes.pop() if sizes else None)
