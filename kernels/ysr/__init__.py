"""Yu-Shiba-Rusinov states of classical spins on an s-wave superconductor (T-matrix).

Modules: :mod:`.model` (substrate, channels, impurities, closed forms), :mod:`.propagators`
(the :class:`PropagatorSet` interface and the continuum band), :mod:`.rashba` (the 2D band with
Rashba spin–orbit coupling), :mod:`.geometry` (Nb(110) sites, spin textures), :mod:`.tmatrix` (vertex,
t-matrix, energies, residues), :mod:`.engine` (cached LDOS, sample DOS and maps).  The Pauli
algebra is :mod:`gapscope.kernels.nambu`.

Conventions
-----------
Basis
    Nambu spinor Ψ = (c↑, c↓, c↓†, −c↑†).  4×4 matrices are kron(τ, σ) with index order
    [e↑, e↓, h1, h2]; τ acts on particle/hole, σ is the physical spin in both blocks (the
    −c↑† makes the spin operator τ₀⊗σ/2).  Clean BdG Hamiltonian ξ_k τ_z + Δ τ_x, Δ > 0 real.
Units
    Energies meV, lengths nm, k_F in 1/nm, ħv_F in meV·nm; α, β, g, t dimensionless.
Band
    Parabolic, k_F and ħv_F; E_F = ħv_F k_F/2 ≫ Δ.  Normal-state DOS per spin
    N₀ = k_F/(2πħv_F) in 2D, k_F²/(2π²ħv_F) in 3D.  YSR decay length ξ = ħv_F/Δ, which is
    π times the BCS coherence length ξ₀ = ħv_F/(πΔ); maps ring with period π/k_F = λ_F/2.
Impurities
    A site is at (x, y) — z = 0 — or (x, y, z) (3D band).  Channel μ (orbital shape) at site i:
    V = K_μ τ_z + (J_μ S/2) n̂_i·σ (J > 0 antiferromagnetic).  Dimensionless couplings
    α = πN₀JS/2 and β = πN₀K; the vertex is v = β τ_z + α n̂·σ.
    :func:`physical_to_dimensionless` / :func:`dimensionless_to_physical` convert (JS/2, K in
    meV·nm^dim).  Channel shapes are real harmonics c(θ) normalised to
    ⟨c²⟩ = 1 (2D; in 2D dz2 ≡ s and px, py ≡ dxz, dyz in-plane) or real spherical harmonics with
    mean 1 of Y² over the sphere (3D: px, py are p orbitals, l = 1; the d shapes l = 2).
Green's functions
    g = G/(πN₀).  On site g₀ = −(z + Δτ_x)/Ω with Ω = √(Δ² − z²) (principal root; on the real
    axis outside the gap −i sgn(ω)√(ω² − Δ²)), i.e. retarded.  Between points the
    parabolic-band propagator (Hankel functions; see :mod:`.propagators`): exact for s (m = 0)
    channels; for m ≠ 0 its Fermi-surface (pole) part, a model that grows as (k_F d)^−|m|
    near the site.  Map propagators are evaluated at ρ = √(d² + r_o²) with the orbital radius
    r_o (``orbital_radius``; the historical ``tip_radius``), in 3D with the tip at height
    ``tip_height``.  Between sites in 3D, channels of any shape couple through the plane-wave
    expansion Σ_L (2L + 1) i^L P_L (the same on-shell radial functions).
    t = (1 − v𝒢)⁻¹ v = (v⁻¹ − 𝒢)⁻¹ in channel space;  g(r, r) = g₀ + Φ(r) t Φ̄(r).
Rashba (2D only, :mod:`.rashba`)
    ``Substrate(rashba=α_R)`` (meV·nm) adds α_R(k_y σ_x − k_x σ_y) to the band, τ_z ⊗ it in Nambu
    space (time-reversal even).  Helicity bands ξ_λ = ξ_k + λα_R k, k_so = α_R k_F/ħv_F,
    k_± = √(k_F² + k_so²) ∓ k_so, N_λ/N₀ = k_λ/√(k_F² + k_so²).  Between s channels
    g₀(r) = Σ_λ ½ [f^λ₀ σ₀ + iλ f^λ₁ (σ_x r̂_y − σ_y r̂_x)] (exact); orbital channels couple through
    K_n = Σ_λ ½ [Γ^λ_n ⊗ σ₀ + λΓ^λ_{n+1} ⊗ (−iσ₋) + λΓ^λ_{n−1} ⊗ (iσ₊)], σ_± = (σ_x ± iσ_y)/2, and on
    site the λ-odd part (k_so/√(k_F² + k_so²))(z + Δτ_x)/Ω couples m ↔ m ± 1 with a spin flip.
    :func:`.propagators.make_propagators` picks :class:`~.rashba.RashbaPropagators` for α_R ≠ 0.
    Nb(110) geometries, spin textures and α_R = 2t_R a: :mod:`.geometry`.
Dynes broadening
    z = ω + iΓ inside every g₀ (channel matrix and map propagators), not added afterwards:
    the bulk DOS is then exactly the Dynes DOS Re[z/√(z² − Δ²)], and the T-matrix sees the
    broadened substrate.  YSR energies and residues are those of the clean system (Γ = 0).
LDOS
    ρ_part(r, ω) = −½ Im Tr[P g(r, r; ω + iΓ)], P = P_part ⊗ S with P_e = (1 + τ_z)/2
    (what a normal-metal tip measures), P_h = (1 − τ_z)/2, or 1 ("total"), and S = σ₀
    (spin-summed) or (1 + m̂·σ)/2 (spin along m̂).  Normalisation: the spin-summed electron
    LDOS is 1 in the normal state (Δ → 0, far from impurities); "total" is 2 and each spin
    half.  Identities: ρ_h(ω) = ρ_e(−ω), ρ_{h,m̂}(−ω) = ρ_{e,−m̂}(ω), ρ_{m̂} + ρ_{−m̂} = ρ.
Bound states
    One s-channel spin: E₀ = Δ(1 − α² + β²)/√((1 − α² + β²)² + 4α²) (:func:`single_energy`),
    with the quantum phase transition at α_c = √(1 + β²) (:func:`critical_alpha`), where E₀
    changes sign.  In general the zeros of det(v⁻¹ − 𝒢(ω)) in (−Δ, Δ) (:func:`energies`).
    Residues: ρ ≃ Σ W(r) δ(ω − E) (:func:`residue_maps`); on site for one s-channel
    W(±E₀) = πΔα(1 + (α ± β)²)/D³, D = √((1 − α² + β²)² + 4α²) (electron part).

References: H. Shiba, "Classical spins in superconductors", Prog. Theor. Phys. 40, 435 (1968),
doi:10.1143/PTP.40.435; A. V. Balatsky, I. Vekhter, J.-X. Zhu, "Impurity-induced states in
conventional and unconventional superconductors", Rev. Mod. Phys. 78, 373 (2006),
doi:10.1103/RevModPhys.78.373; R. C. Dynes, V. Narayanamurti, J. P. Garno, "Direct measurement
of quasiparticle-lifetime broadening in a strong-coupled superconductor", Phys. Rev. Lett. 41,
1509 (1978), doi:10.1103/PhysRevLett.41.1509.  More detail: ``docs/ysr-conventions.md``.
"""

