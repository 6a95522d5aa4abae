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


def lsq_errors(result: Any, n_data: int, *, scaled: bool) -> np.ndarray:
    """1σ errors of a scipy ``least_squares`` result from (JᵀJ)⁻¹, scaled by χ²/dof when ``scaled``
    (no measurement errors given); NaN where JᵀJ is singular."""
    n_par = len(result.x)
    try:
        cov = np.linalg.inv(result.jac.T @ result.jac)
    except np.linalg.LinAlgError:
        return np.full(n_par, np.nan)
    if scaled:
        cov = cov * float(np.sum(result.fun ** 2)) / max(n_data - n_par, 1)
    return np.sqrt(np.maximum(np.diag(cov), 0.0))


def _u(unit: str) -> str:
    return f" (in {unit})" if unit else ""
