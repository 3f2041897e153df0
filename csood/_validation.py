"""Argument checks shared by every public entry point.

Each check raises ``ValueError`` with one message shape::

    "<name> must be <what is allowed>; got <value>."

so that a user (or a notebook's parameter cell) sees the parameter, the offending value and
the allowed range in one line. Checks return the value converted to its canonical type.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

__all__ = [
    "check_int",
    "check_float",
    "check_choice",
    "check_bool",
    "check_array",
    "fail",
]


def fail(name: str, allowed: str, value: Any) -> None:
    """Raise the project's standard ``ValueError`` for parameter ``name``."""
    raise ValueError(f"{name} must be {allowed}; got {value!r}.")


def _bounds_text(low, high, low_inclusive, high_inclusive) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_inclusive else '>'} {low}")
    if high is not None:
        parts.append(f"{'<=' if high_inclusive else '<'} {high}")
    return " and ".join(parts)


def _in_bounds(value, low, high, low_inclusive, high_inclusive) -> bool:
    if low is not None and (value < low if low_inclusive else value <= low):
        return False
    if high is not None and (value > high if high_inclusive else value >= high):
        return False
    return True


def check_int(
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    allowed: str | None = None,
) -> int:
    """Check that ``value`` is an integer (not a bool) within the given bounds.

    ``allowed`` replaces the generated description of the bounds in the message, e.g.
    ``"an integer with 0 < k < n_latents (= 100)"``.
    """
    ok_type = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok_type and isinstance(value, float) and value.is_integer():
        ok_type, value = True, int(value)
    text = allowed or " ".join(["an integer", _bounds_text(low, high, low_inclusive, high_inclusive)]).strip()
    if not ok_type or not _in_bounds(int(value), low, high, low_inclusive, high_inclusive):
        fail(name, text, value)
    return int(value)


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    allowed: str | None = None,
) -> float:
    """Check that ``value`` is a finite real number within the given bounds."""
    ok_type = isinstance(value, numbers.Real) and not isinstance(value, bool)
    text = allowed or " ".join(["a finite number", _bounds_text(low, high, low_inclusive, high_inclusive)]).strip()
    if not ok_type or not math.isfinite(float(value)):
        fail(name, text, value)
    if not _in_bounds(float(value), low, high, low_inclusive, high_inclusive):
        fail(name, text, value)
    return float(value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Check that ``value`` is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_bool(name: str, value: Any) -> bool:
    """Check that ``value`` is a bool (``numpy.bool_`` accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        fail(name, "True or False", value)
    return bool(value)


def check_array(name: str, X: Any, *, ndim: int | tuple[int, ...] = 2, finite: bool = True):
    """Check the number of dimensions and finiteness of a numpy array or torch tensor.

    Returns ``X`` unchanged (numpy inputs are converted with ``numpy.asarray``); the caller
    decides about dtype and device.
    """
    import torch

    if not isinstance(X, torch.Tensor):
        try:
            X = np.asarray(X)
        except Exception:  # pragma: no cover - exotic inputs
            fail(name, "an array", type(X).__name__)
        if X.dtype == object or not np.issubdtype(X.dtype, np.number):
            fail(name, "a numeric array", f"array of dtype {X.dtype}")
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if X.ndim not in ndims:
        fail(name, f"an array with {' or '.join(map(str, ndims))} dimension(s)", f"shape {tuple(X.shape)}")
    if finite:
        bad = (~torch.isfinite(X)).any().item() if isinstance(X, torch.Tensor) else not np.isfinite(X).all()
        if bad:
            fail(name, "finite (no NaN or inf entries)", f"array of shape {tuple(X.shape)} with non-finite entries")
    return X
