"""Quasiparticle densities of states of superconductors, normalised to the normal state.

Every model is given twice: as a point function ``N(E)`` and as its antiderivative
``A(E)`` with ``dA/dE = N``.  The antiderivative gives *cell averages*
``[A(E + h/2) − A(E − h/2)]/h`` on a grid, which conserve spectral weight exactly even
when the broadening Γ is far below the grid spacing (Γ = 0 included).  The tunnelling
kernels use those cell averages through :class:`SampleDOS`.

Energies in meV.  All models tend to 1 for |E| ≫ Δ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as _fft

from . import _validate as _v
from .specs import Spec

__all__ = [
    "dynes", "dynes_antiderivative", "anisotropic_s", "anisotropic_s_antiderivative",
    "dwave", "dwave_antiderivative", "anisotropic_s_cells", "dwave_cells", "multigap", "two_gap",
    "two_gap_antiderivative", "dynes_hats", "two_gap_hats",
    "gap_function", "SampleDOS", "bind", "MODELS", "Model", "get_model", "TabulatedDOS", "tabulated",
    "DELTA", "GAMMA", "ANISOTROPY", "HARMONIC", "DELTA2", "WEIGHT2",
]

_CHUNK = 1_000_000  # complex elements per vectorised block

# ----------------------------------------------------------------------------- parameters
DELTA = Spec("delta", "Δ", "meV", 1.3, (0.0, 3.0), (0.0, 50.0), 0.01,
             "gap (Fermi-surface average for anisotropic s; maximum for d)")
GAMMA = Spec("gamma", "Γ", "meV", 0.02, (0.0, 0.3), (0.0, 10.0), 0.001, "Dynes broadening of the sample")
ANISOTROPY = Spec("anisotropy", "a", "", 0.3, (0.0, 1.5), (-10.0, 10.0), 0.01,
                  "anisotropy: Δ(φ) = Δ₀(1 + a cos nφ)")
HARMONIC = Spec("n", "n", "", 6, (1, 12), (1, 64), 1,
                "angular harmonic of the anisotropy (changes Δ(φ), not the DOS)", integer=True)
DELTA2 = Spec("delta2", "Δ₂", "meV", 0.6, (0.0, 3.0), (0.0, 50.0), 0.01, "gap of the second band")
WEIGHT2 = Spec("weight2", "w₂", "", 0.3, (0.0, 1.0), (0.0, 1.0), 0.01,
               "normal-state DOS fraction of the second band")


# ----------------------------------------------------------------------------- Dynes
def _dynes_raw(E: np.ndarray, delta: np.ndarray | float, gamma: float) -> np.ndarray:
    """Re[(1 − Δ²/z²)^(−1/2)], z = E + iΓ, principal root (retarded branch); broadcasts."""
    z = E + 1j * gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.real(1.0 / np.sqrt(1.0 - (delta * delta) / (z * z)))
    # z = 0 exactly (E = Γ = 0): inside the gap, N = 0 unless Δ = 0.
    if gamma == 0.0:
        zero = np.broadcast_to(E == 0.0, n.shape)
        if np.any(zero):
            n = np.where(zero, np.where(np.broadcast_to(delta, n.shape) == 0.0, 1.0, 0.0), n)
    return n


def _dynes_anti_raw(E: np.ndarray, delta: np.ndarray | float, gamma: float) -> np.ndarray:
    """Re[z (1 − Δ²/z²)^(1/2)]; continuous, equals 0 inside a clean gap."""
    z = E + 1j * gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.real(z * np.sqrt(1.0 - (delta * delta) / (z * z)))
    if gamma == 0.0:
        zero = np.broadcast_to(E == 0.0, a.shape)
        if np.any(zero):
            a = np.where(zero, 0.0, a)
    return a


def _dynes_anti2_reduced(E: np.ndarray, delta: float, gamma: float) -> np.ndarray:
    """B̃(E) = B(E) − Re(z²)/2 with B'' = N: B = Re[½ z s − ½Δ² ln(z + s)], s = z√(1 − Δ²/z²).

    In the stable form B̃ = −½Δ² Re[z/(z + s) + ln(z + s)] (z(s − z) = −zΔ²/(z + s)); only
    ln|z + s| enters, which is continuous, so no branch of the logarithm matters.
    """
    z = np.asarray(E, dtype=float) + 1j * gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        s = z * np.sqrt(1.0 - (delta * delta) / (z * z))
        b = -0.5 * delta * delta * np.real(z / (z + s) + np.log(z + s))
    if gamma == 0.0:     # z = 0: s = iΔ, the limit is −½Δ² ln Δ
        b = np.where(np.asarray(E) == 0.0, -0.5 * delta * delta * np.log(delta), b)
    return b


def _dynes_hat(E: np.ndarray, h: float, delta: float, gamma: float) -> np.ndarray:
    """Hat projections (1/h)∫N φ_j of the Dynes DOS: 1 + [B̃(E+h) − 2B̃(E) + B̃(E−h)]/h² (exact)."""
    E = np.asarray(E, dtype=float)
    return 1.0 + (_dynes_anti2_reduced(E + h, delta, gamma) - 2.0 * _dynes_anti2_reduced(E, delta, gamma)
                  + _dynes_anti2_reduced(E - h, delta, gamma)) / (h * h)


def dynes(E: np.ndarray | float, *, delta: float, gamma: float) -> np.ndarray:
    """Dynes density of states.

    N(E) = Re[ z / √(z² − Δ²) ] = Re[(1 − Δ²/z²)^(−1/2)],  z = E + iΓ,

    evaluated on the retarded branch (principal root of 1 − Δ²/z²), so that N ≥ 0 for
    all E, including E < −Δ, and N = 0 inside the gap for Γ = 0.

    Parameters
    ----------
    E : array_like
        Energies, meV.
    delta : float
        Gap Δ ≥ 0, meV.
    gamma : float
        Dynes broadening Γ ≥ 0, meV.  With Γ = 0, N diverges at |E| = Δ (returned as inf).

    Returns
    -------
    ndarray
        N(E)/N₀, same shape as ``E``.
    """
    delta = DELTA.check(delta)
    gamma = GAMMA.check(gamma)
    E = np.asarray(E, dtype=float)
    if delta == 0.0:
        return np.ones_like(E)
    return _dynes_raw(E, delta, gamma)


def dynes_antiderivative(E: np.ndarray | float, *, delta: float, gamma: float) -> np.ndarray:
    """Antiderivative of :func:`dynes`: A(E) = Re[z (1 − Δ²/z²)^(1/2)], dA/dE = N (meV)."""
    delta = DELTA.check(delta)
    gamma = GAMMA.check(gamma)
    E = np.asarray(E, dtype=float)
    if delta == 0.0:
        return E.copy()
    return _dynes_anti_raw(E, delta, gamma)


# ------------------------------------------------------- Fermi-surface averages
def _fs_average(raw: Callable, E: np.ndarray, gaps: np.ndarray, gamma: float) -> np.ndarray:
    """Mean over the gap samples ``gaps`` of raw(E, gap, gamma), in memory-bounded blocks."""
    E = np.asarray(E, dtype=float)
    flat = E.ravel()
    out = np.empty_like(flat)
    step = max(1, _CHUNK // gaps.size)
    g = gaps[None, :]
    for i in range(0, flat.size, step):
        out[i:i + step] = raw(flat[i:i + step, None], g, gamma).mean(axis=1)
    return out.reshape(E.shape)


def _n_nodes(spread: float, width: float) -> int:
    """Midpoint nodes for a gap distribution of width ``spread``: ≈ 10·spread/Γ.

    The midpoint (Gauss–Chebyshev) rule converges exponentially once the node spacing in
    Δ is below Γ: 10·spread/Γ nodes give ~1e-10 (20 and 40 give machine precision).
    """
    if spread == 0.0:
        return 1
    if width <= 0.0:
        return 40000
    return int(np.clip(np.ceil(10.0 * spread / width), 64, 40000))


def _aniso_gaps(delta: float, anisotropy: float, width: float) -> np.ndarray:
    # Gauss–Chebyshev midpoint rule for ⟨·⟩_φ of a function of cos(nφ): u_k = (k − ½)π/M.
    m = _n_nodes(abs(anisotropy) * delta, width)
    u = (np.arange(m) + 0.5) * np.pi / m
    return np.abs(delta * (1.0 + anisotropy * np.cos(u)))


def _dwave_gaps(delta: float, width: float) -> np.ndarray:
    # |Δ₀ cos 2φ| averaged over φ equals |Δ₀ cos u| averaged over u ∈ [0, π/2].
    m = _n_nodes(delta, width)
    u = (np.arange(m) + 0.5) * (0.5 * np.pi) / m
    return delta * np.cos(u)


def _check_aniso(delta: float, anisotropy: float, gamma: float, n: int) -> tuple[float, float, float]:
    delta = DELTA.check(delta)
    anisotropy = ANISOTROPY.check(anisotropy)
    gamma = GAMMA.check(gamma)
    HARMONIC.check(n)
    return delta, anisotropy, gamma


_EPS_POINT = 1e-4  # relative half-width of the cell used for point values when Γ = 0


def _point_from_anti(anti: Callable[[np.ndarray], np.ndarray], E: np.ndarray, eps: float) -> np.ndarray:
    return (anti(E + eps) - anti(E - eps)) / (2.0 * eps)


def anisotropic_s(E: np.ndarray | float, *, delta: float, anisotropy: float, gamma: float,
                  n: int = 1) -> np.ndarray:
    """Anisotropic s-wave DOS, averaged over a circular Fermi surface.

    Δ(φ) = Δ₀ (1 + a cos nφ),   N(E) = ⟨ N_Dynes(E; |Δ(φ)|, Γ) ⟩_φ.

    The average is the Gauss–Chebyshev midpoint rule in u = nφ with M ≈ 10|a|Δ₀/Γ nodes
    (64 … 40000), exponentially convergent once the node spacing in Δ is below Γ.  The
    DOS does not depend on the integer n ≥ 1 (the φ-average of any function of cos nφ is
    the same for all n); ``n`` is accepted for the angle-resolved gap only.  The spectrum
    has an onset step at Δ₀(1 − |a|) and a logarithmic peak at Δ₀(1 + |a|); |a| > 1 gives
    nodes.  For Γ = 0 the value is the average over a cell of half-width 1e-4·Δ₀.

    Parameters
    ----------
    E : array_like
        Energies, meV.
    delta : float
        Fermi-surface average Δ₀ ≥ 0, meV.
    anisotropy : float
        Relative amplitude a of the cos nφ modulation (dimensionless).
    gamma : float
        Dynes broadening Γ ≥ 0, meV.
    n : int
        Angular harmonic (no effect on the DOS).

    Returns
    -------
    ndarray
        N(E)/N₀.
    """
    delta, anisotropy, gamma = _check_aniso(delta, anisotropy, gamma, n)
    E = np.asarray(E, dtype=float)
    if delta == 0.0:
        return np.ones_like(E)
    if gamma == 0.0 and anisotropy != 0.0:
        eps = _EPS_POINT * delta
        return _point_from_anti(lambda x: _fs_average(_dynes_anti_raw, x, _aniso_gaps(delta, anisotropy, eps),
                                                      0.0), E, eps)
    return _fs_average(_dynes_raw, E, _aniso_gaps(delta, anisotropy, gamma), gamma)


def anisotropic_s_antiderivative(E: np.ndarray | float, *, delta: float, anisotropy: float,
                                 gamma: float, n: int = 1, resolution: float = 0.0) -> np.ndarray:
    """Antiderivative of :func:`anisotropic_s` (meV).

    ``resolution`` (meV) is the cell width the result will be differenced over; the
    quadrature then needs only ≈ 40|a|Δ₀/max(Γ, resolution) nodes.
    """
    delta, anisotropy, gamma = _check_aniso(delta, anisotropy, gamma, n)
    E = np.asarray(E, dtype=float)
    if delta == 0.0:
        return E.copy()
    return _fs_average(_dynes_anti_raw, E, _aniso_gaps(delta, anisotropy, max(gamma, resolution)), gamma)


def dwave(E: np.ndarray | float, *, delta: float, gamma: float) -> np.ndarray:
    """d-wave DOS, Δ(φ) = Δ₀ cos 2φ on a circular Fermi surface.

    N(E) = ⟨ N_Dynes(E; |Δ₀ cos 2φ|, Γ) ⟩_φ, by the midpoint rule with M ≈ 10Δ₀/Γ nodes.
    For Γ = 0 this is the closed form (x = |E|/Δ₀, K = complete elliptic integral of
    the first kind with parameter m):

        N = (2/π) x K(x²)   for x < 1,      N = (2/π) K(1/x²)   for x > 1,

    V-shaped (N ≈ x) at low energy with a logarithmic peak at Δ₀.

    Parameters
    ----------
    E : array_like
        Energies, meV.
    delta : float
        Gap maximum Δ₀ ≥ 0, meV.
    gamma : float
        Dynes broadening Γ ≥ 0, meV.

    Returns
    -------
    ndarray
        N(E)/N₀.
    """
    delta = DELTA.check(delta)
    gamma = GAMMA.check(gamma)
    E = np.asarray(E, dtype=float)
    if delta == 0.0:
        return np.ones_like(E)
    if gamma == 0.0:
        from scipy.special import ellipk
        x = np.abs(E) / delta
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = (2.0 / np.pi) * x * ellipk(np.minimum(x, 1.0) ** 2)
            outside = (2.0 / np.pi) * ellipk(1.0 / np.maximum(x, 1.0) ** 2)
        return np.where(x < 1.0, inside, outside)
    return _fs_average(_dynes_raw, E, _dwave_gaps(delta, gamma), gamma)


def dwave_antiderivative(E: np.ndarray | float, *, delta: float, gamma: float,
                         resolution: float = 0.0) -> np.ndarray:
    """Antiderivative of :func:`dwave` (meV); see :func:`anisotropic_s_antiderivative`."""
    delta = DELTA.check(delta)
    gamma = GAMMA.check(gamma)
    E = np.asarray(E, dtype=float)
    if delta == 0.0:
        return E.copy()
    return _fs_average(_dynes_anti_raw, E, _dwave_gaps(delta, max(gamma, resolution)), gamma)



# ------------------------------------------------ fast cell averages on uniform grids
def _gauss_on_unit(n: int) -> tuple[np.ndarray, np.ndarray]:
    s, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (s + 1.0), 0.5 * w


_GL_NEAR = _gauss_on_unit(24)   # near the gap edges: ≤ 1e-6 against 64 nodes (tested)
_GL_FAR = _gauss_on_unit(12)    # |E| ≥ 1.25 max|Δ|: the integrand is smooth, 12 nodes reach ~1e-9
_FAR = 1.25


def _clean_antiderivative(E: np.ndarray, pieces: list[tuple[float, float, Callable, Callable]],
                          total: float) -> np.ndarray:
    """Ā₀(E) = (1/U)∫₀^U sgn(E)·√(E² − Δ(u)²)₊ du for Γ = 0.

    ``pieces`` are (u_low, u_high, |Δ|(u), inverse) with |Δ| monotonic between u_low (its
    smallest value) and u_high (its largest).  Each piece is integrated from the kink u*
    (where |Δ(u*)| = |E|, or u_high) to u_low with u = u* + (u_low − u*)s², which turns the
    square-root kink into a smooth integrand for Gauss–Legendre (24 nodes near the gap edges,
    12 beyond 1.25 max|Δ|).
    """
    x = np.abs(np.asarray(E, dtype=float)).ravel()
    out = np.zeros_like(x)
    for u_low, u_high, absgap, inverse in pieces:
        g_low, g_high = absgap(np.array(u_low)), absgap(np.array(u_high))
        for sel, (nodes, weights) in ((x > g_low) & (x < _FAR * g_high), _GL_NEAR), ((x >= _FAR * g_high), _GL_FAR):
            if not np.any(sel):
                continue
            xe = x[sel]
            ustar = np.where(xe >= g_high, u_high, inverse(np.clip(xe, g_low, g_high)))
            length = u_low - ustar
            u = ustar[:, None] + length[:, None] * (nodes ** 2)[None, :]
            f = np.sqrt(np.clip(xe[:, None] ** 2 - absgap(u) ** 2, 0.0, None))
            out[sel] += np.abs(length) * ((f * (2.0 * nodes)[None, :]) @ weights)
    return (np.sign(E).ravel() * out / total).reshape(np.shape(E))


def _aniso_pieces(delta: float, a: float) -> tuple[list, float]:
    """Monotonic pieces of |Δ₀(1 + a cos u)| on [0, π]."""
    def absgap(u):
        return np.abs(delta * (1.0 + a * np.cos(u)))

    def inv_pos(y):   # branch where 1 + a cos u = y/Δ₀ ≥ 0
        return np.arccos(np.clip((y / delta - 1.0) / a, -1.0, 1.0))

    def inv_neg(y):   # branch where 1 + a cos u = −y/Δ₀ < 0
        return np.arccos(np.clip((-y / delta - 1.0) / a, -1.0, 1.0))

    big, small = (0.0, np.pi) if a > 0 else (np.pi, 0.0)      # where 1 + a cos u is largest / smallest
    if abs(a) <= 1.0:
        return [(small, big, absgap, inv_pos)], np.pi
    u0 = float(np.arccos(-1.0 / a))                             # node: Δ(u0) = 0
    return [(u0, big, absgap, inv_pos), (u0, small, absgap, inv_neg)], np.pi


def _dwave_pieces(delta: float) -> tuple[list, float]:
    """|Δ₀ cos u| on [0, π/2] (the φ-average of any function of |cos 2φ|)."""
    return [(0.5 * np.pi, 0.0, lambda u: delta * np.abs(np.cos(u)),
             lambda y: np.arccos(np.clip(y / delta, -1.0, 1.0)))], 0.5 * np.pi


def _lorentzian_smear(cells: np.ndarray, h: float, gamma: float) -> np.ndarray:
    """1 + L_Γ ⊛ (N₀ − 1) on a uniform grid (cell-integrated Lorentzian of half-width Γ).

    Exact identity: the Dynes DOS is the boundary value of a function analytic in the upper
    half plane, so N_Γ(E) − 1 is the Poisson (Lorentzian) smoothing of N_{Γ=0}(E) − 1.
    """
    if gamma == 0.0:
        return cells
    n = cells.size
    k = np.arange(-(n - 1), n) * h
    lor = (np.arctan((k + 0.5 * h) / gamma) - np.arctan((k - 0.5 * h) / gamma)) / np.pi
    nf = _fft.next_fast_len(3 * n - 2, real=True)
    full = _fft.irfft(_fft.rfft(cells - 1.0, nf) * _fft.rfft(lor, nf), nf)
    return 1.0 + full[n - 1:2 * n - 1]


def _hat_from_subcells(sub: np.ndarray, r: int) -> np.ndarray:
    """Hat projections (1/h)∫N φ_j from averages over r (even) sub-cells per cell.

    φ_j is the linear B-spline on [E_j − h, E_j + h]; with r even its kinks fall on sub-cell
    edges, so the projection of the piecewise-constant sub-cell function is exact:
    Σ_m (1 − |x_m − E_j|/h)·sub_m / r over the 2r sub-cells around E_j.  Returns one value per
    interior cell (the first and last cells of ``sub`` are only support).
    """
    x = (np.arange(2 * r) + 0.5 - r) / r            # sub-cell centres in units of h, relative to E_j
    w = (1.0 - np.abs(x)) / r
    n = sub.size // r
    full = np.convolve(sub, w[::-1], mode="valid")   # full[k] = Σ_m w_m sub[k + m]
    return full[r // 2: r // 2 + (n - 2) * r: r]


def _fs_grid_cells(pieces_total: tuple[list, float], E: np.ndarray, h: float, gamma: float,
                   hat: bool = False) -> np.ndarray:
    """Clean cell averages on r sub-cells per cell (sub-step ≤ Γ/10), Lorentzian, re-average.

    With ``hat`` the sub-cells are combined into hat projections instead of cell averages
    (r even, ≥ 4), which keep the first moment of peaks narrower than the cell.
    """
    pieces, total = pieces_total
    r = 1 if gamma == 0.0 else int(np.clip(np.ceil(10.0 * h / gamma), 1, 8))
    if hat:
        r = max(4, r + (r % 2))
    hs = h / r
    # The Lorentzian's 1/E² tails see N₀ − 1 ≈ ⟨Δ²⟩/2E² beyond the grid: extend it by
    # 30Γ (≥ 0.3 meV); the tunnelling grid's own thermal margin keeps the effect on dI/dV
    # below ~1e-5 (measured against a 1 meV extension).
    pad = 0 if gamma == 0.0 else int(np.ceil(min(max(30.0 * gamma, 0.3), 40.0) / h))
    pad = max(pad, 1) if hat else pad
    n = E.size + 2 * pad
    edges = (E[0] - (pad + 0.5) * h) + hs * np.arange(n * r + 1)
    sub = np.diff(_clean_antiderivative(edges, pieces, total)) / hs
    sub = _lorentzian_smear(sub, hs, gamma)
    if hat:
        return _hat_from_subcells(sub, r)[pad - 1:pad - 1 + E.size]
    return sub.reshape(n, r).mean(axis=1)[pad:pad + E.size]


def anisotropic_s_cells(E: np.ndarray, h: float, *, delta: float, anisotropy: float, gamma: float,
                        n: int = 1, hat: bool = False) -> np.ndarray:
    """Cell averages of :func:`anisotropic_s` on a uniform grid E (step h, meV), fast path.

    Clean (Γ = 0) antiderivative by kink-adapted Gauss–Legendre quadrature, then the
    Lorentzian identity N_Γ − 1 = L_Γ ⊛ (N₀ − 1) by FFT.  Cost O(64·len(E)) plus one FFT,
    independent of Γ.  With ``hat`` the values are hat projections (1/h)∫N φ_j (see
    :meth:`SampleDOS.hat_average`).
    """
    delta, anisotropy, gamma = _check_aniso(delta, anisotropy, gamma, n)
    if delta == 0.0:
        return np.ones_like(E)
    if anisotropy == 0.0:
        if hat:
            return _dynes_hat(E, h, delta, gamma)
        return np.diff(_dynes_anti_raw(np.concatenate([E - 0.5 * h, E[-1:] + 0.5 * h]), delta, gamma)) / h
    return _fs_grid_cells(_aniso_pieces(delta, anisotropy), E, h, gamma, hat)


def dwave_cells(E: np.ndarray, h: float, *, delta: float, gamma: float, hat: bool = False) -> np.ndarray:
    """Cell averages of :func:`dwave` on a uniform grid E (step h, meV); see :func:`anisotropic_s_cells`."""
    delta = DELTA.check(delta)
    gamma = GAMMA.check(gamma)
    if delta == 0.0:
        return np.ones_like(E)
    return _fs_grid_cells(_dwave_pieces(delta), E, h, gamma, hat)

# ----------------------------------------------------------------------- multi-gap
def multigap(E: np.ndarray | float, *, deltas: Sequence[float], gammas: Sequence[float] | float,
             weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of Dynes DOS: N(E) = Σ_i w_i N_Dynes(E; Δ_i, Γ_i) / Σ_i w_i.

    Parameters
    ----------
    E : array_like
        Energies, meV.
    deltas, gammas : sequence of float
        Gaps Δ_i and broadenings Γ_i (meV); a single Γ applies to all bands.
    weights : sequence of float
        Non-negative band weights w_i (normal-state DOS fractions), not all zero.
    """
    ds = [DELTA.replace(name=f"deltas[{i}]").check(d) for i, d in enumerate(deltas)]
    gs_in = [float(gammas)] * len(ds) if isinstance(gammas, (int, float)) else list(gammas)
    gs = [GAMMA.replace(name=f"gammas[{i}]").check(g) for i, g in enumerate(gs_in)]
    ws = [_v.scalar(f"weights[{i}]", w, "", minimum=0.0) for i, w in enumerate(weights)]
    if not (len(ds) == len(gs) == len(ws)) or not ds:
        raise ValueError("deltas, gammas and weights must have the same, non-zero length")
    total = sum(ws)
    if total == 0.0:
        raise ValueError("weights must not all be zero")
    E = np.asarray(E, dtype=float)
    out = np.zeros(E.shape)
    for d, g, w in zip(ds, gs, ws, strict=True):
        out += w * dynes(E, delta=d, gamma=g)
    return out / total


