"""Yu-Shiba-Rusinov states of classical spins on an s-wave superconductor (T-matrix).

Conventions (see shared/physics/ysr-engine.md):

* Nambu basis Ψ = (c↑, c↓, c↓†, −c↑†); 4×4 matrices are kron(τ, σ), index order
  [e↑, e↓, h1, h2]; σ is the physical spin in both blocks.
* Band: k_F (1/nm) and ħv_F (meV·nm), parabolic; N₀ = k_F/(2πħv_F) (2D, per spin) or
  k_F²/(2π²ħv_F) (3D).  Energies meV, lengths nm.
* Impurity channel μ at site i: V = K_μ τ_z + (J_μ S/2) n̂_i·σ; dimensionless
  α = πN₀J S/2 and β = πN₀K; v = β τ_z + α n̂·σ.
* Dimensionless Green's functions g = G/(πN₀); t = (1 − v𝒢)⁻¹ v; g = g₀ + Φ t Φ̄.
* z = ω + iΓ with the Dynes Γ inside g₀ (that is what makes the bulk DOS Dynes).
* LDOS ρ_e(r, ω) = −½ Im Tr[P_e g(r, r; z)], normalised to 1 in the normal state.

Bare propagator (exact for a parabolic band, pole formula), harmonic n, 2D:

    f_n(r, z) = −½ { (z + Δτ_x)/Ω [H⁽¹⁾_n(q₊r) + H⁽²⁾_n(q₋r)] + iτ_z [H⁽¹⁾_n(q₊r) − H⁽²⁾_n(q₋r)] },

Ω = √(Δ² − z²) (principal root), κ² = 2k_FΩ/ħv_F, q± = √(k_F² ± iκ²); 3D uses spherical
Hankel functions h_l with weights q±/k_F.  On site (regularised) g_loc = −(z + Δτ_x)/Ω.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy import special
from scipy.optimize import brentq

from . import _validate as _v

__all__ = ["Substrate", "Channel", "Impurity", "energies", "ldos", "single_energy", "critical_alpha",
           "residue_maps", "physical_to_dimensionless", "dimensionless_to_physical", "SHAPES", "Propagators"]

# ----------------------------------------------------------------------------- matrices
_T0 = np.eye(2, dtype=complex)
_TX = np.array([[0, 1], [1, 0]], dtype=complex)
_TZ = np.array([[1, 0], [0, -1]], dtype=complex)
_SX = _TX
_SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
_SZ = _TZ
_S0 = _T0
_PE = np.kron(np.diag([1.0, 0.0]), _S0)
_PH = np.kron(np.diag([0.0, 1.0]), _S0)

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


def _y3d(shape: str, x: np.ndarray, y: np.ndarray, zc: np.ndarray, r: np.ndarray) -> tuple[int, np.ndarray]:
    """Real 3D harmonic (mean-1 normalised over the sphere) and its degree l."""
    if shape == "s":
        return 0, np.ones_like(r)
    if shape == "dz2":
        return 2, (math.sqrt(5.0) / 2.0) * (3.0 * (zc / r) ** 2 - 1.0)
    if shape in ("dxz", "px"):
        return 2, math.sqrt(15.0) * x * zc / r ** 2
    if shape in ("dyz", "py"):
        return 2, math.sqrt(15.0) * y * zc / r ** 2
    if shape == "dx2-y2":
        return 2, (math.sqrt(15.0) / 2.0) * (x * x - y * y) / r ** 2
    if shape == "dxy":
        return 2, math.sqrt(15.0) * x * y / r ** 2
    raise ValueError(f"unknown channel shape {shape!r}")


# ----------------------------------------------------------------------------- model objects
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
        Rashba α_R, meV·nm.  Only 0 is supported until the Rashba engine lands.
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
        _v.scalar("kf", self.kf, "1/nm", minimum=0.0, strict=True)
        _v.scalar("hbar_vf", self.hbar_vf, "meV nm", minimum=0.0, strict=True)
        _v.scalar("delta", self.delta, "meV", minimum=0.0, strict=True)
        _v.scalar("gamma", self.gamma, "meV", minimum=0.0)
        if _v.scalar("rashba", self.rashba, "meV nm") != 0.0:
            raise ValueError("rashba ≠ 0 is not supported yet: the Rashba (spin-orbit) engine comes with a "
                             "later release; use rashba=0.0")
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
        """ξ = ħv_F/Δ, nm."""
        return self.hbar_vf / self.delta

    def with_gamma(self, gamma: float) -> "Substrate":
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
        _v.scalar("alpha", self.alpha)
        _v.scalar("beta", self.beta)


@dataclass(frozen=True)
class Impurity:
    """A classical spin at ``position`` (x, y) nm along ``spin`` with scattering ``channels``."""

    position: tuple[float, float] = (0.0, 0.0)
    spin: tuple[float, float, float] = (0.0, 0.0, 1.0)
    channels: Sequence[Channel] = field(default_factory=lambda: [Channel("s", 0.5, 0.0)])

    def __post_init__(self) -> None:
        pos = tuple(float(_v.scalar("position", p, "nm")) for p in self.position)
        if len(pos) != 2:
            raise ValueError(f"position must be (x, y) in nm, got {self.position!r}")
        s = np.asarray(self.spin, dtype=float)
        if s.shape != (3,) or not np.all(np.isfinite(s)):
            raise ValueError(f"spin must be a finite 3-vector, got {self.spin!r}")
        if np.linalg.norm(s) == 0:
            raise ValueError("spin must not be the zero vector (its direction sets the exchange field)")
        object.__setattr__(self, "position", pos)
        object.__setattr__(self, "channels", tuple(self.channels))

    @property
    def direction(self) -> np.ndarray:
        s = np.asarray(self.spin, dtype=float)
        return s / np.linalg.norm(s)


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


# ----------------------------------------------------------------------------- propagators
def _omega(z: np.ndarray, delta: float) -> np.ndarray:
    """Ω(z) = √(Δ² − z²): principal root for Im z > 0; −i sgn(ω)√(ω² − Δ²) on the real axis outside the gap."""
    z = np.asarray(z, dtype=complex)
    om = np.sqrt(delta * delta - z * z)
    real_out = (z.imag == 0) & (np.abs(z.real) > delta)
    if np.any(real_out):
        w = z.real[real_out]
        om = om.copy()
        om[real_out] = -1j * np.sign(w) * np.sqrt(w * w - delta * delta)
    return om


def _radial(sub: Substrate, n: int, r: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (a, b) of f_n = a·(z + Δτ_x)/Ω + b·τ_z at distances r > 0; broadcasts r with z."""
    om = _omega(z, sub.delta)
    kappa2 = 2.0 * sub.kf * om / sub.hbar_vf
    qp = np.sqrt(sub.kf ** 2 + 1j * kappa2)
    qm = np.sqrt(sub.kf ** 2 - 1j * kappa2)
    if sub.dim == 2:
        z1 = special.hankel1(n, qp * r)
        z2 = special.hankel2(n, qm * r)
    else:
        l = abs(n)
        xp, xm = qp * r, qm * r
        z1 = np.sqrt(np.pi / (2.0 * xp)) * special.hankel1(l + 0.5, xp) * (qp / sub.kf)
        z2 = np.sqrt(np.pi / (2.0 * xm)) * special.hankel2(l + 0.5, xm) * (qm / sub.kf)
    a = -0.5 * (z1 + z2)
    b = -0.5j * (z1 - z2)
    return a, b


