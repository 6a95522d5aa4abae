"""Tunnelling kernels against direct quadrature, closed forms, limits and invariants."""

import numpy as np
import pytest
from scipy import integrate

from gapscope.kernels import dos
from gapscope.kernels import tunneling as tn
from gapscope.kernels.constants import KB


def direct_normal_tip(V, N, T):
    """G(V) = ∫ N(E) (−f′(E − V)) dE by adaptive quadrature."""
    kT = KB * T

    def mfp(x):
        return 1.0 / (4 * kT * np.cosh(x / (2 * kT)) ** 2)
    val, _ = integrate.quad(lambda e: N(e) * mfp(e - V), V - 40 * kT, V + 40 * kT, limit=2000,
                            points=[-1.3, 1.3], epsabs=1e-12, epsrel=1e-11)
    return val


def direct_current(V, Ns, Nt, T):
    """I(V) = ∫ N_t(E − V) N_s(E) [f(E − V) − f(E)] dE by adaptive quadrature."""
    kT = KB * T
    f = lambda x: 0.5 * (1 - np.tanh(0.5 * x / kT))
    lo, hi = min(0, V) - 40 * kT, max(0, V) + 40 * kT
    val, _ = integrate.quad(lambda e: Nt(e - V) * Ns(e) * (f(e - V) - f(e)), lo, hi, limit=4000,
                            epsabs=1e-13, epsrel=1e-12)
    return val


PB = dos.bind("dynes", delta=1.3, gamma=0.02)
NB = dos.bind("dynes", delta=1.50, gamma=0.01)


