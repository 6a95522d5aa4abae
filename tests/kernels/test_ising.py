"""Ising-superconductivity kernels against independent computations.

References used here and nowhere in the kernel: an explicit BdG Hamiltonian in the original Nambu
basis (c_k↑, c_k↓, c†_−k↑, c†_−k↓), diagonalised on a ξ grid; brute-force Matsubara sums of the
ξ-integrated Green's function built from that Hamiltonian; the Dynes DOS; the BCS gap of
``gapscope.kernels.gap`` (a real-axis solver); closed forms (Clogston, Abrikosov–Gor'kov,
Dynes pair breaking); and the issue's reference numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import digamma

from gapscope.kernels import dos, fitting, gap, ising, sampling, tunneling

KB = 0.08617333262          # meV/K (CODATA), typed here on purpose
MU_B = 0.05788381806        # meV/T
D0_RATIO = math.pi * math.exp(-np.euler_gamma)     # Δ₀/k_BT_c = 1.76388
PSI_HALF = float(digamma(0.5))

SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)
S0 = np.eye(2, dtype=complex)
ISY = 1j * SY


def sdot(v):
    return v[0] * SX + v[1] * SY + v[2] * SZ


def bdg(xi, delta, g, h):
    """H_BdG(ξ) in the basis (c_k↑, c_k↓, c†_−k↑, c†_−k↓): electrons ξ + g·σ + h·σ at k, holes −h_e(−k)*."""
    he = xi * S0 + sdot(g) + sdot(h)
    he_minus = xi * S0 - sdot(g) + sdot(h)           # g(−k) = −g(k)
    H = np.zeros((4, 4), dtype=complex)
    H[:2, :2] = he
    H[2:, 2:] = -he_minus.conj()
    H[:2, 2:] = delta * ISY
    H[2:, :2] = (delta * ISY).conj().T
    return H


def soc(beta, lam, eta, phi):
    return np.array([lam * np.sin(phi), -lam * np.cos(phi), eta * beta])


def angles(n):
    return (np.arange(n) + 0.5) * 2 * np.pi / n


def dos_xi_grid(E, delta, beta, h, gamma, lam=0.0, n_phi=1, W=20.0):
    """Electron DOS from eigh of H_BdG(ξ) on a ξ grid with Lorentzian broadening Γ, minus the same
    sum at Δ = 0 plus 1 (the finite window's deficit cancels), averaged over valleys and φ."""
    dx = gamma / 8
    xi = np.arange(-W, W, dx) + dx / 2
    tz = np.diag([1.0, 1.0, -1.0, -1.0])
    out = np.zeros(E.size)
    for eta in (1, -1):
        for phi in (angles(n_phi) if lam else [0.0]):
            g = soc(beta, lam, eta, phi)
            for d, sign in ((delta, 1.0), (0.0, -1.0)):
                H = bdg(0.0, d, g, h)[None] + xi[:, None, None] * tz[None]        # H(ξ) = ξτ_z + H(0)
                e, U = np.linalg.eigh(H)
                weight = np.sum(np.abs(U[:, :2, :]) ** 2, axis=1)                  # electron part, (nξ, 4)
                lor = (gamma / np.pi) / ((E[:, None, None] - e[None]) ** 2 + gamma ** 2)
                out += sign * 0.5 * dx * np.sum(lor * weight[None], axis=(1, 2)) / (2 * (n_phi if lam else 1))
    return out + 1.0


def xi_integrated_fs(omega, delta, beta, h, lam=0.0, n_phi=1):
    """⟨f_s(iω)⟩ from ∫dξ G(iω, ξ), G = (iω − H_BdG(ξ))⁻¹ with this file's H: H = ξτ_z + M, so by residues
    ∫dξ G = −iπ sgn_Im(τ_z(iω − M)) τ_z; the singlet part of its e–h block is −π f_s iσ_y."""
    tz = np.diag([1, 1, -1, -1]).astype(complex)
    tot = np.zeros(omega.size)
    phis = angles(n_phi) if lam else [0.0]
    for eta in (1, -1):
        for phi in phis:
            M = bdg(0.0, delta, soc(beta, lam, eta, phi), h)
            A = tz[None] @ (1j * omega[:, None, None] * np.eye(4)[None] - M[None])
            a, V = np.linalg.eig(A)
            S = V @ (np.sign(a.imag)[..., None] * np.linalg.inv(V))
            G = -1j * np.pi * S @ tz
            F = G[:, :2, 2:]
            tot += np.real(-np.trace(F @ ISY.conj().T, axis1=1, axis2=2) / (2 * np.pi)) / (2 * len(phis))
    return tot


def pauli_excess(h, T, tc):
    x = 2 * np.pi * KB * T
    return digamma(0.5 + 1j * h / x).real - PSI_HALF - math.log(tc / T)


# ----------------------------------------------------------------------------- conventions and the Pauli limit
def test_zeeman_convention_and_field_vector():
    assert ising.zeeman(1.0) == pytest.approx(MU_B, rel=1e-12)          # h = gμ_B B/2 with g = 2
    assert ising.zeeman(1.0, g=1.0) == pytest.approx(MU_B / 2, rel=1e-12)
    assert ising.tesla(ising.zeeman(7.5, g=2.2), g=2.2) == pytest.approx(7.5, rel=1e-12)
    np.testing.assert_allclose(ising.field_vector(b=10.0), [10 * MU_B, 0, 0], rtol=1e-12)
    np.testing.assert_array_equal(ising.field_vector(b=10.0, angle=90.0), [0.0, 0.0, 10 * MU_B])
    np.testing.assert_allclose(ising.field_vector(b=2.0, angle=30.0), 2 * MU_B * np.array([0.75 ** 0.5, 0, 0.5]))


def test_pauli_limit_is_1857_tesla_per_kelvin():
    assert ising.pauli_limit(tc=1.0) == pytest.approx(1.8568, abs=5e-5)
    assert ising.pauli_limit(tc=1.0) / 1.857 == pytest.approx(1.0, abs=1e-4)
    for tc in (0.5, 3.0, 7.1):
        assert ising.pauli_limit(tc=tc) == pytest.approx(math.sqrt(2) * D0_RATIO * KB * tc / (2 * MU_B), rel=1e-12)
    assert ising.pauli_limit(tc=3.0) == pytest.approx(5.5704, abs=1e-4)
    assert ising.pauli_limit(delta0=1.0, g=2.0) == pytest.approx(math.sqrt(2) / (2 * MU_B), rel=1e-12)
    with pytest.raises(ValueError, match="exactly one"):
        ising.pauli_limit(tc=1.0, delta0=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        ising.pauli_limit()


def test_first_order_transition_at_the_clogston_field():
    """T = 0, β_so = 0: the gap stays Δ₀ up to h = Δ₀/√2, then the normal state wins (free energies)."""
    tc = 3.0
    d0 = D0_RATIO * KB * tc
    hp = ising.zeeman(ising.pauli_limit(tc=tc))
    assert hp == pytest.approx(d0 / math.sqrt(2), rel=1e-12)
    for unit in ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)):
        below = ising.gap_solution(0.0, tc=tc, beta_so=0.0, field=0.995 * hp * np.array(unit))
        above = ising.gap_solution(0.0, tc=tc, beta_so=0.0, field=1.005 * hp * np.array(unit))
        assert below.delta == pytest.approx(d0, rel=1e-7)
        assert above.delta == 0.0 and max(above.roots) == pytest.approx(d0, rel=1e-7)
        assert below.metastable and above.metastable          # Δ₀/2 < h < Δ₀: both states are local minima
    # T = 0, h < Δ₀: the superconductor is unchanged by the field, the normal state gains N₀h²:
    # (Ω_s − Ω_n)/N₀ = −Δ₀²/2 + h², zero at h = Δ₀/√2
    for x in (0.0, 0.3, 0.6, 0.69):
        s = ising.gap_solution(0.0, tc=tc, beta_so=0.0, field=(x * d0, 0.0, 0.0))
        assert s.free_energies[-1] == pytest.approx(-d0 ** 2 / 2 + (x * d0) ** 2, abs=1e-8 * d0 ** 2)


