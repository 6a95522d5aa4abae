"""The sample-DOS contract: how the tunnelling kernels sample a density of states on a grid.

A sample DOS is any vectorised callable E → N(E) (meV → normalised DOS).  What the kernels
need from it are integrals of N against the basis functions of their energy grid, never
point values taken blindly.  A DOS says how to get them, in decreasing order of preference:

1. it provides exact integrals: ``hat_average(E, h)`` (projections on the linear B-splines
   of the grid, which keep both the weight and the position of a peak narrower than h) or
   ``cell_average(E, h)`` (:class:`CellAveraged`; e.g. :func:`gapscope.kernels.dos.bind`,
   :func:`gapscope.kernels.dos.tabulated`);
2. it states its finest energy scale: an attribute ``width`` in meV (:class:`HasWidth`; e.g.
   :class:`PointDOS`, what :meth:`gapscope.kernels.ysr.Engine.sample_dos` returns).  Where
   the grid step h ≤ width/2 its point values are used (a smooth function on the grid);
   otherwise (3);
3. a plain callable, or a grid too coarse for the stated width: hat projections are
   computed by **adaptive midpoint refinement**, cell by cell, until each stops changing
   (:func:`adaptive_cell_average`).  A DOS whose structure stays unresolved at the deepest
   level raises :class:`UnresolvedDOSError` (a ``ValueError``) that says how to declare it.

:func:`grid_values` turns either kind of integral into nodal values with a weight-conserving
O(h²) correction, so the trapezoid-type sums of the tunnelling chain see the DOS to O(h⁴)
where it is smooth and conserve its spectral weight and first moment where it is not.

Units: energies meV, DOS normalised to the normal state (dimensionless).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["SampleDOSLike", "CellAveraged", "HasWidth", "PointDOS", "UnresolvedDOSError",
           "adaptive_cell_average", "cells", "hats", "grid_values", "declared_width"]


@runtime_checkable
class SampleDOSLike(Protocol):
    """Any vectorised callable E (meV, ndarray) → N(E) (ndarray of the same shape)."""

    def __call__(self, E: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class CellAveraged(Protocol):
    """A DOS that provides exact cell averages on any grid, and its finest scale ``width`` (meV)."""

    width: float

    def __call__(self, E: np.ndarray) -> np.ndarray: ...

    def cell_average(self, E: np.ndarray, h: float) -> np.ndarray: ...


@runtime_checkable
class HasWidth(Protocol):
    """A DOS that states its finest energy scale ``width`` (meV): no feature is narrower."""

    width: float

    def __call__(self, E: np.ndarray) -> np.ndarray: ...


class UnresolvedDOSError(ValueError):
    """A sample DOS has structure finer than the deepest refinement resolves."""


@dataclass(frozen=True)
class PointDOS:
    """A callable DOS with its finest energy scale declared.

    Parameters
    ----------
    func : callable
        Vectorised E (meV) → N(E).
    width : float
        Narrowest feature of N, meV (e.g. the Dynes Γ of an LDOS computed at ω + iΓ).  The
        kernels use point values on grids with step ≤ width/2 and adaptive cell averages on
        coarser ones.
    """

    func: Callable[[np.ndarray], np.ndarray]
    width: float

    def __post_init__(self) -> None:
        w = float(self.width)
        if not np.isfinite(w) or w < 0.0:
            raise ValueError(f"width must be a finite energy ≥ 0 meV, got {self.width!r}")

    def __call__(self, E: np.ndarray) -> np.ndarray:
        return np.asarray(self.func(np.asarray(E, dtype=float)), dtype=float)


def declared_width(sample_dos: Any) -> float | None:
    """The finest energy scale a DOS states (meV), or None for a plain callable."""
    w = getattr(sample_dos, "width", None)
    if w is None:
        return None
    try:
        w = float(w)
    except (TypeError, ValueError):
        return None
    return w if np.isfinite(w) and w >= 0.0 else None


def _evaluate(f: Callable, x: np.ndarray) -> np.ndarray:
    y = np.asarray(f(x), dtype=float)
    if y.shape != x.shape:
        raise ValueError(f"sample_dos returned shape {y.shape} for energies of shape {x.shape}; "
                         "it must be a vectorised callable E → N(E)")
    if not np.all(np.isfinite(y)):
        bad = x[~np.isfinite(y)]
        raise ValueError(f"sample_dos returned non-finite values (e.g. at E = {bad.flat[0]:.6g} meV): a Γ = 0 "
                         "singularity cannot be sampled point-wise; use dos.bind(...) or dos.tabulated(...) "
                         "for exact cell averages")
    return y


def adaptive_cell_average(f: Callable[[np.ndarray], np.ndarray], E: np.ndarray, h: float, *,
                          rtol: float = 1e-6, atol: float = 1e-6, max_level: int = 12,
                          max_evaluations: int = 4_000_000, kind: str = "cell") -> np.ndarray:
    """Cell averages (1/h)∫_{E−h/2}^{E+h/2} f — or hat projections — by midpoint refinement.

    Level k uses the composite midpoint rule with 2ᵏ sub-cells per cell (``kind="cell"``), or
    2ᵏ⁺¹ sub-cells on [E − h, E + h] weighted by the linear B-spline φ(x) = 1 − |x − E|/h
    (``kind="hat"``: (1/h)∫f φ, which keeps the first moment of a peak narrower than h).  A
    cell is converged when two successive levels agree to ``atol + rtol·|value|`` (the error
    of the finer one is then ~4× smaller for smooth f); the finer value is kept.  Only
    unconverged cells are refined further, so the cost follows the structure of f (narrow
    peaks), not the grid.

    Parameters
    ----------
    f : callable
        Vectorised E (meV) → N(E), finite.
    E : ndarray
        Cell centres, meV.
    h : float
        Cell width, meV (> 0).
    rtol, atol : float
        Convergence tolerance per cell (relative, absolute in DOS units).
    max_level : int
        Deepest level.
    kind : {"cell", "hat"}

    Raises
    ------
    UnresolvedDOSError
        Some cells did not converge at ``max_level``.
    """
    if kind not in ("cell", "hat"):
        raise ValueError(f"kind must be 'cell' or 'hat', got {kind!r}")
    E = np.asarray(E, dtype=float)
    flat = E.ravel()
    span = 1 if kind == "cell" else 2           # support in cells

    def level_values(centres: np.ndarray, level: int) -> np.ndarray:
        m = span * 2 ** level
        x = ((np.arange(m) + 0.5) / m - 0.5) * span            # offsets in units of h
        w = np.ones(m) / m if kind == "cell" else (1.0 - np.abs(x)) * (2.0 / m)
        pts = centres[:, None] + h * x[None, :]
        return _evaluate(f, pts.ravel()).reshape(pts.shape) @ w

    out = level_values(flat, 0)
    prev = out.copy()
    todo = np.arange(flat.size)
    used = flat.size * span
    for level in range(1, max_level + 1):
        used += todo.size * span * 2 ** level
        if used > max_evaluations:
            break
        cur = level_values(flat[todo], level)
        done = np.abs(cur - prev[todo]) <= atol + rtol * np.abs(cur)
        out[todo] = cur
        prev[todo] = cur
        todo = todo[~done]
        if todo.size == 0:
            return out.reshape(E.shape)
    worst = flat[todo[0]] if todo.size else float("nan")
    raise UnresolvedDOSError(
        f"sample_dos has structure finer than {h / 2 ** max_level:.3g} meV near E = {worst:.6g} meV that "
        "adaptive refinement cannot resolve; give it exact cell averages (dos.bind, dos.tabulated) or "
        "declare its finest scale (sampling.PointDOS(func, width=...))")


def cells(sample_dos: Any, E: np.ndarray, h: float) -> np.ndarray:
    """Cell averages of ``sample_dos`` on the grid E (meV) — exact where the DOS provides them,
    adaptive otherwise.  Always finite, or a ``ValueError``."""
    E = np.asarray(E, dtype=float)
    if h <= 0.0:
        return _evaluate(sample_dos, E)
    if callable(getattr(sample_dos, "cell_average", None)):
        return _checked(sample_dos.cell_average(E, h), E, "cell_average")
    return adaptive_cell_average(sample_dos, E, h)


def hats(sample_dos: Any, E: np.ndarray, h: float) -> np.ndarray:
    """Hat projections (1/h)∫N(x)(1 − |x − E|/h)₊ dx on the grid E (meV).

    Exact where the DOS provides ``hat_average``; from eight shifted cell averages where it
    provides ``cell_average`` (hat = box ⊛ box); adaptive otherwise.
    """
    E = np.asarray(E, dtype=float)
    if callable(getattr(sample_dos, "hat_average", None)):
        return _checked(sample_dos.hat_average(E, h), E, "hat_average")
    if callable(getattr(sample_dos, "cell_average", None)):
        offs = ((np.arange(8) + 0.5) / 8 - 0.5) * h
        return _checked(np.mean([sample_dos.cell_average(E + o, h) for o in offs], axis=0), E, "cell_average")
    return adaptive_cell_average(sample_dos, E, h, kind="hat")


def _checked(values: Any, E: np.ndarray, what: str) -> np.ndarray:
    n = np.asarray(values, dtype=float)
    if n.shape != E.shape or not np.all(np.isfinite(n)):
        raise ValueError(f"sample_dos.{what} returned non-finite values or a wrong shape")
    return n


def grid_values(sample_dos: Any, E: np.ndarray, h: float) -> np.ndarray:
    """Nodal values of ``sample_dos`` on a uniform grid E (step h, meV) for trapezoid-type sums.

    * declared width ≥ 2h (the DOS is smooth on the grid): point values, or — where the DOS
      has cell averages — cell averages C_j made nodal by N_j = C_j − (C_{j+1} − 2C_j + C_{j−1})/24;
    * otherwise (narrow peaks, or width unknown): hat projections H_j made nodal by
      N_j = H_j − (H_{j+1} − 2H_j + H_{j−1})/12.

    Both corrections remove the O(h²N″) bias where N is smooth (the error becomes O(h⁴)) and
    keep Σ_j N_j, so an unresolved peak keeps its spectral weight; hat projections also keep
    its first moment, so a peak far narrower than h still sits where it is (error O(h²) in
    the kernel it meets, not O(h)).
    """
    E = np.asarray(E, dtype=float)
    if h <= 0.0 or E.ndim != 1 or E.size < 3:
        return cells(sample_dos, E, h)
    w = declared_width(sample_dos)
    if w is not None and w >= 2.0 * h:
        if not callable(getattr(sample_dos, "cell_average", None)):
            return _evaluate(sample_dos, E)
        c, k = cells(sample_dos, E, h), 24.0
    else:
        c, k = hats(sample_dos, E, h), 12.0
    out = c.copy()
    out[1:-1] -= (c[2:] - 2.0 * c[1:-1] + c[:-2]) / k
    return out
