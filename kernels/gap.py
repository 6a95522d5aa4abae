"""Temperature dependence of the superconducting gap: BCS, α-model, and T_c fits.

Weak-coupling BCS (real-axis form, equivalent to the Matsubara sum):

    ln(Δ₀/Δ) = 2 ∫₀^∞ dξ f(E)/E,   E = √(ξ² + Δ²),   Δ₀ = π e^{−γ_E} k_B T_c = 1.76388 k_B T_c.

With ξ = Δ sinh u the integral becomes 2∫₀^∞ f(Δ cosh u) du, smooth for all T < T_c.
The reduced gap δ(t) = Δ(T)/Δ₀, t = T/T_c, is solved once on 401 nodes in s = √(1 − t)
and kept as a cubic spline (δ ∝ s near T_c, so the spline is smooth there).

Anisotropic gaps Δ(φ, T) = Δ(T) g(φ) on a circular Fermi surface (weak coupling, separable
pairing V(φ, φ′) = V g(φ) g(φ′); the anisotropic-s shape g = 1 + a cos nφ, the d-wave shape
g = cos 2φ, as in :func:`gapscope.kernels.dos.gap_function`):

    ln(Δ₀/Δ) = (2/⟨g²⟩) ⟨g² ∫₀^∞ du f(Δ|g| cosh u)⟩,
    2Δ₀/k_BT_c = 2π e^{−γ_E} exp(−⟨g² ln|g|⟩/⟨g²⟩),

with ⟨·⟩ the Fermi-circle average and Δ₀ the amplitude of g (the Fermi-surface average
for anisotropic s, the maximum for d).  The ratio is 3.528 for s, 4.279 for d-wave and
3.308 for anisotropic s with a = 0.3 (:func:`weak_coupling_ratio`); the shape δ(t) differs
too (:func:`reduced_gap` with ``symmetry``).  Both follow from the Matsubara form
ln(T_c/T) = 2πk_BT Σ_{n≥0} ⟨g²[1/ω_n − 1/√(ω_n² + Δ²g²)]⟩/⟨g²⟩.

Strong-coupling α-model: Δ(T) = Δ₀ δ(T/T_c) with Δ₀ = α k_B T_c free (2Δ₀/k_BT_c = 2α).
Units: meV, K.

Reference: J. Bardeen, L. N. Cooper, J. R. Schrieffer, "Theory of Superconductivity",
Phys. Rev. 108, 1175 (1957), doi:10.1103/PhysRev.108.1175 (``references.cite("bardeen1957_bcs")``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.optimize import least_squares

from . import _validate as _v
from . import dos as _dos
from .constants import BCS_RATIO, KB
from .specs import Spec

__all__ = ["DELTA0", "TC", "reduced_gap", "bcs_gap", "delta0_from_ratio", "ratio", "fit_tc", "fit_tc_detailed",
           "TcFit", "solve_reduced_gap", "BCS_RATIO", "weak_coupling_ratio", "SYMMETRIES"]

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


# ----------------------------------------------------------------------- gap symmetries
#: gap symmetries with a Δ(T) shape and a weak-coupling ratio (model names of
#: :data:`gapscope.kernels.dos.MODELS`; the aliases "s" and "d" are accepted too)
SYMMETRIES: tuple[str, ...] = ("dynes", "anisotropic_s", "dwave")
_ZETA3 = 1.2020569031595942


def _symmetry(symmetry: str, anisotropy: float) -> tuple[str, float]:
    """Canonical (model name, a); an anisotropic gap with a = 0 is the s-wave one."""
    try:
        name = _dos.get_model(symmetry).name
    except (ValueError, TypeError):
        name = ""
    if name not in SYMMETRIES:
        raise ValueError(f"symmetry must be one of {list(SYMMETRIES)} (or 's', 'd'), got {symmetry!r}")
    if name == "anisotropic_s":
        a = _dos.ANISOTROPY.check(anisotropy)
        return ("dynes", 0.0) if a == 0.0 else (name, a)
    return name, 0.0


def _fermi_circle(name: str, a: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes g_k of the normalised gap and weights w_k (Σw = 1) of the Fermi-circle average.

    ⟨F(g)⟩ = (1/π)∫₀^π F(g(u)) du with g = 1 + a cos u (anisotropic s; the average over φ of
    a function of cos nφ does not depend on n) or g = cos u (d-wave, u = 2φ); Gauss–Legendre
    with ``n`` nodes on each piece between the zeros of g (smooth there).
    """
    if name == "dynes":
        return np.ones(1), np.ones(1)
    c0, c1 = (1.0, a) if name == "anisotropic_s" else (0.0, 1.0)
    cuts = [0.0, np.pi]
    if abs(c0) < abs(c1):
        cuts.insert(1, float(np.arccos(-c0 / c1)))
    x, w = np.polynomial.legendre.leggauss(n)
    u = np.concatenate([lo + 0.5 * (hi - lo) * (x + 1.0) for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)])
    wt = np.concatenate([0.5 * (hi - lo) * w / np.pi for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)])
    return c0 + c1 * np.cos(u), wt