# ----------------------------------------------------------------------------- H_c2
def test_beta_zero_gives_the_pauli_line_and_so_does_any_out_of_plane_field():
    tc = 3.0
    T = np.array([0.3, 0.9, 1.5, 2.2, 2.9])
    ref = np.array([brentq(pauli_excess, 1e-9, 5.0, args=(t, tc), xtol=1e-15) for t in T]) / MU_B   # g = 2
    np.testing.assert_allclose(ising.hc2_inplane(T, tc=tc, beta_so=0.0), ref, rtol=1e-10)
    np.testing.assert_allclose(ising.hc2(T, tc=tc, beta_so=5.0, angle=90.0), ref, rtol=1e-10)
    assert ising.hc2(0.0, tc=tc, beta_so=0.0) == pytest.approx(0.5 * D0_RATIO * KB * tc / MU_B, rel=1e-10)
    np.testing.assert_array_equal(ising.hc2([3.0, 4.0], tc=tc, beta_so=1.0), [0.0, 0.0])


def test_reference_numbers_at_half_tc():
    kw = dict(tc=3.0)
    assert float(ising.hc2_inplane(1.5, beta_so=0.0, **kw)) == pytest.approx(4.844, abs=5e-4)
    assert float(ising.hc2_inplane(1.5, beta_so=1.0, **kw)) == pytest.approx(11.25, abs=5e-3)
    assert float(ising.hc2_inplane(1.5, beta_so=75.0, **kw)) == pytest.approx(445.9, abs=0.05)
    # and to the digits of the physics notes
    np.testing.assert_allclose(ising.hc2_inplane(np.array([1.5, 1.5]), tc=3.0, beta_so=0.5), 7.2951, atol=1e-4)
    assert float(ising.hc2_inplane(0.3, beta_so=5.0, **kw)) == pytest.approx(71.620, abs=1e-3)


