"""BCS Δ(T) against an independent Matsubara solution, asymptotics and the paper-000 numbers."""

import numpy as np
import pytest
from scipy import integrate
from scipy.optimize import brentq

from gapscope.kernels import gap, matsubara
from gapscope.kernels.constants import BCS_RATIO, KB


def matsubara_delta(t, n_max=200000):
    """δ(t) from ln(1/t) = 2πτ Σ_n [1/ω_n − 1/√(ω_n² + δ²)] in units Δ₀ = 1, τ = t/1.76388."""
    tau = t / BCS_RATIO
    w = np.pi * tau * (2 * np.arange(n_max) + 1)

    def eq(d):
        s = np.sum(1 / w - 1 / np.sqrt(w * w + d * d))
        wn = np.pi * tau * (2 * n_max + 1)
        s += d * d / (4 * np.pi * tau * wn * wn) * 1.0  # tail ∫ of d²/(2ω³) dn
        return 2 * np.pi * tau * s - np.log(1 / t)
    return brentq(eq, 1e-12, 1.0, xtol=1e-14)


TABLE = {0.2: 0.999877, 0.3: 0.997124, 0.4: 0.985034, 0.5: 0.956885, 0.6: 0.906994,
         0.7: 0.828771, 0.8: 0.711043, 0.9: 0.526342, 0.95: 0.380317, 0.99: 0.172954}


def test_table_and_independent_matsubara_solution():
    t = np.array(sorted(TABLE))
    d = gap.reduced_gap(t)
    np.testing.assert_allclose(d, [TABLE[x] for x in t], atol=1.5e-6)
    for x in (0.3, 0.5, 0.9):
        assert gap.reduced_gap(x) == pytest.approx(matsubara_delta(x), abs=2e-7)


OMEGA_D = 1000.0   # meV: Debye cutoff ≫ Δ₀ = 1 meV, so cutoff corrections are O((Δ₀/ω_D)²) ~ 1e-6


def cutoff_gap_integral(d, kT):
    """∫₀^ω_D dξ tanh(E/2k_BT)/E, E = √(ξ² + Δ²), by adaptive quadrature (meV; no BCS_RATIO)."""
    def f(xi):
        if d > 0:
            e = np.hypot(xi, d)
            return np.tanh(e / (2 * kT)) / e
        return np.tanh(xi / (2 * kT)) / xi if xi > 0 else 1 / (2 * kT)
    cut = 200 * kT      # tanh = 1 to e^{−200} beyond
    near, _ = integrate.quad(f, 0, cut, limit=500, epsabs=1e-13, epsrel=1e-13)
    far, _ = integrate.quad(lambda xi: 1 / np.hypot(xi, d), cut, OMEGA_D, epsabs=1e-13, epsrel=1e-13)
    return near + far


def cutoff_gap(kT, inv_lambda):
    """Δ(T) (meV) solving 1/λ = ∫₀^ω_D tanh(E/2k_BT)/E dξ."""
    return brentq(lambda x: cutoff_gap_integral(x, kT) - inv_lambda, 1e-6, 1.0, xtol=1e-14)


def test_tc_and_gap_from_the_cutoff_gap_equation():
    """Solve 1/λ = ∫₀^ω_D tanh(E/2k_BT)/E dξ with a Debye cutoff: T_c and Δ(T) owe nothing to the kernel."""
    inv_lambda = np.arcsinh(OMEGA_D / 1.0)      # the coupling that gives Δ(T = 0) = 1 meV exactly
    kTc = brentq(lambda kT: cutoff_gap_integral(0.0, kT) - inv_lambda, 0.1, 2.0, xtol=1e-14)
    tc = kTc / KB                               # K
    assert 1.0 / kTc == pytest.approx(1.764, abs=5e-4)                 # Δ₀/k_BT_c, literature
    assert gap.ratio(delta0=1.0, tc=tc) == pytest.approx(3.528, abs=5e-4)   # 2Δ₀/k_BT_c
    assert gap.ratio(delta0=1.0, tc=tc) == pytest.approx(2 / kTc, rel=1e-12)
    for t in (0.3, 0.5, 0.9, 0.99):
        assert gap.bcs_gap(t * tc, delta0=1.0, tc=tc) == pytest.approx(cutoff_gap(t * kTc, inv_lambda), abs=2e-7)
    assert gap.bcs_gap(tc, delta0=1.0, tc=tc) == 0


def test_half_tc_value_literature():
    assert gap.bcs_gap(3.55, delta0=1.0, tc=7.1) == pytest.approx(0.9569, abs=5e-5)   # δ(0.5) = 0.9569


