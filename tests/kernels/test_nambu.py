"""Nambu ⊗ spin algebra (kernels.nambu) and Matsubara sums (kernels.matsubara)."""

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from gapscope.kernels import gap, matsubara, nambu, ysr
from gapscope.kernels.constants import KB

SIG = [nambu.SIGMAX, nambu.SIGMAY, nambu.SIGMAZ]


def levi_civita(i, j, k):
    return (i - j) * (j - k) * (k - i) / 2


# ------------------------------------------------------------------ Pauli algebra
def test_pauli_products():
    for i, j in itertools.product(range(3), repeat=2):
        rhs = (i == j) * nambu.SIGMA0 + 1j * sum(levi_civita(i, j, k) * SIG[k] for k in range(3))
        np.testing.assert_allclose(SIG[i] @ SIG[j], rhs, atol=0)
    for s in SIG:
        np.testing.assert_array_equal(s, s.conj().T)
    np.testing.assert_array_equal(nambu.PAULI, np.stack(SIG))
    for t, s in [(nambu.TAUX, nambu.SIGMAX), (nambu.TAUY, nambu.SIGMAY), (nambu.TAUZ, nambu.SIGMAZ)]:
        np.testing.assert_array_equal(t, s)
    with pytest.raises(ValueError):
        nambu.SIGMAX[0, 0] = 5.0                                  # constants are read-only


def test_sigma_dot_and_unit_vector():
    n = np.array([0.3, -0.4, 1.2])
    np.testing.assert_allclose(nambu.sigma_dot(n), np.tensordot(n, nambu.PAULI, 1))
    np.testing.assert_allclose(nambu.sigma_dot(n) @ nambu.sigma_dot(n), (n @ n) * np.eye(2), atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(nambu.unit_vector(n)), 1.0)
    with pytest.raises(ValueError, match="direction must be a non-zero finite 3-vector"):
        nambu.unit_vector((0, 0, 0))
    with pytest.raises(ValueError, match="spin must be"):
        nambu.unit_vector((1, np.nan, 0), "spin")


def test_kron_order_is_e_up_e_down_h1_h2():
    np.testing.assert_array_equal(nambu.kron(nambu.TAUZ, nambu.SIGMA0), np.diag([1, 1, -1, -1]))
    np.testing.assert_array_equal(nambu.kron(nambu.TAU0, nambu.SIGMAZ), np.diag([1, -1, 1, -1]))
    for t, s in itertools.product([nambu.TAU0, nambu.TAUX, nambu.TAUY, nambu.TAUZ], repeat=2):
        np.testing.assert_array_equal(nambu.kron(t, s), np.kron(t, s))
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 5, 2, 2)) + 1j * rng.normal(size=(3, 5, 2, 2))
    b = rng.normal(size=(2, 2))
    batched = nambu.kron(a, b)
    assert batched.shape == (3, 5, 4, 4)
    np.testing.assert_allclose(batched[2, 4], np.kron(a[2, 4], b))
    np.testing.assert_array_equal(nambu.kron_s0(a), nambu.kron(a, nambu.SIGMA0))
    with pytest.raises(ValueError, match="kron needs"):
        nambu.kron(np.eye(3), np.eye(2))


def test_vertex_matches_ysr_and_inverse():
    a, b = 0.7, 0.3
    np.testing.assert_allclose(nambu.vertex(a, b, (0, 0, 2)), np.diag([b + a, b - a, -b + a, -b - a]), atol=0)
    n = np.array([1.0, -2.0, 0.5])
    v = nambu.vertex(a, b, n)
    nh = n / np.linalg.norm(n)
    np.testing.assert_allclose(v, b * np.kron(nambu.TAUZ, np.eye(2)) + a * np.kron(np.eye(2), nambu.sigma_dot(nh)),
                               atol=1e-15)
    np.testing.assert_allclose(nambu.vertex_inverse(a, b, n) @ v, np.eye(4), atol=1e-14)
    with pytest.raises(ValueError, match="singular"):
        nambu.vertex_inverse(0.5, -0.5, n)
    imp = ysr.Impurity(spin=tuple(n), channels=[ysr.Channel("s", a, b)])
    np.testing.assert_allclose(ysr.tmatrix.v(ysr.ContinuumPropagators(ysr.Substrate(), [imp])), v, atol=1e-15)