def test_closed_form_hc2_against_the_linearised_gap_equation():
    """Brute-force Matsubara sum of the ξ-integrated BdG pair amplitude (Δ = 1e-7 meV) changes sign
    within ±1e-6 of the closed-form H_c2."""
    tc, T = 3.0, 1.2
    kt = KB * T
    N = 1500
    w = np.pi * kt * (2 * np.arange(N) + 1)

    def excess(h, beta, lam=0.0, n_phi=1, theta=0.0):
        d = 1e-7
        hv = h * np.array([math.cos(theta), 0.0, math.sin(theta)])
        u = 1 / w - xi_integrated_fs(w, d, beta, hv, lam, n_phi) / d
        tail = 0.5 * u[-1] * w[-1]                       # u ∝ 1/ω³ beyond ω_N
        return 2 * np.pi * kt * u.sum() + tail - math.log(tc / T)

    for beta in (0.5, 2.0):
        h = ising.zeeman(float(ising.hc2_inplane(T, tc=tc, beta_so=beta)))
        assert excess(h * (1 - 1e-6), beta) < 0 < excess(h * (1 + 1e-6), beta)
    # a tilted field (30° out of the plane): the general four-pole susceptibility
    h = ising.zeeman(float(ising.hc2(T, tc=tc, beta_so=1.0, angle=30.0)))
    assert excess(h * (1 - 1e-6), 1.0, theta=math.pi / 6) < 0 < excess(h * (1 + 1e-6), 1.0, theta=math.pi / 6)
    # with Rashba: the kernel's φ-average against this test's own
    h = ising.zeeman(float(ising.hc2_inplane(T, tc=tc, beta_so=1.0, rashba=0.8)))
    assert excess(h * (1 - 1e-4), 1.0, 0.8, 24) < 0 < excess(h * (1 + 1e-4), 1.0, 0.8, 24)


def test_rashba_erodes_the_ising_protection():
    H = [float(ising.hc2_inplane(1.5, tc=3.0, beta_so=1.0, rashba=lam)) for lam in (0.0, 0.5, 2.0)]
    np.testing.assert_allclose(H, [11.2528, 9.9006, 7.8825], atol=2e-4)      # physics-notes values
    # Rashba alone (β_so = 0) also protects partly; large Rashba ≫ h: half of the pairs are protected
    assert float(ising.hc2_inplane(1.5, tc=3.0, beta_so=0.0, rashba=1.0)) > float(ising.hc2_inplane(
        1.5, tc=3.0, beta_so=0.0))


