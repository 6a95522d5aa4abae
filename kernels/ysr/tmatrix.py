"""T-matrix of the impurity channels: vertex v, t(z) = (1 − v𝒢)⁻¹v, YSR energies and residues.

The vertex of channel (α, β) at a site with spin direction n̂ is v = β τ_z + α n̂·σ
(:func:`gapscope.kernels.nambu.vertex`); :func:`v` puts these blocks on the diagonal of the
n×n channel space of a :class:`~.propagators.PropagatorSet`.  Bound states are the real
ω ∈ (−Δ, Δ) where the Hermitian A(ω) = v⁻¹ − 𝒢(ω) is singular (Γ = 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import brentq

from .. import nambu
from .model import Impurity, Substrate, tip_geometry
from .propagators import PropagatorSet, make_propagators

__all__ = ["v", "vertex_blocks", "vinv", "solve_t", "energies", "residue_maps"]


def _blockdiag(prop: PropagatorSet, block: Callable[[float, float, np.ndarray], np.ndarray]) -> np.ndarray:
    out = np.zeros((prop.n, prop.n), dtype=complex)
    c = 0
    for s in prop.sites:
        for _, a, b in s.channels:
            out[4 * c:4 * c + 4, 4 * c:4 * c + 4] = block(a, b, s.direction)
            c += 1
    return out


def _vinv_block(alpha: float, beta: float, direction: np.ndarray) -> np.ndarray:
    """(βτ_z + α n̂·σ)⁻¹; |α| = |β| (singular v) is nudged by 1e-10 in α."""
    if abs(abs(alpha) - abs(beta)) < 1e-10:
        alpha = alpha + 1e-10 * (1.0 if alpha >= 0 else -1.0)
    return nambu.vertex_inverse(alpha, beta, direction)


def v(prop: PropagatorSet) -> np.ndarray:
    """blockdiag(β τ_z + α n̂·σ) over the channels of ``prop``, (n, n)."""
    return _from_blocks(vertex_blocks(prop))


def _from_blocks(vb: np.ndarray) -> np.ndarray:
    """The block-diagonal (4C, 4C) matrix of the blocks vb (C, 4, 4)."""
    C = vb.shape[0]
    out = np.zeros((C, 4, C, 4), dtype=complex)
    out[np.arange(C), :, np.arange(C), :] = vb
    return out.reshape(4 * C, 4 * C)


def vertex_blocks(prop: PropagatorSet) -> np.ndarray:
    """The diagonal blocks β τ_z ⊗ σ₀ + α τ₀ ⊗ n̂·σ of :func:`v`, one per channel: (C, 4, 4) (all channels at
    once; equal to :func:`gapscope.kernels.nambu.vertex` per channel)."""
    rows = [(a, b, *s.direction) for s in prop.sites for _, a, b in s.channels]
    if not rows:
        return np.zeros((0, 4, 4), dtype=complex)
    a, b, x, y, z = np.array(rows, dtype=float).T
    norm = np.sqrt(x * x + y * y + z * z)
    x, y, z = x / norm, y / norm, z / norm
    out = np.zeros((a.size, 4, 4), dtype=complex)
    for t, sgn in ((0, 1.0), (1, -1.0)):             # τ = e, h: β τ_z on the diagonal, α n̂·σ in both τ blocks
        o = 2 * t
        out[:, o, o] = sgn * b + a * z
        out[:, o + 1, o + 1] = sgn * b - a * z
        out[:, o, o + 1] = a * (x - 1j * y)
        out[:, o + 1, o] = a * (x + 1j * y)
    return out


def vinv(prop: PropagatorSet) -> np.ndarray:
    """v⁻¹, channel by channel, (n, n) (|α| = |β| nudged, see :func:`_vinv_block`)."""
    return _blockdiag(prop, _vinv_block)


def solve_t(prop: PropagatorSet, z: np.ndarray, G: np.ndarray | None = None) -> np.ndarray:
    """t(z) = (1 − v𝒢)⁻¹ v, batched over energies: (len(z), n, n).  ``G`` is 𝒢(z) if already computed."""
    if G is None:
        G = prop.channel_matrix(z)
    E, n, _ = G.shape
    if n == 0:
        return np.zeros((E, 0, 0), dtype=complex)
    vb = vertex_blocks(prop)
    A = np.matmul(-vb, G.reshape(E, n // 4, 4, n)).reshape(E, n, n)      # v is block-diagonal: 1 − v𝒢 blockwise
    A[:, np.arange(n), np.arange(n)] += 1.0
    return np.linalg.solve(A, np.broadcast_to(_from_blocks(vb), G.shape))


# ----------------------------------------------------------------------------- energies
def _hermitian_a(prop: PropagatorSet, w: np.ndarray) -> np.ndarray:
    """Hermitian part of A(ω) = v⁻¹ − 𝒢(ω) on real in-gap ω, (len(w), n, n)."""
    a = vinv(prop)[None] - prop.channel_matrix(w.astype(complex))
    return 0.5 * (a + np.conj(np.swapaxes(a, -1, -2)))


def _roots(prop: PropagatorSet, n_scan: int = 4001) -> list[float]:
    """All zeros of the eigenvalue branches of A(ω) in (−Δ, Δ), with multiplicity, ascending (meV).

    The branches (sorted eigenvalues) are non-decreasing in ω; a sign change − → + on a
    Chebyshev-like scan is refined by Brent's method to 1e-13 Δ.
    """
    delta = prop.substrate.delta
    theta = np.linspace(0.0, np.pi, n_scan + 2)[1:-1]
    w = -delta * np.cos(theta)
    ev = np.linalg.eigvalsh(_hermitian_a(prop, w))          # (n_scan, n), ascending per ω
    roots = []
    for b in range(ev.shape[1]):
        s = np.sign(ev[:, b])
        idx = np.flatnonzero((s[:-1] < 0) & (s[1:] >= 0))
        for k in idx:
            if ev[k + 1, b] == 0.0:
                roots.append(float(w[k + 1]))
                continue

            def f(x: float, b: int = b) -> float:
                return float(np.linalg.eigvalsh(_hermitian_a(prop, np.array([x])))[0, b])
            roots.append(brentq(f, w[k], w[k + 1], xtol=1e-13 * delta, rtol=1e-14))
    return sorted(roots)


def energies(substrate: Substrate, impurities: Sequence[Impurity]) -> np.ndarray:
    """YSR energies: ascending positive in-gap energies (meV), each repeated by its multiplicity.

    Zeros of det(1 − v𝒢(ω)) in (−Δ, Δ) at Γ = 0, found as the sign changes of the sorted
    eigenvalue branches of the Hermitian A(ω) = v⁻¹ − 𝒢(ω) (each branch is non-decreasing in
    ω), so a degenerate (e.g. AFM-dimer) pair — a double zero of the determinant with no
    sign change — is returned twice.  Γ of the substrate is ignored (energies of the clean
    system).  A state exactly at zero energy (quantum phase transition) is returned as 0.
    """
    sub = substrate.with_gamma(0.0)
    prop = make_propagators(sub, impurities)
    if prop.n == 0:
        return np.zeros(0)
    roots = np.array(_roots(prop))
    tol = 1e-9 * sub.delta
    pos = roots[roots > tol]
    zeros = int(np.sum(np.abs(roots) <= tol))
    return np.sort(np.concatenate([np.zeros((zeros + 1) // 2), pos]))


def residue_maps(substrate: Substrate, impurities: Sequence[Impurity], points: np.ndarray, *,
                 tip_radius: float = 0.0, part: str = "electron", tip_height: float | None = None,
                 orbital_radius: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spectral weight W(r) of each YSR state ("wavefunction" maps), Γ = 0.

    Returns (E, W) with E the signed roots in (−Δ, Δ) (meV, ascending) and W of shape
    (n_points, n_roots): ρ_part(r, ω) ≃ Σ W δ(ω − E) near each root, 1/meV (spin-summed;
    ``part`` "electron", "hole" or "total").  Degenerate roots share their weight equally.
    With Dynes Γ > 0 a peak has height ≈ W/(πΓ).  Points (x, y) or, in 3D, (x, y, z), and the
    geometry keywords as in :meth:`gapscope.kernels.ysr.Engine.ldos` (here ``tip_radius``
    defaults to 0).
    """
    nambu.tau_projector(part)
    pts, rc = tip_geometry(substrate, points, tip_radius=tip_radius, tip_height=tip_height,
                           orbital_radius=orbital_radius)
    sub = substrate.with_gamma(0.0)
    prop = make_propagators(sub, impurities)
    if prop.n == 0:
        return np.zeros(0), np.zeros((pts.shape[0], 0))
    return state_weights(prop, pts, rc, part, np.array(_roots(prop)))


