"""Tunnelling spectra: dI/dV through the measurement chain (tip, temperature, lock-in).

Conventions (meV, mV, K; e = 1): V is the sample bias relative to the tip, and

    I(V) = ∫ dE N_t(E − eV) N_s(E) [f(E − eV) − f(E)],

normalised so that I = V for two normal electrodes; dI/dV → 1 in the normal state.
V > 0 probes empty sample states.

The three broadening stages compose on one uniform energy grid E_j = E₀ + j·h:

1. sample DOS as point values where the grid resolves Γ, else as exact *cell averages*
   (weight-conserving for any Γ, Γ = 0 included);
2. normal tip: convolution with the thermal kernel −f′ (hat-function weights);
   superconducting tip: I(V) by two FFT correlations, then dI/dV by a fourth-order difference;
3. lock-in (applied last): the first harmonic of I(V + a cos φ)/a as one convolution
   (φ-quadrature with 4-point interpolation, see :func:`lockin_kernel`).

The grid step h resolves the chain's kernels (see ``_grid_step``),
capped so that the grid never exceeds 2¹⁷ points; when the requested biases are uniform, the grid is
aligned so that they are grid points (no interpolation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import fft as _fft
from scipy.interpolate import CubicSpline

from . import _validate as _v
from . import sampling
from .constants import KB
from .dos import _dynes_anti_raw, _dynes_raw
from .specs import Spec

__all__ = ["didv", "current", "didv_weights", "didv_weights_cost", "significant_weights",
           "energy_grid", "fermi", "thermal_kernel",
           "lockin_kernel", "lockin",
           "peak_asymmetry", "resolution_fwhm", "DEFAULT_TIP_GAMMA", "CHAIN", "TEMPERATURE", "TIP_DELTA",
           "TIP_GAMMA", "VMOD_RMS"]

#: Default Dynes broadening of a superconducting tip, meV.
DEFAULT_TIP_GAMMA = 0.01
_N_MAX = 2 ** 17          # largest sample grid
_WEIGHTS_BLOCK = 2 ** 21  # elements of one block of didv_weights' temporaries (complex: 32 MiB)

# ----------------------------------------------------------------------------- parameters
TEMPERATURE: Spec = Spec("temperature", "T", "K", 0.32, (0.0, 10.0), (0.0, 300.0), 0.01,
                         "temperature of tip and sample")
TIP_DELTA: Spec = Spec("tip_delta", "Δ_t", "meV", 1.31, (0.0, 3.0), (0.0, 50.0), 0.01,
                 "gap of a superconducting tip (0: normal tip)")
TIP_GAMMA: Spec = Spec("tip_gamma", "Γ_t", "meV", DEFAULT_TIP_GAMMA, (0.0, 0.3), (0.0, 10.0), 0.001,
                 "Dynes broadening of the tip")
VMOD_RMS: Spec = Spec("vmod_rms", "V_mod", "mV rms", 0.02, (0.0, 0.5), (0.0, 20.0), 0.005,
                "lock-in modulation amplitude (rms; peak = √2 × rms)")
#: the measurement chain's parameters, in order
CHAIN: tuple[Spec, ...] = (TEMPERATURE, TIP_DELTA, TIP_GAMMA, VMOD_RMS)
_THERMAL_SPAN = 40.0      # kernel support in units of k_B T
_PAD_KT = 20.0            # grid margin in k_B T beyond the biases: Fermi factors there differ from 0, 1 by < 2e-9


# ---------------------------------------------------------------- elementary kernels
def fermi(E: np.ndarray | float, *, temperature: float) -> np.ndarray:
    """Fermi function f(E) = 1/(e^{E/k_BT} + 1); a step (½ at E = 0) for T = 0.  E in meV, T in K."""
    kT = KB * TEMPERATURE.check(temperature)
    E = np.asarray(E, dtype=float)
    if kT == 0.0:
        return np.where(E < 0, 1.0, np.where(E > 0, 0.0, 0.5))
    return 0.5 * (1.0 - np.tanh(0.5 * E / kT))


def _fermi_primitive(x: np.ndarray, kT: float) -> np.ndarray:
    """F(x) = ∫^x f = −k_BT ln(1 + e^{−x/k_BT}) (→ min(x, 0) as T → 0)."""
    if kT == 0.0:
        return np.minimum(x, 0.0)
    return -kT * np.logaddexp(0.0, -x / kT)


def _fermi_cells(x: np.ndarray, kT: float, h: float) -> np.ndarray:
    """Cell averages of f over [x − h/2, x + h/2]."""
    return (_fermi_primitive(x + 0.5 * h, kT) - _fermi_primitive(x - 0.5 * h, kT)) / h


def _hat_weights(cdf: Callable[[np.ndarray], np.ndarray], moment: Callable[[np.ndarray], np.ndarray],
                 h: float, k: int) -> np.ndarray:
    """w_j = ∫ K(u) φ_j(u) du for the hat functions φ_j centred at u = jh, j = −k…k.

    Exact for a spectrum that is piecewise linear between grid points.  ``cdf`` is ∫^u K,
    ``moment`` is ∫^u u′K(u′)du′.
    """
    j = np.arange(-k, k + 1, dtype=float)
    lo, mid, hi = (j - 1) * h, j * h, (j + 1) * h
    c_lo, c_mid, c_hi = cdf(lo), cdf(mid), cdf(hi)
    m_lo, m_mid, m_hi = moment(lo), moment(mid), moment(hi)
    w = ((m_mid - m_lo) / h - (j - 1) * (c_mid - c_lo)
         + (j + 1) * (c_hi - c_mid) - (m_hi - m_mid) / h)
    return w / w.sum()


def _delta_kernel() -> np.ndarray:
    return np.ones(1)


def thermal_kernel(h: float, *, temperature: float) -> np.ndarray:
    """Thermal kernel −f′ on a grid of step h (meV): hat-function weights summing to 1.

    −f′(u) = 1/(4k_BT cosh²(u/2k_BT)), support cut at ±40 k_BT; FWHM 2 ln(3 + 2√2) k_BT
    = 3.5255 k_BT.  Weights integrate −f′ against linear interpolation between grid points.
    """
    kT = KB * TEMPERATURE.check(temperature)
    if kT == 0.0:
        return _delta_kernel()
    k = int(np.ceil(_THERMAL_SPAN * kT / h)) + 1

    def cdf(u: np.ndarray) -> np.ndarray:            # ∫^u −f′ = 1 − f(u)
        return 0.5 * (1.0 + np.tanh(0.5 * u / kT))

    def moment(u: np.ndarray) -> np.ndarray:         # ∫^u x(−f′) dx = −u f(u) + ∫^u f
        return -u * (1.0 - cdf(u)) + _fermi_primitive(u, kT)

    return _hat_weights(cdf, moment, h, k)


def _thermal_weights(h: float, kT: float) -> np.ndarray:
    """Trapezoid weights h·(−f′)(jh), normalised, where k_BT ≥ 2h (spectrally accurate for
    nodal values of a smooth spectrum); hat-function weights (:func:`thermal_kernel`) otherwise."""
    if kT < 2.0 * h:
        return thermal_kernel(h, temperature=kT / KB)
    k = int(np.ceil(_THERMAL_SPAN * kT / h)) + 1
    u = h * np.arange(-k, k + 1)
    w = 1.0 / np.cosh(np.clip(0.5 * u / kT, -350.0, 350.0)) ** 2
    return w / w.sum()


def lockin_kernel(h: float, *, vmod_rms: float) -> np.ndarray:
    """Discrete lock-in operator on a grid of step h (mV): weights K_d summing to 1.

    The first harmonic of I(V + a cos φ), divided by a (a = √2·V_rms, V_rms the **rms**
    amplitude), is, after integration by parts,

        G_meas(V) = (1/π) ∫₀^{2π} G(V + a cos φ) sin²φ dφ = ∫ G(V − u) W(u) du,
        W(u) = (2/πa²) √(a² − u²),  FWHM √3 a = √6 V_rms.

    The φ-integral uses the periodic midpoint rule (exponentially convergent), and each
    G(V + a cos φ_m) is 4-point Lagrange interpolation between grid points, so the whole
    operator is one symmetric convolution, G_meas(V_q) = Σ_d K_d G_{q+d}.
    """
    vrms = VMOD_RMS.check(vmod_rms)
    a = np.sqrt(2.0) * vrms
    if a == 0.0:
        return _delta_kernel()
    m = int(np.clip(np.ceil(16.0 * a / h), 64, 2 ** 16))
    phi = (np.arange(m) + 0.5) * (2.0 * np.pi / m)
    w = (2.0 / m) * np.sin(phi) ** 2
    s = a * np.cos(phi) / h
    j0 = np.floor(s).astype(np.intp)
    t = s - j0
    lagrange = np.stack([-t * (t - 1) * (t - 2) / 6, (t + 1) * (t - 1) * (t - 2) / 2,
                         -(t + 1) * t * (t - 2) / 2, (t + 1) * t * (t - 1) / 6])   # nodes −1, 0, 1, 2
    k = int(np.ceil(a / h)) + 2
    kern = np.zeros(2 * k + 1)
    for i in range(4):
        np.add.at(kern, j0 + (i - 1) + k, w * lagrange[i])
    kern = 0.5 * (kern + kern[::-1])      # exact symmetry (round-off only)
    return kern / kern.sum()


def resolution_fwhm(*, temperature: float, vmod_rms: float = 0.0) -> float:
    """Approximate combined energy resolution √((3.5255 k_BT)² + (√6 V_rms)²), meV."""
    return float(np.hypot(3.5255 * KB * temperature, np.sqrt(6.0) * vmod_rms))


def _convolve_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    if w.size == 1:
        return x
    n = x.size + w.size - 1
    nf = _fft.next_fast_len(n, real=True)
    y = _fft.irfft(_fft.rfft(x, nf) * _fft.rfft(w, nf), nf)[:n]
    k = w.size // 2
    return y[k:k + x.size]


def lockin(V: np.ndarray, G: np.ndarray, *, vmod_rms: float) -> np.ndarray:
    """Apply lock-in modulation broadening to a spectrum G on a *uniform* bias grid V (mV).

    Uses :func:`lockin_kernel`; points within √2·V_rms of the ends see the spectrum held
    at its end values.
    """
    V = _v.array("V", V)
    G = _v.array("G", G)
    if V.ndim != 1 or V.shape != G.shape or V.size < 2:
        raise ValueError("V and G must be 1D arrays of the same length ≥ 2")
    h = float(V[1] - V[0])
    if h <= 0 or not np.allclose(np.diff(V), h, rtol=1e-6):
        raise ValueError("lockin() needs a uniform, increasing bias grid V")
    w = lockin_kernel(h, vmod_rms=vmod_rms)
    k = w.size // 2
    padded = np.concatenate([np.full(k, G[0]), G, np.full(k, G[-1])])
    return _convolve_same(padded, w)[k:k + G.size]


# ---------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class _Grid:
    e0: float         # energy of index 0
    h: float          # step
    n: int            # points
    take: np.ndarray | None   # indices of the requested biases (aligned case)

    @property
    def energies(self) -> np.ndarray:
        return self.e0 + self.h * np.arange(self.n)


def _plan(V: np.ndarray, *, lo: float, hi: float, h_target: float) -> _Grid:
    """Grid covering [lo, hi] with step ≤ h_target, aligned to V if V is uniform."""
    h_floor = (hi - lo) / (_N_MAX - 1)
    h = max(h_target, h_floor)
    flat = V.ravel()
    if flat.size >= 2:
        dv = np.diff(flat)
        dV = float(dv[0])
        if dV > 0 and np.allclose(dv, dV, rtol=1e-9, atol=1e-12):
            k = max(1, int(np.ceil(dV / h - 1e-9)))
            h_aligned = dV / k
            j_lo = int(np.floor((lo - flat[0]) / h_aligned))
            j_hi = int(np.ceil((hi - flat[0]) / h_aligned))
            n = j_hi - j_lo + 1
            if n <= 2 * _N_MAX:
                take = -j_lo + k * np.arange(flat.size)
                return _Grid(flat[0] + j_lo * h_aligned, h_aligned, n, take)
    # not aligned (or an aligned grid would be too long: biases far finer than the range needs): the
    # step h ≥ h_floor keeps the grid within _N_MAX points
    j_lo = int(np.floor(lo / h))
    j_hi = int(np.ceil(hi / h))
    return _Grid(j_lo * h, h, j_hi - j_lo + 1, None)


def _derivative(y: np.ndarray, h: float) -> np.ndarray:
    """dy/dx on a uniform grid: fourth-order centred stencil, second order at the ends."""
    d = np.gradient(y, h)
    if y.size >= 5:
        d[2:-2] = (y[:-4] - 8.0 * y[1:-3] + 8.0 * y[3:-1] - y[4:]) / (12.0 * h)
    return d


def _sample_cells(sample_dos: Callable, E: np.ndarray, h: float) -> np.ndarray:
    """The sample DOS on the grid, per the sample-DOS contract (:mod:`.sampling`)."""
    return sampling.grid_values(sample_dos, E, h)


def _tip_cells(x: np.ndarray, delta: float, gamma: float, h: float) -> np.ndarray:
    if delta == 0.0:
        return np.ones_like(x)
    if gamma >= 2.0 * h:
        return _dynes_raw(x, delta, gamma)
    a = _dynes_anti_raw(np.concatenate([x - 0.5 * h, x[-1:] + 0.5 * h]), delta, gamma)
    return np.diff(a) / h


def _check(V: Any, sample_dos: Any, temperature: float, tip_delta: float, tip_gamma: float,
           vmod_rms: float) -> tuple[np.ndarray, float, float, float, float]:
    if not callable(sample_dos):
        raise ValueError("sample_dos must be a vectorised callable E → N(E), e.g. "
                         "dos.bind('dynes', delta=1.3, gamma=0.02)")
    V = _v.array("V", V)
    if V.size == 0:
        raise ValueError("V must contain at least one bias")
    T = TEMPERATURE.check(temperature)
    td = TIP_DELTA.check(tip_delta)
    tg = TIP_GAMMA.check(tip_gamma)
    vm = VMOD_RMS.check(vmod_rms)
    return V, T, td, tg, vm


def _grid_step(kT: float, td: float, tg: float, vm: float, span: float, sample_width: float | None) -> float:
    """Step of the energy grid (meV): fine enough for every kernel the sample DOS meets.

    The sample enters only through cell averages or hat projections (exact, declared-width
    point values, or adaptive, see :mod:`.sampling`), which are accurate on any grid that
    resolves the kernel they are integrated against, so the sample's own Γ never refines the
    grid.  The thermal and lock-in kernels meet the nodal values as a smooth spectrum: a sixth
    of k_BT or V_mod keeps that at ~1e-5 of the curve.  A superconducting tip's DOS is
    point-sampled in a product with the sample: where the sample declares a width ≥ ⅔Γ_t the
    product is smooth on the grid and Γ_t/3 is spectrally accurate; otherwise (a sample peak
    far narrower than the tip's) the quadrature is second order and Γ_t/8 keeps it at
    ≲ 1.5e-4 of the SIS peak (both measured against adaptive quadrature in the tests).
    One exception: with a normal tip at T = 0 the lock-in sees the sample DOS
    itself, which must then be resolved on its own declared scale.
    """
    steps = [x / 6.0 for x in (kT, vm) if x > 0.0]
    if td > 0.0 and tg > 0.0:
        smooth = sample_width is not None and sample_width >= 2.0 * tg / 3.0
        steps.append(tg / 3.0 if smooth else tg / 8.0)
    if td == 0.0 and kT == 0.0 and vm > 0.0 and sample_width:
        steps.append(sample_width / 6.0)
    h = min(steps) if steps else span / 4000.0
    return min(h, span / 400.0)


def _spectrum(V: np.ndarray, sample_dos, T, td, tg, vm, *, want_current: bool) -> np.ndarray:
    kT = KB * T
    if kT == 0.0 and vm == 0.0 and td == 0.0 and not want_current:
        exact = np.asarray(sample_dos(V), dtype=float)   # the T → 0 limit: G = N_s(V)
        if exact.shape == V.shape and np.all(np.isfinite(exact)):
            return exact
    a = np.sqrt(2.0) * vm
    vlo, vhi = float(V.min()) - a, float(V.max()) + a
    span = max(vhi - vlo, abs(vlo), abs(vhi), 10.0 * max(td, 1e-3))
    h_target = _grid_step(kT, td, tg, vm, span, sampling.declared_width(sample_dos))
    pad = _PAD_KT * kT + a + 4.0 * h_target
    sis = td > 0.0 or want_current
    if sis:   # the E-integral of I(V) runs over [min(0, V), max(0, V)] ± 40 k_BT
        lo, hi = min(0.0, vlo) - pad, max(0.0, vhi) + pad
    else:
        lo, hi = vlo - pad, vhi + pad
    g = _plan(V, lo=lo, hi=hi, h_target=h_target)
    h, E = g.h, g.energies
    ns = _sample_cells(sample_dos, E, h)

    if sis:
        L = g.n
        x = h * np.arange(-(L - 1), L)                     # tip energies E_j − V_q
        nt = _tip_cells(x, td, tg, h)
        ft = _fermi_cells(x, kT, h)
        fs = _fermi_cells(E, kT, h)
        nf = _fft.next_fast_len(3 * L - 2, real=True)
        spec = (_fft.rfft(ns, nf) * _fft.rfft((nt * ft)[::-1], nf)
                - _fft.rfft(ns * fs, nf) * _fft.rfft(nt[::-1], nf))
        I = h * _fft.irfft(spec, nf)[L - 1:2 * L - 1]
        if want_current:
            out = I
        else:
            out = _derivative(I, h)
    else:
        out = _convolve_same(ns, _thermal_weights(h, kT))
    if not want_current and vm > 0.0:
        out = _convolve_same(out, lockin_kernel(h, vmod_rms=vm))
    if g.take is not None:
        res = out[g.take]
    else:
        res = CubicSpline(E, out)(V.ravel())
    return res.reshape(V.shape)


# ---------------------------------------------------------------------- public API
def didv(V: np.ndarray | float, *, sample_dos: Callable[[np.ndarray], np.ndarray], temperature: float,
         tip_delta: float = 0.0, tip_gamma: float = DEFAULT_TIP_GAMMA, vmod_rms: float = 0.0) -> np.ndarray:
    """Normalised differential conductance dI/dV at sample biases V.

    Normal tip (Δ_t = 0):   G(V) = ∫ dE N_s(E) [−f′(E − eV)].
    Superconducting tip:    G(V) = d/dV ∫ dE N_t(E − eV) N_s(E) [f(E − eV) − f(E)],
    N_t = Dynes(Δ_t, Γ_t).  Lock-in modulation is applied last (see :func:`lockin_kernel`):
    G_meas = W_{V_rms} ⊛ G.  G → 1 in the normal state; SIS coherence peaks sit at
    e|V| = Δ_t + Δ_s; in-gap sample states at ε appear at eV = ±(Δ_t + |ε|).

    Parameters
    ----------
    V : array_like
        Sample biases, mV (any shape; uniform 1D grids are fastest and exact on the grid).
    sample_dos : callable
        Vectorised E → N_s(E), normalised to 1 far from the gap.  A :class:`~gapscope.kernels.dos.SampleDOS`
        from :func:`~gapscope.kernels.dos.bind` is sampled by exact cell averages.
    temperature : float
        Temperature T ≥ 0 of tip and sample, K.  T = 0 gives G = N_s(V) for a normal tip.
    tip_delta : float
        Tip gap Δ_t ≥ 0, meV; 0 means a normal-metal tip.
    tip_gamma : float
        Dynes broadening Γ_t ≥ 0 of the tip, meV.
    vmod_rms : float
        Lock-in modulation amplitude as an **rms** value, mV (peak amplitude √2·V_rms).

    Returns
    -------
    ndarray
        dI/dV normalised to the normal state, shape of ``V``.
    """
    V, T, td, tg, vm = _check(V, sample_dos, temperature, tip_delta, tip_gamma, vmod_rms)
    return _spectrum(np.atleast_1d(V), sample_dos, T, td, tg, vm, want_current=False).reshape(V.shape)


def current(V: np.ndarray | float, *, sample_dos: Callable[[np.ndarray], np.ndarray], temperature: float,
            tip_delta: float = 0.0, tip_gamma: float = DEFAULT_TIP_GAMMA) -> np.ndarray:
    """Normalised tunnelling current I(V) (I = V for normal electrodes), V in mV.

    I(V) = ∫ dE N_t(E − eV) N_s(E) [f(E − eV) − f(E)], N_t = Dynes(Δ_t, Γ_t) or 1.
    Parameters as in :func:`didv`.  Large-bias limit: I ≈ V − (Δ_t² + Δ_s²)/(2V).
    """
    V, T, td, tg, _ = _check(V, sample_dos, temperature, tip_delta, tip_gamma, 0.0)
    return _spectrum(np.atleast_1d(V), sample_dos, T, td, tg, 0.0, want_current=True).reshape(V.shape)


def energy_grid(V: np.ndarray | float, *, temperature: float, tip_delta: float = 0.0,
                tip_gamma: float = DEFAULT_TIP_GAMMA, vmod_rms: float = 0.0, sample_gamma: float = 0.0,
                span_kT: float = 20.0) -> np.ndarray:
    """Uniform sample energies (meV) that carry the weight of dI/dV at the biases V.

    Step: a third of the narrowest broadening (as in :func:`didv`); range: [min(0, V), max(0, V)]
    widened by √2·V_rms and ``span_kT``·k_BT (the Fermi factors beyond 20 k_BT are < 2e-9).
    Use with :func:`didv_weights` when the sample DOS is expensive (maps).
    """
    V = _v.array("V", np.atleast_1d(V))
    T = TEMPERATURE.check(temperature)
    td = TIP_DELTA.check(tip_delta)
    tg = TIP_GAMMA.check(tip_gamma)
    vm = VMOD_RMS.check(vmod_rms)
    gs = TIP_GAMMA.replace(name="sample_gamma").check(sample_gamma)
    kT = KB * T
    widths = [x for x in (kT, vm, gs, tg if td > 0 else 0.0) if x > 0]
    a = np.sqrt(2.0) * vm
    lo = min(0.0, float(V.min()) - a) - span_kT * kT
    hi = max(0.0, float(V.max()) + a) + span_kT * kT
    if td == 0.0:   # normal tip: only |E − V| ≲ span k_BT + a matters
        lo = float(V.min()) - a - span_kT * kT
        hi = float(V.max()) + a + span_kT * kT
    if widths:
        h = min(widths) / 3.0
    else:                 # no broadening at all (normal tip, T = 0, no lock-in): a few points around each V
        h = 1e-3 / 3.0
        lo, hi = lo - 2.0 * h, hi + 2.0 * h
    n = max(5, int(np.ceil((hi - lo) / h)) + 1)
    return np.linspace(lo, hi, min(n, _N_MAX))


def didv_weights(V: np.ndarray | float, E: np.ndarray, *, temperature: float, tip_delta: float = 0.0,
                 tip_gamma: float = DEFAULT_TIP_GAMMA, vmod_rms: float = 0.0) -> np.ndarray:
    """Linear weights w (len(V), len(E)) with dI/dV(V) ≈ w @ N_s(E) on a uniform grid E.

    The measurement chain is linear in the sample DOS, so a map at one bias is a weighted
    sum of LDOS maps at the energies E (trapezoid rule, step h):

    * normal tip:  w_j(V) = h·(−f′)(E_j − V);
    * SC tip:      w_j(V) = h·∂_V { N_t(E_j − V) [f(E_j − V) − f(E_j)] } (fourth-order difference);
    * lock-in:     w(V) → Σ_m (2/M) sin²φ_m · w(V + √2 V_rms cos φ_m).

    Units: V in mV, E in meV, T in K; returns weights in 1 (dimensionless per DOS unit).
    """
    V = _v.array("V", np.atleast_1d(V)).ravel()
    E = _v.array("E", E).ravel()
    T = TEMPERATURE.check(temperature)
    td = TIP_DELTA.check(tip_delta)
    tg = TIP_GAMMA.check(tip_gamma)
    vm = VMOD_RMS.check(vmod_rms)
    if E.size < 2:
        raise ValueError("E must be a uniform grid of at least two energies")
    h = float(E[1] - E[0])
    kT = KB * T
    a = np.sqrt(2.0) * vm
    if a > 0:
        m = int(np.clip(np.ceil(8.0 * a / h), 16, 512))
        phi = (np.arange(m) + 0.5) * (2.0 * np.pi / m)
        shifts, cw = a * np.cos(phi), (2.0 / m) * np.sin(phi) ** 2
    else:
        shifts, cw = np.zeros(1), np.ones(1)

    def fermi_(x: np.ndarray) -> np.ndarray:
        if kT == 0.0:
            return np.where(x < 0, 1.0, np.where(x > 0, 0.0, 0.5))
        return 0.5 * (1.0 - np.tanh(0.5 * x / kT))

    d = 0.5 * min(x for x in (tg, kT, h) if x > 0) if any(x > 0 for x in (tg, kT)) else 0.5 * h

    def K(v: np.ndarray) -> np.ndarray:
        x = E[None, :] - v[:, None]
        if tg >= 2.0 * h:
            nt = _dynes_raw(x, td, tg)
        else:         # a tip sharper than the grid (Γ_t → 0, BCS): cell averages keep its weight
            nt = (_dynes_anti_raw(x + 0.5 * h, td, tg) - _dynes_anti_raw(x - 0.5 * h, td, tg)) / h
        return h * nt * (fermi_(x) - fermi_(E)[None, :])

    def rows(Vs: np.ndarray) -> np.ndarray:
        """Weights of the chain without the lock-in at the biases Vs, (len(Vs), len(E))."""
        if td == 0.0:
            if kT == 0.0:   # −f′ is a δ: linear interpolation weights
                return np.clip(1.0 - np.abs(E[None, :] - Vs[:, None]) / h, 0.0, None)
            x = E[None, :] - Vs[:, None]
            return h / (4.0 * kT * np.cosh(np.clip(0.5 * x / kT, -350, 350)) ** 2)
        return (K(Vs - 2 * d) - 8 * K(Vs - d) + 8 * K(Vs + d) - K(Vs + 2 * d)) / (12.0 * d)

    # the lock-in phases in blocks: the temporaries stay ~_WEIGHTS_BLOCK elements (not V × phases × E)
    out = np.zeros((V.size, E.size))
    step = max(1, _WEIGHTS_BLOCK // max(V.size * E.size, 1))
    for lo in range(0, shifts.size, step):
        s = shifts[lo:lo + step]
        w = rows((V[:, None] + s[None, :]).ravel())
        out += (w.reshape(V.size, s.size, E.size) * cw[lo:lo + step][None, :, None]).sum(axis=1)
    return out


def significant_weights(weights: np.ndarray, *, tolerance: float = 1e-8) -> np.ndarray:
    """Mask of the weights a sum Σ_j w_j ρ(E_j) needs: all but the smallest, whose |w_j| together are
    at most ``tolerance``·Σ|w|.

    The error of the pruned sum is then at most ``tolerance``·Σ|w|·max ρ, whatever the shape of the
    tails.  With a superconducting tip the weights alternate in sign (Σ|w| ≈ 7 for Σw ≈ 1.3 at 1.4 K)
    and an in-gap conductance is ~1e-3 of the peaks: a cut of each |w_j| below 1e-4·max|w| there gave
    the wrong sign, a total tolerance of 1e-4 a 27 % error, 1e-8 agrees to 3e-5.  All False for
    all-zero weights.
    """
    a = np.abs(_v.array("weights", weights).ravel())
    tol = _v.scalar("tolerance", tolerance, "", minimum=0.0)
    keep = np.ones(a.size, dtype=bool)
    if not np.any(a):
        return ~keep
    order = np.argsort(a, kind="stable")
    keep[order[np.cumsum(a[order]) <= tol * a.sum()]] = False
    return keep


def didv_weights_cost(V: np.ndarray | float, E: np.ndarray, *, tip_delta: float = 0.0, vmod_rms: float = 0.0) -> int:
    """Work of :func:`didv_weights` before computing it: kernel evaluations, len(V) × lock-in phases ×
    len(E), four times that with a superconducting tip (its fourth-order difference in V).

    The lock-in phases are 16…512 (8·√2·V_rms/h, h the step of E), 1 without modulation.
    """
    n_v = _v.array("V", np.atleast_1d(V)).size
    E = _v.array("E", E).ravel()
    td = TIP_DELTA.check(tip_delta)
    a = np.sqrt(2.0) * VMOD_RMS.check(vmod_rms)
    h = float(E[1] - E[0]) if E.size >= 2 else 1.0
    phases = int(np.clip(np.ceil(8.0 * a / h), 16, 512)) if a > 0 else 1
    return n_v * phases * E.size * (4 if td > 0 else 1)


def peak_asymmetry(V: np.ndarray, G: np.ndarray, *, background: float = 1.0,
                   abs_bias_range: tuple[float, float] | None = None) -> dict[str, float]:
    """Coherence-peak asymmetry A = (G_peak − G_bg)/(G_peak + G_bg), the measure Lin et al. use
    for Pb(111) and the Ni–Pb alloy (see ``references.cite("lin2021_nipb")``).

    G_peak is the maximum of G on each bias side (optionally within |V| ∈ ``abs_bias_range``, mV);
    G_bg is the normal-state background (1 for normalised spectra).

    Returns
    -------
    dict
        ``{"negative": A₋, "positive": A₊, "mean": (A₋ + A₊)/2, "v_negative": V₋, "v_positive": V₊}``
        with the peak biases in mV.
    """
    V = _v.array("V", V).ravel()
    G = _v.array("G", G).ravel()
    bg = _v.scalar("background", background, "", minimum=0.0, strict=True)
    if V.shape != G.shape:
        raise ValueError("V and G must have the same length")
    lo, hi = abs_bias_range if abs_bias_range is not None else (0.0, np.inf)
    out: dict[str, float] = {}
    for side, mask in (("negative", V < 0), ("positive", V > 0)):
        m = mask & (np.abs(V) >= lo) & (np.abs(V) <= hi)
        if not np.any(m):
            raise ValueError(f"no {side} biases with |V| in {abs_bias_range} mV")
        i = np.flatnonzero(m)[np.argmax(G[m])]
        out[side] = float((G[i] - bg) / (G[i] + bg))
        out["v_" + side] = float(V[i])
    out["mean"] = 0.5 * (out["negative"] + out["positive"])
    return out
