"""The chains panel's extended-model fan diagrams: the energies against d/λ_F, ξ_J/λ_F or J₀ (Fig. S5 of
F. Friedrich, R. Boshuis, M. Bode and A. Odobesko, "Coupling of Yu-Shiba-Rusinov states in 1D chains of Fe
atoms on Nb(110)", manuscript, 2023; no journal or DOI identified: ``references.cite("friedrich2023_fe_chains")``).

A table of small axis descriptions (what is swept, over which range, in which plotted unit); the
energies are :func:`gapscope.kernels.chains.extended_fan`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gapscope.kernels import chains

__all__ = ["ExtendedFan", "EXTENDED_FANS", "N_POINTS"]

N_POINTS = 121


@dataclass(frozen=True)
class ExtendedFan:
    """One fan of the extended model: ``over`` (a keyword of :func:`chains.extended`) swept over ``span(v)``
    (its values in nm or meV·nm), plotted as value / ``unit(v)`` under ``label``."""

    over: str
    label: str
    span: Callable[[dict[str, Any]], np.ndarray]
    unit: Callable[[dict[str, Any]], float]
    now: Callable[[dict[str, Any]], float]

    def compute(self, v: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(plotted x, even energies (⌈N/2⌉, m), odd energies (⌊N/2⌋, m)) in meV: E₀ + the shifts."""
        kept, ev, od = chains.extended_fan(int(v["n"]), d=v["spacing"], xi_j=v["xi_j"], j0=v["j0"],
                                           lambda_f=v["lambda_f"], over=self.over, values=self.span(v))
        return kept / self.unit(v), v["e0"] + ev.T, v["e0"] + od.T


def _j0_span(v: dict[str, Any]) -> np.ndarray:
    top = min(max(2.0 * v["j0"], 1.0), chains.J0.bounds[1])
    return np.linspace(top / N_POINTS, top, N_POINTS)


#: "Fan against" choices of the extended model
EXTENDED_FANS: dict[str, ExtendedFan] = {
    "d/λ_F": ExtendedFan("d", "d/λ_F", lambda v: np.linspace(0.05, 1.5, N_POINTS) * v["lambda_f"],
                         lambda v: v["lambda_f"], lambda v: v["spacing"] / v["lambda_f"]),
    "ξ_J/λ_F": ExtendedFan("xi_j", "ξ_J/λ_F", lambda v: np.linspace(0.05, 1.5, N_POINTS) * v["lambda_f"],
                           lambda v: v["lambda_f"], lambda v: v["xi_j"] / v["lambda_f"]),
    "J₀": ExtendedFan("j0", "J₀ (meV·nm)", _j0_span, lambda v: 1.0, lambda v: v["j0"]),
}
