"""YSR chains: LCAO against the paper's closed forms (corrected) and exact diagonalisation, the extended model
against its dimer closed form and brute-force quadrature, and the spectra along the chain against sum rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.linalg import eigh

from gapscope.kernels import chains, dos, tunneling

RNG = np.random.default_rng(20230203)


# ----------------------------------------------------------------------------- LCAO: closed forms
def closed_forms(N, e0, k1, k2, k3):
    """Friedrich et al., supplement Eqs. S6–S11, with S10/S11 corrected (k3³ → k3²/4): {parity: energies}."""
    if N == 2:
        return {1: [e0 + k1], -1: [e0 - k1]}
    if N == 3:
        r = math.sqrt(2 * k1 ** 2 + k2 ** 2 / 4)
        return {1: [e0 + k2 / 2 - r, e0 + k2 / 2 + r], -1: [e0 - k2]}
    if N == 4:
        re = math.sqrt(5 * k1 ** 2 / 4 + 2 * k1 * k2 - k1 * k3 / 2 + k2 ** 2 + k3 ** 2 / 4)
        ro = math.sqrt(5 * k1 ** 2 / 4 - 2 * k1 * k2 - k1 * k3 / 2 + k2 ** 2 + k3 ** 2 / 4)
        return {1: [e0 + (k1 + k3) / 2 - re, e0 + (k1 + k3) / 2 + re],
                -1: [e0 - (k1 + k3) / 2 - ro, e0 - (k1 + k3) / 2 + ro]}
    raise AssertionError


@pytest.mark.parametrize("N", [2, 3, 4])
def test_lcao_matches_the_corrected_closed_forms_S6_to_S11(N):
    for _ in range(200):
        e0, k1, k2, k3 = RNG.uniform(-1.0, 1.0, 4)
        E, P = chains.lcao(N, e0=e0, hoppings=(k1, k2, k3))
        want = closed_forms(N, e0, k1, k2, k3)
        for p in (1, -1):
            np.testing.assert_allclose(np.sort(E[P == p]), np.sort(want[p]), atol=1e-13)


def test_printed_tetramer_forms_are_wrong_where_k3_matters():
    """S10/S11 as printed (k3³ under the root) disagree with the matrix; with k3 = 0 they agree."""
    e0, k1, k2, k3 = 0.0, 0.4, 0.1, 0.3
    printed = e0 + (k1 + k3) / 2 + math.sqrt(5 * k1 ** 2 / 4 + 2 * k1 * k2 - k1 * k3 / 2 + k2 ** 2 + k3 ** 3)
    E, P = chains.lcao(4, e0=e0, hoppings=(k1, k2, k3))
    assert abs(E[P == 1].max() - printed) > 1e-3
    E0, P0 = chains.lcao(4, e0=e0, hoppings=(k1, k2, 0.0))
    assert E0[P0 == 1].max() == pytest.approx(closed_forms(4, e0, k1, k2, 0.0)[1][1], abs=1e-14)


def test_nearest_neighbour_chain_cosine_band_and_parity_alternation():
    for N in range(1, 10):
        k1 = 0.4
        E, P = chains.lcao(N, e0=0.7, hoppings=(k1,))
        n = np.arange(1, N + 1)
        want = 0.7 + 2 * k1 * np.cos(n * np.pi / (N + 1))      # n = 1 highest
        order = np.argsort(want)
        np.testing.assert_allclose(E, want[order], atol=1e-13)
        np.testing.assert_array_equal(P, ((-1) ** (n + 1))[order])
        assert P[-1] == 1                                         # highest state even for k1 > 0
        assert P[0] == (1 if N % 2 else -1)                       # lowest: even for odd N, odd for even N


def test_paper_numbers_k1_040():
    E, P = chains.lcao(2, e0=0.6, hoppings=(0.40,))
    np.testing.assert_allclose(E, [0.2, 1.0], atol=1e-14)
    np.testing.assert_array_equal(P, [-1, 1])
    E, P = chains.lcao(3, e0=1.0, hoppings=(0.40,))
    np.testing.assert_allclose(E, [1.0 - 0.4 * math.sqrt(2), 1.0, 1.0 + 0.4 * math.sqrt(2)], atol=1e-14)
    np.testing.assert_array_equal(P, [1, -1, 1])
    E, P = chains.lcao(4, e0=0.7, hoppings=(0.40,))
    np.testing.assert_allclose(E, [0.0528, 0.4528, 0.9472, 1.3472], atol=1e-4)
    np.testing.assert_array_equal(P, [-1, 1, -1, 1])


# ----------------------------------------------------------------------------- LCAO: exact diagonalisation
def toeplitz_by_loops(N, e0, ks):
    H = np.zeros((N, N))
    for i in range(N):
        for j in range(N):
            m = abs(i - j)
            H[i, j] = e0 if m == 0 else (ks[m - 1] if m - 1 < len(ks) else 0.0)
    return H


def mirror(N):
    return np.eye(N)[::-1]


def test_lcao_equals_full_diagonalisation_without_symmetry():
    for _ in range(150):
        N = int(RNG.integers(1, 10))
        ks = RNG.uniform(-1, 1, int(RNG.integers(1, 6)))
        e0 = float(RNG.uniform(-1, 1))
        H = toeplitz_by_loops(N, e0, ks)
        w, U = np.linalg.eigh(H)
        E, P = chains.lcao(N, e0=e0, hoppings=tuple(ks))
        np.testing.assert_allclose(E, w, atol=1e-12)
        if np.min(np.diff(w), initial=1.0) > 1e-6:               # non-degenerate: parity from ⟨ψ|R|ψ⟩
            par = np.einsum("in,ij,jn->n", U, mirror(N), U)
            np.testing.assert_allclose(par, P, atol=1e-9)


def test_lcao_fan_equals_pointwise_diagonalisation():
    ks = np.linspace(-0.8, 0.8, 17)
    for N in (1, 2, 5, 6):
        even, odd = chains.lcao_fan(N, e0=0.3, hoppings=(0.4, 0.1, -0.05), k1=ks)
        assert even.shape == (ks.size, (N + 1) // 2) and odd.shape == (ks.size, N // 2)
        for j, k in enumerate(ks):
            w = np.linalg.eigvalsh(toeplitz_by_loops(N, 0.3, [k, 0.1, -0.05]))
            np.testing.assert_allclose(np.sort(np.concatenate([even[j], odd[j]])), w, atol=1e-12)
            E, P = chains.lcao(N, e0=0.3, hoppings=(k, 0.1, -0.05))
            if np.min(np.diff(E), initial=1.0) > 1e-9:
                np.testing.assert_allclose(even[j], E[P == 1], atol=1e-12)


def test_degenerate_levels_keep_clean_parities():
    # trimer e0 = 0, k1 = 1, k2 = −1: even −0.5 ± 1.5 = {−2, 1}, odd −k2 = 1 — an even and an odd level at 1
    E, P, C = chains.lcao_states(3, e0=0.0, hoppings=(1.0, -1.0))
    np.testing.assert_allclose(E, [-2.0, 1.0, 1.0], atol=1e-14)
    np.testing.assert_array_equal(P, [1, 1, -1])
    R = mirror(3)
    np.testing.assert_allclose(R @ C, C * P[None, :], atol=1e-14)      # each vector exactly ±1 under R
    np.testing.assert_allclose(C.T @ C, np.eye(3), atol=1e-14)
    # full diagonalisation mixes the pair; its trace of R over the degenerate space is n_even − n_odd = 0
    w, U = np.linalg.eigh(toeplitz_by_loops(3, 0.0, [1.0, -1.0]))
    Q = U[:, np.abs(w - 1.0) < 1e-9]
    assert np.trace(Q.T @ R @ Q) == pytest.approx(0.0, abs=1e-12)
    # no hopping at all: N-fold degenerate, ⌈N/2⌉ even and ⌊N/2⌋ odd
    for N in (4, 5):
        E, P = chains.lcao(N, e0=0.3, hoppings=(0.0,))
        np.testing.assert_allclose(E, 0.3)
        assert (P == 1).sum() == (N + 1) // 2 and (P == -1).sum() == N // 2


def test_lcao_rejects_bad_input_naming_the_parameter():
    with pytest.raises(ValueError, match="n must"):
        chains.lcao(0, e0=0.0, hoppings=(0.4,))
    with pytest.raises(ValueError, match="integer"):
        chains.lcao(2.5, e0=0.0, hoppings=(0.4,))
    with pytest.raises(ValueError, match="k2"):
        chains.lcao(3, e0=0.0, hoppings=(0.4, float("nan")))
    with pytest.raises(ValueError, match="k5"):
        chains.lcao(6, e0=0.0, hoppings=(0.4, 0, 0, 0, 1e3))
    with pytest.raises(ValueError, match="e0"):
        chains.lcao(3, e0=100.0, hoppings=(0.4,))


# ----------------------------------------------------------------------------- extended model
def sinc_state(r, lam=1.0):
    return math.sqrt(2 / lam) * np.sinc(2 * r / lam)


@pytest.mark.parametrize("d,xi", [(0.35, 0.4), (0.7, 0.4), (0.5, 0.2), (1.1, 0.8)])
def test_extended_dimer_is_the_2x2_closed_form_with_integrals_by_quad(d, xi):
    """(C ± D)/(1 ± S) with S, C, D from adaptive quadrature (independent of the kernel's Gauss–Hermite)."""
    J = lambda r: math.exp(-r ** 2 / xi ** 2) / (math.sqrt(math.pi) * xi)
    lim = 40.0
    S = quad(lambda r: sinc_state(r) * sinc_state(r - d), -lim, lim, limit=2000)[0]
    C = quad(lambda r: sinc_state(r) ** 2 * J(r - d), d - 12 * xi, d + 12 * xi, limit=400)[0]
    Dx = quad(lambda r: sinc_state(r) * J(r) * sinc_state(r - d), -12 * xi, 12 * xi, limit=400)[0]
    assert S == pytest.approx(np.sinc(2 * d), abs=3e-3)      # the analytic overlap (finite line: 1/r² tail)
    S = float(np.sinc(2 * d))
    even, odd = (C + Dx) / (1 + S), (C - Dx) / (1 - S)
    s, p = chains.extended(2, d=d, xi_j=xi, j0=1.0, lambda_f=1.0)
    got = {int(pp): ss for ss, pp in zip(s, p, strict=True)}
    assert got[1] == pytest.approx(even, abs=1e-9)
    assert got[-1] == pytest.approx(odd, abs=1e-9)


def test_extended_dimer_integrals_at_d035():
    S, V = chains.extended_matrices(2, d=0.35, xi_j=0.4, lambda_f=1.0)
    assert S[0, 1] == pytest.approx(0.3679, abs=1e-4)
    assert V[0, 0] == pytest.approx(0.6384, abs=1e-4)      # C
    assert V[0, 1] == pytest.approx(0.4949, abs=1e-4)      # D


def brute_force_matrices(N, d, xi):
    """S and V on a dense uniform grid (trapezoid), without the kernel's closed forms or quadrature."""
    r = np.linspace(-6.0, (N - 1) * d + 6.0, 120001)
    h = r[1] - r[0]
    phi = np.array([sinc_state(r - j * d) for j in range(N)])
    J = np.array([np.exp(-(r - k * d) ** 2 / xi ** 2) / (math.sqrt(math.pi) * xi) for k in range(N)])
    V = np.zeros((N, N))
    for i in range(N):
        for j in range(N):
            V[i, j] = sum(h * np.sum(phi[i] * J[k] * phi[j]) for k in range(N) if k != j)
    return V


@pytest.mark.parametrize("N,d", [(3, 0.35), (3, 0.7), (4, 0.35), (4, 0.7)])
def test_extended_equals_brute_force_generalised_eigenproblem(N, d):
    xi = 0.4
    V = brute_force_matrices(N, d, xi)
    pos = d * np.arange(N)
    S = np.sinc(2 * np.subtract.outer(pos, pos))
    w, U = eigh(V, S)
    s, p = chains.extended(N, d=d, xi_j=xi, j0=1.0, lambda_f=1.0)
    np.testing.assert_allclose(s, w, atol=1e-6)
    par = np.einsum("in,ij,jn->n", U, mirror(N), U) / np.einsum("in,in->n", U, U)
    np.testing.assert_allclose(par, p, atol=1e-6)


def test_extended_reference_shifts_and_fig_s5_orderings():
    ref = {(2, 0.35): [0.2270, 0.8284], (2, 0.7): [0.0104, 0.2361],
           (3, 0.35): [0.0395, 0.8279, 1.3218], (3, 0.7): [0.0510, 0.0854, 0.3828],
           (4, 0.35): [-0.1411, 0.6055, 1.2837, 1.5417], (4, 0.7): [0.0500, 0.1011, 0.1960, 0.4570]}
    for (N, d), want in ref.items():
        s, _ = chains.extended(N, d=d, xi_j=0.4, j0=1.0, lambda_f=1.0)
        np.testing.assert_allclose(s, want, atol=1e-4)
    _, p3 = chains.extended(3, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0)
    assert list(p3[-2:]) == [1, 1]                          # trimer: the two highest are even
    _, p4 = chains.extended(4, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0)
    assert p4[0] == -1 and p4[-1] == -1                     # tetramer: lowest and highest odd
    _, p3s = chains.extended(3, d=0.7, xi_j=0.3, j0=1.0, lambda_f=1.0)
    assert list(p3s) == [1, -1, 1]                          # ξ_J < 0.37 λ_F: e o e
    # LCAO-like alternation (highest even) at small d
    for N in (2, 3, 4):
        _, p = chains.extended(N, d=0.3, xi_j=0.4, j0=1.0, lambda_f=1.0)
        assert p[-1] == 1 and np.all(p[1:] != p[:-1])


def test_extended_scaling_units_and_printed_normalisation():
    s1, p1 = chains.extended(3, d=0.35, xi_j=0.4, j0=1.0, lambda_f=1.0)
    s2, p2 = chains.extended(3, d=0.7, xi_j=0.8, j0=3.0, lambda_f=2.0)     # the same ratios, other units
    np.testing.assert_allclose(s1, s2, atol=1e-12)
    np.testing.assert_array_equal(p1, p2)
    sp, pp = chains.extended(3, d=0.35, xi_j=0.4, j0=1.0, lambda_f=1.0, norm="printed")
    np.testing.assert_allclose(sp, s1 * math.sqrt(0.4), atol=1e-12)
    np.testing.assert_array_equal(pp, p1)
    with pytest.raises(ValueError, match="norm"):
        chains.extended(3, d=0.35, xi_j=0.4, j0=1.0, lambda_f=1.0, norm="paper")
    with pytest.raises(ValueError, match="d = "):
        chains.extended(3, d=0.001, xi_j=0.4, j0=1.0, lambda_f=1.0)
    with pytest.raises(ValueError, match="xi_j"):
        chains.extended(3, d=0.3, xi_j=5.0, j0=1.0, lambda_f=1.0)
    with pytest.raises(ValueError, match="j0"):
        chains.extended(3, d=0.3, xi_j=0.4, j0=0.0, lambda_f=1.0)
    with pytest.raises(ValueError, match="linearly dependent"):       # over-complete sinc states (d < λ_F/2)
        chains.extended(40, d=0.3, xi_j=0.4, j0=1.0, lambda_f=1.0)
    s40, _ = chains.extended(40, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0)   # d > λ_F/2: a long chain is fine
    assert s40.size == 40 and np.all(np.isfinite(s40))


# ----------------------------------------------------------------------------- extended model: fan diagrams
def sector_energies_by_brute_force(N, d, xi):
    """Even and odd shifts (units of J₀/λ_F) from the dense-grid V, the analytic S and parities from ⟨c|R|c⟩/⟨c|c⟩."""
    V = brute_force_matrices(N, d, xi)
    pos = d * np.arange(N)
    w, U = eigh(V, np.sinc(2 * np.subtract.outer(pos, pos)))
    par = np.rint(np.einsum("in,ij,jn->n", U, mirror(N), U) / np.einsum("in,in->n", U, U))
    return np.sort(w[par == 1]), np.sort(w[par == -1])


@pytest.mark.parametrize("over", ["xi_j", "d"])
def test_extended_fan_equals_the_brute_force_eigenproblem_at_each_point(over):
    N, j0, lam = 3, 1.7, 1.0
    values = np.array([0.25, 0.45, 0.8]) if over == "xi_j" else np.array([0.35, 0.7, 1.2])
    kept, even, odd = chains.extended_fan(N, d=0.7, xi_j=0.4, j0=j0, lambda_f=lam, over=over, values=values)
    np.testing.assert_array_equal(kept, values)
    assert even.shape == (3, 2) and odd.shape == (3, 1)
    for i, x in enumerate(values):
        d, xi = (0.7, x) if over == "xi_j" else (x, 0.4)
        e, o = sector_energies_by_brute_force(N, d, xi)
        np.testing.assert_allclose(even[i], j0 / lam * e, atol=1e-5)
        np.testing.assert_allclose(odd[i], j0 / lam * o, atol=1e-5)


def test_extended_fan_is_linear_in_j0_with_the_dimer_closed_form():
    d, xi = 0.35, 0.4
    J = lambda r: math.exp(-r ** 2 / xi ** 2) / (math.sqrt(math.pi) * xi)
    C = quad(lambda r: sinc_state(r) ** 2 * J(r - d), d - 12 * xi, d + 12 * xi, limit=400)[0]
    Dx = quad(lambda r: sinc_state(r) * J(r) * sinc_state(r - d), -12 * xi, 12 * xi, limit=400)[0]
    S = float(np.sinc(2 * d))
    j0s = np.array([0.1, 0.5, 2.0, 4.0])
    kept, even, odd = chains.extended_fan(2, d=d, xi_j=xi, j0=1.0, lambda_f=2.0, over="j0", values=j0s)
    # lengths in units of λ_F = 2 nm: d = 0.7 nm, ξ_J = 0.8 nm are the same model; shifts in meV = J₀/λ_F × shift
    kept2, even2, odd2 = chains.extended_fan(2, d=2 * d, xi_j=2 * xi, j0=1.0, lambda_f=2.0, over="j0", values=j0s)
    np.testing.assert_allclose(even2[:, 0], j0s / 2.0 * (C + Dx) / (1 + S), atol=1e-9)
    np.testing.assert_allclose(odd2[:, 0], j0s / 2.0 * (C - Dx) / (1 - S), atol=1e-9)
    assert kept.shape == (4,) and even.shape == (4, 1)


def _pattern(even, odd):
    """The parity sequence (ascending energy) of one fan column, e.g. 'oee'."""
    E = np.concatenate([even, odd])
    P = np.concatenate([np.ones(even.size), -np.ones(odd.size)])
    return "".join("e" if p > 0 else "o" for p in P[np.argsort(E, kind="stable")])


def _switches(kept, even, odd):
    pats = [_pattern(e, o) for e, o in zip(even, odd, strict=True)]
    return [(0.5 * (kept[i] + kept[i + 1]), pats[i], pats[i + 1]) for i in range(len(pats) - 1)
            if pats[i] != pats[i + 1]]


def test_extended_fan_against_xi_j_reproduces_the_fig_s5_orderings():
    """Friedrich et al., Fig. S5 (as checked in the physics notes): at d = 0.7 λ_F the trimer is e o e for
    ξ_J < 0.37 λ_F and o e e above; the tetramer e o e o → o e e o at ξ_J ≈ 0.30 and back at ≈ 0.62."""
    xs = np.linspace(0.05, 1.5, 291)                        # steps of 0.005 λ_F
    sw3 = _switches(*chains.extended_fan(3, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0, over="xi_j", values=xs))
    assert [(a, b) for _, a, b in sw3][:1] == [("eoe", "oee")] and sw3[0][0] == pytest.approx(0.37, abs=0.01)
    sw4 = _switches(*chains.extended_fan(4, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0, over="xi_j", values=xs))
    assert [(a, b) for _, a, b in sw4][:2] == [("eoeo", "oeeo"), ("oeeo", "eoeo")]
    assert sw4[0][0] == pytest.approx(0.30, abs=0.01) and sw4[1][0] == pytest.approx(0.62, abs=0.01)


def test_extended_fan_against_d_reproduces_where_the_lcao_alternation_holds():
    """Physics notes (Fig. S5): the LCAO-like alternation (parities alternate, the highest even) holds for
    0.05 ≤ d/λ_F ≤ 0.59 (dimer), ≤ 0.58 (trimer), ≤ 0.46 (tetramer) at ξ_J = 0.4 λ_F, and again from
    d ≈ 1.04 λ_F (dimer), 0.72 (trimer)."""
    ds = np.linspace(0.05, 1.5, 1451)                       # steps of 0.001 λ_F
    for N, edge, again in ((2, 0.59, 1.04), (3, 0.58, 0.72), (4, 0.46, None)):
        kept, even, odd = chains.extended_fan(N, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0, over="d", values=ds)
        lcao = "".join("e" if (N - 1 - i) % 2 == 0 else "o" for i in range(N))      # ascending, the top even
        ok = np.array([_pattern(e, o) == lcao for e, o in zip(even, odd, strict=True)])
        last = kept[np.flatnonzero(~ok)[0] - 1]
        assert np.all(ok[kept <= last]) and last == pytest.approx(edge, abs=0.006)
        if again is not None:
            assert kept[(kept > edge + 0.05) & ok][0] == pytest.approx(again, abs=0.006)


def test_extended_fan_rejects_bad_input_and_leaves_out_singular_points():
    with pytest.raises(ValueError, match="over"):
        chains.extended_fan(3, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0, over="lambda_f", values=[1.0])
    with pytest.raises(ValueError, match="j0"):
        chains.extended_fan(3, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0, over="j0", values=[0.0])
    kept, even, odd = chains.extended_fan(40, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0, over="d",
                                          values=[0.3, 0.7])      # d = 0.3: 40 sinc states over-complete
    np.testing.assert_array_equal(kept, [0.7])
    assert even.shape == (1, 20) and odd.shape == (1, 20)


# ----------------------------------------------------------------------------- spectra and line profiles
PROFILE = dict(delta=1.52, gamma=0.02, gamma_ysr=0.03, weight=0.1, electron_fraction=0.7)


def test_profile_weights_completeness_and_odd_nodes():
    for N in (2, 3, 4, 5):
        E, P, C = chains.lcao_states(N, e0=0.7, hoppings=(0.4, 0.05))
        pos = chains.site_positions(N, spacing=0.2853)
        x = np.linspace(-1.5, 1.5, 301)
        W = chains.profile_weights(x, C, positions=pos, width=0.15)
        g = np.exp(-0.5 * ((x[:, None] - pos[None, :]) / 0.15) ** 2)
        np.testing.assert_allclose(W.sum(axis=1), (g ** 2).sum(axis=1), atol=1e-13)
        Wc = chains.profile_weights(0.0, C, positions=pos, width=0.15)[0]
        np.testing.assert_allclose(Wc[P == -1], 0.0, atol=1e-28)        # odd states vanish at the centre
        # ∫W_n dx = Σ_jl C_jn C_ln √π w exp(−(x_j − x_l)²/4w²)  (Gaussian overlaps), by quadrature
        xf = np.linspace(-4, 4, 40001)
        Wf = chains.profile_weights(xf, C, positions=pos, width=0.15)
        G = math.sqrt(math.pi) * 0.15 * np.exp(-np.subtract.outer(pos, pos) ** 2 / (4 * 0.15 ** 2))
        np.testing.assert_allclose(np.trapezoid(Wf, xf, axis=0), np.einsum("jn,jl,ln->n", C, G, C), rtol=1e-10)


def test_chain_dos_spectral_weight_sum_rule():
    E, P, C = chains.lcao_states(3, e0=1.0, hoppings=(0.4,))
    pos = chains.site_positions(3, spacing=0.2853)
    W = chains.profile_weights(0.1, C, positions=pos, width=0.15)[0]
    rho = chains.chain_dos(E, W, **PROFILE)
    assert rho.width == pytest.approx(0.02)
    excess = lambda e: float(rho(np.array([e]))[0] - dos.dynes(np.array([e]), delta=1.52, gamma=0.02)[0])
    total = (quad(excess, -np.inf, -3.0, limit=500)[0] + quad(excess, 3.0, np.inf, limit=500)[0]
             + quad(excess, -3.0, 3.0, limit=500, points=(-1.566, -1.52, -1.0, -0.434, 0.434, 1.0, 1.52, 1.566))[0])
    assert total == pytest.approx(0.1 * W.sum(), rel=1e-6)
    assert float(rho(np.array([40.0]))[0]) == pytest.approx(1.0, abs=1e-3)     # normal state far away


def test_line_spectra_equal_direct_tunnelling_at_each_position():
    """The per-state decomposition of the line profile equals didv of the full DOS at that position."""
    E, P, C = chains.lcao_states(2, e0=0.6, hoppings=(0.4,))
    pos = chains.site_positions(2, spacing=0.2853)
    V = np.linspace(-3.5, 3.5, 351)
    chain = dict(temperature=1.4, tip_delta=1.31, tip_gamma=0.01, vmod_rms=0.1)
    x = np.array([0.0, 0.14, 0.4])
    G = chains.line_spectra(V, x, E, C, positions=pos, width=0.15, **PROFILE, **chain)
    W = chains.profile_weights(x, C, positions=pos, width=0.15)
    for i in range(x.size):
        direct = tunneling.didv(V, sample_dos=chains.chain_dos(E, W[i], **PROFILE), **chain)
        np.testing.assert_allclose(G[i], direct, atol=1e-7 * np.abs(direct).max())


def test_line_spectra_normal_tip_sum_rule():
    """Normal tip, low T: ∫[G(x, V) − G_Dynes(V)] dV over ±V_m is the Lorentzians' weight inside the window."""
    E, P, C = chains.lcao_states(3, e0=0.5, hoppings=(0.3,))
    pos = chains.site_positions(3, spacing=0.3)
    Vm = 6.0
    V = np.linspace(-Vm, Vm, 6001)
    x = np.array([-0.3, 0.0, 0.2])
    G = chains.line_spectra(V, x, E, C, positions=pos, width=0.15, **PROFILE, temperature=0.05)
    G0 = chains.line_spectra(V, x, E, C, positions=pos, width=0.15, **{**PROFILE, "weight": 0.0}, temperature=0.05)
    W = chains.profile_weights(x, C, positions=pos, width=0.15)
    g, u2 = PROFILE["gamma_ysr"], PROFILE["electron_fraction"]
    inside = lambda e: (np.arctan((Vm - e) / g) + np.arctan((Vm + e) / g)) / np.pi
    want = PROFILE["weight"] * W @ (u2 * inside(E) + (1 - u2) * inside(-E))
    np.testing.assert_allclose(np.trapezoid(G - G0, V, axis=1), want, rtol=2e-5)


def test_dimer_even_peak_through_the_tip():
    """Dimer centre (only the even state there): the peak sits at Δ_t + E_even = 1.31 + 1.0 mV."""
    E, P, C = chains.lcao_states(2, e0=0.6, hoppings=(0.4,))
    pos = chains.site_positions(2, spacing=0.2853)
    V = np.linspace(1.6, 2.7, 1101)
    G = chains.line_spectra(V, [0.0], E, C, positions=pos, width=0.15, **PROFILE, temperature=1.4,
                            tip_delta=1.31, tip_gamma=0.01, vmod_rms=0.0)[0]
    assert V[np.argmax(G)] == pytest.approx(2.31, abs=0.03)


def test_chain_dos_rejects_bad_input():
    with pytest.raises(ValueError, match="gamma_ysr"):
        chains.chain_dos([0.5], [1.0], **{**PROFILE, "gamma_ysr": 0.0})
    with pytest.raises(ValueError, match="electron_fraction"):
        chains.chain_dos([0.5], [1.0], **{**PROFILE, "electron_fraction": 1.5})
    with pytest.raises(ValueError, match="weights"):
        chains.chain_dos([0.5, 0.6], [1.0], **PROFILE)
    with pytest.raises(ValueError, match="spacing"):
        chains.site_positions(3, spacing=0.0)
