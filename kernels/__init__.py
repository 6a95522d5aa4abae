"""gapscope.kernels: the numerics of gapscope (numpy and scipy only, no UI).

One module (or subpackage) per physics topic — :mod:`~gapscope.kernels.dos` (densities of
states), :mod:`~gapscope.kernels.tunneling` (dI/dV through tip, temperature and lock-in),
:mod:`~gapscope.kernels.gap` (BCS Δ(T), T_c fits), :mod:`~gapscope.kernels.ysr`
(Yu-Shiba-Rusinov T-matrix engine) — plus the shared house: :mod:`~gapscope.kernels.specs`
(one declaration per quantity), :mod:`~gapscope.kernels.sampling` (the sample-DOS contract),
:mod:`~gapscope.kernels.models` (the fit-model registry the topics contribute to),
:mod:`~gapscope.kernels.nambu` and :mod:`~gapscope.kernels.matsubara` (shared algebra),
:mod:`~gapscope.kernels.readers` (instrument files), :mod:`~gapscope.kernels.references`
(citations) and :mod:`~gapscope.kernels.constants`.  :mod:`~gapscope.kernels.fitting` needs
lmfit: import it explicitly.  Units: meV, mV, K, T, nm.

Every public module in this folder is imported here, so a new topic needs no line in this
file: its fit models and specs are registered as soon as ``gapscope.kernels`` is imported.
"""

from __future__ import annotations

import importlib
import pkgutil

#: modules with optional dependencies, imported only on request
OPTIONAL = ("fitting",)

__all__: list[str] = []
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_") or _info.name in OPTIONAL:
        continue
    globals()[_info.name] = importlib.import_module(f"{__name__}.{_info.name}")
    __all__.append(_info.name)
del _info
