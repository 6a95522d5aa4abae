"""LDOS, sample DOS and dI/dV maps near classical spins, with caches for everything a coupling does not change.

ρ_part(r, ω) = −½ Im Tr[P g(r, r; ω + iΓ)],  g = g₀ + Φ(r) t Φ̄(r),  P = P_part ⊗ S,

with Φ, Φ̄, g₀ from a :class:`~.propagators.PropagatorSet` and t from :mod:`.tmatrix`.  The
contraction goes through the propagators' reduced maps: Tr[P Φ t Φ̄] = Σ rows·T̃·cols with
T̃ = ``prop.reduce_t(t, S)``; :func:`ldos` is :meth:`Engine.ldos` on a fresh engine.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from .. import _validate as _v
from .. import nambu
from ..sampling import PointDOS
from .model import SHAPES, Impurity, Substrate, tip_geometry
from .propagators import make_propagators
from .tmatrix import solve_t

__all__ = ["Engine", "ldos"]

_GAMMA_MESSAGE = ("ldos needs substrate.gamma > 0: at Γ = 0 the in-gap LDOS is a sum of δ peaks "
                  "(use ysr.residue_maps for their weights)")


def _ldos_args(substrate: Substrate, points: np.ndarray, energies: np.ndarray, part: str,
               spin_axis: Sequence[float] | None, tip_radius: float, tip_height: float | None = None,
               orbital_radius: float | None = None) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The argument checks of :meth:`Engine.ldos`: (points (P, 3), energies (E,), r_o, spin matrix S)."""
    if substrate.gamma <= 0.0:
        raise ValueError(_GAMMA_MESSAGE)
    pts, rc = tip_geometry(substrate, points, tip_radius=tip_radius, tip_height=tip_height,
                           orbital_radius=orbital_radius)
    w = _v.array("energies", energies).ravel()
    nambu.tau_projector(part)
    return pts, w, rc, nambu.spin_projector(spin_axis)