def test_ising_hc2_diverges_only_as_t_goes_to_zero():
    T = np.array([0.3, 0.03, 0.003])
    H = ising.hc2_inplane(T, tc=3.0, beta_so=1.0)
    assert np.all(np.diff(H) > 0) and np.all(np.isfinite(H))
    assert ising.hc2(0.0, tc=3.0, beta_so=1.0) == np.inf
    # asymptotics of the closed form for β ≫ h, 2πk_BT: h² ≈ β² ln(T_c/T)/[ln(β/2πk_BT) − ψ(½)]
    beta, t = 200.0, 2.85
    h = ising.zeeman(float(ising.hc2_inplane(t, tc=3.0, beta_so=beta)))
    approx = beta * math.sqrt(math.log(3.0 / t) / (math.log(beta / (2 * math.pi * KB * t)) - PSI_HALF))
    assert h / beta < 0.1 and h == pytest.approx(approx, rel=0.02)


def test_abrikosov_gorkov_pair_breaking():
    tc = 3.0
    d0 = D0_RATIO * KB * tc
    # small rate: T_c0 − T_c = πΓ/(4k_B); T_c = 0 at Γ = Δ₀/2
    assert tc - ising.critical_temperature(tc=tc, pair_breaking=1e-5) == pytest.approx(math.pi * 1e-5 / (4 * KB),
                                                                                      rel=1e-3)
    for gam in (0.05, 0.15):
        tcs = ising.critical_temperature(tc=tc, pair_breaking=gam)
        assert math.log(tc / tcs) == pytest.approx(digamma(0.5 + gam / (2 * math.pi * KB * tcs)) - PSI_HALF, abs=1e-12)
        assert float(ising.hc2_inplane(1.01 * tcs, tc=tc, beta_so=1.0)) > 0          # the clean film still is SC
        assert float(ising.hc2(1.001 * tcs, tc=tc, beta_so=1.0, pair_breaking=gam)) == 0.0
    assert ising.critical_temperature(tc=tc, pair_breaking=0.5 * d0 * 1.0001) == 0.0
    # pair breaking cuts the T → 0 divergence of the Ising H_c2
    assert np.isfinite(ising.hc2(0.0, tc=tc, beta_so=1.0, pair_breaking=0.02))
    # Dynes pair breaking at T = 0 (ω → ω + Γ): Δ = √(Δ₀(Δ₀ − 2Γ))
    for gam in (0.01, 0.1, 0.2):
        s = ising.gap_solution(0.0, tc=tc, beta_so=0.0, field=(0, 0, 0), pair_breaking=gam)
        assert s.delta == pytest.approx(math.sqrt(d0 * (d0 - 2 * gam)), rel=2e-7)


# ----------------------------------------------------------------------------- Δ(T, B)
def test_gap_at_zero_field_is_bcs():
    tc = 3.0
    d0 = D0_RATIO * KB * tc
    t = np.array([0.05, 0.2, 0.5, 0.8, 0.95, 0.99])
    got = [ising.self_consistent_gap(x * tc, tc=tc, beta_so=b, field=(0, 0, 0))
           for x, b in zip(t, (0.0, 1.0, 75.0, 0.0, 3.0, 0.0), strict=True)]
    np.testing.assert_allclose(got, gap.bcs_gap(t * tc, delta0=d0, tc=tc), rtol=2e-7)
    assert got[2] / d0 == pytest.approx(0.956885, abs=2e-6)        # the BCS table δ(0.5)
    assert ising.self_consistent_gap(0.0, tc=tc, beta_so=1.0, field=(0, 0, 0)) == pytest.approx(d0, rel=1e-7)
    assert ising.self_consistent_gap(3.0, tc=tc, beta_so=1.0, field=(0, 0, 0)) == 0.0


def test_gap_in_a_field_against_the_real_axis_equation():
    """β = 0: spin-split BCS, ln(Δ₀/Δ) = ∫₀^∞ dξ [f(E − h) + f(E + h)]/E (upper branch), in- and out-of-plane."""
    tc, T, h = 3.0, 0.8, 0.15
    d0 = D0_RATIO * KB * tc
    kt = KB * T
    x, wgt = np.polynomial.legendre.leggauss(400)

    def real_axis(d):
        u = 0.5 * 12 * (x + 1)                            # ξ = Δ sinh u, u ∈ [0, 12]
        E = d * np.cosh(u)
        f = lambda e: 0.5 * (1 - np.tanh(0.5 * e / kt))  # noqa: E731
        return math.log(d0 / d) - 0.5 * 12 * np.sum(wgt * (f(E - h) + f(E + h)))

    ref = brentq(real_axis, 0.05 * d0, d0, xtol=1e-15)
    for field in ((h, 0, 0), (0, 0, h), (0, h, 0)):
        assert ising.self_consistent_gap(T, tc=tc, beta_so=0.0, field=field) == pytest.approx(ref, rel=1e-7)


