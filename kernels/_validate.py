"""Argument checks shared by the kernels: one precise ValueError per bad input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def scalar(name: str, value: Any, unit: str = "", *, minimum: float | None = None,
           maximum: float | None = None, strict: bool = False) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` naming the parameter.

    ``minimum`` is inclusive unless ``strict`` is true.
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number{_u(unit)}, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite{_u(unit)}, got {x}")
    if minimum is not None:
        if strict and x <= minimum:
            raise ValueError(f"{name} must be > {minimum:g}{_u(unit)}, got {x:g}")
        if not strict and x < minimum:
            raise ValueError(f"{name} must be ≥ {minimum:g}{_u(unit)}, got {x:g}")
    if maximum is not None and x > maximum:
        raise ValueError(f"{name} must be ≤ {maximum:g}{_u(unit)}, got {x:g}")
    return x


def array(name: str, value: Any) -> np.ndarray:
    """Return a float array, or raise ``ValueError`` if it holds NaN or inf."""
    a = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must contain only finite numbers")
    return a


def _u(unit: str) -> str:
    return f" (in {unit})" if unit else ""