def test_basis_is_particle_hole_consistent():
    """C = τ_y⊗σ_y K anticommutes with ξτ_z + Δτ_x + vertex: the basis really is (c↑, c↓, c↓†, −c↑†)."""
    C = np.kron(nambu.TAUY, nambu.SIGMAY)
    h = 0.4 * nambu.kron(nambu.TAUZ, nambu.SIGMA0) + 1.5 * nambu.kron(nambu.TAUX, nambu.SIGMA0) \
        + nambu.vertex(0.8, -0.3, (0.2, 0.5, -1.0))
    np.testing.assert_allclose(C @ h.conj() @ C, -h, atol=1e-15)
    spin = [np.kron(nambu.TAU0, s) for s in SIG]                # τ₀⊗σ is the spin in both blocks
    for s in spin:
        np.testing.assert_allclose(C @ s.conj() @ C, -s, atol=1e-15)


# ------------------------------------------------------------------ projectors
def test_projector_identities():
    pe, ph = nambu.P_E, nambu.P_H
    np.testing.assert_array_equal(pe + ph, np.eye(4))
    np.testing.assert_array_equal(pe @ pe, pe)
    np.testing.assert_array_equal(pe @ ph, np.zeros((4, 4)))
    np.testing.assert_array_equal(pe, 0.5 * (np.eye(4) + nambu.kron(nambu.TAUZ, nambu.SIGMA0)))
    m = np.array([0.3, -0.2, 0.9])
    s = nambu.spin_projector(m)
    np.testing.assert_allclose(s @ s, s, atol=1e-15)
    np.testing.assert_allclose(s, s.conj().T)
    assert np.trace(s).real == pytest.approx(1.0)
    np.testing.assert_allclose(s + nambu.spin_projector(-m), np.eye(2), atol=1e-15)
    np.testing.assert_allclose(nambu.sigma_dot(m / np.linalg.norm(m)) @ s, s, atol=1e-15)   # eigenvalue +1
    np.testing.assert_array_equal(nambu.spin_projector(None), np.eye(2))
    for part, tau in [("electron", np.diag([1, 0])), ("hole", np.diag([0, 1])), ("total", np.eye(2))]:
        np.testing.assert_array_equal(nambu.tau_projector(part), tau)
        np.testing.assert_allclose(nambu.projector(part, m), np.kron(tau, s))
    p = nambu.projector("electron", m)
    np.testing.assert_allclose(p @ p, p, atol=1e-15)
    with pytest.raises(ValueError, match="part must be 'electron', 'hole' or 'total', got 'up'"):
        nambu.tau_projector("up")
    with pytest.raises(ValueError, match="spin_axis must be a non-zero finite 3-vector"):
        nambu.spin_projector((0, 0, 0))


# ------------------------------------------------------------------ Matsubara frequencies
def test_frequencies_values_and_window():
    T, wc = 1.2, 3.0
    kt = KB * T
    w = matsubara.frequencies(temperature=T, omega_c=wc)
    n = np.arange(w.size)
    np.testing.assert_allclose(w, np.pi * kt * (2 * n + 1), rtol=1e-15)
    assert w.max() < wc <= np.pi * kt * (2 * w.size + 1)
    both = matsubara.frequencies(temperature=T, omega_c=wc, positive_only=False)
    np.testing.assert_allclose(both, np.r_[-w[::-1], w])
    assert matsubara.count(temperature=T, omega_c=wc) == w.size
    assert matsubara.count(temperature=T, omega_c=wc, positive_only=False) == 2 * w.size
    assert matsubara.frequencies(temperature=T, omega_c=0.5 * np.pi * kt).size == 0
    # a cutoff exactly on a frequency excludes it (|ω_n| < ω_c)
    assert matsubara.frequencies(temperature=T, omega_c=5 * np.pi * kt).size == 2