class Engine:
    """YSR computations with caches for everything a coupling slider does not change.

    The channel propagator 𝒢(z), the map propagators Φ, Φ̄ and their reduction for the tip
    projector depend on the substrate and on positions and channel shapes, not on α, β or
    the spin directions.  :meth:`update` swaps couplings and spins and keeps the caches; a
    J (α) change then costs the small solves t(z) = (1 − v𝒢)⁻¹v and one matrix–vector
    product per map.

    Parameters
    ----------
    substrate : Substrate
    impurities : sequence of Impurity
    cache_mb : float
        Memory budget of the map cache, MiB.
    """

    def __init__(self, substrate: Substrate, impurities: Sequence[Impurity], *, cache_mb: float = 512.0) -> None:
        self.cache_bytes = cache_mb * 2 ** 20
        self._set(substrate, impurities)
        self._g: dict = {}
        self._y: dict = {}
        self._b: dict = {}

    def _set(self, substrate: Substrate, impurities: Sequence[Impurity]) -> None:
        self.substrate = substrate
        self.impurities = list(impurities)
        self.prop = make_propagators(substrate, impurities)
        self.key = self.prop.key

    def update(self, substrate: Substrate, impurities: Sequence[Impurity]) -> Engine:
        """Take new parameters; keep the caches when only couplings and spins changed."""
        old = self.key
        self._set(substrate, impurities)
        if self.key != old:
            self._g.clear()
            self._y.clear()
            self._b.clear()
        return self

    def _state(self) -> Hashable:
        """Everything results depend on: geometry key plus couplings and spin directions."""
        return self.key, tuple((tuple(s.channels), s.direction.tobytes()) for s in self.prop.sites)

    # ---- pieces
    def channel_matrix(self, z: np.ndarray) -> np.ndarray:
        """𝒢(z), (len(z), n, n), cached per energy array (at most 9 kept)."""
        k = z.tobytes()
        if k not in self._g:
            if len(self._g) > 8:
                self._g.clear()
            self._g[k] = self.prop.channel_matrix(z)
        return self._g[k]

    def t_matrix(self, z: np.ndarray) -> np.ndarray:
        """t(z) = (1 − v𝒢)⁻¹v with the cached 𝒢, (len(z), n, n)."""
        return solve_t(self.prop, z, self.channel_matrix(z))

    def _reduced(self, points: np.ndarray, z: np.ndarray, rc: float, part: str, exact: bool = False
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """Cached reduced map: (rows, cols), or for m ≤ 2 the summed outer product (P, E, m, m) and None.

        ``exact``: double precision, no radial tables (LDOS); otherwise single precision and tables
        for large maps.
        """
        k = (points.tobytes(), z.tobytes(), rc, part, exact)
        if k in self._y:
            return self._y[k]
        nambu.tau_projector(part)
        if exact:
            rows, cols = self.prop.reduced_map(points, z, rc, part, tabulate=False, dtype=np.complex128)
        else:
            rows, cols = self.prop.reduced_map(points, z, rc, part, tabulate=points.shape[0] * z.size > 2000)
        out: tuple[np.ndarray, np.ndarray | None]
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

    @staticmethod
    def _contract(rows: np.ndarray, cols: np.ndarray | None, tt: np.ndarray) -> np.ndarray:
        """−½ Im Σ rows·T̃·cols, (P, E); ``cols is None`` means ``rows`` is the outer product."""
        if cols is None:
            return -0.5 * np.imag(np.einsum("peab,eba->pe", rows, tt))
        return -0.5 * np.imag(np.einsum("tpeb,eba,tpea->pe", rows, tt, cols, optimize=True))

    def _bulk(self, z: np.ndarray, part: str, spin: np.ndarray) -> np.ndarray:
        """−½ Im Tr[(P_part ⊗ S) g₀(z)], (E,), cached (it depends on the substrate only)."""
        k = (z.tobytes(), part, spin.tobytes())
        if k not in self._b:
            if len(self._b) > 32:
                self._b.clear()
            proj = nambu.kron(nambu.tau_projector(part), spin)
            bulk = -0.5 * np.imag(np.einsum("eab,ba->e", self.prop.local_green(z), proj))
            bulk.setflags(write=False)
            self._b[k] = bulk
        return self._b[k]

    # ---- results
    def ldos(self, points: np.ndarray, energies: np.ndarray, *, part: str = "electron",
             spin_axis: Sequence[float] | None = None, tip_radius: float = 0.1, tip_height: float | None = None,
             orbital_radius: float | None = None) -> np.ndarray:
        """Local density of states near the impurities, normalised to 1 in the normal state.

        ρ(r, ω) = −½ Im Tr[P g(r, r; ω + iΓ)],  g = g_loc ⊗ σ₀ + Φ(r) t Φ̄(r),

        P = (1 + τ_z)/2 ("electron", what a normal tip measures), (1 − τ_z)/2 ("hole";
        ρ_h(ω) = ρ_e(−ω)) or 1 ("total"), times (1 + m̂·σ)/2 for ``spin_axis`` m̂.
        Double precision throughout; the reduced maps are cached (keyed by points and energies).

        Parameters
        ----------
        points : array_like (n_points, 2) or (n_points, 3)
            Tip positions (x, y) — or (x, y, z) on a 3D band —, nm.
        energies : array_like (n_energies,)
            Energies ω, meV.
        part : {"electron", "hole", "total"}
        spin_axis : array_like (3,) or None
            Spin-resolved along m̂ (normalised here), or spin-summed.
        tip_radius : float
            Historical name of the map regulariser: the orbital radius r_o in 2D, the tip
            height in 3D (nm); used where ``orbital_radius`` / ``tip_height`` are not given.
        tip_height : float, optional
            3D band: height z of the tip, nm (points (x, y) are then at (x, y, h)); points
            may instead carry their own z.  Refused in 2D.
        orbital_radius : float, optional
            Orbital radius r_o ≥ 0, nm: propagators from a site to the tip at distance d are
            evaluated at ρ = √(d² + r_o²), the angular factors of m ≠ 0 channels divided by ρ^|m|.
            Exact for s channels and, for every channel, converged as r_o → 0 where d ≫ r_o;
            within ~r_o of a site the intensities of m ≠ 0 channels (whose on-shell propagators
            grow as (k_F d)^−|m|) are set by r_o: a model of the adatom orbital's size.  With
            r_o = 0 a point exactly on a site gets g_loc (s channels) and 0 (others).

        Returns
        -------
        ndarray (n_points, n_energies)

        Raises
        ------
        ValueError
            Γ = 0 (the in-gap LDOS is then a sum of δ peaks: use :func:`residue_maps`), or a bad argument.
        """
        pts, w, rc, spin = _ldos_args(self.substrate, points, energies, part, spin_axis, tip_radius, tip_height,
                                      orbital_radius)
        z = w + 1j * self.substrate.gamma
        out = np.broadcast_to(self._bulk(z, part, spin), (pts.shape[0], w.size)).copy()   # a copy: cache intact
        if self.prop.n == 0 or pts.shape[0] == 0 or w.size == 0:
            return out
        tt = self.prop.reduce_t(self.t_matrix(z), spin)
        n_k = 2 if part == "total" else 1
        per_point = 2 * n_k * w.size * tt.shape[-1] * 16          # bytes of rows + cols for one point
        if pts.shape[0] * per_point <= self.cache_bytes:
            rows, cols = self._reduced(pts, z, rc, part, exact=True)
            out += self._contract(rows, cols, tt)
            return out
        step = max(1, int(min(self.cache_bytes, 64 * 2 ** 20) // per_point))
        for lo in range(0, pts.shape[0], step):     # too large to cache: stream over points
            rows, cols = self.prop.reduced_map(pts[lo:lo + step], z, rc, part, tabulate=False, dtype=np.complex128)
            out[lo:lo + step] += self._contract(rows, cols, tt)
        return out

    def sample_dos(self, point: Sequence[float], *, part: str = "electron", spin_axis: Sequence[float] | None = None,
                   tip_radius: float = 0.1, tip_height: float | None = None,
                   orbital_radius: float | None = None) -> PointDOS:
        """The LDOS at one tip position as a sample DOS for the tunnelling kernels.

        Parameters
        ----------
        point : array_like (2,) or (3,)
            Tip position (x, y) or, on a 3D band, (x, y, z), nm.
        part, spin_axis, tip_radius, tip_height, orbital_radius
            As in :meth:`ldos`.

        Returns
        -------
        PointDOS
            ``func(E)`` = ``self.ldos([point], E, ...)[0]`` (E in meV, any shape, → normalised
            LDOS of the same shape), ``width`` = Γ of the substrate (the narrowest feature of an
            LDOS evaluated at ω + iΓ).  It uses this engine and its caches; after an
            :meth:`update` that changes any parameter calling it raises ``RuntimeError``
            (make a new one).
        """
        if self.substrate.gamma <= 0.0:
            raise ValueError(_GAMMA_MESSAGE)
        p = _v.array("point", point)
        if p.ndim != 1 or p.size not in (2, 3):
            raise ValueError(f"point must be one tip position (x, y) or (x, y, z) in nm, got shape {p.shape}")
        pts, rc = tip_geometry(self.substrate, p.reshape(1, -1), tip_radius=tip_radius, tip_height=tip_height,
                               orbital_radius=orbital_radius)
        nambu.tau_projector(part)
        nambu.spin_projector(spin_axis)
        state = self._state()

        def func(E: np.ndarray) -> np.ndarray:
            if self._state() != state:
                raise RuntimeError("this sample_dos belongs to parameters the engine no longer has "
                                   "(Engine.update was called): call Engine.sample_dos again")
            E = np.asarray(E, dtype=float)
            return self.ldos(pts, E.ravel(), part=part, spin_axis=spin_axis,
                             orbital_radius=rc)[0].reshape(E.shape)

        return PointDOS(func, width=self.substrate.gamma)

    def map_cost(self, n_points: int, n_energies: int, *, extent: float, part: str = "electron"
                 ) -> tuple[float, float]:
        """Estimated cost of :meth:`weighted_map` before computing it: (bytes, radial evaluations).

        ``n_points`` pixels within ``extent`` nm of every site, ``n_energies`` energies kept.  The
        bytes are the rows and columns of the LDOS contraction (complex64, τ components ×
        pixels × energies × 2 per channel, twice) and, where the propagators tabulate f_n(ρ) on a
        grid of λ_F/64 (as they do when that grid is shorter than four times the pixels), that table
        with its temporaries; the evaluations are the Hankel functions computed.  A panel compares
        them with its budget and coarsens or refuses a map instead of exhausting the machine.
        """
        n_tau = 2 if part == "total" else 1
        channels = len(self.prop.index)
        harmonics = sum(len(SHAPES[shape][1]) if shape in SHAPES else 1 for _, shape in self.prop.index)
        rows = 1.5 * 2 * n_tau * n_points * n_energies * 2 * channels * 8.0
        nr = int(np.ceil(extent / (2.0 * np.pi / self.substrate.kf / 64))) + 4
        if nr <= 20000 and nr <= 4 * n_points:          # the propagators' rule for a radial table
            return rows + 12.0 * nr * n_energies * 16.0, float(nr * n_energies * harmonics)
        return rows + 12.0 * min(n_points, 2e5 / max(n_energies * channels, 1)) * n_energies * 16.0, \
            float(n_points * n_energies * harmonics)

    def weighted_map(self, points: np.ndarray, energies: np.ndarray, weights: np.ndarray, *,
                     part: str = "electron", spin_axis: Sequence[float] | None = None,
                     tip_radius: float = 0.1, prune: float = 1e-4, tip_height: float | None = None,
                     orbital_radius: float | None = None) -> np.ndarray:
        """Σ_j w_j ρ(r, E_j) at every point: a dI/dV map when w are tunnelling weights.

        Energies whose |w_j| is below ``prune``·max|w| are skipped.  Single-precision cached
        maps (relative error ~1e-7) and, for large maps, tabulated radial functions.  Points and
        the geometry keywords (``tip_radius``, ``tip_height``, ``orbital_radius``) as in :meth:`ldos`.
        """
        if self.substrate.gamma <= 0.0:
            raise ValueError("maps need substrate.gamma > 0 (use ysr.residue_maps at Γ = 0)")
        pts, rc = tip_geometry(self.substrate, points, tip_radius=tip_radius, tip_height=tip_height,
                               orbital_radius=orbital_radius)
        w = _v.array("weights", weights).ravel()
        e = _v.array("energies", energies).ravel()
        nambu.tau_projector(part)
        spin = nambu.spin_projector(spin_axis)
        keep = np.abs(w) >= prune * np.abs(w).max() if np.any(w) else np.zeros(w.size, bool)
        if not np.any(keep):
            return np.zeros(pts.shape[0])
        e, w = e[keep], w[keep]
        z = e + 1j * self.substrate.gamma
        if self.prop.n == 0:
            return np.full(pts.shape[0], float(self._bulk(z, part, spin) @ w))
        radial = self.prop.radial_profile(pts, rc)
        if radial is not None:             # isotropic single impurity: compute a profile, interpolate
            centre, grid, dist = radial
            prof = self.weighted_map(centre + np.c_[grid, np.zeros_like(grid), np.zeros_like(grid)], e, w,
                                     part=part, spin_axis=spin_axis, orbital_radius=rc, prune=0.0)
            return _lagrange4(grid, prof, dist)
        bulk = float(self._bulk(z, part, spin) @ w)
        rows, cols = self._reduced(pts, z, rc, part)
        tt = (self.prop.reduce_t(self.t_matrix(z), spin) * w[:, None, None]).astype(rows.dtype)
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
        return bulk + corr.astype(float)


def _lagrange4(grid: np.ndarray, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """4-point Lagrange interpolation on a uniform grid (clipped to its interior)."""
    h = grid[1] - grid[0]
    j0 = np.clip(np.floor((x - grid[0]) / h).astype(np.intp), 1, grid.size - 3)
    t = (x - grid[0]) / h - j0
    return (-t * (t - 1) * (t - 2) / 6 * values[j0 - 1] + (t + 1) * (t - 1) * (t - 2) / 2 * values[j0]
            - (t + 1) * t * (t - 2) / 2 * values[j0 + 1] + (t + 1) * t * (t - 1) / 6 * values[j0 + 2])


def ldos(substrate: Substrate, impurities: Sequence[Impurity], points: np.ndarray, energies: np.ndarray, *,
         part: str = "electron", spin_axis: Sequence[float] | None = None, tip_radius: float = 0.1,
         tip_height: float | None = None, orbital_radius: float | None = None) -> np.ndarray:
    """Local density of states near the impurities, normalised to 1 in the normal state.

    ρ(r, ω) = −½ Im Tr[P g(r, r; ω + iΓ)],  g = g_loc ⊗ σ₀ + Φ(r) t Φ̄(r),

    P = (1 + τ_z)/2 ("electron", what a normal tip measures), (1 − τ_z)/2 ("hole";
    ρ_h(ω) = ρ_e(−ω)) or 1 ("total"), times (1 + m̂·σ)/2 for ``spin_axis`` m̂.
    Computed by :meth:`Engine.ldos` of a fresh engine (no caching across calls; keep an
    :class:`Engine` for repeated evaluations).

    Parameters
    ----------
    substrate : Substrate
        Needs Γ > 0 (with Γ = 0 the in-gap LDOS is a sum of δ peaks: use :func:`residue_maps`).
    impurities : sequence of Impurity
    points : array_like (n_points, 2) or (n_points, 3)
        Tip positions (x, y) — or (x, y, z) on a 3D band —, nm.
    energies : array_like (n_energies,)
        Energies ω, meV.
    tip_radius, tip_height, orbital_radius : float
        The map geometry, see :meth:`Engine.ldos`: in 2D r_o = ``orbital_radius`` (else
        ``tip_radius``); in 3D the tip at height ``tip_height`` (else ``tip_radius``) with
        r_o = ``orbital_radius`` (else 0).

    Returns
    -------
    ndarray (n_points, n_energies)
    """
    return Engine(substrate, impurities, cache_mb=64.0).ldos(points, energies, part=part, spin_axis=spin_axis,
                                                             tip_radius=tip_radius, tip_height=tip_height,
                                                             orbital_radius=orbital_radius)
