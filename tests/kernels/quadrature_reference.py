"""Independent references for the tunnelling chain: adaptive quadrature (scipy.integrate.quad).

Nothing here uses gapscope's grids, cell averages, FFTs or lock-in operator: each dI/dV value is
an integral over energy evaluated by QUADPACK with break points at the features, and lock-in
broadening is the first-harmonic integral of that curve over the modulation phase.
Units: meV, mV, K.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
from scipy import integrate

KB = 0.08617333262  # meV/K


def dynes(E, delta, gamma):
    """Re (1 − Δ²/z²)^(−1/2), z = E + iΓ (principal root: the retarded branch)."""
    z = np.asarray(E, dtype=complex) + 1j * gamma
    return np.real(1.0 / np.sqrt(1.0 - delta * delta / (z * z)))


def dynes_prime(E, delta, gamma):
    """dN/dE of the Dynes DOS: N = Re (1 − Δ²/z²)^(−1/2) ⇒ N' = Re[−Δ²/z³ (1 − Δ²/z²)^(−3/2)]."""
    z = np.asarray(E, dtype=complex) + 1j * gamma
    return np.real(-(delta * delta) / z ** 3 * (1.0 - delta * delta / (z * z)) ** -1.5)


def fermi(x, kT):
    return 0.5 * (1.0 - np.tanh(0.5 * np.asarray(x) / kT))


def minus_fprime(x, kT):
    return 0.25 / kT / np.cosh(np.clip(0.5 * np.asarray(x) / kT, -300, 300)) ** 2


def _quad(f, lo, hi, points):
    pts = sorted(p for p in set(points) if lo < p < hi)
    edges = [lo, *pts, hi]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        total += integrate.quad(f, a, b, limit=400, epsabs=1e-11, epsrel=1e-10)[0]
    return total


def didv_normal(V, sample, kT, features):
    """∫ N_s(E) (−f′(E − V)) dE."""
    out = []
    for v in np.atleast_1d(V):
        span = 40.0 * kT
        pts = [p for p in features] + [v - kT, v, v + kT]
        out.append(_quad(lambda E, v=v: sample(E) * minus_fprime(E - v, kT), v - span, v + span, pts))
    return np.array(out)


def didv_sis(V, sample, kT, tip_delta, tip_gamma, features):
    """dI/dV = ∫ N_s(E) ∂_V[N_t(E − V)(f(E − V) − f(E))] dE, the V-derivative taken analytically."""
    out = []
    for v in np.atleast_1d(V):
        lo, hi = min(0.0, v) - 40.0 * kT, max(0.0, v) + 40.0 * kT
        pts = list(features) + [v + tip_delta, v - tip_delta, v, 0.0]
        pts += [p + s * tip_gamma for p in (v + tip_delta, v - tip_delta) for s in (-3, -1, 1, 3)]

        def integrand(E, v=v):
            x = E - v
            nt = dynes(x, tip_delta, tip_gamma)
            dnt = dynes_prime(x, tip_delta, tip_gamma)
            # ∂_V [N_t(E − V)(f(E − V) − f(E))] = −N_t'(x)(f(x) − f(E)) + N_t(x)(−f′(x)),  x = E − V
            return sample(E) * (-dnt * (fermi(x, kT) - fermi(E, kT)) + nt * minus_fprime(x, kT))

        out.append(_quad(integrand, lo, hi, pts))
    return np.array(out)


def lockin_first_harmonic(Gfunc, V, vmod_rms, n_phi=400):
    """(1/π)∫₀^{2π} G(V + a cos φ) sin²φ dφ with a = √2·V_rms, periodic midpoint rule in φ."""
    a = np.sqrt(2.0) * vmod_rms
    if a == 0:
        return Gfunc(np.asarray(V))
    phi = (np.arange(n_phi) + 0.5) * 2 * np.pi / n_phi
    Vq = (np.asarray(V)[:, None] + a * np.cos(phi)[None, :])
    G = Gfunc(Vq.ravel()).reshape(Vq.shape)
    return (G * (2.0 / n_phi) * np.sin(phi) ** 2).sum(axis=1)


# ------------------------------------------------------------------ scalar fast paths
# The same integrals as above with pure-Python (math/cmath) integrands: QUADPACK calls the
# integrand with one float at a time, where numpy's per-call overhead dominates (~8× slower).
# ``sample`` must then be a scalar function float → float as well (e.g. :func:`dynes_scalar`).
def dynes_scalar(delta, gamma):
    """Scalar E ↦ Re (1 − Δ²/z²)^(−1/2), z = E + iΓ (principal root), as :func:`dynes`."""
    d2 = float(delta) ** 2
    g = float(gamma)

    def n(E):
        z = complex(E, g)
        return (1.0 / cmath.sqrt(1.0 - d2 / (z * z))).real
    return n


def _fermi_s(x, kT):
    return 0.5 * (1.0 - math.tanh(0.5 * x / kT))


def _minus_fprime_s(x, kT):
    return 0.25 / kT / math.cosh(max(-300.0, min(300.0, 0.5 * x / kT))) ** 2


def didv_normal_scalar(V, sample, kT, features):
    """As :func:`didv_normal` (same break points, same tolerances), scalar ``sample``."""
    out = []
    for v in np.atleast_1d(V):
        v = float(v)
        span = 40.0 * kT
        pts = [p for p in features] + [v - kT, v, v + kT]
        out.append(_quad(lambda E, v=v: sample(E) * _minus_fprime_s(E - v, kT), v - span, v + span, pts))
    return np.array(out)


def didv_sis_scalar(V, sample, kT, tip_delta, tip_gamma, features):
    """As :func:`didv_sis` (same integrand, break points, tolerances), scalar ``sample``."""
    d2 = float(tip_delta) ** 2
    tg = float(tip_gamma)
    out = []
    for v in np.atleast_1d(V):
        v = float(v)
        lo, hi = min(0.0, v) - 40.0 * kT, max(0.0, v) + 40.0 * kT
        pts = list(features) + [v + tip_delta, v - tip_delta, v, 0.0]
        pts += [p + s * tip_gamma for p in (v + tip_delta, v - tip_delta) for s in (-3, -1, 1, 3)]

        def integrand(E, v=v):
            x = E - v
            z = complex(x, tg)
            w = 1.0 - d2 / (z * z)
            nt = (1.0 / cmath.sqrt(w)).real
            dnt = (-d2 / z ** 3 * w ** -1.5).real
            return sample(E) * (-dnt * (_fermi_s(x, kT) - _fermi_s(E, kT)) + nt * _minus_fprime_s(x, kT))

        out.append(_quad(integrand, lo, hi, pts))
    return np.array(out)
