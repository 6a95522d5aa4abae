"""Fit models of the YSR topic, registered with :mod:`gapscope.kernels.models`.

* ``ysr_peaks`` — phenomenological: a Dynes gap with a pair of Lorentzian sub-gap peaks at
  ±e0 (electron–hole asymmetry ``asymmetry``); exact cell averages (arctan antiderivative).
* ``ysr_onsite`` — the T-matrix LDOS on the impurity site of one classical spin with one s
  channel (α, β), through :class:`~gapscope.kernels.ysr.engine.Engine` (declared width Γ).
"""

from __future__ import annotations

import numpy as np

from .. import dos, models
from ..sampling import PointDOS
from ..specs import Spec
from .engine import Engine
from .model import ALPHA, BETA, DELTA, GAMMA, Channel, Impurity, Substrate

__all__ = ["E0", "PEAK_WIDTH", "PEAK_WEIGHT", "ASYMMETRY", "ONSITE_GAMMA", "PeaksDOS", "onsite_dos"]

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


def onsite_dos(*, delta: float, gamma: float, alpha: float, beta: float) -> PointDOS:
    """LDOS on the site of one classical spin (s channel α, β), width Γ (a parabolic 2D band, ħv_F ≫ Δ/k_F)."""
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
