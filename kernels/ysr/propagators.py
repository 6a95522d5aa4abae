"""Bare propagators of the clean substrate between impurity channels and to the tip.

:class:`PropagatorSet` is the interface the T-matrix solver (:mod:`.tmatrix`) and the
:class:`~gapscope.kernels.ysr.engine.Engine` use; :class:`ContinuumPropagators` implements it
for the parabolic 2D/3D band.  Everything is dimensionless, g = G/(πN₀), in the 4×4 Nambu ⊗
spin basis of :mod:`gapscope.kernels.nambu` ([e↑, e↓, h1, h2], matrices kron(τ, σ)); a
channel-space matrix has n = 4C rows, channel c owning rows 4c … 4c + 3.

Continuum band, harmonic n, 2D (exact for a parabolic band, pole formula):

    f_n(r, z) = −½ { (z + Δτ_x)/Ω [H⁽¹⁾_n(q₊r) + H⁽²⁾_n(q₋r)] + iτ_z [H⁽¹⁾_n(q₊r) − H⁽²⁾_n(q₋r)] },

Ω = √(Δ² − z²) (principal root), κ² = 2k_FΩ/ħv_F, q± = √(k_F² ± iκ²); 3D uses spherical
Hankel functions h_l with weights q±/k_F.  On site (regularised) g_loc = −(z + Δτ_x)/Ω.
Without spin–orbit coupling every propagator is spin-diagonal (⊗ σ₀), which the continuum
implementation exploits internally; the interface itself does not assume it.
"""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Callable, Hashable, Sequence

import numpy as np
from scipy import special

from .. import nambu
from .model import SHAPES, SHAPES_3D, Impurity, Site, Substrate, resolve_sites

__all__ = ["PropagatorSet", "ContinuumPropagators", "make_propagators"]

_TAUS = {"electron": (0,), "hole": (1,), "total": (0, 1)}


def _taus(part: str) -> tuple[int, ...]:
    nambu.tau_projector(part)            # the one place that words the error
    return _TAUS[part]


