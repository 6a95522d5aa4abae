"""LDOS, sample DOS and dI/dV maps near classical spins, with caches for everything a coupling does not change.

ρ_part(r, ω) = −½ Im Tr[P g(r, r; ω + iΓ)],  g = g₀ + Φ(r) t Φ̄(r),  P = P_part ⊗ S,

with Φ, Φ̄, g₀ from a :class:`~.propagators.PropagatorSet` and t from :mod:`.tmatrix`.  The
contraction goes through the propagators' reduced maps: Tr[P Φ t Φ̄] = Σ rows·T̃·cols with
T̃ = ``prop.reduce_t(t, S)``; for a few tip points of propagators with the generic reduction (Rashba,
lattice) :meth:`Engine.ldos` skips t and solves (1 − v𝒢)X = v·cols for the tip's columns only.
:func:`ldos` is :meth:`Engine.ldos` on a fresh engine.  Maps
(:meth:`Engine.weighted_map`) factor rows = P(z)·S(r, Ω(z)) into energy-only factors and smooth
harmonic radial profiles (:class:`_FastMap`), so that the pixels see only a few energy nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np
from scipy import sparse

from .. import _validate as _v
from .. import nambu, tunneling
from ..sampling import PointDOS
from .model import SHAPES, Impurity, Substrate, tip_geometry
from .propagators import ContinuumPropagators, PropagatorSet, make_propagators
from .rashba import RashbaPropagators
from .tmatrix import solve_t, vertex_blocks

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

    #: use the smooth harmonic factorisation for maps where the propagators offer one (False: the reduced
    #: maps only, as before it existed — for benchmarks and comparisons)
    fast_maps: bool = True
    #: tip spectra of a few points by the tip-column solve (:meth:`_tip_columns`) where it applies (False: the full t)
    tip_columns: bool = True
    #: tip spectra after a change of a few channels' vertices: fold the unchanged channels (:meth:`_downfold`)
    #: (False: the tip-column solve over all channels every time — for benchmarks and comparisons)
    fold_channels: bool = True
    #: fast maps of the generic reduction from channel blocks of t (:meth:`_FastMap.correction_t`) and merged
    #: cross-site products (False: the dense T̃ products, as before — for benchmarks and comparisons)
    block_kernels: bool = True

    def __init__(self, substrate: Substrate, impurities: Sequence[Impurity], *, cache_mb: float = 512.0) -> None:
        self.cache_bytes = cache_mb * 2 ** 20
        self._set(substrate, impurities)
        self._g: dict = {}
        self._y: dict = {}
        self._b: dict = {}
        self._d: dict = {}

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
            self._d.clear()
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
        """t(z) = (1 − v𝒢)⁻¹v with the cached 𝒢, (len(z), n, n).

        Spin-diagonal propagators (𝒢 = g ⊗ σ₀, :class:`ContinuumPropagators`) with collinear spins n̂_c = s_c û:
        in the frame where û·σ = σ_z, v = β τ_z ⊗ σ₀ + α s_c τ₀ ⊗ σ_z is diagonal, so t splits into two
        2C × 2C solves t_σ = (1 − v_σ g)⁻¹ v_σ, v_σ = diag(β + σαs_c, −β + σαs_c), and
        t[(cτs), (dτ′s′)] = Σ_σ U[s, σ] t_σ[(cτ), (dτ′)] U*[s′, σ] (U the eigenvectors of û·σ for σ = ±1).
        """
        G = self.channel_matrix(z)
        split = self._collinear()
        if split is None:
            return solve_t(self.prop, z, G)
        U, alpha_s, beta = split
        g = G[:, 0::2, 0::2]                                   # τ-blocks: index 4c + 2τ + s → (c, τ) at s = 0
        E, C2, _ = g.shape
        out = np.zeros((E, C2, 2, C2, 2), dtype=complex)
        eye = np.eye(C2)
        for k, sgn in enumerate((1.0, -1.0)):
            vd = (np.stack([beta, -beta], axis=1) + sgn * alpha_s[:, None]).ravel()      # (2C,) diagonal of v_σ
            t_s = np.linalg.solve(eye[None] - vd[None, :, None] * g, np.broadcast_to(np.diag(vd), g.shape))
            for a in range(2):
                for b in range(2):
                    out[:, :, a, :, b] += (U[a, k] * np.conj(U[b, k])) * t_s
        return out.reshape(E, 2 * C2, 2 * C2)

    def _collinear(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(U (2, 2), α_c s_c (C,), β_c (C,)) when 𝒢 is spin-diagonal and all spins are ±û; else None."""
        if not isinstance(self.prop, ContinuumPropagators):
            return None
        dirs = [site.direction for site in self.prop.sites for _ in site.channels]
        u = dirs[0]
        dots = np.array([float(np.dot(d, u)) for d in dirs])
        if np.any(np.abs(np.abs(dots) - 1.0) > 1e-14):
            return None
        pauli = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex)
        vals, vecs = np.linalg.eigh(np.einsum("i,iab->ab", u, pauli))
        U = vecs[:, ::-1]                                                      # columns: û·σ = +1, −1
        alpha_s = np.array([a * np.sign(dt) for (site, (_, a, _)), dt in
                            zip(((s, c) for s in self.prop.sites for c in s.channels), dots, strict=True)])
        beta = np.array([b for site in self.prop.sites for _, _, b in site.channels])
        return U, alpha_s, beta

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
            if self._cached_bytes() + size > self.cache_bytes:
                self._y.clear()
            self._y[k] = out
        return out

    @staticmethod
    def _contract(rows: np.ndarray, cols: np.ndarray | None, tt: np.ndarray) -> np.ndarray:
        """−½ Im Σ rows·T̃·cols, (P, E); ``cols is None`` means ``rows`` is the outer product.

        Two explicit steps, y = T̃·cols (batched matrix–vector products) then Σ rows·y, instead of a
        three-operand einsum (whose ``optimize=True`` path search and intermediates cost more than the sums)."""
        if cols is None:
            return -0.5 * np.imag(np.einsum("peab,eba->pe", rows, tt))
        y = np.einsum("eba,tpea->tpeb", tt, cols)
        return -0.5 * np.imag(np.einsum("tpeb,tpeb->pe", rows, y))

    def _tip_columns_apply(self, n_points: int, n_k: int) -> bool:
        """Whether :meth:`_tip_columns` applies and is cheaper than the full t: the propagators use the generic
        reduction (m = 2n, T̃ = S ⊗ t) and the tip needs fewer right-hand sides (K·P·2) than t's n columns."""
        rhs = 2 * n_k * n_points * self._n_tip_rows()
        return self.tip_columns and self._generic_reduction() and 0 < rhs <= self.prop.n

    def _generic_reduction(self) -> bool:
        """Whether the propagators' ``reduce_t`` is the generic T̃[(s, i), (s′, j)] = S[s′, s] t[i, j]."""
        return type(self.prop).reduce_t in (PropagatorSet.reduce_t, RashbaPropagators.reduce_t)

    def _n_tip_rows(self) -> int:
        """Rows per τ component of the reduced map (several tip orbitals of a lattice stack on the K axis)."""
        return max(1, len(getattr(self.prop, "tip_orbitals", (None,))))

    def _tip_columns(self, rows: np.ndarray, cols: np.ndarray, z: np.ndarray, spin: np.ndarray,
                     key: Hashable | None = None) -> np.ndarray:
        """−½ Im Σ rows·T̃·cols, (P, E), for the generic reduction T̃[(s, i), (s′, j)] = S[s′, s] t[i, j] without
        forming t: X = t·c = (1 − v𝒢)⁻¹(v·c) for the K·P·2 tip columns c = cols[k, p, e, (s′, ·)] only
        (one LU of the n × n matrix per energy and a few right-hand sides instead of n), then
        Σ_{k,s,i} rows[k, p, e, (s, i)] Σ_{s′} S[s′, s] X[k, p, e, s′, i].  v is block-diagonal (4 × 4 per
        channel), so v𝒢 and v·c are block products.  With ``key`` (the tip geometry and energies), a later call
        after a change of at most half of the channels' vertices solves only for those (:meth:`_downfold`)."""
        G = self.channel_matrix(z)
        E, n, _ = G.shape
        vb = vertex_blocks(self.prop)                                       # (C, 4, 4)
        K, P = cols.shape[:2]
        R = rows.reshape(K * P, E, 2, n).transpose(1, 0, 2, 3)                  # (E, q = (k, p), s, i)
        c = cols.reshape(K * P, E, 2, n).transpose(1, 3, 0, 2)                  # (E, i, q, s′)
        D = self._downfold(key, vb, G, R, c) if key is not None and self.fold_channels else None
        if D is None:
            X = self._solve_columns(vb, G, c)
            V = np.einsum("eqsi,eiqt->eqst", R, X)                              # rows_(q, s) · X_(q, s′)
        else:                           # only the channels C changed since D was built: an nC × nC solve
            ic, G_eff, c_eff, r_eff, base = D
            X_C = self._solve_columns(vb[ic], G_eff, c_eff)
            V = base + np.einsum("eqsj,ejqt->eqst", r_eff, X_C)
        out = np.einsum("ts,eqst->qe", spin, V).reshape(K, P, E).sum(axis=0)    # Σ_{s,s′} S[s′, s] V
        return -0.5 * np.imag(out)

    @staticmethod
    def _solve_columns(vb: np.ndarray, G: np.ndarray, c: np.ndarray) -> np.ndarray:
        """X = (1 − v𝒢)⁻¹ v·c for block-diagonal v (blocks vb (C, 4, 4)), 𝒢 (E, n, n), c (E, n, …)."""
        E, n, _ = G.shape
        C = vb.shape[0]
        A = np.matmul(-vb, G.reshape(E, C, 4, n)).reshape(E, n, n)
        A[:, np.arange(n), np.arange(n)] += 1.0
        rhs = np.matmul(vb, c.reshape(E, C, 4, -1)).reshape(E, n, -1)
        return np.linalg.solve(A, rhs).reshape(c.shape)

    def _downfold(self, key: Hashable, vb: np.ndarray, G: np.ndarray, R: np.ndarray, c: np.ndarray
                  ) -> tuple[np.ndarray, ...] | None:
        """For a tip spectrum after a change of a few channels' vertices (couplings or spins) C, the unchanged
        channels U folded into effective propagators (exact block elimination of (1 − v𝒢)X = v·c):

            X_U = Y_c + Y_G X_C,  [Y_G, Y_c] = (1 − v_U 𝒢_UU)⁻¹ v_U [𝒢_UC, c_U],
            (1 − v_C 𝒢_eff) X_C = v_C c_eff,  𝒢_eff = 𝒢_CC + 𝒢_CU Y_G,  c_eff = c_C + 𝒢_CU Y_c,
            rows·X = rows_U·Y_c + (rows_C + rows_U Y_G)·X_C,

        cached per tip geometry and energies while v_U stays: (channels C, 𝒢_eff, c_eff, r_eff, base), or None
        (no earlier call to compare with, nothing or more than half of the channels changed: the full solve)."""
        ent = self._d.get(key)
        if ent is None:
            if len(self._d) > 8:
                self._d.clear()
            self._d[key] = {"prev": vb.copy(), "D": None}
            return None
        D = ent["D"]
        changed = np.any(vb != ent["prev"], axis=(1, 2))
        ent["prev"] = vb.copy()
        if D is not None and np.array_equal(vb[D[0]], D[1]):
            return D[2:]
        nC = int(changed.sum())
        Ctot = vb.shape[0]
        if nC == 0 or 2 * nC > Ctot:
            return None
        iu, ic = np.flatnonzero(~changed), np.flatnonzero(changed)
        ru = (4 * iu[:, None] + np.arange(4)[None, :]).ravel()
        rc_ = (4 * ic[:, None] + np.arange(4)[None, :]).ravel()
        E = G.shape[0]
        GUU, GUC = G[:, ru][:, :, ru], G[:, ru][:, :, rc_]
        GCU, GCC = G[:, rc_][:, :, ru], G[:, rc_][:, :, rc_]
        q = c.shape[2]
        Y = self._solve_columns(vb[iu], GUU, np.concatenate([GUC, c[:, ru].reshape(E, ru.size, -1)], axis=2))
        YG, Yc = Y[:, :, :rc_.size], Y[:, :, rc_.size:]
        G_eff = GCC + GCU @ YG
        c_eff = (c[:, rc_].reshape(E, rc_.size, -1) + GCU @ Yc).reshape(E, rc_.size, q, 2)
        RU = R[..., ru]
        r_eff = R[..., rc_] + (RU.reshape(E, -1, ru.size) @ YG).reshape(E, q, 2, rc_.size)
        base = np.einsum("eqsi,eiqt->eqst", RU, Yc.reshape(E, ru.size, q, 2))
        ent["D"] = (iu, vb[iu].copy(), ic, G_eff, c_eff, r_eff, base)
        return ent["D"][2:]

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
        Double precision throughout; the reduced maps are cached (keyed by points and energies).  With the
        generic reduction (Rashba, lattice) and at most n right-hand sides (K·P·2 ≤ n: a few tip points),
        X = t·Φ̄ comes from one LU of 1 − v𝒢 per energy with those columns only (:meth:`_tip_columns`).

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
        n_k = 2 if part == "total" else 1
        if self._tip_columns_apply(pts.shape[0], n_k):
            rows, cols = self._reduced(pts, z, rc, part, exact=True)
            if cols is not None:
                out += self._tip_columns(rows, cols, z, spin, key=(pts.tobytes(), z.tobytes(), rc, part))
                return out
        tt = self.prop.reduce_t(self.t_matrix(z), spin)
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

    def map_cost(self, n_points: int, n_energies: int, *, extent: float, part: str = "electron",
                 energies: np.ndarray | None = None, orbital_radius: float | None = None,
                 tip_height: float | None = None) -> tuple[float, float]:
        """Estimated cost of :meth:`weighted_map` before computing it: (bytes, radial evaluations).

        ``n_points`` pixels within ``extent`` nm of every site, ``n_energies`` energies kept.

        * Fast path (propagators with a smooth factorisation, one tip height): the cached S, S̄
          (complex128, pixels × Q·F with Q ≤ 28 energy nodes and F functions: 2 per channel, 6 with
          Rashba SOC), the interpolation's temporaries (about three more of them), the energy factors
          (E × K × m × F, three times), the per-energy kernels' temporaries (the larger of the dense
          T̃, T̃·P̄, 𝒦_e and the channel-block products, E × (2·2K·n·F + 2K·F² + 2F²)), the check values
          and 𝒢(z), t(z) with the solver's temporaries (5 × E × n²);
          the evaluations are the radial tables (radii × Q × harmonics, radii at λ_F/128 and ρ₀/24) or,
          where those are longer than the pixels, the pixels × Q × harmonics, plus 4 check points per
          site × E × harmonics.
        * Otherwise the reduced maps: rows and columns (complex64, τ components × pixels × energies × 2
          per channel, twice), streamed over points within the cache budget when larger, each chunk with
          its radial table (λ_F/64 grid, when shorter than four times the chunk's pixels), and 𝒢, t.

        With ``energies`` (the kept energies, meV) and the geometry keywords of :meth:`weighted_map`, the
        node count of the fast path is found as the map would find it (a few evaluations at 4 points per
        site) and the estimate is that path's; without them it is the larger of the two (an upper bound:
        the fast path declines when 28 nodes do not reach its tolerance).  A panel compares them with its
        budget and coarsens or refuses a map instead of exhausting the machine.
        """
        n_tau = 2 if part == "total" else 1
        channels = len(self.prop.index)
        harmonics = sum(len(SHAPES[shape][1]) if shape in SHAPES else 1 for _, shape in self.prop.index)
        lam = 2.0 * np.pi / self.substrate.kf
        E = max(int(n_energies), 1)
        solve = 5.0 * E * self.prop.n ** 2 * 16.0            # 𝒢(z), t(z) and the solver's temporaries
        # ---- reduced-map path
        per_point = 1.5 * 2 * n_tau * E * 2 * channels * 8.0
        rows = n_points * per_point
        nr = int(np.ceil(extent / (lam / 64))) + 4
        if rows <= self.cache_bytes:
            chunks, chunk = 1, n_points
        else:
            chunk = max(1, int(self.cache_bytes // per_point))
            chunks, rows = int(np.ceil(n_points / chunk)), min(rows, self.cache_bytes)
        if nr <= 20000 and nr <= 4 * chunk:          # the propagators' rule for a radial table
            slow = (solve + rows + 12.0 * nr * E * 16.0, float(chunks * nr * E * harmonics))
        else:
            slow = (solve + rows + 12.0 * min(chunk, 2e5 / max(E * channels, 1)) * E * 16.0,
                    float(n_points * E * harmonics))
        # ---- fast path
        if self.prop.map_factors(np.array([1j]), part) is None:
            return slow
        factors = self.prop.map_factors(np.array([1j]), part)
        n_fun = int(factors[0].shape[-1]) if factors is not None else 2 * channels   # F (Rashba: harmonic basis)
        m = self.prop.reduce_t(np.zeros((1, self.prop.n, self.prop.n), dtype=complex), np.eye(2)).shape[-1]
        x = 2 * n_tau                                        # (τ, tip spin) pairs of the channel-block kernels
        kernel_tmp = 16.0 * E * max(m * m + m * n_fun + n_fun ** 2,                         # dense: T̃, T̃·P̄, 𝒦_e
                                    2 * x * self.prop.n * n_fun + x * n_fun ** 2 + 2 * n_fun ** 2)   # blocks
        Q = max(FAST_NODES)
        if energies is not None:
            planned = self._plan_nodes(np.asarray(energies, dtype=float), extent, part, orbital_radius, tip_height)
            if planned is None:
                return slow
            Q = planned
        rho0 = orbital_radius if orbital_radius is not None else 0.1
        step = min(lam / _PER_WAVELENGTH, rho0 / _PER_RHO0) if rho0 > 0 else lam / _PER_WAVELENGTH
        radii = int(np.ceil(extent / step)) + 7
        per_site = min(radii, n_points) * Q * harmonics
        if self.prop.map_factor_terms(np.array([1j]), part) is not None:    # energy-summed term kernels
            nq, nt, n = Q * (Q + 1) / 2, 6.0, self.prop.n                       # node pairs, term pairs (A = 3)
            kernel_tmp = max(kernel_tmp, 16.0 * (E * nq * nt + 2.0 * nq * nt * n * n + nq * (3 * n) ** 2
                                                 + 2.0 * nq * 3 * n * n_fun + 3.0 * Q * Q * n_fun ** 2))
        fast_bytes = (solve + 4.0 * n_points * Q * n_fun * 16.0 + 3.0 * E * n_tau * m * n_fun * 16.0
                      + 2.0 * radii * Q * n_fun * 5 * 16.0 + 8.0 * len(self.prop.sites) * E * n_fun * 16.0
                      + kernel_tmp)
        fast = (fast_bytes, float(per_site + 4 * len(self.prop.sites) * E * harmonics))
        if energies is not None:
            return fast
        return max(fast[0], slow[0]), max(fast[1], slow[1])

    def _plan_nodes(self, energies: np.ndarray, extent: float, part: str, orbital_radius: float | None,
                    tip_height: float | None) -> int | None:
        """Node count the fast path would take for pixels within ``extent`` of every site (None: it declines)."""
        z = energies.ravel() + 1j * self.substrate.gamma
        ring = []
        for s in self.prop.sites:
            for r in (0.0, extent):
                ring.append(s.position[:2] + np.array([r, 0.0]))
        pts, rc = tip_geometry(self.substrate, np.array(ring), tip_height=tip_height, orbital_radius=orbital_radius)
        probe = _FastMap.__new__(_FastMap)
        try:
            nodes, _ = probe._nodes(self.prop, pts, z, rc)
        except _NoFastMap:
            return None
        return int(nodes.size)

    def weighted_map(self, points: np.ndarray, energies: np.ndarray, weights: np.ndarray, *,
                     part: str = "electron", spin_axis: Sequence[float] | None = None,
                     tip_radius: float = 0.1, prune: float = 1e-8, tip_height: float | None = None,
                     orbital_radius: float | None = None) -> np.ndarray:
        """Σ_j w_j ρ(r, E_j) at every point: a dI/dV map when w are tunnelling weights.

        The smallest weights, together at most ``prune``·Σ|w|, are skipped
        (:func:`gapscope.kernels.tunneling.significant_weights`).  Where the propagators offer a
        smooth factorisation (:meth:`PropagatorSet.map_factors`; continuum and Rashba bands) and the
        tip has one height, the map is Σ S(p)·𝒦·S̄(p) over angular harmonics e^{inφ} of radial profiles
        tabulated per site and interpolated (6-point Lagrange, λ_F/128 and ρ₀/24 steps) at a few nodes
        of Ω(z) interpolated over all energies (checked to 1e-9 against direct evaluation): ≲ 1e-8 of
        the map's scale, cached in double precision (bytes: :meth:`map_cost`); a coupling change then
        costs the t-matrix solves and small products.  Otherwise single-precision cached reduced maps
        (relative error ~1e-7; streamed over points when larger than the cache) and, for large maps,
        tabulated radial functions.  Points and the geometry keywords (``tip_radius``, ``tip_height``,
        ``orbital_radius``) as in :meth:`ldos`.
        """
        if self.substrate.gamma <= 0.0:
            raise ValueError("maps need substrate.gamma > 0 (use ysr.residue_maps at Γ = 0)")
        pts, rc = tip_geometry(self.substrate, points, tip_radius=tip_radius, tip_height=tip_height,
                               orbital_radius=orbital_radius)
        w = _v.array("weights", weights).ravel()
        e = _v.array("energies", energies).ravel()
        nambu.tau_projector(part)
        spin = nambu.spin_projector(spin_axis)
        keep = tunneling.significant_weights(w, tolerance=prune)
        if not np.any(keep):
            return np.zeros(pts.shape[0])
        e, w = e[keep], w[keep]
        z = e + 1j * self.substrate.gamma
        if self.prop.n == 0:
            return np.full(pts.shape[0], float(self._bulk(z, part, spin) @ w))
        fast = self._fast_map(pts, z, rc, part)
        if fast is not None:               # smooth harmonic factorisation: exact to ~1e-9 of the map's scale
            t = self.t_matrix(z)
            bulk = float(self._bulk(z, part, spin) @ w)
            if not self.block_kernels:
                return bulk + fast.correction(self.prop.reduce_t(t, spin) * w[:, None, None], merge=False)
            if fast.terms is not None and fast.terms_cheaper(self.prop.n):    # P = Σ_α c_α P_α: energy sums first
                return bulk + fast.correction_terms(t, w, spin, self.prop.reduce_t, self._generic_reduction())
            if fast.blocks is not None and self._generic_reduction():     # T̃ = S ⊗ t: channel blocks, no T̃
                return bulk + fast.correction_t(t * w[:, None, None], spin)
            return bulk + fast.correction(self.prop.reduce_t(t, spin) * w[:, None, None])
        radial = self.prop.radial_profile(pts, rc)
        if radial is not None:             # isotropic single impurity: compute a profile, interpolate
            centre, grid, dist = radial
            prof = self.weighted_map(centre + np.c_[grid, np.zeros_like(grid), np.zeros_like(grid)], e, w,
                                     part=part, spin_axis=spin_axis, orbital_radius=rc, prune=0.0)
            return _lagrange4(grid, prof, dist)
        bulk = float(self._bulk(z, part, spin) @ w)
        ttw = self.prop.reduce_t(self.t_matrix(z), spin) * w[:, None, None]
        per_point = 1.5 * 2 * (2 if part == "total" else 1) * z.size * ttw.shape[-1] * 8
        if pts.shape[0] * per_point > self.cache_bytes:     # too large to cache: stream over points
            step = max(1, int(self.cache_bytes // per_point))
            out = np.empty(pts.shape[0])
            for lo in range(0, pts.shape[0], step):
                r_, c_ = self.prop.reduced_map(pts[lo:lo + step], z, rc, part, tabulate=True)
                out[lo:lo + step] = self._corr(r_, c_, ttw)
            return bulk + out
        rows, cols = self._reduced(pts, z, rc, part)
        return bulk + self._corr(rows, cols, ttw)

    @staticmethod
    def _corr(rows: np.ndarray, cols: np.ndarray | None, ttw: np.ndarray) -> np.ndarray:
        """−½ Im Σ_e rows·(w T̃)·cols per point for single-precision reduced maps (``cols`` None: outer product)."""
        tt = ttw.astype(rows.dtype)
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
        return corr.astype(float)

    def _fast_map(self, pts: np.ndarray, z: np.ndarray, rc: float, part: str) -> _FastMap | None:
        """The cached :class:`_FastMap` of these points and energies, or None where it does not apply."""
        if not self.fast_maps:
            return None
        k = (pts.tobytes(), z.tobytes(), rc, part, "fast")
        if k in self._y:
            return self._y[k][0]
        try:
            fast: _FastMap | None = _FastMap(self.prop, pts, z, rc, part)
        except _NoFastMap:
            fast = None
        size = fast.nbytes if fast is not None else 0
        if size <= self.cache_bytes:
            if self._cached_bytes() + size > self.cache_bytes:
                self._y.clear()
            self._y[k] = (fast,)
        return fast

    def _cached_bytes(self) -> int:
        return int(sum(a.nbytes for v in self._y.values() for a in v if a is not None))


# ----------------------------------------------------------------------------- fast maps
#: Ω-interpolation: relative tolerance of the smooth functions at the check points, node counts tried
FAST_TOL = 1e-9
FAST_NODES = (4, 6, 8, 11, 14, 18, 23, 28)
#: radial tables: points per wavelength 2π/k of the oscillations, and per regulariser ρ₀ = √(h² + r_o²)
_PER_WAVELENGTH = 128
_PER_RHO0 = 24


class _NoFastMap(Exception):
    """The fast map path does not apply (the engine then uses the reduced maps)."""


def _leja(x: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first n Leja points of the (complex) set x: each next one maximises Π|x − x_j|."""
    n = min(n, x.size)
    first = int(np.argmax(np.abs(x - x.mean())))
    idx = [first]
    logd = np.log(np.abs(x - x[first]) + 1e-300)
    for _ in range(1, n):
        logd[idx] = -np.inf
        j = int(np.argmax(logd))
        if not np.isfinite(logd[j]):
            break
        idx.append(j)
        logd = logd + np.log(np.abs(x - x[j]) + 1e-300)
    return np.array(idx, dtype=np.intp)


def _lagrange_basis(nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """L[e, q] = Π_{j≠q} (x_e − x_j)/(x_q − x_j): polynomial interpolation at ``nodes`` evaluated at x."""
    L = np.ones((x.size, nodes.size), dtype=complex)
    for q in range(nodes.size):
        for j in range(nodes.size):
            if j != q:
                L[:, q] *= (x - nodes[j]) / (nodes[q] - nodes[j])
    return L


def _lagrange6(x0: float, h: float, n: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """6-point Lagrange stencils on the uniform grid x0 + h·j (j < n): (first index (P,), weights (P, 6))."""
    u = (x - x0) / h
    j0 = np.clip(np.floor(u).astype(np.intp), 2, n - 4)
    t = u - j0
    nodes = np.arange(-2, 4)
    w = np.ones((x.size, 6))
    for a in range(6):
        for b in range(6):
            if a != b:
                w[:, a] *= (t - nodes[b]) / (nodes[a] - nodes[b])
    return j0 - 2, w


class _FastMap:
    """A map's propagators as Σ_{q,f} S_f(r, x_q) L_q(z): smooth harmonic functions at a few nodes x_q of the
    variable x(z) of :meth:`PropagatorSet.map_variable`, interpolated over all energies by the Lagrange
    polynomials L_q, and, for each site, tabulated per harmonic on a radial grid (6-point Lagrange) when
    that is cheaper than evaluating every pixel.

    With the energy-only factors P of :meth:`PropagatorSet.map_factors`,

        Σ_e w_e Σ_{k,a,b} rows[k,p,e,a] T̃[e,a,b] cols[k,p,e,b] = S(p)·𝒦·S̄(p),
        𝒦[(q,f),(r,g)] = Σ_e L_q(z_e) L_r(z_e) Σ_{k,a,b} P[k,e,a,f] w_e T̃[e,a,b] P̄[k,e,b,g],

    so a coupling change costs the E small solves, 𝒦 (E·(QF)²) and one (P × QF)·(QF × QF) product.  The
    node count Q grows until the interpolated smooth functions agree with direct evaluation to
    ``FAST_TOL`` (relative) at check points spanning the map's distances, all energies; the radial grid
    has λ/128 and ρ₀/24 steps (6-point interpolation error ≲ 1e-8 relative).  Raises ``_NoFastMap`` when
    the propagators have no factorisation, the tip height varies, or no node count up to 28 suffices.
    """

    #: tabulate S only where S̄ = S·diag(d) on the radial grid (False: both, as before — for comparisons)
    pair_ratios: bool = True
    #: use the propagators' term form of P (:meth:`correction_terms`) where offered (False: per-energy kernels)
    use_terms: bool = True

    def __init__(self, prop: PropagatorSet, pts: np.ndarray, z: np.ndarray, rc: float, part: str,
                 tabulate: bool | None = None) -> None:
        #: P = Σ_α c_α(z) P_α of :meth:`PropagatorSet.map_factor_terms`, or None (then P, P̄ are formed here;
        #: with the terms they are formed only if :meth:`correction` asks for them)
        self.terms = prop.map_factor_terms(z, part) if self.use_terms else None
        fac = prop.map_factors(z if self.terms is None else z[:1], part)
        if fac is None:
            raise _NoFastMap("no smooth factorisation")
        self._fac_args = (prop, z, part)
        self._P: np.ndarray | None = fac[0] if self.terms is None else None
        self._Pb: np.ndarray | None = fac[1] if self.terms is None else None
        owner = fac[2]
        self.n_fun = int(fac[0].shape[-1])
        self.nodes, self.L = self._nodes(prop, pts, z, rc)
        zq = z[self.nodes]
        F = self.n_fun
        Q = self.nodes.size
        self.tabulated: list[bool] = []
        #: per site: its columns in the Q·F layout, S and S̄ at the pixels (P, Q·F_i) (empty when a lone site's
        #: tables suffice), its same-site radial tables or None
        self.sites: list[tuple[np.ndarray, np.ndarray, np.ndarray, _SiteTables | None]] = []
        users = [i for i in range(len(prop.sites)) if np.any(owner == i)]
        #: per site: d with S̄ = S·diag(d) (columns in the Q·F layout), or None — then the two cross-site terms
        #: of a pair merge into one product
        self.ratios: list[np.ndarray | None] = []
        for i in users:
            self._grid_ratio: np.ndarray | None = None
            s, sb, idx, tables = self._site(prop, i, pts, zq, rc, tabulate)
            if self._grid_ratio is not None:           # found on the radial grid (S̄ = S·d exactly there)
                self.ratios.append(np.tile(self._grid_ratio, Q))
            else:
                self.ratios.append(self._ratio(s.reshape(pts.shape[0], -1), sb.reshape(pts.shape[0], -1)))
            cols = (np.arange(Q)[:, None] * F + idx[None, :]).ravel()
            if len(users) == 1 and tables is not None:
                s = sb = np.zeros((pts.shape[0], 0, idx.size), dtype=complex)
            self.sites.append((cols, np.ascontiguousarray(s.reshape(pts.shape[0], -1)),
                               np.ascontiguousarray(sb.reshape(pts.shape[0], -1)), tables))
        self.n_pixels = pts.shape[0]
        self.blocks = self._channel_blocks(prop.n) if self.terms is None else None

    def _factors(self) -> tuple[np.ndarray, np.ndarray]:
        if self._P is None or self._Pb is None:
            prop, z, part = self._fac_args
            fac = prop.map_factors(z, part)
            assert fac is not None
            self._P, self._Pb = fac[0], fac[1]
        return self._P, self._Pb

    @property
    def P(self) -> np.ndarray:
        """The energy factors P (K, E, m, F) of :meth:`PropagatorSet.map_factors`."""
        return self._factors()[0]

    @property
    def Pb(self) -> np.ndarray:
        """The energy factors P̄ (K, E, m, F)."""
        return self._factors()[1]

    def _channel_blocks(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """For the generic reduction (rows a = s·n + 4c + j): when P and P̄ are block-diagonal by channel (channel
        c's rows touch only its f functions ``cols[c]``), the blocks (x = (k, s), E, C, f, 4) of Pᵀ, P̄ as
        (K, 2, E, C, 4, f), and the columns (C, f); else None."""
        K, E, m, F = self.P.shape
        if m != 2 * n or n % 4:
            return None
        C = n // 4
        nz = (np.any(self.P != 0, axis=(0, 1)) | np.any(self.Pb != 0, axis=(0, 1))).reshape(2, C, 4, F).any(axis=(0, 2))
        counts = nz.sum(axis=1)
        if C == 0 or np.any(counts != counts[0]) or np.any(nz.sum(axis=0) > 1):
            return None
        cols = np.array([np.flatnonzero(nz[c]) for c in range(C)]).reshape(C, -1)
        ic, ij, iu = np.arange(C)[:, None, None], np.arange(4)[None, :, None], cols[:, None, :]
        blk = self.P.reshape(K, E, 2, C, 4, F)[:, :, :, ic, ij, iu].transpose(0, 2, 1, 3, 4, 5)   # k s e c j u
        AT = np.ascontiguousarray(np.swapaxes(blk, -1, -2)).reshape(2 * K, E, C, cols.shape[1], 4)
        Pbb = np.ascontiguousarray(self.Pb.reshape(K, E, 2, C, 4, F)[:, :, :, ic, ij, iu].transpose(0, 2, 1, 3, 4, 5))
        return AT, Pbb, cols

    @staticmethod
    def _ratio(s: np.ndarray, sb: np.ndarray) -> np.ndarray | None:
        """d with S̄ = S·diag(d) to 1e-13 (the functions of Φ̄ are those of Φ up to a sign per function), or None."""
        if s.size == 0:
            return None
        num = np.einsum("pu,pu->u", np.conj(s), sb)
        den = np.einsum("pu,pu->u", np.conj(s), s).real
        d = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        if np.max(np.abs(sb - s * d)) > 1e-13 * max(float(np.max(np.abs(sb))), 1e-300):
            return None
        return d

    @staticmethod
    def _geometry(prop: PropagatorSet, i: int, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        d = pts - prop.sites[i].position
        if np.ptp(d[:, 2]) > 0.0:
            raise _NoFastMap("tip heights differ")
        return np.hypot(d[:, 0], d[:, 1]), np.arctan2(d[:, 1], d[:, 0]), float(d[0, 2])

    def _nodes(self, prop: PropagatorSet, pts: np.ndarray, z: np.ndarray, rc: float
               ) -> tuple[np.ndarray, np.ndarray]:
        x = prop.map_variable(z)
        if z.size <= FAST_NODES[0]:
            return np.arange(z.size), np.eye(z.size, dtype=complex)
        check = []
        for i, site in enumerate(prop.sites):
            d, _, h = self._geometry(prop, i, pts)
            for r, ang in zip(np.linspace(d.min(), d.max(), 4), (0.0, 1.1, 2.3, 0.4), strict=True):
                check.append((i, site.position + np.array([r * np.cos(ang), r * np.sin(ang), h])))
        exact = []
        for i in range(len(prop.sites)):
            cp = np.array([p for j, p in check if j == i])
            s, sb, _ = prop.map_smooth(i, cp, z, rc)
            exact.append(np.concatenate([s, sb], axis=-1))          # (4, E, 2F_i)
        order = _leja(x, max(FAST_NODES))
        for q in FAST_NODES:
            if q >= z.size:
                return np.arange(z.size), np.eye(z.size, dtype=complex)
            nodes = order[:q]
            L = _lagrange_basis(x[nodes], x)
            err = max(float(np.max(np.abs(np.einsum("eq,pqf->pef", L, ex[:, nodes]) - ex)))
                      / max(float(np.max(np.abs(ex))), 1e-300) for ex in exact)
            if err <= FAST_TOL:
                return nodes, L
        raise _NoFastMap(f"the smooth functions need more than {max(FAST_NODES)} energy nodes")

    def _site(self, prop: PropagatorSet, i: int, pts: np.ndarray, zq: np.ndarray, rc: float,
              tabulate: bool | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, _SiteTables | None]:
        d, phi, height = self._geometry(prop, i, pts)
        rho0 = float(np.hypot(height, rc))
        nphi = 2 * int(prop.map_harmonic_max) + 2
        step = 2.0 * np.pi / prop.map_wavenumber() / _PER_WAVELENGTH
        if rho0 > 0.0:
            step = min(step, rho0 / _PER_RHO0)
        n = int(np.ceil((d.max() - d.min()) / step)) + 7
        if tabulate is None:
            tabulate = rho0 > 0.0 and n * nphi <= 2 * pts.shape[0]
        self.tabulated.append(bool(tabulate))
        if not tabulate:                                # direct evaluation at every pixel
            return (*prop.map_smooth(i, pts, zq, rc), None)
        x0 = d.min() - 2.5 * step                       # radii may be < 0: s_n(−d) = (−1)^n s_n(d), analytic
        grid = x0 + step * np.arange(n)
        orders, s, sb, idx = prop.map_harmonics(i, grid, height, zq, rc)       # (n, Q, H, F_i)
        F_i = s.shape[-1]
        if not self.pair_ratios:
            ratio = None
        elif sb is s:                               # the propagators' S̄ is S itself
            ratio = np.ones(F_i, dtype=complex)
        else:
            ratio = self._ratio(s.reshape(-1, F_i), sb.reshape(-1, F_i))
        both = s if ratio is not None else np.concatenate([s, sb], axis=-1)    # S̄ = S·diag(ratio): S only
        big = np.max(np.abs(both), axis=(0, 1))                                # (H, 2F_i)
        fs, hs = np.nonzero(big.T > 1e-14 * big.max())                         # the harmonics of each function,
        table = np.ascontiguousarray(both[:, :, hs, fs]).reshape(n, -1)       # (n, Q·pairs)
        j0, w = _lagrange6(x0, step, n, d)
        stencil = sparse.csr_matrix((w.ravel(), (np.repeat(np.arange(d.size), 6),
                                                 (j0[:, None] + np.arange(6)[None, :]).ravel())), shape=(d.size, n))
        # real stencil times the table's real and imaginary parts (half the products of a complex sparse product)
        acc = np.ascontiguousarray(stencil @ table.view(np.float64)).view(complex).reshape(d.size, zq.size, hs.size)
        phase = _phases(phi, np.arange(orders.min(), orders.max() + 1))
        acc *= phase[:, orders[hs] - orders.min()][:, None, :]
        if hs.size == both.shape[-1] and np.array_equal(fs, np.arange(hs.size)):
            out = acc                               # one harmonic per function: acc is already S
        else:
            out = np.zeros((d.size, zq.size, both.shape[-1]), dtype=complex)   # pairs are sorted by function
            first = np.flatnonzero(np.r_[True, fs[1:] != fs[:-1]])
            count = np.diff(np.r_[first, fs.size])
            for r in range(int(count.max())):                 # r-th harmonic of every function that has one
                has = count > r
                out[:, :, fs[first[has]]] += acc[:, :, first[has] + r]
        if ratio is not None:                       # S̄'s tables and pixel values from S's
            self._grid_ratio = ratio
            keep = ratio[fs] != 0
            tab = table.reshape(n, zq.size, hs.size)
            same = bool(np.all(ratio == 1.0))
            tables = _SiteTables(stencil, phi, orders, tab, hs, fs,
                                 tab if same else tab[:, :, keep] * ratio[fs[keep]], hs[keep], fs[keep], idx)
            return out, out if same else out * ratio, idx, tables
        left, right = fs < F_i, fs >= F_i
        tables = _SiteTables(stencil, phi, orders,
                             table.reshape(n, zq.size, hs.size)[:, :, left], hs[left], fs[left],
                             table.reshape(n, zq.size, hs.size)[:, :, right], hs[right], fs[right] - F_i, idx)
        return out[..., :F_i], out[..., F_i:], idx, tables

    @property
    def nbytes(self) -> int:
        per_site = sum(s.nbytes + sb.nbytes + (t.nbytes if t is not None else 0) for _, s, sb, t in self.sites)
        if self.terms is not None and self._P is None:
            fac = sum(a.nbytes for a in self.terms)
        else:
            fac = self.P.nbytes + self.Pb.nbytes
        return int(per_site + fac + self.L.nbytes)

    def correction(self, tt: np.ndarray, merge: bool = True) -> np.ndarray:
        """−½ Im S·𝒦·S̄ per pixel for the weighted T̃ (E, m, m) (w_e included), (P,).

        Same-site blocks of tabulated sites go through their radial tables: G_N(d) = Σ s_u 𝒦 s̄_v over the
        harmonic pairs with n_u + n_v = N on the grid, then Σ_N e^{iNφ} G_N(d) at the pixels (6-point
        Lagrange, products oscillate at 2k: grid λ/128); the rest are (P × QF_i)·(QF_i × QF_j) products, the two
        of a site pair merged into one where S̄ = S·diag(d) per site (``merge``).
        """
        P, Pb = self._factors()
        Ke = sum(np.swapaxes(Pk, 1, 2) @ (tt @ Pbk) for Pk, Pbk in zip(P, Pb, strict=True))   # (E, F, F)
        return self._correction(Ke, merge)

    def correction_t(self, tw: np.ndarray, spin: np.ndarray) -> np.ndarray:
        """:meth:`correction` for the generic reduction T̃[(s, i), (s′, j)] = S[s′, s] t[i, j], from the weighted t
        (E, n, n) itself: with P, P̄ block-diagonal by channel (:meth:`_channel_blocks`),

            𝒦_e[(c, u), (d, v)] = Σ_{k, s, j} P[k, e, (s, c, j), u] Σ_b t[e, (c, j), (d, b)] P̄ˢ[k, e, s, (d, b), v],
            P̄ˢ[…, s, …] = Σ_{s′} S[s′, s] P̄[…, s′, …],

        4 × f blocks instead of the dense (2n × 2n)·(2n × F) products, and no T̃."""
        assert self.blocks is not None
        AT, Pbb, cols = self.blocks
        E, n, _ = tw.shape
        C, f = cols.shape
        Pbs = np.einsum("ts,ktedbv->ksedbv", spin, Pbb).reshape(-1, E, C, 4, f)
        Z = tw.reshape(E, n, C, 4).transpose(0, 2, 1, 3)[None] @ Pbs                  # (x, E, d, (c, j), v)
        Z = np.ascontiguousarray(Z.reshape(-1, E, C, C, 4, f).transpose(0, 1, 3, 4, 2, 5)).reshape(-1, E, C, 4, C * f)
        Kb = (AT @ Z).sum(axis=0).reshape(E, C * f, C * f)                           # (E, (c, u), (d, v))
        F = self.n_fun
        order = cols.ravel()
        if C * f == F and np.array_equal(order, np.arange(F)):
            return self._correction(Kb)
        Ke = np.zeros((E, F, F), dtype=Kb.dtype)
        Ke[:, order[:, None], order[None, :]] = Kb
        return self._correction(Ke)

    def terms_cheaper(self, n: int) -> bool:
        """Whether :meth:`correction_terms` takes fewer multiplications than the per-energy kernels of
        :meth:`correction` (it does for few nodes: its energy sums grow as Q², the per-energy kernels as E)."""
        assert self.terms is not None
        c, Pt, _ = self.terms
        E, Q = self.L.shape
        A, (K, _, m, F) = c.shape[0], Pt.shape
        nq, na = Q * (Q + 1) // 2, A * (A + 1) // 2
        terms = nq * na * E * n * n + K * 2 * nq * ((A * n) ** 2 * F + A * n * F * F)
        dense = E * K * (m * m * F + m * F * F) + E * Q * Q * F * F
        return terms <= dense

    def correction_terms(self, t: np.ndarray, w: np.ndarray, spin: np.ndarray,
                         reduce_t: Callable[[np.ndarray, np.ndarray], np.ndarray], generic: bool = False) -> np.ndarray:
        """:meth:`correction` for factors P[k, e] = Σ_α c_α(z_e) P_α[k], P̄ likewise (:attr:`terms`), from t (E, n, n),
        the weights w (E,) and the tip spin matrix: the energy sum first,

            U_{qr,αβ} = Σ_e L_q(z_e) L_r(z_e) w_e c_α(z_e) c_β(z_e) t_e      (q ≤ r, α ≤ β: one product),
            𝒦[(q, f), (r, g)] = Σ_{k,α,β} (P_α[k]ᵀ T̃(U_{qr,αβ}) P̄_β[k])[f, g],   T̃ = ``reduce_t`` (linear in t),

        symmetric in (q, r); no per-energy kernels.  ``generic``: ``reduce_t`` is T̃[(s, i), (s′, j)] = S[s′, s] t[i, j],
        whose S is then folded into P̄ instead of forming T̃ (half the products)."""
        assert self.terms is not None
        c, Pt, Pbt = self.terms
        E, n, _ = t.shape
        Q = self.L.shape[1]
        A = c.shape[0]
        K_, _, m, F = Pt.shape
        iq, jq = np.triu_indices(Q)
        ia, ja = np.triu_indices(A)
        pair = np.zeros((A, A), dtype=np.intp)
        pair[ia, ja] = pair[ja, ia] = np.arange(ia.size)
        Wt = ((self.L[:, iq] * self.L[:, jq])[:, :, None] * (c[ia] * c[ja]).T[:, None, :] * w[:, None, None])
        U = (Wt.reshape(E, -1).T @ t.reshape(E, n * n)).reshape(iq.size, ia.size, n, n)
        Kq = np.zeros((iq.size, F, F), dtype=complex)
        if generic and m == 2 * n:       # T̃ = S ⊗ U: fold S into P̄ (P̄ˢ[α, s, j] = Σ_s′ S[s′, s] P̄[α, s′, j])
            Xu = U[:, pair].transpose(0, 1, 3, 2, 4).reshape(iq.size, A * n, A * n)       # blocks (α, β) of U
            for k in range(K_):
                Pbs = np.einsum("ts,atjg->sajg", spin, Pbt[k].reshape(A, 2, n, F)).reshape(2, A * n, F)
                Pk = Pt[k].reshape(A, 2, n, F).transpose(1, 0, 2, 3).reshape(2, A * n, F)
                for s_ in range(2):
                    Kq += np.swapaxes(Pk[s_], 0, 1) @ (Xu @ Pbs[s_])
        else:
            Tt = reduce_t(U.reshape(-1, n, n), spin).reshape(iq.size, ia.size, m, m)
            X = Tt[:, pair].transpose(0, 1, 3, 2, 4).reshape(iq.size, A * m, A * m)      # blocks (α, β)
            for k in range(K_):
                Kq += np.swapaxes(Pt[k].reshape(A * m, F), 0, 1) @ (X @ Pbt[k].reshape(A * m, F))
        K = np.empty((Q, Q, F, F), dtype=complex)
        K[iq, jq] = Kq
        K[jq, iq] = Kq
        return self._apply(K.transpose(0, 2, 1, 3).reshape(Q * F, Q * F))

    def _correction(self, Ke: np.ndarray, merge: bool = True) -> np.ndarray:
        """−½ Im S·𝒦·S̄ per pixel from the per-energy kernels 𝒦_e (E, F, F) (weights included)."""
        E, F, _ = Ke.shape
        Q = self.L.shape[1]
        LL = (self.L[:, :, None] * self.L[:, None, :]).reshape(E, Q * Q)
        K = (LL.T @ Ke.reshape(E, F * F)).reshape(Q, Q, F, F).transpose(0, 2, 1, 3).reshape(Q * F, Q * F)
        return self._apply(K, merge)

    def _apply(self, K: np.ndarray, merge: bool = True) -> np.ndarray:
        """−½ Im S·𝒦·S̄ per pixel for the node kernel 𝒦 (Q·F, Q·F)."""
        F = self.n_fun
        acc = np.zeros(self.n_pixels, dtype=complex)
        for i, (ci, si, _, ti) in enumerate(self.sites):
            for j, (cj, sj, sbj, _) in enumerate(self.sites):
                if i == j and ti is not None:
                    acc += ti.same_site(K, F)
                elif i != j and merge and (di := self.ratios[i]) is not None and (dj := self.ratios[j]) is not None:
                    if i < j:    # S_i K_ij S̄_j + S_j K_ji S̄_i = S_i (K_ij D_j + (K_ji D_i)ᵀ) S_jᵀ with S̄ = S·D
                        M = K[np.ix_(ci, cj)] * dj[None, :] + (K[np.ix_(cj, ci)] * di[None, :]).T
                        acc += np.einsum("pi,pi->p", si @ M, sj)
                else:
                    acc += np.einsum("pi,pi->p", si @ K[np.ix_(ci, cj)], sbj)
        return -0.5 * np.imag(acc)


class _SiteTables:
    """One site's radial tables s_u(d, x_q) (harmonic n_u of function f_u) of S and S̄, with the pixels' stencil."""

    def __init__(self, stencil: sparse.csr_matrix, phi: np.ndarray, orders: np.ndarray,
                 s: np.ndarray, hs: np.ndarray, fs: np.ndarray, sb: np.ndarray, hb: np.ndarray, fb: np.ndarray,
                 idx: np.ndarray) -> None:
        self.stencil, self.phi = stencil, phi
        self.s, self.ns, self.fs = s, orders[hs], idx[fs]          # (n, Q, U); orders; global function index
        self.sb, self.nb, self.fb = sb, orders[hb], idx[fb]
        self.orders = sorted({int(a + b) for a in np.unique(self.ns) for b in np.unique(self.nb)})
        self.phase = _phases(phi, np.array(self.orders))                       # e^{iNφ} at the pixels (P, N)

    @property
    def nbytes(self) -> int:
        return int(self.s.nbytes + self.sb.nbytes + self.stencil.data.nbytes * 3 + self.phi.nbytes
                   + self.phase.nbytes)

    def same_site(self, K: np.ndarray, F: int) -> np.ndarray:
        """Σ_{u,v} e^{i(n_u + n_v)φ} s_u 𝒦 s̄_v at the pixels, (P,) complex."""
        n, Q, U = self.s.shape
        V = self.sb.shape[2]
        K4 = K.reshape(Q, F, Q, F)[:, self.fs][:, :, :, self.fb]                 # (Q, U, Q, V)
        out: dict[int, np.ndarray] = {}
        for a in np.unique(self.ns):
            sel = np.flatnonzero(self.ns == a)
            Y = self.s[:, :, sel].reshape(n, -1) @ K4[:, sel].reshape(Q * sel.size, Q * V)   # (n, Q·V)
            G = np.einsum("nqv,nqv->nv", Y.reshape(n, Q, V), self.sb)
            for N in np.unique(a + self.nb):
                out[int(N)] = out.get(int(N), 0.0) + G[:, a + self.nb == N].sum(axis=1)
        orders = sorted(out)
        table = np.stack([out[N] for N in orders], axis=1)                        # (n, harmonics)
        at = np.asarray(self.stencil @ table)                                     # (P, harmonics)
        return np.einsum("pn,pn->p", at, self.phase[:, [self.orders.index(N) for N in orders]])

def _phases(phi: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """e^{iNφ} (P, len(orders)) for integer orders N, by powers of e^{±iφ} (one complex exponential per point)."""
    u = np.exp(1j * np.asarray(phi, dtype=float))
    out = np.empty((u.size, len(orders)), dtype=complex)
    top = int(np.max(np.abs(orders))) if len(orders) else 0
    pw = [np.ones_like(u)]
    for _ in range(top):
        pw.append(pw[-1] * u)
    for k, N in enumerate(orders):
        out[:, k] = pw[N] if N >= 0 else np.conj(pw[-N])
    return out


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
