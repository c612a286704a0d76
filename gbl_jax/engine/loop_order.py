"""The order in which a step loop carries the parameters: the order the forward pass reads them.

XLA lays out a ``while`` loop's carry in the order of its tuple and breaks scheduling ties by
that order. A params dict flattens in key order (an mlp's ``head`` before ``hidden``, ``b``
before ``w``), the reverse of the order the forward pass reads it, and vmapped runs step
measurably slower that way (BENCHMARKS.md, "Notes moved from docstrings"). So when it vmaps runs
the engine (``make_engine(cfg, reading_order=True)``) carries the leaves permuted into the order
of their first use and rebuilds the tree inside the step: the model, the loss and the optimizer
see the user's structure and nothing outside the loop sees the permutation."""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Sequence

import jax
from jax.extend import core


def first_use_order(fn: Callable, leaves: Sequence[Any], *args) -> tuple[int, ...]:
    """Indices of ``leaves`` sorted by the first operation of ``fn(leaves, *args)`` that reads
    each one (nested calls are followed); ties and leaves never read keep their order.

    Args:
      fn: ``(list of leaves, *args) -> anything``, traceable.
      leaves: arrays (or tracers) of the shapes ``fn`` expects.
      *args: the rest of ``fn``'s arguments.
    """
    n = len(leaves)
    closed = jax.make_jaxpr(lambda ls, *a: fn(list(ls), *a))(tuple(leaves), *args)
    jaxpr = closed.jaxpr
    first: dict[int, int] = {}
    _visit(jaxpr, dict(zip(jaxpr.invars[:n], range(n))), first, itertools.count())
    return tuple(sorted(range(n), key=lambda i: (first.get(i, math.inf), i)))


def _sub_jaxprs(eqn) -> list:
    """The jaxprs an equation calls (pjit, custom_jvp/vjp, remat, cond branches, loops)."""
    found = []
    for value in eqn.params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, core.ClosedJaxpr):
                found.append(item.jaxpr)
            elif isinstance(item, core.Jaxpr):
                found.append(item)
    return found


def _visit(jaxpr, owner: dict, first: dict, clock) -> None:
    """Stamps ``first[leaf]`` with the clock of the first equation reading one of its vars."""
    for eqn in jaxpr.eqns:
        read = {v: owner[v] for v in eqn.invars if isinstance(v, core.Var) and v in owner}
        calls = [sub for sub in _sub_jaxprs(eqn) if len(sub.invars) == len(eqn.invars)]
        for sub in calls if read else ():  # a call passes its operands on: where are they read?
            _visit(
                sub,
                {
                    inner: read[outer]
                    for outer, inner in zip(eqn.invars, sub.invars)
                    if isinstance(outer, core.Var) and outer in read
                },
                first,
                clock,
            )
        stamp = next(clock)
        for leaf in read.values():
            first.setdefault(leaf, stamp)


class LoopCarry:
    """Packs a pytree into a list of its leaves in a given order, and back."""

    def __init__(self, tree, order: Sequence[int]):
        self.treedef = jax.tree.structure(tree)
        self.order = tuple(order)
        self.inverse = tuple(sorted(range(len(order)), key=self.order.__getitem__))

    def pack(self, tree) -> list:
        leaves = self.treedef.flatten_up_to(tree)
        return [leaves[i] for i in self.order]

    def unpack(self, packed: Sequence[Any]):
        return jax.tree.unflatten(self.treedef, [packed[j] for j in self.inverse])
