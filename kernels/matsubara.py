"""Fermionic Matsubara frequencies and truncated Matsubara sums.

Convention
----------
ω_n = π k_B T (2n + 1), n ∈ ℤ, in meV for a temperature T in K (k_B =
:data:`gapscope.kernels.constants.KB` meV/K).  A cutoff ω_c (meV) keeps the frequencies with
|ω_n| < ω_c (strictly).  :func:`fermionic_sum` returns

    S = k_B T Σ_{n ∈ ℤ, |ω_n| < ω_c} f(ω_n),

summed over *both* signs of ω_n; as T → 0 it tends to ∫_{−ω_c}^{ω_c} f(ω) dω/(2π).  For an even
f this is 2 k_B T Σ_{n ≥ 0, ω_n < ω_c} f(ω_n).  Example: k_B T Σ_{n ∈ ℤ} 1/(ω_n² + E²) =
tanh(E/2k_BT)/(2E) (ω_c → ∞).

With the cutoff at an even multiple of πk_BT, ω_c = 2πk_BT·N, exactly N positive frequencies
are kept and the sum is the midpoint rule of the integral over [−ω_c, ω_c], which is why such
cutoffs give the smoothest dependence on T.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from . import _validate as _v
from .constants import KB

__all__ = ["MAX_FREQUENCIES", "frequencies", "count", "fermionic_sum"]

#: Largest number of frequencies :func:`frequencies` and :func:`fermionic_sum` generate.
MAX_FREQUENCIES: int = 1_000_000


def _args(temperature: float, omega_c: float) -> tuple[float, float]:
    T = _v.scalar("temperature", temperature, "K", minimum=0.0, strict=True)
    wc = _v.scalar("omega_c", omega_c, "meV", minimum=0.0, strict=True)
    return T, wc


def _n_positive(kt: float, wc: float) -> int:
    """Number of n ≥ 0 with πk_BT(2n + 1) < ω_c."""
    x = wc / (math.pi * kt)                   # ω_n < ω_c  ⇔  2n + 1 < x
    n = max(0, math.ceil((x - 1.0) / 2.0))
    while n > 0 and math.pi * kt * (2 * n - 1) >= wc:      # guard the rounding at the boundary
        n -= 1
    while math.pi * kt * (2 * n + 1) < wc:
        n += 1
    return n


def count(*, temperature: float, omega_c: float, positive_only: bool = True) -> int:
    """Number of fermionic Matsubara frequencies with 0 < ω_n < ω_c (or |ω_n| < ω_c if not ``positive_only``).

    Parameters
    ----------
    temperature : float
        T > 0, K.
    omega_c : float
        Cutoff ω_c > 0, meV.
    positive_only : bool
        Count only ω_n > 0 (default) or both signs (twice as many).
    """
    T, wc = _args(temperature, omega_c)
    n = _n_positive(KB * T, wc)
    return n if positive_only else 2 * n


def frequencies(*, temperature: float, omega_c: float, positive_only: bool = True) -> np.ndarray:
    """Fermionic Matsubara frequencies ω_n = πk_BT(2n + 1) below the cutoff, meV, ascending.

    Parameters
    ----------
    temperature : float
        T > 0, K.
    omega_c : float
        Cutoff ω_c > 0, meV; kept are 0 < ω_n < ω_c (``positive_only``, default) or
        −ω_c < ω_n < ω_c.
    positive_only : bool
        Only n ≥ 0, or all n ∈ ℤ in the window.

    Returns
    -------
    ndarray (N,)
        Empty when ω_c ≤ πk_BT.

    Raises
    ------
    ValueError
        T ≤ 0, ω_c ≤ 0, or more than :data:`MAX_FREQUENCIES` frequencies (ω_c/(2πk_BT) too large).
    """
    T, wc = _args(temperature, omega_c)
    kt = KB * T
    n = _n_positive(kt, wc)
    total = n if positive_only else 2 * n
    if total > MAX_FREQUENCIES:
        raise ValueError(f"omega_c = {wc:g} meV at temperature = {T:g} K needs {total} Matsubara frequencies, more "
                         f"than the limit {MAX_FREQUENCIES}; lower omega_c or raise the temperature")
    pos = math.pi * kt * (2.0 * np.arange(n) + 1.0)
    return pos if positive_only else np.concatenate([-pos[::-1], pos])


def fermionic_sum(f: Callable[[np.ndarray], np.ndarray], *, temperature: float, omega_c: float) -> np.ndarray | float:
    """k_B T Σ_{n ∈ ℤ, |ω_n| < ω_c} f(ω_n), meV × [f].

    Parameters
    ----------
    f : callable
        Vectorised: called once with the 1-D array of all kept ω_n (meV, both signs,
        ascending); returns an array whose first axis runs over the frequencies (shape (N,)
        or (N, ...), real or complex).
    temperature : float
        T > 0, K.
    omega_c : float
        Cutoff ω_c > 0, meV (strict: |ω_n| < ω_c).

    Returns
    -------
    float or ndarray
        The sum over the first axis times k_B T (0 when no frequency lies below ω_c); a
        float for scalar-per-frequency f.

    Raises
    ------
    ValueError
        T ≤ 0, ω_c ≤ 0, more than :data:`MAX_FREQUENCIES` frequencies, or f returning an array
        whose first axis does not match the frequencies.
    """
    T, wc = _args(temperature, omega_c)
    w = frequencies(temperature=T, omega_c=wc, positive_only=False)
    vals = np.asarray(f(w))
    if vals.ndim == 0 or vals.shape[0] != w.size:
        raise ValueError(f"f must be vectorised: for {w.size} frequencies it returned shape {vals.shape}")
    s = KB * T * vals.sum(axis=0)
    return s.item() if np.ndim(s) == 0 else s