def weak_coupling_ratio(*, symmetry: str = "dynes", anisotropy: float = 0.0) -> float:
    """Weak-coupling 2Δ₀/k_BT_c of a gap shape: 2πe^{−γ_E} exp(−⟨g² ln|g|⟩/⟨g²⟩) (dimensionless).

    Parameters
    ----------
    symmetry : {"dynes" (or "s"), "anisotropic_s", "dwave" (or "d")}
        Gap shape g(φ) on a circular Fermi surface: 1, 1 + a cos nφ, cos 2φ.
    anisotropy : float
        a of the anisotropic-s shape (ignored otherwise).

    Returns
    -------
    float
        3.5278 (s), 4.2794 (d-wave, Δ₀ the maximum), 3.3079 (anisotropic s with a = 0.3, Δ₀
        the Fermi-surface average).  Separable pairing V g(φ)g(φ′) is assumed.
    """
    name, a = _symmetry(symmetry, anisotropy)
    g, w = _fermi_circle(name, a, 200)
    g2 = g * g
    lng = np.log(np.abs(np.where(g == 0.0, 1.0, g)))
    return float(2.0 * BCS_RATIO * np.exp(-(w @ (g2 * lng)) / (w @ g2)))


def _thermal_integral_raw(y: np.ndarray, n_quad: int = 200) -> np.ndarray:
    """I(y) = ∫₀^∞ f(y cosh u) du for y > 0 (Gauss–Legendre on [0, arccosh(60/y + 1)])."""
    x, w = np.polynomial.legendre.leggauss(n_quad)
    umax = np.arccosh(60.0 / y + 1.0)
    u = 0.5 * umax[:, None] * (x[None, :] + 1.0)
    f = 0.5 * (1.0 - np.tanh(0.5 * y[:, None] * np.cosh(u)))
    return 0.5 * umax * (f @ w)


@lru_cache(maxsize=1)
def _thermal_table() -> CubicSpline:
    ly = np.linspace(np.log(1e-3), np.log(60.0), 2001)
    return CubicSpline(ly, _thermal_integral_raw(np.exp(ly)))


def _thermal_integral(y: np.ndarray) -> np.ndarray:
    """I(y) = ∫₀^∞ f(y cosh u) du (y ≥ 0; +inf at 0): table for 10⁻³ ≤ y ≤ 60, series below,
    I(y) = ½ ln(πe^{−γ_E}/y) + 7ζ(3)y²/16π² + O(y⁴), and 0 above (I(60) < 10⁻²⁶)."""
    y = np.asarray(y, dtype=float)
    out = np.zeros_like(y)
    small = y < 1e-3
    mid = ~small & (y <= 60.0)
    ys = np.maximum(y[small], 1e-300)
    out[small] = 0.5 * np.log(BCS_RATIO / ys) + 7.0 * _ZETA3 * ys * ys / (16.0 * np.pi ** 2)   # πe^{−γ_E} = BCS_RATIO
    out[mid] = _thermal_table()(np.log(y[mid]))
    return out


