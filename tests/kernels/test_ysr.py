"""YSR engine against closed forms, brute-force momentum integrals, symmetries and invariants."""

import numpy as np
import pytest
import ysr_reference as ref  # test-only full-matrix reference, next to this file
from scipy import integrate, special

from gapscope.kernels import dos, nambu, sampling, ysr
from gapscope.kernels.ysr import propagators as yp

NB2D = ysr.Substrate(dim=2, kf=10.0, hbar_vf=179.0, delta=1.5)
A_NB = 0.32940   # Nb lattice constant used for the reference dimers, nm


def s_imp(pos=(0.0, 0.0), spin=(0, 0, 1), alpha=0.7, beta=0.3):
    return ysr.Impurity(position=pos, spin=spin, channels=[ysr.Channel("s", alpha, beta)])


# ------------------------------------------------------------------ bare propagator vs brute force
def brute_g0(sub, r, z):
    """g0(r) = (1/πN0) ∫ d^dk/(2π)^d e^{ik·r} (z + ξτz + Δτx)/(z² − ξ² − Δ²), exact parabolic band.

    Radial integrals by quad; the slowly converging τz part has −ξ/(ξ² + M²) subtracted and
    added back in closed form (2D: (1/c)Re[(iπ/2)H0(qr)], 3D: (1/c)Re[(π/2)e^{iqr}]).
    """
    kf, c = sub.kf, sub.hbar_vf / (2 * sub.kf)       # ξ = c (k² − kF²)
    d = sub.delta
    M = 40.0 * d
    q = np.sqrt(kf ** 2 + 1j * M / c)
    xi = lambda k: c * (k * k - kf * kf)
    den = lambda k: z * z - xi(k) ** 2 - d * d
    if sub.dim == 2:
        kern, norm = (lambda k: k * special.j0(k * r) / (2 * np.pi)), np.pi * sub.n0
        sub_closed = (1 / c) * np.real(1j * np.pi / 2 * special.hankel1(0, q * r)) / (2 * np.pi)
    else:
        kern, norm = (lambda k: k * np.sin(k * r) / (2 * np.pi ** 2 * r)), np.pi * sub.n0
        sub_closed = (1 / c) * np.real(np.pi / 2 * np.exp(1j * q * r)) / (2 * np.pi ** 2 * r)

    def radial(f):
        re = integrate.quad(lambda k: np.real(f(k)) * kern(k), 0, 60 * kf, limit=4000, points=[kf],
                            epsabs=1e-13, epsrel=1e-11)[0]
        im = integrate.quad(lambda k: np.imag(f(k)) * kern(k), 0, 60 * kf, limit=4000, points=[kf],
                            epsabs=1e-13, epsrel=1e-11)[0]
        return re + 1j * im

    a0 = radial(lambda k: z / den(k))
    ax = radial(lambda k: d / den(k))
    az = radial(lambda k: xi(k) / den(k) + xi(k) / (xi(k) ** 2 + M * M)) - sub_closed
    return np.array([[a0 + az, ax], [ax, a0 - az]]) / norm


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("z", [0.6 + 0.0j, 0.9 + 0.05j, 2.5 + 0.05j])
def test_g0_against_brute_force_momentum_integral(dim, z):
    sub = ysr.Substrate(dim=dim, kf=10.0, hbar_vf=100.0, delta=1.0)
    for r in (0.15, 0.4, 1.1):
        a, b = yp._radial(sub, 0, np.array(r), np.array(z))
        ours = yp._tau(a, b, np.array(z), sub.delta)
        ref = brute_g0(sub, r, z)
        np.testing.assert_allclose(ours, ref, atol=2e-4 * np.abs(ref).max())


def test_local_green_function_gives_dynes_dos():
    w = np.linspace(-3, 3, 61)
    g = yp._gloc(w + 0.02j, 1.5)
    np.testing.assert_allclose(-np.imag(g[:, 0, 0]), dos.dynes(w, delta=1.5, gamma=0.02), rtol=1e-12)


# ------------------------------------------------------------------ energies
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("alpha,beta", [(0.3, 0.0), (0.7, 0.3), (1.3, 0.2), (0.9, -0.5), (2.5, 1.0)])
def test_single_impurity_energy_closed_form(dim, alpha, beta):
    sub = ysr.Substrate(dim=dim, kf=10.0, hbar_vf=179.0, delta=1.5)
    num = 1 - alpha ** 2 + beta ** 2
    e0 = 1.5 * num / np.sqrt(num ** 2 + 4 * alpha ** 2)
    np.testing.assert_allclose(ysr.energies(sub, [s_imp(alpha=alpha, beta=beta)]), [abs(e0)], atol=1e-10)
    assert ysr.single_energy(alpha=alpha, beta=beta, delta=1.5) == pytest.approx(e0, abs=1e-14)


def test_quantum_phase_transition():
    b = 0.4
    ac = ysr.critical_alpha(beta=b)
    assert ac == pytest.approx(np.sqrt(1 + b * b))
    assert ysr.single_energy(alpha=ac, beta=b, delta=1.0) == pytest.approx(0.0, abs=1e-15)
    assert ysr.single_energy(alpha=ac + 0.1, beta=b, delta=1.0) < 0 < ysr.single_energy(alpha=ac - 0.1, beta=b,
                                                                                          delta=1.0)
    e = ysr.energies(NB2D, [s_imp(alpha=ac, beta=b)])     # a defined result at the transition
    assert e.size == 1 and e[0] == pytest.approx(0.0, abs=1e-8)