def test_ising_protects_the_gap_in_plane_but_not_out_of_plane():
    """Physics-notes numbers: T_c = 3 K, T = 0.3 K, in-plane h = 0.6 meV (1.86 h_P)."""
    s = ising.gap_solution(0.3, tc=3.0, beta_so=20.0, field=(0.6, 0.0, 0.0))
    assert s.delta == pytest.approx(0.4544, abs=1e-4) and not s.normal_stable
    assert ising.self_consistent_gap(0.3, tc=3.0, beta_so=0.0, field=(0.6, 0.0, 0.0)) == 0.0
    assert ising.self_consistent_gap(0.3, tc=3.0, beta_so=20.0, field=(0.0, 0.0, 0.6)) == 0.0


def test_gap_matches_brute_force_matsubara_sum_with_rashba_and_tilt():
    """Δ(T, h) of the BdG path: at the kernel's root the test's own gap function changes sign."""
    tc, T = 3.0, 1.0
    kt = KB * T
    N = 1200
    w = np.pi * kt * (2 * np.arange(N) + 1)

    def g(d, beta, h, lam, n_phi):
        u = 1 / w - xi_integrated_fs(w, d, beta, np.asarray(h, float), lam, n_phi) / d
        return math.log(tc / T) - (2 * np.pi * kt * u.sum() + 0.5 * u[-1] * w[-1])

    for beta, h, lam in ((1.0, (0.3, 0.0, 0.15), 0.0), (1.0, (0.3, 0.0, 0.0), 0.5)):
        d = ising.self_consistent_gap(T, tc=tc, beta_so=beta, field=h, rashba=lam)
        assert d > 0.1
        assert g(d * (1 - 2e-4), beta, h, lam, 24) > 0 > g(d * (1 + 2e-4), beta, h, lam, 24)


# ----------------------------------------------------------------------------- DOS
E = np.linspace(-2.0, 2.0, 81) + 1e-3


def test_out_of_plane_dos_is_the_shifted_bcs_average_for_any_beta():
    d, gam, h = 0.8, 0.03, 0.35
    ref = 0.5 * (dos.dynes(E - h, delta=d, gamma=gam) + dos.dynes(E + h, delta=d, gamma=gam))
    for beta in (0.0, 0.7, 40.0):
        for method in ("auto", "bdg"):
            got = ising.dos(E, delta=d, beta_so=beta, field=(0, 0, h), gamma=gam, method=method)
            np.testing.assert_allclose(got, ref, atol=1e-11)


def test_beta_zero_in_plane_equals_out_of_plane():
    d, gam, h = 0.8, 0.03, 0.35
    inplane = ising.dos(E, delta=d, beta_so=0.0, field=(h, 0, 0), gamma=gam)
    out = ising.dos(E, delta=d, beta_so=0.0, field=(0, 0, h), gamma=gam)
    tilted = ising.dos(E, delta=d, beta_so=0.0, field=(h * 0.6, 0, h * 0.8), gamma=gam)
    np.testing.assert_allclose(inplane, out, atol=1e-11)
    np.testing.assert_allclose(tilted, out, atol=1e-11)


def test_rashba_alone_at_zero_field_is_bcs():
    d, gam = 0.8, 0.03
    ref = dos.dynes(E, delta=d, gamma=gam)
    for beta, lam in ((0.0, 1.5), (2.0, 0.7)):
        got = ising.dos(E, delta=d, beta_so=beta, field=(0, 0, 0), rashba=lam, gamma=gam, n_phi=16)
        np.testing.assert_allclose(got, ref, atol=1e-11)