def two_gap(E: np.ndarray | float, *, delta: float, gamma: float, delta2: float,
            weight2: float) -> np.ndarray:
    """Two-band DOS with one Γ: N = (1 − w₂) N_Dynes(E; Δ, Γ) + w₂ N_Dynes(E; Δ₂, Γ).

    ``weight2`` ∈ [0, 1] is the normal-state DOS fraction of the second band; meV otherwise.
    """
    weight2 = WEIGHT2.check(weight2)
    DELTA2.check(delta2)
    return multigap(E, deltas=[delta, delta2], gammas=gamma, weights=[1.0 - weight2, weight2])


def two_gap_antiderivative(E: np.ndarray | float, *, delta: float, gamma: float, delta2: float,
                           weight2: float) -> np.ndarray:
    """Antiderivative of :func:`two_gap` (meV)."""
    weight2 = WEIGHT2.check(weight2)
    DELTA2.check(delta2)
    return ((1.0 - weight2) * dynes_antiderivative(E, delta=delta, gamma=gamma)
            + weight2 * dynes_antiderivative(E, delta=delta2, gamma=gamma))


# ------------------------------------------------------------------- gap functions
def _gap_s(phi: np.ndarray, *, delta: float, **_: float) -> np.ndarray:
    return np.full_like(phi, delta)