def test_asymptotics():
    s = np.array([1e-3, 3e-3])
    t = 1 - s * s
    np.testing.assert_allclose(gap.reduced_gap(t) * BCS_RATIO, 3.0633 * s, rtol=2e-3)
    tl = 0.15
    tau = tl / BCS_RATIO
    assert 1 - gap.reduced_gap(tl) == pytest.approx(np.sqrt(2 * np.pi * tau) * np.exp(-1 / tau), rel=0.05)


def test_spline_matches_direct_solver_everywhere():
    t = np.linspace(0.01, 0.999, 777)
    np.testing.assert_allclose(gap.reduced_gap(t), gap.solve_reduced_gap(t), atol=1e-9)


def test_limits_and_bad_input():
    assert gap.bcs_gap(0.0, delta0=1.3, tc=7.1) == pytest.approx(1.3)
    assert gap.bcs_gap(7.1, delta0=1.3, tc=7.1) == 0
    assert gap.bcs_gap(9.0, delta0=1.3, tc=7.1) == 0
    with pytest.raises(ValueError, match="tc"):
        gap.bcs_gap(1.0, delta0=1.3, tc=0)
    with pytest.raises(ValueError, match="T"):
        gap.bcs_gap([1.0, np.nan], delta0=1.3, tc=7)


def test_paper_000_numbers():
    d_pb = gap.delta0_from_ratio(tc=7.1, ratio=4.39)
    assert d_pb == pytest.approx(1.3430, abs=1e-4)
    assert gap.delta0_from_ratio(tc=7.1, ratio=3.37) == pytest.approx(1.0309, abs=1e-4)
    assert gap.delta0_from_ratio(tc=7.1) == pytest.approx(1.0792, abs=1e-4)
    np.testing.assert_allclose(gap.bcs_gap([3, 5, 6.5, 7.0], delta0=d_pb, tc=7.1),
                               [1.3165, 1.1076, 0.6542, 0.2752], atol=1e-4)
    assert gap.ratio(delta0=1.3, tc=7.1) == pytest.approx(4.25, abs=0.01)
    assert gap.ratio(delta0=1.0, tc=7.1) == pytest.approx(3.27, abs=0.01)


def test_fit_tc_recovers_exact_alpha_model():
    T = np.concatenate([np.linspace(0.4, 7.0, 15), [7.5, 8.0]])
    d = gap.bcs_gap(T, delta0=1.343, tc=7.1)
    d0, tc = gap.fit_tc(T, d)
    assert d0 == pytest.approx(1.343, abs=1e-8) and tc == pytest.approx(7.1, abs=1e-8)


def test_fit_tc_noise_within_errors_and_fixed_ratio_bias():
    rng = np.random.default_rng(7)
    T = np.concatenate([np.linspace(0.4, 7.0, 20), [7.5, 8.0, 8.5]])
    truth = gap.bcs_gap(T, delta0=1.343, tc=7.1)
    pulls = []
    for _ in range(40):
        r = gap.fit_tc_detailed(T, truth + rng.normal(0, 0.02, T.size), sigma=0.02)
        pulls.append((r.tc - 7.1) / r.tc_err)
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 0.6 and 0.5 < pulls.std() < 1.6
    biased = gap.fit_tc_detailed(T, truth, fixed_ratio=2 * BCS_RATIO)
    assert biased.tc > 7.3          # forcing weak coupling on strong-coupling data biases T_c up


# ------------------------------------------------------------------ anisotropic and d-wave gaps
def fermi_circle(symmetry, a=0.0, m=256):
    """g(φ) on a uniform midpoint grid of the Fermi circle (exponentially accurate for smooth integrands)."""
    phi = (np.arange(m) + 0.5) * 2 * np.pi / m
    return {"anisotropic_s": 1 + a * np.cos(phi), "dwave": np.cos(2 * phi), "dynes": np.ones(m)}[symmetry]


