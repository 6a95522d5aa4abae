"""The self-consistent Usadel S/S′ junction against closed forms, an independent BVP solver, quadrature
of the BCS gap equation and the tunnelling chain, grid refinement, and synthetic fits.

References used here (none of them calls the solver being tested):

* the exact rigid-S / semi-infinite-N solution tan(θ/4) = tan(θ₀/4) e^{−kx}, k = √(2ω/ħD), with θ₀
  from −2γ_Bξ_N k sin(θ₀/2) = sin(θ₀ − θ_S) (real and complex ω);
* scipy.integrate.solve_bvp on the folded two-sided problem with the KL conditions;
* the BCS gap equation by scipy quadrature (real-axis form) and the δ(t) table;
* the Dynes DOS (gapscope.kernels.dos.dynes) and Gauss–Legendre quadrature of ∫N(x,E)(−f′)dE;
* reference numbers of an independent implementation (U1, U2 sets of the physics notes).
"""

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.optimize import brentq, fsolve

from gapscope.kernels import dos, proximity, tunneling
from gapscope.kernels.constants import BCS_RATIO, KB
from gapscope.kernels.proximity import ConvergenceError, Junction

U1 = dict(delta_s=1.3, delta_n=1.0, xi_s=6.0, xi_n=3.0, gamma=1.0, gamma_b=0.0204, temperature=0.5, omega_c=30.0,
          length_s=120.0, length_n=60.0)


@pytest.fixture(scope="module")
def u1():
    return Junction(**U1).solve()


def bcs_delta(delta0, T):
    """Weak-coupling Δ(T) from ln(Δ₀/Δ) = 2∫₀^∞ f(√(ξ² + Δ²))/√(ξ² + Δ²) dξ, by quad (ξ = Δ sinh u)."""
    tc = delta0 / (BCS_RATIO * KB)
    if T >= tc:
        return 0.0
    kT = KB * T

    def g(d):
        val = integrate.quad(lambda u: 0.5 * (1.0 - np.tanh(0.5 * d * np.cosh(u) / kT)), 0.0, 50.0, limit=200)[0]
        return math.log(delta0 / d) - 2.0 * val
    return brentq(g, 1e-9 * delta0, delta0, xtol=1e-14)


# ----------------------------------------------------------------------------- calibration and references
def test_u1_reference_numbers(u1):
    """Lin et al.-like junction (U1): numbers of an independent implementation."""
    j = u1.junction
    assert j.n_frequencies == 111
    lam_s, lam_n = j.couplings
    assert lam_s == pytest.approx(0.26082, abs=2e-5) and lam_n == pytest.approx(0.24412, abs=2e-5)
    a, b = u1.delta_interface
    assert a == pytest.approx(1.1863, abs=2e-4) and b == pytest.approx(1.1085, abs=2e-4)
    np.testing.assert_allclose(u1.at([1.0, 3.0, 5.0, 8.0, -5.0]), [1.0825, 1.0505, 1.0323, 1.0170, 1.2420], atol=2e-4)
    assert u1.decay_length_n == pytest.approx(4.037, abs=5e-3)
    assert u1.decay_length_s == pytest.approx(7.632, abs=1e-2)
    assert u1.jump == pytest.approx(0.0778, abs=2e-4)
    assert u1.residual < 1e-8 and u1.iterations < 60


def test_coupling_gives_the_bulk_gap_of_an_independent_gap_equation():
    """λ from the calibration, then the bulk cut-off gap equation 1 = λ 2πk_BT Σ 1/√(ω² + Δ²) solved by
    brentq must return Δ₀ δ(T/T*_c) from quadrature of the BCS equation (no cut-off)."""
    for delta0, T, wc in ((1.3, 0.5, 30.0), (1.0, 4.0, 8.6), (0.8, 2.5, 100.0)):
        lam = proximity.coupling(delta0=delta0, temperature=T, omega_c=wc)
        kT = KB * T
        w = np.pi * kT * (2 * np.arange(int(wc / (2 * np.pi * kT) + 0.5)) + 1)
        d = brentq(lambda x, lam=lam, kT=kT, w=w: lam * 2 * np.pi * kT * np.sum(1 / np.sqrt(w * w + x * x)) - 1,
                   1e-9, 5 * delta0)
        assert d == pytest.approx(bcs_delta(delta0, T), rel=1e-7)
    # above T*_c: 1/λ = Σ_{n<N_w} 2/(2n + 1) − ln(T*_c/T) (the ψ form, here as the plain sum)
    tc = 1.0 / (BCS_RATIO * KB)
    lam = proximity.coupling(delta0=1.0, temperature=1.2 * tc, omega_c=20.0)
    n_w = int(20 / (2 * np.pi * KB * 1.2 * tc) + 0.5)
    assert 1 / lam == pytest.approx(np.sum(2.0 / (2 * np.arange(n_w) + 1)) - math.log(1 / 1.2), rel=1e-12)
    assert proximity.coupling(delta0=0.0, temperature=1.0, omega_c=30.0) == 0.0


