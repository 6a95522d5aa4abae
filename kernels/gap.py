"""Temperature dependence of the superconducting gap: BCS, α-model, and T_c fits.

Weak-coupling BCS (real-axis form, equivalent to the Matsubara sum):

    ln(Δ₀/Δ) = 2 ∫₀^∞ dξ f(E)/E,   E = √(ξ² + Δ²),   Δ₀ = π e^{−γ_E} k_B T_c = 1.76388 k_B T_c.

With ξ = Δ sinh u the integral becomes 2∫₀^∞ f(Δ cosh u) du, smooth for all T < T_c.
The reduced gap δ(t) = Δ(T)/Δ₀, t = T/T_c, is solved once on 401 nodes in s = √(1 − t)
and kept as a cubic spline (δ ∝ s near T_c, so the spline is smooth there).

Strong-coupling α-model: Δ(T) = Δ₀ δ(T/T_c) with Δ₀ = α k_B T_c free (2Δ₀/k_BT_c = 2α).
Units: meV, K.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.optimize import least_squares

from . import _validate as _v
from .constants import BCS_RATIO, KB
from .specs import Spec

__all__ = ["DELTA0", "TC", "reduced_gap", "bcs_gap", "delta0_from_ratio", "ratio", "fit_tc", "fit_tc_detailed",
           "TcFit", "solve_reduced_gap", "BCS_RATIO"]

_NODES = 401

DELTA0 = Spec("delta0", "Δ₀", "meV", 1.3, (0.0, 3.0), (0.0, 50.0), 0.01, "gap at T = 0")
TC = Spec("tc", "T_c", "K", 7.1, (0.5, 20.0), (0.0, 300.0), 0.05, "critical temperature", open_low=True)


def solve_reduced_gap(t: np.ndarray | float, *, n_quad: int = 160) -> np.ndarray:
    """Solve the BCS gap equation for δ = Δ(T)/Δ₀ directly (no spline), vectorised over t.

    Bisection on g(δ) = ln(1/δ) − 2∫₀^U f(δ cosh u / τ) du (τ = k_BT/Δ₀ = t/1.76388),
    Gauss–Legendre in u.  Returns 1 at t = 0 and 0 for t ≥ 1.
    """
    t = np.atleast_1d(np.asarray(t, dtype=float))
    out = np.where(t <= 0, 1.0, 0.0)
    m = (t > 0) & (t < 1)
    if not np.any(m):
        return out
    tau = t[m] / BCS_RATIO
    x, w = np.polynomial.legendre.leggauss(n_quad)
    lo = np.zeros_like(tau)
    hi = np.ones_like(tau)

    def g(d: np.ndarray) -> np.ndarray:
        # f(δ cosh u/τ) < e^{−60} beyond cosh u = 60τ/δ + 1.
        umax = np.arccosh(60.0 * tau / d + 1.0)
        u = 0.5 * umax[:, None] * (x[None, :] + 1.0)
        arg = d[:, None] * np.cosh(u) / tau[:, None]
        f = 0.5 * (1.0 - np.tanh(0.5 * arg))
        integral = 0.5 * umax * (f @ w)
        return np.log(1.0 / d) - 2.0 * integral

    for _ in range(60):   # g is decreasing in δ
        mid = 0.5 * (lo + hi)
        pos = g(np.maximum(mid, 1e-300)) > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
    out[m] = 0.5 * (lo + hi)
    return out


@lru_cache(maxsize=1)
def _spline() -> CubicSpline:
    s = np.linspace(0.0, 1.0, _NODES)
    t = 1.0 - s * s
    d = solve_reduced_gap(t)
    d[0] = 0.0
    return CubicSpline(s, d)


def reduced_gap(t: np.ndarray | float) -> np.ndarray:
    """BCS δ(t) = Δ(T)/Δ(0) at t = T/T_c; δ = 1 at t ≤ 0 and 0 at t ≥ 1 (dimensionless)."""
    t = np.asarray(t, dtype=float)
    tc = np.clip(t, 0.0, 1.0)
    d = _spline()(np.sqrt(1.0 - tc))
    return np.where(t >= 1.0, 0.0, np.clip(d, 0.0, 1.0))


def bcs_gap(T: np.ndarray | float, *, delta0: float, tc: float) -> np.ndarray:
    """Gap Δ(T) in the α-model: Δ₀ · δ_BCS(T/T_c), 0 for T ≥ T_c.

    Parameters
    ----------
    T : array_like
        Temperatures ≥ 0, K.
    delta0 : float
        Zero-temperature gap Δ₀ ≥ 0, meV.  Weak coupling is Δ₀ = 1.76388 k_B T_c; any other
        value keeps the BCS shape with 2Δ₀/k_BT_c as a free parameter (strong coupling).
    tc : float
        Critical temperature T_c > 0, K.

    Returns
    -------
    ndarray
        Δ(T), meV.
    """
    delta0 = DELTA0.check(delta0)
    tc = TC.check(tc)
    T = np.asarray(T, dtype=float)
    if np.any(~np.isfinite(T)) or np.any(T < 0):
        raise ValueError("T must contain finite temperatures ≥ 0 K")
    return delta0 * reduced_gap(T / tc)


def delta0_from_ratio(*, tc: float, ratio: float = 2.0 * BCS_RATIO) -> float:
    """Δ₀ = (ratio/2) k_B T_c in meV, with ``ratio`` = 2Δ₀/k_BT_c (3.528 for weak coupling)."""
    tc = TC.check(tc)
    ratio = _v.scalar("ratio", ratio, "", minimum=0.0)
    return 0.5 * ratio * KB * tc


def ratio(*, delta0: float, tc: float) -> float:
    """Coupling ratio 2Δ₀/(k_B T_c) (dimensionless); 3.528 in weak-coupling BCS."""
    return 2.0 * DELTA0.check(delta0) / (KB * TC.check(tc))


class TcFit(NamedTuple):
    """Result of :func:`fit_tc_detailed` (meV, K)."""

    delta0: float
    tc: float
    delta0_err: float
    tc_err: float
    ratio: float


def fit_tc_detailed(T: np.ndarray, delta: np.ndarray, *, sigma: np.ndarray | float | None = None,
                    fixed_ratio: float | None = None) -> TcFit:
    """Least-squares fit of Δ_i = Δ₀ δ_BCS(T_i/T_c), with 1σ errors from the Jacobian.

    Include zero-gap points above T_c: they pin T_c.  ``fixed_ratio`` fixes 2Δ₀/k_BT_c
    (e.g. 3.528) and fits T_c alone.  Errors are scaled by √(χ²_red) when ``sigma`` is None.
    """
    T = _v.array("T", T).ravel()
    d = _v.array("delta", delta).ravel()
    if T.shape != d.shape:
        raise ValueError("T and delta must have the same length")
    if T.size < 2:
        raise ValueError("fit_tc needs at least two (T, Δ) points")
    if np.any(T < 0):
        raise ValueError("temperatures must be ≥ 0 K")
    if not np.any(d > 0):
        raise ValueError("fit_tc needs at least one point with a non-zero gap")
    s = np.ones_like(d) if sigma is None else np.broadcast_to(_v.array("sigma", sigma), d.shape)
    if np.any(s <= 0):
        raise ValueError("sigma must be > 0")
    # Start: T_c just above the warmest gapped point, Δ₀ from the coldest one.
    gapped = d > 0.05 * d.max()
    tc0 = 1.1 * T[gapped].max() if T[gapped].max() > 0 else 1.0
    above = T[(~gapped) & (T > T[gapped].max())]
    if above.size:
        tc0 = 0.5 * (T[gapped].max() + above.min())
    d00 = d[np.argmin(np.where(gapped, T, np.inf))] / max(float(reduced_gap(T[gapped].min() / tc0)), 0.1)

    if fixed_ratio is None:
        def resid(p):
            return (p[0] * reduced_gap(T / p[1]) - d) / s
        p0, lb = [d00, tc0], [0.0, 1e-6]
    else:
        def resid(p):
            return (delta0_from_ratio(tc=p[0], ratio=fixed_ratio) * reduced_gap(T / p[0]) - d) / s
        p0, lb = [tc0], [1e-6]
    r = least_squares(resid, p0, bounds=(lb, np.inf), x_scale="jac", xtol=1e-14, ftol=1e-14, gtol=1e-14)
    dof = max(T.size - len(p0), 1)
    chi2 = float(np.sum(r.fun ** 2))
    try:
        cov = np.linalg.inv(r.jac.T @ r.jac)
        if sigma is None:
            cov *= chi2 / dof
        err = np.sqrt(np.maximum(np.diag(cov), 0.0))
    except np.linalg.LinAlgError:
        err = np.full(len(p0), np.nan)
    if fixed_ratio is None:
        d0, tc = float(r.x[0]), float(r.x[1])
        d0e, tce = float(err[0]), float(err[1])
    else:
        tc = float(r.x[0])
        d0 = delta0_from_ratio(tc=tc, ratio=fixed_ratio)
        tce = float(err[0])
        d0e = d0 * tce / tc
    return TcFit(d0, tc, d0e, tce, 2.0 * d0 / (KB * tc))


def fit_tc(T: np.ndarray, delta: np.ndarray, *, sigma: np.ndarray | float | None = None,
           fixed_ratio: float | None = None) -> tuple[float, float]:
    """Fit (Δ₀, T_c) in meV and K to gap points Δ(T); see :func:`fit_tc_detailed`."""
    r = fit_tc_detailed(T, delta, sigma=sigma, fixed_ratio=fixed_ratio)
    return r.delta0, r.tc