@lru_cache(maxsize=64)
def _shape_spline(name: str, a: float) -> CubicSpline:
    """δ(s), s = √(1 − t), of an anisotropic gap, from the parametric solution of the gap equation.

    With x = Δ/k_BT the equation ln(Δ₀/Δ) = (2/⟨g²⟩)⟨g² I(|g|x)⟩ ≡ H(x) gives, for every x,
    δ = e^{−H(x)} and t = (δ/x)·(ratio/2) in closed form (no root finding); x runs over
    c·σ/(1 − σ), which is uniform in s near T_c and in 1/x near T = 0.
    """
    g, w = _fermi_circle(name, a, 48)
    keep = g != 0.0
    g, w = np.abs(g[keep]), w[keep]
    gw = w * g * g
    half_ratio = 0.5 * weak_coupling_ratio(symmetry=name, anisotropy=a)
    n = 900
    sig = (np.arange(n) + 0.5) / n
    x = 2.0 * sig / (1.0 - sig)
    H = (2.0 / gw.sum()) * (_thermal_integral(x[:, None] * g[None, :]) @ gw)
    d = np.exp(-H)
    t = half_ratio * d / x
    s = np.sqrt(np.clip(1.0 - t, 0.0, 1.0))
    s = np.concatenate([[0.0], s, [1.0]])
    d = np.concatenate([[0.0], d, [1.0]])
    order = np.argsort(s)
    s, d = s[order], d[order]
    ok = np.concatenate([[True], np.diff(s) > 1e-12])
    return CubicSpline(s[ok], d[ok])


def reduced_gap(t: np.ndarray | float, *, symmetry: str = "dynes", anisotropy: float = 0.0) -> np.ndarray:
    """Weak-coupling δ(t) = Δ(T)/Δ(0) at t = T/T_c; δ = 1 at t ≤ 0 and 0 at t ≥ 1 (dimensionless).

    Parameters
    ----------
    t : array_like
        Reduced temperatures T/T_c.
    symmetry : str
        "dynes"/"s" (BCS, the default), "anisotropic_s" (g = 1 + a cos nφ) or "dwave"/"d"
        (g = cos 2φ); the anisotropic shapes solve the gap equation of the module docstring.
    anisotropy : float
        a of the anisotropic-s shape.
    """
    t = np.asarray(t, dtype=float)
    tc = np.clip(t, 0.0, 1.0)
    name, a = _symmetry(symmetry, anisotropy)
    spline = _spline() if name == "dynes" else _shape_spline(name, a)
    d = spline(np.sqrt(1.0 - tc))
    return np.where(t >= 1.0, 0.0, np.clip(d, 0.0, 1.0))


def bcs_gap(T: np.ndarray | float, *, delta0: float, tc: float, symmetry: str = "dynes",
            anisotropy: float = 0.0) -> np.ndarray:
    """Gap Δ(T) in the α-model: Δ₀ · δ(T/T_c), 0 for T ≥ T_c.

    Parameters
    ----------
    T : array_like
        Temperatures ≥ 0, K.
    delta0 : float
        Zero-temperature gap Δ₀ ≥ 0, meV.  Weak coupling is Δ₀ = (ratio/2) k_B T_c with the
        ratio of :func:`weak_coupling_ratio` (1.76388 k_B T_c for s); any other value keeps
        the weak-coupling shape with 2Δ₀/k_BT_c as a free parameter (strong coupling).
    tc : float
        Critical temperature T_c > 0, K.
    symmetry, anisotropy
        Shape δ(t) of the gap (see :func:`reduced_gap`); the default is the BCS s-wave one.

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
    return delta0 * reduced_gap(T / tc, symmetry=symmetry, anisotropy=anisotropy)


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
    err = _v.lsq_errors(r, T.size, scaled=sigma is None)
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