def test_fm_dimer_splits_and_afm_dimer_is_degenerate():
    R = np.sqrt(2) * A_NB
    fm = ysr.energies(NB2D, [s_imp(), s_imp(pos=(R, 0.0))])
    np.testing.assert_allclose(fm, [0.14953, 1.00690], atol=3e-5)
    R = np.sqrt(3) * A_NB / 2
    afm = ysr.energies(NB2D, [s_imp(), s_imp(pos=(R, 0.0), spin=(0, 0, -1))])
    assert afm.size == 2
    assert afm[0] == pytest.approx(0.77540, abs=1e-5)
    assert afm[1] - afm[0] < 1e-9                          # a double zero, found with multiplicity


def test_afm_degeneracy_holds_for_any_common_axis_and_3d():
    R = 0.45
    for axis in [(1, 0, 0), (0, 1, 0), (1, 1, 1)]:
        a = np.array(axis, float)
        e = ysr.energies(NB2D, [s_imp(spin=a), s_imp(pos=(R, 0.2), spin=-a)])
        assert e.size == 2 and e[1] - e[0] < 1e-9
    sub3 = ysr.Substrate(dim=3, kf=10.0, hbar_vf=179.0, delta=1.5)
    e = ysr.energies(sub3, [s_imp(), s_imp(pos=(0.4, 0.0), spin=(0, 0, -1))])
    assert e.size == 2 and e[1] - e[0] < 1e-9
    e = ysr.energies(sub3, [s_imp(), s_imp(pos=(0.4, 0.0))])
    assert e.size == 2 and e[1] - e[0] > 1e-3


def test_orbital_channels_are_independent_on_a_single_site():
    imp = ysr.Impurity(channels=[ysr.Channel("dz2", 0.8, 0.1), ysr.Channel("dxy", 0.5, 0.0),
                                 ysr.Channel("dxz", 1.2, -0.3)])
    expected = sorted(abs(ysr.single_energy(alpha=a, beta=b, delta=1.5)) for a, b in
                      [(0.8, 0.1), (0.5, 0.0), (1.2, -0.3)])
    np.testing.assert_allclose(ysr.energies(NB2D, [imp]), expected, atol=1e-10)


# ------------------------------------------------------------------ LDOS
SUB = ysr.Substrate(dim=2, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.02)


def test_ldos_positive_and_bulk_far_away():
    w = np.linspace(-3, 3, 121)
    pts = np.array([[0.0, 0.0], [0.2, 0.1], [1.0, -0.5], [3.0, 2.0]])
    rho = ysr.ldos(SUB, [s_imp(), s_imp(pos=(0.47, 0.0))], pts, w)
    assert rho.min() >= 0
    far = ysr.ldos(SUB, [s_imp()], [[400.0, 0.0]], w)[0]
    np.testing.assert_allclose(far, dos.dynes(w, delta=1.5, gamma=0.02), atol=2e-3)


def test_particle_hole_identities():
    w = np.linspace(-2.5, 2.5, 51)
    pts = np.array([[0.0, 0.0], [0.31, 0.12]])
    imps = [s_imp(spin=(1, 0, 1)), ysr.Impurity((0.5, 0.1), (0, 1, 0), [ysr.Channel("dxz", 0.6, 0.2)])]
    e = ysr.ldos(SUB, imps, pts, w)
    h = ysr.ldos(SUB, imps, pts, -w, part="hole")
    np.testing.assert_allclose(h, e, atol=1e-12)
    m = (0.3, -0.2, 0.9)
    e_up = ysr.ldos(SUB, imps, pts, w, spin_axis=m)
    h_dn = ysr.ldos(SUB, imps, pts, -w, part="hole", spin_axis=tuple(-x for x in m))
    np.testing.assert_allclose(h_dn, e_up, atol=1e-12)
    e_dn = ysr.ldos(SUB, imps, pts, w, spin_axis=tuple(-x for x in m))
    np.testing.assert_allclose(e_up + e_dn, e, atol=1e-12)


def test_onsite_particle_hole_weight_ratio_and_residue():
    a, b = 0.7, 0.3
    E, W = ysr.residue_maps(SUB, [s_imp(alpha=a, beta=b)], [[0.0, 0.0]], tip_radius=0.0)
    D = np.sqrt((1 - a * a + b * b) ** 2 + 4 * a * a)
    w_plus = np.pi * a * 1.5 * (1 + (a + b) ** 2) / D ** 3
    w_minus = np.pi * a * 1.5 * (1 + (a - b) ** 2) / D ** 3
    e0 = ysr.single_energy(alpha=a, beta=b, delta=1.5)
    np.testing.assert_allclose(E, [-e0, e0], atol=1e-10)
    np.testing.assert_allclose(W[0], [w_minus, w_plus], rtol=1e-6)
    # with Dynes broadening the on-site peak height is W/(πΓ)
    peak = ysr.ldos(SUB, [s_imp(alpha=a, beta=b)], [[0.0, 0.0]], [e0], tip_radius=0.0)[0, 0]
    assert peak == pytest.approx(w_plus / (np.pi * 0.02), rel=0.03)