def test_far_field_gaps_equal_bulk_gaps():
    """L ≥ 25ξ: the outer ends carry Δ_bulk(T) of each side (BCS by quadrature; table value at t = 0.5).
    (At t = 0.65 the S′ tail is longer than at low T: 80 nm = 27ξ_S′ still leaves 2e-6 meV.)"""
    tc_s = 1.3 / (BCS_RATIO * KB)
    T = 0.5 * tc_s
    j = Junction(**{**U1, "temperature": T, "length_s": 150.0, "length_n": 120.0})
    s = j.solve(tol=1e-11)
    far_s, far_n = s.delta_far
    assert far_s == pytest.approx(1.3 * 0.956885, abs=2e-6)
    assert far_s == pytest.approx(bcs_delta(1.3, T), abs=1e-6)
    assert far_n == pytest.approx(bcs_delta(1.0, T), abs=1e-6)
    assert not s.normal and not s.warnings


def test_bulk_limit_equals_dynes_exactly():
    """Identical pairing on both sides (different ξ, γ, a resistive interface): no flux, Δ(x) ≡ Δ_bulk and
    N(x, E) is the Dynes DOS at every node."""
    j = Junction(delta_s=1.3, delta_n=1.3, xi_s=6.0, xi_n=2.0, gamma=0.3, gamma_b=2.0, temperature=1.5,
                 length_s=40.0, length_n=30.0, dynes_gamma=0.02)
    s = j.solve()
    d = bcs_delta(1.3, 1.5)
    np.testing.assert_allclose(s.delta, d, atol=1e-9)
    E = np.linspace(-3.0, 3.0, 241)
    N = s.dos(E)
    np.testing.assert_allclose(N, np.broadcast_to(dos.dynes(E, delta=d, gamma=0.02), N.shape), atol=1e-10)
    assert N.shape == (s.x.size, E.size)


# ----------------------------------------------------------------------------- exact and independent solutions
def _exact_theta0(theta_s, k, gamma_b, xi_n):
    f = lambda t: np.sin(t - theta_s) + 2 * gamma_b * xi_n * k * np.sin(t / 2)
    if np.isrealobj(theta_s) and np.isrealobj(k):
        return brentq(f, 0.0, float(theta_s), xtol=1e-15)

    def F(p):
        v = f(p[0] + 1j * p[1])
        return [v.real, v.imag]
    a, b = fsolve(F, [theta_s.real, theta_s.imag], xtol=1e-13)
    return a + 1j * b


@pytest.fixture(scope="module")
def rigid():
    """γ → 0 (S unaffected by S′), Δ_S′ = 0, L_S′ = 50 ξ_S′ (semi-infinite), fine grid."""
    j = Junction(delta_s=1.3, delta_n=0.0, xi_s=6.0, xi_n=6.0, gamma=1e-7, gamma_b=0.4, temperature=0.5,
                 length_s=60.0, length_n=300.0)
    return j.solve(points_per_xi=24, tol=1e-11)