def test_matsubara_argument_errors():
    f = lambda w: 1 / w ** 2
    with pytest.raises(ValueError, match="temperature must be > 0"):
        matsubara.fermionic_sum(f, temperature=0.0, omega_c=10.0)
    with pytest.raises(ValueError, match="temperature"):
        matsubara.frequencies(temperature=-1.0, omega_c=10.0)
    with pytest.raises(ValueError, match="omega_c must be > 0"):
        matsubara.fermionic_sum(f, temperature=1.0, omega_c=0.0)
    with pytest.raises(ValueError, match="omega_c"):
        matsubara.frequencies(temperature=1.0, omega_c=float("inf"))
    with pytest.raises(ValueError, match="omega_c .* more than the limit"):
        matsubara.fermionic_sum(f, temperature=0.01, omega_c=1e5)
    with pytest.raises(ValueError, match="vectorised"):
        matsubara.fermionic_sum(lambda w: 1.0, temperature=1.0, omega_c=10.0)


def test_sum_of_propagator_pair_closed_form_with_tail_bound():
    """k_BT Σ_{n∈ℤ} 1/(ω_n² + E²) = tanh(E/2k_BT)/(2E); the truncated sum misses a tail bracketed by integrals."""
    for T, E in [(0.5, 0.3), (1.0, 1.5), (4.0, 0.05), (0.2, 2.0)]:
        kt, wc = KB * T, 2000.0
        got = matsubara.fermionic_sum(lambda w, E=E: 1 / (w * w + E * E), temperature=T, omega_c=wc)
        exact = np.tanh(E / (2 * kt)) / (2 * E)
        wn = np.pi * kt * (2 * matsubara.count(temperature=T, omega_c=wc) + 1)     # first omitted frequency
        lower = (np.pi / 2 - np.arctan(wn / E)) / (np.pi * E)                       # 2k_BT·(1/2πk_BT)∫_{ω_N}^∞
        upper = lower + 2 * kt / (wn * wn + E * E)
        tail = exact - got
        assert lower * (1 - 1e-9) <= tail <= upper * (1 + 1e-9)
        assert got + 0.5 * (lower + upper) == pytest.approx(exact, rel=1e-6)


def test_bcs_gap_equation_from_the_matsubara_sum():
    """1/λ = πk_BT Σ_{|ω_n|<ω_c} 1/√(ω_n² + Δ²), calibrated at T = 0 by ln(2ω_c/Δ₀) = 1/λ, gives BCS δ(T/T_c).

    ω_c ≈ 100Δ₀, placed at an even multiple of πk_BT (between two frequencies): then the
    truncated sum is the midpoint rule of the T = 0 integral and the cutoff error is O((Δ/ω_c)²).
    """
    d0 = 1.5
    tc = d0 * math.exp(np.euler_gamma) / (math.pi * KB)        # Δ₀ = π e^{−γ} k_B T_c
    for t in (0.5, 0.9):
        T = t * tc
        kt = KB * T
        wc = 2 * math.pi * kt * round(100 * d0 / (2 * math.pi * kt))
        inv_lambda = math.log(2 * wc / d0)

        def gap_eq(d, T=T, wc=wc, inv_lambda=inv_lambda):
            return math.pi * matsubara.fermionic_sum(lambda w: 1 / np.sqrt(w * w + d * d), temperature=T,
                                                     omega_c=wc) - inv_lambda

        delta = brentq(gap_eq, 1e-6 * d0, 2 * d0, xtol=1e-12)
        assert delta / d0 == pytest.approx(float(gap.reduced_gap(t)), abs=1e-3)
    assert float(gap.reduced_gap(0.5)) == pytest.approx(0.9569, abs=1e-4)