def _gap_anisotropic(phi: np.ndarray, *, delta: float, anisotropy: float = 0.0, n: int = 1, **_: float
                     ) -> np.ndarray:
    return delta * (1.0 + anisotropy * np.cos(n * phi))


def _gap_d(phi: np.ndarray, *, delta: float, **_: float) -> np.ndarray:
    return delta * np.cos(2.0 * phi)


# ---------------------------------------------------------------- model records
@dataclass(frozen=True)
class Model:
    """A spectral model: everything the kernels, panels and fits need to know about it.

    Attributes
    ----------
    name : str
        Registry key (``dos.bind(name, ...)``).
    label : str
        What users read (e.g. "anisotropic s").
    func, antiderivative : callable
        N(E; params) and A(E; params) with dA/dE = N (meV).
    specs : tuple of Spec
        The model's parameters, in order (each validated by the kernel through its spec).
    gap : callable or None
        Angle-resolved gap Δ(φ; params) on the Fermi circle (meV); None for multi-band models.
    takes_resolution : bool
        The antiderivative accepts ``resolution=`` (the cell width it will be differenced over).
    grid_cells : callable or None
        Fast exact cell averages on a uniform grid, (E, h, **params) → cells.
    fit_free : tuple of str
        Parameters a fit frees by default (the others start fixed).
    aliases : tuple of str
        Other keys accepted for the model (e.g. "s", "d" as gap symmetries).
    doc : str
        One line for tables.
    grid_hats : callable or None
        Exact hat projections (1/h)∫N φ_j on a uniform grid, (E, h, **params) → values.
    """

    name: str
    func: Callable[..., np.ndarray]
    antiderivative: Callable[..., np.ndarray]
    takes_resolution: bool = False
    grid_cells: Callable[..., np.ndarray] | None = None
    label: str = ""
    specs: tuple[Spec, ...] = ()
    gap: Callable[..., np.ndarray] | None = None
    fit_free: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    doc: str = ""
    grid_hats: Callable[..., np.ndarray] | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def defaults(self) -> dict[str, float]:
        """The specs' default values, by name."""
        return {s.name: s.default for s in self.specs}