def test_rigid_s_semi_infinite_n_matsubara(rigid):
    j = rigid.junction
    d_s = proximity.bulk_gap(1.3, 0.5)
    np.testing.assert_allclose(rigid.delta[:rigid.n_s], d_s, atol=1e-6)      # S stays bulk
    assert np.all(rigid.delta[rigid.n_s:] == 0.0)
    hbar_d = j.hbar_d[1]
    x = rigid.x[rigid.n_s:]
    for n in (0, 3, 10):
        w = rigid.omegas[n]
        k = math.sqrt(2 * w / hbar_d)
        th_s = math.atan2(d_s, w)
        t0 = _exact_theta0(th_s, k, j.gamma_b, j.xi_n)
        exact = 4 * np.arctan(np.tan(t0 / 4) * np.exp(-k * x))
        keep = k * x < 25            # leave out the far end (θ′ = 0 there, exact solution ~e^{−kL})
        np.testing.assert_allclose(rigid.theta_matsubara[n, rigid.n_s:][keep], exact[keep], atol=1e-4)


def test_rigid_s_semi_infinite_n_retarded(rigid):
    j = rigid.junction
    d_s = proximity.bulk_gap(1.3, 0.5)
    hbar_d = j.hbar_d[1]
    x = rigid.x[rigid.n_s:]
    E = np.array([0.3, 0.9, 1.25, 2.0])
    th = rigid.angles(E, gamma=0.02)
    for i, e in enumerate(E):
        w = 0.02 - 1j * e
        k = np.sqrt(2 * w / hbar_d)            # principal root: Re k > 0
        s = np.sqrt(w * w + d_s * d_s)
        th_s = -1j * np.log((w + 1j * d_s) / s)
        np.testing.assert_allclose(th[: rigid.n_s, i], th_s, atol=1e-6)     # S: the bulk angle
        t0 = _exact_theta0(th_s, k, j.gamma_b, j.xi_n)
        exact = 4 * np.arctan(np.tan(t0 / 4) * np.exp(-k * x))
        keep = k.real * x < 20
        np.testing.assert_allclose(th[rigid.n_s:, i][keep], exact[keep], atol=2e-4)


def test_matsubara_angles_match_solve_bvp(u1):
    """The folded two-sided BVP with the KL conditions, solved by scipy's collocation on the converged Δ(x)."""
    j = u1.junction
    ds, dn = j.hbar_d
    Ls, Ln = j.length_s, j.length_n
    sig_n = j.gamma * j.xi_n / j.xi_s
    xs, xn = u1.x[:u1.n_s], u1.x[u1.n_s:]
    dS = lambda x: np.interp(x, xs, u1.delta[:u1.n_s])
    dN = lambda x: np.interp(x, xn, u1.delta[u1.n_s:])
    for n in (0, 7):
        w = u1.omegas[n]

        def rhs(s, y, w=w):   # y = (u, u', v, v'), u(s) = θ_S(−sL_S), v(s) = θ_N(sL_N)
            u, up, v, vp = y
            return np.vstack([up, 2 * Ls ** 2 / ds * (w * np.sin(u) - dS(-s * Ls) * np.cos(u)),
                              vp, 2 * Ln ** 2 / dn * (w * np.sin(v) - dN(s * Ln) * np.cos(v))])

        def bc(a, b):
            return np.array([b[1], b[3], -a[1] / Ls - sig_n * a[3] / Ln,
                             j.gamma_b * j.xi_n * a[3] / Ln - np.sin(a[2] - a[0])])

        s = np.linspace(0, 1, 400)
        y0 = np.vstack([np.arctan2(dS(-s * Ls), w), 0 * s, np.arctan2(dN(s * Ln), w), 0 * s])
        sol = integrate.solve_bvp(rhs, bc, s, y0, tol=1e-8, max_nodes=200000)
        assert sol.success
        np.testing.assert_allclose(u1.theta_matsubara[n, :u1.n_s], sol.sol(-xs / Ls)[0], atol=2e-5)
        np.testing.assert_allclose(u1.theta_matsubara[n, u1.n_s:], sol.sol(xn / Ln)[2], atol=2e-5)


