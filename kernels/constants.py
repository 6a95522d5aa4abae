"""Physical constants in gapscope's units (meV, mV, K, T, nm).

e = 1 throughout: an energy eV in meV equals the bias V in mV.
"""

from __future__ import annotations

import math

#: Boltzmann constant, meV/K (CODATA 2018, exact).
KB: float = 0.08617333262
#: Bohr magneton, meV/T (CODATA 2018).
MU_B: float = 0.05788381806
#: Weak-coupling BCS ratio Δ₀/(k_B T_c) = π e^{−γ_E}.
BCS_RATIO: float = math.pi * math.exp(-0.57721566490153286)
