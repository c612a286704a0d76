"""Eager checks where values enter the library: one place for each rule and its message.

Everything here runs outside ``jit`` on concrete values and raises ``ValueError`` saying what is
wrong (the name, the value or shape, and the first bad index where there is one).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def require_int(name: str, value: Any, least: int | None = None) -> int:
    """``value`` as an int; raises unless it is an integer (numpy's too, never a bool) >= least."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if not ok or (least is not None and value < least):
        bound = f" >= {least}" if least is not None else ""
        raise ValueError(f"{name} must be an integer{bound}, got {value!r}")
    return int(value)


def require_finite_number(
    name: str, value: Any, *, positive: bool = False, nonnegative: bool = False
) -> float:
    """``value`` as a float; raises unless it is a finite real number (and > 0 / >= 0)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = float(value)
        ok = (
            np.isfinite(value) and not (positive and value <= 0) and not (nonnegative and value < 0)
        )
    if not ok:
        what = (
            "a positive finite"
            if positive
            else "a non-negative finite"
            if nonnegative
            else "a finite"
        )
        raise ValueError(f"{name} must be {what} number, got {value!r}")
    return value


def first_bad_index(bad: np.ndarray) -> tuple[int, ...]:
    """The index of the first True entry of ``bad`` (row-major), as a tuple."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


def require_finite_array(name: str, value: Any) -> None:
    """Raises naming ``name`` and its first NaN or inf entry, if any."""
    a = np.asarray(value)
    if not np.issubdtype(a.dtype, np.inexact):
        return
    bad = ~np.isfinite(a)
    if bad.any():
        index = first_bad_index(bad)
        where = ", ".join(map(str, index))
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite entries (NaN or inf); the first "
            f"is {name}[{where}] = {a[index].item()!r}. Bad data is not divergence: "
            "clean it before training"
        )