def test_self_consistency_and_kl_conditions(u1):
    j = u1.junction
    lam = np.where(np.arange(u1.x.size) < u1.n_s, *j.couplings)
    F = lam * 2 * np.pi * KB * j.temperature * np.sin(u1.theta_matsubara).sum(axis=0)
    np.testing.assert_allclose(F, u1.delta, atol=1e-8)
    # KL: ξ_S θ_S′(0⁻) = γ ξ_N θ_N′(0⁺) and γ_B ξ_N θ_N′(0⁺) = sin(θ_N − θ_S), one-sided 2nd-order slopes
    for th in u1.theta_matsubara[[0, 20]]:
        xs, xn = u1.x[:u1.n_s], u1.x[u1.n_s:]
        hs, hn = xs[1] - xs[0], xn[1] - xn[0]
        ps = (3 * th[u1.n_s - 1] - 4 * th[u1.n_s - 2] + th[u1.n_s - 3]) / (2 * hs)
        pn = (-3 * th[u1.n_s] + 4 * th[u1.n_s + 1] - th[u1.n_s + 2]) / (2 * hn)
        assert j.xi_s * ps == pytest.approx(j.gamma * j.xi_n * pn, rel=1e-2, abs=1e-5)
        assert j.gamma_b * j.xi_n * pn == pytest.approx(np.sin(th[u1.n_s] - th[u1.n_s - 1]), rel=2e-2, abs=1e-6)


def test_grid_convergence():
    sols = [Junction(**U1).solve(points_per_xi=p, tol=1e-11) for p in (12, 24, 48)]
    probe = np.array([-10.0, -3.0, 1.0, 4.0, 10.0])
    d = [np.r_[s.delta_interface, s.at(probe)] for s in sols]
    e1, e2 = np.max(np.abs(d[0] - d[1])), np.max(np.abs(d[1] - d[2]))
    assert e1 < 2e-5 and e2 < e1 / 3            # second order
    L = [s.decay_length_n for s in sols]
    assert abs(L[0] - L[2]) / L[2] < 1e-3


def test_transparent_interface_makes_theta_continuous():
    s0 = Junction(**{**U1, "gamma_b": 0.0}).solve()
    jump0 = np.abs(s0.theta_matsubara[:, s0.n_s] - s0.theta_matsubara[:, s0.n_s - 1]).max()
    assert jump0 < 1e-6
    s1 = Junction(**{**U1, "gamma_b": 2.0}).solve()
    assert np.abs(s1.theta_matsubara[:, s1.n_s] - s1.theta_matsubara[:, s1.n_s - 1]).max() > 1e-2
    # the Δ jump is dominated by λ_S ≠ λ_N (independent implementation: 0.0759 and 0.1746 meV)
    assert s0.jump == pytest.approx(0.0759, abs=3e-4)
    assert s1.jump == pytest.approx(0.1746, abs=3e-4)
    e = np.array([0.5, 1.15, 1.5])
    N0 = s0.dos(e)
    np.testing.assert_allclose(N0[s0.n_s], N0[s0.n_s - 1], atol=1e-5)


def test_sn_bilayer_minigap():
    """S/N, N 30 nm thick (U2): induced minigap at the free N surface well below Δ_S."""
    j = Junction(delta_s=1.3, delta_n=0.0, xi_s=6.0, xi_n=6.0, gamma=1.0, gamma_b=0.5, temperature=0.5,
                 omega_c=30.0, length_s=120.0, length_n=30.0)
    s = j.solve()
    assert s.delta_interface[0] == pytest.approx(0.6353, abs=1e-3)
    assert np.all(s.delta[s.n_s:] == 0.0)
    N = s.dos([0.05, 0.1, 0.2], gamma=0.01)
    assert N[s.n_s, 2] == pytest.approx(0.729, abs=2e-3)
    np.testing.assert_allclose(N[-1], [0.199, 1.302, 1.287], atol=2e-3)
    E = np.linspace(0.0, 0.3, 301)
    far = s.dos(E, gamma=0.002)[-1]
    e_g = E[np.argmax(far > 0.5)]                         # minigap edge: N crosses ½
    assert 0.05 < e_g < 0.1 < 0.1 * j.delta_s + 0.1
    assert far[E < 0.5 * e_g].max() < 0.05                # a hard minigap at small Γ
    assert far[(E > e_g) & (E < 0.2)].max() > 1.2         # with its own coherence peak


