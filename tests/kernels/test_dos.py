"""DOS kernels against reference values, brute-force quadrature, closed forms and limits."""

import numpy as np
import pytest
from scipy import integrate
from scipy.special import ellipk

from gapscope.kernels import dos


def brute_fs_average(func, E, n_phi_points=None):
    """Fermi-surface average by adaptive quadrature over φ ∈ [0, 2π) (independent of our rule)."""
    val, _ = integrate.quad(func, 0.0, 2.0 * np.pi, limit=2000, epsabs=1e-11, epsrel=1e-11,
                            points=n_phi_points)
    return val / (2.0 * np.pi)


def bcs_textbook(E, delta, gamma):
    # Independent form: Re[ z / sqrt(z^2 - Δ^2) ] with the branch fixed by Im sqrt > 0 rule
    z = E + 1j * gamma
    s = np.sqrt(z * z - delta * delta)
    s = np.where(np.imag(s) * np.sign(np.real(z) + 1e-300) < 0, -s, s)   # retarded: sign(Re s)=sign(E)
    return np.abs(np.real(z / s))


class TestDynes:
    def test_reference_values(self):
        E = np.array([1.31, -1.31, 1.3, 0.0, 2.0])
        ref = [4.64552, 4.64552, 4.07779, 0.0153828, 1.31565]
        np.testing.assert_allclose(dos.dynes(E, delta=1.3, gamma=0.02), ref, rtol=5e-6)  # ref has 6 digits

    def test_no_negative_dos_and_particle_hole_symmetry(self):
        E = np.linspace(-10, 10, 20001)
        n = dos.dynes(E, delta=1.3, gamma=0.05)
        assert n.min() >= 0
        np.testing.assert_allclose(n, n[::-1], rtol=1e-13)
        np.testing.assert_allclose(n, bcs_textbook(E, 1.3, 0.05), rtol=1e-10)

    def test_gamma_zero_is_bcs(self):
        E = np.array([-3.0, -1.5, -1.0, 0.0, 0.7, 1.4, 2.5])
        expected = np.where(np.abs(E) > 1.3, np.abs(E) / np.sqrt(np.abs(E * E - 1.69)), 0.0)
        np.testing.assert_allclose(dos.dynes(E, delta=1.3, gamma=0.0), expected, rtol=1e-13)
        # Γ → 0 converges to it
        np.testing.assert_allclose(dos.dynes(E, delta=1.3, gamma=1e-7), expected, rtol=1e-5, atol=1e-6)

    def test_delta_zero_is_normal_metal(self):
        E = np.linspace(-2, 2, 11)
        np.testing.assert_array_equal(dos.dynes(E, delta=0.0, gamma=0.0), np.ones_like(E))
        np.testing.assert_allclose(dos.dynes(E, delta=0.0, gamma=0.3), 1.0)

    def test_antiderivative_matches_quadrature(self):
        d, g = 1.3, 0.02
        for a, b in [(-5.0, -1.0), (-1.2, 1.35), (0.5, 4.0)]:
            q, _ = integrate.quad(lambda e: dos.dynes(e, delta=d, gamma=g), a, b, limit=500,
                                  points=[-1.3, 1.3], epsabs=1e-12)
            A = dos.dynes_antiderivative(np.array([a, b]), delta=d, gamma=g)
            assert A[1] - A[0] == pytest.approx(q, rel=1e-9, abs=1e-10)

    def test_finite_window_sum_rule(self):
        d, g, W = 1.3, 0.02, 20.0
        A = dos.dynes_antiderivative(np.array([-W, W]), delta=d, gamma=g)
        deficit = A[1] - A[0] - 2 * W
        assert deficit == pytest.approx(-0.08459, abs=2e-5)
        assert deficit == pytest.approx(-d * d * W / (W * W + g * g), rel=2e-3)
        q, _ = integrate.quad(lambda e: dos.dynes(e, delta=d, gamma=g) - 1, -W, W, limit=1000,
                              points=[-1.3, 1.3])
        assert q == pytest.approx(deficit, abs=1e-8)

    @pytest.mark.parametrize("bad", [dict(delta=-1.0, gamma=0.1), dict(delta=np.nan, gamma=0.1),
                                     dict(delta=1.0, gamma=-0.1), dict(delta=1.0, gamma=np.inf),
                                     dict(delta="x", gamma=0.1)])
    def test_bad_parameters_raise_named_error(self, bad):
        with pytest.raises(ValueError, match="delta|gamma"):
            dos.dynes(np.zeros(3), **bad)