def test_map_oscillates_at_2kf():
    e0 = ysr.single_energy(alpha=0.7, beta=0.0, delta=1.5)
    r = np.linspace(1.0, 6.0, 2000)
    rho = ysr.ldos(SUB, [s_imp(alpha=0.7, beta=0.0)], np.c_[r, np.zeros_like(r)], [e0])[:, 0]
    bulk = dos.dynes(e0, delta=1.5, gamma=0.02)
    y = (rho - bulk) * r                                     # undo the 1/r envelope
    y = y - np.polyval(np.polyfit(r, y, 3), r)
    freqs = np.fft.rfftfreq(8 * r.size, r[1] - r[0]) * 2 * np.pi
    peak = freqs[np.argmax(np.abs(np.fft.rfft(y * np.hanning(r.size), 8 * r.size)))]
    assert peak == pytest.approx(2 * 10.0, rel=0.01)


@pytest.mark.parametrize("shape,pattern", [("dxz", lambda p: np.cos(p) ** 2), ("dyz", lambda p: np.sin(p) ** 2),
                                           ("dx2-y2", lambda p: np.cos(2 * p) ** 2),
                                           ("dxy", lambda p: np.sin(2 * p) ** 2), ("s", lambda p: np.ones_like(p))])
def test_orbital_channel_angular_patterns(shape, pattern):
    imp = ysr.Impurity(channels=[ysr.Channel(shape, 0.8, 0.0)])
    E, W = ysr.residue_maps(NB2D, [imp], np.zeros((1, 2)))
    phi = np.linspace(0, 2 * np.pi, 73)
    r = 1.3
    E, W = ysr.residue_maps(NB2D, [imp], np.c_[r * np.cos(phi), r * np.sin(phi)])
    ring = W[:, -1]
    np.testing.assert_allclose(ring / ring.max(), pattern(phi) / pattern(phi).max(), atol=1e-9)


def test_bad_input_messages():
    with pytest.raises(ValueError, match="rashba"):
        ysr.Substrate(dim=3, rashba=4.9)          # Rashba lives on the 2D band only
    with pytest.raises(ValueError, match="zero vector"):
        ysr.Impurity(spin=(0, 0, 0))
    with pytest.raises(ValueError, match="on top of each other"):
        ysr.energies(NB2D, [s_imp(), s_imp()])
    with pytest.raises(ValueError, match="gamma > 0"):
        ysr.ldos(NB2D, [s_imp()], [[0, 0]], [0.5])
    with pytest.raises(ValueError, match="shape"):
        ysr.Channel("f", 1, 0)
    # α = β exactly (singular v) still gives a finite answer
    e = ysr.energies(NB2D, [s_imp(alpha=0.5, beta=0.5)])
    assert e[0] == pytest.approx(abs(ysr.single_energy(alpha=0.5, beta=0.5, delta=1.5)), abs=1e-8)


# ------------------------------------------------------------------ cached engine
@pytest.mark.parametrize("imps", [
    [s_imp()],                                                          # isotropic: radial shortcut
    [ysr.Impurity(channels=[ysr.Channel("dxz", 0.9, 0.2)])],
    [s_imp(), ysr.Impurity((0.47, 0.1), (1, 0, 0), [ysr.Channel("dxy", 0.6, -0.1)])],
], ids=["s", "dxz", "dimer"])
@pytest.mark.slow
def test_engine_maps_equal_direct_sums(imps):
    from gapscope.kernels import tunneling as tn
    x = np.linspace(-1.5, 1.5, 40)
    X, Y = np.meshgrid(x, x)
    pts = np.c_[X.ravel(), Y.ravel()]
    chain = dict(temperature=0.3, tip_delta=1.43, tip_gamma=0.03, vmod_rms=0.02)
    bias = np.array([2.0])
    E = tn.energy_grid(bias, sample_gamma=SUB.gamma, **chain)
    w = tn.didv_weights(bias, E, **chain)[0]
    ref = ysr.ldos(SUB, imps, pts, E) @ w                            # every weight: no pruning in the reference
    eng = ysr.Engine(SUB, imps)
    np.testing.assert_allclose(eng.weighted_map(pts, E, w), ref, atol=1e-4 * np.abs(ref).max())
    # a coupling change reuses the cached propagators and still matches
    new = [ysr.Impurity(i.position, i.spin, [ysr.Channel(c.shape, c.alpha + 0.2, c.beta) for c in i.channels])
           for i in imps]
    eng.update(SUB, new)
    assert eng._y                                                      # cache kept
    ref2 = ysr.ldos(SUB, new, pts, E) @ w
    np.testing.assert_allclose(eng.weighted_map(pts, E, w), ref2, atol=1e-4 * np.abs(ref2).max())


def test_engine_ldos_equals_function_and_geometry_change_drops_cache():
    imps = [s_imp(), ysr.Impurity((0.5, 0.2), (1, 0, -1), [ysr.Channel("dx2-y2", 0.6, 0.0)])]
    pts = np.random.default_rng(0).uniform(-2, 2, (20, 2))
    w = np.linspace(-2, 2, 21)
    eng = ysr.Engine(SUB, imps)
    for kw in [dict(), dict(part="hole"), dict(spin_axis=(0.3, 0.2, 0.9))]:
        np.testing.assert_allclose(eng.ldos(pts, w, **kw), ysr.ldos(SUB, imps, pts, w, **kw), rtol=1e-6, atol=1e-9)
    eng.update(SUB, [s_imp(), s_imp(pos=(0.6, 0.0))])
    assert not eng._y and not eng._g