def dynes_hats(E: np.ndarray, h: float, *, delta: float, gamma: float) -> np.ndarray:
    """Hat projections (1/h)∫N φ_j of :func:`dynes` on the grid E (step h, meV), exact."""
    delta, gamma = DELTA.check(delta), GAMMA.check(gamma)
    return np.ones_like(np.asarray(E, dtype=float)) if delta == 0.0 else _dynes_hat(E, h, delta, gamma)


def two_gap_hats(E: np.ndarray, h: float, *, delta: float, gamma: float, delta2: float, weight2: float
                 ) -> np.ndarray:
    """Hat projections of :func:`two_gap` (exact)."""
    weight2 = WEIGHT2.check(weight2)
    return ((1.0 - weight2) * dynes_hats(E, h, delta=delta, gamma=gamma)
            + weight2 * dynes_hats(E, h, delta=DELTA2.check(delta2), gamma=gamma))


MODELS: dict[str, Model] = {m.name: m for m in (
    Model("dynes", dynes, dynes_antiderivative, label="s-wave (Dynes)", specs=(DELTA, GAMMA), gap=_gap_s,
          fit_free=("delta", "gamma"), aliases=("s",), doc="isotropic s-wave (BCS–Dynes)", grid_hats=dynes_hats),
    Model("anisotropic_s", anisotropic_s, anisotropic_s_antiderivative, True, anisotropic_s_cells,
          label="anisotropic s", specs=(DELTA, ANISOTROPY, GAMMA, HARMONIC), gap=_gap_anisotropic,
          fit_free=("delta", "anisotropy", "gamma"), doc="anisotropic s-wave, Δ₀(1 + a cos nφ)",
          grid_hats=lambda E, h, **p: anisotropic_s_cells(E, h, hat=True, **p)),
    Model("dwave", dwave, dwave_antiderivative, True, dwave_cells, label="d-wave", specs=(DELTA, GAMMA),
          gap=_gap_d, fit_free=("delta", "gamma"), aliases=("d",), doc="d-wave, Δ₀ cos 2φ",
          grid_hats=lambda E, h, **p: dwave_cells(E, h, hat=True, **p)),
    Model("two_gap", two_gap, two_gap_antiderivative, label="two bands", specs=(DELTA, GAMMA, DELTA2, WEIGHT2),
          fit_free=("delta", "gamma", "delta2", "weight2"), doc="two bands (multi-gap)", grid_hats=two_gap_hats),
)}


