"""Fast YSR dI/dV maps (harmonic radial tables + energy interpolation) against a direct per-pixel sum.

The reference here is built in this file: the full channel ⊗ Nambu ⊗ spin matrices Φ (P, E, 4, 4C),
Φ̄ from the propagators' direct per-pixel τ-blocks (``map_blocks``: Hankel functions at every
pixel and energy, no table, no interpolation), t = (1 − v𝒢)⁻¹v by explicit inversion with this
file's vertex, and ρ = −½ Im Tr[P (g_loc + Φ t Φ̄)] with P = P_τ ⊗ S, summed with the weights.
Shared with the engine is only the propagator physics (``map_blocks``, ``channel_matrix``), checked
against brute-force momentum integrals in test_ysr.py.  Tolerance: 1e-6 of the map's maximum
(the fast path is built for ~1e-8).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from gapscope.kernels import ysr
from gapscope.kernels.ysr import engine as ysr_engine

SUB = ysr.Substrate(dim=2, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.0259)
S0 = np.eye(2, dtype=complex)
PAULI = [np.array([[0, 1], [1, 0]], dtype=complex), np.array([[0, -1j], [1j, 0]], dtype=complex),
         np.array([[1, 0], [0, -1]], dtype=complex)]
FIVE = ["dz2", "dxz", "dyz", "dx2-y2", "dxy"]
MN = [ysr.Impurity((0.0, 0.0), (0, 0, 1), [ysr.Channel("dz2", 0.4962, 0.6), ysr.Channel("dxy", 0.4201, 0.2),
                                           ysr.Channel("dxz", 0.5971, 0.1), ysr.Channel("dyz", 0.7338, 0.0)])]
DIMER5 = [ysr.Impurity((0.0, 0.0), (0, 0, 1), [ysr.Channel(s, 0.5 + 0.07 * i, 0.1) for i, s in enumerate(FIVE)]),
          ysr.Impurity((0.2853, 0.05), (0.3, 0, -1),
                       [ysr.Channel(s, 0.55 + 0.05 * i, -0.1) for i, s in enumerate(FIVE)])]
CASES = {
    "1 s": [ysr.Impurity(channels=[ysr.Channel("s", 0.7, 0.3)])],
    "1 dxy": [ysr.Impurity((0.1, -0.05), (1, 0, 0), [ysr.Channel("dxy", 0.9, 0.2)])],
    "4 Mn": MN,
    "5 + 5 dimer": DIMER5,
}


def vertex(imps: list[ysr.Impurity]) -> np.ndarray:
    """blockdiag(β τ_z⊗σ₀ + α τ₀⊗n̂·σ) over the merged channels (2D: dz2 is s)."""
    blocks = []
    for site in ysr.model.resolve_sites(SUB, imps):
        n = site.direction
        ns = sum(c * p for c, p in zip(n, PAULI, strict=True))
        for _, a, b in site.channels:
            blocks.append(b * np.kron(PAULI[2], S0) + a * np.kron(S0, ns))
    out = np.zeros((4 * len(blocks),) * 2, dtype=complex)
    for c, blk in enumerate(blocks):
        out[4 * c:4 * c + 4, 4 * c:4 * c + 4] = blk
    return out


def direct_map(imps, pts, energies, weights, *, part="electron", spin_axis=None, rc=0.1, sub=SUB):
    """Σ_e w_e ρ(r_p, E_e), every pixel and energy evaluated directly (full matrices, explicit inverse)."""
    prop = ysr.ContinuumPropagators(sub, imps)
    z = np.asarray(energies, dtype=float) + 1j * sub.gamma
    phi_t, phib_t = prop.map_blocks(pts, z, rc)                        # (P, E, C, 2, 2), direct Hankels
    C = phi_t.shape[2]
    phi = np.einsum("pecij,st->peiscjt", phi_t, S0).reshape(*phi_t.shape[:2], 4, 4 * C)
    phib = np.einsum("pecij,st->pecisjt", phib_t, S0).reshape(*phi_t.shape[:2], 4 * C, 4)
    v = vertex(imps)
    G = prop.channel_matrix(z)
    t = np.array([np.linalg.inv(np.eye(v.shape[0]) - v @ g) @ v for g in G])
    tau = {"electron": np.diag([1.0, 0.0]), "hole": np.diag([0.0, 1.0]), "total": np.eye(2)}[part]
    if spin_axis is None:
        spin = S0
    else:
        m = np.asarray(spin_axis, float) / np.linalg.norm(spin_axis)
        spin = 0.5 * (S0 + sum(c * p for c, p in zip(m, PAULI, strict=True)))
    proj = np.kron(tau, spin)
    om = np.sqrt(sub.delta ** 2 - z * z)
    gloc = -np.einsum("e,ij->eij", z / om, np.eye(4)) - np.einsum("e,ij->eij", sub.delta / om,
                                                                   np.kron(PAULI[0], S0))
    bulk = -0.5 * np.imag(np.einsum("ab,eba->e", proj, gloc))
    corr = -0.5 * np.imag(np.einsum("ab,pebc,ecd,peda->pe", proj, phi, t, phib, optimize=True))
    return (bulk[None, :] + corr) @ np.asarray(weights, float)


def grid(n: int, L: float = 1.2, centre=(0.0, 0.0)) -> np.ndarray:
    x = np.linspace(-L, L, n)
    X, Y = np.meshgrid(x + centre[0], x + centre[1])
    return np.c_[X.ravel(), Y.ravel()]


def energies_for(imps):
    """The YSR energies ±E_n, the gap edges ±Δ (and 1e-3 Δ inside/outside), mid-gap, above the gap."""
    e = ysr.energies(SUB, imps)
    d = SUB.delta
    E = np.r_[e[:3], -e[:2], 0.0, 0.999 * d, d, 1.001 * d, -d, 2.3, -3.1]
    w = np.random.default_rng(len(E)).uniform(0.2, 1.0, E.size)
    return E, w


def fast_engine_map(eng, pts, E, w, **kw):
    M = eng.weighted_map(pts, E, w, prune=0.0, **kw)
    fast = [v[0] for k, v in eng._y.items() if k[-1] == "fast"]
    assert fast and fast[0] is not None, "the fast path was not taken"
    return M, fast[0]


@pytest.mark.parametrize("name", list(CASES))
def test_fast_map_equals_direct_per_pixel_sum(name):
    imps = CASES[name]
    pts = grid(24)
    E, w = energies_for(imps)
    ref = direct_map(imps, pts, E, w)
    M, fast = fast_engine_map(ysr.Engine(SUB, imps), pts, E, w)
    assert np.max(np.abs(M - ref)) <= 1e-6 * np.max(np.abs(ref))
    assert fast.nodes.size < E.size                                    # the energies are interpolated


@pytest.mark.parametrize("name", ["1 s", "4 Mn", "5 + 5 dimer"])
def test_radial_tables_equal_direct_per_pixel_sum(name):
    """64² pixels: the tables (6-point Lagrange in d per harmonic) are chosen and stay within 1e-6."""
    imps = CASES[name]
    pts = grid(64)
    E, w = energies_for(imps)
    E, w = E[::2], w[::2]
    ref = direct_map(imps, pts, E, w)
    M, fast = fast_engine_map(ysr.Engine(SUB, imps), pts, E, w)
    assert all(fast.tabulated)
    assert np.max(np.abs(M - ref)) <= 1e-6 * np.max(np.abs(ref))


def test_energy_interpolation_at_tip_convolution_energies_parts_and_spin():
    """A superconducting-tip bias: hundreds of energies on the far side of the gap edge; total part and a
    spin axis; the Ω-interpolation needs only a few nodes and keeps 1e-6."""
    from gapscope.kernels import tunneling
    chain = dict(temperature=0.3, tip_delta=1.43, tip_gamma=0.02, vmod_rms=0.0)
    bias = np.array([-(ysr.energies(SUB, MN)[0] + 1.43)])
    E = tunneling.energy_grid(bias, sample_gamma=SUB.gamma, **chain)
    w = tunneling.didv_weights(bias, E, **chain)[0]
    keep = np.abs(w) >= 1e-4 * np.abs(w).max()
    E, w = E[keep][::4], w[keep][::4]
    pts = grid(12, 1.5)
    for kw in (dict(), dict(part="total", spin_axis=(0.3, -0.2, 0.9)), dict(part="hole")):
        ref = direct_map(MN, pts, E, w, **kw)
        M, fast = fast_engine_map(ysr.Engine(SUB, MN), pts, E, w, **kw)
        assert fast.nodes.size <= 8 < E.size
        assert np.max(np.abs(M - ref)) <= 1e-6 * np.max(np.abs(ref))


def test_cache_after_alpha_change_and_substrate_change():
    pts = grid(20)
    E, w = energies_for(DIMER5)
    eng = ysr.Engine(SUB, DIMER5)
    _, fast = fast_engine_map(eng, pts, E, w)
    new = [ysr.Impurity(i.position, i.spin, [ysr.Channel(c.shape, c.alpha + 0.3, c.beta - 0.05) for c in i.channels])
           for i in DIMER5]
    eng.update(SUB, new)
    M, fast2 = fast_engine_map(eng, pts, E, w)
    assert fast2 is fast                                              # α change: the propagator tables are kept
    ref = direct_map(new, pts, E, w)
    assert np.max(np.abs(M - ref)) <= 1e-6 * np.max(np.abs(ref))
    sub2 = ysr.Substrate(dim=2, kf=10.0, hbar_vf=179.0, delta=1.3, gamma=0.0259)
    eng.update(sub2, new)
    assert not eng._y                                                 # Δ change: dropped
    M2, fast3 = fast_engine_map(eng, pts, E, w)
    assert fast3 is not fast
    ref2 = direct_map(new, pts, E, w, sub=sub2)
    assert np.max(np.abs(M2 - ref2)) <= 1e-6 * np.max(np.abs(ref2))


def test_3d_band_at_one_tip_height_uses_the_ring_transform():
    """3D: harmonics of the solid harmonics at height h by the generic ring Fourier transform."""
    sub3 = ysr.Substrate(dim=3, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.0259)
    imps = [ysr.Impurity((0.0, 0.0), (0, 0, 1), [ysr.Channel("dxz", 0.8, 0.1), ysr.Channel("s", 0.6, 0.2)])]
    pts = grid(64, 1.0)
    E = np.array([0.4, -0.9, 1.5, 2.0])
    w = np.array([1.0, 0.5, 0.3, 0.2])
    eng = ysr.Engine(sub3, imps)
    M, fast = fast_engine_map(eng, pts, E, w, tip_height=0.3, orbital_radius=0.0)
    assert all(fast.tabulated)
    prop = ysr.ContinuumPropagators(sub3, imps)
    pts3 = np.c_[pts, np.full(len(pts), 0.3)]
    ref = np.zeros(len(pts))
    z = E + 1j * sub3.gamma
    t = ysr.solve_t(prop, z)
    phi, phib = prop.map_propagators(pts3, z, 0.0)
    proj = np.kron(np.diag([1.0, 0.0]), S0)
    om = np.sqrt(1.5 ** 2 - z * z)
    bulk = -0.5 * np.imag(-2 * z / om)
    ref = (bulk[None, :] - 0.5 * np.imag(np.einsum("ab,pebc,ecd,peda->pe", proj, phi, t, phib))) @ w
    assert np.max(np.abs(M - ref)) <= 1e-6 * np.max(np.abs(ref))


def test_varying_tip_heights_fall_back_and_agree():
    sub3 = ysr.Substrate(dim=3, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.0259)
    imps = [ysr.Impurity((0.0, 0.0), (0, 0, 1), [ysr.Channel("s", 0.6, 0.2)])]
    pts = np.c_[grid(6), np.linspace(0.2, 0.4, 36)]
    E, w = np.array([0.5, 1.2]), np.array([1.0, 0.4])
    eng = ysr.Engine(sub3, imps)
    M = eng.weighted_map(pts, E, w)
    assert [v[0] for k, v in eng._y.items() if k[-1] == "fast"] == [None]
    np.testing.assert_allclose(M, ysr.ldos(sub3, imps, pts, E) @ w, rtol=1e-5)


def test_harmonic_profiles_closed_form_equal_the_ring_transform():
    """ContinuumPropagators.map_harmonics (closed form) = the generic ring Fourier transform of map_smooth."""
    prop = ysr.ContinuumPropagators(SUB, DIMER5)
    r = np.linspace(-0.2, 2.0, 23)
    z = np.array([0.3 + 0.02j, 1.49 + 0.02j, -2.5 + 0.02j])
    for site in (0, 1):
        o1, s1, sb1, i1 = prop.map_harmonics(site, r, 0.0, z, 0.1)
        o2, s2, sb2, i2 = ysr.PropagatorSet.map_harmonics(prop, site, r, 0.0, z, 0.1)
        np.testing.assert_array_equal(i1, i2)
        for h2, n in enumerate(o2):
            got = s1[:, :, list(o1).index(n)] if n in o1 else 0.0
            gotb = sb1[:, :, list(o1).index(n)] if n in o1 else 0.0
            np.testing.assert_allclose(got, s2[:, :, h2], atol=1e-13)
            np.testing.assert_allclose(gotb, sb2[:, :, h2], atol=1e-13)


def test_map_factors_reproduce_the_reduced_map():
    prop = ysr.ContinuumPropagators(SUB, DIMER5)
    pts = np.c_[np.random.default_rng(2).uniform(-1, 1, (15, 2)), np.zeros(15)]
    z = np.linspace(-2, 2, 5) + 0.02j
    for part in ("electron", "hole", "total"):
        rows, cols = prop.reduced_map(pts, z, 0.1, part, tabulate=False, dtype=complex)
        P, Pb, owner = prop.map_factors(z, part)
        S = np.zeros(pts.shape[:1] + z.shape + P.shape[-1:], dtype=complex)
        Sb = np.zeros_like(S)
        for site in range(2):
            s, sb, idx = prop.map_smooth(site, pts, z, 0.1)
            assert np.all(owner[idx] == site)
            S[..., idx], Sb[..., idx] = s, sb
        np.testing.assert_allclose(np.einsum("keaf,pef->kpea", P, S), rows, atol=1e-14)
        np.testing.assert_allclose(np.einsum("keaf,pef->kpea", Pb, Sb), cols, atol=1e-14)


def test_map_cost_bounds_the_memory_of_a_fast_map():
    from gapscope.kernels import tunneling
    chain = dict(temperature=0.3, tip_delta=1.43, tip_gamma=0.02, vmod_rms=0.0)
    bias = np.array([1.9])
    E = tunneling.energy_grid(bias, sample_gamma=SUB.gamma, **chain)
    w = tunneling.didv_weights(bias, E, **chain)[0]
    keep = np.abs(w) >= 1e-4 * np.abs(w).max()
    pts = grid(48, 1.0)
    eng = ysr.Engine(SUB, DIMER5)
    mem, evals = eng.map_cost(pts.shape[0], int(keep.sum()), extent=1.6, energies=E[keep], orbital_radius=0.1)
    bound, _ = eng.map_cost(pts.shape[0], int(keep.sum()), extent=1.6)
    assert bound >= mem
    tracemalloc.start()
    eng.weighted_map(pts, E, w, orbital_radius=0.1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    fast = [v[0] for k, v in eng._y.items() if k[-1] == "fast"][0]
    assert fast is not None and fast.nbytes <= mem
    assert peak <= mem, (peak, mem)
    assert 0 < evals < 1e6


def test_leja_nodes_and_lagrange_basis():
    x = np.r_[np.linspace(0.1, 1.5, 30), -1j * np.linspace(0.1, 3, 40)]
    idx = ysr_engine._leja(x, 14)
    assert len(set(idx.tolist())) == 14
    L = ysr_engine._lagrange_basis(x[idx], x)
    np.testing.assert_allclose(L[idx], np.eye(14), atol=1e-12)
    f = lambda u: np.exp(0.3 * u) * (1 + u) ** 2                        # noqa: E731
    err = np.abs(L @ f(x[idx]) - f(x)).max()
    assert err < 1e-9


def test_rashba_maps_take_the_fast_path_and_equal_the_direct_sum():
    """RashbaPropagators (λ-odd harmonics n ± 1, spin texture): the generic ring transform of its map_smooth,
    against its own direct per-pixel map_propagators, t by explicit inversion, 80² (tables) and 20² (direct)."""
    subr = ysr.Substrate(dim=2, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.0259, rashba=4.941)
    imps = [ysr.Impurity((0.0, 0.0), (0, 0, 1), [ysr.Channel("s", 0.7, 0.3), ysr.Channel("dxz", 0.5, 0.1)]),
            ysr.Impurity((0.2853, 0.05), (0, 0, -1), [ysr.Channel("dxy", 0.6, 0.2)])]
    E = np.array([0.5, -0.77, 1.4985, 1.5, 2.2, 0.0])
    w = np.array([1.0, 0.5, 0.3, 0.8, 0.2, 0.6])
    for n, tab in ((80, True), (20, False)):
        pts = grid(n)
        eng = ysr.Engine(subr, imps)
        M, fast = fast_engine_map(eng, pts, E, w, spin_axis=(0.0, 0.6, 0.8))
        assert all(fast.tabulated) == tab
        prop = eng.prop
        z = E + 1j * subr.gamma
        phi, phib = prop.map_propagators(np.c_[pts, np.zeros(len(pts))], z, 0.1)
        v = vertex(imps)
        t = np.array([np.linalg.inv(np.eye(v.shape[0]) - v @ g) @ v for g in prop.channel_matrix(z)])
        spin = 0.5 * (S0 + 0.6 * PAULI[1] + 0.8 * PAULI[2])
        proj = np.kron(np.diag([1.0, 0.0]), spin)
        bulk = -0.5 * np.imag(np.einsum("ab,eba->e", proj, prop.local_green(z)))
        ref = (bulk[None, :] - 0.5 * np.imag(np.einsum("ab,pebc,ecd,peda->pe", proj, phi, t, phib,
                                                       optimize=True))) @ w
        assert np.max(np.abs(M - ref)) <= 1e-6 * np.max(np.abs(ref))


@pytest.mark.parametrize("spins", [((0, 0, 1), (0, 0, -1)), ((0, 0, 1), (0, 0, 1)), ((1, 1, 0.3), (-1, -1, -0.3)),
                                   ((1, 0, 0), (0, 0, 1))], ids=["afm-z", "fm-z", "afm-tilted", "non-collinear"])
def test_engine_t_matrix_spin_split_equals_explicit_inverse(spins):
    """Collinear spins: two 2C × 2C solves in the û·σ frame; compared with (1 − v𝒢)⁻¹v by explicit inversion."""
    first = [ysr.Channel(s, 0.5 + 0.07 * i, 0.1 * (i - 2)) for i, s in enumerate(FIVE)]
    imps = [ysr.Impurity((0.0, 0.0), spins[0], first),
            ysr.Impurity((0.2853, 0.05), spins[1], [ysr.Channel(s, 0.55, -0.1) for s in FIVE])]
    eng = ysr.Engine(SUB, imps)
    z = np.linspace(-2.5, 2.5, 41) + 0.02j
    v = vertex(imps)
    ref = np.array([np.linalg.inv(np.eye(v.shape[0]) - v @ g) @ v for g in eng.channel_matrix(z)])
    assert (eng._collinear() is not None) == (spins[1] != (0, 0, 1) or spins[0] != (1, 0, 0))
    np.testing.assert_allclose(eng.t_matrix(z), ref, atol=1e-12 * np.abs(ref).max())
