"""Deconvolution (fitting.deconvolve): a known anisotropic-s DOS from synthetic SIS data.

Independent references: the true DOS (dos.anisotropic_s point values); the forward check pushes
the recovered DOS back through ``tunneling.didv`` with ``dos.tabulated`` (not the forward matrix);
the regularised solution is compared with a direct dense solve of the normal equations.
"""

import numpy as np
import pytest

from gapscope.kernels import dos, fitting, tunneling
from gapscope.kernels.deconvolution import _second_difference, forward_matrix

V = np.linspace(-4, 4, 800)
CHAIN = dict(temperature=0.5, tip_delta=1.31, tip_gamma=0.02, vmod_rms=0.02)
TRUTH = dos.bind("anisotropic_s", delta=1.0, anisotropy=0.3, gamma=0.05, n=6)
NOISE, SCALE = 0.01, 2.0


def _data(seed=1):
    g = tunneling.didv(V, sample_dos=TRUTH, **CHAIN)
    return SCALE * (g + np.random.default_rng(seed).normal(0.0, NOISE, V.size))


def test_recovers_anisotropic_s_dos_within_its_band():
    r = fitting.deconvolve(V, _data(), scale=SCALE, **CHAIN)
    E, N, lo, hi = r
    assert r.method == "gcv" and r.lam > 0 and 10 < r.dof < E.size
    truth = TRUTH(E)
    inside = (lo <= truth) & (truth <= hi)
    assert inside.mean() >= 0.6, inside.mean()                      # ±1σ band: ~68 % expected
    assert np.mean(np.abs(N - truth) <= 2 * r.dos_error) >= 0.9
    assert np.max(np.abs(N - truth)) < 0.05                          # the coherence features are there
    # the gap structure: minimum inside Δ(1 − a), maxima near Δ(1 ± a) (anisotropic-s edges)
    assert N[np.abs(E) < 0.4].max() < 0.15
    assert r.noise == pytest.approx(SCALE * NOISE, rel=0.15)         # noise estimated from the residual


def test_forward_check_reproduces_the_data_within_its_noise():
    y = _data(seed=2)
    r = fitting.deconvolve(V, y, scale=SCALE, **CHAIN)
    # push the DOS back through the chain with a tabulated DOS: linearity lets a positive offset
    # k handle negative excursions, didv(N) = didv(N + k) − k·didv(1)
    k = max(0.0, -r.dos.min()) + 0.1
    back = (tunneling.didv(V, sample_dos=dos.tabulated(r.energies, r.dos + k), **CHAIN)
            - k * tunneling.didv(V, sample_dos=dos.tabulated(r.energies, np.ones(r.energies.size)), **CHAIN))
    back *= SCALE
    np.testing.assert_allclose(back, r.forward, atol=1e-9)
    resid = (y - back) / (SCALE * NOISE)
    chi2 = float(resid @ resid) / V.size
    assert (V.size - r.dof) / V.size * 0.85 < chi2 < 1.1, chi2       # χ² per point ≈ (n − tr H)/n
    assert abs(resid.mean()) < 4 / np.sqrt(V.size)                   # no systematic offset


def test_default_normalisation_and_lcurve():
    Vw = np.linspace(-8, 8, 800)
    truth = dos.bind("dynes", delta=0.8, gamma=0.05)
    g = tunneling.didv(Vw, sample_dos=truth, **CHAIN)
    y = 3.0 * (g + np.random.default_rng(3).normal(0.0, 0.005, Vw.size))
    r = fitting.deconvolve(Vw, y, **CHAIN)                           # outer 10 % of the grid → N = 1
    assert r.scale == pytest.approx(3.0 * np.mean(truth(r.energies[np.r_[:10, -10:0]])), rel=0.01)
    lc = fitting.deconvolve(Vw, y, method="lcurve", **CHAIN)
    assert lc.method == "lcurve" and np.max(np.abs(lc.dos - truth(lc.energies))) < 0.15


def test_regularised_solution_equals_a_dense_normal_equation_solve():
    Vs = np.linspace(-3, 3, 200)
    E = np.linspace(-1.6, 1.6, 40)
    y = tunneling.didv(Vs, sample_dos=TRUTH, **CHAIN) + np.random.default_rng(4).normal(0, 0.01, Vs.size)
    r = fitting.deconvolve(Vs, y, energies=E, lam=3.0, scale=1.0, **CHAIN)
    A = forward_matrix(Vs, E, **CHAIN)
    L = _second_difference(E.size)
    c = np.linalg.solve(A.T @ A + 3.0 * L.T @ L, A.T @ y)
    np.testing.assert_allclose(r.dos, c, atol=1e-6)
    # forward matrix columns: the chain applied to one hat function each
    e = np.zeros(E.size)
    e[7] = 1.0
    np.testing.assert_allclose(A[:, 7], tunneling.didv(Vs, sample_dos=dos.tabulated(E, e), **CHAIN), atol=1e-14)


@pytest.mark.parametrize("kw,match", [
    (dict(method="svd"), "method must be"), (dict(lam=-1.0), "lam must be"),
    (dict(energies=np.array([1.0, 0.5, 2.0])), "strictly increasing"), (dict(scale=0.0), "scale must be"),
    (dict(temperature=-1.0), "temperature")])
def test_bad_deconvolution_arguments(kw, match):
    args = {**CHAIN, **kw}
    with pytest.raises(ValueError, match=match):
        fitting.deconvolve(V[:200], _data()[:200], **args)