def get_model(name: str) -> Model:
    """The model record for a name or alias; ``ValueError`` listing the known ones otherwise."""
    if name in MODELS:
        return MODELS[name]
    for m in MODELS.values():
        if name in m.aliases:
            return m
    known = sorted(list(MODELS) + [a for m in MODELS.values() for a in m.aliases])
    raise ValueError(f"unknown DOS model {name!r}; use one of {known}")


def gap_function(phi: np.ndarray | float, *, delta: float, anisotropy: float = 0.0, n: int = 1,
                 symmetry: str = "anisotropic_s") -> np.ndarray:
    """Momentum-resolved gap Δ(φ) on the Fermi circle (meV), dispatched through the model record.

    ``symmetry`` is a model name or alias: "s"/"dynes" → Δ₀; "anisotropic_s" → Δ₀(1 + a cos nφ);
    "d"/"dwave" → Δ₀ cos 2φ.
    """
    m = get_model(symmetry)
    if m.gap is None:
        raise ValueError(f"model {m.name!r} has no single angle-resolved gap Δ(φ)")
    return m.gap(np.asarray(phi, dtype=float), delta=delta, anisotropy=anisotropy, n=n)


@dataclass(frozen=True)
class SampleDOS:
    """A DOS model with its parameters bound: callable E → N(E), plus exact cell averages.

    Build with :func:`bind`.  It satisfies the sample-DOS contract of :mod:`.sampling`
    (:class:`~gapscope.kernels.sampling.CellAveraged`): :meth:`cell_average` is what the
    tunnelling kernels sample on their grids, :attr:`width` is the model's Γ.
    """

    model: Model
    params: Mapping[str, float] = field(default_factory=dict)

    def __call__(self, E: np.ndarray | float) -> np.ndarray:
        return self.model.func(E, **self.params)

    def cell_average(self, E: np.ndarray, h: float) -> np.ndarray:
        """Mean of N over [E − h/2, E + h/2] for each E (exact in the quadrature sense)."""
        if h <= 0.0:
            return self(E)
        kw = dict(self.params)
        if self.model.takes_resolution:
            kw["resolution"] = h
        E = np.asarray(E, dtype=float)
        uniform = _is_uniform(E, h)
        if uniform and self.model.grid_cells is not None:
            return self.model.grid_cells(E, h, **self.params)
        if uniform:
            a = self.model.antiderivative(np.concatenate([E - 0.5 * h, E[-1:] + 0.5 * h]), **kw)
            return np.diff(a) / h
        return (self.model.antiderivative(E + 0.5 * h, **kw)
                - self.model.antiderivative(E - 0.5 * h, **kw)) / h

    def hat_average(self, E: np.ndarray, h: float) -> np.ndarray:
        """Hat projections (1/h)∫N(x) φ(x − E) dx, φ the linear B-spline of half-width h.

        Exact where the model has them (all built-in models, on uniform grids); otherwise the
        mean of cell averages over eight sub-offsets (hat = box ⊛ box).  Unlike a cell average
        a hat projection keeps the first moment of a peak narrower than h in place.
        """
        E = np.asarray(E, dtype=float)
        if self.model.grid_hats is not None and _is_uniform(E, h):
            return self.model.grid_hats(E, h, **self.params)
        offs = ((np.arange(8) + 0.5) / 8 - 0.5) * h
        return np.mean([self.cell_average(E + o, h) for o in offs], axis=0)

    @property
    def width(self) -> float:
        """Intrinsic broadening Γ (meV) of the model, 0 if none."""
        return float(self.params.get("gamma", 0.0))