class TestNormalTip:
    def test_matches_direct_quadrature(self):
        V = np.array([-2.0, -1.35, -0.5, 0.0, 1.2, 1.3, 1.45, 3.0])
        G = tn.didv(V, sample_dos=PB, temperature=1.4)
        ref = [direct_normal_tip(v, PB, 1.4) for v in V]
        np.testing.assert_allclose(G, ref, rtol=1e-4, atol=1e-6)

    def test_zero_temperature_is_the_dos(self):
        V = np.linspace(-3, 3, 121)
        np.testing.assert_allclose(tn.didv(V, sample_dos=PB, temperature=0.0), PB(V), rtol=1e-14)

    def test_small_temperature_and_modulation_approach_the_dos(self):
        """T → 0 and V_rms → 0 from above (the grid path, not the T = 0 shortcut) converge to N_s(V).

        Leading term (Sommerfeld): G − N_s = ½σ² N_s″ with σ² = π²(k_BT)²/3 for −f′ and
        V_rms²/2 for the lock-in; the grid (step σ/3) widens σ² by ≲ 2 %.
        """
        V = np.linspace(-3, 3, 121)
        N = PB(V)
        off_peak = np.array([-2.0, -1.5, -1.2, -0.6, 0.0, 0.7, 1.5, 2.5])
        h = 1e-4
        n2 = (PB(off_peak + h) - 2 * PB(off_peak) + PB(off_peak - h)) / h**2
        chains = ((lambda x: {"temperature": x}, lambda x: np.pi**2 * (KB * x) ** 2 / 3, (0.02, 0.01, 0.005)),
                  (lambda x: {"temperature": 0.0, "vmod_rms": x}, lambda x: x * x / 2, (0.005, 0.0025, 0.00125)))
        for kw, sigma2, xs in chains:      # T in K, V_rms in mV, all ≪ Γ = 0.02 meV
            errs = []
            for x in xs:
                errs.append(np.max(np.abs(tn.didv(V, sample_dos=PB, **kw(x)) / N - 1)))
                G = tn.didv(off_peak, sample_dos=PB, **kw(x))
                np.testing.assert_allclose(G - PB(off_peak), 0.5 * sigma2(x) * n2, rtol=0.03)
            assert 3.0 < errs[0] / errs[1] < 4.5 and 3.5 < errs[1] / errs[2] < 4.5   # O(σ²)
        G = tn.didv(V, sample_dos=PB, temperature=0.0025)
        np.testing.assert_allclose(G, N, rtol=2e-4)                     # peaks included
        G = tn.didv(V, sample_dos=PB, temperature=0.005, vmod_rms=0.0025)
        np.testing.assert_allclose(G, N, rtol=5e-3)

    def test_zero_temperature_zero_gamma_is_finite(self):
        s = dos.bind("dynes", delta=1.0, gamma=0.0)
        G = tn.didv(np.linspace(-2, 2, 401), sample_dos=s, temperature=0.0)
        assert np.all(np.isfinite(G)) and G.max() > 3

    def test_thermal_kernel_fwhm(self):
        T, h = 1.4, 1e-4
        w = tn.thermal_kernel(h, temperature=T)
        above = np.flatnonzero(w >= w.max() / 2)
        fwhm = (above[-1] - above[0] + 1) * h
        assert fwhm == pytest.approx(2 * np.log(3 + 2 * np.sqrt(2)) * KB * T, rel=2e-3)
        assert fwhm == pytest.approx(0.425, abs=2e-3)
        assert w.sum() == pytest.approx(1.0)

    def test_particle_hole_symmetry_and_normal_state(self):
        V = np.linspace(-6, 6, 1201)
        G = tn.didv(V, sample_dos=PB, temperature=0.5, vmod_rms=0.05)
        np.testing.assert_allclose(G, G[::-1], rtol=1e-7)
        assert G[0] == pytest.approx(1.0 + 1.3 ** 2 / (2 * 36), rel=2e-3)   # N(6) ≈ 1 + Δ²/2E²

    def test_convolutions_preserve_spectral_weight(self):
        V = np.linspace(-8, 8, 3201)
        dv = V[1] - V[0]
        bare = np.sum(tn.didv(V, sample_dos=PB, temperature=0.0) - 1) * dv
        smeared = np.sum(tn.didv(V, sample_dos=PB, temperature=2.0, vmod_rms=0.1) - 1) * dv
        assert smeared == pytest.approx(bare, abs=2e-3)

    def test_nonuniform_biases_agree_with_uniform(self):
        Vu = np.linspace(-3, 3, 601)
        Gu = tn.didv(Vu, sample_dos=PB, temperature=0.8, vmod_rms=0.03)
        Vn = np.sort(np.random.default_rng(1).uniform(-2.9, 2.9, 50))
        Gn = tn.didv(Vn, sample_dos=PB, temperature=0.8, vmod_rms=0.03)
        np.testing.assert_allclose(Gn, np.interp(Vn, Vu, Gu), rtol=2e-3)


class TestLockIn:
    def test_literal_first_harmonic(self):
        """Lock-in = first harmonic of I(V + a cos φ)/a; at T = 0 a normal tip gives I = A(V) − A(0)."""
        vrms = 0.1
        a = np.sqrt(2) * vrms
        V = np.linspace(-2.5, 2.5, 501)
        phi = (np.arange(4000) + 0.5) * 2 * np.pi / 4000
        I = lambda v: dos.dynes_antiderivative(v, delta=1.3, gamma=0.02)
        harmonic = (I(V[:, None] + a * np.cos(phi)[None, :]) * np.cos(phi)).mean(axis=1) * 2 / a
        G = tn.didv(V, sample_dos=PB, temperature=0.0, vmod_rms=vrms)
        np.testing.assert_allclose(G, harmonic, rtol=2e-4, atol=1e-5)

    def test_kernel_fwhm_is_sqrt6_vrms(self):
        vrms, h = 0.2, 5e-4
        w = tn.lockin_kernel(h, vmod_rms=vrms)
        above = np.flatnonzero(w >= w.max() / 2)
        assert (above[-1] - above[0] + 1) * h == pytest.approx(np.sqrt(6) * vrms, rel=2e-3)
        assert w.sum() == pytest.approx(1.0)

    def test_lockin_on_grid_matches_didv(self):
        V = np.linspace(-3, 3, 1201)
        G0 = tn.didv(V, sample_dos=PB, temperature=0.3)
        np.testing.assert_allclose(tn.lockin(V, G0, vmod_rms=0.08)[100:-100],
                                   tn.didv(V, sample_dos=PB, temperature=0.3, vmod_rms=0.08)[100:-100],
                                   rtol=2e-3)