# ----------------------------------------------------------------------------- the interface
class PropagatorSet(abc.ABC):
    """Clean-substrate propagators for one geometry: what the T-matrix and the LDOS need.

    Nothing here depends on the couplings α, β or on the spin directions (those enter only
    through the vertex v of :mod:`.tmatrix`), so an engine caches a propagator set and its
    maps and re-solves only t(z) = (1 − v𝒢)⁻¹v when a coupling changes.

    Attributes
    ----------
    substrate : Substrate
    sites : list of Site
        The impurities, validated and with merged channels.
    index : list of (int, str)
        Channel c ↔ (site number, channel shape); channel c owns rows 4c … 4c + 3.
    n : int
        Channel-space dimension 4·len(index).

    Shapes: ``z`` is a 1-D array of E complex energies ω + iΓ (meV), ``points`` (P, 2) tip
    positions (nm).  All matrices are dimensionless (g = G/πN₀), complex.
    """

    def __init__(self, substrate: Substrate, impurities: Sequence[Impurity]) -> None:
        self.substrate = substrate
        self.sites: list[Site] = resolve_sites(substrate, impurities)
        self.index: list[tuple[int, str]] = [(i, k) for i, s in enumerate(self.sites) for k, _, _ in s.channels]
        self.n = 4 * len(self.index)

    @property
    def sub(self) -> Substrate:
        """The substrate (historical name)."""
        return self.substrate

    @property
    def key(self) -> Hashable:
        """Everything the propagators depend on: equal keys give identical matrices and maps."""
        return (type(self), self.substrate,
                tuple((s.position.tobytes(), tuple(k for k, _, _ in s.channels)) for s in self.sites))

    @abc.abstractmethod
    def channel_matrix(self, z: np.ndarray) -> np.ndarray:
        """𝒢(z): bare propagators between all channels, shape (E, n, n).

        Block (c, d) is the 4×4 propagator from channel d to channel c, the on-site block of a
        channel the regularised local g₀; blocks between different channels of one site vanish.
        """

    @abc.abstractmethod
    def local_green(self, z: np.ndarray) -> np.ndarray:
        """g₀(r, r; z): the clean substrate's on-site Green's function at a tip position, (E, 4, 4).

        Its −½ Im Tr[P g₀] is the bulk LDOS, the background of every map.
        """

    @abc.abstractmethod
    def map_propagators(self, points: np.ndarray, z: np.ndarray, tip_radius: float
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Φ(r, z) from all channels to the tip and Φ̄(r, z) back: shapes (P, E, 4, n) and (P, E, n, 4).

        g(r, r; z) = g₀ + Φ t Φ̄.  ``tip_radius`` r_c ≥ 0 (nm) regularises the distance,
        d → √(d² + r_c²).
        """

    def reduced_map(self, points: np.ndarray, z: np.ndarray, tip_radius: float, part: str,
                    tabulate: bool = True, dtype: type = np.complex64) -> tuple[np.ndarray, np.ndarray]:
        """Φ and Φ̄ reduced to what the LDOS contraction needs: rows, cols of shape (K, P, E, m).

        For a tip projector P = P_part ⊗ S (S a 2×2 spin matrix),

            Tr[P Φ t Φ̄] = Σ_k Σ_ab rows[k, p, e, a] · T̃[e, a, b] · cols[k, p, e, b],  T̃ = reduce_t(t, S),

        for every t (E, n, n).  K counts the particle–hole rows in ``part`` ("electron",
        "hole": 1; "total": 2); the reduced dimension m is the implementation's choice and
        must match :meth:`reduce_t`.  This default is generic (m = 2n, from
        :meth:`map_propagators`); implementations override it with a cheaper one.
        ``tabulate`` allows approximating radial functions from a table (maps);
        ``dtype`` is the result's complex type (complex64 halves memory, ~1e-7 relative).
        """
        taus = _taus(part)
        phi, phib = self.map_propagators(points, z, tip_radius)
        P, E, _, n = phi.shape
        rows = np.stack([phi.reshape(P, E, 2, 2, n)[:, :, t].reshape(P, E, 2 * n) for t in taus])
        cols = np.stack([np.swapaxes(phib.reshape(P, E, n, 2, 2)[..., t, :], -1, -2).reshape(P, E, 2 * n)
                         for t in taus])
        return rows.astype(dtype), cols.astype(dtype)

    def reduce_t(self, t: np.ndarray, spin: np.ndarray) -> np.ndarray:
        """T̃ (E, m, m) matching :meth:`reduced_map` for the t-matrix (or any channel-space matrix) ``t``
        of shape (E, n, n) and the tip's 2×2 spin matrix ``spin`` (σ₀: spin-summed; (1 + m̂·σ)/2).

        Generic default: T̃[(s, i), (s′, j)] = S[s′, s] t[i, j] (m = 2n).
        """
        E, n, _ = t.shape
        return np.einsum("ba,eij->eaibj", spin, t).reshape(E, 2 * n, 2 * n)

    def radial_profile(self, points: np.ndarray, tip_radius: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """If every LDOS (any part, any spin axis) at ``points`` depends only on the distance to one
        centre and sampling a radial profile is cheaper: (centre (2,), radii (R,), distances (P,)),
        else None.  Maps then evaluate the profile at centre + (radius, 0) and interpolate."""
        return None

    # ---- smooth factorisation of the map propagators (the fast map path of the engine)
    #: largest |n| of the angular harmonics e^{inφ} of :meth:`map_smooth` about its site (2 for s/p/d
    #: channels without SOC; one more with a Rashba spin texture)
    map_harmonic_max: int = 2

    def map_factors(self, z: np.ndarray, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Energy-only factors of the reduced map, or None (then maps use :meth:`reduced_map`).

        A propagator set that returns them promises, for the functions S_f, S̄_f of :meth:`map_smooth`,

            rows[k, p, e, a] = Σ_f P[k, e, a, f] S_f(r_p, z_e),   cols[k, p, e, b] = Σ_f P̄[k, e, b, f] S̄_f(r_p, z_e)

        (rows, cols of :meth:`reduced_map` for ``part``), where every S_f belongs to one site
        (``owner[f]``), is a sum Σ_n e^{inφ} s_n(d) of harmonics |n| ≤ :attr:`map_harmonic_max` about it
        (d, φ the tip's in-plane distance and angle, at a fixed height), and depends on z only through
        the analytic variable :meth:`map_variable` (no pole or branch point near the energies of a map:
        those go into P, P̄).  Returns (P (K, E, m, F), P̄ (K, E, m, F), owner (F,) int).
        """
        return None

    def map_factor_terms(self, z: np.ndarray, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Optional: :meth:`map_factors` as a short sum P[k, e] = Σ_α c_α(z_e) P_α[k] (P̄ likewise, same c) of
        constant matrices — (c (A, E), P_α (K, A, m, F), P̄_α (K, A, m, F)) — or None.  Maps then sum t over
        the energies first (one product for all Q² node pairs and A² term pairs) instead of forming the
        per-energy kernels."""
        return None

    def map_smooth(self, site: int, points: np.ndarray, z: np.ndarray, tip_radius: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The smooth functions of site ``site`` (see :meth:`map_factors`) at ``points`` (P, 3) nm,
        energies ``z`` (E,), regulariser r_o = ``tip_radius``: (S (P, E, F_i), S̄ (P, E, F_i), f (F_i,)),
        f their indices in the F of :meth:`map_factors`."""
        raise NotImplementedError(f"{type(self).__name__} has no smooth map factorisation")

    def map_harmonics(self, site: int, radii: np.ndarray, height: float, z: np.ndarray, tip_radius: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Radial harmonic profiles of :meth:`map_smooth` about site ``site``:

            S_f(R + (d cos φ, d sin φ, height)) = Σ_h e^{i n_h φ} s[d, e, h, f],

        at the in-plane distances ``radii`` (R,) nm (negative d is the ring rotated by π, so the profiles
        are analytic through d = 0), tip ``height`` above the site (nm).  Returns (n (H,), s (R, E, H, F_i),
        s̄ (R, E, H, F_i), f (F_i,)).  Default: :meth:`map_smooth` on rings of 2·:attr:`map_harmonic_max` + 2
        points, exact discrete Fourier transform in φ (no aliasing for |n| ≤ map_harmonic_max).
        """
        radii = np.asarray(radii, dtype=float)
        nphi = 2 * int(self.map_harmonic_max) + 2
        ang = 2.0 * np.pi * np.arange(nphi) / nphi
        pos = self.sites[site].position
        ring = np.stack([pos[0] + radii[:, None] * np.cos(ang)[None, :],
                         pos[1] + radii[:, None] * np.sin(ang)[None, :],
                         np.full((radii.size, nphi), pos[2] + height)], axis=-1).reshape(-1, 3)
        S, Sb, idx = self.map_smooth(site, ring, z, tip_radius)
        E, F = S.shape[1], S.shape[2]
        coef = np.fft.fft(S.reshape(radii.size, nphi, E, F), axis=1) / nphi        # index h ↔ n_h mod nphi
        coefb = np.fft.fft(Sb.reshape(radii.size, nphi, E, F), axis=1) / nphi
        orders = np.fft.fftfreq(nphi, 1.0 / nphi).astype(int)
        return orders, np.moveaxis(coef, 1, 2), np.moveaxis(coefb, 1, 2), idx

    def map_variable(self, z: np.ndarray) -> np.ndarray:
        """The variable x(z) in which :meth:`map_smooth` is analytic and slowly varying (default z)."""
        return np.asarray(z, dtype=complex)

    def map_wavenumber(self) -> float:
        """Largest wave number (1/nm) of the oscillations of :meth:`map_smooth` (radial table spacing)."""
        return float(self.substrate.kf)


# ----------------------------------------------------------------------------- continuum band
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


def _radial(sub: Substrate, n: int, r: np.ndarray | float, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (a, b) of f_n = a·(z + Δτ_x)/Ω + b·τ_z at distances r > 0; broadcasts r with z."""
    om = _omega(z, sub.delta)
    kappa2 = 2.0 * sub.kf * om / sub.hbar_vf
    qp = np.sqrt(sub.kf ** 2 + 1j * kappa2)
    qm = np.sqrt(sub.kf ** 2 - 1j * kappa2)
    if sub.dim == 2:
        z1 = special.hankel1(n, qp * r)
        z2 = special.hankel2(n, qm * r)
    else:
        ell = abs(n)
        xp, xm = qp * r, qm * r
        z1 = np.sqrt(np.pi / (2.0 * xp)) * special.hankel1(ell + 0.5, xp) * (qp / sub.kf)
        z2 = np.sqrt(np.pi / (2.0 * xm)) * special.hankel2(ell + 0.5, xm) * (qm / sub.kf)
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


def _solid3d(shape: str, x: np.ndarray, y: np.ndarray, zc: np.ndarray) -> tuple[int, np.ndarray]:
    """Degree l and the solid harmonic r^l·Y(r̂) of a 3D shape (Y real, mean 1 of Y² over the sphere)."""
    if shape == "s":
        return 0, np.ones_like(x)
    if shape == "px":
        return 1, math.sqrt(3.0) * x
    if shape == "py":
        return 1, math.sqrt(3.0) * y
    if shape == "dz2":
        return 2, (math.sqrt(5.0) / 2.0) * (2.0 * zc * zc - x * x - y * y)
    if shape == "dxz":
        return 2, math.sqrt(15.0) * x * zc
    if shape == "dyz":
        return 2, math.sqrt(15.0) * y * zc
    if shape == "dx2-y2":
        return 2, (math.sqrt(15.0) / 2.0) * (x * x - y * y)
    if shape == "dxy":
        return 2, math.sqrt(15.0) * x * y
    raise ValueError(f"unknown 3D channel shape {shape!r}; use one of {sorted(SHAPES_3D)}")


def _y3d(shape: str, x: np.ndarray, y: np.ndarray, zc: np.ndarray, r: np.ndarray) -> tuple[int, np.ndarray]:
    """Degree l and the regularised real harmonic r^l Y(r̂)/ρ^l at the displacement (x, y, zc), ρ = ``r``.

    With ρ = |d| this is Y(d̂) (mean-1 normalised over the sphere); with the regularised
    ρ = √(|d|² + r_o²) it goes to 0 as d → 0 for l ≥ 1, like the 2D ((x ± iy)/ρ)^|m|.
    """
    ell, solid = _solid3d(shape, x, y, zc)
    return ell, solid / r ** ell if ell else solid


@functools.lru_cache(maxsize=256)
def _sphere_projection(shape_i: str, shape_j: str, direction: tuple[float, float, float]
                       ) -> tuple[tuple[int, float], ...]:
    """(L, ⟨Y_i(k̂) Y_j(k̂) P_L(k̂·D̂)⟩) for the L with a non-zero sphere average (|l_i − l_j| ≤ L ≤ l_i + l_j).

    Product quadrature on the unit sphere (Gauss–Legendre in cos θ × uniform φ), exact for the
    polynomials of degree ≤ 8 that occur here.
    """
    x, w = np.polynomial.legendre.leggauss(8)
    phi = (np.arange(18) + 0.5) * (2.0 * np.pi / 18)
    ct, ph = np.meshgrid(x, phi, indexing="ij")
    st = np.sqrt(1.0 - ct * ct)
    kx, ky, kz = st * np.cos(ph), st * np.sin(ph), ct
    wt = (w[:, None] * np.ones_like(phi)[None, :]) / (2.0 * phi.size)
    li, yi = _solid3d(shape_i, kx, ky, kz)
    lj, yj = _solid3d(shape_j, kx, ky, kz)
    cosang = kx * direction[0] + ky * direction[1] + kz * direction[2]
    out = []
    for L in range(abs(li - lj), li + lj + 1):
        if (li + lj + L) % 2:
            continue
        c = float(np.sum(wt * yi * yj * special.eval_legendre(L, cosang)))
        if abs(c) > 1e-13:
            out.append((L, c))
    return tuple(out)


RadialFn = Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]]


class ContinuumPropagators(PropagatorSet):
    """:class:`PropagatorSet` of the parabolic 2D/3D band without spin–orbit coupling.

    Every propagator is A·(z + Δτ_x)/Ω + B·τ_z times σ₀; internally only the τ-blocks
    (2×2 per channel) are computed, and :meth:`reduced_map`/:meth:`reduce_t` use the spin
    trace of t (m = 2C instead of 8C).
    """

    def __init__(self, substrate: Substrate, impurities: Sequence[Impurity]) -> None:
        super().__init__(substrate, impurities)

    # ---- channel space
    def channel_matrix(self, z: np.ndarray) -> np.ndarray:
        """𝒢(z), shape (len(z), n, n); spin-diagonal blocks."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        out = np.zeros((z.size, self.n, self.n), dtype=complex)
        loc = _gloc(z, self.substrate.delta)
        radial: dict[tuple[float, int], tuple[np.ndarray, np.ndarray]] = {}     # shared by all channel pairs
        for c, (i, shape_i) in enumerate(self.index):
            for d, (j, shape_j) in enumerate(self.index):
                if i == j:
                    if c == d:
                        out[:, 4 * c:4 * c + 4, 4 * c:4 * c + 4] = nambu.kron_s0(loc)
                    continue
                block = self._intersite(i, shape_i, j, shape_j, z, radial)
                out[:, 4 * c:4 * c + 4, 4 * d:4 * d + 4] = nambu.kron_s0(block)
        return out

    def _intersite(self, i: int, shape_i: str, j: int, shape_j: str, z: np.ndarray,
                   radial: dict[tuple[float, int], tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
        """τ-block (E, 2, 2) of the propagator from channel (j, shape_j) to channel (i, shape_i).

        ``radial`` memoises f_|n|(r) by (r, |n|) across calls (f_{−n} = (−1)^n f_n)."""
        if radial is None:
            radial = {}
        sub = self.substrate
        d = self.sites[i].position - self.sites[j].position
        if sub.dim == 3:
            return self._intersite_3d(shape_i, shape_j, d, z)
        r = float(np.hypot(d[0], d[1]))
        mi, ai = SHAPES[shape_i]
        mj, aj = SHAPES[shape_j]
        phi = math.atan2(d[1], d[0])
        acc = np.zeros(z.shape + (2, 2), dtype=complex)
        cache: dict[int, np.ndarray] = {}
        for p, ap in ai.items():
            for q, aq in aj.items():
                nn = p + q
                if nn not in cache:
                    rk = (r, abs(nn))
                    if rk not in radial:
                        radial[rk] = _radial(sub, abs(nn), r, z)
                    a, b = radial[rk]
                    sgn = (-1.0) ** nn if nn < 0 else 1.0
                    cache[nn] = (sgn * 1j ** nn) * np.exp(1j * nn * phi) * _tau(a, b, z, sub.delta)
                acc += ap * aq * cache[nn]
        return (1j ** mi) * ((-1j) ** mj) * acc

    def _intersite_3d(self, shape_i: str, shape_j: str, d: np.ndarray, z: np.ndarray) -> np.ndarray:
        """3D τ-block from channel j to channel i at the displacement d = R_i − R_j (on-shell model):

            𝒢_ij(d) = i^{l_i} (−i)^{l_j} Σ_L (2L + 1) i^L ⟨Y_i Y_j P_L(k̂·d̂)⟩ f_L(|d|),

        the plane-wave expansion e^{ik·d} = Σ_L (2L + 1) i^L j_L(kd) P_L(k̂·d̂) with the form factors
        (−i)^l Y(k̂) of real orbitals and the radial integral of each L by its Fermi-surface poles
        (f_L, as for the map propagators).  For s–s it is the exact f₀; for s–μ it is the map
        propagator Y_μ(d̂) f_l of channel μ evaluated at the other site.
        """
        sub = self.substrate
        r = float(np.linalg.norm(d))
        li, lj = SHAPES_3D[shape_i], SHAPES_3D[shape_j]
        acc = np.zeros(z.shape + (2, 2), dtype=complex)
        for L, c in _sphere_projection(shape_i, shape_j, tuple(float(x) for x in d / r)):
            a, b = _radial(sub, L, r, z)
            acc += (2 * L + 1) * c * (1j ** (li - lj + L)) * _tau(a, b, z, sub.delta)
        return acc

    def local_green(self, z: np.ndarray) -> np.ndarray:
        """g_loc(z) ⊗ σ₀, (E, 4, 4)."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        return nambu.kron_s0(_gloc(z, self.substrate.delta))

    # ---- maps
    def map_blocks(self, points: np.ndarray, z: np.ndarray, tip_radius: float) -> tuple[np.ndarray, np.ndarray]:
        """τ-blocks of Φ and Φ̄ per channel, (P, E, C, 2, 2) each (the spin structure is ⊗ σ₀)."""
        pts, rc = self.tip_points(points, tip_radius)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        C = len(self.index)
        phi_t = np.zeros((pts.shape[0], z.size, C, 2, 2), dtype=complex)
        phib_t = np.zeros_like(phi_t)
        for c, (i, shape) in enumerate(self.index):
            dx, dy, dz = (pts - self.sites[i].position).T
            A, B, Ab, Bb = self._map_coeffs(shape, dx, dy, z, rc, dz=dz)
            zz = z[None, :]
            phi_t[:, :, c] = _tau(A, B, zz, self.substrate.delta)
            phib_t[:, :, c] = _tau(Ab, Bb, zz, self.substrate.delta)
        return phi_t, phib_t

    def map_propagators(self, points: np.ndarray, z: np.ndarray, tip_radius: float
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Φ (P, E, 4, n) and Φ̄ (P, E, n, 4): :meth:`map_blocks` ⊗ σ₀."""
        phi_t, phib_t = self.map_blocks(points, z, tip_radius)
        P, E, C = phi_t.shape[:3]
        phi = np.moveaxis(nambu.kron_s0(phi_t), 2, 3).reshape(P, E, 4, 4 * C)    # column 4c + j ← block c
        phib = nambu.kron_s0(phib_t).reshape(P, E, 4 * C, 4)                       # row 4c + i ← block c
        return phi, phib

    def _map_coeffs(self, shape: str, dx: np.ndarray, dy: np.ndarray, z: np.ndarray, rc: float,
                    radial: RadialFn | None = None, dz: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Without SOC every propagator is A·(z + Δτ_x)/Ω + B·τ_z: return (A, B) of Φ and of Φ̄, (P, E).

        (dx, dy, dz) is the tip's displacement from the site (dz = 0 in 2D), ``rc`` the orbital
        radius r_o: radial functions at ρ = √(|d|² + r_o²), angular factors (solid harmonics)
        divided by ρ^|m|.
        """
        sub = self.substrate
        if dz is None:
            dz = np.zeros_like(dx)
        d2 = dx * dx + dy * dy + dz * dz
        rho = np.sqrt(d2 + rc * rc)
        onsite = rho == 0.0
        rr = np.where(onsite, 1.0, rho)[:, None]
        zz = z[None, :]
        if radial is None:
            def radial(n: int, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return _radial(sub, n, r, zz)
        if sub.dim == 3:
            ell, y = _y3d(shape, dx, dy, dz, np.where(onsite, 1.0, rho))
            a, b = radial(ell, rr)
            A, B = a * y[:, None], b * y[:, None]
            if np.any(onsite):                     # g_loc = −(z + Δτ_x)/Ω for s, 0 otherwise
                A[onsite], B[onsite] = (-1.0 if ell == 0 else 0.0), 0.0
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
                    tabulate: bool = True, dtype: type = np.complex64) -> tuple[np.ndarray, np.ndarray]:
        """Rows Φ_c′[τ, ·] and columns Φ̄_c[·, τ] (τ-blocks, m = 2C) for τ in ``part``: (K, P, E, 2C).

        Entry 2c + τ′ of row τ is the τ-block element Φ_c[τ, τ′]; of column τ, Φ̄_c[τ′, τ].
        Pair with :meth:`reduce_t` (the spin-traced t).
        """
        taus = _taus(part)
        pts, rc = self.tip_points(points, tip_radius)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        C = len(self.index)
        om = _omega(z, self.substrate.delta)
        mz, md = (z / om)[None, :], (self.substrate.delta / om)[None, :]
        radial_for = self._tabulated_radial(pts, z, rc) if tabulate else (lambda i, sl=None: None)
        # cached in single precision by default: relative error ~1e-7, half the memory traffic
        rows: np.ndarray = np.empty((len(taus), pts.shape[0], z.size, 2 * C), dtype=dtype)
        cols = np.empty_like(rows)
        step = max(1, int(2e5 // max(z.size * C, 1)))
        for lo in range(0, pts.shape[0], step):
            sl = slice(lo, lo + step)
            rows[:, sl], cols[:, sl] = self._reduced_chunk(pts[sl], z, rc, taus, mz, md,
                                                          functools.partial(radial_for, sl=sl))
        return rows, cols

    def _reduced_chunk(self, pts: np.ndarray, z: np.ndarray, rc: float, taus: tuple[int, ...], mz: np.ndarray,
                       md: np.ndarray, radial_for: Callable[[int], RadialFn | None]
                       ) -> tuple[np.ndarray, np.ndarray]:
        C = len(self.index)
        # row τ of Φ_c′: τ=e → [A z/Ω + B, AΔ/Ω], τ=h → [AΔ/Ω, A z/Ω − B]; column τ of Φ̄_c likewise
        rows = {t: np.empty((pts.shape[0], z.size, 2 * C), dtype=complex) for t in taus}
        cols = {t: np.empty((pts.shape[0], z.size, 2 * C), dtype=complex) for t in taus}
        for c, (i, shape) in enumerate(self.index):
            dx, dy, dz = (pts - self.sites[i].position).T
            A, B, Ab, Bb = self._map_coeffs(shape, dx, dy, z, rc, radial_for(i), dz=dz)
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

    def _tabulated_radial(self, pts: np.ndarray, z: np.ndarray, rc: float, points_per_wavelength: int = 64
                          ) -> Callable[..., RadialFn | None]:
        """Per site, a radial provider interpolating f_n(ρ) from a table (4-point Lagrange)."""
        rhos = [np.sqrt(np.sum((pts - s.position) ** 2, axis=1) + rc * rc) for s in self.sites]
        allr = np.concatenate(rhos)
        pos = allr[allr > 0]
        if pos.size == 0:
            return lambda i, sl=None: None
        r0, r1 = float(pos.min()), float(pos.max())
        hr = min(2.0 * np.pi / self.substrate.kf / points_per_wavelength, 0.125 * r0)
        nr = int(np.ceil((r1 - r0) / hr)) + 4
        if nr > 20000 or nr > 4 * pts.shape[0]:          # a table would cost more than direct evaluation
            return lambda i, sl=None: None
        base = r0 - hr
        grid = np.maximum(base + hr * np.arange(nr), 0.5 * r0)
        table: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def provider(i: int, sl: slice = slice(None)) -> RadialFn:
            rho = np.where(rhos[i][sl] == 0.0, r0, rhos[i][sl])
            j0 = np.clip(np.floor((rho - base) / hr).astype(np.intp), 1, nr - 3)
            t = (rho - base) / hr - j0
            lag = [(-t * (t - 1) * (t - 2) / 6)[:, None], ((t + 1) * (t - 1) * (t - 2) / 2)[:, None],
                   (-(t + 1) * t * (t - 2) / 2)[:, None], ((t + 1) * t * (t - 1) / 6)[:, None]]

            def radial(n: int, rr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                if n not in table:
                    table[n] = _radial(self.substrate, n, grid[:, None], z[None, :])
                ta, tb = table[n]
                a = lag[0] * ta[j0 - 1] + lag[1] * ta[j0] + lag[2] * ta[j0 + 1] + lag[3] * ta[j0 + 2]
                b = lag[0] * tb[j0 - 1] + lag[1] * tb[j0] + lag[2] * tb[j0 + 1] + lag[3] * tb[j0 + 2]
                return a, b
            return radial
        return provider

    def reduce_t(self, t: np.ndarray, spin: np.ndarray) -> np.ndarray:
        """Spin-traced t: T̃[e, (c′ τ2), (c τ1)] = Σ_{s1 s2} t[e, (c′ τ2 s2), (c τ1 s1)] S[s1, s2], (E, 2C, 2C)."""
        E, n, _ = t.shape
        C2 = n // 2
        t6 = t.reshape(E, C2, 2, C2, 2)                    # (e, c'τ2, s2, cτ1, s1)
        return np.einsum("eaybx,xy->eab", t6, spin)

    def radial_profile(self, points: np.ndarray, tip_radius: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """One impurity whose channels are all isotropic about z (s, dz2), ≥ 400 tip positions at one
        height, never on the site: a radial grid with k_F-resolved steps, when it is at most a quarter
        of the points; else None.  The profile's points are centre + (radius, 0, 0) (3 columns)."""
        pts, rc = self.tip_points(points, tip_radius)
        if len(self.sites) != 1 or pts.shape[0] < 400 or np.ptp(pts[:, 2]) > 0.0:
            return None
        site = self.sites[0]
        if any(k not in ("s", "dz2") for k, _, _ in site.channels):
            return None
        if rc <= 0.0 and pts[0, 2] == site.position[2]:
            return None
        d = np.hypot(pts[:, 0] - site.position[0], pts[:, 1] - site.position[1])
        h = 2.0 * np.pi / self.substrate.kf / 48.0
        n = int(np.ceil((d.max() - d.min()) / h)) + 5
        if n > pts.shape[0] // 4:
            return None
        grid = max(d.min() - 2 * h, 0.0) + h * np.arange(n)
        return np.array([site.position[0], site.position[1], pts[0, 2]]), grid, d

    # ---- smooth factorisation (fast maps): rows = P·(A, B), the 2C functions A_c, B_c of _map_coeffs
    def map_factors(self, z: np.ndarray, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P = P̄ (K, E, 2C, 2C) and owner (2C,): function 2c is A_c (Ā_c in the columns), 2c + 1 is B_c (B̄_c).

        Row τ = e of Φ_c is [A z/Ω + B, AΔ/Ω], τ = h is [AΔ/Ω, A z/Ω − B]; the columns of Φ̄_c likewise with
        Ā, B̄ (see :meth:`reduced_map`).
        """
        taus = _taus(part)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        om = _omega(z, self.substrate.delta)
        mz, md = z / om, self.substrate.delta / om
        C = len(self.index)
        P = np.zeros((len(taus), z.size, 2 * C, 2 * C), dtype=complex)
        for k, t in enumerate(taus):
            for c in range(C):
                a, b = 2 * c, 2 * c + 1
                if t == 0:
                    P[k, :, a, a], P[k, :, a, b], P[k, :, b, a] = mz, 1.0, md
                else:
                    P[k, :, a, a], P[k, :, b, a], P[k, :, b, b] = md, mz, -1.0
        owner = np.repeat(np.array([i for i, _ in self.index], dtype=np.intp), 2)
        return P, P, owner

    def map_smooth(self, site: int, points: np.ndarray, z: np.ndarray, tip_radius: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A_c, B_c) and (Ā_c, B̄_c) of the channels of ``site`` at (P, 3) points: (P, E, 2C_i) each, and their
        indices 2c, 2c + 1 (direct evaluation, :meth:`_map_coeffs`)."""
        pts = np.asarray(points, dtype=float).reshape(-1, 3)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        mine = [(c, shape) for c, (i, shape) in enumerate(self.index) if i == site]
        S = np.empty((pts.shape[0], z.size, 2 * len(mine)), dtype=complex)
        Sb = np.empty_like(S)
        dx, dy, dz = (pts - self.sites[site].position).T
        for j, (_, shape) in enumerate(mine):
            A, B, Ab, Bb = self._map_coeffs(shape, dx, dy, z, float(tip_radius), dz=dz)
            S[:, :, 2 * j], S[:, :, 2 * j + 1], Sb[:, :, 2 * j], Sb[:, :, 2 * j + 1] = A, B, Ab, Bb
        idx = np.array([f for c, _ in mine for f in (2 * c, 2 * c + 1)], dtype=np.intp)
        return S, Sb, idx

    def map_harmonics(self, site: int, radii: np.ndarray, height: float, z: np.ndarray, tip_radius: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """2D: the closed form — channel μ = (m, {p: a_p}) has, at ρ = √(d² + h² + r_o²), harmonic p of

            A: (−i)^m a_p i^p (d/ρ)^|p| a_|p|(ρ)·s_p,   Ā: i^m a_p (−1)^p i^p (d/ρ)^|p| a_|p|(ρ)·s_p

        (B, B̄ with b; s_p = (−1)^p for p < 0 from f_{−n} = (−1)^n f_n), one Hankel pair per |p|.  3D, or ρ = 0
        on the grid: the generic ring transform of :meth:`PropagatorSet.map_harmonics`."""
        radii = np.asarray(radii, dtype=float)
        rho = np.sqrt(radii * radii + height * height + tip_radius * tip_radius)
        if self.substrate.dim == 3 or np.any(rho == 0.0):
            return super().map_harmonics(site, radii, height, z, tip_radius)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        mine = [(c, shape) for c, (i, shape) in enumerate(self.index) if i == site]
        orders = np.arange(-2, 3)
        s = np.zeros((radii.size, z.size, orders.size, 2 * len(mine)), dtype=complex)
        sb = np.zeros_like(s)
        radial: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for j, (_, shape) in enumerate(mine):
            m, coeffs = SHAPES[shape]
            for p, ap in coeffs.items():
                k = abs(p)
                if k not in radial:
                    radial[k] = _radial(self.substrate, k, rho[:, None], z[None, :])
                a, b = radial[k]
                sign = (-1.0) ** k if p < 0 else 1.0                       # f_{−k} = (−1)^k f_k
                ang = (sign * (1j ** p) * (radii / rho) ** k)[:, None]
                h = int(np.flatnonzero(orders == p)[0])
                g = ap * ang
                s[:, :, h, 2 * j] += ((-1j) ** m) * g * a
                s[:, :, h, 2 * j + 1] += ((-1j) ** m) * g * b
                gb = ap * ((-1.0) ** p) * ang * (1j ** m)
                sb[:, :, h, 2 * j] += gb * a
                sb[:, :, h, 2 * j + 1] += gb * b
        idx = np.array([f for c, _ in mine for f in (2 * c, 2 * c + 1)], dtype=np.intp)
        return orders, s, sb, idx

    def map_variable(self, z: np.ndarray) -> np.ndarray:
        """Ω(z) = √(Δ² − z²): A, B are analytic in Ω (through q± = √(k_F² ± 2ik_FΩ/ħv_F)); z/Ω, Δ/Ω are in P."""
        return _omega(np.atleast_1d(np.asarray(z, dtype=complex)), self.substrate.delta)

    def tip_points(self, points: np.ndarray, tip_radius: float) -> tuple[np.ndarray, float]:
        """Tip positions (P, 3) nm and the regulariser r_o (nm) for the propagators.

        3-column points are full positions and ``tip_radius`` is r_o.  2-column points keep the
        historical meaning: z = 0 and r_o = ``tip_radius`` on a 2D band; on a 3D band the tip at
        height z = ``tip_radius`` and r_o = 0 (use :func:`gapscope.kernels.ysr.model.tip_geometry`
        to set the height and the orbital radius separately).
        """
        pts = np.asarray(points, dtype=float)
        cols = pts.shape[-1] if pts.ndim >= 1 and pts.shape[-1] in (2, 3) else 2
        pts = pts.reshape(-1, cols)
        rc = float(tip_radius)
        out = np.zeros((pts.shape[0], 3))
        out[:, :cols] = pts
        if cols == 3 or self.substrate.dim == 2:
            return out, rc
        out[:, 2] = rc
        return out, 0.0


def make_propagators(substrate: Substrate, impurities: Sequence[Impurity]) -> PropagatorSet:
    """The :class:`PropagatorSet` for ``substrate``: :class:`ContinuumPropagators` (Rashba = 0), else
    :class:`~.rashba.RashbaPropagators` (2D band with Rashba α_R ≠ 0), or
    :class:`~.lattice.LatticePropagators` for a :class:`~.lattice.Substrate` (a tight-binding lattice)."""
    if getattr(substrate, "is_lattice", False):
        from .lattice import LatticePropagators  # deferred: lattice imports this module
        return LatticePropagators(substrate, impurities)  # type: ignore[arg-type]
    if substrate.rashba != 0.0:
        from .rashba import RashbaPropagators  # deferred: rashba imports this module
        return RashbaPropagators(substrate, impurities)
    return ContinuumPropagators(substrate, impurities)
