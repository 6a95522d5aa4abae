"""Lattice substrates for the YSR T-matrix: tight-binding BdG Green's functions on a k-mesh.

The continuum engine (:mod:`.propagators`) covers parabolic bands; this module gives the same
T-matrix, LDOS, maps and tunnelling chain on a tight-binding lattice: square, triangular or
bcc(110)-surface lattices with nearest-neighbour hopping t, chemical potential μ and
nearest-neighbour Rashba t_R, any user-supplied Bloch matrix H(k) (several orbitals, spinless
or spinful), or a Wannier90 ``_hr.dat`` model (:mod:`.wannier`).

Conventions
-----------
Units
    All energies in meV (t, μ, Δ, Γ, t_R, the impurity terms); a model "in units of t" is the
    same numbers with t = 1 meV.  Sites are integer coordinates (n₁, n₂) along the primitive
    vectors a₁, a₂; :meth:`Substrate.cartesian` gives positions in units of the lattice constant.
Bloch matrix
    H(k) = Σ_d e^{−ik·d} ⟨d|H|0⟩ with k·d = k₁d₁ + k₂d₂ (k_i the phase per primitive vector,
    radians); ``hk(k1, k2)`` returns (..., M, M), M = norb (spinless; spin-degenerate, ⊗σ₀)
    or 2·norb (spinful, index 2·orbital + spin).  Built-in lattices:
    H(k) = −t Σ_δ e^{ik·δ} − μ + t_R Σ_δ sin(k·δ) (σ_x δ̂_y − σ_y δ̂_x)  (sum over the
    nearest neighbours δ, δ̂ their Cartesian unit vectors; the lattice form of α_R(σ×k)·ẑ).
BdG
    Nambu Ψ = (c_k↑, c_k↓, c†_{−k↓}, −c†_{−k↑}) per orbital as in :mod:`gapscope.kernels.nambu`:
    H_BdG(k) = [[H(k), Δ], [Δ, −σ_y H(−k)* σ_y]], s-wave Δ (real) per orbital.  Full matrices
    are ordered (orbital, τ, σ): orbital o owns rows 4o … 4o + 3 = [e↑, e↓, h1, h2].
Green's function
    G₀(d, z) = (1/N) Σ_k e^{ik·d} (z − H_BdG(k))⁻¹ on an n₁×n₂ k-mesh (N = n₁n₂; exactly the
    Green's function of the n₁×n₂ torus), z = ω + iΓ (Dynes Γ inside G₀, as in the continuum
    engine).  All displacements at once by FFT (maps), or few displacements by a direct k-sum:
    exact for meshes up to ``EXACT_MAX`` k-points, else by binning the poles E_k with linear
    (tent) weights, which keep the sum rule and first moment of each bin, on a grid of spacing
    h = min(Γ, Δ)/64 (Δ/256 at Γ = 0) up to 30Γ beyond the largest |ω| asked for and growing
    geometrically (+2 % per node) beyond (relative error ≲ (h/Γ)²/4 ≈ 6·10⁻⁵; measured
    ≤ 3·10⁻⁴ of max|G₀| against the exact sum in the tests).  Bins are cached per displacement.
    Many energies on one line Im z = Γ (a spectrum; or the bound-state finder's real in-gap
    scan) sum the uniform bins by one FFT convolution with 1/(z − E) on the bin grid, then
    6-point Lagrange interpolation (:func:`_pole_sum`; equal to the direct bin sum to 1e-10
    on Im z = Γ, 2·10⁻⁸ on the real axis, in the tests), so a t, μ or t_R change costs the
    mesh's eigenvalues (closed form for 1×1 and 2×2 Bloch matrices), one binning pass and a
    few FFTs of the bin grid, not energies × bins.
On-site route (linear triangles)
    With ``nk=None`` on a one-orbital built-in lattice (square, triangular, bcc(110); with or
    without Rashba) the on-site G₀(0, z) — a single impurity's spectrum and YSR energies —
    needs no torus: the band's density on a mesh resolving its curvature,
    (dk²/8)·max|ε''| < Γ/64 (256² for the issue's square lattice at Γ = 0.01t, instead of the
    criterion's 1280²), by the linear triangle method, as exact tent averages on the pole grid
    (:class:`_TriangleDOS`; one triangle per orbit of the mesh's inversion and k₁ ↔ k₂
    symmetries, two pole-sum columns since the on-site weight is σ₀/M); Richardson-extrapolated
    from the same mesh's every other point at Γ = 0 (in the gap the error is a clean c·dk²).
    ``Substrate.with_mesh`` gives the same lattice on a torus for what needs one (a capped map)
    with the same N₀.  Measured against the elliptic-integral closed
    form of the square lattice: 5·10⁻⁵ of max|G₀| at Γ = 0.01t inside the band (10⁻³ near the
    band bottom, μ = −3t), 10⁻⁵ on the real axis in the gap (the pole bins' floor); YSR
    energies to 10⁻⁵.  Displacements d ≠ 0 (dimers, chains, maps) use the criterion's mesh
    (or, through FFTs, each energy's own smaller torus: below).
k-mesh criterion
    The k-sum converges to the infinite lattice when the k-spacing times the band velocity is
    below the broadening, (2π/n_i)·max|∂ε/∂k_i| < Γ (the torus then exceeds 2π times the
    mean free path ħv/Γ, so image terms are ≲ e^{−2π}); at Γ = 0 (bound-state energies) Γ is
    replaced by Δ/2.  The velocity is the largest at the Fermi level (|ε| < max(4Δ, 20Γ)).
    ``nk=None`` chooses the smallest FFT-friendly mesh that satisfies it (capped at 2048 per
    direction in 2D, 64 in 3D); a user's ``nk`` that violates it gets a ``UserWarning`` with
    the numbers.  With ``nk=None`` the FFT route (maps, many displacements) takes per energy
    the smallest torus that is the infinite lattice there (:meth:`Substrate.decay_nk`: in the gap
    G₀ decays over v/|Im √(z² − Δ²)|, so a map at a YSR energy needs 256²–384², not 1280²).
Normalisation
    g = G/(πN₀), N₀ the normal-state DOS per spin per unit cell at E_F = 0 (1/meV; in 2D the
    infinite lattice's whatever the mesh: linear triangles on a 256² mesh with the Fermi line's
    cells refined 8×, ≤ 10⁻⁴ of the closed form), so the spin-summed electron LDOS is ≈ 1 in the
    normal state.
Impurities
    On-site V = potential·τ_z + exchange·n̂·σ (meV) on one orbital of a site.  In the
    dimensionless T-matrix of :mod:`.tmatrix` this is the vertex v = βτ_z + αn̂·σ with
    α = πN₀·exchange and β = πN₀·potential — the continuum's α = πN₀JS/2, β = πN₀K with
    JS/2 = exchange × A_cell and K = potential × A_cell (A_cell the cell area, the lattice's
    "volume" of a point scatterer).
Bound states
    :func:`energies` uses the eigen-branch root finder of :mod:`.tmatrix` (zeros of the
    sorted eigenvalues of v⁻¹ − 𝒢(ω), with multiplicity), at Γ = 0 on the same mesh.

Example
-------
>>> import numpy as np
>>> from gapscope.kernels.ysr import lattice
>>> sub = lattice.Substrate("square", t=1.0, mu=-1.0, delta=0.2, gamma=0.01, nk=256)  # doctest: +SKIP
>>> imp = [lattice.Impurity(site=(0, 0), spin=(0, 0, 1), channels=[lattice.Channel(exchange=1.5)])]
>>> lattice.energies(sub, imp)                  # YSR energies (meV), with multiplicity  # doctest: +SKIP
>>> eng = lattice.Engine(sub, imp)
>>> rho = eng.ldos([[0, 0], [1, 0]], np.linspace(-0.4, 0.4, 400))   # (sites, energies)  # doctest: +SKIP
>>> dos = eng.sample_dos((0, 0))                # → gapscope.kernels.tunneling.didv(sample_dos=dos, ...)

Other entry points: ``Substrate.from_hamiltonian(hk, norb=…, delta=…, gamma=…, nk=…)``,
``Substrate.from_wannier90(path, delta=…, gamma=…, nk=…, fermi_energy=…)``, :func:`ldos`,
:func:`energies`, :class:`LatticePropagators` (a :class:`~.propagators.PropagatorSet`).
"""

from __future__ import annotations

import math
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from .. import _validate as _v
from .. import nambu
from ..specs import Spec
from . import engine as _engine
from . import tmatrix as _tmatrix
from . import wannier as _wannier
from .model import Site
from .propagators import PropagatorSet

__all__ = ["Substrate", "Channel", "Impurity", "LatticePropagators", "Engine", "ldos", "energies", "residue_maps",
           "LATTICES", "EXACT_MAX", "required_nk", "T_HOP", "MU", "T_RASHBA", "EXCHANGE", "POTENTIAL"]

# parameters of the built-in lattices and of the on-site impurity terms (meV); the kernels check through them
T_HOP = Spec("t", "t", "meV", 1.0, (0.1, 20.0), (-1e3, 1e3), 0.01, "nearest-neighbour hopping (H ∋ −t Σ c†_i c_j)")
MU = Spec("mu", "μ", "meV", -1.0, (-20.0, 20.0), (-1e4, 1e4), 0.01,
          "chemical potential of the lattice band (band bottom at −4t on the square lattice)")
T_RASHBA = Spec("rashba", "t_R", "meV", 0.0, (0.0, 5.0), (-1e3, 1e3), 0.01, "nearest-neighbour Rashba hopping")
EXCHANGE = Spec("exchange", "J", "meV", 1.5, (0.0, 30.0), (-1e4, 1e4), 0.01,
                "on-site exchange of the impurity, exchange·n̂·σ (α = πN₀·J)")
POTENTIAL = Spec("potential", "K", "meV", 0.0, (-20.0, 20.0), (-1e4, 1e4), 0.01,
                 "on-site potential scattering of the impurity, potential·τ_z (β = πN₀·K)")

#: k-meshes with at most this many points use the exact k-sum for few displacements
EXACT_MAX = 40000
_FFT_MIN_DISPLACEMENTS = 64
_SQ3 = math.sqrt(3.0)
_SQ2 = math.sqrt(2.0)

#: kind → (primitive vectors a₁, a₂ in units of a, nearest-neighbour reduced vectors)
LATTICES: dict[str, tuple[tuple[tuple[float, float], tuple[float, float]], tuple[tuple[int, int], ...]]] = {
    "square": (((1.0, 0.0), (0.0, 1.0)), ((1, 0), (-1, 0), (0, 1), (0, -1))),
    "triangular": (((1.0, 0.0), (0.5, 0.5 * _SQ3)), ((1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1))),
    # bcc(110): centred rectangular, a₁ = (a/2, a/√2), a₂ = (a/2, −a/√2); the 4 nearest neighbours
    # at √3a/2 are ±a₁, ±a₂ (x ∥ [001], y ∥ [1−10])
    "bcc110": (((0.5, 1.0 / _SQ2), (0.5, -1.0 / _SQ2)), ((1, 0), (-1, 0), (0, 1), (0, -1))),
}

_SY = np.array([[0, -1j], [1j, 0]])


# ----------------------------------------------------------------------------- helpers
def _smooth_even(n: int) -> int:
    """Smallest even 2·3·5-smooth integer ≥ n (FFT-friendly)."""
    m = max(2, int(n))
    while True:
        if m % 2 == 0:
            r = m
            for p in (2, 3, 5):
                while r % p == 0:
                    r //= p
            if r == 1:
                return m
        m += 1


def _mesh_k(nk: tuple[int, ...]) -> list[np.ndarray]:
    grids = [2.0 * np.pi * np.arange(n) / n for n in nk]
    return list(np.meshgrid(*grids, indexing="ij"))


def _minus_index(a: np.ndarray, nk: tuple[int, ...]) -> np.ndarray:
    """a(−k) for a mesh array of shape nk + (...) (index m → −m mod n on every axis)."""
    out = a
    for ax in range(len(nk)):
        out = np.roll(np.flip(out, axis=ax), 1, axis=ax)
    return out


