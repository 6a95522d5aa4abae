"""Independent full-matrix references for the YSR engine (test-only code).

The engine contracts reduced maps (τ-rows of Φ, the spin trace of t, single precision for
maps, a 2×2 outer product for one channel).  Nothing of that is used here: every matrix is
the full 4C×4C (channel ⊗ Nambu ⊗ spin) object built from first definitions with this file's
own Pauli matrices, and the LDOS is the literal −½ Im Tr[P (g₀ + Φ t Φ̄)]:

* v = ⊕_channels (β τ_z⊗σ₀ + α τ₀⊗n̂·σ), t = (1 − v𝒢)⁻¹ v by explicit inversion;
* g₀ = −(z + Δτ_x)/Ω ⊗ σ₀ with Ω = √(Δ² − z²) (Im z > 0, principal root);
* Φ (P, E, 4, 4C) and Φ̄ (P, E, 4C, 4) assembled from the continuum τ-blocks ⊗ σ₀.

Shared with the engine are only the propagator physics — ``ContinuumPropagators.channel_matrix``
and ``map_blocks`` (checked separately against brute-force momentum integrals) — and, for the
residues, the root finder.  Units: meV, nm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gapscope.kernels.ysr import tmatrix
from gapscope.kernels.ysr.model import Impurity, Substrate
from gapscope.kernels.ysr.propagators import ContinuumPropagators

S0 = np.eye(2, dtype=complex)
SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)
T0, TX, TZ = S0, SX, SZ


def spin_dot(m: Sequence[float]) -> np.ndarray:
    return m[0] * SX + m[1] * SY + m[2] * SZ


def kron_s0(blocks: np.ndarray) -> np.ndarray:
    """(…, 2, 2) → (…, 4, 4) with np.kron(block, σ₀) per entry (an explicit loop over the batch)."""
    flat = blocks.reshape(-1, 2, 2)
    out = np.array([np.kron(b, S0) for b in flat])
    return out.reshape(blocks.shape[:-2] + (4, 4))


def assemble(phi_t: np.ndarray, phib_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """τ-blocks (P, E, C, 2, 2) → full Φ (P, E, 4, 4C) and Φ̄ (P, E, 4C, 4), spin structure σ₀."""
    P, E, C = phi_t.shape[:3]
    full = np.zeros((P, E, 4, 4 * C), dtype=complex)
    fullb = np.zeros((P, E, 4 * C, 4), dtype=complex)
    for c in range(C):
        full[:, :, :, 4 * c:4 * c + 4] = kron_s0(phi_t[:, :, c])
        fullb[:, :, 4 * c:4 * c + 4, :] = kron_s0(phib_t[:, :, c])
    return full, fullb


def vertex_matrix(prop: ContinuumPropagators, inverse: bool = False) -> np.ndarray:
    """blockdiag over channels of v = βτ_z⊗σ₀ + α τ₀⊗n̂·σ (or of v⁻¹ by numerical inversion)."""
    blocks = []
    for site in prop.sites:
        n = site.direction / np.linalg.norm(site.direction)
        for _, a, b in site.channels:
            blk = b * np.kron(TZ, S0) + a * np.kron(T0, spin_dot(n))
            blocks.append(np.linalg.inv(blk) if inverse else blk)
    out = np.zeros((prop.n, prop.n), dtype=complex)
    for c, blk in enumerate(blocks):
        out[4 * c:4 * c + 4, 4 * c:4 * c + 4] = blk
    return out


def t_matrix(prop: ContinuumPropagators, z: np.ndarray) -> np.ndarray:
    """t = (1 − v𝒢)⁻¹ v, (E, n, n), by explicit inversion."""
    G = prop.channel_matrix(z)
    v = vertex_matrix(prop)
    return np.array([np.linalg.inv(np.eye(prop.n) - v @ g) @ v for g in G])


def projector(part: str, spin_axis: Sequence[float] | None) -> np.ndarray:
    """P_part ⊗ S as a 4×4 matrix, written out from the definitions."""
    tau = {"electron": 0.5 * (T0 + TZ), "hole": 0.5 * (T0 - TZ), "total": T0}[part]
    if spin_axis is None:
        s = S0
    else:
        m = np.asarray(spin_axis, float)
        s = 0.5 * (S0 + spin_dot(m / np.linalg.norm(m)))
    return np.kron(tau, s)


def g_local(z: np.ndarray, delta: float) -> np.ndarray:
    """−(z + Δτ_x)/Ω ⊗ σ₀, (E, 4, 4), for Im z > 0."""
    om = np.sqrt(delta ** 2 - z.astype(complex) ** 2)
    return np.array([np.kron(-(zz * T0 + delta * TX) / o, S0) for zz, o in zip(z, om, strict=True)])


def ldos(substrate: Substrate, impurities: Sequence[Impurity], points: np.ndarray, energies: np.ndarray, *,
         part: str = "electron", spin_axis: Sequence[float] | None = None, tip_radius: float = 0.1) -> np.ndarray:
    """−½ Im Tr[P (g₀ + Φ t Φ̄)] with full matrices, (P, E)."""
    prop = ContinuumPropagators(substrate, impurities)
    pts = np.asarray(points, float).reshape(-1, 2)
    z = np.asarray(energies, float).ravel() + 1j * substrate.gamma
    proj = projector(part, spin_axis)
    bulk = -0.5 * np.imag(np.einsum("ab,eba->e", proj, g_local(z, substrate.delta)))
    phi, phib = assemble(*prop.map_blocks(pts, z, tip_radius))
    t = t_matrix(prop, z)
    corr = -0.5 * np.imag(np.einsum("ab,pebc,ecd,peda->pe", proj, phi, t, phib))
    return bulk[None, :] + corr


def residue_maps(substrate: Substrate, impurities: Sequence[Impurity], points: np.ndarray, *,
                 tip_radius: float = 0.0, part: str = "electron") -> tuple[np.ndarray, np.ndarray]:
    """Residues W = ½π Re Tr[P Φ R Φ̄] at the roots, R the residue of (v⁻¹ − 𝒢(ω))⁻¹ (full matrices)."""
    sub = substrate.with_gamma(0.0)
    prop = ContinuumPropagators(sub, impurities)
    roots = np.array(tmatrix._roots(prop))
    pts = np.asarray(points, float).reshape(-1, 2)
    proj = projector(part, None)
    vinv = vertex_matrix(prop, inverse=True)

    def a_herm(w: float) -> np.ndarray:
        a = vinv - prop.channel_matrix(np.array([w + 0j]))[0]
        return 0.5 * (a + a.conj().T)

    out = np.zeros((pts.shape[0], roots.size))
    for k, e in enumerate(roots):
        group = np.flatnonzero(np.abs(roots - e) < 1e-7 * sub.delta)
        h = 1e-6 * sub.delta
        da = (a_herm(e + h) - a_herm(e - h)) / (2 * h)
        vals, vecs = np.linalg.eigh(a_herm(e))
        null = vecs[:, np.argsort(np.abs(vals))[:group.size]]
        R = null @ np.linalg.inv(null.conj().T @ da @ null) @ null.conj().T
        phi, phib = assemble(*prop.map_blocks(pts, np.array([e + 0j]), tip_radius))
        out[:, k] = 0.5 * np.pi * np.real(np.einsum("ab,pbc,cd,pda->p", proj, phi[:, 0], R, phib[:, 0])) / group.size
    return roots, out
