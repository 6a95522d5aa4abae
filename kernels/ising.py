"""Ising superconductivity: Pauli limit, in-plane H_c2(T), Δ(T, B) and tunnelling DOS in a Zeeman field.

Model (per valley η = ±1 of a monolayer such as NbSe₂; Wickramaratne & Mazin, see
``references.cite("wickramaratne2023_ising")``): a flat band ξ with q = 0 singlet pairing Δ and

    h_e(k) = ξ + g(k)·σ + h·σ,   g(k) = η β_so ẑ + λ_R (sin φ, −cos φ, 0),

where σ are the Pauli matrices (eigenvalues ±1), φ is the angle of k on the Fermi circle
around K or K′, and

* **β_so is half the spin-orbit band splitting at K** (the Ising term η β_so σ_z splits the
  bands by 2β_so): the DFT splittings 150 / 115 / 280 meV of NbSe₂ / NbS₂ / TaS₂ are
  β_so = 75 / 57.5 / 140 meV;
* **h is the Zeeman energy**, a 3-vector in meV: h = g μ_B B / 2 along the field (so the spin
  splitting of a normal band is 2h = g μ_B B; :func:`zeeman`, :func:`field_vector`);
  x̂ is in-plane, ẑ out of plane;
* λ_R is a substrate Rashba term; only the Zeeman (spin) effect of the field is kept, no
  orbital depairing (valid for in-plane fields in a monolayer), no finite-q (FFLO, helical)
  pairing.

Everything follows from the ξ-integrated BdG Green's function.  In the Nambu basis
(c↑, c↓, c↓†, −c↑†) of :mod:`.nambu`, H_BdG = ξτ_z + M with M = τ₀⊗h·σ + τ_z⊗g·σ + Δτ_x⊗σ₀, and
for a flat band

    ∫dξ G(z) = −iπ sgn_Im(A) τ_z,   A = τ_z (z − M),   sgn_Im(A) = V diag(sign Im a_j) V⁻¹,

so the DOS is N(E) = ½ Re Tr_e sgn_Im(A(E + iΓ)) and the singlet pair amplitude at a
Matsubara frequency is f_s(ω) = −i Tr_eh sgn_Im(A(iω))/2 (BCS: Δ/√(ω² + Δ²)), both averaged
over η and φ.  Without Rashba and for an in-plane field, A² = c + B with B² a scalar, which gives
closed forms (:func:`dos`); out of plane, N = ½[N_D(E − h) + N_D(E + h)] for any β_so.

Linearised in Δ, the pair susceptibility of each (η, φ) is a sum of four poles, and the
second-order line H_c2(T) solves (exactly, per angle; ψ the digamma function)

    ln(T_c/T) = Σ_ab (w_ab/2) Re ψ(½ + (Γ_AG + iδ_ab)/(2πk_BT)) − ψ(½),
    w_ab = (1 − s_a s_b n̂₁·n̂₂)/2,  δ_ab = (s_a|h + g| − s_b|h − g|)/2,  n̂₁,₂ = (h ± g)/|h ± g|,

averaged over η and φ.  Ising only, in-plane field (ρ² = h² + β_so²):

    ln(T/T_c) + h²/ρ² [Re ψ(½ + iρ/(2πk_BT)) − ψ(½)] = 0,

β_so = 0 (or any out-of-plane field) gives the Pauli line.  Magnetic impurities enter through
the Abrikosov–Gor'kov depairing energy Γ_AG (``pair_breaking``) as the shift ω → ω + Γ_AG of the
Green's functions: exact for the zero-field T_c, ln(T_c0/T_c) = ψ(½ + Γ_AG/2πk_BT_c) − ψ(½)
(T_c → 0 at Γ_AG = Δ₀/2), and the usual spin-independent approximation in a field (the
impurities' mixing of the spin-split bands is neglected; in the DOS it acts as an extra Dynes
broadening).

Units: energies meV, T in K, B in tesla.  The DFT β_so gives H_c2 of hundreds of tesla where
monolayer NbSe₂ shows ~30–35 T: in this clean single-valley model the effective β_so is a fit
parameter (:func:`fit_hc2`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy.integrate import quad
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq, least_squares
from scipy.special import digamma

from . import _validate as _v
from . import dos as _dos
from . import gap as _gap
from . import models as _models
from . import nambu, sampling, tunneling
from .constants import BCS_RATIO, KB, MU_B
from .specs import Spec

__all__ = ["BETA_SO", "RASHBA", "B_FIELD", "FIELD_ANGLE", "G_FACTOR", "PAIR_BREAKING", "GAMMA",
           "zeeman", "tesla", "field_vector", "pauli_limit", "critical_temperature", "hc2", "hc2_inplane",
           "GapSolution", "gap_solution", "self_consistent_gap", "dos", "sample_dos",
           "Hc2Fit", "fit_hc2", "phi_nodes", "uses_bdg", "Progress", "hc2_cost", "sample_dos_cost"]

# ----------------------------------------------------------------------------- parameters
BETA_SO = Spec("beta_so", "β_so", "meV", 1.0, (0.0, 20.0), (0.0, 1000.0), 0.01,
               "Ising spin-orbit energy: half the band splitting at K (DFT 150 meV splitting → 75 meV)")
RASHBA = Spec("rashba", "λ_R", "meV", 0.0, (0.0, 5.0), (0.0, 200.0), 0.01,
              "Rashba spin-orbit energy at k_F (substrate-induced)")
B_FIELD = Spec("b", "B", "T", 10.0, (0.0, 60.0), (0.0, 5000.0), 0.1,
               "magnetic field (Zeeman only: h = gμ_B B/2)")
FIELD_ANGLE = Spec("angle", "θ_B", "°", 0.0, (0.0, 90.0), (0.0, 90.0), 1.0,
                   "field angle from the plane (0: in-plane, 90: out of plane)")
G_FACTOR = Spec("g", "g", "", 2.0, (1.0, 3.0), (0.0, 20.0), 0.01, "electron g factor", open_low=True)
PAIR_BREAKING = Spec("pair_breaking", "Γ_AG", "meV", 0.0, (0.0, 0.3), (0.0, 10.0), 0.001,
                     "Abrikosov–Gor'kov depairing energy of magnetic impurities (T_c → 0 at Δ₀/2)")
#: the BdG DOS is evaluated at E + iΓ: Γ > 0 (≥ 1 µeV)
GAMMA = _dos.GAMMA.replace(bounds=(1e-3, 10.0), soft=(1e-3, 0.3),
                           doc="Dynes broadening of the sample DOS (does not change Δ)")

#: progress callback: fraction done in [0, 1]; may raise to cancel (e.g. a panel task's ``progress``)
Progress = Callable[[float], None]

_PSI_HALF = float(digamma(0.5))
_N_HEAD = 24                 # Matsubara frequencies summed exactly; the rest by Euler–Maclaurin
_TOP = 100.0                 # quadrature up to 100 × the largest energy, then the 1/ω³ tail (error ~1e-4 of the tail)
_GL8 = np.polynomial.legendre.leggauss(8)


# ----------------------------------------------------------------------------- field and Pauli limit
def zeeman(b: float | np.ndarray, *, g: float = 2.0) -> float | np.ndarray:
    """Zeeman energy h = g μ_B B/2 in meV for a field B in tesla (spin splitting 2h)."""
    g = G_FACTOR.check(g)
    bb = _v.array("b", b)
    if np.any(bb < 0):
        raise ValueError("b must be ≥ 0 T")
    out = 0.5 * g * MU_B * bb
    return float(out) if np.ndim(out) == 0 else out


def tesla(h: float | np.ndarray, *, g: float = 2.0) -> float | np.ndarray:
    """Field B = 2h/(g μ_B) in tesla for a Zeeman energy h in meV (inverse of :func:`zeeman`)."""
    g = G_FACTOR.check(g)
    out = 2.0 * _v.array("h", h) / (g * MU_B)
    return float(out) if np.ndim(out) == 0 else out


def field_vector(*, b: float, angle: float = 0.0, g: float = 2.0) -> np.ndarray:
    """Zeeman 3-vector h = (g μ_B B/2)(cos θ, 0, sin θ) in meV.

    Parameters
    ----------
    b : float
        Field B ≥ 0, tesla.
    angle : float
        Angle θ of the field from the plane, degrees (0: in-plane along x̂, 90: along ẑ).
    g : float
        g factor (> 0).
    """
    b = B_FIELD.check(b)
    return float(zeeman(b, g=g)) * _direction(angle)


def _direction(angle: float) -> np.ndarray:
    """Unit vector at ``angle`` degrees from the plane, in the x–z plane (exact at 0° and 90°)."""
    a = FIELD_ANGLE.check(angle)
    if a == 90.0:
        return np.array([0.0, 0.0, 1.0])
    th = math.radians(a)
    return np.array([math.cos(th), 0.0, math.sin(th)])


def pauli_limit(*, tc: float | None = None, delta0: float | None = None, g: float = 2.0) -> float:
    """Clogston–Chandrasekhar (Pauli) limit B_P = √2 Δ₀/(g μ_B) in tesla.

    At T = 0 the normal state's spin polarisation energy N₀h² equals the condensation energy
    N₀Δ₀²/2 at h_P = Δ₀/√2 (first-order transition).  Give either the zero-temperature gap
    ``delta0`` (meV) or ``tc`` (K, weak coupling Δ₀ = π e^{−γ_E} k_BT_c = 1.7639 k_BT_c); with
    g = 2, B_P = 1.8568 T/K × T_c.
    """
    if (tc is None) == (delta0 is None):
        raise ValueError("give exactly one of tc (K) or delta0 (meV)")
    d0 = BCS_RATIO * KB * _gap.TC.check(tc) if tc is not None else _gap.DELTA0.check(delta0)
    return float(math.sqrt(2.0) * d0 / (G_FACTOR.check(g) * MU_B))


def critical_temperature(*, tc: float, pair_breaking: float) -> float:
    """Zero-field T_c (K) with magnetic impurities: ln(T_c0/T_c) = ψ(½ + Γ_AG/2πk_BT_c) − ψ(½).

    ``tc`` is the clean T_c0 (K), ``pair_breaking`` Γ_AG (meV); T_c = 0 for Γ_AG ≥ Δ₀/2
    (Δ₀ = 1.7639 k_BT_c0).
    """
    tc = _gap.TC.check(tc)
    gam = PAIR_BREAKING.check(pair_breaking)
    if gam == 0.0:
        return tc
    if gam >= 0.5 * BCS_RATIO * KB * tc:
        return 0.0
    f = lambda t: math.log(tc / t) - (digamma(0.5 + gam / (2 * math.pi * KB * t)) - _PSI_HALF)  # noqa: E731
    return float(brentq(f, 1e-9 * tc, tc, xtol=1e-14 * tc, rtol=1e-14))


# ----------------------------------------------------------------------------- geometry
def phi_nodes(n: int) -> np.ndarray:
    """Midpoint nodes φ_k = (k + ½)2π/n on the Fermi circle (spectrally accurate for periodic integrands)."""
    return (np.arange(n) + 0.5) * (2.0 * np.pi / n)


def _soc(beta: float, rashba: float, eta: float, phi: np.ndarray) -> np.ndarray:
    """g(k) = η β ẑ + λ_R(sin φ, −cos φ, 0), shape (n_φ, 3)."""
    return np.stack([rashba * np.sin(phi), -rashba * np.cos(phi), np.full(phi.shape, eta * beta)], axis=-1)


def _check_field(field: object) -> np.ndarray:
    h = np.asarray(field, dtype=float)
    if h.shape != (3,) or not np.all(np.isfinite(h)):
        raise ValueError(f"field must be a finite Zeeman 3-vector (h_x, h_y, h_z) in meV, got {field!r}")
    if np.linalg.norm(h) > 1e4:
        raise ValueError(f"field |h| = {np.linalg.norm(h):g} meV is beyond 10⁴ meV")
    return h


def _linear_terms(hvec: np.ndarray, beta: float, rashba: float, n_phi: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights W_k (summing to 1) and pole energies δ_k of the q = 0 singlet pair susceptibility.

    χ(ω) = Σ_k W_k Re 1/(ω − iδ_k) averaged over the valleys and the φ nodes: for each (η, φ) the
    four poles w_ab/2 at δ_ab of the module docstring.  Two exact symmetries shrink the sum: the
    valley η = −1 at φ is η = +1 at φ + π with g → −g, which swaps h ± g and leaves the φ-average
    unchanged; and (a, b) → (−a, −b) flips δ_ab, which Re ψ does not see.  So the terms are
    (a, b) = (+, ±) of one valley with weight w_ab/n_φ.  Leading axes of ``hvec``: any batch
    (e.g. field magnitudes); returns arrays of shape batch + (2·n_φ,).
    """
    phi = phi_nodes(n_phi) if rashba > 0 else np.zeros(1)
    g = _soc(beta, rashba, 1.0, phi)                           # (n_φ, 3)
    b1 = hvec[..., None, :] + g                                # (..., n_φ, 3)
    b2 = hvec[..., None, :] - g
    r1 = np.linalg.norm(b1, axis=-1)
    r2 = np.linalg.norm(b2, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.sum(b1 * b2, axis=-1) / (r1 * r2)
    c = np.where((r1 > 0) & (r2 > 0), c, 1.0)       # a vanishing |h ± g|: its two poles coincide, any n̂ will do
    W = np.concatenate([(1.0 - c) / (2.0 * phi.size), (1.0 + c) / (2.0 * phi.size)], axis=-1)
    D = np.concatenate([0.5 * (r1 - r2), 0.5 * (r1 + r2)], axis=-1)
    return W, D


def _n_phi_linear(rashba: float, t_min: float) -> int:
    """φ nodes for the linearised equation: the pole δ₊₊ ∝ h·g crosses zero on the circle, where the
    integrand varies on the scale 2πk_BT; at T = 0 its log singularity converges slowly (4096 nodes)."""
    if rashba == 0:
        return 1
    if t_min <= 0:
        return 4096
    return int(np.clip(np.ceil(8.0 * rashba / (2 * np.pi * KB * t_min)), 64, 4096))


# ----------------------------------------------------------------------------- H_c2
def _hc2_zeeman(T: np.ndarray, *, tc: float, beta: float, rashba: float, direction: np.ndarray,
                pair_breaking: float, n_phi: int) -> np.ndarray:
    """Second-order line as a Zeeman energy h (meV) for each T (K); inf where it diverges."""
    kt = KB * T
    d0 = BCS_RATIO * KB * tc
    gam = pair_breaking
    tcs = critical_temperature(tc=tc, pair_breaking=gam)
    out = np.zeros_like(T)
    live = T < tcs
    if not np.any(live):
        return out

    def excess(h: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Pair-breaking excess F(h) − ln(T_c/T): < 0 superconducting, > 0 normal."""
        W, D = _linear_terms(h[:, None] * direction, beta, rashba, n_phi)
        t = kt[idx]
        res = np.empty(idx.size)
        warm = t > 0
        if np.any(warm):
            x = 2 * np.pi * t[warm, None]
            res[warm] = (np.sum(W[warm] * digamma(0.5 + (gam + 1j * D[warm]) / x).real, axis=-1) - _PSI_HALF
                         - np.log(tc / T[idx][warm]))
        if np.any(~warm):   # T = 0: Σ W ln|Γ + iδ| = ln(Δ₀/2)
            with np.errstate(divide="ignore"):
                logs = np.where(W[~warm] > 0, np.log(np.abs(gam + 1j * D[~warm])), 0.0)
            res[~warm] = np.sum(W[~warm] * logs, axis=-1) - math.log(0.5 * d0)
        return res

    idx = np.flatnonzero(live)
    lo = np.zeros(idx.size)
    hi = np.full(idx.size, max(d0, beta, rashba, 1e-6))
    grow = excess(hi, idx) <= 0
    for _ in range(40):
        if not np.any(grow):
            break
        hi = np.where(grow, 4.0 * hi, hi)
        grow = grow & (excess(hi, idx) <= 0) & (hi < 1e7)
    f_hi = excess(hi, idx)
    diverged = f_hi <= 0
    f_lo = excess(lo, idx)
    # Illinois (regula falsi with halving of the stale end's value): F increases with h.
    side = np.zeros(idx.size)
    for _ in range(100):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            x = np.where(diverged, hi, hi - f_hi * (hi - lo) / (f_hi - f_lo))
        x = np.where(np.isfinite(x) & (x > lo) & (x < hi), x, 0.5 * (lo + hi))
        fx = excess(x, idx)
        sc = fx <= 0
        lo, f_lo = np.where(sc, x, lo), np.where(sc, fx, f_lo)
        hi, f_hi = np.where(sc, hi, x), np.where(sc, f_hi, fx)
        f_hi = np.where(sc & (side > 0), 0.5 * f_hi, f_hi)
        f_lo = np.where(~sc & (side < 0), 0.5 * f_lo, f_lo)
        side = np.where(sc, 1.0, -1.0)
        if np.all((hi - lo <= 1e-12 * np.maximum(hi, 1e-12)) | diverged | (np.abs(fx) < 1e-15)):
            break
    lo = np.where(np.abs(fx) < 1e-15, x, lo)
    hi = np.where(np.abs(fx) < 1e-15, x, hi)
    out[idx] = np.where(diverged, np.inf, 0.5 * (lo + hi))
    return out


def hc2(T: np.ndarray | float, *, tc: float, beta_so: float, rashba: float = 0.0, g: float = 2.0,
        angle: float = 0.0, pair_breaking: float = 0.0) -> np.ndarray:
    """Second-order (linearised, q = 0) upper critical field H_c2(T) in tesla, spin effect only.

    Solves, for the Zeeman energy h = g μ_B B/2 along the direction at ``angle`` from the plane,

        ln(T_c/T) = ⟨Σ_ab (w_ab/2) Re ψ(½ + (Γ_AG + iδ_ab)/(2πk_BT))⟩ − ψ(½)

    (module docstring; with Rashba the φ-average uses 64–4096 midpoint nodes, more at low T).  At T = 0 the limit
    ⟨Σ (w_ab/2) ln|Γ_AG + iδ_ab|⟩ = ln(Δ₀/2) is used: the Pauli line ends at h = Δ₀/2 (the
    supercooling field; the first-order Clogston field is Δ₀/√2, :func:`pauli_limit`), and a
    clean Ising superconductor in an in-plane field diverges (returned as ``inf``).

    Parameters
    ----------
    T : array_like
        Temperatures ≥ 0, K; 0 is returned for T ≥ T_c (with pair breaking: its reduced T_c).
    tc : float
        Clean zero-field critical temperature T_c, K (weak coupling).
    beta_so : float
        Ising spin-orbit energy β_so (half the splitting at K), meV.
    rashba : float
        Rashba energy λ_R, meV.
    g : float
        g factor.
    angle : float
        Field angle from the plane, degrees (no orbital depairing is included).
    pair_breaking : float
        Abrikosov–Gor'kov depairing energy Γ_AG, meV.

    Returns
    -------
    ndarray
        B_c2(T), tesla, shape of ``T``.
    """
    tc = _gap.TC.check(tc)
    beta = BETA_SO.check(beta_so)
    lam = RASHBA.check(rashba)
    g = G_FACTOR.check(g)
    direction = _direction(angle)
    gam = PAIR_BREAKING.check(pair_breaking)
    Ta = _v.array("T", T)
    if np.any(Ta < 0):
        raise ValueError("T must contain temperatures ≥ 0 K")
    flat = np.atleast_1d(Ta).ravel().astype(float)
    h = _hc2_cached(tuple(flat.tolist()), tc, beta, lam, tuple(direction.tolist()), gam)
    return (2.0 * h / (g * MU_B)).reshape(Ta.shape)


@lru_cache(maxsize=64)
def _hc2_cached(T: tuple[float, ...], tc: float, beta: float, lam: float, direction: tuple[float, ...],
                gam: float) -> np.ndarray:
    """H_c2 lines are pure functions of their arguments: a panel that moves B or T reuses its lines."""
    flat = np.array(T, dtype=float)
    h = _hc2_zeeman(flat, tc=tc, beta=beta, rashba=lam, direction=np.array(direction), pair_breaking=gam,
                    n_phi=_n_phi_linear(lam, float(flat.min()) if flat.size else 1.0))
    h.setflags(write=False)
    return h


def hc2_inplane(T: np.ndarray | float, *, tc: float, beta_so: float, rashba: float = 0.0,
                g: float = 2.0) -> np.ndarray:
    """In-plane H_c2(T) in tesla of a clean Ising superconductor (with optional Rashba admixture).

    Without Rashba the closed form ln(T/T_c) + h²/(h² + β_so²)[Re ψ(½ + i√(h² + β_so²)/2πk_BT)
    − ψ(½)] = 0, h = gμ_B B/2; with Rashba the linearised gap equation averaged over the Fermi
    circle (:func:`hc2`).  Reference (T_c = 3 K, T = 1.5 K): 4.844 T (β_so = 0, the Pauli line),
    11.25 T (1 meV), 445.9 T (75 meV).
    """
    return hc2(T, tc=tc, beta_so=beta_so, rashba=rashba, g=g, angle=0.0)


# ----------------------------------------------------------------------------- Green's functions
def _sqrt_up(x: np.ndarray) -> np.ndarray:
    """√x on the branch with Im ≥ 0."""
    return 1j * np.sqrt(-x)


def _inplane_pq(z: np.ndarray, rho2: float, beta2: float, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sgn_Im(A) = A(p + qB) for Ising + in-plane field: A² = c + B, B² = 4(z²ρ² − β²Δ²).

    λ± = c ± 2√(z²ρ² − β²Δ²), c = z² + ρ² − Δ², s± = √λ± (Im > 0):
    p = (s₊ + s₋)/(2s₊s₋), q = −1/(s₊s₋(s₊ + s₋)) (no division by the splitting of λ±).
    """
    d2 = delta * delta
    c = z * z + rho2 - d2
    r = np.sqrt(z * z * rho2 - beta2 * d2 + 0j)
    sp, sm = _sqrt_up(c + 2 * r), _sqrt_up(c - 2 * r)
    prod = sp * sm
    return (sp + sm) / (2 * prod), -1.0 / (prod * (sp + sm))


def _a_matrix(z: np.ndarray, delta: np.ndarray | float, g: np.ndarray, hvec: np.ndarray) -> np.ndarray:
    """A = τ_z(z − M), M = τ₀⊗h·σ + τ_z⊗g·σ + Δτ_x⊗σ₀; z, Δ broadcast to g's batch shape (..., 3)."""
    shape = g.shape[:-1]
    A = np.zeros(shape + (4, 4), dtype=complex)
    zz = np.broadcast_to(z, shape)
    dd = np.broadcast_to(delta, shape)
    hs = np.tensordot(hvec, nambu.PAULI, 1)                    # 2×2
    gs = np.einsum("...i,iab->...ab", g, nambu.PAULI)          # (..., 2, 2)
    eye = np.eye(2)
    A[..., :2, :2] = zz[..., None, None] * eye - hs - gs       # τ_z(z − M): electron rows
    A[..., 2:, 2:] = -(zz[..., None, None] * eye - hs + gs)    # hole rows (τ_z = −1; hole block of M: h·σ − g·σ)
    A[..., 0, 2] = A[..., 1, 3] = -dd
    A[..., 2, 0] = A[..., 3, 1] = dd
    return A


def _sign_traces(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tr_e and Tr_eh of sgn_Im(A) = V diag(sign Im a) V⁻¹ for a batch of 4×4 matrices."""
    w, V = np.linalg.eig(A)
    Vi = np.linalg.inv(V)
    s = np.sign(w.imag)
    te = np.einsum("...ij,...j,...ji->...", V[..., :2, :], s, Vi[..., :, :2])
    S02 = np.einsum("...j,...j,...j->...", V[..., 0, :], s, Vi[..., :, 2])
    S13 = np.einsum("...j,...j,...j->...", V[..., 1, :], s, Vi[..., :, 3])
    return te, S02 + S13


def _kind(hvec: np.ndarray, rashba: float) -> str:
    if rashba > 0:
        return "bdg"
    if hvec[2] == 0.0:
        return "inplane"
    if hvec[0] == 0.0 and hvec[1] == 0.0:
        return "outofplane"
    return "bdg"


def uses_bdg(*, field: np.ndarray | tuple[float, float, float], rashba: float) -> bool:
    """True where :func:`dos` and :func:`gap_solution` need the (slow) BdG Fermi-circle average:
    Rashba, or a field neither in-plane nor out of plane."""
    return _kind(_check_field(field), RASHBA.check(rashba)) == "bdg"


def _n_phi_dos(rashba: float, hvec: np.ndarray, gamma: float) -> int:
    """Midpoint φ-nodes for the Rashba DOS: the spectrum moves by ~(λ_R + |h|) around the circle."""
    return int(np.clip(np.ceil(4.0 * (rashba + np.linalg.norm(hvec)) / gamma), 16, 4096))


def dos(E: np.ndarray | float, *, delta: float, beta_so: float, field: np.ndarray | tuple[float, float, float],
        rashba: float = 0.0, gamma: float, n_phi: int | None = None, method: str = "auto",
        progress: Progress | None = None) -> np.ndarray:
    """Tunnelling DOS N(E)/N₀ of an Ising superconductor in a Zeeman field of any direction.

    N(E) = ½ Re Tr_e sgn_Im(A(E + iΓ)), A = τ_z(E + iΓ − M), averaged over the valleys η = ±1
    and the Fermi-circle angle φ (ξ integrated exactly for a flat band; module docstring).

    * ``method="auto"``: closed forms without Rashba — in-plane field (ρ² = h² + β_so²):
      N = Re[z p + 2zρ²q] with p, q from the two roots λ± = z² + ρ² − Δ² ± 2√(z²ρ² − β_so²Δ²);
      out-of-plane field: ½[N_D(E − h) + N_D(E + h)] (Dynes N_D, any β_so); tilted fields and
      Rashba: the BdG matrix sign, batched over energies and n_φ midpoint angles (slow: cost
      ∝ n_E·n_φ, n_φ ≈ 4(λ_R + |h|)/Γ by default).  The spin-summed DOS is even in E and equal in
      both valleys (exact symmetries of this model; the BdG path evaluates |E| and η = +1 only).
    * ``method="bdg"``: always the BdG matrix sign (both valleys, all E; a reference).

    Parameters
    ----------
    E : array_like
        Energies, meV.
    delta : float
        Gap Δ ≥ 0, meV (e.g. :func:`self_consistent_gap`).
    beta_so : float
        Ising spin-orbit energy β_so (half the splitting at K), meV.
    field : array_like (3,)
        Zeeman energy vector h = gμ_B B/2 (meV; x̂ in-plane, ẑ out of plane; :func:`field_vector`).
    rashba : float
        Rashba energy λ_R, meV.
    gamma : float
        Dynes broadening Γ > 0 of the energies, meV.
    n_phi : int, optional
        φ nodes of the BdG path (default from Γ, λ_R and |h|).
    method : {"auto", "bdg"}
    progress : callable, optional
        Called with the fraction done during the BdG path (it may raise to cancel).

    Returns
    -------
    ndarray
        N(E)/N₀, shape of ``E``.
    """
    d = _dos.DELTA.check(delta)
    beta = BETA_SO.check(beta_so)
    hvec = _check_field(field)
    lam = RASHBA.check(rashba)
    gam = GAMMA.check(gamma)
    if method not in ("auto", "bdg"):
        raise ValueError(f"method must be 'auto' or 'bdg', got {method!r}")
    Ea = _v.array("E", E)
    kind = "bdg" if method == "bdg" else _kind(hvec, lam)
    if kind == "inplane":
        z = Ea + 1j * gam
        rho2 = float(hvec @ hvec) + beta * beta
        p, q = _inplane_pq(z, rho2, beta * beta, np.asarray(d))
        return np.real(z * p + 2 * z * rho2 * q)
    if kind == "outofplane":
        hz = abs(float(hvec[2]))
        return 0.5 * (_dos.dynes(Ea - hz, delta=d, gamma=gam) + _dos.dynes(Ea + hz, delta=d, gamma=gam))
    if n_phi is None:
        n_phi = _n_phi_dos(lam, hvec, gam) if lam > 0 else 1
    n_phi = int(_v.scalar("n_phi", n_phi, minimum=1))
    full = method == "bdg"
    flat = np.atleast_1d(Ea).ravel()
    energies, inverse = (flat, None) if full else np.unique(np.abs(flat), return_inverse=True)
    out = _bdg_dos(energies, d, beta, hvec, lam, gam, n_phi, both_valleys=full, progress=progress)
    vals = out if inverse is None else out[inverse]
    return vals.reshape(Ea.shape)


def _bdg_dos(E: np.ndarray, delta: float, beta: float, hvec: np.ndarray, lam: float, gamma: float, n_phi: int,
             *, both_valleys: bool, progress: Progress | None) -> np.ndarray:
    phi = phi_nodes(n_phi)
    valleys = (1.0, -1.0) if both_valleys else (1.0,)
    acc = np.zeros(E.size)
    chunk = max(1, 10_000 // n_phi)        # energies per batch: ~10k 4×4 matrices, ~0.1 s between reports
    steps = len(valleys) * math.ceil(E.size / chunk)
    done = 0
    if progress is not None:
        progress(0.0)
    for eta in valleys:
        g = _soc(beta, lam, eta, phi)                          # (n_φ, 3)
        for i in range(0, E.size, chunk):
            z = (E[i:i + chunk] + 1j * gamma)[:, None]
            gb = np.broadcast_to(g, (z.shape[0], n_phi, 3))
            te, _ = _sign_traces(_a_matrix(z, delta, gb, hvec))
            acc[i:i + chunk] += 0.5 * te.real.mean(axis=1)
            done += 1
            if progress is not None:
                progress(done / steps)
    out = acc / len(valleys)
    if not np.all(np.isfinite(out)):
        raise ValueError("the BdG DOS is not finite here (an exceptional point of A); change Γ slightly")
    return out


def sample_dos(*, delta: float, beta_so: float, field: np.ndarray | tuple[float, float, float], gamma: float,
               rashba: float = 0.0, pair_breaking: float = 0.0, window: float = 10.0, n_phi: int | None = None,
               progress: Progress | None = None) -> sampling.PointDOS:
    """The sample DOS for :func:`gapscope.kernels.tunneling.didv` (the sample-DOS contract).

    N(E) of :func:`dos` at E + i(Γ + Γ_AG): the Abrikosov–Gor'kov depairing energy enters as the
    same shift of the Green's functions as in :func:`gap_solution`.  Without Rashba and for
    in-plane or out-of-plane fields (closed forms, cheap): ``sampling.PointDOS(N, width=Γ + Γ_AG)``.
    Otherwise the slow BdG path is tabulated once on [−window, window] meV with a step of
    (Γ + Γ_AG)/2 and returned as ``PointDOS`` of its cubic spline (held at its end values beyond,
    where N ≈ 1 once window ≫ Δ + |h| + λ_R); through :func:`~.tunneling.didv` this agrees with
    the point-evaluated DOS to ~10⁻⁵ of the curve at 0.3 K and ~10⁻³ at 0.05 K (a piecewise-linear
    ``dos.tabulated`` of the same table: 3·10⁻³ and 10⁻²).
    """
    beta = BETA_SO.check(beta_so)
    hvec = _check_field(field)
    lam = RASHBA.check(rashba)
    gam = GAMMA.check(gamma) + PAIR_BREAKING.check(pair_breaking)
    d = _dos.DELTA.check(delta)
    w = _v.scalar("window", window, "meV", minimum=0.0, strict=True)
    if _kind(hvec, lam) != "bdg":
        return sampling.PointDOS(lambda E: dos(E, delta=d, beta_so=beta, field=hvec, gamma=gam), width=gam)
    n = _table_size(w, gam)
    E = np.linspace(-w, w, n)
    N = dos(E, delta=d, beta_so=beta, field=hvec, rashba=lam, gamma=gam, n_phi=n_phi, progress=progress)
    spline = CubicSpline(E, N)
    return sampling.PointDOS(lambda x: spline(np.clip(x, -w, w)), width=gam)


def _table_size(window: float, gamma: float) -> int:
    """Energies of the BdG table of :func:`sample_dos`: a step of Γ/2 over [−window, window], 65…40 001."""
    return int(min(max(np.ceil(2.0 * window / (0.5 * gamma)), 64), 40_000)) + 1


def sample_dos_cost(*, field: np.ndarray | tuple[float, float, float], gamma: float, rashba: float = 0.0,
                    pair_breaking: float = 0.0, window: float = 10.0, n_phi: int | None = None) -> int:
    """Work of :func:`sample_dos` before computing it: the number of 4×4 BdG matrix signs it takes.

    0 where closed forms apply (no Rashba and an in-plane or out-of-plane field); otherwise at most
    n_E × n_φ (the distinct |E| of the table: between n_E/2 and n_E, n_E ≈ 4·window/(Γ + Γ_AG); n_φ ≈
    4(λ_R + |h|)/(Γ + Γ_AG) clipped to 16…4096); each sign costs ~25 µs on one core.  Arguments as in
    :func:`sample_dos`.
    """
    hvec = _check_field(field)
    lam = RASHBA.check(rashba)
    gam = GAMMA.check(gamma) + PAIR_BREAKING.check(pair_breaking)
    w = _v.scalar("window", window, "meV", minimum=0.0, strict=True)
    if _kind(hvec, lam) != "bdg":
        return 0
    nphi = int(n_phi) if n_phi is not None else (_n_phi_dos(lam, hvec, gam) if lam > 0 else 1)
    return _table_size(w, gam) * nphi


def hc2_cost(T: np.ndarray | float, *, rashba: float = 0.0) -> int:
    """Work of :func:`hc2` at the temperatures T before computing it: pole terms per root-finding step.

    n_T × 2n_φ, with n_φ = 1 without Rashba and 64…4096 Fermi-circle nodes with it (more at low T,
    ∝ λ_R/k_BT_min); each term is one complex digamma, and a line takes up to ~140 steps.
    """
    lam = RASHBA.check(rashba)
    flat = np.atleast_1d(_v.array("T", T)).ravel()
    return int(flat.size * 2 * _n_phi_linear(lam, float(flat.min()) if flat.size else 1.0))


# ----------------------------------------------------------------------------- gap equation
def _pair_over_delta(w: np.ndarray, delta: np.ndarray, beta: float, hvec: np.ndarray, lam: float,
                     n_phi: int) -> np.ndarray:
    """⟨f_s(iω; Δ)⟩/Δ averaged over valleys and φ, for ω = ``w`` (already shifted by Γ_AG) > 0.

    ``w`` and ``delta`` broadcast; Δ → 0 gives the pair susceptibility χ(ω).
    """
    kind = _kind(hvec, lam)
    if kind == "inplane":
        z = 1j * w
        p, q = _inplane_pq(z, float(hvec @ hvec) + beta * beta, beta * beta, delta)
        return np.real(1j * (p + 2 * beta * beta * q))
    if kind == "outofplane":
        return np.real(1.0 / np.sqrt((w + 1j * abs(hvec[2])) ** 2 + delta * delta))
    phi = phi_nodes(n_phi) if lam > 0 else np.zeros(1)
    ww, dd = np.broadcast_arrays(np.asarray(w, dtype=float), np.asarray(delta, dtype=float))
    dd = np.maximum(dd, 1e-9)   # the linear limit: f_s/Δ at Δ = 1e-9 meV
    gb = np.broadcast_to(_soc(beta, lam, 1.0, phi), ww.shape + (phi.size, 3))   # one valley: both are equal
    _, teh = _sign_traces(_a_matrix(1j * ww[..., None], dd[..., None], gb, hvec))
    return np.real(-0.5j * teh).mean(axis=-1) / dd


def _log_panels(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights for ∫_lo^hi dω on panels of one e-fold in ln ω."""
    n = max(1, math.ceil(math.log(hi / lo)))
    edges = lo * np.exp(np.linspace(0.0, math.log(hi / lo), n + 1))
    x, wgt = _GL8
    t0, t1 = np.log(edges[:-1]), np.log(edges[1:])
    tm, th = 0.5 * (t0 + t1), 0.5 * (t1 - t0)
    t = (tm[:, None] + th[:, None] * x[None, :]).ravel()
    om = np.exp(t)
    return om, (th[:, None] * wgt[None, :]).ravel() * om


class _GapEquation:
    """g(Δ) = G(Δ)/Δ of the homogeneous gap equation at one (T, field), vectorised over Δ.

    T > 0:  g(Δ) = ln(T_c/T) − 2πk_BT Σ_{ω_n > 0} [1/ω_n − ⟨f_s(ω_n + Γ_AG; Δ)⟩/Δ]
                 = ln(T_c/T) − [ψ(½ + Γ_AG/2πk_BT) − ψ(½)] − 2πk_BT Σ [1/(ω_n + Γ_AG) − ⟨f_s⟩/Δ];
    T = 0:  g(Δ) = ∫₀^∞ dω [⟨f_s(ω + Γ_AG; Δ)⟩/Δ − 1/√(ω² + Δ₀²)]  (Δ₀ = 1.7639 k_BT_c)
                 = ∫₀^∞ dω [⟨f_s(ω + Γ_AG; Δ)⟩/Δ − 1/(ω + Γ_AG)] + ln(Δ₀/2Γ_AG)  (Γ_AG > 0).

    The split-off parts are exact, so the remaining summand falls off as 1/ω³.  The Matsubara
    sum takes the first 24 frequencies exactly and the rest as the integral (Gauss–Legendre on
    e-fold panels of ln ω, to 100 × the largest energy, then the 1/ω³ tail) plus the
    Euler–Maclaurin term (2πk_BT)²u′(ω_s)/24 of the midpoint rule.
    """

    def __init__(self, T: float, tc: float, beta: float, hvec: np.ndarray, lam: float, gam: float,
                 n_phi: int, progress: Progress | None = None) -> None:
        self.T, self.tc, self.beta, self.hvec, self.lam, self.gam, self.n_phi = T, tc, beta, hvec, lam, gam, n_phi
        self.d0 = BCS_RATIO * KB * tc
        self.progress = progress
        scale = max(self.d0, beta, lam, float(np.linalg.norm(hvec)), gam, 1e-6)
        kt = KB * T
        if T > 0:
            self.ws = 2 * np.pi * kt * _N_HEAD
            head = np.pi * kt * (2 * np.arange(_N_HEAD) + 1)
            top = _TOP * max(scale, self.ws)
            om, wt = _log_panels(self.ws, top)
            eps = 1e-3 * self.ws
            self.nodes = np.concatenate([head, om, [top, self.ws - eps, self.ws + eps]])
            self.weights = np.concatenate([np.full(_N_HEAD, 2 * np.pi * kt), wt])
            self.top, self.eps = top, eps
        else:
            lo, top = 1e-8 * scale, _TOP * scale
            om, wt = _log_panels(lo, top)
            self.nodes = np.concatenate([[0.5 * lo], om, [top]])
            self.weights = np.concatenate([[lo], wt])
            self.top = top
        self.calls = 0

    def _u(self, delta: np.ndarray) -> np.ndarray:
        """Summand at every node, shape (n_Δ, n_nodes)."""
        d = np.asarray(delta, dtype=float)[:, None]
        w = self.nodes[None, :]
        f = _pair_over_delta(w + self.gam, d, self.beta, self.hvec, self.lam, self.n_phi)
        self.calls += 1
        if self.progress is not None:
            self.progress(min(self.calls / 60.0, 0.99))
        if self.T > 0:
            return 1.0 / (w + self.gam) - f
        if self.gam > 0:
            return f - 1.0 / (w + self.gam)
        return f - 1.0 / np.sqrt(w * w + self.d0 * self.d0)

    def __call__(self, delta: np.ndarray | float) -> np.ndarray:
        d = np.atleast_1d(np.asarray(delta, dtype=float))
        u = self._u(d)
        n = self.weights.size
        s = u[:, :n] @ self.weights
        tail = 0.5 * u[:, n] * self.top            # ∫_top^∞ C/ω³ = u(top)·top/2
        if self.T > 0:
            du = (u[:, n + 2] - u[:, n + 1]) / (2 * self.eps)
            s = s + tail + (2 * np.pi * KB * self.T) ** 2 * du / 24.0
            x = 2 * np.pi * KB * self.T
            out = math.log(self.tc / self.T) - (float(digamma(0.5 + self.gam / x)) - _PSI_HALF) - s
        else:
            out = s + tail + (math.log(self.d0 / (2 * self.gam)) if self.gam > 0 else 0.0)
        return out.reshape(np.shape(delta)) if np.ndim(delta) else out[0]


@dataclass(frozen=True)
class GapSolution:
    """The homogeneous solutions of the gap equation at one (T, field).

    Attributes
    ----------
    delta : float
        The stable gap (meV): the superconducting root of lowest free energy if it is below the
        normal state's, else 0.
    roots : tuple of float
        Every root Δ > 0 of the gap equation (meV), ascending (stable, metastable and unstable).
    free_energies : tuple of float
        (Ω_s − Ω_n)/N₀ at each root, meV² (N₀: normal DOS per spin and volume).
    normal_stable : bool
        The normal state is locally stable (Δ = 0 is a minimum): the second-order line is crossed.
    """

    delta: float
    roots: tuple[float, ...]
    free_energies: tuple[float, ...]
    normal_stable: bool

    @property
    def metastable(self) -> bool:
        """A superconducting and the normal local minimum coexist (hysteresis: a first-order region)."""
        return bool(self.normal_stable and self.roots)


def _condensation_energy(delta: float, equation: _GapEquation, n: int = 24) -> float:
    """(Ω_s − Ω_n)/N₀ = −2∫₀^Δ x g(x) dx (meV²), with g = G/Δ of the gap equation.

    Gauss–Legendre with n nodes for T > 0 (g is analytic in x).  At T = 0, g has kinks where the
    quasiparticle gap closes (x = h for β_so = 0): adaptive quadrature for the closed forms,
    16 panels of n/2 nodes for the BdG path.
    """
    if equation.T == 0 and _kind(equation.hvec, equation.lam) != "bdg":
        val, _ = quad(lambda x: x * float(equation(x)), 0.0, delta, limit=200, epsabs=1e-14 * delta * delta,
                      epsrel=1e-11)
        return float(-2.0 * val)
    panels = 16 if equation.T == 0 else 1
    x, w = np.polynomial.legendre.leggauss(n if panels == 1 else max(n // 2, 4))
    edges = np.linspace(0.0, delta, panels + 1)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
    xs = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    ws = (half[:, None] * w[None, :]).ravel()
    return float(-2.0 * np.sum(ws * xs * equation(xs)))


def gap_solution(T: float, *, tc: float, beta_so: float, field: np.ndarray | tuple[float, float, float],
                 rashba: float = 0.0, pair_breaking: float = 0.0, n_phi: int = 16,
                 progress: Progress | None = None) -> GapSolution:
    """Self-consistent homogeneous (q = 0) gap Δ(T, h) with its free energy: first-order jumps included.

    Roots of Δ ln(T_c/T) = 2πk_BT Σ_{ω_n>0} [Δ/ω_n − ⟨f_s(ω_n + Γ_AG; Δ)⟩] (see
    :class:`_GapEquation`), scanned on 30 values in (0, 1.05Δ₀] and refined by Brent's method;
    the free energy of each root is (Ω_s − Ω_n)/N₀ = −2∫₀^Δ G(x)dx, and the stable state is the
    lowest of them and the normal state.  At h = 0 this is BCS; for a field beyond the Pauli
    regime the upper root may be metastable (first-order transition, e.g. h = Δ₀/√2 at T = 0
    for β_so = 0).  Rashba and tilted fields use the BdG matrix sign at n_φ angles (slow).

    Parameters
    ----------
    T : float
        Temperature ≥ 0, K.
    tc : float
        Clean zero-field T_c, K.
    beta_so, rashba : float
        Ising and Rashba spin-orbit energies, meV.
    field : array_like (3,)
        Zeeman energy vector h = gμ_B B/2, meV.
    pair_breaking : float
        Abrikosov–Gor'kov depairing energy Γ_AG, meV.
    n_phi : int
        φ nodes with Rashba (Matsubara functions are smooth in φ).
    progress : callable, optional
        Called with the fraction done (it may raise to cancel).
    """
    T = tunneling.TEMPERATURE.check(T)
    tc = _gap.TC.check(tc)
    beta = BETA_SO.check(beta_so)
    hvec = _check_field(field)
    lam = RASHBA.check(rashba)
    gam = PAIR_BREAKING.check(pair_breaking)
    n_phi = int(_v.scalar("n_phi", n_phi, minimum=1))
    eq = _GapEquation(T, tc, beta, hvec, lam, gam, n_phi, progress)
    d0 = eq.d0
    fast = _kind(hvec, lam) != "bdg"
    grid = d0 * np.concatenate([[1e-7, 1e-4, 3e-3, 0.01, 0.02], np.linspace(0.04, 1.05, 25 if fast else 12)])
    gvals = np.asarray(eq(grid))
    roots = []
    for i in range(grid.size - 1):
        a, b = gvals[i], gvals[i + 1]
        if a == 0.0:
            roots.append(float(grid[i]))
        elif a * b < 0:
            tol = 1e-13 if fast else 1e-10
            roots.append(float(brentq(lambda x: float(eq(x)), grid[i], grid[i + 1], xtol=tol * d0, rtol=tol)))
    normal_stable = bool(gvals[0] <= 0)
    energies = [_condensation_energy(r, eq, 24 if fast else 12) for r in roots]
    stable = 0.0
    if roots:
        k = int(np.argmin(energies))
        if energies[k] < 0 and roots[k] > 1e-6 * d0:
            stable = roots[k]
    if progress is not None:
        progress(1.0)
    return GapSolution(stable, tuple(roots), tuple(energies), normal_stable)


def self_consistent_gap(T: float, *, tc: float, beta_so: float, field: np.ndarray | tuple[float, float, float],
                        rashba: float = 0.0, pair_breaking: float = 0.0) -> float:
    """The stable homogeneous gap Δ(T, h) in meV (0 in the normal state); see :func:`gap_solution`."""
    return gap_solution(T, tc=tc, beta_so=beta_so, field=field, rashba=rashba, pair_breaking=pair_breaking).delta


# ----------------------------------------------------------------------------- fit of H_c2(T) points
class Hc2Fit(NamedTuple):
    """Result of :func:`fit_hc2`: values and 1σ errors (NaN when fixed), reduced χ², points used."""

    beta_so: float
    tc: float
    beta_so_err: float
    tc_err: float
    redchi: float
    n: int


def fit_hc2(T: np.ndarray, B: np.ndarray, *, sigma: np.ndarray | float | None = None, tc: float | None = None,
            beta_so: float | None = None, fit_tc: bool = True, rashba: float = 0.0, g: float = 2.0,
            pair_breaking: float = 0.0) -> Hc2Fit:
    """Least-squares fit of the effective β_so (and T_c) to measured in-plane H_c2(T) points.

    Model: :func:`hc2` (in-plane; residuals B_i − H_c2(T_i) in tesla, divided by ``sigma``).
    Points at B = 0 above T_c pin T_c.  Errors come from the Jacobian, (JᵀJ)⁻¹, scaled by
    χ²_red when ``sigma`` is None.

    Parameters
    ----------
    T, B : array_like
        Temperatures (K, ≥ 0) and critical fields (T, ≥ 0) of the points, same length ≥ 2.
    sigma : array_like or float, optional
        1σ uncertainties of B (tesla).
    tc : float, optional
        Start (or, with ``fit_tc=False``, fixed) T_c in K; default: from the data.
    beta_so : float, optional
        Start β_so in meV; default: the best of a scan on 0.01–300 meV.
    fit_tc : bool
        Fit T_c too.
    rashba, g, pair_breaking : float
        Fixed model parameters (meV, —, meV).
    """
    T = _v.array("T", T).ravel()
    B = _v.array("B", B).ravel()
    if T.shape != B.shape:
        raise ValueError(f"T and B must have the same length, got {T.size} and {B.size}")
    nfree = 2 if fit_tc else 1
    if T.size < nfree:
        raise ValueError(f"fit_hc2 needs at least {nfree} (T, B) points to fit {nfree} parameter(s)")
    if np.any(T < 0) or np.any(B < 0):
        raise ValueError("temperatures and fields must be ≥ 0")
    if not np.any(B > 0):
        raise ValueError("fit_hc2 needs at least one point with B > 0")
    s = np.ones_like(B) if sigma is None else np.broadcast_to(_v.array("sigma", sigma), B.shape)
    if np.any(s <= 0):
        raise ValueError("sigma must be > 0")
    lam = RASHBA.check(rashba)
    g = G_FACTOR.check(g)
    gam = PAIR_BREAKING.check(pair_breaking)
    if tc is None:
        hot = T[B > 0].max()
        above = T[(B == 0) & (T > hot)]
        tc0 = 0.5 * (hot + above.min()) if above.size else 1.1 * hot
        tc0 = max(tc0, 1e-3)
    else:
        tc0 = _gap.TC.check(tc)
    if not fit_tc and np.any((T >= tc0) & (B > 0)):
        raise ValueError(f"points with B > 0 at T ≥ T_c = {tc0:g} K cannot be fitted with T_c fixed")

    def model(beta: float, tcx: float) -> np.ndarray:
        return hc2(T, tc=tcx, beta_so=beta, rashba=lam, g=g, pair_breaking=gam)

    def resid(p: np.ndarray) -> np.ndarray:
        beta, tcx = (p[0], p[1]) if fit_tc else (p[0], tc0)
        m = model(max(beta, 0.0), tcx)
        m = np.where(np.isfinite(m), m, 1e6)
        return (m - B) / s

    if beta_so is None:
        scan = np.geomspace(0.01, 300.0, 40)
        cost = [np.sum(resid(np.array([b, tc0]))[:] ** 2) for b in scan]
        b0 = float(scan[int(np.argmin(cost))])
        if np.sum(resid(np.array([0.0, tc0])) ** 2) < min(cost):
            b0 = 0.0
    else:
        b0 = BETA_SO.check(beta_so)
    p0 = [b0, tc0] if fit_tc else [b0]
    lb = [0.0, 1e-3] if fit_tc else [0.0]
    ub = [BETA_SO.bounds[1], _gap.TC.bounds[1]] if fit_tc else [BETA_SO.bounds[1]]
    r = least_squares(resid, p0, bounds=(lb, ub), x_scale=[max(b0, 0.1)] + ([tc0] if fit_tc else []),
                      diff_step=1e-6, xtol=1e-12, ftol=1e-12, gtol=1e-12)
    dof = max(T.size - len(p0), 1)
    chi2 = float(np.sum(r.fun ** 2))
    err = _v.lsq_errors(r, T.size, scaled=sigma is None)
    beta = float(r.x[0])
    tcf = float(r.x[1]) if fit_tc else tc0
    return Hc2Fit(beta, tcf, float(err[0]), float(err[1]) if fit_tc else float("nan"), chi2 / dof, int(T.size))


# ----------------------------------------------------------------------------- fit model
def _fit_sample(*, delta: float, gamma: float, beta_so: float, b: float, angle: float,
                g: float) -> sampling.PointDOS:
    return sample_dos(delta=delta, beta_so=beta_so, field=field_vector(b=b, angle=angle, g=g), gamma=gamma)


_models.register(_models.FitModel(
    "ising",
    (_models.fit_param(_dos.DELTA, start=0.45), _models.fit_param(GAMMA, start=0.02),
     _models.fit_param(BETA_SO, vary=False), _models.fit_param(B_FIELD, vary=False, start=5.0),
     _models.fit_param(FIELD_ANGLE, vary=False), _models.fit_param(G_FACTOR, vary=False)),
    _fit_sample,
    "Ising superconductor in a Zeeman field B at θ_B (valley BdG, no Rashba; Δ given)", topic=__name__))