@pytest.mark.parametrize("beta,h,lam", [(2.0, (0.6, 0.0, 0.0), 0.0), (0.7, (0.3, 0.2, 0.0), 0.0),
                                        (1.0, (0.4, 0.0, 0.3), 0.0), (1.0, (0.4, 0.0, 0.0), 0.6)],
                         ids=["inplane", "inplane-y", "tilted", "rashba"])
def test_dos_against_bdg_diagonalisation_on_a_xi_grid(beta, h, lam):
    Es = np.linspace(-1.6, 1.6, 33) + 2e-3
    d, gam = 0.5, 0.05
    n_phi = 16 if lam else 1
    ref = dos_xi_grid(Es, d, beta, np.asarray(h, float), gam, lam=lam, n_phi=n_phi)
    got = ising.dos(Es, delta=d, beta_so=beta, field=h, gamma=gam, rashba=lam, n_phi=n_phi if lam else None)
    np.testing.assert_allclose(got, ref, atol=2e-4)


def test_in_plane_ising_keeps_the_gap_and_puts_the_peak_near_delta_beta_over_rho():
    """Physics notes: Δ = 0.5, β = 2, h = 0.6 — peak at 0.480 (Δβ/√(β² + h²) = 0.479); no states at E = 0."""
    Es = np.linspace(0.3, 0.7, 40001)
    N = ising.dos(Es, delta=0.5, beta_so=2.0, field=(0.6, 0, 0), gamma=1e-3)
    assert Es[np.argmax(N)] == pytest.approx(0.480, abs=1.5e-3)
    assert float(ising.dos(0.0, delta=0.5, beta_so=2.0, field=(0.6, 0, 0), gamma=1e-3)) < 0.01
    # out of plane the same field closes the gap (h > Δ)
    assert float(ising.dos(0.0, delta=0.5, beta_so=2.0, field=(0, 0, 0.6), gamma=1e-3)) > 0.5


def test_bdg_path_symmetries_used_by_the_fast_evaluation():
    """The default BdG path evaluates |E| and one valley; the reference path does everything."""
    Es = np.linspace(-1.5, 1.5, 31)
    kw = dict(delta=0.5, beta_so=1.0, field=(0.4, 0.0, 0.25), gamma=0.05, rashba=0.6, n_phi=24)
    np.testing.assert_allclose(ising.dos(Es, **kw), ising.dos(Es, **kw, method="bdg"), atol=1e-12)


def test_rashba_dos_reports_progress_and_can_be_cancelled():
    seen = []
    ising.dos(E, delta=0.5, beta_so=1.0, field=(0.4, 0, 0), gamma=0.05, rashba=0.6, n_phi=1000,
              progress=seen.append)
    assert len(seen) > 3 and seen[0] == 0.0 and seen[-1] == pytest.approx(1.0) and np.all(np.diff(seen) > 0)

    class Stop(Exception):
        pass

    def stop(_f):
        raise Stop

    with pytest.raises(Stop):
        ising.dos(E, delta=0.5, beta_so=1.0, field=(0.4, 0, 0), gamma=0.05, rashba=0.6, progress=stop)


def test_sample_dos_obeys_the_contract_and_goes_through_didv():
    kw = dict(delta=0.45, beta_so=1.0, gamma=0.03)
    fast = ising.sample_dos(field=(0.4, 0, 0), **kw)
    slow = ising.sample_dos(field=(0.4, 0, 0), rashba=1e-9, window=3.0, **kw)     # BdG path, tabulated
    for s in (fast, slow):
        assert isinstance(s, sampling.PointDOS) and s.width == pytest.approx(0.03)
    V = np.linspace(-1.5, 1.5, 301)
    for T in (0.3, 0.05):
        g1 = tunneling.didv(V, sample_dos=fast, temperature=T)
        g2 = tunneling.didv(V, sample_dos=slow, temperature=T)
        np.testing.assert_allclose(g1, g2, atol=1e-3 * g1.max())   # a spline of a Γ/2 table against point values
    # through the SIS chain the closed form agrees with a plain callable refined adaptively
    plain = lambda x: ising.dos(x, delta=0.45, beta_so=1.0, field=(0.4, 0, 0), gamma=0.03)  # noqa: E731
    chain = dict(temperature=0.5, tip_delta=1.3, tip_gamma=0.02, vmod_rms=0.01)
    np.testing.assert_allclose(tunneling.didv(V + 1.3 * np.sign(V), sample_dos=fast, **chain),
                               tunneling.didv(V + 1.3 * np.sign(V), sample_dos=plain, **chain), rtol=1e-3, atol=1e-3)
    # pair breaking broadens like Γ
    np.testing.assert_allclose(ising.sample_dos(field=(0.4, 0, 0), pair_breaking=0.02, **kw)(V),
                               ising.dos(V, delta=0.45, beta_so=1.0, field=(0.4, 0, 0), gamma=0.05), atol=1e-12)