class TestSuperconductingTip:
    def test_reference_values(self):
        G = tn.didv(np.array([2.81, 2.85, 1.0]), sample_dos=NB, temperature=1.4, tip_delta=1.31, tip_gamma=0.01)
        np.testing.assert_allclose(G, [35.634, 8.0121, 2.939e-3], rtol=1e-3)

    def test_current_matches_direct_quadrature(self):
        tip = lambda e: dos.dynes(e, delta=1.31, gamma=0.01)
        V = np.array([-3.2, -1.0, 0.4, 2.7, 2.9])
        I = tn.current(V, sample_dos=NB, temperature=1.4, tip_delta=1.31, tip_gamma=0.01)
        ref = [direct_current(v, NB, tip, 1.4) for v in V]
        np.testing.assert_allclose(I, ref, rtol=2e-4, atol=1e-7)

    def test_didv_matches_derivative_of_direct_current(self):
        tip = lambda e: dos.dynes(e, delta=1.31, gamma=0.05)
        s = dos.bind("dynes", delta=1.5, gamma=0.05)
        d = 2e-3
        for v in [1.5, 2.6, 2.8, 3.5]:
            ref = (direct_current(v + d / 2, s, tip, 1.4) - direct_current(v - d / 2, s, tip, 1.4)) / d
            G = tn.didv(np.array([v]), sample_dos=s, temperature=1.4, tip_delta=1.31, tip_gamma=0.05)[0]
            assert G == pytest.approx(ref, rel=1e-3)

    def test_coherence_peak_at_sum_of_gaps_and_thermal_feature(self):
        V = np.linspace(0.05, 4, 3951)
        G = tn.didv(V, sample_dos=NB, temperature=1.4, tip_delta=1.31, tip_gamma=0.01)
        assert V[np.argmax(G)] == pytest.approx(2.81, abs=0.005)
        inside = (V > 0.1) & (V < 0.4)            # thermal feature at |Δs − Δt| = 0.19 mV
        assert abs(V[inside][np.argmax(G[inside])] - 0.19) < 0.02

    def test_symmetric_and_normal_at_large_bias(self):
        V = np.linspace(-12, 12, 2401)
        G = tn.didv(V, sample_dos=NB, temperature=1.4, tip_delta=1.31, tip_gamma=0.01)
        np.testing.assert_allclose(G, G[::-1], rtol=1e-7, atol=1e-9)
        # I ≈ V − (Δt² + Δs²)/2V up to O(Δ⁴/V³) ≈ 3e-4 at 25 mV
        I = tn.current(np.array([25.0]), sample_dos=NB, temperature=1.4, tip_delta=1.31, tip_gamma=0.01)[0]
        assert I == pytest.approx(25 - (1.31 ** 2 + 1.5 ** 2) / 50, abs=6e-4)

    def test_zero_tip_gap_reproduces_normal_tip(self):
        V = np.linspace(-3, 3, 1201)
        I = tn.current(V, sample_dos=PB, temperature=1.0)
        G = tn.didv(V, sample_dos=PB, temperature=1.0)
        dIdV = (I[:-4] - 8 * I[1:-3] + 8 * I[3:-1] - I[4:]) / (12 * (V[1] - V[0]))
        np.testing.assert_allclose(dIdV, G[2:-2], rtol=1e-4)

    def test_tip_gap_larger_than_window_is_finite(self):
        V = np.linspace(-1, 1, 201)
        G = tn.didv(V, sample_dos=NB, temperature=0.3, tip_delta=3.0, tip_gamma=0.0, vmod_rms=0.01)
        assert np.all(np.isfinite(G)) and np.max(np.abs(G)) < 1e-3

    def test_all_broadenings_zero_is_finite(self):
        s = dos.bind("dynes", delta=1.5, gamma=0.0)
        G = tn.didv(np.linspace(-4, 4, 801), sample_dos=s, temperature=0.0, tip_delta=1.3, tip_gamma=0.0)
        assert np.all(np.isfinite(G))