def _is_uniform(E: np.ndarray, h: float) -> bool:
    return E.ndim == 1 and E.size > 1 and bool(np.allclose(np.diff(E), h, rtol=1e-9, atol=1e-12))


def bind(model: str | Callable[..., np.ndarray], **params: float) -> SampleDOS:
    """Bind parameters to a DOS model, e.g. ``bind("dynes", delta=1.3, gamma=0.02)``.

    ``model`` is a name (or alias) in :data:`MODELS` or one of this module's DOS functions.
    The parameters are checked at once by one evaluation, so a bad value raises here.
    """
    if callable(model):
        found = [m for m in MODELS.values() if m.func is model]
        if not found:
            raise ValueError(f"{model!r} is not a registered DOS model; use one of {sorted(MODELS)}")
        m = found[0]
    else:
        m = get_model(model)
    bound = SampleDOS(m, dict(params))
    bound(np.zeros(1))  # validates the parameters (raises ValueError with the name)
    return bound


# ------------------------------------------------------------------ tabulated DOS
class TabulatedDOS:
    """A DOS given as numbers on an energy grid (Usadel, Ising, measured or deconvolved DOS).

    N(E) is the piecewise-linear interpolant of the table, held at its end values beyond it.
    It satisfies the sample-DOS contract with *exact* cell averages of that interpolant, so
    it goes through the tunnelling chain on any grid; :attr:`width` is the table's finest
    spacing.  Build with :func:`tabulated`.
    """

    def __init__(self, energies: np.ndarray, values: np.ndarray) -> None:
        self.energies = energies
        self.values = values
        seg = np.diff(energies) * 0.5 * (values[1:] + values[:-1])
        self._cum = np.concatenate([[0.0], np.cumsum(seg)])
        self.width = float(np.min(np.diff(energies)))

    def __call__(self, E: np.ndarray | float) -> np.ndarray:
        return np.interp(np.asarray(E, dtype=float), self.energies, self.values)

    def antiderivative(self, x: np.ndarray) -> np.ndarray:
        """A(x) = ∫_{E₀}^x N (meV), exact for the interpolant (linear beyond the table)."""
        e, v = self.energies, self.values
        x = np.asarray(x, dtype=float)
        i = np.clip(np.searchsorted(e, x, side="right") - 1, 0, e.size - 2)
        t = np.clip(x, e[0], e[-1]) - e[i]
        slope = (v[i + 1] - v[i]) / (e[i + 1] - e[i])
        inside = self._cum[i] + v[i] * t + 0.5 * slope * t * t
        below = (x - e[0]) * v[0]
        above = self._cum[-1] + (x - e[-1]) * v[-1]
        return np.where(x < e[0], below, np.where(x > e[-1], above, inside))

    def cell_average(self, E: np.ndarray, h: float) -> np.ndarray:
        """Mean of the interpolant over [E − h/2, E + h/2] (exact)."""
        E = np.asarray(E, dtype=float)
        if h <= 0.0:
            return self(E)
        return (self.antiderivative(E + 0.5 * h) - self.antiderivative(E - 0.5 * h)) / h