# ------------------------------------------------------------------ against the full-matrix reference
MULTI = [ysr.Impurity((0.0, 0.0), (1, 0, 1), [ysr.Channel("s", 0.7, 0.3), ysr.Channel("dxz", 0.5, -0.2)]),
         ysr.Impurity((0.5, 0.1), (0, 1, -0.4), [ysr.Channel("dxy", 0.6, 0.2), ysr.Channel("dz2", 0.3, 0.1)])]
PTS = np.r_[[[0.0, 0.0], [0.5, 0.1]], np.random.default_rng(3).uniform(-1.5, 1.5, (12, 2))]


@pytest.mark.parametrize("kw", [dict(), dict(part="hole"), dict(part="total"), dict(spin_axis=(0.3, -0.2, 0.9)),
                                dict(part="total", spin_axis=(1, 0, 0)), dict(tip_radius=0.0)],
                         ids=["electron", "hole", "total", "spin", "total-spin", "rc0"])
def test_ldos_and_engine_equal_full_matrix_reference(kw):
    w = np.linspace(-2.5, 2.5, 31)
    expected = ref.ldos(SUB, MULTI, PTS, w, **kw)
    np.testing.assert_allclose(ysr.ldos(SUB, MULTI, PTS, w, **kw), expected, rtol=1e-10, atol=1e-12)
    eng = ysr.Engine(SUB, MULTI)
    np.testing.assert_allclose(eng.ldos(PTS, w, **kw), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(eng.ldos(PTS, w, **kw), expected, rtol=1e-10, atol=1e-12)   # from the cache


def test_ldos_reference_single_channel_and_3d():
    w = np.linspace(-2.0, 2.0, 25)
    for sub, imps in [(SUB, [s_imp()]),
                      (ysr.Substrate(dim=3, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.02),
                       [s_imp(spin=(1, 0, 0)), s_imp(pos=(0.45, 0.0), spin=(0, 0, -1), alpha=1.1)])]:
        for kw in [dict(), dict(part="total", spin_axis=(0, 1, 1))]:
            np.testing.assert_allclose(ysr.ldos(sub, imps, PTS, w, **kw), ref.ldos(sub, imps, PTS, w, **kw),
                                       rtol=1e-10, atol=1e-12)


def test_ldos_streams_when_the_maps_exceed_the_cache():
    w = np.linspace(-2.0, 2.0, 9)
    eng = ysr.Engine(SUB, MULTI, cache_mb=1e-3)
    np.testing.assert_allclose(eng.ldos(PTS, w, part="total"), ref.ldos(SUB, MULTI, PTS, w, part="total"),
                               rtol=1e-10, atol=1e-12)
    assert not eng._y


@pytest.mark.parametrize("part", ["electron", "hole"])
def test_residue_maps_equal_full_matrix_reference(part):
    E, W = ysr.residue_maps(NB2D, MULTI, PTS, tip_radius=0.1, part=part)
    Er, Wr = ref.residue_maps(NB2D, MULTI, PTS, tip_radius=0.1, part=part)
    np.testing.assert_allclose(E, Er, atol=1e-12)
    np.testing.assert_allclose(W, Wr, rtol=1e-7, atol=1e-9 * np.abs(Wr).max())


def test_residue_maps_total_is_electron_plus_hole_and_part_is_checked():
    _, We = ysr.residue_maps(NB2D, MULTI, PTS, part="electron")
    _, Wh = ysr.residue_maps(NB2D, MULTI, PTS, part="hole")
    _, Wt = ysr.residue_maps(NB2D, MULTI, PTS, part="total")
    np.testing.assert_allclose(Wt, We + Wh, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="part must be"):
        ysr.residue_maps(NB2D, MULTI, PTS, part="spin")


# ------------------------------------------------------------------ the propagator interface
def test_propagator_interface_and_compatibility_names():
    assert set(ysr.PropagatorSet.__abstractmethods__) == {"channel_matrix", "local_green", "map_propagators"}
    prop = ysr.Propagators(SUB, MULTI)
    assert isinstance(prop, ysr.ContinuumPropagators) and isinstance(prop, ysr.PropagatorSet)
    assert prop.n == 4 * len(prop.index) == 16 and prop.sub is prop.substrate
    np.testing.assert_allclose(prop.v(), ref.vertex_matrix(prop), atol=1e-15)
    np.testing.assert_allclose(prop.vinv() @ prop.v(), np.eye(prop.n), atol=1e-12)
    z = np.array([0.3 + 0.02j, 1.9 + 0.02j])
    np.testing.assert_allclose(prop.local_green(z), ref.g_local(z, SUB.delta), rtol=1e-14)
    phi, phib = prop.map_propagators(PTS, z, 0.1)
    phi_r, phib_r = ref.assemble(*prop.map_blocks(PTS, z, 0.1))
    assert phi.shape == (PTS.shape[0], 2, 4, 16) and phib.shape == (PTS.shape[0], 2, 16, 4)
    np.testing.assert_array_equal(phi, phi_r)
    np.testing.assert_array_equal(phib, phib_r)
    for name in ysr.__all__:
        assert hasattr(ysr, name), name
    assert "Engine" in ysr.__all__


@pytest.mark.parametrize("part", ["electron", "hole", "total"])
def test_generic_reduced_map_agrees_with_the_spin_diagonal_shortcut(part):
    """The base-class reduction (any spin structure, m = 2n) and the σ₀ shortcut (m = 2C) contract alike."""
    prop = ysr.ContinuumPropagators(SUB, MULTI)
    z = np.linspace(-2, 2, 7) + 0.02j
    t = ysr.solve_t(prop, z)
    for spin in (nambu.spin_projector(None), nambu.spin_projector((0.2, -0.5, 0.7))):
        got = []
        for rm, rt in [(ysr.PropagatorSet.reduced_map, ysr.PropagatorSet.reduce_t),
                       (ysr.ContinuumPropagators.reduced_map, ysr.ContinuumPropagators.reduce_t)]:
            rows, cols = rm(prop, PTS, z, 0.1, part, tabulate=False, dtype=np.complex128)
            got.append(np.einsum("kpea,eab,kpeb->pe", rows, rt(prop, t, spin), cols))
        phi, phib = prop.map_propagators(PTS, z, 0.1)
        full = np.einsum("ab,pebc,ecd,peda->pe", nambu.kron(nambu.tau_projector(part), spin), phi, t, phib)
        np.testing.assert_allclose(got[0], full, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(got[1], full, rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------ sample DOS
def test_sample_dos_is_the_point_ldos_with_the_dynes_width():
    eng = ysr.Engine(SUB, MULTI)
    p = (0.31, -0.12)
    kw = dict(part="total", spin_axis=(0, 0, 1), tip_radius=0.05)
    sd = eng.sample_dos(p, **kw)
    assert isinstance(sd, sampling.PointDOS) and sd.width == SUB.gamma
    assert sampling.declared_width(sd) == SUB.gamma
    E = np.linspace(-2.5, 2.5, 101)
    np.testing.assert_allclose(sd(E), eng.ldos([p], E, **kw)[0], rtol=1e-13)
    grid = E.reshape(1, -1)[:, :50].reshape(5, 10)
    assert sd(grid).shape == (5, 10)
    np.testing.assert_allclose(sd(grid).ravel(), eng.ldos([p], grid.ravel(), **kw)[0], rtol=1e-13)
    np.testing.assert_allclose(eng.sample_dos(p)(E), ref.ldos(SUB, MULTI, [p], E, tip_radius=0.1)[0], rtol=1e-10)


def test_sample_dos_checks_and_staleness():
    eng = ysr.Engine(SUB, [s_imp()])
    with pytest.raises(ValueError, match="point must be one tip position"):
        eng.sample_dos([[0.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="part must be"):
        eng.sample_dos((0.0, 0.0), part="up")
    with pytest.raises(ValueError, match="spin_axis"):
        eng.sample_dos((0.0, 0.0), spin_axis=(0, 0, 0))
    with pytest.raises(ValueError, match="gamma > 0"):
        ysr.Engine(NB2D, [s_imp()]).sample_dos((0.0, 0.0))
    sd = eng.sample_dos((0.2, 0.0))
    eng.update(SUB, [s_imp()])                                  # same parameters: still valid
    sd(np.array([0.5]))
    eng.update(SUB, [s_imp(alpha=0.9)])
    with pytest.raises(RuntimeError, match="sample_dos again"):
        sd(np.array([0.5]))


# ------------------------------------------------------------------ 3D positions, tip height, p orbitals
SUB3 = ysr.Substrate(dim=3, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.02)


def g0_closed_3d(sub, r, z):
    """Exact 3D parabolic-band g₀(r) τ-block (E, 2, 2) in closed form (no Bessel functions):
    −(1/2k_F r){(z + Δτ_x)/(iΩ)[e^{iq₊r} − e^{−iq₋r}] + τ_z[e^{iq₊r} + e^{−iq₋r}]}."""
    d, kf = sub.delta, sub.kf
    om = np.sqrt(d * d - z * z)
    k2 = 2 * kf * om / sub.hbar_vf
    qp, qm = np.sqrt(kf ** 2 + 1j * k2), np.sqrt(kf ** 2 - 1j * k2)
    ep, em = np.exp(1j * qp * r), np.exp(-1j * qm * r)
    A, B = -(ep - em) / (2j * kf * r * om), -(ep + em) / (2 * kf * r)
    out = np.zeros(z.shape + (2, 2), complex)
    out[..., 0, 0], out[..., 1, 1] = A * z + B, A * z - B
    out[..., 0, 1] = out[..., 1, 0] = A * d
    return out


_S3, _S5, _S15 = np.sqrt(3), np.sqrt(5), np.sqrt(15)
#: solid harmonics r^l Y(r̂) as polynomials {(i, j, k): c} for c x^i y^j z^k (mean-1 normalised Y)
SOLID = {"s": {(0, 0, 0): 1.0}, "px": {(1, 0, 0): _S3}, "py": {(0, 1, 0): _S3},
         "dz2": {(0, 0, 2): _S5, (2, 0, 0): -_S5 / 2, (0, 2, 0): -_S5 / 2}, "dxz": {(1, 0, 1): _S15},
         "dyz": {(0, 1, 1): _S15}, "dx2-y2": {(2, 0, 0): _S15 / 2, (0, 2, 0): -_S15 / 2}, "dxy": {(1, 1, 0): _S15}}
DEGREE = {"s": 0, "px": 1, "py": 1, "dz2": 2, "dxz": 2, "dyz": 2, "dx2-y2": 2, "dxy": 2}


def derivative_orbital_element(sub, mu, nu, D, z, h=2e-3):
    """⟨χ_μ|G₀|χ_ν⟩/k_F^{l_μ+l_ν} for orbitals χ = P(∇)δ (P the solid harmonic) — the same shapes with form
    factors P(ik) instead of the on-shell (−i)^l Y(k̂)k_F^l, so equal to the model up to O(Δ/E_F):
    (−1)^{l_ν} k_F^{−(l_μ+l_ν)} P_μ(∇)P_ν(∇) g₀(D), by 4th-order finite differences of the closed-form g₀."""
    st = {0: ([0], [1.0]), 1: ([-2, -1, 1, 2], [1 / 12, -2 / 3, 2 / 3, -1 / 12]),
          2: ([-2, -1, 0, 1, 2], [-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12])}

    def stencil(n):
        if n <= 2:
            return np.array(st[n][0]), np.array(st[n][1]) / h ** n
        o1, c1 = stencil(n - 2)
        o2, c2 = stencil(2)
        acc = {}
        for a, ca in zip(o1, c1, strict=True):
            for b, cb in zip(o2, c2, strict=True):
                acc[a + b] = acc.get(a + b, 0.0) + ca * cb
        keys = sorted(acc)
        return np.array(keys), np.array([acc[k] for k in keys])

    total = 0
    for e1, c1 in SOLID[mu].items():
        for e2, c2 in SOLID[nu].items():
            (ox, cx), (oy, cy), (oz, cz) = (stencil(a + b) for a, b in zip(e1, e2, strict=True))
            for i, wx in zip(ox, cx, strict=True):
                for j, wy in zip(oy, cy, strict=True):
                    for k, wz in zip(oz, cz, strict=True):
                        total = total + c1 * c2 * wx * wy * wz * g0_closed_3d(sub, np.linalg.norm(
                            D + h * np.array([i, j, k])), z)
    return (-1) ** DEGREE[nu] * total / sub.kf ** (DEGREE[mu] + DEGREE[nu])


def test_3d_positions_take_z_and_give_the_3d_answer():
    assert ysr.Impurity((0.1, 0.2)).position == (0.1, 0.2)
    assert ysr.Impurity((0.1, 0.2, 0.3)).position == (0.1, 0.2, 0.3)
    e_x = ysr.energies(SUB3, [s_imp((0, 0)), s_imp((0.45, 0.0))])
    e_z = ysr.energies(SUB3, [s_imp((0, 0, 0)), s_imp((0, 0, 0.45))])               # along z: same 3D distance
    e_d = ysr.energies(SUB3, [s_imp((0, 0)), s_imp((0.3, -0.2, np.sqrt(0.45 ** 2 - 0.13)))])
    np.testing.assert_allclose(e_z, e_x, atol=1e-12)
    np.testing.assert_allclose(e_d, e_x, atol=1e-12)
    np.testing.assert_allclose(ysr.energies(SUB3, [s_imp((0, 0)), s_imp((0.45, 0.0, 0.0))]), e_x, atol=0)
    # a site at z = 0.25 seen by a tip at height 0.4 equals a site at z = 0 seen at height 0.15
    w = np.linspace(-2, 2, 21)
    pts = np.array([[0.0, 0.0], [0.3, -0.1], [0.8, 0.5]])
    up = ysr.ldos(SUB3, [s_imp((0.0, 0.0, 0.25))], pts, w, tip_height=0.4)
    np.testing.assert_allclose(up, ysr.ldos(SUB3, [s_imp()], pts, w, tip_height=0.15), rtol=1e-12)
    # and the s-channel LDOS is the closed-form g₀ at the 3D distance, through the full-matrix reference
    np.testing.assert_allclose(up, ref.ldos(SUB3, [s_imp()], pts, w, tip_radius=0.15), rtol=1e-10)
    with pytest.raises(ValueError, match="2D band"):
        ysr.energies(NB2D, [s_imp((0.0, 0.0, 0.1))])
    with pytest.raises(ValueError, match=r"\(x, y\) or \(x, y, z\)"):
        ysr.Impurity((0.0, 0.0, 0.0, 1.0))


def test_tip_height_is_separate_from_the_orbital_radius():
    w = np.linspace(-2, 2, 13)
    pts = np.array([[0.0, 0.0], [0.25, 0.1], [0.7, -0.3]])
    imp = [s_imp()]
    h, ro = 0.2, 0.15
    by_height = ysr.ldos(SUB3, imp, pts, w, tip_height=h)
    np.testing.assert_allclose(by_height, ysr.ldos(SUB3, imp, np.c_[pts, np.full(3, h)], w), rtol=1e-13)
    np.testing.assert_allclose(by_height, ysr.ldos(SUB3, imp, pts, w, tip_radius=h), rtol=1e-13)   # historical
    # s channel: only ρ = √(d² + h² + r_o²) matters; a d channel sees the height in its angular factor, not r_o
    np.testing.assert_allclose(ysr.ldos(SUB3, imp, pts, w, tip_height=h, orbital_radius=ro),
                               ysr.ldos(SUB3, imp, pts, w, tip_radius=np.hypot(h, ro)), rtol=1e-12)
    dxz = [ysr.Impurity(channels=[ysr.Channel("dxz", 0.8, 0.1)])]
    assert not np.allclose(ysr.ldos(SUB3, dxz, pts, w, tip_height=h, orbital_radius=ro),
                           ysr.ldos(SUB3, dxz, pts, w, tip_radius=np.hypot(h, ro)), rtol=1e-3)
    with pytest.raises(ValueError, match="tip_height applies to a 3D band"):
        ysr.ldos(SUB, imp, pts, w, tip_height=0.2)
    with pytest.raises(ValueError, match="tip_height must lie in"):
        ysr.ldos(SUB3, imp, pts, w, tip_height=-0.1)
    with pytest.raises(ValueError, match="orbital_radius must lie in"):
        ysr.Engine(SUB3, imp).sample_dos((0.1, 0.0), orbital_radius=-1.0)
    np.testing.assert_allclose(ysr.Engine(SUB3, imp).sample_dos((0.25, 0.1, h))(w), by_height[1], rtol=1e-13)


def test_px_in_3d_is_a_p_orbital():
    z = np.array([0.4 + 0.02j, 1.7 + 0.02j])
    sub = ysr.Substrate(dim=3, kf=10.0, hbar_vf=2000.0, delta=1.5, gamma=0.02)
    prop = ysr.ContinuumPropagators(sub, [ysr.Impurity(channels=[ysr.Channel("px", 0.7, 0.1)])])
    pts = np.array([[0.31, -0.12, 0.0], [0.05, 0.4, 0.2], [-0.6, 0.3, 0.1]])
    phi, phib = prop.map_blocks(pts, z, 0.0)
    for p, blk, blkb in zip(pts, phi[:, :, 0], phib[:, :, 0], strict=True):
        ref_p = derivative_orbital_element(sub, "s", "px", p, z)      # −(√3/k_F) ∂_x g₀, l = 1
        np.testing.assert_allclose(blk, ref_p, atol=1e-3 * np.abs(ref_p).max())
        np.testing.assert_allclose(blkb, ref_p, atol=1e-3 * np.abs(ref_p).max())
    # in the plane of the adatom (tip height 0) a px channel shows cos²φ lobes; dxz vanishes there
    phi_ring = np.linspace(0, 2 * np.pi, 37)
    ring = 0.9 * np.c_[np.cos(phi_ring), np.sin(phi_ring)]
    Wp = ysr.residue_maps(SUB3, [ysr.Impurity(channels=[ysr.Channel("px", 0.8, 0.0)])], ring, tip_height=0.0)[1]
    np.testing.assert_allclose(Wp[:, -1] / Wp[:, -1].max(), np.cos(phi_ring) ** 2, atol=1e-9)
    Wd = ysr.residue_maps(SUB3, [ysr.Impurity(channels=[ysr.Channel("dxz", 0.8, 0.0)])], ring, tip_height=0.0)[1]
    assert np.abs(Wd).max() < 1e-12 * np.abs(Wp).max()
    # a px and a dxz channel of one 3D site are two channels (in 2D their in-plane harmonics merge)
    both = [ysr.Impurity(channels=[ysr.Channel("px", 0.8, 0.0), ysr.Channel("dxz", 0.5, 0.0)])]
    assert ysr.energies(SUB3, both).size == 2 and ysr.energies(NB2D, both).size == 1


@pytest.mark.parametrize("mu,nu", [("s", "px"), ("px", "s"), ("px", "px"), ("px", "dxz"), ("dxz", "dyz"),
                                   ("dz2", "dz2"), ("py", "dx2-y2"), ("s", "dxy")])
def test_3d_intersite_coupling_of_orbital_channels(mu, nu):
    """The on-shell Gaunt/Legendre channel matrix against derivatives of the exact s propagator (orbitals P(∇)δ),
    equal up to O(Δ/E_F) = 1.5e-4 here."""
    sub = ysr.Substrate(dim=3, kf=10.0, hbar_vf=2000.0, delta=1.5)
    D = np.array([0.31, -0.17, 0.22])
    z = np.array([0.4 + 0.0j, 1.1 + 0.03j])
    imps = [ysr.Impurity(tuple(D), channels=[ysr.Channel(mu, 0.5, 0.1)]),
            ysr.Impurity((0.0, 0.0, 0.0), channels=[ysr.Channel(nu, 0.6, 0.0)])]
    G = ysr.ContinuumPropagators(sub, imps).channel_matrix(z)
    ours = G[:, 0:4:2, 4:8:2]                          # τ-block from ν at the origin to μ at D (spin ↑ rows)
    expected = derivative_orbital_element(sub, mu, nu, D, z)
    np.testing.assert_allclose(ours, expected, atol=1e-3 * np.abs(expected).max())


def test_3d_orbital_dimers_hermitian_and_rotation_invariant():
    imps = [ysr.Impurity((0, 0, 0), (0, 0, 1), [ysr.Channel("px", .5, .1), ysr.Channel("dxz", .4, 0),
                                                 ysr.Channel("dz2", .3, .1)]),
            ysr.Impurity((0.3, 0.2, 0.25), (1, 0, 0), [ysr.Channel("py", .5, .1), ysr.Channel("s", .6, 0),
                                                       ysr.Channel("dxy", .3, .1)])]
    G = ysr.ContinuumPropagators(SUB3.with_gamma(0.0), imps).channel_matrix(np.array([0.3 + 0j, -0.9 + 0j]))
    np.testing.assert_allclose(G, np.conj(np.swapaxes(G, 1, 2)), atol=1e-14)    # A(ω) Hermitian in the gap
    for a, b, da, db in [("px", "py", (0.45, 0, 0), (0, 0.45, 0)), ("dxz", "dyz", (0.45, 0, 0), (0, 0.45, 0)),
                         ("dxz", "dxz", (0.45, 0, 0), (-0.45, 0, 0))]:                 # rotations about z
        e1 = ysr.energies(SUB3, [ysr.Impurity((0, 0, 0), channels=[ysr.Channel(a, 0.7, 0.3)]),
                                 ysr.Impurity(da, channels=[ysr.Channel(a, 0.9, 0.1)])])
        e2 = ysr.energies(SUB3, [ysr.Impurity((0, 0, 0), channels=[ysr.Channel(b, 0.7, 0.3)]),
                                 ysr.Impurity(db, channels=[ysr.Channel(b, 0.9, 0.1)])])
        np.testing.assert_allclose(e1, e2, atol=1e-10)
        assert e1.size == 2 and e1[1] - e1[0] > 1e-3                                   # they do couple


# ------------------------------------------------------------------ the map regulariser
RADII = (0.2, 0.1, 0.05, 0.025, 0.0125)


@pytest.mark.parametrize("shape", ["s", "dxz", "dxy"])
def test_2d_maps_converge_as_the_orbital_radius_is_refined_away_from_the_adatom(shape):
    """Where d ≫ r_o the map converges to the r_o = 0 value at O(r_o²) (differences shrink ~4× per halving)."""
    imps = [ysr.Impurity(channels=[ysr.Channel(shape, 0.8, 0.2)])]
    e0 = ysr.single_energy(alpha=0.8, beta=0.2, delta=1.5)
    pts = np.array([[0.3, 0.1], [0.6, 0.3], [1.2, -0.4]])
    rows = np.array([ysr.ldos(SUB, imps, pts, [-e0, e0], orbital_radius=r) for r in RADII + (0.0,)])
    err = np.abs(rows[:-1] - rows[-1]).max(axis=(1, 2))
    ratios = err[1:-1] / err[2:]                               # from r_o = 0.1 nm (≤ d/3) on: asymptotic
    assert np.all((ratios > 3.0) & (ratios < 5.0)), ratios
    richardson = rows[-2] + (rows[-2] - rows[-3]) / 3.0        # O(r_o²) extrapolation to r_o = 0
    np.testing.assert_allclose(richardson, rows[-1], atol=1e-3 * np.abs(rows[-1]).max())


def test_3d_maps_with_a_tip_height_converge_everywhere():
    """With the tip at a physical height the map is finite above the adatom too and needs no regulariser."""
    for shape in ("s", "px", "dxz"):
        imps = [ysr.Impurity(channels=[ysr.Channel(shape, 0.8, 0.2)])]
        e0 = ysr.single_energy(alpha=0.8, beta=0.2, delta=1.5)
        pts = np.array([[0.0, 0.0], [0.1, 0.05], [0.3, 0.1], [0.6, 0.3]])
        rows = np.array([ysr.ldos(SUB3, imps, pts, [e0], tip_height=0.2, orbital_radius=r)[:, 0]
                         for r in RADII + (0.0,)])
        err = np.abs(rows[1:-1] - rows[-1]).max(axis=1)          # r_o ≤ h/2 = 0.1 nm
        assert np.all(err[1:] < err[:-1] / 3.0), (shape, err)
        richardson = rows[-2] + (rows[-2] - rows[-3]) / 3.0
        np.testing.assert_allclose(richardson, rows[-1], atol=1e-3 * np.abs(rows[-1]).max())


def test_2d_m_nonzero_intensity_near_the_adatom_is_set_by_the_orbital_radius():
    """The model part: within r_o of the adatom an m ≠ 0 channel's peak follows r_o (its on-shell propagator
    grows as (k_F d)^−|m|), so there is nothing to converge to; its documented value at r_o = 0 on the site is 0."""
    imps = [ysr.Impurity(channels=[ysr.Channel("dxz", 0.8, 0.2)])]
    e0 = ysr.single_energy(alpha=0.8, beta=0.2, delta=1.5)
    near = [ysr.ldos(SUB, imps, [[0.03, 0.0]], [e0], orbital_radius=r)[0, 0] for r in (0.2, 0.1, 0.05)]
    assert near[1] > 2 * near[0] and near[2] > 2 * near[1]
    bulk = dos.dynes(e0, delta=1.5, gamma=0.02)
    assert ysr.ldos(SUB, imps, [[0.0, 0.0]], [e0], orbital_radius=0.0)[0, 0] == pytest.approx(bulk, rel=1e-12)