def _tau(a: np.ndarray, b: np.ndarray, z: np.ndarray, delta: float) -> np.ndarray:
    """τ-matrices a(z + Δτ_x)/Ω + bτ_z, shape (..., 2, 2)."""
    om = _omega(z, delta)
    az = a * z / om
    ad = a * delta / om
    out = np.empty(np.broadcast(a, b, z).shape + (2, 2), dtype=complex)
    out[..., 0, 0] = az + b
    out[..., 1, 1] = az - b
    out[..., 0, 1] = ad
    out[..., 1, 0] = ad
    return out


def _gloc(z: np.ndarray, delta: float) -> np.ndarray:
    """On-site g_loc = −(z + Δτ_x)/Ω as (..., 2, 2)."""
    om = _omega(z, delta)
    zz = np.asarray(z, dtype=complex)
    return _tau(-np.ones_like(om), np.zeros_like(om), zz, delta)


@dataclass
class _Site:
    position: np.ndarray
    direction: np.ndarray
    channels: list[tuple[str, float, float]]   # (shape, alpha, beta), merged and non-zero


def _sites(sub: Substrate, impurities: Sequence[Impurity]) -> list[_Site]:
    if not impurities:
        raise ValueError("at least one impurity is needed")
    out = []
    for imp in impurities:
        if not isinstance(imp, Impurity):
            raise ValueError(f"expected Impurity objects, got {type(imp).__name__}")
        merged: dict[str, list[float]] = {}
        for ch in imp.channels:
            key = _ALIASES.get(ch.shape, ch.shape)
            if sub.dim == 2 and key == "dz2":
                key = "s"   # identical harmonic in the isotropic 2D model: one channel, couplings add
            acc = merged.setdefault(key, [0.0, 0.0])
            acc[0] += ch.alpha
            acc[1] += ch.beta
        chans = [(k, a, b) for k, (a, b) in merged.items()]   # zero channels kept: stable cache keys
        out.append(_Site(np.asarray(imp.position, float), imp.direction, chans))
    pos = np.array([s.position for s in out])
    for i in range(len(out)):
        for j in range(i):
            d = float(np.linalg.norm(pos[i] - pos[j]))
            if d < 1e-9:
                raise ValueError(f"impurities {j} and {i} sit on top of each other at {tuple(pos[i])} nm")
            if d * sub.kf < 1.0:
                raise ValueError(f"impurities {j} and {i} are {d:.3g} nm apart, closer than 1/k_F = "
                                 f"{1 / sub.kf:.3g} nm where the point-scatterer model breaks down")
    if sub.dim == 3 and len(out) > 1 and any(k != "s" for s in out for k, _, _ in s.channels):
        raise ValueError("3D inter-site coupling is implemented for s channels only")
    return out


def _vmat(site: _Site, alpha: float, beta: float) -> np.ndarray:
    n = site.direction
    spin = n[0] * _SX + n[1] * _SY + n[2] * _SZ
    return beta * np.kron(_TZ, _S0) + alpha * np.kron(_T0, spin)