# ----------------------------------------------------------------------------- decay lengths and the paper
def test_decay_length_definition():
    x = np.linspace(0.0, 40.0, 4001)
    assert proximity.decay_length(x, 1.0 + 0.2 * np.exp(-x / 3.0), side="n") == pytest.approx(3.0, abs=1e-3)
    xs = -np.linspace(0.0, 80.0, 8001)[::-1]
    assert proximity.decay_length(xs, 1.3 - 0.1 * np.exp(xs / 5.0), side="s") == pytest.approx(5.0, abs=2e-3)
    assert math.isnan(proximity.decay_length(x, np.ones_like(x)))
    with pytest.raises(ValueError, match="side"):
        proximity.decay_length(x, x, side="left")


def test_paper_decay_length_needs_xi_n():
    """With Lin et al.'s other values L_d = 3.55 nm (text) needs ξ_S′ ≈ 2.64 nm; 2.75 nm (caption) ≈ 2.04 nm."""
    j = Junction(delta_s=1.3, delta_n=1.0, xi_s=6.0, gamma=1.0, gamma_b=proximity.gamma_b_from_r(0.02),
                 temperature=0.5, omega_c=30.0)
    assert proximity.PAPER_DECAY_LENGTHS == {"text": 3.55, "caption": 2.75}
    xi = proximity.match_decay_length(3.55, junction=j)
    assert xi == pytest.approx(2.64, abs=0.01)
    assert j.replace(xi_n=xi).solve().decay_length_n == pytest.approx(3.55, abs=1e-3)
    assert proximity.gamma_b_from_r(0.02) == pytest.approx(0.02 / 0.98, rel=1e-12)
    assert proximity.r_from_gamma_b(proximity.gamma_b_from_r(0.3)) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="not reached"):
        proximity.match_decay_length(50.0, junction=j)


@pytest.mark.slow
def test_caption_decay_length():
    j = Junction(delta_s=1.3, delta_n=1.0, xi_s=6.0, gamma=1.0, gamma_b=0.0204, temperature=0.5, omega_c=30.0)
    assert proximity.match_decay_length(2.75, junction=j) == pytest.approx(2.04, abs=0.01)


def test_cutoff_dependence():
    """Pitfall: near the interface Δ depends on ω_c (independent implementation, U1)."""
    s = Junction(**{**U1, "omega_c": 8.6}).solve()
    assert s.delta_interface == pytest.approx((1.2035, 1.0925), abs=3e-4)
    assert s.decay_length_n == pytest.approx(4.325, abs=1e-2)


# ----------------------------------------------------------------------------- line scans through the chain
def test_line_scan_in_bulk_equals_the_dynes_chain():
    j = Junction(delta_s=1.3, delta_n=1.3, xi_n=4.0, gamma_b=0.1, temperature=0.8, length_s=60.0, length_n=40.0,
                 dynes_gamma=0.02)
    s = j.solve()
    V = np.linspace(-3.5, 3.5, 281)
    d = float(s.delta[0])
    for chain in (dict(), dict(tip_delta=1.31, tip_gamma=0.02, vmod_rms=0.03)):
        ls = proximity.line_scan(s, V, [-10.0, 0.0, 5.0], **chain)
        ref = tunneling.didv(V, sample_dos=dos.bind("dynes", delta=d, gamma=0.02), temperature=0.8, **chain)
        np.testing.assert_allclose(ls.didv, np.broadcast_to(ref, ls.didv.shape), atol=2e-3 * ref.max())


def test_line_scan_matches_quadrature_of_the_ldos(u1):
    """G(x, V) through the table and the FFT chain vs Σ w_i N(x, E_i)(−f′(E_i − V)) by Gauss–Legendre on the
    exact (untabulated) Usadel DOS at the quadrature nodes."""
    T = 1.0
    kT = KB * T
    V = np.array([-1.6, -1.1, 0.0, 1.05, 1.2, 2.0])
    x = np.array([-2.0, 1.5])
    ls = proximity.line_scan(u1, V, x, temperature=T, gamma=0.02)
    g, wg = np.polynomial.legendre.leggauss(12)
    for iv, v in enumerate(V):
        edges = np.linspace(v - 22 * kT, v + 22 * kT, 161)
        a, b = edges[:-1, None], edges[1:, None]
        E = (0.5 * (b - a) * g[None, :] + 0.5 * (a + b)).ravel()
        w = (0.5 * (b - a) * wg[None, :]).ravel()
        N = u1.ldos(x, E, gamma=0.02)
        ref = N @ (w * 0.25 / kT / np.cosh(0.5 * (E - v) / kT) ** 2)
        np.testing.assert_allclose(ls.didv[:, iv], ref, atol=2e-3 * max(1.0, ref.max()))