class TestAnisotropicS:
    def test_reference_values(self):
        E = np.array([0.5, 0.8, 1.0, 1.31])
        ref = [0.019861, 0.85320, 1.11613, 2.25180]
        np.testing.assert_allclose(dos.anisotropic_s(E, delta=1.0, anisotropy=0.3, gamma=0.01), ref, rtol=3e-5)

    @pytest.mark.parametrize("n", [1, 2, 3, 6])
    def test_brute_force_average_for_any_harmonic(self, n):
        d, a, g = 1.0, 0.4, 0.03
        ours = dos.anisotropic_s(np.array([0.3, 0.65, 1.1, 1.45, 2.0]), delta=d, anisotropy=a, gamma=g, n=n)
        for E, val in zip([0.3, 0.65, 1.1, 1.45, 2.0], ours, strict=True):
            ref = brute_fs_average(lambda p, E=E: dos.dynes(E, delta=abs(d * (1 + a * np.cos(n * p))), gamma=g), E)
            assert val == pytest.approx(ref, rel=1e-7)

    def test_zero_anisotropy_is_dynes(self):
        E = np.linspace(-3, 3, 301)
        np.testing.assert_allclose(dos.anisotropic_s(E, delta=1.2, anisotropy=0.0, gamma=0.02),
                                   dos.dynes(E, delta=1.2, gamma=0.02), rtol=1e-13)

    def test_step_and_log_peak_positions(self):
        E = np.linspace(0.0, 2.0, 4001)
        n = dos.anisotropic_s(E, delta=1.0, anisotropy=0.3, gamma=0.002)
        assert abs(E[np.argmax(n)] - 1.3) < 0.01                     # log peak at Δ₀(1+|a|)
        onset = E[np.argmax(n > 0.2)]
        assert abs(onset - 0.7) < 0.01                               # step at Δ₀(1−|a|)

    def test_particle_hole_symmetric_and_positive_with_nodes(self):
        E = np.linspace(-3, 3, 601)
        n = dos.anisotropic_s(E, delta=1.0, anisotropy=1.5, gamma=0.02)
        assert n.min() >= 0
        np.testing.assert_allclose(n, n[::-1], rtol=1e-12)
        assert n[300] > 0.05   # nodes: states at E = 0

    def test_antiderivative_consistent(self):
        kw = dict(delta=1.0, anisotropy=0.3, gamma=0.02)
        q, _ = integrate.quad(lambda e: dos.anisotropic_s(e, **kw), 0.2, 1.8, limit=400, points=[0.7, 1.3])
        A = dos.anisotropic_s_antiderivative(np.array([0.2, 1.8]), **kw)
        assert A[1] - A[0] == pytest.approx(q, rel=1e-6)


class TestDwave:
    def test_gamma_zero_matches_brute_force(self):
        for E in [0.1, 0.5, 0.93, 1.2, 2.5]:
            # By symmetry average over φ ∈ [0, π/4]; states exist where cos 2φ < E.
            lo = 0.5 * np.arccos(E) if E < 1 else 0.0
            val, _ = integrate.quad(lambda p, E=E: E / np.sqrt(E * E - np.cos(2 * p) ** 2), lo, np.pi / 4,
                                    limit=500, epsabs=1e-12, epsrel=1e-10)
            ref = val / (np.pi / 4)
            assert dos.dwave(E, delta=1.0, gamma=0.0) == pytest.approx(ref, rel=1e-5)

    def test_quadrature_converges_to_elliptic_closed_form(self):
        x = np.array([0.1, 0.4, 0.8, 1.3, 2.0])
        closed = np.where(x < 1, 2 / np.pi * x * ellipk(np.minimum(x, 1) ** 2),
                          2 / np.pi * ellipk(1 / np.maximum(x, 1) ** 2))
        np.testing.assert_allclose(dos.dwave(x, delta=1.0, gamma=1e-4), closed, rtol=2e-3)

    def test_v_shape(self):
        E = np.array([0.001, 0.005, 0.01])
        np.testing.assert_allclose(dos.dwave(E, delta=1.0, gamma=0.0), E, rtol=1e-3)

    def test_sum_rule_equals_fermi_surface_average_of_dynes_deficit(self):
        W = 15.0
        A = dos.dwave_antiderivative(np.array([-W, W]), delta=1.0, gamma=0.02)
        ref = brute_fs_average(lambda p: (lambda a: a[1] - a[0])(
            dos.dynes_antiderivative(np.array([-W, W]), delta=abs(np.cos(2 * p)), gamma=0.02)), 0)
        assert A[1] - A[0] == pytest.approx(ref, rel=1e-6)


