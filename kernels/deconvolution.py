"""Sample DOS from a measured dI/dV with a known (superconducting) tip: regularised deconvolution.

The measurement chain is linear in the sample DOS (:mod:`.tunneling`).  Writing the DOS as a
piecewise-linear function on an energy grid E_k (the interpolant of :func:`gapscope.kernels.dos.tabulated`,
held at its end values beyond the grid),

    N(E) = Σ_k c_k φ_k(E),   φ_k the hat functions (the two end ones extended flat),

the data are y ≈ A c with the **forward matrix** A_qk = scale · didv(V_q; sample_dos = φ_k, T, Δ_t, Γ_t, V_rms)
— each column is the tunnelling chain applied to one basis function.  The ill-posed inversion is
Tikhonov-regularised with the second-difference (curvature) operator L:

    ĉ(λ) = argmin ‖W(y − A c)‖² + λ ‖L c‖²,   W = diag(1/σ_q),

solved for all λ at once by the generalised eigen-decomposition of (AᵀW²A, LᵀL + εI).  λ is
chosen by generalised cross-validation, GCV(λ) = n ‖W r‖² / (n − tr H)², or by the corner
(largest curvature) of the L-curve (log ‖W r‖, log ‖L c‖).  The noise is estimated from the
residual, σ̂² = ‖W r‖²/(n − tr H) (or taken from ``sigma``), and the confidence band is the
±1σ band of the **regularised posterior covariance** C = σ̂² (AᵀW²A + λ LᵀL)⁻¹ (the Bayesian
posterior of a Gaussian smoothness prior; it includes the prior spread, so it also covers most
of the smoothing bias, unlike the frequentist covariance of ĉ).

Normalisation: the conductance scale is unknown in measured data, so the coefficients ĉ are
``scale · N``; unless ``scale`` is given, N is normalised so that its mean over the outer 10 %
of the energy grid (both ends together) is 1 (the normal state), and the band is divided by the
same number (the uncertainty of the scale itself is not propagated).  Units: mV, meV, K.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import linalg

from . import tunneling
from .dos import TabulatedDOS, tabulated

__all__ = ["deconvolve", "Deconvolution", "forward_matrix"]


@dataclass
class Deconvolution:
    """Result of :func:`deconvolve`; unpacks as ``energies, dos, dos_low, dos_high``.

    Attributes
    ----------
    energies : ndarray
        The energy grid E_k, meV.
    dos, dos_low, dos_high : ndarray
        Recovered sample DOS (normalised) and its ±1σ band (regularised posterior covariance).
    dos_error : ndarray
        The 1σ half-width of the band.
    lam : float
        Regularisation strength λ used.
    method : str
        "gcv", "lcurve" or "given".
    noise : float
        Noise σ̂ estimated from the residual (data units); with ``sigma`` given, the factor
        √(χ²/(n − tr H)) by which the given errors are off.
    scale : float
        Conductance scale (data units per normalised unit), found or given.
    dof : float
        Effective number of parameters tr H.
    forward, residual : ndarray
        Model dI/dV of the recovered DOS at ``bias`` (data units) and data − model.
    lambdas, criterion : ndarray
        The λ grid and the GCV values (or L-curve curvature) on it.
    """

    energies: np.ndarray
    dos: np.ndarray
    dos_low: np.ndarray
    dos_high: np.ndarray
    dos_error: np.ndarray
    lam: float
    method: str
    noise: float
    scale: float
    dof: float
    forward: np.ndarray
    residual: np.ndarray
    bias: np.ndarray
    data: np.ndarray
    lambdas: np.ndarray = field(default_factory=lambda: np.zeros(0))
    criterion: np.ndarray = field(default_factory=lambda: np.zeros(0))
    elapsed: float = 0.0
    covariance: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __iter__(self) -> Any:
        return iter((self.energies, self.dos, self.dos_low, self.dos_high))

    def sample_dos(self) -> TabulatedDOS:
        """The recovered DOS as a tabulated sample DOS (negative values clipped to 0)."""
        return tabulated(self.energies, np.clip(self.dos, 0.0, None))


def forward_matrix(bias: np.ndarray, energies: np.ndarray, *, temperature: float, tip_delta: float,
                   tip_gamma: float, vmod_rms: float = 0.0) -> np.ndarray:
    """A_qk = didv(V_q; sample_dos = φ_k): the chain applied to each hat function of the grid ``energies``.

    φ_k is the tabulated DOS with values e_k (1 at E_k, 0 elsewhere), i.e. the hat function of
    :func:`gapscope.kernels.dos.tabulated`'s interpolant (the end ones extended flat), so for any
    c ≥ 0, ``A @ c == tunneling.didv(V, sample_dos=dos.tabulated(energies, c), ...)``.
    Shape (len(bias), len(energies)); biases in mV, energies in meV (strictly increasing).
    """
    V = np.asarray(bias, dtype=float).ravel()
    E = np.asarray(energies, dtype=float).ravel()
    if E.size < 3 or np.any(np.diff(E) <= 0):
        raise ValueError("energies must be a strictly increasing grid of at least 3 energies (meV)")
    A = np.empty((V.size, E.size))
    e = np.zeros(E.size)
    for k in range(E.size):
        e[:] = 0.0
        e[k] = 1.0
        A[:, k] = tunneling.didv(V, sample_dos=tabulated(E, e), temperature=temperature, tip_delta=tip_delta,
                                 tip_gamma=tip_gamma, vmod_rms=vmod_rms)
    return A


def _default_energies(V: np.ndarray, tip_delta: float, n_energies: int | None) -> np.ndarray:
    lo, hi = float(V.min()) + tip_delta, float(V.max()) - tip_delta
    if hi - lo < 0.2 * (V.max() - V.min()):       # bias range barely beyond the tip gap: use it all
        lo, hi = float(V.min()), float(V.max())
    if n_energies is None:
        dv = (V.max() - V.min()) / max(V.size - 1, 1)
        step = max(2.0 * dv, (hi - lo) / 200.0)
        n_energies = int(np.clip(round((hi - lo) / step) + 1, 21, 401))
    return np.linspace(lo, hi, int(n_energies))


def _second_difference(n: int) -> np.ndarray:
    L = np.zeros((n - 2, n))
    i = np.arange(n - 2)
    L[i, i], L[i, i + 1], L[i, i + 2] = 1.0, -2.0, 1.0
    return L


def deconvolve(bias: np.ndarray, didv: np.ndarray, *, temperature: float, tip_delta: float, tip_gamma: float,
               vmod_rms: float = 0.0, energies: np.ndarray | None = None, n_energies: int | None = None,
               sigma: np.ndarray | float | None = None, method: str = "gcv", lam: float | None = None,
               scale: float | None = None, n_lambda: int = 80) -> Deconvolution:
    """Recover the sample DOS from a measured dI/dV and a known tip (Tikhonov, λ by GCV or L-curve).

    Model (see the module docstring): y_q = scale · Σ_k A_qk N_k + noise, with A the chain applied
    to hat functions on the grid E_k; penalty λ‖L N‖², L the second difference.

    Parameters
    ----------
    bias, didv : array_like
        Biases (mV) and measured conductance (any unit); NaN points are dropped.
    temperature : float
        T of tip and sample, K.
    tip_delta, tip_gamma : float
        Gap Δ_t and Dynes broadening Γ_t of the tip, meV (Δ_t = 0: normal tip).
    vmod_rms : float
        Lock-in modulation, mV rms.
    energies : array_like, optional
        The energy grid of the DOS (meV, increasing).  Default: [min V + Δ_t, max V − Δ_t] (the
        energies an SIS spectrum probes) with a step of 2 bias steps but at most ~201 points.
    n_energies : int, optional
        Number of points of the default grid.
    sigma : float or array, optional
        Errors of the data; default: estimated from the residual.
    method : {"gcv", "lcurve"}
        How λ is chosen (ignored when ``lam`` is given).
    lam : float, optional
        A fixed regularisation strength (in units of the weighted data squared).
    scale : float, optional
        Conductance scale (data units per normalised DOS unit); default: normalise N to 1 at
        the outer 10 % of the energy grid.
    n_lambda : int
        Number of λ values scanned (log-spaced over 14 decades).

    Returns
    -------
    Deconvolution
        Unpacks as ``energies, dos, dos_low, dos_high`` (meV, normalised DOS).
    """
    t0 = time.perf_counter()
    T = tunneling.TEMPERATURE.check(temperature)
    td = tunneling.TIP_DELTA.check(tip_delta)
    tg = tunneling.TIP_GAMMA.check(tip_gamma)
    vm = tunneling.VMOD_RMS.check(vmod_rms)
    V = np.asarray(bias, dtype=float).ravel()
    y = np.asarray(didv, dtype=float).ravel()
    if V.shape != y.shape:
        raise ValueError(f"bias and didv have different lengths ({V.size} and {y.size})")
    if not np.all(np.isfinite(V)):
        raise ValueError("bias contains NaN or inf")
    if method not in ("gcv", "lcurve"):
        raise ValueError(f"method must be 'gcv' or 'lcurve', got {method!r}")
    keep = np.isfinite(y)
    if keep.sum() < 10:
        raise ValueError("deconvolve needs at least 10 finite data points")
    E = _default_energies(V[keep], td, n_energies) if energies is None else np.asarray(energies, float).ravel()
    if E.size < 3 or not np.all(np.isfinite(E)) or np.any(np.diff(E) <= 0):
        raise ValueError("energies must be a finite, strictly increasing grid of at least 3 energies (meV)")
    if E.size > keep.sum():
        raise ValueError(f"{E.size} energies for {int(keep.sum())} data points: use fewer energies")
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise ValueError("scale must be finite and > 0")
    if lam is not None and not (math.isfinite(lam) and lam > 0):
        raise ValueError("lam must be finite and > 0")
    s = np.ones(V.size) if sigma is None else np.broadcast_to(np.asarray(sigma, dtype=float), V.shape).copy()
    if np.any(~np.isfinite(s[keep])) or np.any(s[keep] <= 0):
        raise ValueError("sigma must be finite and > 0")

    A = forward_matrix(V, E, temperature=T, tip_delta=td, tip_gamma=tg, vmod_rms=vm)
    Aw = A[keep] / s[keep, None]
    yw = y[keep] / s[keep]
    n = yw.size
    Lm = _second_difference(E.size)
    M = Lm.T @ Lm
    M += 1e-10 * np.trace(M) / E.size * np.eye(E.size)      # tiny ridge: makes M positive definite
    G = Aw.T @ Aw
    ev, W = linalg.eigh(G, M)                                 # Wᵀ G W = diag(ev), Wᵀ M W = 1
    ev = np.clip(ev, 0.0, None)
    z = W.T @ (Aw.T @ yw)
    yy = float(yw @ yw)

    def stats(lmb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lmb = np.atleast_1d(lmb)[:, None]
        f = 1.0 / (ev[None, :] + lmb)
        rss = yy - 2.0 * (z * z * f).sum(1) + (ev * z * z * f * f).sum(1)
        trh = (ev[None, :] * f).sum(1)
        pen = (z * z * f * f).sum(1)            # cᵀMc ≈ ‖Lc‖²
        return np.maximum(rss, 1e-300), trh, np.maximum(pen, 1e-300)

    top = float(ev.max()) if ev.max() > 0 else 1.0
    lambdas = np.logspace(math.log10(top) - 12.0, math.log10(top) + 2.0, int(n_lambda))
    rss, trh, pen = stats(lambdas)
    if method == "gcv":
        crit = n * rss / np.maximum(n - trh, 1e-9) ** 2
        pick = int(np.argmin(crit))
    else:
        x, yv = np.log(rss), np.log(pen)
        t = np.log(lambdas)
        dx, dy = np.gradient(x, t), np.gradient(yv, t)
        ddx, ddy = np.gradient(dx, t), np.gradient(dy, t)
        crit = (dx * ddy - ddx * dy) / np.maximum(dx * dx + dy * dy, 1e-300) ** 1.5
        pick = int(np.argmax(crit[1:-1])) + 1
    lam_used = float(lambdas[pick]) if lam is None else float(lam)
    used = "given" if lam is not None else method
    f = 1.0 / (ev + lam_used)
    c = W @ (f * z)
    rss1, trh1, _ = stats(np.array([lam_used]))
    dof = float(trh1[0])
    noise2 = float(rss1[0]) / max(n - dof, 1.0)
    cov = (W * f) @ W.T
    cov *= noise2 if sigma is None else 1.0
    if scale is None:
        k = max(1, int(round(0.1 * E.size / 2)))
        outer = np.r_[c[:k], c[-k:]].mean()
        if not outer > 0:
            raise ValueError("the recovered DOS is not positive at the ends of the energy grid: "
                             "give scale= or widen the bias range")
        sc = float(outer)
    else:
        sc = float(scale)
    dos = c / sc
    err = np.sqrt(np.maximum(np.diag(cov), 0.0)) / sc
    fwd = A @ c
    return Deconvolution(E, dos, dos - err, dos + err, err, lam_used, used, math.sqrt(noise2), sc, dof, fwd,
                         y - fwd, V, y, lambdas, crit, time.perf_counter() - t0, cov / sc ** 2)