def test_line_scan_shapes_asymmetry_and_symmetry(u1):
    V = np.linspace(-3, 3, 241)
    X = np.linspace(-110, 55, 34)
    ls = proximity.line_scan(u1, V, X, vmod_rms=0.02)
    assert ls.didv.shape == (34, 241) and ls.ldos.shape[0] == 34
    np.testing.assert_allclose(ls.didv, ls.didv[:, ::-1], atol=1e-6)         # particle–hole symmetric
    # far from the interface the asymmetry is that of the bulk Dynes spectra through the same chain
    for x_far, d in zip((0, -1), u1.delta_far, strict=True):
        G = tunneling.didv(V, sample_dos=dos.bind("dynes", delta=d, gamma=0.01), temperature=0.5, vmod_rms=0.02)
        assert ls.asymmetry[x_far] == pytest.approx(tunneling.peak_asymmetry(V, G)["mean"], abs=5e-4)
    # no position has higher coherence peaks than the bulk S (no enhancement in the diffusive model)
    assert ls.asymmetry.max() <= ls.asymmetry[0] + 1e-4
    E, N = proximity.dos_table(u1, 3.5, 200)
    assert E.size == 399 and np.all(np.diff(E) > 0) and N.shape == (u1.x.size, 399)
    np.testing.assert_allclose(N, N[:, ::-1], atol=1e-12)


def test_line_from_grid():
    from gapscope.kernels.readers import Grid
    bias = np.linspace(-3, 3, 7)
    data = np.arange(5 * 7, dtype=float).reshape(5, 1, 7)
    g = Grid(bias=bias, x=np.linspace(0, 2.0, 5), y=np.zeros(1), data={"LI Demod 1 X": data}, units={}, header={})
    X, V, G = proximity.line_from_grid(g, interface=1.0)
    np.testing.assert_allclose(X, [-1.0, -0.5, 0.0, 0.5, 1.0])
    assert G.shape == (5, 7) and np.array_equal(V, bias)
    g2 = Grid(bias=bias, x=np.zeros(2), y=np.zeros(2), data={"c": np.zeros((2, 2, 7))}, units={}, header={})
    with pytest.raises(ValueError, match="one row or one column"):
        proximity.line_from_grid(g2)


# ----------------------------------------------------------------------------- fits
SMALL = dict(delta_s=1.3, delta_n=1.0, xi_s=6.0, xi_n=3.0, gamma=1.0, gamma_b=0.5, temperature=1.0, omega_c=15.0,
             length_s=60.0, length_n=40.0, dynes_gamma=0.02)


def test_line_scan_fit_recovers_known_parameters():
    truth = Junction(**SMALL)
    s = truth.solve(points_per_xi=8)
    V = np.linspace(-2.5, 2.5, 81)
    X = np.linspace(-6.0, 12.0, 19)
    clean = 1.05 * proximity.line_scan(s, V, X, n_energies=150).didv
    rng = np.random.default_rng(3)
    noise = 0.01
    data = clean + rng.normal(0.0, noise, clean.shape)
    r = proximity.fit_line_scan(X, V, data, junction=truth.replace(xi_n=2.2, gamma_b=0.2),
                                free=("xi_n", "gamma_b", "scale"), n_energies=150, points_per_xi=8)
    assert r.success
    for name, true in (("xi_n", 3.0), ("gamma_b", 0.5), ("scale", 1.05)):
        assert abs(r.values[name] - true) < 3 * r.errors[name], (name, r.values[name], r.errors[name])
        assert r.errors[name] < 0.05 * true
    assert r.redchi == pytest.approx(noise ** 2, rel=0.15)
    assert abs(r.decay_length_n - s.decay_length_n) < 3 * r.decay_length_n_err


