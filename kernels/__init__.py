"""gapscope.kernels: the numerics of gapscope (numpy and scipy only, no UI).

Modules: :mod:`~gapscope.kernels.dos` (densities of states), :mod:`~gapscope.kernels.tunneling`
(dI/dV through tip, temperature and lock-in), :mod:`~gapscope.kernels.gap` (BCS Δ(T), T_c fits),
:mod:`~gapscope.kernels.ysr` (Yu-Shiba-Rusinov T-matrix engine), :mod:`~gapscope.kernels.readers`
(Nanonis and text files), :mod:`~gapscope.kernels.fitting` (lmfit fits; import it explicitly, it
needs lmfit), :mod:`~gapscope.kernels.constants`.  Units: meV, mV, K, T, nm.
"""

from . import constants, dos, gap, readers, tunneling, ysr

__all__ = ["constants", "dos", "gap", "readers", "tunneling", "ysr"]