@pytest.mark.parametrize("kw,match", [
    (dict(temperature=-1), "temperature"), (dict(temperature=np.nan), "temperature"),
    (dict(temperature=1, tip_delta=-0.1), "tip_delta"), (dict(temperature=1, vmod_rms=-1), "vmod_rms"),
    (dict(temperature=1, tip_gamma=np.inf), "tip_gamma")])
def test_bad_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        tn.didv(np.linspace(-1, 1, 11), sample_dos=PB, **kw)


def test_nan_bias_and_bad_callable_raise():
    with pytest.raises(ValueError, match="V"):
        tn.didv(np.array([0.0, np.nan]), sample_dos=PB, temperature=1)
    with pytest.raises(ValueError, match="callable"):
        tn.didv(np.zeros(3), sample_dos=1.0, temperature=1)


def test_peak_asymmetry():
    V = np.linspace(-3, 3, 6001)
    G = tn.didv(V, sample_dos=PB, temperature=0.32)
    a = tn.peak_asymmetry(V, G)
    gp = G.max()
    assert a["positive"] == pytest.approx((gp - 1) / (gp + 1), rel=1e-12)
    assert a["negative"] == pytest.approx(a["positive"], rel=1e-9)
    assert a["v_positive"] == pytest.approx(1.33, abs=0.05)


def test_map_weights_without_any_broadening_and_with_a_bcs_tip():
    """A normal tip at T = 0 without lock-in gave a zero-width energy grid (NaN weights); a tip with Γ_t = 0
    was sampled point-wise.  Both now reproduce didv on the same sample."""
    sample = dos.bind("dynes", delta=1.3, gamma=0.05)
    V = np.array([0.8, 1.45, 2.0])
    E = tn.energy_grid(V, temperature=0.0, sample_gamma=0.05)
    w = tn.didv_weights(V, E, temperature=0.0)
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w @ sample(E), sample(V), rtol=1e-6)
    chain = dict(temperature=1.0, tip_delta=1.2, tip_gamma=0.0)
    V = np.linspace(2.0, 3.2, 7)
    E = tn.energy_grid(V, sample_gamma=0.05, **chain)
    w = tn.didv_weights(V, E, **chain)
    ref = tn.didv(V, sample_dos=sample, **chain)
    # both paths approximate a singular tip on a grid: they agree to 1.4 % (it was NaN or point-sampled before)
    assert np.all(np.isfinite(w)) and np.abs(w @ sample(E) - ref).max() < 2e-2 * ref.max()


def test_significant_weights_drop_at_most_the_tolerance_of_the_total_and_no_more_than_needed():
    rng = np.random.default_rng(3)
    w = np.concatenate([rng.normal(size=50), 1e-4 * rng.normal(size=2000)])   # a peak and a long tail
    keep = tn.significant_weights(w, tolerance=1e-4)
    a = np.abs(w)
    dropped = a[~keep].sum()
    assert dropped <= 1e-4 * a.sum()
    assert dropped + a[keep].min() > 1e-4 * a.sum()          # the smallest kept one would exceed it
    assert a[keep].min() >= a[~keep].max()                    # only the smallest go
    old = a >= 1e-4 * a.max()                                  # the per-weight cut drops far more of the tail
    assert a[~old].sum() > 10 * dropped
    assert not tn.significant_weights(np.zeros(4)).any()
    assert tn.significant_weights(w, tolerance=0.0).all()
