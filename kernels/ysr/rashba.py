"""Propagators of a 2D parabolic band with Rashba spin–orbit coupling (exact pole form), for the T-matrix.

Band and helicities
    H(k) = ξ_k + α_R (k_y σ_x − k_x σ_y),  ξ_k = ħ²k²/2m − μ,  in the BdG form
    H_BdG = τ_z [ξ_k + α_R(k_y σ_x − k_x σ_y)] + Δ τ_x (Nambu (c↑, c↓, c↓†, −c↑†): the Rashba
    term is time-reversal even, so it carries τ_z).  Helicity bands ξ_λ = ξ_k + λα_R k with
    projectors P_λ(θ_k) = (1 + λ(σ_x sin θ_k − σ_y cos θ_k))/2, so
    G(k) = Σ_λ P_λ ⊗ g_λ(k), g_λ = (z + ξ_λ τ_z + Δτ_x)/(z² − ξ_λ² − Δ²).
    k_so = α_R k_F/ħv_F, Fermi momenta k_± = √(k_F² + k_so²) ∓ k_so, DOS per helicity
    N_λ/N₀ = k_λ/√(k_F² + k_so²) (Σ_λ N_λ = 2N₀).

Radial functions (dimensionless, g = G/πN₀), helicity λ, harmonic n ≥ 0:

    f^λ_n(r, z) = −½ { (z + Δτ_x)/Ω [ν₊ H⁽¹⁾_n(q₊r) + ν₋ H⁽²⁾_n(q₋r)] + iτ_z [ν₊ H⁽¹⁾_n(q₊r) − ν₋ H⁽²⁾_n(q₋r)] },

    Ω = √(Δ² − z²), κ² = 2k_FΩ/ħv_F, s_± = √(k_F² + k_so² ± iκ²), q_± = s_± − λk_so, ν_± = q_±/s_±,

    f^λ_{−n} = (−1)ⁿ f^λ_n, and Γ^λ_n(d) = ∫d²k/(2π)² e^{ik·d} e^{inθ_k} g_λ(k)/πN₀ = iⁿ e^{inφ_d} f^λ_n(|d|).

Channel propagator (kron(τ, σ); σ_± = (σ_x ± iσ_y)/2):

    K_n(d) = Σ_λ ½ [ Γ^λ_n ⊗ σ₀ + λ Γ^λ_{n+1} ⊗ (−iσ₋) + λ Γ^λ_{n−1} ⊗ (iσ₊) ],
    𝒢_{(iμ),(jν)} = i^{m_μ} (−i)^{m_ν} Σ_{p,p'} a_{μp} a_{νp'} K_{p+p'}(R_i − R_j),
    Φ_{iμ}(r) = (−i)^{m_μ} Σ_p a_{μp} K_p(r − R_i),   Φ̄_{iμ}(r) = i^{m_μ} Σ_p a_{μp} K_p(R_i − r).

For two s channels K₀(r) = Σ_λ ½ [f^λ₀ σ₀ + iλ f^λ₁ (σ_x r̂_y − σ_y r̂_x)]: exact for the parabolic
Rashba band.  For |n| ≥ 1 the pole (Fermi-surface) part is the model, as without SOC.

On site (regularised, τ_z part dropped as in :mod:`.propagators`): Γ^λ_n(0) = δ_{n0} g^λ_loc,
g^λ_loc = −(N_λ/N₀)(z + Δτ_x)/Ω, so K₀(0) = g_loc ⊗ σ₀ (Σ_λ ½ g^λ_loc = g_loc) and the λ-odd part
K_{±1}(0) = (k_so/√(k_F² + k_so²)) (z + Δτ_x)/Ω ⊗ (iσ₊ | −iσ₋) couples channels m ↔ m ± 1 of one
site with a spin flip.  Map propagators: ρ = √(d² + r_o²), e^{inφ} → ((d_x ± id_y)/ρ)^|n|.
At α_R = 0 everything reduces to :class:`~.propagators.ContinuumPropagators`.

Implementation: every propagator is linear in the scalar coefficients (a, b) of the helicity-even and
-odd harmonics E_n = ½Σ_λ Γ^λ_n, O_n = ½Σ_λ λΓ^λ_n (τ-blocks a(z + Δτ_x)/Ω + bτ_z).  𝒢 is a constant
sparse matrix times these coefficients (Hankel functions H_0, H_1 per helicity and energy for all site
pairs at once, higher orders by recurrence: :func:`helicity_radial_orders`); the maps use the generic
m = 2n reduction of :class:`~.propagators.PropagatorSet` and the smooth factorisation of the engine's fast
maps (:meth:`RashbaPropagators.map_factors`, :meth:`~RashbaPropagators.map_smooth`: per site the harmonics
E_n, O_n its channels use (A and B coefficients, |n| ≤ 3, one angular harmonic each, analytic in Ω; 24
functions for s + four d channels instead of 6 per channel), the channels' spin elements ↑↑ = ↓↓, ↓↑, ↑↓
being fixed combinations of them carried by the energy factors, which are z/Ω, Δ/Ω, 1 times constant
matrices (:meth:`~RashbaPropagators.map_factor_terms`)); :meth:`~RashbaPropagators.map_harmonics` is the
closed form of their radial profiles.

Units: meV, nm; α_R in meV·nm.  Conventions: :mod:`gapscope.kernels.ysr`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import sparse, special

from .model import SHAPES, Impurity, Substrate
from .propagators import PropagatorSet, _omega

__all__ = ["RashbaPropagators", "helicity_radial", "helicity_radial_orders", "spin_orbit_momentum"]

#: (A, B) coefficients of a τ-block A·(z + Δτ_x)/Ω + B·τ_z
Coef = tuple[np.ndarray, np.ndarray]
#: n → (E_n, O_n): helicity-even and -odd parts ½Σ_λ Γ^λ_n and ½Σ_λ λΓ^λ_n as coefficient pairs
Harmonics = dict[int, tuple[Coef, Coef]]
RadialProvider = Callable[[int, int], Coef]


def spin_orbit_momentum(substrate: Substrate) -> float:
    """k_so = α_R k_F/ħv_F (= mα_R/ħ²), 1/nm."""
    return substrate.rashba * substrate.kf / substrate.hbar_vf


def helicity_radial(substrate: Substrate, lam: int, n: int, r: np.ndarray, z: np.ndarray) -> Coef:
    """Coefficients (a, b) of f^λ_n(r, z) = a·(z + Δτ_x)/Ω + b·τ_z, n ≥ 0, r > 0 (nm); r and z broadcast.

    The pole formula of the module docstring (helicity λ = ±1).
    """
    om = _omega(z, substrate.delta)
    kso = spin_orbit_momentum(substrate)
    kappa2 = 2.0 * substrate.kf * om / substrate.hbar_vf
    s2 = substrate.kf ** 2 + kso ** 2
    sp = np.sqrt(s2 + 1j * kappa2)
    sm = np.sqrt(s2 - 1j * kappa2)
    qp, qm = sp - lam * kso, sm - lam * kso
    z1 = (qp / sp) * special.hankel1(n, qp * r)
    zz = np.asarray(z)
    if not np.any(zz.imag) and np.all(np.abs(zz.real) < substrate.delta) and np.all(np.isreal(r)):
        z2 = np.conj(z1)            # real in-gap z: κ² real, q₋ = q₊*, H⁽²⁾(x*) = H⁽¹⁾(x)*
    else:
        z2 = (qm / sm) * special.hankel2(n, qm * r)
    return -0.5 * (z1 + z2), -0.5j * (z1 - z2)


def helicity_radial_orders(substrate: Substrate, lam: int, nmax: int, r: np.ndarray, z: np.ndarray) -> list[Coef]:
    """:func:`helicity_radial` for n = 0 … nmax at once: H_0, H_1 from scipy, the higher orders by the upward
    recurrence H_{n+1}(x) = (2n/x) H_n(x) − H_{n−1}(x) (stable for Hankel functions: they contain the dominant
    Y_n), so two Hankel pairs instead of nmax + 1.  Same arguments and result as :func:`helicity_radial`."""
    om = _omega(z, substrate.delta)
    kso = spin_orbit_momentum(substrate)
    kappa2 = 2.0 * substrate.kf * om / substrate.hbar_vf
    s2 = substrate.kf ** 2 + kso ** 2
    sp = np.sqrt(s2 + 1j * kappa2)
    qp = sp - lam * kso
    xp = qp * r
    zz = np.asarray(z)
    conj = bool(not np.any(zz.imag) and np.all(np.abs(zz.real) < substrate.delta) and np.all(np.isreal(r)))

    def orders(h: Callable[[int, np.ndarray], np.ndarray], x: np.ndarray) -> list[np.ndarray]:
        out = [h(0, x)]
        if nmax >= 1:
            out.append(h(1, x))
        for n in range(1, nmax):
            out.append((2.0 * n / x) * out[n] - out[n - 1])
        return out
    h1 = orders(special.hankel1, xp)
    if conj:                        # real in-gap z: q₋ = q₊*, H⁽²⁾(x*) = H⁽¹⁾(x)*
        wp = qp / sp
        res = []
        for a in h1:
            z1 = wp * a
            z2 = np.conj(z1)
            res.append((-0.5 * (z1 + z2), -0.5j * (z1 - z2)))
        return res
    sm = np.sqrt(s2 - 1j * kappa2)
    qm = sm - lam * kso
    h2 = orders(special.hankel2, qm * r)
    wp, wm = qp / sp, qm / sm
    res = []
    for a, b in zip(h1, h2, strict=True):
        z1, z2 = wp * a, wm * b
        res.append((-0.5 * (z1 + z2), -0.5j * (z1 - z2)))
    return res


def _onsite_odd(substrate: Substrate) -> float:
    """½Σ_λ λ N_λ/N₀ · (−1) = k_so/√(k_F² + k_so²): the A-coefficient of the on-site λ-odd part."""
    kso = spin_orbit_momentum(substrate)
    return kso / math.sqrt(substrate.kf ** 2 + kso ** 2)


def _harmonics(substrate: Substrate, radial: RadialProvider, u: np.ndarray, nmax: int,
               onsite: np.ndarray | None = None) -> Harmonics:
    """E_n, O_n for |n| ≤ nmax at displacements with unit phase u = (d_x + id_y)/ρ (array, broadcasts with
    the radial arrays); ``radial(λ, n)`` gives f^λ_n at the distances.  Points where ``onsite`` is set get
    the on-site values δ_{n0}(g_loc, λ-odd g_loc)."""
    ub = np.conj(u)
    out: Harmonics = {}
    for n in range(nmax + 1):
        ap, bp = radial(+1, n)
        am, bm = radial(-1, n)
        for sgn in ((1,) if n == 0 else (1, -1)):
            k = sgn * n
            ang = (1j ** k) * (u ** n if sgn > 0 else ((-1) ** n) * ub ** n)
            e = (0.5 * ang * (ap + am), 0.5 * ang * (bp + bm))
            o = (0.5 * ang * (ap - am), 0.5 * ang * (bp - bm))
            if onsite is not None and np.any(onsite):
                m = onsite
                e = (np.where(m, -1.0 if k == 0 else 0.0, e[0]), np.where(m, 0.0, e[1]))
                o = (np.where(m, _onsite_odd(substrate) if k == 0 else 0.0, o[0]), np.where(m, 0.0, o[1]))
            out[k] = (e, o)
    return out


def _flip(h: Harmonics) -> Harmonics:
    """The harmonics at −d: Γ_n(−d) = (−1)ⁿ Γ_n(d)."""
    return {n: (((-1) ** n * e[0], (-1) ** n * e[1]), ((-1) ** n * o[0], (-1) ** n * o[1]))
            for n, (e, o) in h.items()}


def _onsite_harmonics(substrate: Substrate, shape: tuple[int, ...]) -> Harmonics:
    one = np.ones(shape)
    zero = np.zeros(shape)
    return {0: ((-one, zero), (_onsite_odd(substrate) * one, zero))}


def _spin_blocks(h: Harmonics, terms: Sequence[tuple[complex, int]], shape: tuple[int, ...]
                 ) -> dict[tuple[int, int], Coef]:
    """Σ_terms w·K_n as spin elements (s, s′) → coefficient pair: (0,0) = (1,1) = ΣwE_n,
    (1,0) = −iΣwO_{n+1}, (0,1) = iΣwO_{n−1}."""
    zero = np.zeros(shape, dtype=complex)
    acc = {(0, 0): [zero.copy(), zero.copy()], (1, 0): [zero.copy(), zero.copy()], (0, 1): [zero.copy(), zero.copy()]}
    for w, n in terms:
        if n in h:
            e = h[n][0]
            acc[(0, 0)][0] += w * e[0]
            acc[(0, 0)][1] += w * e[1]
        if n + 1 in h:
            o = h[n + 1][1]
            acc[(1, 0)][0] += (-1j * w) * o[0]
            acc[(1, 0)][1] += (-1j * w) * o[1]
        if n - 1 in h:
            o = h[n - 1][1]
            acc[(0, 1)][0] += (1j * w) * o[0]
            acc[(0, 1)][1] += (1j * w) * o[1]
    out = {k: (v[0], v[1]) for k, v in acc.items()}
    out[(1, 1)] = out[(0, 0)]
    return out


def _to4(blocks: dict[tuple[int, int], Coef], mz: np.ndarray, md: np.ndarray) -> np.ndarray:
    """Spin elements of coefficient pairs → (…, 4, 4) in kron(τ, σ) order (index 2τ + s)."""
    shape = np.broadcast(blocks[(0, 0)][0], mz).shape
    out = np.zeros(shape + (4, 4), dtype=complex)
    for (s, sp), (a, b) in blocks.items():
        az, ad = a * mz, a * md
        out[..., s, sp] = az + b             # τ = τ′ = e
        out[..., 2 + s, 2 + sp] = az - b     # τ = τ′ = h
        out[..., s, 2 + sp] = ad
        out[..., 2 + s, sp] = ad
    return out


class RashbaPropagators(PropagatorSet):
    """:class:`~.propagators.PropagatorSet` of the 2D parabolic band with Rashba SOC α_R (``substrate.rashba``).

    Exact pole form of the bare Green's function (module docstring); the full 4×4 spin structure is
    kept (no spin trace), so :meth:`reduced_map` / :meth:`reduce_t` are the generic m = 2n ones.
    Works at α_R = 0 too (then equal to :class:`~.propagators.ContinuumPropagators`).
    """

    def __init__(self, substrate: Substrate, impurities: Sequence[Impurity]) -> None:
        if substrate.dim != 2:
            raise ValueError("RashbaPropagators needs a 2D band (dim=2): Rashba coupling is a surface term")
        super().__init__(substrate, impurities)
        self.kso = spin_orbit_momentum(substrate)
        self._wt: sparse.csr_matrix | None = None
        self._pair_list: list[tuple[int, int, float, complex, int]] | None = None
        self._layout: tuple[list[list[tuple[int, int]]], np.ndarray, np.ndarray, np.ndarray] | None = None
        self._terms: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # ---- helpers
    def _weights(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        om = _omega(z, self.substrate.delta)
        return z / om, self.substrate.delta / om

    def _pair_terms(self, shape_i: str, shape_j: str) -> list[tuple[complex, int]]:
        mi, ai = SHAPES[shape_i]
        mj, aj = SHAPES[shape_j]
        ph = (1j ** mi) * ((-1j) ** mj)
        return [(ph * ap * aq, p + q) for p, ap in ai.items() for q, aq in aj.items()]

    def _nmax(self, shapes: Sequence[str]) -> int:
        return max(max(abs(p) for p in SHAPES[s][1]) for s in shapes)

    # ---- channel space
    def _by_site(self) -> dict[int, list[tuple[int, str]]]:
        by_site: dict[int, list[tuple[int, str]]] = {}
        for c, (i, shape) in enumerate(self.index):
            by_site.setdefault(i, []).append((c, shape))
        return by_site

    def _pairs(self) -> list[tuple[int, int, float, complex, int]]:
        """Site pairs i < j: (i, j, |R_i − R_j|, e^{iφ} of R_i − R_j, highest harmonic |n| needed by any pair)."""
        if self._pair_list is not None:
            return self._pair_list
        by_site = self._by_site()
        sites = sorted(by_site)
        nm = max(self._nmax([s for _, s in by_site[i]]) for i in sites)
        out = []
        for a, i in enumerate(sites):
            for j in sites[a + 1:]:
                d = self.sites[i].position - self.sites[j].position
                r = float(np.hypot(d[0], d[1]))
                out.append((i, j, r, complex(d[0] + 1j * d[1]) / r, 2 * nm + 1))
        self._pair_list = out
        return out

    def _assemble(self, onsite: Harmonics, pair_h: Sequence[Harmonics], mz: np.ndarray, md: np.ndarray,
                  shape: tuple[int, ...]) -> np.ndarray:
        """𝒢 from the harmonics: on-site (shared by every site) and one set per site pair (R_i − R_j), (…, n, n)."""
        by_site = self._by_site()
        out = np.zeros(shape + (self.n, self.n), dtype=complex)
        for i in by_site:
            for c, si in by_site[i]:
                for d, sj in by_site[i]:
                    out[..., 4 * c:4 * c + 4, 4 * d:4 * d + 4] = _to4(
                        _spin_blocks(onsite, self._pair_terms(si, sj), shape), mz, md)
        for (i, j, _, _, _), h_ij in zip(self._pairs(), pair_h, strict=True):
            h_ji = _flip(h_ij)
            for c, si in by_site[i]:
                for dd, sj in by_site[j]:
                    out[..., 4 * c:4 * c + 4, 4 * dd:4 * dd + 4] = _to4(
                        _spin_blocks(h_ij, self._pair_terms(si, sj), shape), mz, md)
                    out[..., 4 * dd:4 * dd + 4, 4 * c:4 * c + 4] = _to4(
                        _spin_blocks(h_ji, self._pair_terms(sj, si), shape), mz, md)
        return out

    def _structure(self) -> sparse.csr_matrix:
        """𝒢 is linear in the scalars (a_q z/Ω, a_q Δ/Ω, b_q) of its harmonics q: 𝒢[e] = Σ_l C[e, l] W[l].
        Returns Wᵀ (n², L) as a sparse matrix, built once by assembling one-hot harmonics."""
        if self._wt is not None:
            return self._wt
        nq = 2 + sum(2 * (2 * nmax + 1) for *_, nmax in self._pairs())
        L = 3 * nq
        q = iter(range(nq))

        def unit() -> Coef:
            k = next(q)
            a, b = np.zeros(L), np.zeros(L)
            a[3 * k] = a[3 * k + 1] = 1.0
            b[3 * k + 2] = 1.0
            return a, b
        onsite: Harmonics = {0: (unit(), unit())}
        pair_h = [{n: (unit(), unit()) for n in range(-nmax, nmax + 1)} for *_, nmax in self._pairs()]
        mz = np.tile([1.0, 0.0, 0.0], nq)
        md = np.tile([0.0, 1.0, 0.0], nq)
        W = self._assemble(onsite, pair_h, mz, md, (L,))
        self._wt = sparse.csr_matrix(W.reshape(L, self.n * self.n).T)
        return self._wt

    def channel_matrix(self, z: np.ndarray) -> np.ndarray:
        """𝒢(z), shape (len(z), n, n): on-site g_loc ⊗ σ₀ plus the λ-odd m ↔ m ± 1 blocks; K-sums between sites.

        The harmonics' scalar coefficients are computed per energy and mapped to 𝒢 by a constant sparse
        matrix (:meth:`_structure`); :meth:`channel_matrix_direct` assembles block by block (same result).
        """
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        sub = self.substrate
        mz, md = self._weights(z)
        wt = self._structure()
        C = np.zeros((wt.shape[1], z.size), dtype=complex)
        ko = _onsite_odd(sub)
        C[0], C[1] = -mz, -md                               # on-site E₀ = −(z + Δτ_x)/Ω
        C[3], C[4] = ko * mz, ko * md                       # on-site O₀
        pairs = self._pairs()
        if pairs:                                           # all pairs at once: (pairs, E) arrays
            nmax = pairs[0][4]
            r = np.array([p[2] for p in pairs])[:, None]
            u = np.array([p[3] for p in pairs])[:, None]

            tab = {lam: helicity_radial_orders(sub, lam, nmax, r, z[None, :]) for lam in (1, -1)}

            def radial(lam: int, n: int) -> Coef:
                return tab[lam][n]
            h = _harmonics(sub, radial, u, nmax)
            # q order of _structure: pair-major, n ascending, (E, O); then (a z/Ω, a Δ/Ω, b)
            block = np.empty((len(pairs), 2 * nmax + 1, 2, 3, z.size), dtype=complex)
            for k, n in enumerate(range(-nmax, nmax + 1)):
                for eo in range(2):
                    a, b = h[n][eo]
                    block[:, k, eo, 0], block[:, k, eo, 1], block[:, k, eo, 2] = a * mz, a * md, b
            C[6:] = block.reshape(-1, z.size)
        return np.ascontiguousarray((wt @ C).T).reshape(z.size, self.n, self.n)

    def channel_matrix_direct(self, z: np.ndarray) -> np.ndarray:
        """𝒢(z) assembled block by block from the harmonics (the reference for :meth:`channel_matrix`)."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        sub = self.substrate
        mz, md = self._weights(z)
        pair_h = []
        for _, _, r, u, nmax in self._pairs():
            cache: dict[tuple[int, int], Coef] = {}

            def radial(lam: int, n: int, r: float = r, cache: dict = cache) -> Coef:
                if (lam, n) not in cache:
                    cache[(lam, n)] = helicity_radial(sub, lam, n, np.array(r), z)
                return cache[(lam, n)]
            pair_h.append(_harmonics(sub, radial, np.array(u), nmax))
        return self._assemble(_onsite_harmonics(sub, z.shape), pair_h, mz, md, z.shape)

    def local_green(self, z: np.ndarray) -> np.ndarray:
        """g₀(r, r) = Σ_λ ½ g^λ_loc ⊗ σ₀ = g_loc ⊗ σ₀, (E, 4, 4)."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        mz, md = self._weights(z)
        h = _onsite_harmonics(self.substrate, z.shape)
        return _to4(_spin_blocks(h, [(1.0, 0)], z.shape), mz, md)

    # ---- maps
    def helicity_harmonics(self, points: np.ndarray, z: np.ndarray, tip_radius: float, site: int,
                      radial: Callable[[int, int, np.ndarray], Coef] | None = None) -> Harmonics:
        """E_n, O_n (shapes (P, E)) at the displacements r − R_site of the tip points, regularised
        (ρ = √(d² + r_o²), e^{inφ} → ((d_x ± id_y)/ρ)^|n|), for |n| ≤ m_max + 1 of the site's channels.

        ``radial(λ, n, ρ)`` (ρ of shape (P, 1), n ≥ 0) may replace :func:`helicity_radial` — e.g. by an
        interpolating table — to accelerate maps; it must return coefficient pairs broadcastable to (P, E).
        """
        pts, rc = self._tip(points, tip_radius)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        pos = self.sites[site].position
        dx, dy = pts[:, 0] - pos[0], pts[:, 1] - pos[1]
        rho = np.sqrt(dx * dx + dy * dy + rc * rc)
        on = rho == 0.0
        rr = np.where(on, 1.0, rho)[:, None]
        u = ((dx + 1j * dy) / np.where(on, 1.0, rho))[:, None]
        u = np.where(on[:, None], 0.0, u)
        sub = self.substrate
        cache: dict[tuple[int, int], Coef] = {}

        shapes = [s for i, s in self.index if i == site]
        top = self._nmax(shapes) + 1

        def rad(lam: int, n: int) -> Coef:
            if (lam, n) not in cache:
                if radial is not None:
                    cache[(lam, n)] = radial(lam, n, rr)
                else:
                    for k, c in enumerate(helicity_radial_orders(sub, lam, top, rr, z[None, :])):
                        cache[(lam, k)] = c
            return cache[(lam, n)]
        return _harmonics(sub, rad, u, top, onsite=on[:, None] if np.any(on) else None)

    def map_propagators(self, points: np.ndarray, z: np.ndarray, tip_radius: float
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Φ (P, E, 4, n) and Φ̄ (P, E, n, 4) from the K_p sums of the module docstring."""
        pts, rc = self._tip(points, tip_radius)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        P, E = pts.shape[0], z.size
        mz, md = self._weights(z)
        mz, md = mz[None, :], md[None, :]
        phi = np.zeros((P, E, 4, self.n), dtype=complex)
        phib = np.zeros((P, E, self.n, 4), dtype=complex)
        hs: dict[int, tuple[Harmonics, Harmonics]] = {}
        for c, (i, shape) in enumerate(self.index):
            if i not in hs:
                h = self.helicity_harmonics(pts, z, rc, i)
                hs[i] = (h, _flip(h))                          # r − R_i and R_i − r
            h, hb = hs[i]
            m, coeffs = SHAPES[shape]
            t = [((-1j) ** m * ap, p) for p, ap in coeffs.items()]
            tb = [((1j) ** m * ap, p) for p, ap in coeffs.items()]
            phi[:, :, :, 4 * c:4 * c + 4] = _to4(_spin_blocks(h, t, (P, E)), mz, md)
            phib[:, :, 4 * c:4 * c + 4, :] = _to4(_spin_blocks(hb, tb, (P, E)), mz, md)
        return phi, phib

    # ---- smooth factorisation for the engine's fast maps (see PropagatorSet.map_factors)
    #: harmonics |n| ≤ m_max + 1 = 3 about a site (the λ-odd terms shift the channel harmonics by ±1)
    map_harmonic_max: int = 3

    def _site_basis(self, site: int) -> list[tuple[int, int]]:
        """The harmonics a site's channels use: (0, n) for E_n (n = p of the channels' orders p) and (1, n) for
        O_n (n = p ± 1); basis function 2b + (0: A, 1: B) of entry b."""
        orders = sorted({p for i, shape in self.index if i == site for p in SHAPES[shape][1]})
        odd = sorted({p + d for p in orders for d in (1, -1)})
        return [(0, n) for n in orders] + [(1, n) for n in odd]

    def _basis_layout(self) -> tuple[list[list[tuple[int, int]]], np.ndarray, np.ndarray, np.ndarray]:
        """(basis per site, offsets of the sites' functions, C, C̄): the six channel functions of Φ_c, Φ̄_c
        (function 6c + 2·element + (A, B), elements (s, s′) = (0, 0), (1, 0), (0, 1)) in the site bases,
        S^chan_f = Σ_g C[f, g] S_g, S̄^chan_f = Σ_g C̄[f, g] S_g (the basis functions are the harmonics
        E_n, O_n at r − R_i; at R_i − r they are (−1)ⁿ times these, which C̄ carries)."""
        if self._layout is not None:
            return self._layout
        bases = [self._site_basis(i) for i in range(len(self.sites))]
        offs = np.cumsum([0] + [2 * len(b) for b in bases])
        C = np.zeros((6 * len(self.index), int(offs[-1])), dtype=complex)
        Cb = np.zeros_like(C)
        for c, (i, shape) in enumerate(self.index):
            m, coeffs = SHAPES[shape]
            pos = {b: int(offs[i]) + 2 * k for k, b in enumerate(bases[i])}
            for p, ap in coeffs.items():
                w, wb = ((-1j) ** m) * ap, (1j ** m) * ap
                for el, kind, n, f in ((0, 0, p, 1.0), (1, 1, p + 1, -1j), (2, 1, p - 1, 1j)):
                    g = pos[(kind, n)]
                    for ab in range(2):
                        C[6 * c + 2 * el + ab, g + ab] += f * w
                        Cb[6 * c + 2 * el + ab, g + ab] += f * wb * (-1.0) ** n
        self._layout = (bases, offs, C, Cb)
        return self._layout

    def _channel_functions(self, site: int, points: np.ndarray, z: np.ndarray, tip_radius: float
                           ) -> tuple[np.ndarray, np.ndarray]:
        """The coefficient pairs (A, B) of the three independent spin elements (s, s′) = (0, 0) (= (1, 1)),
        (1, 0), (0, 1) of Φ_c and Φ̄_c for the channels c of ``site``: (P, E, 6C_i) each, function
        6j + 2·element + (0: A, 1: B) (the reference for the basis of :meth:`map_smooth`)."""
        pts, rc = self._tip(points, tip_radius)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        P, E = pts.shape[0], z.size
        mine = [shape for i, shape in self.index if i == site]
        h = self.helicity_harmonics(pts, z, rc, site)
        hb = _flip(h)
        S = np.empty((P, E, 6 * len(mine)), dtype=complex)
        Sb = np.empty_like(S)
        for j, shape in enumerate(mine):
            m, coeffs = SHAPES[shape]
            blk = _spin_blocks(h, [((-1j) ** m * ap, p) for p, ap in coeffs.items()], (P, E))
            blkb = _spin_blocks(hb, [((1j) ** m * ap, p) for p, ap in coeffs.items()], (P, E))
            for el, key in enumerate(((0, 0), (1, 0), (0, 1))):
                S[:, :, 6 * j + 2 * el], S[:, :, 6 * j + 2 * el + 1] = blk[key]
                Sb[:, :, 6 * j + 2 * el], Sb[:, :, 6 * j + 2 * el + 1] = blkb[key]
        return S, Sb

    def _channel_factors(self, mz: np.ndarray, md: np.ndarray, one: np.ndarray, part: str
                         ) -> tuple[np.ndarray, np.ndarray]:
        """P, P̄ (K, X, 2n, 6C) on the six channel functions of :meth:`_channel_functions` for the τ-block weights
        z/Ω → ``mz``, Δ/Ω → ``md`` and 1 → ``one`` (arrays (X,): energies, or unit vectors for the terms)."""
        from .propagators import _taus
        taus = _taus(part)
        C = len(self.index)
        n = self.n
        el = {(0, 0): 0, (1, 1): 0, (1, 0): 1, (0, 1): 2}
        Pm = np.zeros((len(taus), mz.size, 2 * n, 6 * C), dtype=complex)
        Pb = np.zeros_like(Pm)
        for k, t in enumerate(taus):
            sgn = 1.0 if t == 0 else -1.0
            for c in range(C):
                for s_ in range(2):
                    for tp in range(2):
                        for sp in range(2):
                            a = s_ * n + 4 * c + 2 * tp + sp
                            fr = 6 * c + 2 * el[(s_, sp)]        # Φ block element (tip s, channel s′)
                            fc = 6 * c + 2 * el[(sp, s_)]        # Φ̄ block element (channel s′, tip s)
                            if tp == t:
                                Pm[k, :, a, fr], Pm[k, :, a, fr + 1] = mz, sgn * one
                                Pb[k, :, a, fc], Pb[k, :, a, fc + 1] = mz, sgn * one
                            else:
                                Pm[k, :, a, fr] = md
                                Pb[k, :, a, fc] = md
        return Pm, Pb

    def map_factors(self, z: np.ndarray, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P, P̄ (K, E, 2n, F) and owner (F,) for the generic reduced map (m = 2n, a = s·n + 4c + 2τ′ + s′), on the
        harmonic basis of :meth:`map_smooth` (F = Σ_i 2·(number of harmonics E_n, O_n of site i)).

        Row τ of Φ, column 4c + 2τ′ + s′: the spin element (s, s′) of channel c, A z/Ω ± B (τ′ = τ, + for
        e) or A Δ/Ω (τ′ ≠ τ); the columns of Φ̄ likewise with the element (s′, s) of Φ̄_c; each element is
        Σ_p w_p E_p (↑↑), −iΣ_p w_p O_{p+1} (↓↑), iΣ_p w_p O_{p−1} (↑↓) (matrices C, C̄ of :meth:`_basis_layout`).
        """
        c, Pt, Pbt = self.map_factor_terms(z, part)
        _, offs, _, _ = self._basis_layout()
        owner = np.repeat(np.arange(len(self.sites), dtype=np.intp), np.diff(offs))
        return np.einsum("ae,kamf->kemf", c, Pt), np.einsum("ae,kamf->kemf", c, Pbt), owner

    def map_factor_terms(self, z: np.ndarray, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P = Σ_α c_α(z) P_α (likewise P̄) with c = (z/Ω, Δ/Ω, 1): (c (3, E), P_α (K, 3, 2n, F), P̄_α)."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        mz, md = self._weights(z)
        if part not in self._terms:
            _, _, C, Cb = self._basis_layout()
            eye = np.eye(3)
            Pm, Pb = self._channel_factors(eye[0], eye[1], eye[2], part)
            self._terms[part] = (Pm @ C, Pb @ Cb)
        Pt, Pbt = self._terms[part]
        return np.stack([mz, md, np.ones(z.size, dtype=complex)]), Pt, Pbt

    def map_smooth(self, site: int, points: np.ndarray, z: np.ndarray, tip_radius: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The basis of site ``site`` at (P, 3) points: the harmonics E_n, O_n (A, B coefficients) of
        :meth:`helicity_harmonics`, function 2b + (A, B) for entry b of :meth:`_site_basis`; S̄ = S (the
        factors P̄ carry the (−1)ⁿ of R_i − r): (S, S̄ (P, E, F_i), their indices in F)."""
        pts, rc = self._tip(points, tip_radius)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        bases, offs, _, _ = self._basis_layout()
        h = self.helicity_harmonics(pts, z, rc, site)
        S = np.empty((pts.shape[0], z.size, 2 * len(bases[site])), dtype=complex)
        for b, (kind, n) in enumerate(bases[site]):
            S[:, :, 2 * b], S[:, :, 2 * b + 1] = h[n][kind]
        idx = np.arange(offs[site], offs[site + 1], dtype=np.intp)
        return S, S, idx

    def map_harmonics(self, site: int, radii: np.ndarray, height: float, z: np.ndarray, tip_radius: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Closed form of the ring transform of :meth:`map_smooth` (one Hankel pair per helicity and |n| per
        radius, instead of one per ring point): at d = (D cos φ, D sin φ), ρ = √(D² + r_o²) the basis function
        E_n (O_n) is e^{inφ} i^n s_n (D/ρ)^|n| ½Σ_λ f^λ_|n|(ρ) (with λ f^λ), s_n = (−1)ⁿ for n < 0
        (f_{−n} = (−1)ⁿ f_n): one harmonic per function.  As in :meth:`map_smooth` the band is 2D and only
        the in-plane distance and r_o enter ρ (``height`` is not used).  ρ = 0 on the grid: the generic
        ring transform."""
        radii = np.asarray(radii, dtype=float)
        rho = np.sqrt(radii * radii + tip_radius * tip_radius)
        if np.any(rho == 0.0):
            return super().map_harmonics(site, radii, height, z, tip_radius)
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        bases, offs, _, _ = self._basis_layout()
        top = max(abs(n) for _, n in bases[site])
        orders = np.arange(-top, top + 1)
        s = np.zeros((radii.size, z.size, orders.size, 2 * len(bases[site])), dtype=complex)
        rr = rho[:, None]
        ev: dict[int, tuple[Coef, Coef]] = {}          # |n| → (E, O) radial coefficient pairs (R, E)
        plus = helicity_radial_orders(self.substrate, +1, top, rr, z[None, :])
        minus = helicity_radial_orders(self.substrate, -1, top, rr, z[None, :])
        for k in sorted({abs(n) for _, n in bases[site]}):
            (ap, bp), (am, bm) = plus[k], minus[k]
            ev[k] = ((0.5 * (ap + am), 0.5 * (bp + bm)), (0.5 * (ap - am), 0.5 * (bp - bm)))
        ratio = radii / rho
        for b, (kind, n) in enumerate(bases[site]):
            sign = (-1.0) ** n if n < 0 else 1.0
            g = (sign * (1j ** n) * ratio ** abs(n))[:, None]
            a_, b_ = ev[abs(n)][kind]
            s[:, :, n + top, 2 * b] = g * a_
            s[:, :, n + top, 2 * b + 1] = g * b_
        return orders, s, s, np.arange(offs[site], offs[site + 1], dtype=np.intp)

    def map_variable(self, z: np.ndarray) -> np.ndarray:
        """Ω(z) = √(Δ² − z²): the helicity radial functions depend on z only through κ² = 2k_FΩ/ħv_F."""
        return _omega(np.atleast_1d(np.asarray(z, dtype=complex)), self.substrate.delta)

    def map_wavenumber(self) -> float:
        """The larger helicity Fermi momentum √(k_F² + k_so²) + |k_so|, 1/nm."""
        return float(math.sqrt(self.substrate.kf ** 2 + self.kso ** 2) + abs(self.kso))

    def reduce_t(self, t: np.ndarray, spin: np.ndarray) -> np.ndarray:
        """T̃[(s, i), (s′, j)] = S[s′, s] t[i, j], (E, 2n, 2n): the generic reduction, without einsum."""
        E, n, _ = t.shape
        out = np.empty((E, 2, n, 2, n), dtype=np.result_type(t, spin))
        for a in range(2):
            for b in range(2):
                np.multiply(t, spin[b, a], out=out[:, a, :, b, :])
        return out.reshape(E, 2 * n, 2 * n)

    def _tip(self, points: np.ndarray, tip_radius: float) -> tuple[np.ndarray, float]:
        """Tip positions (P, 3) (z = 0) and r_o."""
        pts = np.asarray(points, dtype=float)
        cols = pts.shape[-1] if pts.ndim >= 1 and pts.shape[-1] in (2, 3) else 2
        pts = pts.reshape(-1, cols)
        out = np.zeros((pts.shape[0], 3))
        out[:, :cols] = pts
        return out, float(tip_radius)

    def tip_points(self, points: np.ndarray, tip_radius: float) -> tuple[np.ndarray, float]:
        """Tip positions (P, 3) nm and the regulariser r_o (nm), as :meth:`ContinuumPropagators.tip_points` in 2D."""
        return self._tip(points, tip_radius)
