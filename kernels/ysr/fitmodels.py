"""Fit models of the YSR topic, registered with :mod:`gapscope.kernels.models`.

* ``ysr_peaks`` — phenomenological: a Dynes gap with a pair of Lorentzian sub-gap peaks at
  ±e0 (electron–hole asymmetry ``asymmetry``); exact cell averages (arctan antiderivative).
* ``ysr_onsite`` — the T-matrix LDOS on the impurity site of one classical spin with one s
  channel (α, β), in closed form (:func:`onsite_ldos`, the Dyson equation solved per spin; it
  equals :meth:`~gapscope.kernels.ysr.engine.Engine.ldos` on site to rounding, ~1e-12, and is
  ~100× faster, which makes a 1000-point fit take well under a second); declared width Γ.
"""

from __future__ import annotations

import numpy as np

from .. import dos, models
from ..sampling import PointDOS
from ..specs import Spec
from .engine import Engine
from .model import ALPHA, BETA, DELTA, GAMMA, Channel, Impurity, Substrate

__all__ = ["E0", "PEAK_WIDTH", "PEAK_WEIGHT", "ASYMMETRY", "ONSITE_GAMMA", "PeaksDOS", "onsite_dos", "onsite_ldos",
           "onsite_dos_engine"]

E0 = Spec("e0", "E₀", "meV", 0.5, (0.0, 3.0), (0.0, 20.0), 0.01, "sub-gap peak energy")
PEAK_WIDTH = Spec("width", "w", "meV", 0.03, (1e-4, 0.3), (1e-4, 5.0), 0.001, "sub-gap peak half-width")
PEAK_WEIGHT = Spec("weight", "W", "meV", 0.05, (0.0, 1.0), (0.0, 10.0), 0.001, "sub-gap peak spectral weight")
#: the on-site LDOS is sampled through its width Γ: below ~1e-4 meV its peaks are too narrow to resolve
ONSITE_GAMMA = GAMMA.replace(soft=(1e-3, 0.2), bounds=(1e-4, 5.0), default=0.02)
ASYMMETRY = Spec("asymmetry", "A", "", 0.0, (-1.0, 1.0), (-1.0, 1.0), 0.01, "electron–hole asymmetry of the peaks")


class PeaksDOS:
    """N(E) = N_Dynes(E; Δ, Γ) + W[(1 + A) L(E − E₀) + (1 − A) L(E + E₀)],  L(x) = (w/π)/(x² + w²).

    Exact cell averages: the Dynes antiderivative plus (W/π)·arctan for each Lorentzian.
    """

    def __init__(self, *, delta: float, gamma: float, e0: float, width: float, weight: float,
                 asymmetry: float) -> None:
        self.gap = dos.bind("dynes", delta=delta, gamma=gamma)
        self.e0 = E0.check(e0)
        self.w = PEAK_WIDTH.check(width)
        self.weight = PEAK_WEIGHT.check(weight)
        self.asym = ASYMMETRY.check(asymmetry)
        self.width = min(self.w, self.gap.width) if self.gap.width > 0 else self.w

    def _peaks_anti(self, x: np.ndarray) -> np.ndarray:
        a = np.arctan((x - self.e0) / self.w) * (1 + self.asym) + np.arctan((x + self.e0) / self.w) * (1 - self.asym)
        return self.weight * a / np.pi

    def __call__(self, E: np.ndarray) -> np.ndarray:
        E = np.asarray(E, dtype=float)
        lor = lambda x: (self.w / np.pi) / (x * x + self.w * self.w)  # noqa: E731
        return self.gap(E) + self.weight * ((1 + self.asym) * lor(E - self.e0) + (1 - self.asym) * lor(E + self.e0))

    def cell_average(self, E: np.ndarray, h: float) -> np.ndarray:
        E = np.asarray(E, dtype=float)
        return self.gap.cell_average(E, h) + (self._peaks_anti(E + 0.5 * h) - self._peaks_anti(E - 0.5 * h)) / h


def onsite_ldos(E: np.ndarray | float, *, delta: float, gamma: float, alpha: float, beta: float) -> np.ndarray:
    """Spin-summed electron LDOS on the site of one classical spin with one s channel (normalised).

    Conventions of docs/ysr-conventions.md: g₀ = −(z + Δτ_x)/Ω, Ω = √(Δ² − z²), z = E + iΓ;
    vertex v = βτ_z + α σ_z.  The spin sectors σ = ±1 decouple and the Dyson equation
    g_σ = (g₀⁻¹ − v_σ)⁻¹ with g₀⁻¹ = (z − Δτ_x)/Ω, v_σ = βτ_z + σα gives, with u = z/Ω,

        ρ_e(E) = −½ Im Σ_σ (u + β − σα) / (α² − β² − 1 − 2σα u).

    Bound states at ±E₀, E₀ = Δ(1 − α² + β²)/√((1 − α² + β²)² + 4α²).  E, Δ, Γ in meV; α, β
    dimensionless.  Γ > 0 (the LDOS at Γ = 0 is a sum of δ peaks).
    """
    delta, gamma = DELTA.check(delta), ONSITE_GAMMA.check(gamma)
    alpha, beta = ALPHA.check(alpha), BETA.check(beta)
    z = np.asarray(E, dtype=float) + 1j * gamma
    u = z / np.sqrt(delta * delta - z * z)
    c = alpha * alpha - beta * beta - 1.0
    out = (u + beta - alpha) / (c - 2.0 * alpha * u) + (u + beta + alpha) / (c + 2.0 * alpha * u)
    return -0.5 * np.imag(out)


def onsite_dos(*, delta: float, gamma: float, alpha: float, beta: float) -> PointDOS:
    """LDOS on the site of one classical spin (s channel α, β) as a sample DOS of width Γ (:func:`onsite_ldos`)."""
    p = dict(delta=DELTA.check(delta), gamma=ONSITE_GAMMA.check(gamma), alpha=ALPHA.check(alpha),
             beta=BETA.check(beta))
    return PointDOS(lambda E: onsite_ldos(E, **p), width=p["gamma"])


def onsite_dos_engine(*, delta: float, gamma: float, alpha: float, beta: float) -> PointDOS:
    """The same LDOS through the T-matrix :class:`~.engine.Engine` (a parabolic 2D band, ħv_F ≫ Δ/k_F)."""
    ONSITE_GAMMA.check(gamma)
    sub = Substrate(dim=2, kf=10.0, hbar_vf=1e4, delta=delta, gamma=gamma)   # on site: independent of k_F, v_F
    eng = Engine(sub, [Impurity(channels=[Channel("s", alpha, beta)])])
    return eng.sample_dos((0.0, 0.0), tip_radius=0.0)


models.register(models.FitModel(
    "ysr_peaks",
    (models.fit_param(dos.DELTA), models.fit_param(dos.GAMMA), models.fit_param(E0),
     models.fit_param(PEAK_WIDTH), models.fit_param(PEAK_WEIGHT), models.fit_param(ASYMMETRY)),
    lambda **p: PeaksDOS(**p), "Dynes gap with a phenomenological pair of sub-gap peaks at ±e0", topic=__name__))

models.register(models.FitModel(
    "ysr_onsite",
    (models.fit_param(DELTA), models.fit_param(ONSITE_GAMMA), models.fit_param(ALPHA),
     models.fit_param(BETA)),
    onsite_dos, "on-site LDOS of one classical spin (T-matrix, s channel)", topic=__name__))