def test_profile_fit_recovers_known_parameters():
    truth = Junction(**SMALL)
    s = truth.solve(points_per_xi=8)
    rng = np.random.default_rng(5)
    x = np.linspace(-10.0, 15.0, 60)
    sigma = 0.003
    d = s.at(x - 0.3) + rng.normal(0.0, sigma, x.size)
    r = proximity.fit_profile(x, d, junction=truth.replace(xi_n=2.0), free=("xi_n", "x_offset"), sigma=sigma,
                              points_per_xi=8)
    assert abs(r.values["xi_n"] - 3.0) < 3 * r.errors["xi_n"] and r.errors["xi_n"] < 0.3
    assert abs(r.values["x_offset"] - 0.3) < 3 * r.errors["x_offset"]
    assert r.redchi == pytest.approx(1.0, abs=0.5)
    with pytest.raises(ValueError, match="cannot fit"):
        proximity.fit_profile(x, d, junction=truth, free=("temperature",))


def test_exponential_decay_fit():
    rng = np.random.default_rng(7)
    x = np.linspace(0.0, 20.0, 50)
    y = 1.0 + 0.25 * np.exp(-x / 3.55) + rng.normal(0.0, 0.004, x.size)
    f = proximity.fit_decay(x, y, sigma=0.004)
    assert abs(f.decay_length - 3.55) < 3 * f.decay_length_err and f.decay_length_err < 0.3
    assert abs(f.delta_far - 1.0) < 3 * f.delta_far_err


# ----------------------------------------------------------------------------- bad input, failure, cancel
def test_bad_input_gives_precise_messages():
    with pytest.raises(ValueError, match="omega_c"):
        Junction(omega_c=1.0)                          # below Δ_S = 1.3 meV
    with pytest.raises(ValueError, match="length_n"):
        Junction(length_n=2.0)                         # shorter than ξ_S′ = 3 nm
    with pytest.raises(ValueError, match="length_s"):
        Junction(length_s=5.0)
    with pytest.raises(ValueError, match="temperature"):
        Junction(temperature=0.05, omega_c=400.0)      # too many Matsubara frequencies
    with pytest.raises(ValueError, match="delta_s"):
        Junction(delta_s=0.0)
    with pytest.raises(ValueError, match="grid nodes"):
        Junction(xi_n=0.2, length_n=400.0)
    with pytest.raises(ValueError, match="gamma"):
        Junction().solve().dos([0.1], gamma=0.0)


def test_above_both_tc_is_the_normal_state():
    j = Junction(delta_s=1.3, delta_n=1.0, temperature=9.0)     # T*_c = 8.55 and 6.58 K
    s = j.solve()
    assert s.normal and "normal state" in s.warnings[0]
    assert np.all(s.delta == 0.0)
    np.testing.assert_allclose(s.dos([-1.0, 0.0, 1.3]), 1.0)
    assert math.isnan(s.decay_length_n)
    # between the two T*_c: S′ is normal in bulk but proximitised
    s2 = Junction(delta_s=1.3, delta_n=1.0, temperature=7.5, length_n=40.0).solve()
    assert not s2.normal and s2.delta[0] == pytest.approx(proximity.bulk_gap(1.3, 7.5), rel=5e-3)  # ξ(T) long
    assert 0 < s2.delta[-1] < s2.delta[s2.n_s] < s2.delta[0]


def test_non_convergence_is_reported():
    with pytest.raises(ConvergenceError, match="did not converge"):
        Junction(**U1).solve(max_iter=3)


def test_progress_can_cancel_the_solve():
    calls = []

    class Stop(Exception):
        pass

    def progress(f, text):
        calls.append((f, text))
        if len(calls) == 3:
            raise Stop
    with pytest.raises(Stop):
        Junction(**U1).solve(progress=progress)
    assert len(calls) == 3 and all(0.0 <= f <= 1.0 for f, _ in calls)


def test_warm_start_gives_the_same_solution(u1):
    s = Junction(**{**U1, "xi_n": 3.2}).solve(initial=u1, tol=1e-10)
    cold = Junction(**{**U1, "xi_n": 3.2}).solve(tol=1e-10)
    np.testing.assert_allclose(s.delta, cold.delta, atol=1e-9)
    assert s.iterations < cold.iterations