def test_two_gap_is_weighted_sum():
    E = np.linspace(-3, 3, 101)
    n = dos.two_gap(E, delta=1.4, gamma=0.05, delta2=0.5, weight2=0.3)
    ref = 0.7 * dos.dynes(E, delta=1.4, gamma=0.05) + 0.3 * dos.dynes(E, delta=0.5, gamma=0.05)
    np.testing.assert_allclose(n, ref, rtol=1e-14)
    np.testing.assert_allclose(dos.multigap(E, deltas=[1.4, 0.5], gammas=0.05, weights=[7, 3]), ref, rtol=1e-14)


def test_cell_average_conserves_weight_at_gamma_zero():
    s = dos.bind("dynes", delta=1.0, gamma=0.0)
    h = 0.01
    E = np.arange(-5, 5 + h / 2, h)
    cells = s.cell_average(E, h)
    assert np.all(np.isfinite(cells))
    assert np.sum(cells) * h == pytest.approx(np.sum(np.ones_like(E)) * h - (
        (E[-1] + h / 2) - np.sqrt((E[-1] + h / 2) ** 2 - 1)) * 2, rel=1e-12)


def test_bind_validates_and_names_models():
    with pytest.raises(ValueError, match="unknown DOS model"):
        dos.bind("nonsense", delta=1)
    with pytest.raises(ValueError, match="gamma"):
        dos.bind("dynes", delta=1.0, gamma=-1)
    s = dos.bind(dos.dwave, delta=1.0, gamma=0.1)
    assert s(np.array([0.0]))[0] == pytest.approx(dos.dwave(0.0, delta=1.0, gamma=0.1))


class TestFastGridPath:
    """Kink-adapted clean quadrature + Lorentzian identity vs the direct Fermi-surface average."""

    @staticmethod
    def direct_cells(E, h, gaps, gamma):
        edges = np.concatenate([E - h / 2, [E[-1] + h / 2]])
        return np.diff(dos._fs_average(dos._dynes_anti_raw, edges, gaps, gamma)) / h

    @pytest.mark.parametrize("a,g", [(0.3, 0.02), (0.3, 0.002), (0.3, 0.0), (1.5, 0.02), (-0.5, 0.05), (0.3, 0.3)])
    def test_anisotropic_cells(self, a, g):
        h = 0.004
        E = np.arange(-4, 4, h) + h / 3
        fast = dos.anisotropic_s_cells(E, h, delta=1.0, anisotropy=a, gamma=g)
        ref = self.direct_cells(E, h, dos._aniso_gaps(1.0, a, g / 4 if g else 2e-4), g)   # converged to ≲ 2e-5
        np.testing.assert_allclose(fast, ref, atol=3e-4 * ref.max())

    @pytest.mark.parametrize("g", [0.0, 0.02])
    def test_dwave_cells(self, g):
        h = 0.004
        E = np.arange(-4, 4, h)
        fast = dos.dwave_cells(E, h, delta=1.0, gamma=g)
        np.testing.assert_allclose(fast, self.direct_cells(E, h, dos._dwave_gaps(1.0, g / 4 if g else 4e-4), g),
                                   atol=5e-4)

    def test_lorentzian_identity_single_gap(self):
        h = 0.001
        E = np.arange(-30, 30, h)
        edges = np.concatenate([E - h / 2, [E[-1] + h / 2]])
        bcs = np.diff(dos._dynes_anti_raw(edges, 1.0, 0.0)) / h
        dynes = np.diff(dos._dynes_anti_raw(edges, 1.0, 0.02)) / h
        np.testing.assert_allclose(dos._lorentzian_smear(bcs, h, 0.02), dynes, atol=2e-3)
