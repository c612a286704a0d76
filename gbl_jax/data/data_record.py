"""The ``Data`` record every problem returns: an (x, y) pair, a pytree, with an optional test split.

It lives apart from ``problems`` (the toy problems) and ``datasets`` (real data and the file
loader) so that both can build it and ``problems`` can re-export the data sets without a cycle.
"""

from __future__ import annotations

from typing import Any, Generic, Optional, TypeVar, overload

import jax

from gbl_jax.nets.heads import Head

# The head's static type: a built-in problem's Data[Head] has a head, Data(x, y) is Data[None].
HeadT = TypeVar("HeadT", bound=Optional[Head])


class Data(tuple, Generic[HeadT]):
    """A problem instance: a real (x, y) pair (``x, y = data``, ``data[0] is data.x``) and a pytree.

    Attributes:
      x: inputs [N, ...] (float32 for the built-in problems).
      y: targets whose leading axis is N: [N] for classification, [N, D] for regression.
      head: the output unit that suits y (None for data made by hand). Type checkers see
        ``Data[Head]`` from the built-in problems, so ``gbl.mlp([8], data.head)`` checks, and
        ``Data[None]`` from ``Data(x, y)``.
      name: the problem's name.
      test: a held-out split (a ``Data``) or None. Training unpacks ``x, y = data`` and never sees
        it; pass it on as ``eval_data=data.test``.

    The pytree's children are x, y and test (so its leaves are x, y and test's leaves); head and
    name ride along as static data, so a ``Data`` passes through ``jit``, ``vmap`` and
    ``jax.device_put`` and comes back a ``Data``, its test split a ``Data`` too. The constructor
    does not check its arguments, as JAX asks of pytree nodes (it rebuilds them from placeholders).
    """

    head: HeadT
    name: str
    test: Data[HeadT] | None

    @overload
    def __new__(
        cls, x: Any, y: Any, head: None = None, name: str = "", *, test: Data[None] | None = None
    ) -> Data[None]: ...

    @overload
    def __new__(
        cls, x: Any, y: Any, head: HeadT, name: str = "", *, test: Data[HeadT] | None = None
    ) -> Data[HeadT]: ...

    def __new__(cls, x, y, head=None, name="", *, test=None):
        self = super().__new__(cls, (x, y))
        self.head, self.name, self.test = head, name, test
        return self

    @property
    def x(self):
        return self[0]

    @property
    def y(self):
        return self[1]

    def __getnewargs_ex__(self):
        # copy and pickle rebuild through __new__; tuple's own version would pass only (x, y).
        return (self.x, self.y, self.head, self.name), {"test": self.test}

    def __repr__(self) -> str:
        shape = lambda a: list(getattr(a, "shape", ()))  # noqa: E731
        held_out = "" if self.test is None else f", test={self.test!r}"
        return f"Data(name={self.name!r}, x {shape(self.x)}, y {shape(self.y)}{held_out})"

    # Arrays make tuple equality ambiguous; a problem instance is itself.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__


jax.tree_util.register_pytree_node(
    Data,
    lambda d: ((d.x, d.y, d.test), (d.head, d.name)),
    lambda aux, children: Data(children[0], children[1], *aux, test=children[2]),
)
