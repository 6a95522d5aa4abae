"""The fast paths of the YSR engine (issue 11) against explicit inverses and direct sums.

* Tip spectra: ``Engine.ldos`` at a few tip points solves (1 − v𝒢)X = vΦ̄ for the tip's columns only;
  the reference is g = g₀ + Φ t Φ̄ with t = (1 − v𝒢)⁻¹v from an explicit matrix inverse and the full
  4 × 4 trace −½ Im Tr[(P_τ ⊗ S) g].
* ``tmatrix.solve_t`` (block-diagonal v𝒢) against the explicit inverse.
* Maps with Rashba SOC: the energy-summed term kernels (P = Σ_α c_α(z) P_α) and merged cross-site products
  against the dense per-energy T̃ products they replace (same factorisation, to rounding) and against the
  exact per-pixel sum.

Units meV, nm.  The 5-orbital dimer: k_F = 10 nm⁻¹, ħv_F = 179 meV nm, Δ = 1.5 meV, α_R = 4.941 meV nm
(2·7.5·0.3294, t_R = 7.5 meV of Beck et al. 2021); couplings and spin directions chosen.
"""

import numpy as np
import pytest

from gapscope.kernels import nambu, ysr
from gapscope.kernels.ysr import engine as ysr_engine
from gapscope.kernels.ysr import tmatrix

SUB = ysr.Substrate(dim=2, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.02585, rashba=4.941)
SHAPES5 = ["s", "dxz", "dyz", "dx2-y2", "dxy"]
#: non-collinear spins (neither parallel nor antiparallel, not along z)
DIMER5 = [ysr.Impurity((0.0, 0.0), (1.0, 0.0, 0.2), [ysr.Channel(s, 0.55 + 0.05 * i, 0.3 - 0.04 * i)
                                                      for i, s in enumerate(SHAPES5)]),
          ysr.Impurity((0.2853, 0.0), (0.3, 0.5, 0.8), [ysr.Channel(s, 0.6 - 0.03 * i, 0.2)
                                                         for i, s in enumerate(SHAPES5)])]
CHAIN10 = [ysr.Impurity((0.33 * j, 0.0), (np.cos(0.7 * j), 0.0, np.sin(0.7 * j)), [ysr.Channel("s", 0.7, 0.3)])
           for j in range(10)]
POINTS = np.array([[0.1, 0.05], [0.2853, 0.0], [-0.4, 0.3]])
AXES = [None, (0.0, 0.6, 0.8)]


def explicit_ldos(sub, imps, pts, w, part, spin_axis, rc=0.1):
    """−½ Im Tr[(P_τ ⊗ S)(g₀ + Φ t Φ̄)] with t = (1 − v𝒢)⁻¹ v by an explicit inverse, (P, E)."""
    prop = ysr.make_propagators(sub, imps)
    z = w + 1j * sub.gamma
    G = prop.channel_matrix(z)
    vm = tmatrix.v(prop)
    t = np.linalg.inv(np.eye(prop.n)[None] - vm[None] @ G) @ vm[None]
    p3 = np.c_[pts, np.zeros(len(pts))]
    phi, phib = prop.map_propagators(p3, z, rc)
    g = prop.local_green(z)[None] + phi @ t[None] @ phib
    proj = np.kron(nambu.tau_projector(part), nambu.spin_projector(spin_axis))
    return -0.5 * np.imag(np.einsum("ab,peba->pe", proj, g))


@pytest.mark.parametrize("part", ["electron", "hole", "total"])
@pytest.mark.parametrize("spin_axis", AXES)
def test_tip_column_spectrum_equals_explicit_inverse_for_the_rashba_dimer(part, spin_axis):
    w = np.linspace(-2.0, 2.0, 151)
    eng = ysr.Engine(SUB, DIMER5)
    assert eng.prop.n == 40 and eng._tip_columns_apply(len(POINTS), 2 if part == "total" else 1)
    ref = explicit_ldos(SUB, DIMER5, POINTS, w, part, spin_axis)
    got = eng.ldos(POINTS, w, part=part, spin_axis=spin_axis, orbital_radius=0.1)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    # the full-t path (two-step contraction) agrees too
    full = ysr.Engine(SUB, DIMER5)
    full.tip_columns = False
    np.testing.assert_allclose(full.ldos(POINTS, w, part=part, spin_axis=spin_axis, orbital_radius=0.1), ref,
                               rtol=0, atol=1e-12 * np.abs(ref).max())