import numpy as np

from . import engine as engine
from . import fitmodels as fitmodels  # noqa: E402,I001  (registers the topic's fit models)
from . import geometry as geometry
from . import model as model
from . import propagators as propagators
from . import rashba as rashba
from . import tmatrix as tmatrix
from .engine import Engine, ldos
from .model import (
    ALPHA,
    BETA,
    DELTA,
    GAMMA,
    HBAR_VF,
    KF,
    ORBITAL_RADIUS,
    RASHBA,
    SHAPES,
    SHAPES_3D,
    TIP_HEIGHT,
    TIP_RADIUS,
    Channel,
    Impurity,
    Substrate,
    critical_alpha,
    dimensionless_to_physical,
    physical_to_dimensionless,
    single_energy,
    tip_geometry,
)
from .propagators import ContinuumPropagators, PropagatorSet
from .propagators import make_propagators as make_propagators
from .rashba import RashbaPropagators
from .tmatrix import energies, residue_maps
from .tmatrix import solve_t as solve_t

__all__ = ["Substrate", "Channel", "Impurity", "energies", "ldos", "single_energy", "critical_alpha",
           "residue_maps", "physical_to_dimensionless", "dimensionless_to_physical", "SHAPES", "Propagators",
           "Engine", "PropagatorSet", "ContinuumPropagators", "DELTA", "GAMMA", "KF", "HBAR_VF", "ALPHA", "BETA",
           "TIP_RADIUS", "TIP_HEIGHT", "ORBITAL_RADIUS", "SHAPES_3D", "tip_geometry", "fitmodels",
           "RASHBA", "geometry", "rashba", "RashbaPropagators"]


class Propagators(ContinuumPropagators):
    """:class:`ContinuumPropagators` under its historical name, with the vertex helpers it used to carry.

    ``v()`` and ``vinv()`` are :func:`.tmatrix.v` and :func:`.tmatrix.vinv` of this set.
    """

    def v(self) -> np.ndarray:
        """blockdiag(β τ_z + α n̂·σ) over channels, (n, n)."""
        return tmatrix.v(self)

    def vinv(self) -> np.ndarray:
        """v⁻¹, channel by channel, (n, n)."""
        return tmatrix.vinv(self)
