"""Nambu ⊗ spin algebra: the 2×2 Pauli matrices and the 4×4 Bogoliubov–de Gennes matrices built from them.

Basis and index order (used by :mod:`gapscope.kernels.ysr`):

* Nambu spinor Ψ = (c↑, c↓, c↓†, −c↑†).  A 4×4 matrix is ``kron(τ, σ)`` with τ acting on
  particle/hole and σ on spin, so the row/column index is 2·(τ index) + (σ index), i.e. the
  order [e↑, e↓, h1, h2] (h1 = c↓†, h2 = −c↑†).
* With the −c↑† sign σ is the physical spin in *both* blocks: the spin operator is τ₀⊗σ/2, a
  potential scatterer is K τ_z⊗σ₀, an s-wave pair potential Δ τ_x⊗σ₀ (real Δ) and a classical
  spin along n̂ is (JS/2) τ₀⊗(n̂·σ).

Everything here is a plain ``numpy`` array (complex128; the constants are read-only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["TAU0", "TAUX", "TAUY", "TAUZ", "SIGMA0", "SIGMAX", "SIGMAY", "SIGMAZ", "PAULI", "P_E", "P_H",
           "kron", "kron_s0", "sigma_dot", "unit_vector", "tau_projector", "spin_projector", "projector",
           "vertex", "vertex_inverse"]


def _const(a: ArrayLike) -> np.ndarray:
    a = np.array(a, dtype=complex)
    a.setflags(write=False)
    return a


#: τ₀, τ_x, τ_y, τ_z: Pauli matrices in particle–hole space.
TAU0 = _const(np.eye(2))
TAUX = _const([[0, 1], [1, 0]])
TAUY = _const([[0, -1j], [1j, 0]])
TAUZ = _const([[1, 0], [0, -1]])
#: σ₀, σ_x, σ_y, σ_z: Pauli matrices in spin space (the same numbers as the τ's).
SIGMA0 = TAU0
SIGMAX = TAUX
SIGMAY = TAUY
SIGMAZ = TAUZ
#: (σ_x, σ_y, σ_z) stacked, shape (3, 2, 2): ``np.tensordot(n, PAULI, 1)`` is n·σ.
PAULI = _const(np.stack([SIGMAX, SIGMAY, SIGMAZ]))

_TAU_PARTS = {"electron": np.diag([1.0, 0.0]), "hole": np.diag([0.0, 1.0]), "total": np.eye(2)}


def kron(tau: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """τ ⊗ σ in the basis order [e↑, e↓, h1, h2] (index 2·τ + σ).

    Parameters
    ----------
    tau, sigma : array_like (..., 2, 2)
        Particle–hole and spin matrices; leading (batch) dimensions broadcast.

    Returns
    -------
    ndarray (..., 4, 4)
        Equal to ``np.kron(tau, sigma)`` for single 2×2 matrices.
    """
    tau = np.asarray(tau)
    sigma = np.asarray(sigma)
    if tau.shape[-2:] != (2, 2) or sigma.shape[-2:] != (2, 2):
        raise ValueError(f"kron needs (..., 2, 2) matrices, got shapes {tau.shape} and {sigma.shape}")
    out = np.einsum("...ab,...st->...asbt", tau, sigma)
    return out.reshape(out.shape[:-4] + (4, 4))


def kron_s0(tau_block: np.ndarray) -> np.ndarray:
    """τ-block ⊗ σ₀ for a batch of particle–hole matrices.

    Parameters
    ----------
    tau_block : array_like (..., 2, 2)
        Spin-independent particle–hole matrices.

    Returns
    -------
    ndarray (..., 4, 4), complex
        ``kron(tau_block, SIGMA0)`` for every batch entry (spin-diagonal, equal blocks).
    """
    t = np.asarray(tau_block)
    out = np.zeros(t.shape[:-2] + (4, 4), dtype=complex)
    out[..., 0::2, 0::2] = t
    out[..., 1::2, 1::2] = t
    return out


def sigma_dot(vector: Sequence[float] | np.ndarray) -> np.ndarray:
    """v·σ = v_x σ_x + v_y σ_y + v_z σ_z (2×2, not normalised).

    Parameters
    ----------
    vector : array_like (3,)
    """
    n = np.asarray(vector, dtype=float)
    if n.shape != (3,):
        raise ValueError(f"sigma_dot needs a 3-vector, got shape {n.shape}")
    return n[0] * SIGMAX + n[1] * SIGMAY + n[2] * SIGMAZ


def unit_vector(vector: Sequence[float] | np.ndarray, name: str = "direction") -> np.ndarray:
    """``vector``/|``vector``| as a float 3-vector, or ``ValueError`` naming ``name``."""
    m = np.asarray(vector, dtype=float)
    if m.shape != (3,) or not np.all(np.isfinite(m)) or np.linalg.norm(m) == 0:
        raise ValueError(f"{name} must be a non-zero finite 3-vector, got {vector!r}")
    return m / np.linalg.norm(m)


def tau_projector(part: str) -> np.ndarray:
    """Particle–hole projector (2×2): (1 + τ_z)/2 for "electron", (1 − τ_z)/2 for "hole", 1 for "total"."""
    try:
        return _TAU_PARTS[part].astype(complex)
    except (KeyError, TypeError):
        raise ValueError(f"part must be 'electron', 'hole' or 'total', got {part!r}") from None


def spin_projector(axis: Sequence[float] | np.ndarray | None) -> np.ndarray:
    """Spin projector (1 + m̂·σ)/2 onto spin along ``axis`` (normalised here); σ₀ for ``None`` (spin-summed).

    Returns a new 2×2 complex array.
    """
    if axis is None:
        return SIGMA0.copy()
    m = np.asarray(axis, dtype=float)
    if m.shape != (3,) or not np.all(np.isfinite(m)) or np.linalg.norm(m) == 0:
        raise ValueError("spin_axis must be a non-zero finite 3-vector (or None for spin-summed)")
    m = m / np.linalg.norm(m)
    return 0.5 * (SIGMA0 + m[0] * SIGMAX + m[1] * SIGMAY + m[2] * SIGMAZ)


#: Electron projector (1 + τ_z)/2 ⊗ σ₀ and hole projector (1 − τ_z)/2 ⊗ σ₀, 4×4.
P_E = _const(kron(tau_projector("electron"), SIGMA0))
P_H = _const(kron(tau_projector("hole"), SIGMA0))


def projector(part: str, spin_axis: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """4×4 tip projector P = P_part ⊗ (1 + m̂·σ)/2 (⊗ σ₀ for ``spin_axis=None``).

    Parameters
    ----------
    part : {"electron", "hole", "total"}
        Particle–hole part, see :func:`tau_projector`.
    spin_axis : array_like (3,) or None
        Spin-resolved along m̂, or spin-summed.
    """
    return kron(tau_projector(part), spin_projector(spin_axis))


def vertex(alpha: float, beta: float, direction: Sequence[float] | np.ndarray) -> np.ndarray:
    """Dimensionless impurity vertex v = β τ_z⊗σ₀ + α τ₀⊗(n̂·σ), 4×4.

    Parameters
    ----------
    alpha : float
        Exchange coupling α = πN₀JS/2.
    beta : float
        Potential coupling β = πN₀K.
    direction : array_like (3,)
        Spin direction n̂ (normalised here).
    """
    n = unit_vector(direction, "direction")
    return beta * np.kron(TAUZ, SIGMA0) + alpha * np.kron(TAU0, sigma_dot(n))


def vertex_inverse(alpha: float, beta: float, direction: Sequence[float] | np.ndarray) -> np.ndarray:
    """v⁻¹ = (β τ_z⊗σ₀ − α τ₀⊗(n̂·σ))/(β² − α²), 4×4 (τ_z⊗σ₀ and τ₀⊗n̂·σ commute and square to 1).

    Raises
    ------
    ValueError
        At β² = α², where v is singular.
    """
    den = beta * beta - alpha * alpha
    if den == 0.0:
        raise ValueError(f"the vertex is singular at |alpha| = |beta| (alpha = {alpha!r}, beta = {beta!r})")
    n = unit_vector(direction, "direction")
    return (beta * np.kron(TAUZ, SIGMA0) - alpha * np.kron(TAU0, sigma_dot(n))) / den