def matsubara_gap(T, tc, g, n_freq=2000):
    """Δ(T) in meV of the separable weak-coupling gap g(φ) from the Matsubara sum, with kernels/matsubara.py:

    ln(T_c/T) = π k_BT Σ_{n∈ℤ} ⟨g²[1/|ω_n| − 1/√(ω_n² + Δ²g²)]⟩/⟨g²⟩ + Δ²⟨g⁴⟩/(4ω_c²⟨g²⟩)   (tail beyond ω_c).
    """
    wc = 2 * np.pi * KB * T * n_freq            # an even multiple of πk_BT: the sum is a midpoint rule
    g2 = g * g

    def eq(d):
        s = matsubara.fermionic_sum(
            lambda w: (g2[None, :] * (1 / np.abs(w)[:, None] - 1 / np.sqrt(w[:, None] ** 2 + d * d * g2[None, :])))
            .mean(axis=1), temperature=T, omega_c=wc)
        tail = d * d * np.mean(g2 * g2) / (4 * wc * wc)
        return (np.pi * s + tail) / g2.mean() - np.log(tc / T)
    return brentq(eq, 1e-9, 10 * KB * tc, xtol=1e-15, rtol=1e-13)


@pytest.mark.parametrize("symmetry,a,ratio", [("dynes", 0.0, 3.5278), ("dwave", 0.0, 4.2794),
                                              ("anisotropic_s", 0.3, 3.3079), ("anisotropic_s", 1.4, None)])
def test_anisotropic_gaps_against_an_independent_matsubara_solution(symmetry, a, ratio):
    """Δ(T)/k_BT_c of the kernel = (ratio/2)·δ(t) against the Matsubara sum at every t: shape and ratio together."""
    tc = 7.1
    g = fermi_circle(symmetry, a)
    r = gap.weak_coupling_ratio(symmetry=symmetry, anisotropy=a)
    if ratio is not None:
        assert r == pytest.approx(ratio, abs=1e-4)
    d0 = gap.delta0_from_ratio(tc=tc, ratio=r)
    for t in (0.08, 0.3, 0.5, 0.7, 0.9, 0.97):
        ours = float(gap.bcs_gap(t * tc, delta0=d0, tc=tc, symmetry=symmetry, anisotropy=a))
        assert ours == pytest.approx(matsubara_gap(t * tc, tc, g), rel=2e-6, abs=1e-9), t


def test_weak_coupling_ratios_from_the_fermi_surface_average_by_quadrature():
    """2Δ₀/k_BT_c = 2πe^{−γ} exp(−⟨g² ln|g|⟩/⟨g²⟩), the averages by adaptive quadrature over φ."""
    def ratio(g):
        num = integrate.quad(lambda p: g(p) ** 2 * np.log(abs(g(p))) if g(p) != 0 else 0.0, 0, 2 * np.pi,
                             limit=400, points=[np.pi / 4, 3 * np.pi / 4, 5 * np.pi / 4, 7 * np.pi / 4])[0]
        den = integrate.quad(lambda p: g(p) ** 2, 0, 2 * np.pi)[0]
        return 2 * np.pi * np.exp(-0.5772156649015329) * np.exp(-num / den)
    assert gap.weak_coupling_ratio(symmetry="d") == pytest.approx(ratio(lambda p: np.cos(2 * p)), rel=1e-9)
    for a in (0.1, 0.3, 0.6, 0.95):
        assert gap.weak_coupling_ratio(symmetry="anisotropic_s", anisotropy=a) == pytest.approx(
            ratio(lambda p, a=a: 1 + a * np.cos(p)), rel=1e-9)
    assert gap.weak_coupling_ratio() == pytest.approx(2 * BCS_RATIO, rel=1e-14)
    assert gap.weak_coupling_ratio(symmetry="anisotropic_s", anisotropy=0.0) == pytest.approx(2 * BCS_RATIO)


def test_shapes_differ_from_bcs_and_the_default_is_unchanged():
    t = np.array([0.3, 0.5, 0.7])
    bcs = gap.reduced_gap(t)
    np.testing.assert_array_equal(gap.reduced_gap(t, symmetry="s"), bcs)
    np.testing.assert_allclose(gap.reduced_gap(t, symmetry="anisotropic_s", anisotropy=0.0), bcs, atol=1e-14)
    d = gap.reduced_gap(t, symmetry="d")
    assert np.all(d < bcs - 0.005)                          # nodes: quasiparticles at any T lower Δ(T)/Δ₀
    assert gap.reduced_gap(0.0, symmetry="d") == 1.0 and gap.reduced_gap(1.0, symmetry="d") == 0.0
    with pytest.raises(ValueError, match="symmetry must be one of"):
        gap.reduced_gap(0.5, symmetry="two_gap")
    with pytest.raises(ValueError, match="symmetry must be one of"):
        gap.weak_coupling_ratio(symmetry="f-wave")
    with pytest.raises(ValueError, match="anisotropy"):
        gap.bcs_gap(1.0, delta0=1.0, tc=7.0, symmetry="anisotropic_s", anisotropy=11.0)