def _vinv(site: _Site, alpha: float, beta: float) -> np.ndarray:
    """(βτ_z + α n̂·σ)⁻¹ = (βτ_z − α n̂·σ)/(β² − α²); |α| = |β| is nudged by 1e-10."""
    if abs(abs(alpha) - abs(beta)) < 1e-10:
        alpha = alpha + 1e-10 * (1.0 if alpha >= 0 else -1.0)
    n = site.direction
    spin = n[0] * _SX + n[1] * _SY + n[2] * _SZ
    return (beta * np.kron(_TZ, _S0) - alpha * np.kron(_T0, spin)) / (beta * beta - alpha * alpha)


class Propagators:
    """Channel-space propagator 𝒢(z) and map propagators Φ(r, z), Φ̄(r, z) for one geometry.

    Nothing here depends on α, β or the spin directions, so panels cache it and re-solve
    only t(z) = (1 − v𝒢)⁻¹v when an exchange slider moves.
    """

    def __init__(self, substrate: Substrate, impurities: Sequence[Impurity]) -> None:
        self.sub = substrate
        self.sites = _sites(substrate, impurities)
        self.index: list[tuple[int, str]] = [(i, k) for i, s in enumerate(self.sites) for k, _, _ in s.channels]
        self.n = 4 * len(self.index)

    # ---- potential
    def _blockdiag(self, block) -> np.ndarray:
        out = np.zeros((self.n, self.n), dtype=complex)
        c = 0
        for s in self.sites:
            for _, a, b in s.channels:
                out[4 * c:4 * c + 4, 4 * c:4 * c + 4] = block(s, a, b)
                c += 1
        return out

    def v(self) -> np.ndarray:
        """blockdiag(β τ_z + α n̂·σ) over channels."""
        return self._blockdiag(_vmat)

    def vinv(self) -> np.ndarray:
        """v⁻¹, channel by channel."""
        return self._blockdiag(_vinv)

    # ---- channel space
    def channel_matrix(self, z: np.ndarray) -> np.ndarray:
        """𝒢(z), shape (len(z), n, n)."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        out = np.zeros((z.size, self.n, self.n), dtype=complex)
        loc = _gloc(z, self.sub.delta)
        for c, (i, shape_i) in enumerate(self.index):
            for d, (j, shape_j) in enumerate(self.index):
                if i == j:
                    if c == d:
                        out[:, 4 * c:4 * c + 4, 4 * c:4 * c + 4] = _kron_s0(loc)
                    continue
                block = self._intersite(i, shape_i, j, shape_j, z)
                out[:, 4 * c:4 * c + 4, 4 * d:4 * d + 4] = _kron_s0(block)
        return out

    def _intersite(self, i: int, shape_i: str, j: int, shape_j: str, z: np.ndarray) -> np.ndarray:
        d = self.sites[i].position - self.sites[j].position
        r = float(np.hypot(*d))
        if self.sub.dim == 3:
            a, b = _radial(self.sub, 0, r, z)
            return _tau(a, b, z, self.sub.delta)
        mi, ai = SHAPES[shape_i]
        mj, aj = SHAPES[shape_j]
        phi = math.atan2(d[1], d[0])
        acc = np.zeros(z.shape + (2, 2), dtype=complex)
        cache: dict[int, np.ndarray] = {}
        for p, ap in ai.items():
            for q, aq in aj.items():
                nn = p + q
                if nn not in cache:
                    a, b = _radial(self.sub, nn, r, z)
                    cache[nn] = (1j ** nn) * np.exp(1j * nn * phi) * _tau(a, b, z, self.sub.delta)
                acc += ap * aq * cache[nn]
        return (1j ** mi) * ((-1j) ** mj) * acc

    # ---- maps
    def map_propagators(self, points: np.ndarray, z: np.ndarray, tip_radius: float
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Particle rows of Φ (P, E, 2, n) and particle columns of Φ̄ (P, E, n, 2), spin-diagonal
        structure expanded.  Returned as τ-blocks: Φτ (P, E, C, 2, 2) and Φ̄τ (P, E, C, 2, 2)."""
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        C = len(self.index)
        phi_t = np.zeros((pts.shape[0], z.size, C, 2, 2), dtype=complex)
        phib_t = np.zeros_like(phi_t)
        for c, (i, shape) in enumerate(self.index):
            dx = pts[:, 0] - self.sites[i].position[0]
            dy = pts[:, 1] - self.sites[i].position[1]
            phi_t[:, :, c], phib_t[:, :, c] = self._map_channel(shape, dx, dy, z, tip_radius)
        return phi_t, phib_t

    def _map_channel(self, shape: str, dx: np.ndarray, dy: np.ndarray, z: np.ndarray, rc: float,
                     radial=None) -> tuple[np.ndarray, np.ndarray]:
        """τ-blocks of Φ and Φ̄ for one channel, (P, E, 2, 2) each."""
        A, B, Ab, Bb = self._map_coeffs(shape, dx, dy, z, rc, radial)
        zz = z[None, :]
        return _tau(A, B, zz, self.sub.delta), _tau(Ab, Bb, zz, self.sub.delta)

    def _map_coeffs(self, shape: str, dx: np.ndarray, dy: np.ndarray, z: np.ndarray, rc: float,
                    radial=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Without SOC every propagator is A·(z + Δτ_x)/Ω + B·τ_z: return (A, B) of Φ and of Φ̄, (P, E)."""
        sub = self.sub
        d2 = dx * dx + dy * dy
        rho = np.sqrt(d2 + rc * rc)
        onsite = rho == 0.0
        rr = np.where(onsite, 1.0, rho)[:, None]
        zz = z[None, :]
        if radial is None:
            def radial(n, r):
                return _radial(sub, n, r, zz)
        if sub.dim == 3:
            l, y = _y3d(shape, dx, dy, np.full_like(dx, rc), np.where(onsite, 1.0, rho))
            a, b = radial(l, rr)
            A, B = a * y[:, None], b * y[:, None]
            if np.any(onsite):                     # g_loc = −(z + Δτ_x)/Ω for s, 0 otherwise
                A[onsite], B[onsite] = (-1.0 if l == 0 else 0.0), 0.0
            return A, B, A, B
        m, coeffs = SHAPES[shape]
        A = np.zeros((dx.size, z.size), dtype=complex)
        B = np.zeros_like(A)
        Ab = np.zeros_like(A)
        Bb = np.zeros_like(A)
        ex = np.where(onsite, 0.0, dx / np.where(onsite, 1.0, rho))
        ey = np.where(onsite, 0.0, dy / np.where(onsite, 1.0, rho))
        for p, ap in coeffs.items():
            a, b = radial(p, rr)
            k = abs(p)
            # Γ_p(d) = i^p e^{ipφ_d} f_p(|d|), e^{ipφ} → ((x ± iy)/ρ)^|p|;  Γ_p(−d) = (−1)^p Γ_p(d)
            ang = ((1j ** p) * ((ex + 1j * ey) ** k if p >= 0 else (ex - 1j * ey) ** k))[:, None]
            if np.any(onsite):
                ang = np.where(onsite[:, None], 0.0, ang)
                if p == 0:
                    a = np.where(onsite[:, None], -1.0, a)
                    b = np.where(onsite[:, None], 0.0, b)
                    ang = np.where(onsite[:, None], 1.0, ang)
            ga, gb = ang * a, ang * b
            sgn = (-1.0) ** p
            A += ap * ga                               # Φ = (−i)^m Σ a_p Γ_p(r − R)
            B += ap * gb
            Ab += (ap * sgn) * ga                      # Φ̄ = i^m Σ a_p Γ_p(R − r)
            Bb += (ap * sgn) * gb
        ph, phb = (-1j) ** m, 1j ** m
        return ph * A, ph * B, phb * Ab, phb * Bb

    def reduced_map(self, points: np.ndarray, z: np.ndarray, tip_radius: float, part: str,
                    tabulate: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Rows Φ_c′[τ, ·] and columns Φ̄_c[·, τ] for τ in ``part``: arrays (n_τ, P, E, 2C).

        Tr[P Φ t Φ̄] = Σ_τ row_τ · (T̃ col_τ) with T̃ the spin-traced t (see :func:`_spin_traced_t`).
        """
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        rc = float(tip_radius)
        C = len(self.index)
        om = _omega(z, self.sub.delta)
        mz, md = (z / om)[None, :], (self.sub.delta / om)[None, :]
        taus = {"electron": (0,), "hole": (1,), "total": (0, 1)}[part]
        radial_for = self._tabulated_radial(pts, z, rc) if tabulate else (lambda i, sl=None: None)
        # cached in single precision: relative error ~1e-7, half the memory traffic
        rows = np.empty((len(taus), pts.shape[0], z.size, 2 * C), dtype=np.complex64)
        cols = np.empty_like(rows)
        step = max(1, int(2e5 // max(z.size * C, 1)))
        for lo in range(0, pts.shape[0], step):
            sl = slice(lo, lo + step)
            rows[:, sl], cols[:, sl] = self._reduced_chunk(pts[sl], z, rc, taus, mz, md, lambda i: radial_for(i, sl))
        return rows, cols

    def _reduced_chunk(self, pts, z, rc, taus, mz, md, radial_for) -> np.ndarray:
        C = len(self.index)
        # row τ of Φ_c′: τ=e → [A z/Ω + B, AΔ/Ω], τ=h → [AΔ/Ω, A z/Ω − B]; column τ of Φ̄_c likewise
        rows = {t: np.empty((pts.shape[0], z.size, 2 * C), dtype=complex) for t in taus}
        cols = {t: np.empty((pts.shape[0], z.size, 2 * C), dtype=complex) for t in taus}
        for c, (i, shape) in enumerate(self.index):
            dx = pts[:, 0] - self.sites[i].position[0]
            dy = pts[:, 1] - self.sites[i].position[1]
            A, B, Ab, Bb = self._map_coeffs(shape, dx, dy, z, rc, radial_for(i))
            for t in taus:
                sgn = 1.0 if t == 0 else -1.0
                ad, bd = A * md, Ab * md
                if t == 0:
                    rows[t][:, :, 2 * c], rows[t][:, :, 2 * c + 1] = A * mz + B, ad
                    cols[t][:, :, 2 * c], cols[t][:, :, 2 * c + 1] = Ab * mz + Bb, bd
                else:
                    rows[t][:, :, 2 * c], rows[t][:, :, 2 * c + 1] = ad, A * mz + sgn * B
                    cols[t][:, :, 2 * c], cols[t][:, :, 2 * c + 1] = bd, Ab * mz + sgn * Bb
        return np.stack([rows[t] for t in taus]), np.stack([cols[t] for t in taus])

    def _tabulated_radial(self, pts: np.ndarray, z: np.ndarray, rc: float, points_per_wavelength: int = 64):
        """Per site, a radial provider interpolating f_n(ρ) from a table (4-point Lagrange)."""
        rhos = [np.sqrt((pts[:, 0] - s.position[0]) ** 2 + (pts[:, 1] - s.position[1]) ** 2 + rc * rc)
                for s in self.sites]
        allr = np.concatenate(rhos)
        pos = allr[allr > 0]
        if pos.size == 0:
            return lambda i, sl=None: None
        r0, r1 = float(pos.min()), float(pos.max())
        hr = min(2.0 * np.pi / self.sub.kf / points_per_wavelength, 0.125 * r0)
        nr = int(np.ceil((r1 - r0) / hr)) + 4
        if nr > 20000 or nr > 4 * pts.shape[0]:          # a table would cost more than direct evaluation
            return lambda i, sl=None: None
        base = r0 - hr
        grid = np.maximum(base + hr * np.arange(nr), 0.5 * r0)
        table: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def provider(i: int, sl: slice = slice(None)):
            rho = np.where(rhos[i][sl] == 0.0, r0, rhos[i][sl])
            j0 = np.clip(np.floor((rho - base) / hr).astype(np.intp), 1, nr - 3)
            t = (rho - base) / hr - j0
            lag = [(-t * (t - 1) * (t - 2) / 6)[:, None], ((t + 1) * (t - 1) * (t - 2) / 2)[:, None],
                   (-(t + 1) * t * (t - 2) / 2)[:, None], ((t + 1) * t * (t - 1) / 6)[:, None]]

            def radial(n: int, rr: np.ndarray):
                if n not in table:
                    table[n] = _radial(self.sub, n, grid[:, None], z[None, :])
                ta, tb = table[n]
                a = lag[0] * ta[j0 - 1] + lag[1] * ta[j0] + lag[2] * ta[j0 + 1] + lag[3] * ta[j0 + 2]
                b = lag[0] * tb[j0 - 1] + lag[1] * tb[j0] + lag[2] * tb[j0 + 1] + lag[3] * tb[j0 + 2]
                return a, b
            return radial
        return provider


def _kron_s0(t: np.ndarray) -> np.ndarray:
    """(…, 2, 2) τ-matrix ⊗ σ₀ → (…, 4, 4)."""
    out = np.zeros(t.shape[:-2] + (4, 4), dtype=complex)
    out[..., 0::2, 0::2] = t
    out[..., 1::2, 1::2] = t
    return out


# ----------------------------------------------------------------------------- energies
def _hermitian_a(prop: Propagators, w: np.ndarray) -> np.ndarray:
    a = prop.vinv()[None] - prop.channel_matrix(w.astype(complex))
    return 0.5 * (a + np.conj(np.swapaxes(a, -1, -2)))


def _roots(prop: Propagators, n_scan: int = 4001) -> list[float]:
    delta = prop.sub.delta
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
            f = lambda x, b=b: float(np.linalg.eigvalsh(_hermitian_a(prop, np.array([x])))[0, b])
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
    prop = Propagators(sub, impurities)
    if prop.n == 0:
        return np.zeros(0)
    roots = np.array(_roots(prop))
    tol = 1e-9 * sub.delta
    pos = roots[roots > tol]
    zeros = int(np.sum(np.abs(roots) <= tol))
    return np.sort(np.concatenate([np.zeros((zeros + 1) // 2), pos]))


def residue_maps(substrate: Substrate, impurities: Sequence[Impurity], points: np.ndarray, *,
                 tip_radius: float = 0.0, part: str = "electron") -> tuple[np.ndarray, np.ndarray]:
    """Spectral weight W(r) of each YSR state ("wavefunction" maps), Γ = 0.

    Returns (E, W) with E the signed roots in (−Δ, Δ) (meV, ascending) and W of shape
    (n_points, n_roots): ρ_part(r, ω) ≃ Σ W δ(ω − E) near each root, 1/meV.
    """
    sub = substrate.with_gamma(0.0)
    prop = Propagators(sub, impurities)
    roots = np.array(_roots(prop))
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    out = np.zeros((pts.shape[0], roots.size))
    done: set[int] = set()
    proj = _PE if part == "electron" else _PH
    for k, e in enumerate(roots):
        if k in done:
            continue
        group = [j for j in range(roots.size) if abs(roots[j] - e) < 1e-7 * sub.delta]
        done |= set(group)
        a = _hermitian_a(prop, np.array([e]))[0]
        h = 1e-6 * sub.delta
        da = (_hermitian_a(prop, np.array([e + h]))[0] - _hermitian_a(prop, np.array([e - h]))[0]) / (2 * h)
        vals, vecs = np.linalg.eigh(a)
        null = vecs[:, np.argsort(np.abs(vals))[:len(group)]]
        R = null @ np.linalg.inv(null.conj().T @ da @ null) @ null.conj().T
        phi_t, phib_t = prop.map_propagators(pts, np.array([e + 0j]), tip_radius)
        full, fullb = _assemble(phi_t[:, 0], phib_t[:, 0])
        w = 0.5 * np.pi * np.real(np.einsum("pab,bc,pcd,da->p", full, R, fullb, proj))
        for j in group:
            out[:, j] = w / len(group)
    return roots, out


def _assemble(phi_t: np.ndarray, phib_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """τ-blocks (P, C, 2, 2) → Φ (P, 4, 4C) and Φ̄ (P, 4C, 4) with σ₀ spin structure."""
    P, C = phi_t.shape[:2]
    full = np.zeros((P, 4, 4 * C), dtype=complex)
    fullb = np.zeros((P, 4 * C, 4), dtype=complex)
    for c in range(C):
        full[:, :, 4 * c:4 * c + 4] = _kron_s0(phi_t[:, c])
        fullb[:, 4 * c:4 * c + 4, :] = _kron_s0(phib_t[:, c])
    return full, fullb


# ----------------------------------------------------------------------------- LDOS
def _projector(part: str, spin_axis: Sequence[float] | None) -> np.ndarray:
    if part == "electron":
        p = _PE
    elif part == "hole":
        p = _PH
    elif part == "total":
        p = np.eye(4)
    else:
        raise ValueError(f"part must be 'electron', 'hole' or 'total', got {part!r}")
    if spin_axis is None:
        return p.astype(complex)
    m = np.asarray(spin_axis, dtype=float)
    if m.shape != (3,) or not np.all(np.isfinite(m)) or np.linalg.norm(m) == 0:
        raise ValueError("spin_axis must be a non-zero finite 3-vector (or None for spin-summed)")
    m = m / np.linalg.norm(m)
    s = np.kron(_T0, m[0] * _SX + m[1] * _SY + m[2] * _SZ)
    return p @ (0.5 * (np.eye(4) + s))


def solve_t(prop: Propagators, z: np.ndarray, G: np.ndarray | None = None) -> np.ndarray:
    """t(z) = (1 − v𝒢)⁻¹ v, batched over energies: (len(z), n, n)."""
    if G is None:
        G = prop.channel_matrix(z)
    v = prop.v()
    eye = np.eye(prop.n)
    return np.linalg.solve(eye[None] - v[None] @ G, np.broadcast_to(v, G.shape))


def ldos(substrate: Substrate, impurities: Sequence[Impurity], points: np.ndarray, energies: np.ndarray, *,
         part: str = "electron", spin_axis: Sequence[float] | None = None, tip_radius: float = 0.1
         ) -> np.ndarray:
    """Local density of states near the impurities, normalised to 1 in the normal state.

    ρ(r, ω) = −½ Im Tr[P g(r, r; ω + iΓ)],  g = g_loc ⊗ σ₀ + Φ(r) t Φ̄(r),

    P = (1 + τ_z)/2 ("electron", what a normal tip measures), (1 − τ_z)/2 ("hole";
    ρ_h(ω) = ρ_e(−ω)) or 1 ("total"), times (1 + m̂·σ)/2 for ``spin_axis`` m̂.

    Parameters
    ----------
    substrate : Substrate
        Needs Γ > 0 (with Γ = 0 the in-gap LDOS is a sum of δ peaks: use :func:`residue_maps`).
    impurities : sequence of Impurity
    points : array_like (n_points, 2)
        Tip positions, nm.
    energies : array_like (n_energies,)
        Energies ω, meV.
    tip_radius : float
        r_c ≥ 0, nm: propagators to a point at distance d use √(d² + r_c²) (tip/orbital
        size; 3D: tip height).  With r_c = 0 a point exactly on a site gets g_loc.

    Returns
    -------
    ndarray (n_points, n_energies)
    """
    if substrate.gamma <= 0.0:
        raise ValueError("ldos needs substrate.gamma > 0: at Γ = 0 the in-gap LDOS is a sum of δ peaks "
                         "(use ysr.residue_maps for their weights)")
    rc = _v.scalar("tip_radius", tip_radius, "nm", minimum=0.0)
    pts = _v.array("points", points).reshape(-1, 2)
    w = _v.array("energies", energies).ravel()
    prop = Propagators(substrate, impurities)
    proj = _projector(part, spin_axis)
    z = w + 1j * substrate.gamma
    bulk = -0.5 * np.imag(np.einsum("eab,ba->e", _kron_s0(_gloc(z, substrate.delta)), proj))
    out = np.broadcast_to(bulk, (pts.shape[0], w.size)).copy()
    if prop.n == 0:
        return out
    t = solve_t(prop, z)
    step = max(1, 20000 // max(1, w.size))
    for i in range(0, pts.shape[0], step):
        phi_t, phib_t = prop.map_propagators(pts[i:i + step], z, rc)
        out[i:i + step] += _contract(phi_t, phib_t, t, proj)
    return out


def _contract(phi_t: np.ndarray, phib_t: np.ndarray, t: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """−½ Im Tr[P Φ t Φ̄] for τ-blocks Φ (P, E, C, 2, 2), t (E, 4C, 4C)."""
    P, E, C = phi_t.shape[:3]
    full = np.zeros((P, E, 4, 4 * C), dtype=complex)
    fullb = np.zeros((P, E, 4 * C, 4), dtype=complex)
    for c in range(C):
        full[:, :, :, 4 * c:4 * c + 4] = _kron_s0(phi_t[:, :, c])
        fullb[:, :, 4 * c:4 * c + 4, :] = _kron_s0(phib_t[:, :, c])
    left = np.einsum("ab,pebc->peac", proj, full)          # P·Φ
    tmp = np.einsum("peac,ecd->pead", left, t)             # PΦt
    return -0.5 * np.imag(np.einsum("pead,peda->pe", tmp, fullb))


# ----------------------------------------------------------------------------- cached engine
def _spin_matrix(spin_axis: Sequence[float] | None) -> np.ndarray:
    if spin_axis is None:
        return _S0.copy()
    m = np.asarray(spin_axis, dtype=float)
    if m.shape != (3,) or not np.all(np.isfinite(m)) or np.linalg.norm(m) == 0:
        raise ValueError("spin_axis must be a non-zero finite 3-vector (or None for spin-summed)")
    m = m / np.linalg.norm(m)
    return 0.5 * (_S0 + m[0] * _SX + m[1] * _SY + m[2] * _SZ)


def _tau_projector(part: str) -> np.ndarray:
    try:
        return {"electron": np.diag([1.0, 0.0]), "hole": np.diag([0.0, 1.0]), "total": np.eye(2)}[part].astype(complex)
    except KeyError:
        raise ValueError(f"part must be 'electron', 'hole' or 'total', got {part!r}") from None


def _spin_traced_t(t: np.ndarray, spin: np.ndarray) -> np.ndarray:
    """T̃[e, (c' τ2), (c τ1)] = Σ_{s1 s2} t[(c' τ2 s2), (c τ1 s1)] S[s1, s2]."""
    E, n, _ = t.shape
    C2 = n // 2
    t6 = t.reshape(E, C2, 2, C2, 2)                    # (e, c'τ2, s2, cτ1, s1)
    return np.einsum("eaybx,xy->eab", t6, spin)


class Engine:
    """YSR computations with caches for everything a coupling slider does not change.

    The channel propagator 𝒢(z), the map propagators Φ, Φ̄ and their contraction with the
    tip projector depend on the substrate and on positions and channel shapes, not on
    α, β or the spin directions.  :meth:`update` swaps couplings and spins and keeps the
    caches; a J (α) change then costs the small solves t(z) = (1 − v𝒢)⁻¹v and one
    matrix–vector product per map.
    """

    def __init__(self, substrate: Substrate, impurities: Sequence[Impurity], *, cache_mb: float = 512.0) -> None:
        self.cache_bytes = cache_mb * 2 ** 20
        self._set(substrate, impurities)
        self._g: dict = {}
        self._y: dict = {}

    def _set(self, substrate: Substrate, impurities: Sequence[Impurity]) -> None:
        self.substrate = substrate
        self.impurities = list(impurities)
        self.prop = Propagators(substrate, impurities)
        self.key = (substrate, tuple((s.position.tobytes(), tuple(k for k, _, _ in s.channels))
                                     for s in self.prop.sites))

    def update(self, substrate: Substrate, impurities: Sequence[Impurity]) -> "Engine":
        """Take new parameters; keep the caches when only couplings and spins changed."""
        old = self.key
        self._set(substrate, impurities)
        if self.key != old:
            self._g.clear()
            self._y.clear()
        return self

    # ---- pieces
    def channel_matrix(self, z: np.ndarray) -> np.ndarray:
        k = z.tobytes()
        if k not in self._g:
            if len(self._g) > 8:
                self._g.clear()
            self._g[k] = self.prop.channel_matrix(z)
        return self._g[k]

    def t_matrix(self, z: np.ndarray) -> np.ndarray:
        return solve_t(self.prop, z, self.channel_matrix(z))

    def _reduced(self, points: np.ndarray, z: np.ndarray, rc: float, part: str) -> np.ndarray:
        k = (points.tobytes(), z.tobytes(), rc, part)
        if k in self._y:
            return self._y[k]
        _tau_projector(part)
        rows, cols = self.prop.reduced_map(points, z, rc, part, tabulate=points.shape[0] * z.size > 2000)
        if rows.shape[-1] <= 2:   # one channel: keep the 2×2 outer product, contraction is then one matvec
            out = (np.einsum("tpea,tpeb->peab", cols, rows), None)
        else:
            out = (rows, cols)
        size = sum(a.nbytes for a in out if a is not None)
        if size <= self.cache_bytes:
            if sum(a.nbytes for v in self._y.values() for a in v if a is not None) + size > self.cache_bytes:
                self._y.clear()
            self._y[k] = out
        return out

    def _bulk(self, z: np.ndarray, part: str, spin: np.ndarray) -> np.ndarray:
        g = _gloc(z, self.substrate.delta)
        return -0.5 * np.imag(np.einsum("eab,ba->e", g, _tau_projector(part)) * np.trace(spin))

    # ---- results
    def ldos(self, points: np.ndarray, energies: np.ndarray, *, part: str = "electron",
             spin_axis: Sequence[float] | None = None, tip_radius: float = 0.1) -> np.ndarray:
        """As :func:`ldos` (n_points, n_energies), with caching."""
        if self.substrate.gamma <= 0.0:
            raise ValueError("ldos needs substrate.gamma > 0: at Γ = 0 the in-gap LDOS is a sum of δ peaks "
                             "(use ysr.residue_maps for their weights)")
        pts = _v.array("points", points).reshape(-1, 2)
        w = _v.array("energies", energies).ravel()
        rc = _v.scalar("tip_radius", tip_radius, "nm", minimum=0.0)
        spin = _spin_matrix(spin_axis)
        z = w + 1j * self.substrate.gamma
        rows, cols = self._reduced(pts, z, rc, part)
        tt = _spin_traced_t(self.t_matrix(z), spin)
        if cols is None:
            corr = -0.5 * np.imag(np.einsum("peab,eba->pe", rows, tt))
        else:
            corr = -0.5 * np.imag(np.einsum("tpeb,eba,tpea->pe", rows, tt, cols, optimize=True))
        return self._bulk(z, part, spin)[None, :] + corr

    def _radial_shortcut(self, pts: np.ndarray, rc: float) -> tuple[np.ndarray, np.ndarray] | None:
        """For one impurity whose channels are all isotropic (s, dz2) the map depends only on the
        distance: return (radial grid, pixel distances) when that saves work, else None."""
        if len(self.prop.sites) != 1 or rc <= 0.0 or pts.shape[0] < 400:
            return None
        if any(k not in ("s", "dz2") for k, _, _ in self.prop.sites[0].channels):
            return None
        d = np.hypot(pts[:, 0] - self.prop.sites[0].position[0], pts[:, 1] - self.prop.sites[0].position[1])
        h = 2.0 * np.pi / self.substrate.kf / 48.0
        n = int(np.ceil((d.max() - d.min()) / h)) + 5
        if n > pts.shape[0] // 4:
            return None
        grid = max(d.min() - 2 * h, 0.0) + h * np.arange(n)
        return grid, d

    def weighted_map(self, points: np.ndarray, energies: np.ndarray, weights: np.ndarray, *,
                     part: str = "electron", spin_axis: Sequence[float] | None = None,
                     tip_radius: float = 0.1, prune: float = 1e-4) -> np.ndarray:
        """Σ_j w_j ρ(r, E_j) at every point: a dI/dV map when w are tunnelling weights.

        Energies whose |w_j| is below ``prune``·max|w| are skipped.
        """
        if self.substrate.gamma <= 0.0:
            raise ValueError("maps need substrate.gamma > 0 (use ysr.residue_maps at Γ = 0)")
        pts = _v.array("points", points).reshape(-1, 2)
        w = _v.array("weights", weights).ravel()
        e = _v.array("energies", energies).ravel()
        keep = np.abs(w) >= prune * np.abs(w).max() if np.any(w) else np.zeros(w.size, bool)
        if not np.any(keep):
            return np.zeros(pts.shape[0])
        e, w = e[keep], w[keep]
        rc = _v.scalar("tip_radius", tip_radius, "nm", minimum=0.0)
        radial = self._radial_shortcut(pts, rc)
        if radial is not None:             # isotropic single impurity: compute a profile, interpolate
            grid, dist = radial
            prof = self.weighted_map(self.prop.sites[0].position + np.c_[grid, np.zeros_like(grid)], e, w,
                                     part=part, spin_axis=spin_axis, tip_radius=rc, prune=0.0)
            return _lagrange4(grid, prof, dist)
        spin = _spin_matrix(spin_axis)
        z = e + 1j * self.substrate.gamma
        rows, cols = self._reduced(pts, z, rc, part)
        tt = (_spin_traced_t(self.t_matrix(z), spin) * w[:, None, None]).astype(rows.dtype)
        if cols is None:   # one channel: cached outer product, one matrix–vector product
            P = rows.shape[0]
            corr = -0.5 * np.imag(rows.reshape(P, -1) @ np.swapaxes(tt, 1, 2).reshape(-1))
        else:
            n_tau, P, E, n2 = rows.shape
            corr = np.zeros(P)
            step = max(1, int(2e6 // (E * n2)))
            for lo in range(0, P, step):
                tc = np.einsum("eba,tpea->tpeb", tt, cols[:, lo:lo + step])
                corr[lo:lo + step] = -0.5 * np.imag(np.einsum("tpeb,tpeb->p", rows[:, lo:lo + step], tc))
        return float(self._bulk(z, part, spin) @ w) + corr.astype(float)


def _lagrange4(grid: np.ndarray, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """4-point Lagrange interpolation on a uniform grid (clipped to its interior)."""
    h = grid[1] - grid[0]
    j0 = np.clip(np.floor((x - grid[0]) / h).astype(np.intp), 1, grid.size - 3)
    t = (x - grid[0]) / h - j0
    return (-t * (t - 1) * (t - 2) / 6 * values[j0 - 1] + (t + 1) * (t - 1) * (t - 2) / 2 * values[j0]
            - (t + 1) * t * (t - 2) / 2 * values[j0 + 1] + (t + 1) * t * (t - 1) / 6 * values[j0 + 2])