def _eval_hk(hk: Callable[..., np.ndarray], ks: list[np.ndarray], m: int) -> np.ndarray:
    try:
        h = np.asarray(hk(*ks), dtype=complex)
    except Exception as exc:          # a user's function: say what failed
        raise ValueError(f"hk(k1, k2, ...) failed on a k-mesh of shape {ks[0].shape}: {exc}") from exc
    if getattr(hk, "_built_in", False):       # the built-in lattices (Hermitian by construction): no O(K) checks
        return h
    if h.shape != ks[0].shape + (m, m):
        raise ValueError(f"hk must return Bloch matrices of shape k.shape + ({m}, {m}), got {h.shape} "
                         f"for k arrays of shape {ks[0].shape}")
    if not np.all(np.isfinite(h)):
        raise ValueError("hk returned non-finite matrix elements")
    herm = np.max(np.abs(h - np.conj(np.swapaxes(h, -1, -2))))
    scale = max(1.0, float(np.max(np.abs(h))))
    if herm > 1e-9 * scale:
        raise ValueError(f"hk is not Hermitian: max|H − H†| = {herm:.3g} meV")
    return h


def _eigh_small(h: np.ndarray, vectors: bool = True) -> Any:
    """Batched eigh of Hermitian (..., M, M): closed forms for M ≤ 2 (≈ 10× LAPACK's batched 2×2), else LAPACK.

    M = 2, H = m + r[[cos θ, sin θ e^{iφ}], [sin θ e^{−iφ}, −cos θ]] (r = √(δ² + |b|²), δ = (a − d)/2):
    λ = m ∓ r with v₋ = (−e^{iφ} sin θ/2, cos θ/2), v₊ = (cos θ/2, e^{−iφ} sin θ/2); the half-angles
    from whichever of cos, sin θ/2 is the larger (no cancellation).  Ascending, as numpy.linalg.eigh.
    """
    M = h.shape[-1]
    if M == 1:
        ev = h[..., 0].real.copy()
        return (ev, np.ones(h.shape, dtype=complex)) if vectors else ev
    if M != 2:
        return np.linalg.eigh(h) if vectors else np.linalg.eigvalsh(h)
    a, d, b = h[..., 0, 0].real, h[..., 1, 1].real, h[..., 0, 1]
    m, dl = 0.5 * (a + d), 0.5 * (a - d)
    ab = np.abs(b)
    r = np.hypot(dl, ab)
    ev = np.stack([m - r, m + r], axis=-1)
    if not vectors:
        return ev
    with np.errstate(divide="ignore", invalid="ignore"):
        big = np.sqrt((r + np.abs(dl)) / (2.0 * r))                 # the larger half-angle function
        small = ab / (2.0 * r * big)
        ph = np.where(ab > 0, b / ab, 1.0)
    deg = ~(r > 0)
    big = np.where(deg, 1.0, big)
    small = np.where(deg, 0.0, small)
    c = np.where(dl >= 0, big, small)
    sn = np.where(dl >= 0, small, big)
    vec = np.empty(h.shape, dtype=complex)
    vec[..., 0, 0] = -ph * sn
    vec[..., 1, 0] = c
    vec[..., 0, 1] = c
    vec[..., 1, 1] = np.conj(ph) * sn
    return ev, vec


def _velocities(hk: Callable[..., np.ndarray], dim: int, m: int, window: float) -> tuple[np.ndarray, float]:
    """(max |∂ε/∂k_i| over states with |ε| < window, meV·rad⁻¹ per direction; bandwidth) on a coarse mesh."""
    n = 64 if dim == 2 else 20
    nk = (n,) * dim
    ks = _mesh_k(nk)
    eps = _eigh_small(_eval_hk(hk, ks, m), vectors=False)   # nk + (m,)
    width = float(eps.max() - eps.min())
    w = max(window, 0.03 * width)
    dk = 2.0 * np.pi / n
    v = np.zeros(dim)
    near = np.abs(eps) < w
    if not np.any(near):
        return v, width
    for ax in range(dim):
        d = np.abs(np.roll(eps, -1, axis=ax) - np.roll(eps, 1, axis=ax)) / (2.0 * dk)
        v[ax] = float(d[near].max())
    return v, width


def required_nk(velocity: Sequence[float], gamma: float, delta: float) -> tuple[int, ...]:
    """Mesh size per direction from the criterion (2π/n_i)·v_i < Γ (Γ → Δ/2 at Γ = 0), before rounding."""
    g = gamma if gamma > 0 else 0.5 * delta
    return tuple(max(8, int(math.ceil(2.0 * math.pi * v / g))) for v in velocity)


#: the pole sums of many energies on one line Im z = γ go through an FFT convolution (see :func:`_pole_sum`)
FFT_MIN_ENERGIES = 24
#: ... when γ is at least this many bin widths (the interpolation error is then ≲ (h/γ)⁶ · 10)
_FFT_MIN_GAMMA_BINS = 16.0
_LAGRANGE_POINTS = 6


def _pole_sum_dense(z: np.ndarray, nodes: np.ndarray, acc: np.ndarray, symmetric: bool) -> np.ndarray:
    r = 1.0 / (z[:, None] - nodes[None, :])
    if symmetric:
        r -= 1.0 / (z[:, None] + nodes[None, :])
    return r @ acc


def _pole_sum(z: np.ndarray, nodes: np.ndarray, acc: np.ndarray, nu: int, h: float, *,
              symmetric: bool) -> np.ndarray:
    """S(z) = Σ_j acc_j [1/(z − x_j) − (1/(z + x_j) if ``symmetric``)] for binned poles, (len(z), X).

    ``nodes`` x_j (J,) are uniform with spacing ±h for the first ``nu`` and arbitrary beyond;
    ``acc`` (J, X) the binned weights.  For many energies (at least :data:`FFT_MIN_ENERGIES`)
    on one line z = ω + iγ with γ ≥ 16h — or real energies at least 16h + the stencil away
    from every uniform node, as the in-gap scan of the bound-state finder — the uniform part
    is a discrete convolution: on the grid ω_m = x₀ + (m₀ + m)h it is Σ_j acc_j k[m − j] with
    k[n] = 1/(iγ + (m₀ + n)h) (and the mirrored term Σ_j acc_j/(2x₀ + iγ + (m₀ + m + j)h), a
    correlation), one FFT per column in O((J + M) log(J + M)); S is then interpolated to the
    requested ω by 6-point Lagrange interpolation, exact to ≲ 10·(h/d)⁶ relative, d ≥ 16h the
    distance from the energies to the nearest pole (S is analytic within d).  The few
    non-uniform (tail) nodes are summed directly.  Otherwise: the direct sum.
    """
    z = np.asarray(z, dtype=complex)
    gam = z.imag
    if z.size < FFT_MIN_ENERGIES or nu < 8 or not np.all(gam == gam[0]) or gam[0] < 0:
        return _pole_sum_dense(z, nodes, acc, symmetric)
    g0 = float(gam[0])
    pad = _LAGRANGE_POINTS // 2
    if g0 >= _FFT_MIN_GAMMA_BINS * h:
        return _pole_sum_fft(z, nodes, acc, nu, h, symmetric)
    # on (or near) the real axis: the energies at least 16h + the stencil from every uniform node
    lo, hi = float(min(nodes[0], nodes[nu - 1])), float(max(nodes[0], nodes[nu - 1]))
    reach = (_FFT_MIN_GAMMA_BINS + pad + 1) * h
    w = z.real
    near = (w > lo - reach) & (w < hi + reach)
    if symmetric:
        near |= (w > -hi - reach) & (w < -lo + reach)
    far = ~near
    if far.sum() < FFT_MIN_ENERGIES:
        return _pole_sum_dense(z, nodes, acc, symmetric)
    wf = w[far]
    bands = [(lo, hi)] + ([(-hi, -lo)] if symmetric else [])
    if any(wf.min() < b_hi and wf.max() > b_lo for b_lo, b_hi in bands):   # the grid would cross the poles
        return _pole_sum_dense(z, nodes, acc, symmetric)
    res = np.empty((z.size, acc.shape[1]), dtype=complex)
    res[far] = _pole_sum_fft(z[far], nodes, acc, nu, h, symmetric)
    if np.any(near):
        res[near] = _pole_sum_dense(z[near], nodes, acc, symmetric)
    return res


def _tail_sum(z: np.ndarray, nodes: np.ndarray, acc: np.ndarray, symmetric: bool) -> np.ndarray:
    """The direct sum over the far (tail) nodes for many z on one line Im z = γ, by Chebyshev interpolation in Re z.

    Every tail node lies beyond the energies [a, b] by d > 0 (the uniform bins reach 30·max(γ, 64h)
    past them), so the sum is analytic in the Bernstein ellipse of [a, b] with ρ = 1 + r + √((1+r)² − 1),
    r = d/((b − a)/2), and its interpolant on N Chebyshev points errs by ≲ ρ⁻ᴺ: N = 37/ln ρ + 4 points
    (≈ 40 for the usual windows) give it to round-off instead of len(z) direct sums.
    """
    w = z.real
    lo_w, hi_w = float(w.min()), float(w.max())
    half = 0.5 * (hi_w - lo_w)
    x = np.abs(nodes)
    d = float(np.min(np.minimum(x - hi_w, x + lo_w) if symmetric else np.where(nodes > 0, nodes - hi_w, lo_w - nodes)))
    if half <= 0 or d <= 0:
        return _pole_sum_dense(z, nodes, acc, symmetric)
    r = d / half
    n = int(math.ceil(37.0 / math.log(1.0 + r + math.sqrt((1.0 + r) ** 2 - 1.0)))) + 4
    if 2 * n >= z.size:
        return _pole_sum_dense(z, nodes, acc, symmetric)
    xk = 0.5 * (lo_w + hi_w) + half * np.cos(np.pi * np.arange(n) / (n - 1))      # Chebyshev points, 2nd kind
    fk = _pole_sum_dense(xk + 1j * float(z.imag[0]), nodes, acc, symmetric)          # (n, X)
    bw = (-1.0) ** np.arange(n)
    bw[0] *= 0.5
    bw[-1] *= 0.5
    diff = w[:, None] - xk[None, :]
    hit = diff == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        c = bw[None, :] / diff
        res = (c @ fk) / np.sum(c, axis=1)[:, None]
    rows, cols = np.nonzero(hit)
    res[rows] = fk[cols]
    return res


