"""What every distribution family shares: the strict shape rule, the eager domain checks, pytrees.

Internal: the families in ``distributions``, ``mixtures`` and ``mvn`` and the costs in ``costs``
use these; none of them is in ``gbl.__all__``. The shape rule is ``y.shape == batch_shape +
event_shape`` exactly, checked at trace time (``check_value_shape``); the ``validate_*`` checks
behind ``gbl.validate`` read concrete values and raise ``ValueError`` naming the family, the
value and how many entries are wrong; ``pytree`` registers a frozen dataclass with JAX.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

_Class = TypeVar("_Class", bound=type)


def pytree(cls: _Class) -> _Class:
    """Registers a dataclass as a pytree whose leaves are all of its fields.

    Stacked on a visible ``@dataclasses.dataclass(frozen=True, eq=False)`` so type checkers see
    the fields (eq=False: field-wise == on arrays is ambiguous, and identity hashing keeps the
    objects usable as dict keys). The fields are listed explicitly because jax before 0.4.36
    cannot infer them.
    """
    names = [field.name for field in dataclasses.fields(cls)]
    return jax.tree_util.register_dataclass(cls, data_fields=names, meta_fields=[])


def shape_str(shape) -> str:
    """A shape as the messages print it: ``[3, 2]``."""
    return "[" + ", ".join(str(s) for s in shape) + "]"


def common_shape(family: str, **params: ArrayLike) -> tuple[int, ...]:
    """The one non-scalar shape shared by ``params``; scalars broadcast, nothing else does."""
    shapes = {name: tuple(jnp.shape(p)) for name, p in params.items()}
    distinct = {s for s in shapes.values() if s != ()}
    if len(distinct) > 1:
        listed = ", ".join(f"{n} {shape_str(s)}" for n, s in shapes.items())
        raise ValueError(f"{family}: parameter shapes must match (scalars excepted); got {listed}")
    return next(iter(distinct), ())


def check_value_shape(family: str, expected: tuple[int, ...], y: ArrayLike) -> None:
    """Raises unless ``y.shape == expected`` exactly (batch + event shape; no broadcasting)."""
    got = tuple(jnp.shape(y))
    if got != tuple(expected):
        raise ValueError(
            f"{family}: y has shape {shape_str(got)} but the distribution expects "
            f"{shape_str(expected)} (batch + event shape); no broadcasting is done"
        )


def float_value(y: ArrayLike, like: jax.Array) -> jax.Array:
    """``y`` as an array of ``like``'s float dtype (at least float32)."""
    return jnp.asarray(y, dtype=jnp.result_type(like, jnp.float32))


def require_integer_labels(family: str, y: ArrayLike) -> None:
    """Raises unless ``y`` has an integer dtype (class labels)."""
    dtype = jnp.result_type(y)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(f"{family}: labels y must have an integer dtype, got {dtype}")


def concrete(name: str, x: ArrayLike) -> np.ndarray:
    """``x`` as a numpy array; a ``TypeError`` if it is traced (``validate`` is eager)."""
    try:
        return np.asarray(x)
    except jax.errors.TracerArrayConversionError as err:
        raise TypeError(
            f"validate() is eager: {name} is a traced value; call it outside jit"
        ) from err


def require(ok: bool, message: str) -> None:
    """Raises ``ValueError(message)`` unless ``ok``."""
    if not ok:
        raise ValueError(message)


def validate_scale(family: str, scale: ArrayLike) -> None:
    """Raises unless every scale is finite and > 0, saying how many are not."""
    s = concrete("scale", scale)
    bad = ~(np.isfinite(s) & (s > 0))
    require(
        not bad.any(),
        f"{family}: scale must be finite and > 0; {int(bad.sum())} entries are "
        f"not (smallest {s.min() if s.size else 'n/a'})",
    )


def validate_finite(family: str, name: str, x: ArrayLike) -> None:
    """Raises unless every entry of ``x`` is finite, saying how many are not."""
    a = concrete(name, x)
    require(
        bool(np.isfinite(a).all()),
        f"{family}: {name} has {int((~np.isfinite(a)).sum())} non-finite entries",
    )


def validate_logits(family: str, logits: ArrayLike) -> None:
    """Raises on NaN logits or a row of all -inf (+-inf alone are exact limits)."""
    z = concrete("logits", logits)
    require(not np.isnan(z).any(), f"{family}: logits contain NaN")
    require(not np.isneginf(z).all(axis=-1).any(), f"{family}: some rows of logits are all -inf")


def validate_labels(family: str, y: ArrayLike, num_classes: int) -> None:
    """Raises unless ``y`` holds integer labels in [0, num_classes)."""
    require_integer_labels(family, y)
    labels = concrete("y", y)
    bad = (labels < 0) | (labels >= num_classes)
    require(
        not bad.any(),
        f"{family}: labels must lie in [0, {num_classes}); "
        f"{int(bad.sum())} do not (e.g. {labels[bad][:3].tolist()})",
    )