def state_weights(prop: PropagatorSet, pts: np.ndarray, rc: float, part: str,
                  roots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(roots, W) of :func:`residue_maps` for any propagator set ``prop`` (continuum, Rashba or lattice) at
    Γ = 0, given its signed ``roots``: W = (π/2) Re Σ Φ̄ R Φ, R = N (N†A′N)⁻¹ N† the residue of
    t = A⁻¹ at the root (N the null space of A = v⁻¹ − 𝒢, A′ = dA/dω by a central difference);
    degenerate roots share their weight equally."""
    delta = prop.substrate.delta
    out = np.zeros((pts.shape[0], roots.size))
    done: set[int] = set()
    spin = nambu.SIGMA0.copy()
    for k, e in enumerate(roots):
        if k in done:
            continue
        group = [j for j in range(roots.size) if abs(roots[j] - e) < 1e-7 * delta]
        done |= set(group)
        a = _hermitian_a(prop, np.array([e]))[0]
        h = 1e-6 * delta
        da = (_hermitian_a(prop, np.array([e + h]))[0] - _hermitian_a(prop, np.array([e - h]))[0]) / (2 * h)
        vals, vecs = np.linalg.eigh(a)
        null = vecs[:, np.argsort(np.abs(vals))[:len(group)]]
        R = null @ np.linalg.inv(null.conj().T @ da @ null) @ null.conj().T     # residue of A⁻¹ = t
        rows, cols = prop.reduced_map(pts, np.array([e + 0j]), rc, part, tabulate=False, dtype=complex)
        rt = prop.reduce_t(R[None], spin)
        w = 0.5 * np.pi * np.real(np.einsum("kpea,eab,kpeb->p", rows, rt, cols))
        for j in group:
            out[:, j] = w / len(group)
    return roots, out