def _pole_sum_fft(z: np.ndarray, nodes: np.ndarray, acc: np.ndarray, nu: int, h: float,
                  symmetric: bool) -> np.ndarray:
    """The FFT-convolution branch of :func:`_pole_sum` (all z on one line Im z = γ)."""
    import scipy.fft as sfft
    g0 = float(z.imag[0])
    out = _tail_sum(z, nodes[nu:], acc[nu:], symmetric) if nodes.size > nu else 0.0
    xs, a = nodes[:nu], acc[:nu]
    if xs[-1] < xs[0]:
        xs, a = xs[::-1], a[::-1]
    x0 = float(xs[0])
    w = z.real
    pad = _LAGRANGE_POINTS // 2
    m0 = int(math.floor((float(w.min()) - x0) / h)) - pad
    n_out = int(math.ceil((float(w.max()) - x0) / h)) - m0 + pad + 1
    q = np.arange(nu + n_out - 1, dtype=float)
    L = sfft.next_fast_len(2 * nu + n_out - 2)
    f1 = sfft.fft(1.0 / (1j * g0 + (m0 + q - (nu - 1)) * h), L)[:, None]
    f2 = sfft.fft(1.0 / (2.0 * x0 + 1j * g0 + (m0 + q) * h), L)[:, None] if symmetric else None
    X = acc.shape[1]
    grid = np.empty((n_out, X), dtype=complex)
    step = max(1, int(2 ** 22 // L))                      # columns per pass: ≤ 64 MB per FFT array
    for c0 in range(0, X, step):
        blk = a[:, c0:c0 + step]
        g = sfft.ifft(sfft.fft(blk, L, axis=0) * f1, axis=0)[nu - 1:nu - 1 + n_out]
        if f2 is not None:
            g -= sfft.ifft(sfft.fft(blk[::-1], L, axis=0) * f2, axis=0)[nu - 1:nu - 1 + n_out]
        grid[:, c0:c0 + step] = g
    s = (w - x0) / h - m0                                  # fractional grid index of each ω
    i0 = np.floor(s).astype(np.intp) - (pad - 1)            # first of the 6 interpolation points
    t = s - i0
    res = np.zeros((z.size, acc.shape[1]), dtype=complex)
    for p in range(_LAGRANGE_POINTS):
        c = np.ones_like(t)
        for r in range(_LAGRANGE_POINTS):
            if r != p:
                c *= (t - r) / (p - r)
        res += c[:, None] * grid[i0 + p]
    return res + out


def _fermi_triangles(e00: np.ndarray, e10: np.ndarray, e01: np.ndarray, e11: np.ndarray,
                     weight: np.ndarray | float = 1.0) -> float:
    """Σ over the cells' two triangles (00, 10, 11) and (00, 01, 11) of the linear-triangle DOS at ε = 0, × cell area.

    A triangle with sorted corners e₁ ≤ e₂ ≤ e₃ straddling 0 contributes 2a·(−e₁)/((e₂−e₁)(e₃−e₁)) if
    e₂ ≥ 0, else 2a·e₃/((e₃−e₁)(e₃−e₂)), a = half the cell; the sum is returned for a unit cell
    (divide by the number of cells for the DOS per zone); ``weight`` (broadcast to the cells) multiplies each cell.
    """
    total = 0.0
    wt = np.broadcast_to(weight, e00.shape)
    for b, c in ((e10, e11), (e01, e11)):
        lo3 = np.minimum(np.minimum(e00, b), c)
        hi3 = np.maximum(np.maximum(e00, b), c)
        cut = (lo3 < 0) & (hi3 >= 0)                          # triangles the Fermi line crosses
        e1, e3 = lo3[cut], hi3[cut]
        e2 = e00[cut] + b[cut] + c[cut] - e1 - e3
        with np.errstate(divide="ignore", invalid="ignore"):
            val = np.where(e2 >= 0, -e1 / ((e2 - e1) * (e3 - e1)), e3 / ((e3 - e1) * (e3 - e2)))
        total += float(np.nansum(val * wt[cut]))
    return total


def _merge_poles(e: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poles e (K,) with weights w (K, X) as the distinct poles and their summed weights.

    Σ_k w_k/(z − e_k) is unchanged when the weights of equal poles are added; poles within
    10⁻¹⁴·max|e| of each other (k-points related by the lattice's symmetries, equal up to the
    rounding of cos) count as equal, which moves the sum by ≲ 10⁻¹⁴·max|e|/Im z relative.  A
    symmetric torus has about 1/8 (square) of its k-points' energies distinct.
    """
    if e.size < 2:
        return e, w
    order = np.argsort(e, kind="stable")
    es = e[order]
    tol = 1e-14 * max(float(np.max(np.abs(es))), 1e-300)
    start = np.flatnonzero(np.r_[True, np.diff(es) > tol])
    if start.size > 0.8 * e.size:                    # hardly any to merge: not worth the copies
        return e, w
    return es[start], np.add.reduceat(w[order], start, axis=0)


def _band_function(hk: Callable[..., np.ndarray], M: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """ε_n(k1, k2) (..., M) ascending of a 2D H(k): the built-in lattices' closed form, else eigenvalues."""
    fine = getattr(hk, "_bands", None)
    if fine is not None:
        return fine

    def bands(k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        return _eigh_small(_eval_hk(hk, [k1, k2], M), vectors=False)
    return bands


def _band_mesh(bands: Callable[[np.ndarray, np.ndarray], np.ndarray], n: int, M: int) -> np.ndarray:
    """The bands on the periodic n × n mesh k_i = 2πm/n, (n, n, M)."""
    g = 2.0 * np.pi * np.arange(n) / n
    k1, k2 = (g[:, None], g[None, :]) if getattr(bands, "open_grid", False) else np.meshgrid(g, g, indexing="ij")
    return np.broadcast_to(bands(k1, k2), (n, n, M))


def _band_mesh_symmetry(bands: Callable[[np.ndarray, np.ndarray], np.ndarray], n: int, M: int
                        ) -> tuple[np.ndarray, tuple[bool, bool]]:
    """:func:`_band_mesh` and its :func:`_mesh_symmetry`."""
    eps = _band_mesh(bands, n, M)
    return eps, _mesh_symmetry(eps)


def _mesh_symmetry(eps: np.ndarray) -> tuple[bool, bool]:
    """Whether bands (n, n, M) on the periodic mesh have inversion ε(−k) = ε(k), and inversion and the swap
    ε(k₂, k₁) = ε(k₁, k₂) (both checked on the mesh, to 10⁻¹² of the largest |ε|)."""
    tol = 1e-12 * max(1.0, float(np.max(np.abs(eps))))
    inversion = float(np.max(np.abs(eps - np.roll(eps[::-1, ::-1], 1, axis=(0, 1))))) <= tol
    swap = inversion and float(np.max(np.abs(eps - eps.transpose(1, 0, 2)))) <= tol
    return inversion, swap


def _fermi_line_n0(eps: np.ndarray, bands: Callable[[np.ndarray, np.ndarray], np.ndarray], spinful: bool,
                   refine: int = 8, sym: tuple[bool, bool] | None = None) -> float:
    """N₀ per spin per cell (1/meV) of 2D bands: the linear-triangle DOS at ε = 0, the Fermi line's cells refined.

    ``eps`` (n, n, M) are the bands on the periodic n × n mesh, ``bands(k1, k2) -> (..., M)`` evaluates
    them anywhere.  A point value of the triangle DOS errs by O(dk²) erratically (measured ≈ 10⁻³
    on a 200² mesh); the cells whose corners straddle ε = 0 are cut into
    refine² sub-cells (the bands evaluated there) and only their triangles summed: the N₀ of an
    (n·refine)² mesh (2048² for n = 256) for O(n) cells; measured ≤ 10⁻⁴ of the closed form on the
    square lattice for −3.9t ≤ μ ≤ −0.1t.  A cell counts as straddling when its corners come within
    m of 0, m the band's largest second difference on the mesh (≥ dk²·|ε''|, more than a C² band
    can bulge between corners, (dk²/8)·|ε''| per direction).
    """
    n = eps.shape[0]
    c = [eps, np.roll(eps, -1, 0), np.roll(eps, -1, 1), np.roll(np.roll(eps, -1, 0), -1, 1)]
    lo = np.minimum(np.minimum(c[0], c[1]), np.minimum(c[2], c[3]))
    hi = np.maximum(np.maximum(c[0], c[1]), np.maximum(c[2], c[3]))
    m = np.max([np.max(np.abs(np.roll(eps, -1, ax) - 2.0 * eps + np.roll(eps, 1, ax)), axis=(0, 1)) for ax in (0, 1)],
               axis=0)                                                    # (M,)
    near = (lo <= m) & (hi >= -m)
    i1, i2, band = np.nonzero(near)
    # a symmetry maps cell (i, j) and its sub-cells onto (n−1−i, n−1−j) (inversion) or (j, i) (swap): one per orbit
    inversion, swap = _mesh_symmetry(eps) if sym is None else sym
    weight = np.ones(i1.size)
    if inversion:
        images = [(i1, i2), (n - 1 - i1, n - 1 - i2)] + ([(i2, i1), (n - 1 - i2, n - 1 - i1)] if swap else [])
        codes = np.stack([a * n + b for a, b in images])                     # (orbit, cells)
        first = codes[0] == codes.min(axis=0)
        distinct = 1 + np.sum([np.all(codes[q][None] != codes[:q], axis=0) for q in range(1, len(images))], axis=0)
        i1, i2, band, weight = i1[first], i2[first], band[first], distinct[first].astype(float)
    r = int(refine)
    frac = np.arange(r + 1) / r
    k1 = (2.0 * np.pi / n) * (i1[:, None, None] + frac[None, :, None])
    k2 = (2.0 * np.pi / n) * (i2[:, None, None] + frac[None, None, :])
    k1, k2 = np.broadcast_arrays(k1, k2)
    ev = bands(k1, k2)                                                     # (cells, r+1, r+1, M)
    ev = np.take_along_axis(ev, band[:, None, None, None], axis=-1)[..., 0]
    total = _fermi_triangles(ev[:, :-1, :-1], ev[:, 1:, :-1], ev[:, :-1, 1:], ev[:, 1:, 1:],
                             weight[:, None, None])
    return total / (n * n * r * r) / (2.0 if spinful else 1.0)


# ----------------------------------------------------------------------------- the k-mesh
class _Mesh:
    """Eigen-decomposition of the clean BdG Bloch Hamiltonian on a k-mesh, and G₀(d, z) from it.

    ``band`` path (time-reversal symmetric H(k) and one Δ for all orbitals): H_BdG = H⊗τ_z + Δτ_x,
    so G(k, z) = Σ_n P_n(k) ⊗ [a_n(z + Δτ_x) + b_n τ_z] with a_n = 1/(z² − ε_n² − Δ²), b_n = ε_n a_n,
    from the normal-state bands ε_n, P_n.  Otherwise the full BdG matrix is diagonalised.
    """

    def __init__(self, hk: Callable[..., np.ndarray], dim: int, nk: tuple[int, ...], norb: int, spinful: bool,
                 delta_orb: np.ndarray) -> None:
        self.dim, self.nk, self.norb, self.spinful = dim, nk, norb, spinful
        self.K = int(np.prod(nk))
        self.M = norb * (2 if spinful else 1)
        M = self.M
        ks = _mesh_k(nk)
        he = _eval_hk(hk, ks, M)                       # nk + (M, M)
        dvec = np.repeat(delta_orb, 2) if spinful else np.asarray(delta_orb, dtype=float)
        if getattr(hk, "_built_in", False):            # real hopping + Rashba: time-reversal symmetric by construction
            trs, hole = True, None
            he = he.reshape(self.K, M, M)
        else:
            hm = _minus_index(he, nk)
            if spinful:
                s = np.kron(np.eye(norb), _SY)
                hole = -(s @ np.conj(hm) @ s)
            else:
                hole = -np.conj(hm)
            he = he.reshape(self.K, M, M)
            hole = hole.reshape(self.K, M, M)
            scale = max(1.0, float(np.max(np.abs(he))))
            trs = float(np.max(np.abs(hole + he))) <= 1e-10 * scale
        self.uniform_delta = bool(np.all(dvec == dvec[0]))
        self.band = trs and self.uniform_delta
        self.delta0 = float(dvec[0])
        if self.band:
            if M == 1:
                self.eps = he[:, 0, 0].real.reshape(self.K, 1).copy()
                self.vec: np.ndarray | None = None
            else:
                self.eps, self.vec = _eigh_small(he)
            self.normal_eps = self.eps
            self.poles = np.sqrt(self.eps ** 2 + self.delta0 ** 2)          # (K, M), > 0
        else:
            assert hole is not None
            bdg = np.zeros((self.K, 2 * M, 2 * M), dtype=complex)
            bdg[:, :M, :M] = he
            bdg[:, M:, M:] = hole
            bdg[:, :M, M:] = np.diag(dvec)
            bdg[:, M:, :M] = np.diag(dvec)
            self.E, self.U = np.linalg.eigh(bdg)                          # (K, 2M), (K, 2M, 2M)
            self.normal_eps = _eigh_small(he, vectors=False)
        self._bins: dict[Hashable, Any] = {}

    # ---- spectral properties
    def spectral_gap(self) -> float:
        """min_k |E_BdG(k)|, meV."""
        if self.band:
            return float(self.poles.min())
        return float(np.abs(self.E).min())

    def n0(self, velocity: np.ndarray, hk: Callable[..., np.ndarray]) -> float:
        """Normal-state DOS per spin per cell at ε = 0 (1/meV) of a 3D mesh: Gaussian smearing σ = max (2π/n)·v.

        (2D substrates take theirs from :func:`_fermi_line_n0`, independent of the mesh.)
        """
        eps = self.normal_eps                                   # (K, M)
        spins = 2.0 if self.spinful else 1.0
        sig = max(float(np.max(2 * np.pi * velocity / np.array(self.nk))), 1e-6)
        return float(np.sum(np.exp(-0.5 * (eps / sig) ** 2)) / (math.sqrt(2 * np.pi) * sig * self.K) / spins)

    # ---- assembling (..., 2, M, 2, M) [τ, (o σ), τ′, (o′ σ′)] into (..., 4norb, 4norb) in (o, τ, σ) order
    def _assemble(self, x: np.ndarray) -> np.ndarray:
        lead = x.shape[:-4]
        no = self.norb
        if self.spinful:
            x6 = x.reshape(lead + (2, no, 2, 2, no, 2))
            nl = len(lead)
            perm = tuple(range(nl)) + tuple(nl + p for p in (1, 0, 2, 4, 3, 5))
            return np.transpose(x6, perm).reshape(lead + (4 * no, 4 * no))
        out = np.zeros(lead + (no, 2, 2, no, 2, 2), dtype=complex)
        nl = len(lead)
        xt = np.transpose(x, tuple(range(nl)) + tuple(nl + p for p in (1, 0, 3, 2)))   # [o, τ, o′, τ′]
        for s in range(2):
            out[..., :, :, s, :, :, s] = xt
        return out.reshape(lead + (4 * no, 4 * no))

    def _band_blocks(self, z: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """(z + Δτ_x)⊗A + τ_z⊗B with A, B (E, nd, M, M) → (E, nd, 4norb, 4norb)."""
        E, nd, M = A.shape[0], A.shape[1], self.M
        x = np.zeros((E, nd, 2, M, 2, M), dtype=complex)
        zz = z[:, None, None, None]
        x[:, :, 0, :, 0, :] = zz * A + B
        x[:, :, 1, :, 1, :] = zz * A - B
        x[:, :, 0, :, 1, :] = self.delta0 * A
        x[:, :, 1, :, 0, :] = self.delta0 * A
        return self._assemble(x)

    def _general_blocks(self, G: np.ndarray) -> np.ndarray:
        """Full BdG blocks (E, nd, 2M, 2M) in (τ, (o σ)) order → (E, nd, 4norb, 4norb)."""
        E, nd, M = G.shape[0], G.shape[1], self.M
        return self._assemble(G.reshape(E, nd, 2, M, 2, M))

    # ---- residue weights for a set of displacements
    def _phases(self, disps: np.ndarray, sl: slice) -> np.ndarray:
        """e^{ik·d}/K for the k-points in ``sl``: (Kc, nd)."""
        if not np.any(disps):
            n = len(range(self.K)[sl])
            return np.full((n, disps.shape[0]), 1.0 / self.K, dtype=complex)
        idx = np.unravel_index(np.arange(self.K)[sl], self.nk)
        ph = np.zeros((idx[0].size, disps.shape[0]))
        for ax in range(self.dim):
            ph = ph + (2.0 * np.pi / self.nk[ax]) * idx[ax][:, None] * disps[None, :, ax]
        return np.exp(1j * ph) / self.K

    def _weights(self, disps: np.ndarray, sl: slice) -> tuple[np.ndarray, np.ndarray]:
        """(pole energies (Kc·P,), weights (Kc·P, nd·X)) for the k-points in ``sl``.

        band path: poles E_kn = √(ε²+Δ²) and weights [P_n/(2E), ε P_n/(2E)] (A and B parts);
        general path: signed poles E_km and weights U U†.
        """
        ph = self._phases(disps, sl)                            # (Kc, nd)
        nd = disps.shape[0]
        if self.band:
            M = self.M
            pol = self.poles[sl]                                # (Kc, M)
            eps = self.eps[sl]
            if self.vec is None:
                proj = np.ones((pol.shape[0], 1, 1, 1))
            else:
                v = self.vec[sl]
                proj = np.einsum("kin,kjn->knij", v, np.conj(v))        # (Kc, M, M, M)
            wa = ph[:, None, :, None, None] * proj[:, :, None] / (2.0 * pol)[:, :, None, None, None]
            wb = wa * eps[:, :, None, None, None]
            w = np.concatenate([wa.reshape(pol.shape[0], M, nd * M * M), wb.reshape(pol.shape[0], M, nd * M * M)],
                               axis=-1)
            return pol.reshape(-1), w.reshape(pol.shape[0] * M, -1)
        u = self.U[sl]
        D = u.shape[-1]
        q = np.einsum("kam,kbm->kmab", u, np.conj(u))           # (Kc, D, D, D)
        w = ph[:, None, :, None, None] * q[:, :, None]
        return self.E[sl].reshape(-1), w.reshape(u.shape[0] * D, nd * D * D)

    def _chunks(self, per_k: int) -> list[slice]:
        step = max(1, int(4e7 // max(per_k * 16, 1)))
        return [slice(lo, min(lo + step, self.K)) for lo in range(0, self.K, step)]

    def _binned(self, disps: np.ndarray, h: float, reach: float
                ) -> tuple[list[tuple[np.ndarray, np.ndarray, int]], int]:
        """Tent-binned weights: a list of (nodes (J,), weights (J, X), uniform nodes nu) grids (one per pole sign).

        Nodes are uniform with spacing h up to |E| = ``reach`` (beyond every |Re z| asked for, by
        30 Γ), then grow geometrically, spacing h + q(|E| − reach) with q = 0.02: a pole at a
        distance d from every z then sits in a bin of relative size ≤ q + h/d (error ≲ q²/4).
        """
        key = (disps.tobytes(), h, reach)
        if key in self._bins:
            return self._bins[key]
        q = 0.02
        if self.band:
            specs = [(float(self.poles.min()), float(self.poles.max()), 1.0)]
        else:
            pos, neg = self.E[self.E > 0], -self.E[self.E < 0]
            specs = []
            if pos.size:
                specs.append((float(pos.min()), float(pos.max()), 1.0))
            if neg.size:
                specs.append((float(neg.min()), float(neg.max()), -1.0))
        grids = []
        X = 0
        for lo, hi, sign in specs:
            xu_end = min(max(reach, lo), hi)
            nu = int(math.ceil((xu_end - lo) / h)) + 1
            xu = lo + h * (nu - 1)
            ng = int(math.ceil(math.log1p(q * max(hi - xu, 0.0) / h) / math.log1p(q))) + 2 if hi > xu else 1
            nodes = np.concatenate([lo + h * np.arange(nu),
                                    xu + (h / q) * np.expm1(math.log1p(q) * np.arange(1, ng + 1))])
            J = nodes.size

            def frac(e: np.ndarray, lo: float = lo, xu: float = xu, nu: int = nu) -> np.ndarray:
                p = np.where(e <= xu, (e - lo) / h,
                             (nu - 1) + np.log1p(q * np.maximum(e - xu, 0.0) / h) / math.log1p(q))
                return p

            acc = None
            per_k = (self.M if self.band else 2 * self.M) * disps.shape[0] * (2 * self.M) ** 2 * 2
            for sl in self._chunks(per_k):
                e, w = self._weights(disps, sl)
                X = w.shape[1]
                if acc is None:
                    acc = np.zeros((J, X), dtype=complex)
                if not self.band:
                    sel = (e > 0) if sign > 0 else (e < 0)
                    e, w = np.abs(e[sel]), w[sel]
                j0 = np.clip(np.floor(frac(e)).astype(np.intp), 0, J - 2)
                f = np.clip((e - nodes[j0]) / (nodes[j0 + 1] - nodes[j0]), 0.0, 1.0)
                for col in range(X):
                    wc = w[:, col]
                    a0 = (1.0 - f) * wc
                    a1 = f * wc
                    acc[:, col] += np.bincount(j0, a0.real, J) + np.bincount(j0 + 1, a1.real, J)
                    if np.any(wc.imag):                        # (real for d = 0 and spinless bands)
                        acc[:, col] += 1j * (np.bincount(j0, a0.imag, J) + np.bincount(j0 + 1, a1.imag, J))
            assert acc is not None
            grids.append((sign * nodes, acc, nu))
        out = (grids, X)
        if len(self._bins) > 512:
            self._bins.clear()
        self._bins[key] = out
        return out

    def _binned_set(self, disps: np.ndarray, h: float, reach: float) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """:meth:`_binned` for a set of displacements from per-displacement caches (columns as in :meth:`_weights`)."""
        per = [self._binned(d[None], h, reach)[0] for d in disps]
        out = []
        for g in range(len(per[0])):
            nodes, nu = per[0][g][0], per[0][g][2]
            if self.band:
                m2 = self.M * self.M
                acc = np.concatenate([p[g][1][:, :m2] for p in per] + [p[g][1][:, m2:] for p in per], axis=1)
            else:
                acc = np.concatenate([p[g][1] for p in per], axis=1)
            out.append((nodes, acc, nu))
        return out

    @staticmethod
    def _reach(z: np.ndarray, h: float) -> float:
        """Upper end of the uniform bins for energies z: max|Re z| + 30 max(Im z, 64h), rounded up."""
        r = float(np.max(np.abs(z.real))) + 30.0 * max(float(np.max(z.imag)), 64.0 * h)
        step = 256.0 * h
        return step * math.ceil(r / step)

    def green(self, z: np.ndarray, disps: np.ndarray, h: float, method: str = "auto") -> np.ndarray:
        """G₀(d, z) for displacements ``disps`` (nd, dim) ints: (E, nd, 4norb, 4norb), 1/meV."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        disps = np.asarray(disps, dtype=np.int64).reshape(-1, self.dim)
        nd = disps.shape[0]
        exact = method == "exact" or (method == "auto" and self.K <= EXACT_MAX)
        M = self.M
        if self.band:
            cols = np.zeros((z.size, 2 * nd * M * M), dtype=complex)
            if exact:
                for sl in self._chunks(M * nd * M * M * 2):
                    e, w = _merge_poles(*self._weights(disps, sl))
                    r = 1.0 / (z[:, None] - e[None, :]) - 1.0 / (z[:, None] + e[None, :])
                    cols += r @ w
            else:
                for nodes, acc, nu in self._binned_set(disps, h, self._reach(z, h)):
                    cols += _pole_sum(z, nodes, acc, nu, h, symmetric=True)
            A = cols[:, :nd * M * M].reshape(z.size, nd, M, M)
            B = cols[:, nd * M * M:].reshape(z.size, nd, M, M)
            return self._band_blocks(z, A, B)
        D = 2 * M
        cols = np.zeros((z.size, nd * D * D), dtype=complex)
        if exact:
            for sl in self._chunks(D * nd * D * D):
                e, w = _merge_poles(*self._weights(disps, sl))
                cols += (1.0 / (z[:, None] - e[None, :])) @ w
        else:
            for nodes, acc, nu in self._binned_set(disps, h, self._reach(z, h)):
                cols += _pole_sum(z, nodes, acc, nu, h, symmetric=False)
        return self._general_blocks(cols.reshape(z.size, nd, D, D))

    def green_fft(self, z: np.ndarray, disps: np.ndarray) -> np.ndarray:
        """G₀(d, z) by FFT over the whole mesh (all d at once), gathered at ``disps``: (E, nd, 4norb, 4norb)."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        disps = np.asarray(disps, dtype=np.int64).reshape(-1, self.dim)
        gather = tuple(np.mod(disps[:, ax], self.nk[ax]) for ax in range(self.dim))
        M = self.M
        axes = tuple(range(self.dim))
        out = []
        for zz in z:
            if self.band:
                a = 1.0 / (zz * zz - self.eps ** 2 - self.delta0 ** 2)          # (K, M)
                b = self.eps * a
                if self.vec is None:
                    A = np.fft.ifftn(a.reshape(self.nk), axes=axes)[gather].reshape(-1, 1, 1)
                    B = np.fft.ifftn(b.reshape(self.nk), axes=axes)[gather].reshape(-1, 1, 1)
                else:
                    A = np.empty((disps.shape[0], M, M), dtype=complex)
                    B = np.empty_like(A)
                    for i in range(M):
                        for j in range(M):
                            pij = self.vec[:, i, :] * np.conj(self.vec[:, j, :])     # (K, M)
                            A[:, i, j] = np.fft.ifftn(np.sum(pij * a, axis=1).reshape(self.nk), axes=axes)[gather]
                            B[:, i, j] = np.fft.ifftn(np.sum(pij * b, axis=1).reshape(self.nk), axes=axes)[gather]
                out.append(self._band_blocks(np.array([zz]), A[None], B[None])[0])
            else:
                D = 2 * M
                r = 1.0 / (zz - self.E)                                     # (K, D)
                G = np.empty((disps.shape[0], D, D), dtype=complex)
                for i in range(D):
                    for j in range(D):
                        gk = np.sum(self.U[:, i, :] * np.conj(self.U[:, j, :]) * r, axis=1)
                        G[:, i, j] = np.fft.ifftn(gk.reshape(self.nk), axes=axes)[gather]
                out.append(self._general_blocks(G[None])[0])
        return np.stack(out)


# ----------------------------------------------------------------------------- on-site: the linear triangle method
#: the FFT route's per-energy torus leaves image terms below e^{−DECAY_LOGS} (see Substrate.decay_nk)
DECAY_LOGS = 23.0
#: the sizes a decay torus is rounded up to: 2^m and 1.5·2^m from 32 to 6144
_DECAY_LADDER = np.array(sorted({int(b * 2 ** m) for m in range(5, 13) for b in (1.0, 1.5)}))
#: mesh per direction on which a 2D substrate's N₀ is found (its Fermi-line cells then refined 8×)
N0_MESH = 256
#: most density points (bandwidth / h) the triangle route builds (8 bytes each, a few arrays of them)
TRIANGLE_MAX_GRID = 2 ** 24
#: the triangle route's mesh: (dk²/8)·max|∂²ε/∂k²| below Γ/TRIANGLE_CURVATURE (at least 96 points per direction)
TRIANGLE_CURVATURE = 64.0


def _triangle_nk(hk: Callable[..., np.ndarray], m: int, gamma: float, delta: float) -> int:
    """Mesh per direction for the triangle route: (dk²/8)·max|ε''| < Γ/64 (Γ → Δ/2 at Γ = 0), even, FFT-friendly."""
    n = 64
    ks = _mesh_k((n, n))
    eps = _eigh_small(_eval_hk(hk, ks, m), vectors=False)            # (n, n, m)
    dk = 2.0 * np.pi / n
    curv = 0.0
    for ax in range(2):        # 95th percentile: the cones where sorted bands touch (Rashba) are kinks, not curvature
        d2 = np.abs(np.roll(eps, -1, axis=ax) - 2.0 * eps + np.roll(eps, 1, axis=ax)) / dk ** 2
        curv = max(curv, float(np.percentile(d2, 95.0)))
    g = gamma if gamma > 0 else 0.5 * delta
    need = 2.0 * math.pi * math.sqrt(curv * TRIANGLE_CURVATURE / (8.0 * g)) if curv > 0 else 8.0
    return min(_smooth_even(max(96, int(math.ceil(need)))), 2048)


class _TriangleDOS(_Mesh):
    """On-site G₀(0, z) of a one-orbital band (spinless, or spinful with time reversal) in the infinite-lattice limit.

    The linear triangle method: each mesh cell is cut into two triangles, on which ε_n(k) is
    interpolated linearly; a triangle with sorted corner energies e₁ ≤ e₂ ≤ e₃ and area a (of
    the zone, Σa = 1) has the piecewise-linear density ρ(ξ) = Σ_i c_i (ξ − e_i)₊ with
    c₁ = 2a/((e₂−e₁)(e₃−e₁)), c₂ = −2a/((e₂−e₁)(e₃−e₂)), c₃ = 2a/((e₃−e₁)(e₃−e₂)).  Its exact
    tent averages on a uniform grid ξ_j (spacing h, the pole-bin width) are two cumulative sums
    of the c_i placed at the grid plus local terms (:meth:`_density`), O(triangles + grid) — not
    the criterion's (2π/n)·v < Γ mesh of the torus sum (1280² k-points for Γ = 0.01t) but a mesh
    resolving the band's curvature, (dk²/8)·max|ε''| < Γ/64 (256² there).  Each grid point is
    then a pole pair ±√(ξ_j² + Δ²) of weight ρ_j h·[1, ξ_j]/(2E) (the band path of
    :class:`_Mesh`), binned and summed as there.
    The spin structure is exact: with one orbital and time reversal, P_n(k) + P_n(−k) = σ₀ (for
    2×2 projectors, σ_y P* σ_y = tr P − P), so the on-site weight of each band is σ₀/2.
    ``richardson``: (4ρ(n) − ρ(n/2))/3 with the n/2 mesh the same points' every other one — for the
    bound-state finder's real in-gap axis (Γ = 0), where the error is a clean c·dk²; inside the band
    at Γ > 0 it is not (the Γ-wide features), and the plain density is the better one there.
    Only the on-site displacement d = 0 (N₀ comes from :func:`_fermi_line_n0`, as for every 2D substrate).
    """

    def __init__(self, hk: Callable[..., np.ndarray], n: int, spinful: bool, delta: float, h: float,
                 richardson: bool = False, mesh: tuple[np.ndarray, tuple[bool, bool]] | None = None) -> None:
        self.dim, self.nk, self.norb, self.spinful = 2, (n, n), 1, spinful
        self.M = M = 2 if spinful else 1
        self._bands = _band_function(hk, M)
        eps, sym = mesh if mesh is not None else _band_mesh_symmetry(self._bands, n, M)   # (n, n, M), symmetries
        self.mesh_eps = eps
        self.corners, self.area = self._corners(eps, M, sym)
        self.h = h
        lo, hi = float(self.corners[:, 0].min()), float(self.corners[:, 2].max())
        self.x0 = h * math.floor(lo / h) - 2.0 * h
        J = int(math.ceil((hi - self.x0) / h)) + 4
        if J > TRIANGLE_MAX_GRID:
            raise ValueError(f"the on-site triangle route needs {J:.3g} density points (bandwidth {hi - lo:.3g} meV "
                             f"over h = min(Γ, Δ)/64 = {h:.3g} meV), more than {TRIANGLE_MAX_GRID:.3g}: "
                             "raise gamma or delta")
        self.rho = self._density(J)                                          # (J, M)
        if richardson and n % 2 == 0:     # the in-gap error is c·dk² (once the averages are exact): → O(dk⁴)
            half = object.__new__(_TriangleDOS)
            half.M, half.h, half.x0 = M, h, self.x0
            half.corners, half.area = self._corners(eps[::2, ::2], M, sym)
            self.rho = np.maximum((4.0 * self.rho - half._density(J)) / 3.0, 0.0)
        self.xi = self.x0 + h * np.arange(J)
        keep = np.any(self.rho > 0, axis=1)
        self.xi, self.rho = self.xi[keep], self.rho[keep]
        self.delta0 = float(delta)
        self.band, self.uniform_delta, self.vec = True, True, None
        self.eps = np.repeat(self.xi[:, None], M, axis=1)                    # (K, M): the grid's ξ, per band
        self.poles = np.sqrt(self.eps ** 2 + self.delta0 ** 2)
        self.normal_eps = self.eps
        self.K = self.xi.size
        self._bins: dict[Hashable, Any] = {}

    def green(self, z: np.ndarray, disps: np.ndarray, h: float, method: str = "auto") -> np.ndarray:
        """G₀(0, z) (E, nd, 4, 4) as :meth:`_Mesh.green` (every displacement must be 0).

        The on-site weight of every band is σ₀/M, so two pole sums, S_a = Σ ρh/(2E)(…) and S_b with
        ξρh/(2E), give A = (S_a/M)·σ₀ and B = (S_b/M)·σ₀: two columns, not 2M².
        """
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        zero = np.zeros((1, 2), dtype=np.int64)
        if np.any(disps):
            raise ValueError("the triangle route gives the on-site G₀ only")
        cols = np.zeros((z.size, 2), dtype=complex)
        for nodes, acc, nu in self._binned(zero, h, self._reach(z, h))[0]:
            cols += _pole_sum(z, nodes, acc, nu, h, symmetric=True)
        eye = np.eye(self.M) / self.M
        A = cols[:, 0, None, None, None] * eye                                 # (E, 1, M, M)
        B = cols[:, 1, None, None, None] * eye
        g = self._band_blocks(z, A, B)[:, 0]
        return np.broadcast_to(g[:, None], (g.shape[0], disps.shape[0]) + g.shape[1:]).copy()

    @staticmethod
    def _corners(eps: np.ndarray, M: int, sym: tuple[bool, bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sorted corner energies (M, 3, T) and zone areas (T,) of the triangles of a periodic mesh (n, n, M).

        Each cell (i, j) has the triangles A = (00, 10, 11) and B = (00, 01, 11).  Inversion k → −k
        maps A(i, j) onto B(n−1−i, n−1−j) and the swap k₁ ↔ k₂ maps A(i, j) onto B(j, i), so on a
        mesh where the bands have the symmetry (``sym`` = :func:`_mesh_symmetry`, checked on the
        mesh to 10⁻¹²) the B triangles are the A triangles again: A alone with twice the area; with
        the swap too, A(i, j) and A(n−1−j, n−1−i) are images, and only i + j ≤ n − 1 is kept
        (i + j < n − 1 with twice that area).  The density is the same sum, 2–4× fewer triangles.
        """
        n = eps.shape[0]
        inversion, swap = _mesh_symmetry(eps) if sym is None else sym
        e10 = np.roll(eps, -1, axis=0)
        e01 = np.roll(eps, -1, axis=1)
        e11 = np.roll(e10, -1, axis=1)
        a = 1.0 / (2.0 * n * n)
        ij = np.add.outer(np.arange(n), np.arange(n)).ravel()
        keep = np.flatnonzero(ij <= n - 1) if swap else None
        tri, area = [], []
        for b, c in ((e10, e11),) if inversion else ((e10, e11), (e01, e11)):
            lo3 = np.minimum(np.minimum(eps, b), c)                        # min, middle, max without a sort
            hi3 = np.maximum(np.maximum(eps, b), c)
            t3 = np.stack([lo3, eps + b + c - lo3 - hi3, hi3], axis=0).reshape(3, n * n, M)
            tri.append(t3 if keep is None else t3[:, keep])
            if swap:
                area.append(np.where(ij[keep] < n - 1, 4.0 * a, 2.0 * a))
            else:
                area.append(np.full(n * n, 2.0 * a if inversion else a))
        return np.concatenate(tri, axis=1).transpose(2, 0, 1).copy(), np.concatenate(area)   # (M, 3, T): contiguous

    def _coefficients(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per band, the ramps (positions, coefficients) whose sum Σ c (ξ − e)₊ is the band's triangle density.

        Non-degenerate triangles give the three ramps of the class docstring.  Corners closer than
        10⁻³h are merged (their ramp coefficients would grow as 1/(e₂ − e₁) and cancel to
        round-off): e₁ = e₂ is a step of 2a/(e₃ − e₁) at e₂ falling linearly to e₃, e₂ = e₃ a
        linear rise from e₁ ending in a step, e₁ = e₃ a point weight a; a step is spread over one
        grid spacing (two ramps ±S/h at e ∓ h/2), a point over a tent of half-width h (three
        ramps) — each keeps the weight and the first moment exactly.
        """
        coef: list[tuple[np.ndarray, np.ndarray]] | None = getattr(self, "_coef", None)
        if coef is not None:
            return coef
        out: list[tuple[np.ndarray, np.ndarray]] = []
        h, A2 = self.h, 2.0 * self.area
        thr = 1e-3 * h
        for b in range(self.M):
            e1, e2, e3 = self.corners[b, 0], self.corners[b, 1], self.corners[b, 2]
            d21, d31, d32 = e2 - e1, e3 - e1, e3 - e2
            pt = d31 < thr
            lo = (d21 < thr) & ~pt
            hi = (d32 < thr) & ~pt & ~lo
            gen = ~(pt | lo | hi)
            pos: list[np.ndarray] = []
            cf: list[np.ndarray] = []
            with np.errstate(divide="ignore", invalid="ignore"):
                g1, g2, g3, g21, g31, g32 = e1[gen], e2[gen], e3[gen], d21[gen], d31[gen], d32[gen]
                a2 = A2[gen]
                pos += [g1, g2, g3]
                cf += [a2 / (g21 * g31), -a2 / (g21 * g32), a2 / (g31 * g32)]
                el, e3l, s_l = e2[lo], e3[lo], A2[lo] / d31[lo]             # step S at e₂, falling to 0 at e₃
                pos += [el - 0.5 * h, el + 0.5 * h, el, e3l]
                cf += [s_l / h, -s_l / h, -s_l / d32[lo], s_l / d32[lo]]
                eh, e1h, s_h = e2[hi], e1[hi], A2[hi] / d31[hi]              # rising from e₁ to S at e₂, then 0
                pos += [e1h, eh, eh - 0.5 * h, eh + 0.5 * h]
                cf += [s_h / d21[hi], -s_h / d21[hi], -s_h / h, s_h / h]
            ep, wp = e2[pt], 0.5 * A2[pt] / h ** 2                           # weight a as a tent
            pos += [ep - h, ep, ep + h]
            cf += [wp, -2.0 * wp, wp]
            out.append((np.concatenate(pos), np.concatenate(cf)))
        self._coef = out
        return out

    def _density(self, J: int) -> np.ndarray:
        """Tent averages ρ_j = (1/h)∫ρ_n(ξ) Λ((ξ − ξ_j)/h) dξ on the grid ξ_j = x₀ + jh, (J, M).

        A ramp c(ξ − e)₊ with ξ_m ≤ e = ξ_m + fh < ξ_{m+1} averages to c(ξ_j − e) for j ≥ m + 2
        (two cumulative sums of c(1 − f)h at m + 1 and cfh at m + 2), c·h(1 − f + f³/6) at m + 1
        and c·h(1 − f)³/6 at m (local terms).  So Σ_j ρ_j h and Σ_j ξ_j ρ_j h are the band's
        weight and first moment exactly — point values instead would err by O(h) per steep
        triangle (a step between nodes), which does not shrink with the mesh.
        """
        out = np.empty((J, self.M))
        h = self.h
        for b, (e, c) in enumerate(self._coefficients()):
            s = (e - self.x0) / h
            m = np.floor(s).astype(np.intp)                  # ξ_m ≤ e < ξ_{m+1}
            f = s - m
            d2 = np.bincount(m + 1, c * (1.0 - f) * h, J + 2) + np.bincount(m + 2, c * f * h, J + 2)
            loc = np.bincount(m, c * h * (1.0 - f) ** 3 / 6.0, J + 2) + np.bincount(m + 1, c * h * f ** 3 / 6.0, J + 2)
            out[:, b] = (np.cumsum(np.cumsum(d2)) + loc)[:J]
        return np.maximum(out, 0.0)

    def density_at(self, x: float) -> float:
        """Σ_n ρ_n(x) (1/meV per cell), from the ramps."""
        return float(sum(np.sum(c * np.maximum(x - e, 0.0)) for e, c in self._coefficients()))

    def _weights(self, disps: np.ndarray, sl: slice) -> tuple[np.ndarray, np.ndarray]:
        """Poles (Kc·M,) and the two columns [ρh/(2E), ξρh/(2E)] (Kc·M, 2) of :meth:`green` (d = 0 only)."""
        if np.any(disps):
            raise ValueError("the triangle route gives the on-site G₀ only")
        pol = self.poles[sl]                                                  # (Kc, M)
        wa = self.rho[sl] * self.h / (2.0 * pol)
        w = np.stack([wa, wa * self.eps[sl]], axis=-1)                        # (Kc, M, 2)
        return pol.reshape(-1), w.reshape(-1, 2)


# ----------------------------------------------------------------------------- substrate
class Substrate:
    """A superconducting tight-binding lattice: Bloch H(k), s-wave Δ, Dynes Γ and the k-mesh.

    Parameters
    ----------
    kind : {"square", "triangular", "bcc110"}
        Built-in lattice with nearest-neighbour hopping (see :data:`LATTICES`).
    t : float
        Nearest-neighbour hopping, meV (H ∋ −t Σ c†_i c_j).
    mu : float
        Chemical potential, meV (band bottom at −4t on the square lattice).
    delta : float
        s-wave gap Δ > 0, meV (one value for all orbitals; see :meth:`from_hamiltonian`).
    rashba : float
        Nearest-neighbour Rashba t_R, meV.
    gamma : float
        Dynes broadening Γ ≥ 0, meV (inside G₀).
    nk : int or tuple of int or None
        k-mesh per direction; None chooses it from the criterion (module docstring), a given
        mesh that violates it is kept with a ``UserWarning``.
    method : {"auto", "exact", "binned"}
        Few-displacement k-sums: exact, or pole-binned (auto: exact up to :data:`EXACT_MAX` points).

    Attributes
    ----------
    dim, norb, spinful, nk, n0 (N₀ per spin per cell, 1/meV), velocity (meV·rad⁻¹ per direction),
    delta (Δ, meV), gamma, kind.
    """

    is_lattice = True

    def __init__(self, kind: str = "square", t: float = 1.0, mu: float = -1.0, delta: float = 0.2,
                 rashba: float = 0.0, gamma: float = 0.01, nk: int | Sequence[int] | None = None, *,
                 method: str = "auto") -> None:
        if kind not in LATTICES:
            raise ValueError(f"unknown lattice kind {kind!r}; use one of {sorted(LATTICES)} "
                             "or Substrate.from_hamiltonian / from_wannier90")
        t = T_HOP.check(t)
        mu = MU.check(mu)
        tr = T_RASHBA.check(rashba)
        vecs, nn = LATTICES[kind]
        a1, a2 = np.array(vecs[0]), np.array(vecs[1])
        cart = [n1 * a1 + n2 * a2 for n1, n2 in nn]
        units = [c / np.linalg.norm(c) for c in cart]
        spinful = tr != 0.0

        # ±δ pairs: cos(k·δ) is even, sin(k·δ)(σ_xδ̂_y − σ_yδ̂_x) even too: evaluate one of each pair, twice
        pairs: list[tuple[int, int, np.ndarray, float]] = []
        for (n1, n2), u in zip(nn, units, strict=True):
            if (-n1, -n2) in [(p[0], p[1]) for p in pairs]:
                continue
            pairs.append((n1, n2, u, 2.0 if (-n1, -n2) in nn else 1.0))

        def hk(k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
            k1, k2 = np.broadcast_arrays(np.asarray(k1, dtype=float), np.asarray(k2, dtype=float))
            xi = np.full(k1.shape, -mu)
            for n1, n2, _, mult in pairs:
                xi -= (mult * t) * np.cos(n1 * k1 + n2 * k2)
            if not spinful:
                return xi[..., None, None].astype(complex)
            out = np.zeros(k1.shape + (2, 2), dtype=complex)
            out[..., 0, 0] = xi
            out[..., 1, 1] = xi
            for n1, n2, u, mult in pairs:
                s = (mult * tr) * np.sin(n1 * k1 + n2 * k2)
                # σ_x δ̂_y − σ_y δ̂_x = [[0, δ̂_y + iδ̂_x], [δ̂_y − iδ̂_x, 0]]
                out[..., 0, 1] += s * (u[1] + 1j * u[0])
                out[..., 1, 0] += s * (u[1] - 1j * u[0])
            return out

        def bands(k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
            """Closed-form bands (..., M) ascending: ξ ∓ |Σ t_R sin(k·δ)(δ̂_y + iδ̂_x)| (ξ alone without Rashba)."""
            k1, k2 = np.asarray(k1, dtype=float), np.asarray(k2, dtype=float)     # open grids stay cheap

            def phase(n1: int, n2: int) -> np.ndarray:
                return n1 * k1 if n2 == 0 else n2 * k2 if n1 == 0 else n1 * k1 + n2 * k2

            xi = np.full(np.broadcast_shapes(k1.shape, k2.shape), -mu)
            for n1, n2, _, mult in pairs:
                xi = xi - (mult * t) * np.cos(phase(n1, n2))
            if not spinful:
                return xi[..., None]
            b = np.zeros(xi.shape, dtype=complex)
            for n1, n2, u, mult in pairs:
                b = b + (mult * tr) * np.sin(phase(n1, n2)) * (u[1] + 1j * u[0])
            r = np.abs(b)
            return np.stack([xi - r, xi + r], axis=-1)

        hk._built_in = True                    # type: ignore[attr-defined]
        hk._bands = bands                      # type: ignore[attr-defined]
        bands.open_grid = True                 # type: ignore[attr-defined]
        self._init(hk, dim=2, norb=1, spinful=spinful, delta=delta, gamma=gamma, nk=nk, method=method,
                   kind=kind, vectors=np.array([a1, a2]))
        self.t, self.mu, self.rashba = t, mu, tr

    # ---- alternative constructors
    @classmethod
    def from_hamiltonian(cls, hk: Callable[..., np.ndarray], *, norb: int = 1, delta: float | Sequence[float],
                         gamma: float, nk: int | Sequence[int] | None = None, dim: int = 2, spinful: bool = False,
                         vectors: np.ndarray | None = None, method: str = "auto") -> Substrate:
        """A substrate from a vectorised Bloch function ``hk(k1, k2[, k3]) -> (..., M, M)`` in meV.

        M = norb (spinless: spin-degenerate, ⊗σ₀) or 2·norb (``spinful``; index 2·orbital + spin).
        ``delta`` is Δ (meV) for all orbitals or one value per orbital; ``vectors`` the primitive
        vectors (dim, dim) in units of a (default: the unit matrix).
        """
        obj = cls.__new__(cls)
        obj._init(hk, dim=dim, norb=norb, spinful=spinful, delta=delta, gamma=gamma, nk=nk, method=method,
                  kind="custom", vectors=np.eye(dim) if vectors is None else np.asarray(vectors, dtype=float))
        obj.t = obj.mu = obj.rashba = float("nan")
        return obj

    @classmethod
    def from_wannier90(cls, path: str | os.PathLike[str], *, delta: float | Sequence[float], gamma: float,
                       nk: int | Sequence[int] | None = None, fermi_energy: float = 0.0, spinful: bool = False,
                       method: str = "auto") -> Substrate:
        """A substrate from a Wannier90 ``_hr.dat`` file (eV in the file; ``fermi_energy`` in eV is E_F).

        ``spinful``: the Wannier functions are spinors ordered (orbital, spin); otherwise the
        model is spin-degenerate.  2D if every R₃ = 0, else 3D.
        """
        model = _wannier.read_hr(path)
        ef = _v.scalar("fermi_energy", fermi_energy, "eV") * _wannier.EV_TO_MEV
        nw = model.num_wann
        if spinful and nw % 2:
            raise ValueError(f"spinful=True needs an even num_wann (orbital × spin), got {nw}")

        def hk(*k: np.ndarray) -> np.ndarray:
            return model.hk(*k, shift=ef)

        return cls.from_hamiltonian(hk, norb=nw // 2 if spinful else nw, delta=delta, gamma=gamma, nk=nk,
                                    dim=model.dim, spinful=spinful, method=method)

    def _init(self, hk: Callable[..., np.ndarray], *, dim: int, norb: int, spinful: bool,
              delta: float | Sequence[float], gamma: float, nk: int | Sequence[int] | None, method: str,
              kind: str, vectors: np.ndarray) -> None:
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim!r}")
        if int(norb) != norb or norb < 1:
            raise ValueError(f"norb must be a positive integer, got {norb!r}")
        if method not in ("auto", "exact", "binned"):
            raise ValueError(f"method must be 'auto', 'exact' or 'binned', got {method!r}")
        d = np.atleast_1d(np.asarray(delta, dtype=float))
        if d.size == 1:
            d = np.full(int(norb), float(d[0]))
        if d.shape != (norb,) or not np.all(np.isfinite(d)) or np.any(d <= 0):
            raise ValueError(f"delta must be a positive number or one positive value per orbital ({norb}), "
                             f"got {delta!r}")
        self.kind, self.dim, self.norb, self.spinful, self.method = kind, int(dim), int(norb), bool(spinful), method
        self.hk = hk
        self.delta_orbitals = d
        self.delta = float(d.min())
        self.gamma = _v.scalar("gamma", gamma, "meV", minimum=0.0)
        self.vectors = vectors
        m = self.norb * (2 if self.spinful else 1)
        window = max(4.0 * float(d.max()), 20.0 * self.gamma)
        self.velocity, self.bandwidth = _velocities(hk, self.dim, m, window)
        self._window = window
        self._shared: dict[Hashable, Any] = {}
        self._set_mesh(nk)

    # ---- derived
    def _mesh(self, nk: tuple[int, ...] | None = None) -> _Mesh:
        """The k-mesh (the substrate's, or a smaller one of the FFT route's :meth:`decay_nk`, a few kept)."""
        if nk is None or tuple(nk) == self.nk:
            if "mesh" not in self._shared:
                self._shared["mesh"] = _Mesh(self.hk, self.dim, self.nk, self.norb, self.spinful, self.delta_orbitals)
            return self._shared["mesh"]
        small = self._shared.setdefault("decay_meshes", OrderedDict())
        key = tuple(int(n) for n in nk)
        if key not in small:
            small[key] = _Mesh(self.hk, self.dim, key, self.norb, self.spinful, self.delta_orbitals)
            while len(small) > 4:
                small.popitem(last=False)
        small.move_to_end(key)
        return small[key]

    def fft_route(self, z: np.ndarray, displacements: np.ndarray) -> bool:
        """Whether G₀ at these energies and (unique) displacements goes through FFTs of a k-mesh (else the k-sum).

        FFT when the mesh is above the exact-sum size and either there are many displacements (more
        than 64), or — ``nk=None`` — the energies' own tori (:meth:`decay_nk`) cost less than the
        binned k-sum of the criterion's mesh: 3·Σ_E n₁n₂ < displacements × mesh points (a map at a
        few in-gap energies: FFTs of 256²–384² instead of binning 1280² poles per displacement).
        """
        d = np.asarray(displacements, dtype=np.int64).reshape(-1, self.dim)
        K = int(np.prod(self.nk))
        if K <= EXACT_MAX:
            return False
        if d.shape[0] > _FFT_MIN_DISPLACEMENTS:
            return True
        if not self.auto_mesh or not np.any(d):
            return False
        return 3.0 * float(np.sum(np.prod(self.decay_nk(z, d).astype(float), axis=1))) < d.shape[0] * float(K)

    def decay_nk(self, z: np.ndarray, displacements: np.ndarray) -> np.ndarray:
        """The smallest torus per energy whose G₀(d, z) is the infinite lattice's, (E, dim) ints (``nk=None`` only).

        Away from the real axis, or inside the gap, G₀(R, z) decays as e^{−|R_i|/L_i} along a_i with
        L_i = v_i/|Im Ω|, Ω = √(z² − Δ²), v_i the largest |∂ε/∂k_i| near the Fermi level (the
        criterion's velocity): the poles of G(k, z) sit at ξ(k) = ±Ω, Im k_i ≈ Im Ω/v_i.  A torus of
        n_i ≥ |d_i| + 23 L_i puts every image of the displacement d beyond e^{−23} ≈ 10⁻¹⁰ of the
        on-site value, and n_i ≥ 2|d_i| + 2 keeps d within half of it; n is rounded up to 2^m or
        1.5·2^m and never exceeds the criterion's mesh (which every |Re Ω| beyond the velocity window
        and every real energy above the gap get).  For a map at a YSR energy: 256² instead of 1280².
        """
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        far = np.max(np.abs(np.asarray(displacements, dtype=np.int64).reshape(-1, self.dim)), axis=0)
        om = np.sqrt(z * z - self.delta ** 2)
        im = np.abs(om.imag)
        full = np.broadcast_to(np.array(self.nk), (z.size, self.dim))
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.maximum(far[None, :] + DECAY_LOGS * self.velocity[None, :] / im[:, None] + 4.0,
                              2.0 * far[None, :] + 2.0)
        ok = (im > 0) & (np.abs(om.real) <= self._window) & np.all(np.isfinite(need), axis=1)
        idx = np.searchsorted(_DECAY_LADDER, np.where(np.isfinite(need), need, np.inf))
        rounded = np.where(idx < _DECAY_LADDER.size, _DECAY_LADDER[np.minimum(idx, _DECAY_LADDER.size - 1)],
                           np.iinfo(np.int64).max)
        return np.where(ok[:, None], np.minimum(rounded, full), full).astype(np.int64)

    def _band_mesh(self, n: int) -> tuple[np.ndarray, tuple[bool, bool]]:
        """A 2D substrate's bands on the n × n mesh and their symmetries (N₀ and the triangle route share it)."""
        key = ("band_mesh", n)
        if key not in self._shared:
            M = self.norb * (2 if self.spinful else 1)
            self._shared[key] = _band_mesh_symmetry(_band_function(self.hk, M), n, M)
        return self._shared[key]

    def _triangles(self) -> _TriangleDOS:
        """The triangle route's on-site DOS for this Γ's bin width (its mesh chosen once, from the substrate's Γ)."""
        h = self.bin_width
        key = ("triangles", h, self.gamma == 0)
        if key not in self._shared:
            n = self._shared.setdefault("triangle_nk", _triangle_nk(self.hk, 2 if self.spinful else 1, self.gamma,
                                                                      self.delta))
            self._shared[key] = _TriangleDOS(self.hk, n, self.spinful, self.delta, h, richardson=self.gamma == 0,
                                             mesh=self._band_mesh(n))
        return self._shared[key]

    @property
    def triangle_nk(self) -> int | None:
        """Mesh per direction of the on-site linear-triangle route, or None when this substrate does not take it."""
        return self._triangles().nk[0] if self.triangles else None

    @property
    def n0(self) -> float:
        """Normal-state DOS per spin per unit cell at E_F = 0, 1/meV (the g = G/πN₀ normalisation)."""
        if "n0" not in self._shared:
            if self.dim == 2:         # the infinite lattice's N₀ whatever the mesh: refined Fermi-line triangles
                eps, sym = self._band_mesh(N0_MESH)
                n0 = _fermi_line_n0(eps, _band_function(self.hk, eps.shape[-1]), self.spinful, sym=sym)
            else:
                n0 = self._mesh().n0(self.velocity, self.hk)
            if not n0 > 0:
                raise ValueError("the normal state has no Fermi surface at E_F = 0 (N₀ = 0): move mu into a band")
            self._shared["n0"] = n0
        return float(self._shared["n0"])

    @property
    def bin_width(self) -> float:
        """Pole-bin width h of the binned k-sum, meV: min(Γ, Δ)/64, or Δ/256 at Γ = 0."""
        return min(self.gamma, self.delta) / 64.0 if self.gamma > 0 else self.delta / 256.0

    def _set_mesh(self, nk: int | Sequence[int] | None) -> None:
        """Choose (nk=None: from the criterion (2π/n)·v < Γ) or check the k-mesh, warn if it is too coarse, and
        start fresh caches."""
        need = required_nk(self.velocity.tolist(), self.gamma, self.delta)
        cap = 2048 if self.dim == 2 else 64
        if nk is None:
            chosen = tuple(min(_smooth_even(n), cap) for n in need)
            if any(n > cap for n in need):
                tri = (self.dim == 2 and self.norb == 1 and getattr(self.hk, "_built_in", False)
                       and self.method == "auto")
                what = "maps and several impurities are" if tri else "results are"
                onsite = ("; a single impurity's on-site spectrum and YSR energies are (linear triangles, no torus)"
                          if tri else "")
                warnings.warn(f"the k-mesh criterion (2π/n)·v < Γ asks for n = {need}, above the cap {cap}: using "
                              f"{chosen}; {what} not converged for Γ = {self.gamma:g} meV (raise gamma){onsite}",
                              UserWarning, stacklevel=4)
        else:
            raw = tuple(np.atleast_1d(np.asarray(nk)).tolist())
            if len(raw) == 1:
                raw = raw * self.dim
            if len(raw) != self.dim or any(int(n) != n or n < 2 for n in raw):
                raise ValueError(f"nk must be an integer ≥ 2 or {self.dim} of them, got {nk!r}")
            chosen = tuple(int(n) for n in raw)
            g = self.gamma if self.gamma > 0 else 0.5 * self.delta
            bad = [(n, 2 * math.pi / n * v) for n, v in zip(chosen, self.velocity, strict=True)
                   if 2 * math.pi / n * v > g]
            if bad:
                warnings.warn(f"k-mesh nk = {chosen} is too coarse for the broadening: k-spacing × band velocity = "
                              f"{max(b[1] for b in bad):.3g} meV > {'Γ' if self.gamma > 0 else 'Δ/2'} = {g:.3g} meV "
                              f"(band velocity {np.round(self.velocity, 4).tolist()} meV/rad); the torus sum is "
                              f"then not the infinite lattice's G₀; use nk ≥ {need} or nk=None",
                              UserWarning, stacklevel=4)
        self.nk = chosen
        self.auto_mesh = nk is None
        self._shared = {"token": object()}
        # on-site quantities of a one-orbital built-in lattice on the criterion's (large) mesh: the triangle route
        self.triangles = (nk is None and self.dim == 2 and self.norb == 1 and getattr(self.hk, "_built_in", False)
                          and int(np.prod(chosen)) > EXACT_MAX and self.method == "auto")

    def with_mesh(self, nk: int | Sequence[int] | None) -> Substrate:
        """The same lattice and Γ on another k-mesh (``nk`` as in the constructor), with its own caches but
        this one's N₀ (an infinite-lattice value, the same whatever the mesh)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._set_mesh(nk)
        if "n0" in self._shared:
            new._shared["n0"] = self._shared["n0"]
        return new

    def with_gamma(self, gamma: float) -> Substrate:
        """The same lattice (sharing its k-mesh and caches) with Dynes broadening ``gamma`` (meV)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.gamma = _v.scalar("gamma", gamma, "meV", minimum=0.0)
        return new

    def cartesian(self, sites: np.ndarray) -> np.ndarray:
        """Positions of integer sites (P, dim) in units of the lattice constant, (P, dim)."""
        return np.asarray(sites, dtype=float) @ self.vectors

    def green(self, z: np.ndarray, displacements: np.ndarray, *, fft: bool = False) -> np.ndarray:
        """G₀(d, z) of the clean lattice, (len(z), nd, 4norb, 4norb), 1/meV (orbital-major, 4×4 Nambu blocks).

        ``z`` complex energies (meV), ``displacements`` (nd, dim) integer d = R_row − R_col.
        ``fft``: through FFTs (all displacements at once per energy: of each energy's own torus,
        :meth:`decay_nk`, when ``nk=None``, else of the mesh) instead of the direct k-sum.  The last
        result is kept and returned again (read-only) for the same energies and displacements.
        """
        d = np.asarray(displacements, dtype=np.int64).reshape(-1, self.dim)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        key = (z.tobytes(), d.tobytes(), bool(fft), self.bin_width, self.gamma == 0)   # (with_gamma shares the memo)
        last = self._shared.get("last_green")
        if last is not None and last[0] == key:          # one LDOS asks for the same G₀ three times
            return last[1]
        if self.triangles and not fft and not np.any(d):
            g = self._triangles().green(z, d, self.bin_width, "binned")
        elif fft and self.auto_mesh:          # per energy, the smallest torus that is the infinite lattice
            sizes = self.decay_nk(z, d)
            uniq, inv = np.unique(sizes, axis=0, return_inverse=True)
            g = np.empty((z.size, d.shape[0], 4 * self.norb, 4 * self.norb), dtype=complex)
            for u, nk in enumerate(uniq):
                sel = np.flatnonzero(inv.ravel() == u)
                g[sel] = self._mesh(tuple(int(n) for n in nk)).green_fft(z[sel], d)
        elif fft:
            g = self._mesh().green_fft(z, d)
        else:
            g = self._mesh().green(z, d, self.bin_width, self.method)
        g.setflags(write=False)
        self._shared["last_green"] = (key, g) if g.nbytes <= 2 ** 26 else None
        return g

    def __repr__(self) -> str:
        return (f"lattice.Substrate(kind={self.kind!r}, dim={self.dim}, norb={self.norb}, spinful={self.spinful}, "
                f"delta={self.delta:g}, gamma={self.gamma:g}, nk={self.nk})")


# ----------------------------------------------------------------------------- impurities
@dataclass(frozen=True)
class Channel:
    """On-site impurity terms on one orbital: V = potential·τ_z + exchange·n̂·σ, both in meV.

    The dimensionless T-matrix vertex is α = πN₀·exchange, β = πN₀·potential (module docstring).
    """

    orbital: int = 0
    exchange: float = 0.0
    potential: float = 0.0

    def __post_init__(self) -> None:
        if int(self.orbital) != self.orbital or self.orbital < 0:
            raise ValueError(f"orbital must be a non-negative integer, got {self.orbital!r}")
        EXCHANGE.check(self.exchange)
        POTENTIAL.check(self.potential)


@dataclass(frozen=True)
class Impurity:
    """A classical spin on lattice site ``site`` (integer (n₁, n₂) or (n₁, n₂, n₃)) along ``spin``."""

    site: tuple[int, ...] = (0, 0)
    spin: tuple[float, float, float] = (0.0, 0.0, 1.0)
    channels: Sequence[Channel] = field(default_factory=lambda: [Channel(0, 1.0, 0.0)])

    def __post_init__(self) -> None:
        raw = np.asarray(self.site, dtype=float).ravel()
        if raw.size not in (2, 3) or not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
            raise ValueError(f"an impurity sits on a lattice site: site must be 2 or 3 integers, got {self.site!r}")
        nambu.unit_vector(self.spin, "spin")
        object.__setattr__(self, "site", tuple(int(x) for x in raw))
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels or not all(isinstance(c, Channel) for c in self.channels):
            raise ValueError("channels must be a non-empty sequence of lattice.Channel")


def _site_array(sub: Substrate, sites: np.ndarray, what: str) -> np.ndarray:
    s = np.asarray(sites, dtype=float)
    if s.ndim == 1:
        s = s.reshape(1, -1)
    if s.shape[-1] == 3 and sub.dim == 2:
        if np.any(s[:, 2] != 0):
            raise ValueError(f"{what} on a 2D lattice must have a zero third coordinate")
        s = s[:, :2]
    if s.shape[-1] != sub.dim:
        raise ValueError(f"{what} must be integer lattice coordinates with {sub.dim} columns, got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(np.abs(s - np.round(s)) > 1e-9):
        raise ValueError(f"{what} must be integer lattice coordinates (sites), got a point off the lattice")
    return np.round(s).astype(np.int64)


def _check_span(sub: Substrate, disps: np.ndarray, what: str) -> None:
    half = np.array(sub.nk) // 2
    if np.any(np.abs(disps) >= half[None, :]):
        raise ValueError(f"{what} are farther apart than half the k-mesh torus nk/2 = {tuple(half)} sites: "
                         "raise nk (their G₀ would wrap around the torus)")


# ----------------------------------------------------------------------------- propagators
class LatticePropagators(PropagatorSet):
    """:class:`PropagatorSet` of a lattice :class:`Substrate`: channels are (site, orbital) pairs.

    Block (c, d) of 𝒢 is G₀(R_c − R_d)[o_c, o_d]/(πN₀) (4×4), on-site blocks included (the
    lattice's local G₀ keeps its real part, which renormalises the couplings).  Tip positions
    are lattice sites; the LDOS at a site sums the ``tip_orbitals`` (default: all).
    """

    substrate: Substrate  # type: ignore[assignment]

    def __init__(self, substrate: Substrate, impurities: Sequence[Impurity],
                 tip_orbitals: Sequence[int] | None = None) -> None:
        if not getattr(substrate, "is_lattice", False):
            raise ValueError("LatticePropagators needs a lattice.Substrate")
        if not impurities:
            raise ValueError("at least one impurity is needed")
        self.substrate = substrate
        pi_n0 = math.pi * substrate.n0
        self.sites = []
        self.orbitals: list[int] = []
        self.index = []
        pos = []
        for i, imp in enumerate(impurities):
            if not isinstance(imp, Impurity):
                raise ValueError(f"expected lattice.Impurity objects, got {type(imp).__name__}")
            r = _site_array(substrate, np.array(imp.site), "impurity site")[0]
            merged: dict[int, list[float]] = {}
            for ch in imp.channels:
                if ch.orbital >= substrate.norb:
                    raise ValueError(f"impurity {i}: orbital {ch.orbital} does not exist (norb = {substrate.norb})")
                acc = merged.setdefault(ch.orbital, [0.0, 0.0])
                acc[0] += ch.exchange
                acc[1] += ch.potential
            chans = [(f"orbital {o}", pi_n0 * ex, pi_n0 * pot) for o, (ex, pot) in merged.items()]
            xyz = np.zeros(3)
            xyz[:substrate.dim] = r
            s = np.asarray(imp.spin, dtype=float)
            self.sites.append(Site(xyz, s / np.linalg.norm(s), chans))
            for o in merged:
                self.index.append((i, f"orbital {o}"))
                self.orbitals.append(o)
            pos.append(r)
        self.positions = np.array(pos, dtype=np.int64)                    # (S, dim)
        d = self.positions[:, None, :] - self.positions[None, :, :]
        if len(pos) > 1:
            off = ~np.eye(len(pos), dtype=bool)
            if np.any(np.all(d[off] == 0, axis=-1)):
                raise ValueError("two impurities sit on the same lattice site (merge their channels instead)")
            _check_span(substrate, d[off], "impurities")
        self.n = 4 * len(self.index)
        if tip_orbitals is None:
            self.tip_orbitals: tuple[int, ...] = tuple(range(substrate.norb))
        else:
            self.tip_orbitals = tuple(int(o) for o in tip_orbitals)
            if not self.tip_orbitals or any(o < 0 or o >= substrate.norb for o in self.tip_orbitals):
                raise ValueError(f"tip_orbitals must be orbitals in 0…{substrate.norb - 1}, got {tip_orbitals!r}")
        self._pi_n0 = pi_n0

    @property
    def key(self) -> Hashable:
        return (type(self), self.substrate._shared["token"], self.substrate.gamma, self.positions.tobytes(),
                tuple(self.orbitals), tuple(len(s.channels) for s in self.sites), self.tip_orbitals)

    def _site_of_channel(self) -> np.ndarray:
        return np.array([self.positions[i] for i, _ in self.index], dtype=np.int64)

    def _g(self, z: np.ndarray, disps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dimensionless g₀ at the unique displacements: (unique (u, dim), g (E, u, 4norb, 4norb))."""
        uniq, inv = np.unique(disps.reshape(-1, self.substrate.dim), axis=0, return_inverse=True)
        g = self.substrate.green(z, uniq, fft=self.substrate.fft_route(z, uniq)) / self._pi_n0
        return inv.ravel(), g

    def channel_matrix(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        R = self._site_of_channel()
        C = len(self.index)
        disps = (R[:, None, :] - R[None, :, :]).reshape(-1, self.substrate.dim)
        inv, g = self._g(z, disps)
        out = np.zeros((z.size, self.n, self.n), dtype=complex)
        for c in range(C):
            oc = self.orbitals[c]
            for d in range(C):
                od = self.orbitals[d]
                out[:, 4 * c:4 * c + 4, 4 * d:4 * d + 4] = g[:, inv[c * C + d], 4 * oc:4 * oc + 4, 4 * od:4 * od + 4]
        return out

    def local_green(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        g = self.substrate.green(z, np.zeros((1, self.substrate.dim), dtype=np.int64))[:, 0] / self._pi_n0
        return np.sum([g[:, 4 * o:4 * o + 4, 4 * o:4 * o + 4] for o in self.tip_orbitals], axis=0)

    def tip_sites(self, points: np.ndarray) -> np.ndarray:
        """Integer tip sites (P, dim) from (P, 2) or (P, 3) points, or ValueError for a point off the lattice."""
        return _site_array(self.substrate, points, "tip positions")

    def _phi(self, points: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Φ (P, E, T, 4, n) from every channel to the tip orbitals, Φ̄ (P, E, T, n, 4) back."""
        tips = self.tip_sites(points)
        R = self._site_of_channel()
        C = len(self.index)
        d1 = tips[:, None, :] - R[None, :, :]                    # tip ← channel
        _check_span(self.substrate, d1.reshape(-1, self.substrate.dim), "tip positions and impurities")
        inv, g = self._g(z, np.concatenate([d1.reshape(-1, self.substrate.dim),
                                            (-d1).reshape(-1, self.substrate.dim)]))
        P, E, T = tips.shape[0], z.size, len(self.tip_orbitals)
        i1 = inv[:P * C].reshape(P, C)
        i2 = inv[P * C:].reshape(P, C)
        phi = np.zeros((P, E, T, 4, self.n), dtype=complex)
        phib = np.zeros((P, E, T, self.n, 4), dtype=complex)
        gm = np.moveaxis(g, 1, 0)                                 # (u, E, D, D)
        for c in range(C):
            oc = self.orbitals[c]
            for t, o in enumerate(self.tip_orbitals):
                phi[:, :, t, :, 4 * c:4 * c + 4] = gm[i1[:, c], :, 4 * o:4 * o + 4, 4 * oc:4 * oc + 4]
                phib[:, :, t, 4 * c:4 * c + 4, :] = gm[i2[:, c], :, 4 * oc:4 * oc + 4, 4 * o:4 * o + 4]
        return phi, phib

    def map_propagators(self, points: np.ndarray, z: np.ndarray, tip_radius: float
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Φ (P, E, 4, n), Φ̄ (P, E, n, 4) for a single tip orbital (``tip_radius`` is unused on a lattice)."""
        if len(self.tip_orbitals) != 1:
            raise ValueError("map_propagators needs one tip orbital; the orbital-summed LDOS goes through "
                             "reduced_map (Engine.ldos)")
        phi, phib = self._phi(points, np.atleast_1d(np.asarray(z, dtype=complex)))
        return phi[:, :, 0], phib[:, :, 0]

    def reduced_map(self, points: np.ndarray, z: np.ndarray, tip_radius: float, part: str,
                    tabulate: bool = True, dtype: type = np.complex64) -> tuple[np.ndarray, np.ndarray]:
        """Generic reduction (m = 2n) with the tip orbitals stacked on the K axis: (len(part τ)·T, P, E, 2n)."""
        taus = {"electron": (0,), "hole": (1,), "total": (0, 1)}
        nambu.tau_projector(part)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        phi, phib = self._phi(points, z)
        P, E, T, _, n = phi.shape
        rows, cols = [], []
        for t in range(T):
            for tau in taus[part]:
                rows.append(phi[:, :, t].reshape(P, E, 2, 2, n)[:, :, tau].reshape(P, E, 2 * n))
                cols.append(np.swapaxes(phib[:, :, t].reshape(P, E, n, 2, 2)[..., tau, :], -1, -2).reshape(P, E, 2 * n))
        return np.stack(rows).astype(dtype), np.stack(cols).astype(dtype)


# ----------------------------------------------------------------------------- engine and functions
class Engine(_engine.Engine):
    """:class:`gapscope.kernels.ysr.Engine` on a lattice: the same caches, LDOS, sample DOS and maps.

    Points are integer lattice sites (P, 2) (or (P, 3) in 3D); ``tip_radius`` and the other
    geometry keywords are accepted and unused.  ``tip_orbitals`` selects the orbitals whose LDOS
    a tip sums (default: all).
    """

    def __init__(self, substrate: Substrate, impurities: Sequence[Impurity], *,
                 tip_orbitals: Sequence[int] | None = None, cache_mb: float = 512.0) -> None:
        self._tip_orbitals = tip_orbitals
        super().__init__(substrate, impurities, cache_mb=cache_mb)   # type: ignore[arg-type]

    def _set(self, substrate: Any, impurities: Sequence[Any]) -> None:
        self.substrate = substrate
        self.impurities = list(impurities)
        self.prop = LatticePropagators(substrate, impurities, tip_orbitals=self._tip_orbitals)
        self.key = self.prop.key

    def map_cost(self, n_points: int, n_energies: int, *, extent: float = 0.0, part: str = "electron",
                 **geometry: Any) -> tuple[float, float]:
        """(bytes of the map's rows and columns, FFTs of the k-mesh) for a map of ``n_points`` sites."""
        prop = cast(LatticePropagators, self.prop)
        n_tau = (2 if part == "total" else 1) * len(prop.tip_orbitals)
        rows = 2.0 * n_tau * n_points * n_energies * 2 * prop.n * 8.0
        mesh = prop.substrate._mesh()
        return rows + 4.0 * mesh.K * 16.0, float(n_energies * (2 * mesh.M) ** 2)


def ldos(substrate: Substrate, impurities: Sequence[Impurity], sites: np.ndarray, energies: np.ndarray, *,
         part: str = "electron", spin_axis: Sequence[float] | None = None,
         tip_orbitals: Sequence[int] | None = None) -> np.ndarray:
    """LDOS at lattice ``sites`` (P, dim) and ``energies`` (meV), (P, E); normalised to ≈ 1 in the normal state.

    ρ(r, ω) = −½ Im Tr[(P_part ⊗ S) g(r, r; ω + iΓ)] summed over ``tip_orbitals``, as
    :meth:`gapscope.kernels.ysr.Engine.ldos` (a fresh :class:`Engine`).
    """
    return Engine(substrate, impurities, tip_orbitals=tip_orbitals, cache_mb=64.0).ldos(
        sites, energies, part=part, spin_axis=spin_axis)


def energies(substrate: Substrate, impurities: Sequence[Impurity], *, signed: bool = False,
             n_scan: int = 1201) -> np.ndarray:
    """YSR energies (meV): ascending positive in-gap energies, each repeated by its multiplicity.

    The eigen-branch method of :func:`gapscope.kernels.ysr.energies` (sign changes of the sorted
    eigenvalues of v⁻¹ − 𝒢(ω), refined by Brent's method) at Γ = 0 on the substrate's k-mesh.
    ``signed``: all roots in (−Δ, Δ) instead (the BdG pairs ±E).
    """
    sub = substrate.with_gamma(0.0)
    prop = LatticePropagators(sub, impurities)
    roots = np.array(_tmatrix._roots(prop, n_scan=n_scan))
    if signed:
        return roots
    tol = 1e-9 * sub.delta
    pos = roots[roots > tol]
    zeros = int(np.sum(np.abs(roots) <= tol))
    return np.sort(np.concatenate([np.zeros((zeros + 1) // 2), pos]))


def residue_maps(substrate: Substrate, impurities: Sequence[Impurity], sites: np.ndarray, *,
                 part: str = "electron", tip_orbitals: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spectral weight W(r) of each YSR state on lattice ``sites`` (the state's weight map), Γ = 0.

    The lattice form of :func:`gapscope.kernels.ysr.residue_maps`: returns (E, W) with E the signed
    roots in (−Δ, Δ) (meV, ascending, as :func:`energies` with ``signed=True``) and W of shape
    (n_sites, n_roots), 1/meV: ρ_part(r, ω) ≃ Σ W δ(ω − E) near each root (spin-summed, summed
    over ``tip_orbitals``).  W = (π/2) Re Σ Φ̄ R Φ with R the residue of t = (v⁻¹ − 𝒢)⁻¹ at the
    root, R = N (N†A′N)⁻¹ N† (N the null space of A = v⁻¹ − 𝒢, A′ = dA/dω); degenerate roots
    share their weight equally.  On a torus (the k-mesh) W is Σ_{orbital, e↑, e↓}|u_n(r)|²/(2N₀)
    of the BdG eigenstate(s) at E.  With Dynes Γ > 0 a peak of the LDOS has height ≈ W/(πΓ).
    """
    nambu.tau_projector(part)
    sub = substrate.with_gamma(0.0)
    prop = LatticePropagators(sub, impurities, tip_orbitals=tip_orbitals)
    pts = prop.tip_sites(sites)
    return _tmatrix.state_weights(prop, pts, 0.0, part, np.array(_tmatrix._roots(prop)))