def test_fit_model_ising_is_registered_and_reduces_to_dynes_at_zero_field():
    assert "ising" in fitting.MODELS
    V = np.linspace(-2, 2, 201)
    a = fitting.evaluate("ising", V, delta=0.5, gamma=0.03, b=0.0, temperature=0.4)
    b = fitting.evaluate("dynes", V, delta=0.5, gamma=0.03, temperature=0.4)
    np.testing.assert_allclose(a, b, atol=1e-4)


# ----------------------------------------------------------------------------- fit of H_c2(T) points
def test_fit_hc2_recovers_beta_and_tc_with_sensible_errors():
    rng = np.random.default_rng(3)
    T = np.array([0.3, 0.6, 1.0, 1.5, 2.0, 2.5, 2.8, 3.3])
    B = ising.hc2_inplane(T, tc=3.1, beta_so=2.5)
    noisy = B + np.where(B > 0, rng.normal(0, 0.3, T.size), 0.0)
    r = ising.fit_hc2(T, noisy)
    assert abs(r.beta_so - 2.5) < 3 * r.beta_so_err and 0 < r.beta_so_err < 0.5
    assert abs(r.tc - 3.1) < 3 * r.tc_err and 0 < r.tc_err < 0.2
    exact = ising.fit_hc2(T, B, sigma=0.3)
    assert exact.beta_so == pytest.approx(2.5, rel=1e-6) and exact.tc == pytest.approx(3.1, rel=1e-7)
    fixed = ising.fit_hc2(T[:6], B[:6], tc=3.1, fit_tc=False)
    assert fixed.beta_so == pytest.approx(2.5, rel=1e-6) and math.isnan(fixed.tc_err)


@pytest.mark.parametrize("args,kw,match", [
    (([1.0, 2.0], [1.0]), {}, "same length"),
    (([1.0], [1.0]), {}, "at least 2"),
    (([1.0, -2.0], [1.0, 2.0]), {}, "≥ 0"),
    (([1.0, 2.0], [0.0, 0.0]), {}, "B > 0"),
    (([1.0, 4.0], [1.0, 2.0]), dict(tc=3.0, fit_tc=False), "T_c"),
])
def test_fit_hc2_rejects_bad_input(args, kw, match):
    with pytest.raises(ValueError, match=match):
        ising.fit_hc2(*args, **kw)


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("call,match", [
    (lambda: ising.dos(E, delta=0.5, beta_so=1.0, field=(0.1, 0.2), gamma=0.02), "field"),
    (lambda: ising.dos(E, delta=0.5, beta_so=1.0, field=(0.1, 0, np.nan), gamma=0.02), "field"),
    (lambda: ising.dos(E, delta=0.5, beta_so=1.0, field=(0.1, 0, 0), gamma=0.0), "gamma"),
    (lambda: ising.dos(E, delta=0.5, beta_so=-1.0, field=(0.1, 0, 0), gamma=0.02), "beta_so"),
    (lambda: ising.dos(E, delta=0.5, beta_so=1.0, field=(0.1, 0, 0), gamma=0.02, method="x"), "method"),
    (lambda: ising.hc2([-1.0], tc=3.0, beta_so=1.0), "T must"),
    (lambda: ising.hc2(1.0, tc=0.0, beta_so=1.0), "tc"),
    (lambda: ising.hc2(1.0, tc=3.0, beta_so=1.0, angle=120.0), "angle"),
    (lambda: ising.gap_solution(-0.1, tc=3.0, beta_so=1.0, field=(0, 0, 0)), "temperature"),
    (lambda: ising.field_vector(b=-1.0), "b must"),
    (lambda: ising.zeeman(1.0, g=0.0), "g must"),
])
def test_bad_input_is_a_precise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