def tabulated(energies: np.ndarray, values: np.ndarray) -> TabulatedDOS:
    """A tabulated DOS: ``energies`` (meV, strictly increasing) and normalised ``values`` (≥ 0).

    Raises ``ValueError`` for mismatched, too short, non-increasing, non-finite or negative input.
    """
    e = np.asarray(energies, dtype=float)
    v = np.asarray(values, dtype=float)
    if e.ndim != 1 or v.shape != e.shape or e.size < 2:
        raise ValueError(f"energies and values must be 1D arrays of the same length ≥ 2, got {e.shape} and {v.shape}")
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(v))):
        raise ValueError("energies and values must be finite")
    if np.any(np.diff(e) <= 0):
        raise ValueError("energies must be strictly increasing")
    if np.any(v < 0):
        raise ValueError(f"a density of states cannot be negative (min {v.min():g} at E = {e[np.argmin(v)]:g} meV)")
    return TabulatedDOS(e.copy(), v.copy())


# ------------------------------------------------------------------ fit models
# Imported here, after the kernels: ``models`` imports ``tunneling``, which imports this module.
from . import models as _models  # noqa: E402


def _fit_model(m: Model) -> _models.FitModel:
    """The fit model of a DOS record: its continuous specs, free as the record says."""
    params = tuple(_models.fit_param(s, vary=s.name in m.fit_free) for s in m.specs if not s.integer)
    return _models.FitModel(m.name, params, lambda **p: bind(m.name, **p), m.doc, topic=__name__)


for _m in MODELS.values():
    _models.register(_fit_model(_m))