def test_tip_column_spectrum_after_coupling_and_spin_changes_and_for_a_chain():
    w = np.linspace(-2.0, 2.0, 101)
    eng = ysr.Engine(SUB, DIMER5)
    eng.ldos(POINTS[:1], w)
    changed = [ysr.Impurity(i.position, (-0.2, 0.9, 0.1) if k else i.spin,
                            [ysr.Channel(c.shape, c.alpha + 0.17, c.beta) for c in i.channels])
               for k, i in enumerate(DIMER5)]
    eng.update(SUB, changed)                         # keeps 𝒢 and the tip's reduced map
    ref = explicit_ldos(SUB, changed, POINTS[:1], w, "electron", (1.0, 0.0, 0.0))
    got = eng.ldos(POINTS[:1], w, spin_axis=(1.0, 0.0, 0.0), orbital_radius=0.1)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    chain = ysr.Engine(SUB, CHAIN10)
    assert chain._tip_columns_apply(1, 1)
    ref = explicit_ldos(SUB, CHAIN10, np.array([[0.05, 0.1]]), w, "total", None)
    got = chain.ldos([[0.05, 0.1]], w, part="total", orbital_radius=0.1)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_many_tip_points_use_the_full_t_and_agree():
    pts = np.c_[np.linspace(-0.5, 0.5, 25), np.full(25, 0.07)]
    eng = ysr.Engine(SUB, DIMER5)
    assert not eng._tip_columns_apply(len(pts), 1)
    w = np.linspace(-1.6, 1.6, 41)
    ref = explicit_ldos(SUB, DIMER5, pts, w, "electron", None)
    np.testing.assert_allclose(eng.ldos(pts, w, orbital_radius=0.1), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_solve_t_equals_explicit_inverse():
    prop = ysr.make_propagators(SUB, DIMER5)
    z = np.linspace(-2.0, 2.0, 31) + 0.02585j
    G = prop.channel_matrix(z)
    vm = tmatrix.v(prop)
    ref = np.linalg.inv(np.eye(prop.n)[None] - vm[None] @ G) @ vm[None]
    np.testing.assert_allclose(tmatrix.solve_t(prop, z), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def direct_map(sub, imps, pts, E, W, part, spin_axis, rc=0.1):
    """Σ_e W_e ρ(p, E_e) from the explicit per-pixel LDOS (no factorisation, no tables)."""
    return explicit_ldos(sub, imps, pts, E, part, spin_axis, rc) @ W


@pytest.mark.parametrize("part, spin_axis", [("electron", None), ("total", (0.0, 0.6, 0.8)), ("hole", (1, 0, 0))])
def test_rashba_map_block_kernels_equal_dense_products_and_the_direct_sum(part, spin_axis, monkeypatch):
    x = np.linspace(-1.0, 1.0, 48)
    X, Y = np.meshgrid(x, x)
    pts = np.c_[X.ravel(), Y.ravel()]
    E = np.linspace(0.9, 1.1, 30)
    W = np.exp(-((E - 1.0) / 0.05) ** 2)
    new = ysr.Engine(SUB, DIMER5)
    chosen = []
    cheaper = ysr_engine._FastMap.terms_cheaper
    monkeypatch.setattr(ysr_engine._FastMap, "terms_cheaper", lambda self, n: chosen.append(cheaper(self, n)) or True)
    got = new.weighted_map(pts, E, W, part=part, spin_axis=spin_axis, orbital_radius=0.1)
    fast = [v[0] for k, v in new._y.items() if k[-1] == "fast"][0]
    assert fast is not None and fast.terms is not None and all(d is not None for d in fast.ratios)
    assert chosen == [False]               # 30 energies: the per-energy kernels are cheaper; forced here
    monkeypatch.undo()
    per_energy = ysr.Engine(SUB, DIMER5).weighted_map(pts, E, W, part=part, spin_axis=spin_axis, orbital_radius=0.1)
    old = ysr.Engine(SUB, DIMER5)
    old.block_kernels = False
    monkeypatch.setattr(ysr_engine._FastMap, "pair_ratios", False)      # S̄ tabulated separately, as before
    dense = old.weighted_map(pts, E, W, part=part, spin_axis=spin_axis, orbital_radius=0.1)
    fast_old = [v[0] for k, v in old._y.items() if k[-1] == "fast"][0]
    assert all(fast.tabulated) and all(fast_old.tabulated)         # the radial tables (and S̄ = S·d there) are used
    scale = np.abs(dense).max()
    np.testing.assert_allclose(got, dense, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(per_energy, dense, rtol=0, atol=1e-12 * scale)
    sel = np.arange(0, len(pts), 97)
    ref = direct_map(SUB, DIMER5, pts[sel], E, W, part, spin_axis)
    np.testing.assert_allclose(got[sel], ref, rtol=0, atol=1e-7 * np.abs(ref).max())


def test_map_cost_bounds_the_memory_of_a_rashba_fast_map():
    """The estimate counts the functions of the Rashba factorisation (harmonic basis) and the kernels' temporaries."""
    import tracemalloc
    x = np.linspace(-1.0, 1.0, 48)
    X, Y = np.meshgrid(x, x)
    pts = np.c_[X.ravel(), Y.ravel()]
    E = np.linspace(0.8, 1.2, 200)
    W = np.exp(-((E - 1.0) / 0.08) ** 2)
    eng = ysr.Engine(SUB, DIMER5)
    mem, evals = eng.map_cost(len(pts), E.size, extent=1.6, part="total", energies=E, orbital_radius=0.1)
    tracemalloc.start()
    eng.weighted_map(pts, E, W, part="total", orbital_radius=0.1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    fast = [v[0] for k, v in eng._y.items() if k[-1] == "fast"][0]
    assert fast is not None and fast.terms is not None and fast.nbytes <= mem
    assert peak <= mem, (peak, mem)
    assert 0 < evals < 1e6


def test_vertex_blocks_equal_the_nambu_vertex_per_channel():
    """tmatrix.vertex_blocks (all channels at once) and v = blockdiag of them, against nambu.vertex per channel."""
    from scipy.linalg import block_diag
    third = ysr.Impurity((0.5, 0.4), (-0.2, 0.0, -3.0), [ysr.Channel("s", -0.4, 0.9)])
    prop = ysr.make_propagators(SUB, DIMER5 + [third])
    ref = np.array([nambu.vertex(a, b, s.direction) for s in prop.sites for _, a, b in s.channels])
    np.testing.assert_allclose(tmatrix.vertex_blocks(prop), ref, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tmatrix.v(prop), block_diag(*ref), rtol=0, atol=1e-15)


def _with(imps, site, spin=None, **changes):
    """A copy of ``imps`` with channel couplings {shape: (α, β)} and/or the spin of impurity ``site`` replaced."""
    out = []
    for k, i in enumerate(imps):
        chans = [ysr.Channel(c.shape, *changes.get(c.shape, (c.alpha, c.beta))) if k == site else c
                 for c in i.channels]
        out.append(ysr.Impurity(i.position, spin if (k == site and spin is not None) else i.spin, chans))
    return out


@pytest.mark.parametrize("part, spin_axis", [("electron", None), ("total", (0.0, 0.6, 0.8))])
def test_tip_spectrum_after_a_few_channels_change_folds_the_others_and_equals_explicit_inverse(part, spin_axis,
                                                                                               monkeypatch):
    """After a change of at most half of the channels' vertices the engine folds the unchanged channels into
    effective propagators (block elimination, cached) and solves for the changed ones only: every step of a
    sequence of coupling and spin changes equals g₀ + Φ t Φ̄ with t from an explicit inverse."""
    w = np.linspace(-2.0, 2.0, 121)
    eng = ysr.Engine(SUB, DIMER5)
    used = []
    original = ysr_engine.Engine._downfold

    def spy(self, *args):
        d = original(self, *args)
        used.append(None if d is None else int(d[0].size))        # number of changed channels solved for
        return d
    monkeypatch.setattr(ysr_engine.Engine, "_downfold", spy)

    def check(imps):
        eng.update(SUB, imps)
        got = eng.ldos(POINTS, w, part=part, spin_axis=spin_axis, orbital_radius=0.1)
        ref = explicit_ldos(SUB, imps, POINTS, w, part, spin_axis)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
        return imps

    a = check(DIMER5)                                               # first call: full solve
    a = check(_with(_with(a, 0, s=(0.9, 0.3)), 1, s=(0.45, 0.1)))   # two s channels: the 8 others folded
    a = check(_with(a, 0, s=(1.3, 0.3)))                            # same channels again: the cached fold
    a = check(_with(a, 1, dxy=(0.8, -0.2)))                         # another channel: a new fold (C = {dxy})
    a = check(_with(a, 0, spin=(0.0, 1.0, 0.0)))                    # one site's spin: 5 of 10 channels
    a = check([ysr.Impurity(i.position, i.spin, [ysr.Channel(c.shape, c.alpha + 0.1, c.beta) for c in i.channels])
               for i in a])                                         # all channels: the full solve
    assert used == [None, 2, 2, 1, 5, None]
