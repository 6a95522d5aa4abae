"""Model records of the YSR engine: substrate, scattering channels, impurities, and closed forms.

Units: energies meV, lengths nm, k_F 1/nm, ħv_F meV·nm; α, β dimensionless (α = πN₀JS/2,
β = πN₀K).  The conventions are collected in :mod:`gapscope.kernels.ysr`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as _v
from ..specs import Spec

__all__ = ["Substrate", "Channel", "Impurity", "SHAPES", "SHAPES_3D", "Site", "resolve_sites",
           "physical_to_dimensionless", "dimensionless_to_physical", "single_energy", "critical_alpha",
           "tip_geometry", "DELTA", "GAMMA", "KF", "HBAR_VF", "ALPHA", "BETA", "TIP_RADIUS", "TIP_HEIGHT",
           "ORBITAL_RADIUS", "RASHBA"]

# ----------------------------------------------------------------------------- parameters
DELTA = Spec("delta", "Δ", "meV", 1.5, (0.2, 3.0), (0.0, 20.0), 0.01, "substrate gap", open_low=True)
GAMMA = Spec("gamma", "Γ", "meV", 0.0259, (0.0, 0.2), (0.0, 5.0), 0.001,
             "Dynes broadening of the substrate (inside G₀)")
KF = Spec("kf", "k_F", "1/nm", 10.0, (2.0, 30.0), (0.5, 200.0), 0.1, "Fermi wave number")
HBAR_VF = Spec("hbar_vf", "ħv_F", "meV·nm", 179.0, (20.0, 800.0), (5.0, 1e4), 1.0,
               "Fermi velocity × ħ (YSR decay length ħv_F/Δ)")
ALPHA = Spec("alpha", "α", "", 0.7, (0.0, 3.0), (-50.0, 50.0), 0.01, "exchange of a channel, α = πN₀JS/2")
BETA = Spec("beta", "β", "", 0.3, (-2.0, 2.0), (-50.0, 50.0), 0.01, "potential scattering of a channel, β = πN₀K")
TIP_RADIUS = Spec("tip_radius", "r_c", "nm", 0.1, (0.0, 1.0), (0.0, 5.0), 0.01,
                  "historical name: the orbital radius in 2D, the tip height in 3D")
ORBITAL_RADIUS = Spec("orbital_radius", "r_o", "nm", 0.1, (0.0, 1.0), (0.0, 5.0), 0.01,
                      "orbital radius: map propagators at √(d² + r_o²) (sets m ≠ 0 lobes near the adatom)")
RASHBA = Spec("rashba", "α_R", "meV·nm", 0.0, (0.0, 20.0), (-100.0, 100.0), 0.1,
              "Rashba spin–orbit coefficient of the 2D band, H = ξ_k + α_R(k_y σ_x − k_x σ_y)")
TIP_HEIGHT = Spec("tip_height", "h", "nm", 0.3, (0.0, 1.0), (0.0, 5.0), 0.01,
                  "height z of the tip above the impurity plane z = 0 (3D band)")

_R2 = 1.0 / math.sqrt(2.0)
#: shape → (m, {p: a_p}) with c(θ) = Σ_p a_p e^{ipθ} real and ⟨c²⟩ = 1 (2D harmonics)
SHAPES: dict[str, tuple[int, dict[int, complex]]] = {
    "s": (0, {0: 1.0}),
    "dz2": (0, {0: 1.0}),
    "dxz": (1, {1: _R2, -1: _R2}),
    "px": (1, {1: _R2, -1: _R2}),
    "dyz": (1, {1: -1j * _R2, -1: 1j * _R2}),
    "py": (1, {1: -1j * _R2, -1: 1j * _R2}),
    "dx2-y2": (2, {2: _R2, -2: _R2}),
    "dxy": (2, {2: -1j * _R2, -2: 1j * _R2}),
}
_ALIASES = {"px": "dxz", "py": "dyz", "dx2y2": "dx2-y2", "dx2-y2": "dx2-y2"}
_ALIASES_3D = {"dx2y2": "dx2-y2"}
#: 3D shape → degree l of its real spherical harmonic (p orbitals are l = 1, d orbitals l = 2)
SHAPES_3D: dict[str, int] = {"s": 0, "px": 1, "py": 1, "dz2": 2, "dxz": 2, "dyz": 2, "dx2-y2": 2, "dxy": 2}


@dataclass(frozen=True)
class Substrate:
    """Clean s-wave superconductor with a parabolic band.

    Parameters
    ----------
    dim : int
        2 (surface band) or 3 (bulk).
    kf : float
        Fermi wave number k_F, 1/nm.
    hbar_vf : float
        ħv_F, meV·nm.
    delta : float
        Gap Δ > 0, meV.
    gamma : float
        Dynes broadening Γ ≥ 0, meV (enters g₀).
    rashba : float
        Rashba α_R, meV·nm (2D only): H = ξ_k + α_R (k_y σ_x − k_x σ_y), helicity bands
        ξ_λ = ξ_k + λα_R k (:mod:`.rashba`); k_so = α_R k_F/ħv_F.
    """

    dim: int = 2
    kf: float = 10.0
    hbar_vf: float = 179.0
    delta: float = 1.5
    gamma: float = 0.0
    rashba: float = 0.0

    def __post_init__(self) -> None:
        if self.dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {self.dim!r}")
        KF.check(self.kf)
        HBAR_VF.check(self.hbar_vf)
        DELTA.check(self.delta)
        GAMMA.check(self.gamma)
        if RASHBA.check(self.rashba) != 0.0 and self.dim == 3:
            raise ValueError(f"rashba = {self.rashba:g} meV·nm on a 3D band: Rashba spin–orbit coupling is a "
                             "surface (2D) term; use dim=2 or rashba=0.0")
        if self.delta >= 0.5 * self.fermi_energy:
            raise ValueError(f"delta = {self.delta} meV is not ≪ E_F = ħv_F k_F/2 = {self.fermi_energy:g} meV")

    @property
    def fermi_energy(self) -> float:
        """E_F = ħv_F k_F / 2, meV."""
        return 0.5 * self.hbar_vf * self.kf

    @property
    def n0(self) -> float:
        """Normal-state DOS per spin: 1/(meV nm²) in 2D, 1/(meV nm³) in 3D."""
        if self.dim == 2:
            return self.kf / (2.0 * math.pi * self.hbar_vf)
        return self.kf ** 2 / (2.0 * math.pi ** 2 * self.hbar_vf)

    @property
    def coherence_length(self) -> float:
        """YSR decay length ξ = ħv_F/Δ, nm (the decay length of a state deep in the gap).

        This is π times the BCS coherence length ξ₀ = ħv_F/(πΔ) (:attr:`bcs_coherence_length`);
        a state at E decays as e^{−r√(Δ² − E²)/ħv_F}.
        """
        return self.hbar_vf / self.delta

    @property
    def bcs_coherence_length(self) -> float:
        """BCS (Pippard) coherence length ξ₀ = ħv_F/(πΔ), nm."""
        return self.hbar_vf / (math.pi * self.delta)

    @property
    def fermi_wavelength(self) -> float:
        """λ_F = 2π/k_F, nm; maps ring with half of it, π/k_F."""
        return 2.0 * math.pi / self.kf

    def with_gamma(self, gamma: float) -> Substrate:
        """The same substrate with Dynes broadening ``gamma`` (meV)."""
        return Substrate(self.dim, self.kf, self.hbar_vf, self.delta, gamma, self.rashba)


@dataclass(frozen=True)
class Channel:
    """One scattering channel: orbital ``shape`` with α = πN₀JS/2 and β = πN₀K."""

    shape: str = "s"
    alpha: float = 0.0
    beta: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown channel shape {self.shape!r}; use one of {sorted(SHAPES)}")
        ALPHA.check(self.alpha)
        BETA.check(self.beta)


@dataclass(frozen=True)
class Impurity:
    """A classical spin at ``position`` nm along ``spin`` with scattering ``channels``.

    ``position`` is (x, y) — meaning z = 0 — or (x, y, z); a 2D band accepts only z = 0
    (checked where the substrate is known, :func:`resolve_sites`).
    """

    position: tuple[float, ...] = (0.0, 0.0)
    spin: tuple[float, float, float] = (0.0, 0.0, 1.0)
    channels: Sequence[Channel] = field(default_factory=lambda: [Channel("s", 0.5, 0.0)])

    def __post_init__(self) -> None:
        try:
            raw = tuple(self.position)
        except TypeError:
            raise ValueError(f"position must be (x, y) or (x, y, z) in nm, got {self.position!r}") from None
        pos = tuple(float(_v.scalar("position", p, "nm")) for p in raw)
        if len(pos) not in (2, 3):
            raise ValueError(f"position must be (x, y) or (x, y, z) in nm, got {self.position!r}")
        s = np.asarray(self.spin, dtype=float)
        if s.shape != (3,) or not np.all(np.isfinite(s)):
            raise ValueError(f"spin must be a finite 3-vector, got {self.spin!r}")
        if np.linalg.norm(s) == 0:
            raise ValueError("spin must not be the zero vector (its direction sets the exchange field)")
        object.__setattr__(self, "position", pos)
        object.__setattr__(self, "channels", tuple(self.channels))

    @property
    def direction(self) -> np.ndarray:
        """Unit vector n̂ along ``spin``."""
        s = np.asarray(self.spin, dtype=float)
        return s / np.linalg.norm(s)


@dataclass
class Site:
    """One impurity as the solvers see it: position (3,) nm (z = 0 for (x, y)), unit spin direction (3,),
    merged channels.

    ``channels`` is a list of (shape, α, β) with aliases resolved and equal harmonics merged
    (couplings add); channels with α = β = 0 are kept so that cache keys stay stable.
    """

    position: np.ndarray
    direction: np.ndarray
    channels: list[tuple[str, float, float]]


def resolve_sites(substrate: Substrate, impurities: Sequence[Impurity]) -> list[Site]:
    """Validate ``impurities`` and merge their channels into :class:`Site` records.

    In 2D the dz2 harmonic equals s (isotropic band), so the two merge into one s channel, and
    px, py have the in-plane harmonics of dxz, dyz (they merge with them).  In 3D every shape is
    its own real spherical harmonic (px, py are p orbitals, l = 1; :data:`SHAPES_3D`).
    Raises ``ValueError`` for no impurities, non-Impurity entries, z ≠ 0 on a 2D band,
    coincident sites, or sites closer than 1/k_F (where the point-scatterer model breaks down).
    """
    if not impurities:
        raise ValueError("at least one impurity is needed")
    aliases = _ALIASES if substrate.dim == 2 else _ALIASES_3D
    out = []
    for imp in impurities:
        if not isinstance(imp, Impurity):
            raise ValueError(f"expected Impurity objects, got {type(imp).__name__}")
        xyz = np.zeros(3)
        xyz[:len(imp.position)] = imp.position
        if substrate.dim == 2 and xyz[2] != 0.0:
            raise ValueError(f"impurity position z = {xyz[2]:g} nm on a 2D band: a surface band has no third "
                             "dimension; give (x, y) or z = 0, or use dim=3")
        merged: dict[str, list[float]] = {}
        for ch in imp.channels:
            key = aliases.get(ch.shape, ch.shape)
            if substrate.dim == 2 and key == "dz2":
                key = "s"   # identical harmonic in the isotropic 2D model: one channel, couplings add
            acc = merged.setdefault(key, [0.0, 0.0])
            acc[0] += ch.alpha
            acc[1] += ch.beta
        chans = [(k, a, b) for k, (a, b) in merged.items()]   # zero channels kept: stable cache keys
        out.append(Site(xyz, imp.direction, chans))
    pos = np.array([s.position for s in out])
    for i in range(len(out)):
        for j in range(i):
            d = float(np.linalg.norm(pos[i] - pos[j]))
            if d < 1e-9:
                raise ValueError(f"impurities {j} and {i} sit on top of each other at {tuple(pos[i])} nm")
            if d * substrate.kf < 1.0:
                raise ValueError(f"impurities {j} and {i} are {d:.3g} nm apart, closer than 1/k_F = "
                                 f"{1 / substrate.kf:.3g} nm where the point-scatterer model breaks down")
    return out


def tip_geometry(substrate: Substrate, points: np.ndarray, *, tip_radius: float = 0.1,
                 tip_height: float | None = None, orbital_radius: float | None = None
                 ) -> tuple[np.ndarray, float]:
    """Tip positions (P, 3) nm and the map regulariser r_o (nm) from the public keywords.

    Map propagators from a site at R to the tip at r are evaluated at the distance
    ρ = √(|r − R|² + r_o²), with the angular factors of an m ≠ 0 channel (solid harmonics)
    divided by ρ^|m|: exact for s channels where |r − R| ≫ r_o, a model (the adatom orbital's
    radius) within ~r_o of the adatom.

    * 2D band: points (x, y) (or (x, y, 0)); r_o = ``orbital_radius``, else ``tip_radius``
      (its historical name); ``tip_height`` is refused (a surface band has no height).
    * 3D band: the tip at (x, y, h) with h = ``tip_height``, else ``tip_radius`` (the historical
      meaning in 3D); points may also be (x, y, z) with z the height (then ``tip_height`` must be
      None); r_o = ``orbital_radius``, else 0 (the tip height itself keeps the tip off the site).

    Raises ``ValueError`` naming the bad argument.
    """
    rc_legacy = TIP_RADIUS.check(tip_radius)
    pts = _v.array("points", points)
    if pts.ndim == 1:
        pts = pts.reshape(1, -1) if pts.size in (2, 3) else pts.reshape(-1, 2)
    if pts.shape[-1] not in (2, 3):
        raise ValueError(f"points must be (x, y) or (x, y, z) rows in nm, got shape {pts.shape}")
    cols = pts.shape[-1]
    pts = pts.reshape(-1, cols)
    out = np.zeros((pts.shape[0], 3))
    out[:, :cols] = pts
    if substrate.dim == 2:
        if tip_height is not None:
            raise ValueError("tip_height applies to a 3D band: a 2D surface band has no height; regularise "
                             "the map with orbital_radius")
        if cols == 3 and np.any(out[:, 2] != 0.0):
            raise ValueError("points on a 2D band must have z = 0 (a surface band has no third dimension)")
        rc = ORBITAL_RADIUS.check(orbital_radius) if orbital_radius is not None else rc_legacy
        return out, rc
    rc = ORBITAL_RADIUS.check(orbital_radius) if orbital_radius is not None else 0.0
    if cols == 3:
        if tip_height is not None:
            raise ValueError("give the tip height either as the points' z or as tip_height, not both")
        return out, rc
    out[:, 2] = TIP_HEIGHT.check(tip_height) if tip_height is not None else rc_legacy
    return out, rc


def physical_to_dimensionless(substrate: Substrate, *, js_half: float, k: float) -> tuple[float, float]:
    """(α, β) = (πN₀·JS/2, πN₀·K) from JS/2 and K in meV·nm^dim."""
    return math.pi * substrate.n0 * js_half, math.pi * substrate.n0 * k


def dimensionless_to_physical(substrate: Substrate, *, alpha: float, beta: float) -> tuple[float, float]:
    """(JS/2, K) in meV·nm^dim from (α, β)."""
    return alpha / (math.pi * substrate.n0), beta / (math.pi * substrate.n0)


def single_energy(*, alpha: float, beta: float, delta: float) -> float:
    """Signed YSR energy of one s-channel spin: E₀ = Δ(1 − α² + β²)/√((1 − α² + β²)² + 4α²), meV.

    E₀ < 0 past the quantum phase transition α_c = √(1 + β²).
    """
    a2 = alpha * alpha
    num = 1.0 - a2 + beta * beta
    return float(delta * num / math.sqrt(num * num + 4.0 * a2))


def critical_alpha(*, beta: float) -> float:
    """Exchange coupling of the quantum phase transition, α_c = √(1 + β²)."""
    return math.sqrt(1.0 + beta * beta)
