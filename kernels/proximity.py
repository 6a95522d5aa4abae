"""Proximity junction S/S′ (S′ may be a normal metal): the self-consistent 1D Usadel model.

Geometry: S occupies [−L_S, 0], S′ occupies [0, L_S′]; the interface is at x = 0 (nm).  The
order parameter is real (no phase gradient).  In the θ-parametrisation (g = cos θ, f = sin θ)
the Usadel equation on each side i is

    (ħD_i/2) θ″ = ω sin θ − Δ(x) cos θ,

* Matsubara form: ω = ω_n = πk_BT(2n + 1), θ real — for the self-consistent gap
  Δ(x) = λ(x)·2πk_BT Σ_{n<N_w} sin θ_n(x), N_w = #{n : ω_n < ω_c} = ⌊ω_c/(2πk_BT) + ½⌋;
* retarded form: ω = Γ_D − iE, θ complex — for the local DOS N(x, E) = Re cos θ (normalised
  to the normal state) with a small Dynes term Γ_D.  A bulk region has sin θ = Δ/s,
  cos θ = ω/s, s = √(ω² + Δ²), so N reduces exactly to Dynes(Δ, Γ_D).

Boundary conditions: θ′ = 0 at the outer ends; at the interface (Kupriyanov–Lukichev)

    ξ_S θ_S′(0⁻) = γ ξ_S′ θ_S′′(0⁺),        γ_B ξ_S′ θ_S′′(0⁺) = sin(θ_S′(0⁺) − θ_S(0⁻)),

with γ = ρ_Sξ_S/(ρ_S′ξ_S′) (normal-state mismatch) and γ_B = R_B A/(ρ_S′ξ_S′) (dimensionless
interface resistance; 0 = transparent, then θ is continuous).

Parameters and calibration (the conventions of the physics notes, checked there numerically):

* Δ_S, Δ_S′ are the bulk zero-temperature weak-coupling gaps of the two sides (their pairing
  strengths), T*_ci = Δ_i/(1.7639 k_B); Δ_S′ = 0 is a normal metal.  The bulk gap at the working
  temperature is Δ_bulk,i(T) = Δ_i δ_BCS(T/T*_ci) (:func:`gapscope.kernels.gap.reduced_gap`).
* The coupling λ_i of each side is calibrated *at the working T* so that an isolated bulk region
  has exactly Δ_bulk,i(T): 1/λ_i = 2πk_BT Σ_{n<N_w} (ω_n² + Δ_bulk,i²)^(−1/2) for T < T*_ci and
  1/λ_i = ψ(N_w + ½) − ψ(½) − ln(T*_ci/T) above; λ = 0 for a normal metal.
* ξ_i = √(ħD_i/(2πk_B T*_cS)) on both sides (the reference temperature is S's), so
  ħD_i = 2πk_B T*_cS ξ_i² (meV·nm²).
* ω_c is the Debye cut-off of the Matsubara sums, a physical parameter: Δ within ~√(ħD/2ω_c)
  of the interface depends on it logarithmically, because λ jumps there.

Numerics: vertex-centred finite volumes in flux form (σ_S = 1, σ_S′ = γξ_S′/ξ_S, uniform
spacing ≤ ξ_i/12 per side, two interface nodes 0⁻ and 0⁺ coupled by the KL flux
G_B sin(θ_S′ − θ_S), G_B = σ_S′/(γ_Bξ_S′)); damped Newton (|δθ| ≤ 0.5) with the tridiagonal
Jacobians of all frequencies solved in one banded LAPACK call; Anderson mixing (depth 5) of the
gap map; Γ-continuation (Γ = 0.2 → 0.06 → Γ_D meV) for the real-energy solves.  γ_B is
clamped at 1e-6 (below, θ is continuous to ~1e-6 rad).

Outputs: Δ(x), N(x, E), the 1/e decay length on each side (the distance from the interface at
which |Δ(x) − Δ_far| has fallen to 1/e of its interface value, Δ_far the value at the outer end;
linear interpolation), the interface jump Δ(0⁻) − Δ(0⁺), the simulated line scan G(x, V)
through the tunnelling chain (:func:`line_scan`), and fits of a Δ(x) profile or a whole line
scan (:func:`fit_profile`, :func:`fit_line_scan`, :func:`fit_decay`).  The registered fit model
``usadel`` (:func:`usadel_model`: the local DOS at a tip position x, one junction solve per
parameter set) puts the same model behind the common interface: ``fitting.fit`` for one
spectrum, ``fitting.fit_global`` with x per spectrum for a line scan (:func:`line_scan_datasets`).

Paper: Lin et al. (``references.cite("lin2021_nipb")``) model the Pb(111)/Ni–Pb boundary this
way; their "reflectivity r" is not defined in the text available to us, so :func:`gamma_b_from_r`
offers the *assumed* mapping γ_B = r/(1 − r).  They quote L_d ≈ 3.55 nm in the text and
2.75 nm in the Fig. 4(d) caption (:data:`PAPER_DECAY_LENGTHS`).  The 1D diffusive model
cannot produce a coherence-peak *enhancement*, and it has no vertical Pb substrate feeding the
alloy.  Units: meV, nm, K.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from scipy.linalg import solve_banded
from scipy.optimize import brentq, least_squares
from scipy.special import digamma

from . import _validate as _v
from . import dos as _dos
from . import gap as _gap
from . import tunneling
from .constants import BCS_RATIO, KB
from .specs import Spec

__all__ = [
    "Junction", "Solution", "LineScan", "ProfileFit", "UsadelFit", "ConvergenceError",
    "coupling", "bulk_gap", "critical_temperature", "diffusion_constant", "gamma_b_from_r", "r_from_gamma_b",
    "decay_length", "line_scan", "scan_energies", "dos_table", "chain_energy", "didv_at", "fit_decay", "fit_profile",
    "fit_line_scan",
    "match_decay_length", "line_from_grid", "PAPER_DECAY_LENGTHS",
    "UsadelDOS", "UsadelSample", "usadel_model", "position_tie", "line_scan_datasets", "USADEL", "POSITION",
    "MISMATCH_NAME",
    "DELTA_S", "DELTA_N", "XI_S", "XI_N", "GAMMA", "GAMMA_B", "REFLECTIVITY", "TEMPERATURE", "OMEGA_C",
    "DYNES_GAMMA", "LENGTH_S", "LENGTH_N", "SPECS",
]

# ----------------------------------------------------------------------------- parameters
DELTA_S = Spec("delta_s", "Δ_S", "meV", 1.3, (0.1, 3.0), (0.0, 20.0), 0.01,
               "bulk zero-T gap of S (pairing strength; T*_c = Δ_S/1.764k_B)", open_low=True)
DELTA_N = Spec("delta_n", "Δ_S′", "meV", 1.0, (0.0, 3.0), (0.0, 20.0), 0.01,
               "bulk zero-T gap of S′ (0: normal metal)")
XI_S = Spec("xi_s", "ξ_S", "nm", 6.0, (1.0, 30.0), (0.1, 500.0), 0.1,
            "coherence length of S, √(ħD_S/2πk_BT*_cS)")
XI_N = Spec("xi_n", "ξ_S′", "nm", 3.0, (0.5, 30.0), (0.1, 500.0), 0.01,
            "coherence length of S′, √(ħD_S′/2πk_BT*_cS)")
GAMMA = Spec("gamma", "γ", "", 1.0, (0.05, 10.0), (0.0, 1e4), 0.01,
             "normal-state mismatch ρ_Sξ_S/(ρ_S′ξ_S′) (σ_S′/σ_S = γξ_S′/ξ_S)", open_low=True)
GAMMA_B = Spec("gamma_b", "γ_B", "", 0.0204, (0.0, 10.0), (0.0, 1e4), 0.001,
               "Kupriyanov–Lukichev interface resistance R_B·A/(ρ_S′ξ_S′) (0: transparent)")
REFLECTIVITY = Spec("r", "r", "", 0.02, (0.0, 0.95), (0.0, 0.9999), 0.001,
                    "Lin et al.'s reflectivity, mapped to γ_B = r/(1 − r) (an assumption)")
TEMPERATURE = Spec("temperature", "T", "K", 0.32, (0.1, 10.0), (0.05, 300.0), 0.01,
                   "temperature of the junction (and of the tunnelling chain)")
OMEGA_C = Spec("omega_c", "ω_c", "meV", 30.0, (3.0, 100.0), (0.5, 500.0), 0.1,
               "Debye cut-off of the Matsubara sums (Pb: ω_D ≈ 8–9 meV)")
DYNES_GAMMA = Spec("dynes_gamma", "Γ_D", "meV", 0.01, (0.002, 0.1), (1e-4, 1.0), 0.001,
                   "Dynes term of the retarded Usadel equation, ω = Γ_D − iE")
LENGTH_S = Spec("length_s", "L_S", "nm", 120.0, (20.0, 400.0), (0.5, 2000.0), 1.0,
                "thickness of S (θ′ = 0 at the outer end)")
LENGTH_N = Spec("length_n", "L_S′", "nm", 60.0, (5.0, 300.0), (0.5, 2000.0), 1.0,
                "thickness of S′ (θ′ = 0 at the outer end)")
#: the junction's parameters, in the order of :class:`Junction`
SPECS: tuple[Spec, ...] = (DELTA_S, DELTA_N, XI_S, XI_N, GAMMA, GAMMA_B, TEMPERATURE, OMEGA_C, LENGTH_S,
                           LENGTH_N, DYNES_GAMMA)

#: Lin et al.'s decay length: 3.55 nm in the abstract, text and conclusions, 2.75 nm in the
#: caption of Fig. 4(d) (nm)
PAPER_DECAY_LENGTHS: dict[str, float] = {"text": 3.55, "caption": 2.75}

_GAMMA_B_MIN = 1e-6       # KL clamp: below it θ is continuous to ~1e-6 rad
_MAX_NODES = 6000         # grid nodes of both sides
_MAX_FREQUENCIES = 4000   # Matsubara frequencies below ω_c
_MAX_WORK = 2e6           # nodes × frequencies per iteration (the sweep's 6000 × 4000 corner took 27 s of CPU)
_CHUNK = 250_000          # unknowns per batched Newton solve (memory)
_CONTINUATION = (0.2, 0.06)   # Γ stages of the retarded solve, meV


class ConvergenceError(RuntimeError):
    """The Usadel solve did not converge; the message says which stage and how far it got."""


# ----------------------------------------------------------------------------- calibration
def critical_temperature(delta0: float) -> float:
    """Weak-coupling T*_c = Δ₀/(πe^{−γ_E} k_B) = Δ₀/(1.7639 k_B) in K, for a zero-T gap Δ₀ in meV."""
    return float(delta0) / (BCS_RATIO * KB)


def bulk_gap(delta0: float, temperature: float) -> float:
    """Bulk gap Δ_bulk(T) = Δ₀ δ_BCS(T/T*_c) in meV (0 for Δ₀ = 0 or T ≥ T*_c)."""
    if delta0 <= 0.0:
        return 0.0
    return float(delta0 * _gap.reduced_gap(temperature / critical_temperature(delta0)))


def coupling(*, delta0: float, temperature: float, omega_c: float) -> float:
    """Pairing constant λ calibrated so that a bulk region has exactly Δ_bulk(T) at this T.

    1/λ = 2πk_BT Σ_{n<N_w} 1/√(ω_n² + Δ_bulk²)   for T < T*_c,
    1/λ = ψ(N_w + ½) − ψ(½) − ln(T*_c/T)          for T ≥ T*_c,
    λ = 0 for a normal metal (Δ₀ = 0).  ω_n = πk_BT(2n + 1) < ω_c (meV, K).
    """
    if delta0 <= 0.0:
        return 0.0
    T = float(temperature)
    w = _frequencies(T, omega_c)
    tc = critical_temperature(delta0)
    if T < tc:
        d = bulk_gap(delta0, T)
        return float(1.0 / (2.0 * math.pi * KB * T * np.sum(1.0 / np.sqrt(w * w + d * d))))
    inv = float(digamma(w.size + 0.5) - digamma(0.5)) - math.log(tc / T)
    return 1.0 / inv if inv > 0 else 0.0


def diffusion_constant(*, xi: float, delta_s: float) -> float:
    """ħD = 2πk_B T*_cS ξ² (meV·nm²) of a side with coherence length ξ (nm); T*_cS from Δ_S (meV)."""
    return 2.0 * math.pi * KB * critical_temperature(delta_s) * xi * xi


def gamma_b_from_r(r: float) -> float:
    """γ_B = r/(1 − r): the *assumed* mapping of Lin et al.'s reflectivity r (r → 0: transparent).

    The paper does not define r in the text we have; a KL-consistent alternative would be
    γ_B = (2/3)(ℓ/ξ_S′)·r/(1 − r), which needs the mean free path ℓ.  r = 0.02 gives 0.0204.
    """
    r = REFLECTIVITY.check(r)
    return r / (1.0 - r)


def r_from_gamma_b(gamma_b: float) -> float:
    """Inverse of :func:`gamma_b_from_r`: r = γ_B/(1 + γ_B)."""
    g = GAMMA_B.check(gamma_b)
    return g / (1.0 + g)


def _frequencies(T: float, omega_c: float) -> np.ndarray:
    kt = KB * T
    n = int(math.floor(omega_c / (2.0 * math.pi * kt) + 0.5))
    return math.pi * kt * (2.0 * np.arange(n) + 1.0)


# ----------------------------------------------------------------------------- junction
@dataclass(frozen=True)
class Junction:
    """An S/S′ junction (S′ normal when ``delta_n = 0``).  All values are checked on creation.

    Parameters
    ----------
    delta_s, delta_n : float
        Bulk zero-temperature weak-coupling gaps of S (> 0) and S′ (≥ 0), meV.
    xi_s, xi_n : float
        Coherence lengths ξ_i = √(ħD_i/(2πk_B T*_cS)), nm.
    gamma : float
        Mismatch γ = ρ_Sξ_S/(ρ_S′ξ_S′) > 0.
    gamma_b : float
        KL interface resistance γ_B ≥ 0 (0: transparent).
    temperature : float
        T, K.  Above both T*_c the solve returns the normal state (Δ ≡ 0, N ≡ 1).
    omega_c : float
        Debye cut-off ω_c, meV; must exceed both gaps and πk_BT.
    length_s, length_n : float
        Thicknesses L_S, L_S′ ≥ ξ of each side, nm (≥ 15–20 ξ mimics a bulk side).
    dynes_gamma : float
        Dynes term Γ_D of the retarded solve (meV), the default of :meth:`Solution.dos`.

    Raises
    ------
    ValueError
        A value outside its spec, ω_c ≤ max(Δ_S, Δ_S′) or ω_c ≤ πk_BT, a side thinner than its
        ξ, or a grid / frequency count beyond the limits (too long a side for its ξ, too low a T
        for ω_c); each message names the parameter.
    """

    delta_s: float = DELTA_S.default
    delta_n: float = DELTA_N.default
    xi_s: float = XI_S.default
    xi_n: float = XI_N.default
    gamma: float = GAMMA.default
    gamma_b: float = GAMMA_B.default
    temperature: float = TEMPERATURE.default
    omega_c: float = OMEGA_C.default
    length_s: float = LENGTH_S.default
    length_n: float = LENGTH_N.default
    dynes_gamma: float = DYNES_GAMMA.default

    def __post_init__(self) -> None:
        for spec in SPECS:
            object.__setattr__(self, spec.name, spec.check(getattr(self, spec.name)))
        big = max(self.delta_s, self.delta_n)
        if self.omega_c <= big:
            raise ValueError(f"omega_c = {self.omega_c:g} meV must exceed the gaps (max {big:g} meV): the Debye "
                             "cut-off of the pairing lies far above Δ (Pb: ω_D ≈ 8–9 meV)")
        kt = KB * self.temperature
        if self.omega_c <= math.pi * kt:
            raise ValueError(f"omega_c = {self.omega_c:g} meV is below πk_BT = {math.pi * kt:.3g} meV at temperature "
                             f"= {self.temperature:g} K: no Matsubara frequency lies below the cut-off")
        nw = int(math.floor(self.omega_c / (2.0 * math.pi * kt) + 0.5))
        if nw > _MAX_FREQUENCIES:
            raise ValueError(f"temperature = {self.temperature:g} K with omega_c = {self.omega_c:g} meV needs {nw} "
                             f"Matsubara frequencies (limit {_MAX_FREQUENCIES}); raise T or lower ω_c")
        for side, L, xi in (("s", self.length_s, self.xi_s), ("n", self.length_n, self.xi_n)):
            if L < xi:
                raise ValueError(f"length_{side} = {L:g} nm is shorter than the coherence length xi_{side} = "
                                 f"{xi:g} nm; the model needs at least one ξ per side (15–20 ξ mimics a bulk side)")
        nodes = sum(_n_cells(L, xi, 12) + 1 for L, xi in ((self.length_s, self.xi_s), (self.length_n, self.xi_n)))
        if nodes > _MAX_NODES:
            raise ValueError(f"length_s = {self.length_s:g} nm and length_n = {self.length_n:g} nm need {nodes} grid "
                             f"nodes at ξ/12 (limit {_MAX_NODES}); shorten the sides or raise xi_s, xi_n")
        if nodes * nw > _MAX_WORK:
            raise ValueError(f"length_s = {self.length_s:g} nm, length_n = {self.length_n:g} nm with omega_c = "
                             f"{self.omega_c:g} meV at temperature = {self.temperature:g} K need {nodes} grid nodes × "
                             f"{nw} Matsubara frequencies = {nodes * nw:.3g} per iteration (limit {_MAX_WORK:.0e}); "
                             "shorten the sides, lower ω_c or raise T")

    # ------------------------------------------------------------------ derived
    @property
    def tc_s(self) -> float:
        """Weak-coupling T*_c of S, K."""
        return critical_temperature(self.delta_s)

    @property
    def tc_n(self) -> float:
        """Weak-coupling T*_c of S′ (0 for a normal metal), K."""
        return critical_temperature(self.delta_n)

    @property
    def hbar_d(self) -> tuple[float, float]:
        """(ħD_S, ħD_S′) in meV·nm²."""
        return (diffusion_constant(xi=self.xi_s, delta_s=self.delta_s),
                diffusion_constant(xi=self.xi_n, delta_s=self.delta_s))

    @property
    def couplings(self) -> tuple[float, float]:
        """(λ_S, λ_S′), calibrated at this T (see :func:`coupling`)."""
        return (coupling(delta0=self.delta_s, temperature=self.temperature, omega_c=self.omega_c),
                coupling(delta0=self.delta_n, temperature=self.temperature, omega_c=self.omega_c))

    @property
    def bulk_gaps(self) -> tuple[float, float]:
        """(Δ_bulk,S(T), Δ_bulk,S′(T)) in meV."""
        return bulk_gap(self.delta_s, self.temperature), bulk_gap(self.delta_n, self.temperature)

    @property
    def n_frequencies(self) -> int:
        """N_w = ⌊ω_c/(2πk_BT) + ½⌋."""
        return int(_frequencies(self.temperature, self.omega_c).size)

    def replace(self, **changes: Any) -> Junction:
        """A copy with some parameters changed (checked again)."""
        return replace(self, **changes)

    def values(self) -> dict[str, float]:
        """The parameters by name."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    # ------------------------------------------------------------------ solve
    def solve(self, *, points_per_xi: float = 12.0, tol: float = 1e-8, max_iter: int = 400,
              initial: Solution | None = None,
              progress: Callable[[float, str], None] | None = None) -> Solution:
        """Self-consistent Δ(x): Matsubara Usadel equations plus the gap equation.

        Parameters
        ----------
        points_per_xi : float
            Grid density, nodes per coherence length on each side (≥ 4; 12 gives |δΔ| ~ 1e-5 meV).
        tol : float
            Stop when max|Δ_out − Δ_in| < tol (meV).
        max_iter : int
            Gap-map iterations before :class:`ConvergenceError`.
        initial : Solution, optional
            Start from this Δ(x) (interpolated), e.g. a neighbouring parameter set.
        progress : callable, optional
            ``progress(fraction, text)`` after every iteration; it may raise to cancel the solve.

        Returns
        -------
        Solution

        Raises
        ------
        ConvergenceError
            No convergence within ``max_iter`` iterations (the message gives the residual).
        """
        ppx = _v.scalar("points_per_xi", points_per_xi, "", minimum=4.0)
        tol = _v.scalar("tol", tol, "meV", minimum=0.0, strict=True)
        grid = _grid(self, ppx)
        lam_s, lam_n = self.couplings
        lam = np.where(np.arange(grid.x.size) < grid.n_s, lam_s, lam_n)
        bs, bn = self.bulk_gaps
        omegas = _frequencies(self.temperature, self.omega_c)
        if self.temperature >= self.tc_s and (self.delta_n == 0.0 or self.temperature >= self.tc_n):
            zero = np.zeros(grid.x.size)
            note = (f"T = {self.temperature:g} K is above the bulk T*_c of both sides (S: {self.tc_s:.3g} K"
                    + (f", S′: {self.tc_n:.3g} K" if self.delta_n > 0 else ", S′ normal")
                    + "): the junction is in the normal state, Δ ≡ 0 and N ≡ 1")
            return Solution(self, grid, zero, lam, omegas, np.zeros((omegas.size, grid.x.size)), 0, 0.0, True,
                            (note,))
        if initial is not None:
            d0 = np.concatenate([np.interp(grid.x[:grid.n_s], initial.x[:initial.n_s], initial.delta[:initial.n_s]),
                                 np.interp(grid.x[grid.n_s:], initial.x[initial.n_s:], initial.delta[initial.n_s:])])
        else:
            d0 = np.where(np.arange(grid.x.size) < grid.n_s, bs, bn)
        theta = np.arctan2(d0[None, :], omegas[:, None])
        pref = 2.0 * math.pi * KB * self.temperature
        active = lam > 0
        xk = d0[active].copy()
        hist_x: list[np.ndarray] = []
        hist_f: list[np.ndarray] = []
        res0 = None
        err = math.inf
        delta = d0.copy()
        last_f: list[float] = [0.0]
        last_t: list[str] = ["self-consistency"]
        tick = None if progress is None else (lambda: progress(last_f[0], last_t[0]))
        for it in range(1, max_iter + 1):
            delta = np.zeros(grid.x.size)
            delta[active] = xk
            theta, ok = _newton(theta, omegas.astype(float), delta, grid, tol=1e-12, max_iter=60, tick=tick)
            if not np.all(ok):
                raise ConvergenceError(f"Matsubara Usadel solve did not converge at iteration {it} "
                                       f"({int(np.sum(~ok))} of {omegas.size} frequencies)")
            g = (lam * pref * np.sin(theta).sum(axis=0))[active]
            f = g - xk
            err = float(np.max(np.abs(f))) if f.size else 0.0
            if res0 is None:
                res0 = max(err, tol)
            if progress is not None:
                frac = math.log(res0 / max(err, tol)) / max(math.log(res0 / tol), 1e-12)
                last_f[0] = 0.95 * min(max(frac, 0.0), 1.0)
                last_t[0] = f"self-consistency: iteration {it}, |δΔ| = {err:.1e} meV"
                progress(last_f[0], last_t[0])
            if err < tol:
                break
            # Anderson mixing (depth 5) of the fixed-point map Δ → λ·2πk_BT Σ sin θ
            hist_x.append(xk.copy())
            hist_f.append(f.copy())
            if len(hist_x) > 6:
                hist_x.pop(0)
                hist_f.pop(0)
            if len(hist_x) >= 2:
                dX = np.array(hist_x[1:]) - np.array(hist_x[:-1])
                dF = np.array(hist_f[1:]) - np.array(hist_f[:-1])
                coef, *_ = np.linalg.lstsq(dF.T, f, rcond=None)
                new = xk + f - (dX + dF).T @ coef
            else:
                new = xk + f
            if not np.all(np.isfinite(new)):
                hist_x.clear()
                hist_f.clear()
                new = xk + f
            xk = np.maximum(new, 0.0)
        else:
            raise ConvergenceError(f"self-consistency did not converge in {max_iter} iterations: max|δΔ| = {err:.2e} "
                                   f"meV (tolerance {tol:g}); try another starting state or a larger max_iter")
        warnings = []
        if self.length_s < 10 * self.xi_s:
            warnings.append(f"L_S = {self.length_s:g} nm < 10 ξ_S: the far end of S is not bulk-like")
        if self.delta_n > 0 and self.length_n < 10 * self.xi_n:
            warnings.append(f"L_S′ = {self.length_n:g} nm < 10 ξ_S′: the far end of S′ is not bulk-like")
        return Solution(self, grid, delta, lam, omegas, theta, it, err, False, tuple(warnings))


def _n_cells(L: float, xi: float, ppx: float) -> int:
    return max(8, int(math.ceil(L * ppx / xi)))


@dataclass(frozen=True)
class _Grid:
    x: np.ndarray          # node positions: S nodes (−L_S … 0⁻) then S′ nodes (0⁺ … L_S′)
    n_s: int               # number of S nodes; index n_s − 1 is 0⁻, n_s is 0⁺
    links: np.ndarray      # conductances of the linear links (n − 1,); the interface link unused
    vol: np.ndarray        # control-volume weights w_i·length (n,)
    g_b: float             # KL interface conductance
    hbar_d: tuple[float, float]


def _grid(j: Junction, ppx: float) -> _Grid:
    ms, mn = _n_cells(j.length_s, j.xi_s, ppx), _n_cells(j.length_n, j.xi_n, ppx)
    hs, hn = j.length_s / ms, j.length_n / mn
    xs = np.linspace(-j.length_s, 0.0, ms + 1)
    xn = np.linspace(0.0, j.length_n, mn + 1)
    ds, dn = j.hbar_d
    sig_s, sig_n = 1.0, j.gamma * j.xi_n / j.xi_s
    w_s, w_n = 2.0 * sig_s / ds, 2.0 * sig_n / dn
    links = np.concatenate([np.full(ms, sig_s / hs), [0.0], np.full(mn, sig_n / hn)])
    vs = np.full(ms + 1, hs * w_s)
    vs[[0, -1]] *= 0.5
    vn = np.full(mn + 1, hn * w_n)
    vn[[0, -1]] *= 0.5
    g_b = sig_n / (max(j.gamma_b, _GAMMA_B_MIN) * j.xi_n)
    return _Grid(np.concatenate([xs, xn]), ms + 1, links, np.concatenate([vs, vn]), g_b, (ds, dn))


def _newton(theta: np.ndarray, omega: np.ndarray, delta: np.ndarray, grid: _Grid, *, tol: float,
            max_iter: int, tick: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Damped Newton for all rows (frequencies or energies) of θ at once; returns θ and converged rows.

    Residual at node k: J_k − J_{k−1} − V_k (ω sin θ_k − Δ_k cos θ_k), with J_k = c_k(θ_{k+1} − θ_k)
    on linear links and G_B sin(θ_{k+1} − θ_k) on the interface link.  The Jacobian is
    symmetric tridiagonal; the systems of all rows are stacked into one banded solve.  ``tick()`` is
    called before every iteration (progress reports; it may raise to cancel).
    """
    theta = np.array(theta, copy=True)
    m, n = theta.shape
    ib = grid.n_s - 1
    done = np.zeros(m, dtype=bool)
    step = max(1, _CHUNK // n)
    for start in range(0, m, step):
        rows = np.arange(start, min(m, start + step))
        th = theta[rows]
        om = omega[rows][:, None]
        for _ in range(max_iter):
            if tick is not None:
                tick()
            if np.iscomplexobj(th):             # one exp instead of sin and cos
                e = np.exp(1j * th)
                ei = 1.0 / e
                s, c = -0.5j * (e - ei), 0.5 * (e + ei)
            else:
                s, c = np.sin(th), np.cos(th)
            d = np.diff(th, axis=1)
            a = np.empty_like(d)
            a[:] = grid.links
            flux = a * d
            flux[:, ib] = grid.g_b * np.sin(d[:, ib])
            a[:, ib] = grid.g_b * np.cos(d[:, ib])
            res = -grid.vol * (om * s - delta * c)
            res[:, :-1] += flux
            res[:, 1:] -= flux
            diag = -grid.vol * (om * c + delta * s)
            diag[:, :-1] -= a
            diag[:, 1:] -= a
            k = th.shape[0]
            ab = np.zeros((3, k, n), dtype=th.dtype)
            ab[0, :, 1:] = a
            ab[1] = diag
            ab[2, :, :-1] = a
            dth = solve_banded((1, 1), ab.reshape(3, k * n), -res.reshape(k * n),
                               overwrite_ab=True, overwrite_b=True, check_finite=False).reshape(k, n)
            big = np.max(np.abs(dth), axis=1)
            if not np.all(np.isfinite(big)):
                break
            th = th + dth * np.minimum(1.0, 0.5 / np.maximum(big, 1e-300))[:, None]
            if np.all(big < tol):
                done[rows] = True
                break
            keep = big >= tol
            if not np.all(keep):              # converged rows leave the batch
                theta[rows[~keep]] = th[~keep]
                done[rows[~keep]] = True
                rows, th, om = rows[keep], th[keep], om[keep]
        theta[rows] = th
    return theta, done


# ----------------------------------------------------------------------------- solution
@dataclass(frozen=True)
class Solution:
    """A solved junction.

    Attributes
    ----------
    junction : Junction
    x : ndarray
        Node positions, nm; S nodes (−L_S … 0) then S′ nodes (0 … L_S′): 0 appears twice, as
        0⁻ (index ``n_s − 1``) and 0⁺ (index ``n_s``).
    delta : ndarray
        Self-consistent Δ(x), meV.
    couplings : ndarray
        λ(x) per node.
    omegas : ndarray
        Matsubara frequencies ω_n < ω_c, meV.
    theta_matsubara : ndarray (N_w, len(x))
        Pairing angles θ_n(x).
    iterations : int
    residual : float
        Final max|δΔ|, meV.
    normal : bool
        True when T is above both bulk T*_c (Δ ≡ 0).
    warnings : tuple of str
    """

    junction: Junction
    grid: _Grid = field(repr=False)
    delta: np.ndarray = field(repr=False)
    couplings: np.ndarray = field(repr=False)
    omegas: np.ndarray = field(repr=False)
    theta_matsubara: np.ndarray = field(repr=False)
    iterations: int = 0
    residual: float = 0.0
    normal: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def x(self) -> np.ndarray:
        return self.grid.x

    @property
    def n_s(self) -> int:
        """Number of S nodes (index of 0⁺)."""
        return self.grid.n_s

    @property
    def delta_interface(self) -> tuple[float, float]:
        """(Δ(0⁻), Δ(0⁺)), meV."""
        return float(self.delta[self.n_s - 1]), float(self.delta[self.n_s])

    @property
    def jump(self) -> float:
        """Interface jump Δ(0⁻) − Δ(0⁺), meV."""
        a, b = self.delta_interface
        return a - b

    @property
    def delta_far(self) -> tuple[float, float]:
        """(Δ(−L_S), Δ(L_S′)): the values at the outer ends, meV."""
        return float(self.delta[0]), float(self.delta[-1])

    @property
    def decay_length_s(self) -> float:
        """1/e decay length of |Δ − Δ_far| into S, nm (nan without a variation)."""
        return decay_length(self.x, self.delta, side="s")

    @property
    def decay_length_n(self) -> float:
        """1/e decay length of |Δ − Δ_far| into S′, nm (nan without a variation)."""
        return decay_length(self.x, self.delta, side="n")

    def pair_amplitude(self) -> np.ndarray:
        """Matsubara pair amplitudes sin θ_n(x), shape (N_w, len(x))."""
        return np.sin(self.theta_matsubara)

    def angles(self, energies: np.ndarray | Sequence[float] | float, *, gamma: float | None = None,
               progress: Callable[[float, str], None] | None = None) -> np.ndarray:
        """Retarded pairing angles θ(x, E) (complex), shape (len(x), len(E)).

        Solves (ħD/2)θ″ = ω sin θ − Δ(x) cos θ with ω = Γ_D − iE on the solution's Δ(x),
        by Newton with Γ-continuation (Γ = 0.2 → 0.06 → Γ_D) from the bulk angle
        θ = −i ln((ω + iΔ)/s), s = √(ω² + Δ²), Re s > 0.  N(−E) = N(E), so only |E| is solved.

        Raises
        ------
        ConvergenceError
            Newton failed at some energies (they are listed).
        """
        E = _v.array("energies", energies)
        shape = E.shape
        E = E.ravel()
        g = DYNES_GAMMA.replace(name="gamma").check(self.junction.dynes_gamma if gamma is None else gamma)
        if self.normal:
            return np.zeros((self.x.size, E.size), dtype=complex)
        absE, inv = np.unique(np.abs(E), return_inverse=True)
        theta = self._retarded(absE, g, progress)
        out = theta[inv]
        # θ(−E) = θ(E)* (ω → ω* for E → −E)
        neg = E < 0
        out[neg] = np.conj(out[neg])
        return out.T.reshape((self.x.size, *shape))

    def _retarded(self, absE: np.ndarray, g: float, progress: Callable[[float, str], None] | None) -> np.ndarray:
        """θ(E, x) for E ≥ 0: Newton at Γ_D from the bulk angles; rows that fail (or give N < 0) are
        redone by Γ-continuation 0.2 → 0.06 → Γ_D meV with warm starts."""
        dl = self.delta[None, :]

        def bulk(om: np.ndarray) -> np.ndarray:
            s = np.sqrt(om[:, None] ** 2 + dl ** 2)
            return -1j * np.log((om[:, None] + 1j * dl) / s)

        tick = None if progress is None else (lambda: progress(0.35, "N(x, E)"))
        om = g - 1j * absE
        theta, ok = _newton(bulk(om), om, self.delta, self.grid, tol=1e-10, max_iter=30, tick=tick)
        ok &= np.all(np.isfinite(theta), axis=1)
        ok[ok] &= np.min(np.real(np.cos(theta[ok])), axis=1) > -1e-8
        if progress is not None:
            progress(0.7, "N(x, E)")
        if not np.all(ok):
            redo = np.flatnonzero(~ok)
            th: np.ndarray | None = None
            for gs in [s for s in _CONTINUATION if s > g] + [g]:
                om_r = gs - 1j * absE[redo]
                th, good = _newton(bulk(om_r) if th is None else th, om_r, self.delta, self.grid, tol=1e-10,
                                   max_iter=80, tick=tick)
                if not np.all(good):
                    bad = absE[redo][~good]
                    raise ConvergenceError(f"retarded Usadel solve did not converge at Γ = {gs:g} meV for "
                                           f"{bad.size} energies (e.g. E = {bad[0]:.4g} meV)")
            assert th is not None
            theta[redo] = th
        if progress is not None:
            progress(1.0, "N(x, E)")
        return theta

    def dos(self, energies: np.ndarray | Sequence[float] | float, *, gamma: float | None = None,
            progress: Callable[[float, str], None] | None = None) -> np.ndarray:
        """Local DOS N(x, E) = Re cos θ(x, E), normalised to the normal state; shape (len(x), len(E)).

        ``gamma`` is the Dynes term Γ_D (meV; default: the junction's ``dynes_gamma``).  Negative
        round-off is clipped at 0.
        """
        return np.maximum(np.real(np.cos(self.angles(energies, gamma=gamma, progress=progress))), 0.0)

    def ldos(self, positions: np.ndarray | Sequence[float] | float, energies: np.ndarray | Sequence[float] | float,
             *, gamma: float | None = None, table: np.ndarray | None = None) -> np.ndarray:
        """N at arbitrary positions (nm), shape (len(positions), len(E)): linear interpolation between
        nodes on each side (x ≤ 0 is S, x > 0 is S′).  ``table`` reuses a :meth:`dos` of the energies."""
        X = _v.array("positions", positions).ravel()
        N = self.dos(energies, gamma=gamma) if table is None else np.asarray(table, dtype=float)
        return _interp_rows(self.x, self.n_s, N, X)

    def at(self, positions: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Δ at arbitrary positions (nm), linear interpolation per side (x ≤ 0 is S)."""
        X = _v.array("positions", positions)
        return _interp_rows(self.x, self.n_s, self.delta[:, None], X.ravel())[:, 0].reshape(X.shape)

    def summary(self) -> dict[str, float]:
        """Scalars of the solution: interface gaps, jump, far-field gaps, decay lengths (meV, nm)."""
        a, b = self.delta_interface
        fs, fn = self.delta_far
        return {"delta_0m": a, "delta_0p": b, "jump": a - b, "delta_far_s": fs, "delta_far_n": fn,
                "decay_length_s": self.decay_length_s, "decay_length_n": self.decay_length_n}


def _interp_rows(x: np.ndarray, n_s: int, values: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (one per node) interpolated to positions X, per side."""
    out = np.empty((X.size, values.shape[1]), dtype=values.dtype)
    xs, xn = x[:n_s], x[n_s:]
    for mask, xx, vv in ((X <= 0, xs, values[:n_s]), (X > 0, xn, values[n_s:])):
        if not np.any(mask):
            continue
        q = np.clip(X[mask], xx[0], xx[-1])
        i = np.clip(np.searchsorted(xx, q, side="right") - 1, 0, xx.size - 2)
        t = ((q - xx[i]) / (xx[i + 1] - xx[i]))[:, None]
        out[mask] = (1.0 - t) * vv[i] + t * vv[i + 1]
    return out


def decay_length(x: np.ndarray, delta: np.ndarray, *, side: str = "n") -> float:
    """1/e decay length (nm) of a gap profile on one side of the interface at x = 0.

    The distance from the interface at which |Δ(x) − Δ_far| has fallen to 1/e of
    |Δ(0^±) − Δ_far|, Δ_far the value at the outer end, by linear interpolation.  ``side`` is
    "n" (x ≥ 0, S′) or "s" (x ≤ 0, S); x must be sorted, and a node at 0 on the requested side
    is taken as 0^± (for a :class:`Solution`: 0⁻ for S, 0⁺ for S′).  nan when the profile does
    not vary or never falls to 1/e.
    """
    x = _v.array("x", x).ravel()
    d = _v.array("delta", delta).ravel()
    if x.shape != d.shape:
        raise ValueError("x and delta must have the same length")
    if side == "n":
        idx = np.flatnonzero(x >= 0)
        if idx.size and np.sum(x[idx] == 0) > 1:      # two nodes at 0: the last one is 0⁺
            idx = idx[np.sum(x[idx] == 0) - 1:]
        dist, prof = x[idx], d[idx]
    elif side == "s":
        idx = np.flatnonzero(x <= 0)
        if idx.size and np.sum(x[idx] == 0) > 1:      # the first zero is 0⁻
            idx = idx[: idx.size - np.sum(x[idx] == 0) + 1]
        dist, prof = -x[idx][::-1], d[idx][::-1]
    else:
        raise ValueError(f"side must be 's' or 'n', got {side!r}")
    if dist.size < 2:
        return math.nan
    far = prof[-1]
    dev = np.abs(prof - far)
    if dev[0] <= 1e-12 * max(1.0, abs(far)):
        return math.nan
    target = dev[0] / math.e
    below = np.flatnonzero(dev <= target)
    if below.size == 0:
        return math.nan
    k = int(below[0])
    if k == 0:
        return 0.0
    t = (dev[k - 1] - target) / (dev[k - 1] - dev[k])
    return float(dist[k - 1] + t * (dist[k] - dist[k - 1]))


# ----------------------------------------------------------------------------- line scans
def scan_energies(solution: Solution, e_max: float, n: int = 600) -> np.ndarray:
    """Energies E ≥ 0 (meV, n of them, from 0 to ``e_max``) for a line-scan DOS table.

    Four times denser in the coherence-peak window [0.8 min Δ(x), 1.15 max Δ(x) + 5Γ_D] than
    elsewhere (the DOS varies fastest there); the table is mirrored to E < 0 (N(−E) = N(E)).
    """
    e_max = _v.scalar("e_max", e_max, "meV", minimum=0.0, strict=True)
    n = int(_v.scalar("n", n, "", minimum=16))
    d = solution.delta
    lo, hi = 0.8 * float(d.min()), 1.15 * float(d.max()) + 5.0 * solution.junction.dynes_gamma
    fine = np.linspace(0.0, e_max, 20001)
    dens = 1.0 + 3.0 * ((fine >= lo) & (fine <= hi))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(fine))])
    return np.interp(np.linspace(0.0, cdf[-1], n), cdf, fine)


@dataclass(frozen=True)
class LineScan:
    """A simulated line scan: G(x, V) through the tunnelling chain, and the DOS it came from.

    Attributes
    ----------
    positions : ndarray (n_x,)
        Tip positions, nm (interface at 0).
    bias : ndarray (n_V,)
        Sample biases, mV.
    didv : ndarray (n_x, n_V)
        Normalised dI/dV.
    energies : ndarray (n_E,)
        Energies of the DOS table (both signs), meV.
    ldos : ndarray (n_x, n_E)
        N(x, E) at the positions.
    asymmetry : ndarray (n_x,)
        Coherence-peak asymmetry A = (G_peak − 1)/(G_peak + 1), mean of both bias signs.
    """

    positions: np.ndarray
    bias: np.ndarray
    didv: np.ndarray
    energies: np.ndarray
    ldos: np.ndarray
    asymmetry: np.ndarray


def dos_table(solution: Solution, e_max: float, n_energies: int = 600, *, gamma: float | None = None,
              progress: Callable[[float, str], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """N(x, E) at every node on ``n_energies`` energies E ≥ 0 (:func:`scan_energies`), mirrored to E < 0.

    Returns ``(E, N)`` with E (2n − 1,) in meV, increasing, and N (len(solution.x), 2n − 1).
    """
    Ep = scan_energies(solution, e_max, n_energies)
    Np = solution.dos(Ep, gamma=gamma, progress=progress)
    return np.concatenate([-Ep[:0:-1], Ep]), np.concatenate([Np[:, :0:-1], Np], axis=1)


def chain_energy(bias: np.ndarray, *, temperature: float, vmod_rms: float = 0.0) -> float:
    """Largest |E| (meV) a DOS table must cover for biases V (mV) through the chain: max|V| + √2 V_rms
    + 25 k_BT + 0.5 meV (beyond it the table is held at its end value)."""
    V = _v.array("bias", bias)
    return float(np.max(np.abs(V))) + math.sqrt(2.0) * vmod_rms + 25.0 * KB * temperature + 0.5


def didv_at(table: tuple[np.ndarray, np.ndarray], bias: np.ndarray, *, temperature: float, tip_delta: float = 0.0,
            tip_gamma: float = tunneling.DEFAULT_TIP_GAMMA, vmod_rms: float = 0.0) -> np.ndarray:
    """dI/dV (n_x, n_V) of DOS rows ``table = (E, N)`` (N: (n_x, n_E)), each through the tunnelling chain
    as ``dos.tabulated(E, N_x)``."""
    E, N = table
    V = _v.array("bias", bias).ravel()
    N = np.atleast_2d(N)
    return np.array([tunneling.didv(V, sample_dos=_dos.tabulated(E, row), temperature=temperature,
                                    tip_delta=tip_delta, tip_gamma=tip_gamma, vmod_rms=vmod_rms) for row in N])


def line_scan(solution: Solution, bias: np.ndarray | Sequence[float], positions: np.ndarray | Sequence[float], *,
              tip_delta: float = 0.0, tip_gamma: float = tunneling.DEFAULT_TIP_GAMMA, vmod_rms: float = 0.0,
              temperature: float | None = None, gamma: float | None = None, n_energies: int = 600,
              table: tuple[np.ndarray, np.ndarray] | None = None,
              progress: Callable[[float, str], None] | None = None) -> LineScan:
    """The dI/dV line scan a tip would record across the junction.

    N(x, ·) is solved on ``n_energies`` energies E ≥ 0 (:func:`scan_energies`, mirrored), then
    each position's N(x, E) goes through the tunnelling chain as ``dos.tabulated(E, N_x)``
    (exact cell averages of the piecewise-linear table):
    G(x, V) = didv(V; sample_dos = N_x, T, Δ_t, Γ_t, V_rms).

    Parameters
    ----------
    solution : Solution
    bias : array_like
        Biases, mV (uniform grids are fastest).
    positions : array_like
        Tip positions, nm (x ≤ 0: S).
    tip_delta, tip_gamma, vmod_rms : float
        The chain (:func:`gapscope.kernels.tunneling.didv`): tip gap and broadening (meV),
        lock-in amplitude (mV rms).
    temperature : float, optional
        Temperature of the chain, K (default: the junction's).
    gamma : float, optional
        Dynes term Γ_D of the DOS, meV (default: the junction's).
    n_energies : int
        Energies E ≥ 0 of the DOS table.
    table : (E, N), optional
        A :func:`dos_table` of this solution to reuse (it must cover the biases, see :func:`chain_energy`).
    progress : callable, optional
        ``progress(fraction, text)``; may raise to cancel.
    """
    V = _v.array("bias", bias).ravel()
    X = _v.array("positions", positions).ravel()
    if V.size == 0 or X.size == 0:
        raise ValueError("bias and positions must not be empty")
    T = TEMPERATURE.check(solution.junction.temperature if temperature is None else temperature)
    td, tg, vm = (tunneling.TIP_DELTA.check(tip_delta), tunneling.TIP_GAMMA.check(tip_gamma),
                  tunneling.VMOD_RMS.check(vmod_rms))
    base = 0.0
    if table is None:
        base = 0.8
        sub = None if progress is None else (lambda f, t: progress(0.8 * f, t))
        table = dos_table(solution, chain_energy(V, temperature=T, vmod_rms=vm), n_energies, gamma=gamma,
                          progress=sub)
    E, N = table
    if N.shape[0] != solution.x.size:
        raise ValueError("table must hold one DOS row per node of the solution (see dos_table)")
    Nx = _interp_rows(solution.x, solution.n_s, N, X)
    G = np.empty((X.size, V.size))
    for i in range(X.size):
        G[i] = tunneling.didv(V, sample_dos=_dos.tabulated(E, Nx[i]), temperature=T, tip_delta=td, tip_gamma=tg,
                              vmod_rms=vm)
        if progress is not None and (i % 16 == 0 or i == X.size - 1):
            progress(base + (1.0 - base) * (i + 1) / X.size, "line scan through the tunnelling chain")
    return LineScan(X, V, G, E, Nx, _asymmetry(V, G))


def _asymmetry(V: np.ndarray, G: np.ndarray) -> np.ndarray:
    if not (np.any(V < 0) and np.any(V > 0)):
        return np.full(G.shape[0], math.nan)
    return np.array([tunneling.peak_asymmetry(V, g)["mean"] for g in G])


def line_from_grid(grid: Any, *, channel: str | None = None, interface: float = 0.0,
                   axis: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A line of spectra from a Nanonis grid (:func:`gapscope.kernels.readers.read_grid`).

    The grid must be one pixel wide (n × 1 or 1 × n).  Returns ``(positions, bias, G)`` with
    positions the distance along the line (nm) minus ``interface`` (the interface position along
    the line), bias in mV and G (n_x, n_V) of the channel (default: the first dI/dV-like one).
    """
    names = list(grid.data)
    if channel is None:
        pick = [n for n in names if "li" in n.lower() or "didv" in n.lower().replace("/", "")]
        channel = pick[0] if pick else names[0]
    if channel not in grid.data:
        raise ValueError(f"channel {channel!r} not in the grid; channels: {names}")
    d = np.asarray(grid.data[channel], dtype=float)
    nx, ny = d.shape[:2]
    if nx > 1 and ny > 1:
        raise ValueError(f"the grid is {nx}×{ny}: a line scan needs one row or one column")
    axis = axis or ("x" if nx > 1 else "y")
    coords = np.asarray(grid.x if axis == "x" else grid.y, dtype=float)
    G = d.reshape(-1, d.shape[-1])
    return coords - coords[0] - float(interface), np.asarray(grid.bias, dtype=float), G


# ----------------------------------------------------------------------------- fits
@dataclass(frozen=True)
class ProfileFit:
    """Exponential fit Δ(x) = Δ_far + A·exp(−|x|/L_d) on one side (meV, nm), with 1σ errors."""

    decay_length: float
    decay_length_err: float
    delta_far: float
    delta_far_err: float
    amplitude: float
    amplitude_err: float
    redchi: float
    best_fit: np.ndarray


def _covariance(r: Any, n_data: int, sigma_given: bool) -> np.ndarray:
    J = r.jac
    dof = max(n_data - J.shape[1], 1)
    try:
        cov = np.linalg.pinv(J.T @ J)
    except np.linalg.LinAlgError:
        return np.full((J.shape[1], J.shape[1]), np.nan)
    if not sigma_given:
        cov *= float(np.sum(r.fun ** 2)) / dof
    return cov


def fit_decay(x: np.ndarray, delta: np.ndarray, *, side: str = "n", sigma: np.ndarray | float | None = None
              ) -> ProfileFit:
    """Fit Δ(x) = Δ_far + A e^{−|x|/L_d} to the points of one side (x ≥ 0 for "n", x ≤ 0 for "s").

    This is the phenomenological decay length of Lin et al.'s Fig. 4(d); compare with the
    model's 1/e length (:func:`decay_length`) and the Usadel fit (:func:`fit_profile`).
    Errors from the Jacobian, scaled by √χ²_red when ``sigma`` is None.
    """
    x = _v.array("x", x).ravel()
    d = _v.array("delta", delta).ravel()
    if x.shape != d.shape:
        raise ValueError("x and delta must have the same length")
    m = x >= 0 if side == "n" else x <= 0
    if side not in ("n", "s"):
        raise ValueError(f"side must be 's' or 'n', got {side!r}")
    u, y = np.abs(x[m]), d[m]
    if u.size < 4:
        raise ValueError("fit_decay needs at least four points on the chosen side")
    s = np.ones_like(y) if sigma is None else np.broadcast_to(_v.array("sigma", sigma), x.shape)[m]
    if np.any(s <= 0):
        raise ValueError("sigma must be > 0")
    order = np.argsort(u)
    far0 = float(np.mean(y[order][-max(2, u.size // 5):]))
    amp0 = float(y[order][0] - far0)
    L0 = max(float(np.ptp(u)) / 4.0, 1e-3)
    model = lambda p, uu: p[1] + p[2] * np.exp(-uu / p[0])
    r = least_squares(lambda p: (model(p, u) - y) / s, [L0, far0, amp0 if amp0 != 0 else 1e-3],
                      bounds=([1e-6, -np.inf, -np.inf], [np.inf, np.inf, np.inf]), x_scale="jac",
                      xtol=1e-12, ftol=1e-12, gtol=1e-12)
    cov = _covariance(r, u.size, sigma is not None)
    err = np.sqrt(np.maximum(np.diag(cov), 0.0))
    redchi = float(np.sum(r.fun ** 2)) / max(u.size - 3, 1)
    best = np.full(x.shape, np.nan)
    best[m] = model(r.x, u)
    return ProfileFit(float(r.x[0]), float(err[0]), float(r.x[1]), float(err[1]), float(r.x[2]), float(err[2]),
                      redchi, best)


@dataclass(frozen=True)
class UsadelFit:
    """Result of :func:`fit_profile` or :func:`fit_line_scan`.

    ``values`` and ``errors`` (1σ) by parameter name (junction parameters, ``x_offset`` in nm,
    ``scale``); ``decay_length_n`` ± ``decay_length_n_err`` is the model's 1/e length in S′ at the
    best fit (error propagated from the covariance).
    """

    values: dict[str, float]
    errors: dict[str, float]
    covariance: np.ndarray
    free: tuple[str, ...]
    junction: Junction
    solution: Solution
    best_fit: np.ndarray
    redchi: float
    nfev: int
    success: bool
    message: str
    decay_length_n: float = math.nan
    decay_length_n_err: float = math.nan


_FIT_EXTRA = {"x_offset": Spec("x_offset", "x₀", "nm", 0.0, (-5.0, 5.0), (-1e3, 1e3), 0.01,
                                "interface position in the data's frame"),
              "scale": Spec("scale", "s", "", 1.0, (0.01, 100.0), (1e-12, 1e12), 0.01, "conductance scale")}


def _fit(free: Sequence[str], junction: Junction, start: Mapping[str, float], bounds: Mapping[str, tuple[float, float]],
         forward: Callable[[Junction, Mapping[str, float], Solution | None], tuple[np.ndarray, Solution]],
         y: np.ndarray, s: np.ndarray, sigma_given: bool, solve_kw: Mapping[str, Any],
         progress: Callable[[float, str], None] | None) -> UsadelFit:
    spec_of = {sp.name: sp for sp in SPECS} | _FIT_EXTRA
    free = tuple(free)
    bad = [f for f in free if f not in spec_of or f == "temperature"]
    if bad:
        raise ValueError(f"cannot fit {bad}; choose from {sorted(set(spec_of) - {'temperature'})}")
    if not free:
        raise ValueError("free must name at least one parameter")
    base = {**junction.values(), "x_offset": 0.0, "scale": 1.0, **{k: float(v) for k, v in start.items()}}
    p0 = np.array([spec_of[f].check(base[f]) for f in free])
    lo = np.array([bounds.get(f, spec_of[f].soft)[0] for f in free], dtype=float)
    hi = np.array([bounds.get(f, spec_of[f].soft)[1] for f in free], dtype=float)
    for f, a in zip(free, lo, strict=True):
        if spec_of[f].open_low and a <= spec_of[f].bounds[0]:
            raise ValueError(f"the fit range of {f} must exclude its lower bound {spec_of[f].bounds[0]:g}")
    p0 = np.clip(p0, lo, hi)
    memo: dict[str, Any] = {"sol": None, "n": 0}

    def model(p: np.ndarray) -> tuple[np.ndarray, Solution, Junction]:
        vals = dict(base)
        vals.update(zip(free, (float(v) for v in p), strict=True))
        j = junction.replace(**{k: vals[k] for k in junction.values()})
        out, sol = forward(j, vals, memo["sol"])
        memo["sol"] = sol
        memo["n"] += 1
        if progress is not None:
            progress(min(0.95, memo["n"] / 60.0), f"fit: evaluation {memo['n']}")
        return out, sol, j

    def resid(p: np.ndarray) -> np.ndarray:
        return (model(p)[0] - y) / s

    r = least_squares(resid, p0, bounds=(lo, hi), x_scale="jac", diff_step=1e-4, xtol=1e-8, ftol=1e-10,
                      gtol=1e-10, max_nfev=200)
    cov = _covariance(r, y.size, sigma_given)
    err = np.sqrt(np.maximum(np.diag(cov), 0.0))
    best, sol, j = model(r.x)
    values = {**base, **dict(zip(free, (float(v) for v in r.x), strict=True))}
    # decay length and its error: dL/dp by central differences
    L = sol.decay_length_n
    grad = np.zeros(len(free))
    for k, f in enumerate(free):
        if f in ("x_offset", "scale"):
            continue
        h = 1e-3 * max(abs(r.x[k]), 1e-3)
        ends = []
        for sgn in (1.0, -1.0):
            pk = float(np.clip(r.x[k] + sgn * h, spec_of[f].bounds[0] + 1e-12, spec_of[f].bounds[1]))
            ends.append((pk, j.replace(**{f: pk}).solve(initial=sol, **solve_kw).decay_length_n))
        grad[k] = (ends[0][1] - ends[1][1]) / (ends[0][0] - ends[1][0])
    L_err = float(np.sqrt(max(grad @ cov @ grad, 0.0))) if np.all(np.isfinite(cov)) else math.nan
    return UsadelFit(values, {f: float(e) for f, e in zip(free, err, strict=True)}, cov, free, j, sol, best,
                     float(np.sum(r.fun ** 2)) / max(y.size - len(free), 1), int(r.nfev) + 1, bool(r.success),
                     str(r.message), float(L), L_err)


def _sigma(sigma: np.ndarray | float | None, shape: tuple[int, ...]) -> np.ndarray:
    if sigma is None:
        return np.ones(shape)
    s = np.broadcast_to(_v.array("sigma", sigma), shape)
    if np.any(s <= 0):
        raise ValueError("sigma must be > 0")
    return np.array(s, dtype=float)


def fit_profile(x: np.ndarray, delta: np.ndarray, *, junction: Junction, free: Sequence[str] = ("xi_n",),
                start: Mapping[str, float] | None = None, bounds: Mapping[str, tuple[float, float]] | None = None,
                sigma: np.ndarray | float | None = None, points_per_xi: float = 12.0,
                progress: Callable[[float, str], None] | None = None) -> UsadelFit:
    """Fit the self-consistent Usadel Δ(x) to a measured gap profile (x in nm, Δ in meV).

    The model is ``Solution.at(x − x_offset)``; ``free`` names junction parameters (e.g.
    ``"xi_n"``, ``"gamma_b"``, ``"delta_n"``) and optionally ``"x_offset"`` (the interface in
    the data's frame).  Start values come from ``junction`` (and ``start``), fit ranges from
    the specs' usual ranges (or ``bounds``).  scipy ``least_squares``; 1σ errors from the
    Jacobian (scaled by √χ²_red when ``sigma`` is None).  The result also carries the model's 1/e
    decay length in S′ with its propagated error.
    """
    X = _v.array("x", x).ravel()
    y = _v.array("delta", delta).ravel()
    if X.shape != y.shape or X.size < len(tuple(free)) + 2:
        raise ValueError("x and delta must have the same length, larger than the number of free parameters + 1")
    s = _sigma(sigma, X.shape)
    kw: dict[str, Any] = {"points_per_xi": points_per_xi, "tol": 1e-10}

    def forward(j: Junction, vals: Mapping[str, float], prev: Solution | None) -> tuple[np.ndarray, Solution]:
        sol = j.solve(initial=prev, **kw)
        return sol.at(X - vals["x_offset"]), sol

    return _fit(free, junction, start or {}, bounds or {}, forward, y, s, sigma is not None, kw, progress)


def fit_line_scan(positions: np.ndarray, bias: np.ndarray, didv: np.ndarray, *, junction: Junction,
                  free: Sequence[str] = ("xi_n", "gamma_b", "scale"), start: Mapping[str, float] | None = None,
                  bounds: Mapping[str, tuple[float, float]] | None = None, sigma: np.ndarray | float | None = None,
                  tip_delta: float = 0.0, tip_gamma: float = tunneling.DEFAULT_TIP_GAMMA, vmod_rms: float = 0.0,
                  temperature: float | None = None, n_energies: int = 300, points_per_xi: float = 12.0,
                  progress: Callable[[float, str], None] | None = None) -> UsadelFit:
    """Fit a whole line scan G(x, V) (e.g. a ``.3ds`` line, :func:`line_from_grid`) with the Usadel model.

    Model: scale · G_model(x − x_offset, V), G_model from :func:`line_scan` with the given chain
    (a superconducting tip deconvolves naturally: Δ_t, Γ_t).  ``didv`` is (len(positions),
    len(bias)); NaN points are dropped.  Free parameters, ranges and errors as in
    :func:`fit_profile`.
    """
    X = _v.array("positions", positions).ravel()
    V = _v.array("bias", bias).ravel()
    G = np.asarray(didv, dtype=float)
    if G.shape != (X.size, V.size):
        raise ValueError(f"didv must have shape (len(positions), len(bias)) = {(X.size, V.size)}, got {G.shape}")
    mask = np.isfinite(G)
    if mask.sum() < len(tuple(free)) + 2:
        raise ValueError("too few finite data points")
    s = _sigma(sigma, G.shape)[mask]
    kw: dict[str, Any] = {"points_per_xi": points_per_xi, "tol": 1e-10}
    chain: dict[str, Any] = dict(tip_delta=tip_delta, tip_gamma=tip_gamma, vmod_rms=vmod_rms, temperature=temperature)

    def forward(j: Junction, vals: Mapping[str, float], prev: Solution | None) -> tuple[np.ndarray, Solution]:
        sol = j.solve(initial=prev, **kw)
        ls = line_scan(sol, V, X - vals["x_offset"], n_energies=n_energies, **chain)
        return vals["scale"] * ls.didv[mask], sol

    return _fit(free, junction, start or {}, bounds or {}, forward, G[mask], s, sigma is not None, kw, progress)


def match_decay_length(target: float, *, junction: Junction, parameter: str = "xi_n",
                       bracket: tuple[float, float] | None = None, side: str = "n", xtol: float = 1e-4) -> float:
    """The value of ``parameter`` (default ξ_S′) at which the model's 1/e decay length equals ``target`` (nm).

    Brent's method on L_1/e(p) − target within ``bracket`` (default: the spec's usual range).
    With Lin et al.'s other values (ξ_S = 6 nm, γ = 1, r = 0.02, ω_c = 30 meV) L_d = 3.55 nm
    needs ξ_S′ ≈ 2.6 nm; L_1/e ≈ 1.35 ξ_S′.

    Raises
    ------
    ValueError
        The target is not reached inside the bracket.
    """
    target = _v.scalar("target", target, "nm", minimum=0.0, strict=True)
    spec = {sp.name: sp for sp in SPECS}.get(parameter)
    if spec is None or parameter == "temperature":
        raise ValueError(f"parameter must be a junction parameter, got {parameter!r}")
    lo, hi = bracket if bracket is not None else spec.soft
    if spec.open_low:
        lo = max(lo, spec.bounds[0] + 1e-9)
    cache: dict[float, Solution] = {}

    def f(p: float) -> float:
        prev = cache[min(cache, key=lambda q: abs(q - p))] if cache else None
        j = junction.replace(**{parameter: p})
        if parameter in ("xi_n", "xi_s"):   # keep the side at least as long as its ξ
            side_len = "length_n" if parameter == "xi_n" else "length_s"
            j = j.replace(**{side_len: max(getattr(j, side_len), p)})
        sol = j.solve(initial=prev)
        cache[p] = sol
        L = sol.decay_length_n if side == "n" else sol.decay_length_s
        if not math.isfinite(L):
            raise ValueError(f"no decay length at {parameter} = {p:g}")
        return L - target

    flo, fhi = f(lo), f(hi)
    if flo * fhi > 0:
        raise ValueError(f"a decay length of {target:g} nm is not reached for {parameter} in [{lo:g}, {hi:g}] "
                         f"(L − target = {flo:+.3g} … {fhi:+.3g} nm)")
    return float(brentq(f, lo, hi, xtol=xtol))


# ----------------------------------------------------------------------------- fit model
# The Usadel junction as a fit model of the registry (:mod:`.models`): the sample DOS of a spectrum is
# N(x, E) at its tip position x, so one spectrum fits with ``fitting.fit(model="usadel")`` and a line
# scan with ``fitting.fit_global`` (x per spectrum).  Imported here, after the kernels.
import threading  # noqa: E402
from collections import OrderedDict  # noqa: E402

from . import models as _models  # noqa: E402
from .fit_global import Tie  # noqa: E402

POSITION = Spec("x", "x", "nm", 0.0, (-30.0, 60.0), (-2000.0, 2000.0), 0.01,
                "tip position across the junction (x ≤ 0: S, x > 0: S′; interface at 0)")
#: numerics of the registered model (those of :func:`fit_line_scan`'s defaults)
FIT_POINTS_PER_XI = 12.0
FIT_N_ENERGIES = 300
FIT_TOL = 1e-10
#: relative Jacobian step of the model: the solves converge to ~1e-10 meV, so the default √ε step
#: (~1e-8 relative) would difference round-off (:func:`fit_line_scan` uses the same step)
FIT_DIFF_STEP = 1e-4
#: most residual evaluations of one fit (as :func:`fit_line_scan`): each costs at most one solve, each
#: Jacobian one per free junction parameter, so a fit costs at most 200·(1 + free junction parameters) solves
FIT_MAX_NFEV = 200
_E_QUANTUM = 0.5        # meV: a DOS table's range is rounded up to a multiple (spectra of one sweep share it)
_CACHE_BYTES = 2e8      # tables kept by one model's cache


class _JunctionCache:
    """Solutions and DOS tables of recently used junctions (LRU), shared by every spectrum of a fit.

    A line scan's spectra differ only in x: each parameter set is solved once (Matsubara
    self-consistency and the retarded N(x_node, E) table), not once per spectrum.  Each new solve
    starts from the last solution (as :func:`fit_line_scan` does).  Thread-safe.
    """

    def __init__(self, points_per_xi: float, n_energies: int, size: int = 8) -> None:
        self.points_per_xi = float(points_per_xi)
        self.n_energies = int(n_energies)
        self.size = int(size)
        self._solutions: OrderedDict[Junction, Solution] = OrderedDict()
        self._tables: OrderedDict[tuple[Junction, float], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._last: Solution | None = None
        self._lock = threading.RLock()
        self.solves = 0

    @staticmethod
    def _tick(fraction: float, text: str) -> None:
        _models.checkpoint()        # a cancelled fit stops inside the solve

    def solution(self, junction: Junction) -> Solution:
        with self._lock:
            sol = self._solutions.get(junction)
            if sol is not None:
                self._solutions.move_to_end(junction)
                return sol
            sol = junction.solve(points_per_xi=self.points_per_xi, tol=FIT_TOL, initial=self._last,
                                 progress=self._tick)
            self.solves += 1
            self._last = sol
            self._solutions[junction] = sol
            while len(self._solutions) > self.size:
                self._solutions.popitem(last=False)
            return sol

    def table(self, junction: Junction, e_max: float) -> tuple[Solution, np.ndarray, np.ndarray]:
        with self._lock:
            sol = self.solution(junction)
            key = (junction, e_max)
            tab = self._tables.get(key)
            if tab is None:
                tab = dos_table(sol, e_max, self.n_energies, progress=self._tick)
                self._tables[key] = tab
                while len(self._tables) > 1 and (len(self._tables) > self.size
                                                 or sum(t[1].nbytes for t in self._tables.values()) > _CACHE_BYTES):
                    self._tables.popitem(last=False)
            else:
                self._tables.move_to_end(key)
            return sol, tab[0], tab[1]

    def clear(self) -> None:
        with self._lock:
            self._solutions.clear()
            self._tables.clear()
            self._last = None


class UsadelDOS:
    """The local DOS N(x, E) of a junction at one position x, as a sample DOS (:mod:`.sampling`).

    N(x, E) = Re cos θ(x, E) (:meth:`Solution.dos`) at the grid nodes on ``n_energies`` energies
    E ≥ 0 (:func:`scan_energies`, mirrored; dense at the coherence peaks), linearly interpolated to
    x between the nodes of its side, then piecewise linear in E (:func:`gapscope.kernels.dos.tabulated`,
    exact cell averages; held at its end value beyond the table).  The table is built on first use
    and covers the energies asked for (its range rounded up to a multiple of 0.5 meV, so the spectra
    of one sweep share one table).  Declared finest scale: the Dynes term Γ_D.
    """

    def __init__(self, cache: _JunctionCache, junction: Junction, x: float) -> None:
        self._cache = cache
        self.junction = junction
        self.x = POSITION.check(x)
        self.width = float(junction.dynes_gamma)
        self._tab: _dos.TabulatedDOS | None = None
        self.solution = cache.solution(junction)

    def tabulated(self, e_need: float) -> _dos.TabulatedDOS:
        """The DOS table at x covering |E| ≤ ``e_need`` (meV); the first table is kept unless a later
        call needs more."""
        if self._tab is None or e_need > self._tab.energies[-1]:
            e_max = _E_QUANTUM * math.ceil(max(e_need, _E_QUANTUM) / _E_QUANTUM)
            sol, E, N = self._cache.table(self.junction, e_max)
            row = _interp_rows(sol.x, sol.n_s, N, np.array([self.x]))[0]
            self._tab = _dos.tabulated(E, np.maximum(row, 0.0))
        return self._tab

    def __call__(self, E: np.ndarray) -> np.ndarray:
        E = np.asarray(E, dtype=float)
        return self.tabulated(float(np.max(np.abs(E))) if E.size else 0.0)(E)

    def cell_average(self, E: np.ndarray, h: float) -> np.ndarray:
        E = np.asarray(E, dtype=float)
        need = (float(np.max(np.abs(E))) if E.size else 0.0) + 2.0 * abs(float(h))
        return self.tabulated(need).cell_average(E, h)


#: the model's name of the mismatch γ: "gamma" is the Dynes Γ of the other models, and a dashboard switching
#: models keeps the values of same-named parameters
MISMATCH_NAME = "gamma_mismatch"


def _fit_spec(spec: Spec) -> Spec:
    """A copy of a junction spec for the fit model (the junction's own specs are probed on :class:`Junction`,
    whose checks couple them: a side's length against its ξ, ω_c against the gaps)."""
    return spec.replace(name=MISMATCH_NAME) if spec is GAMMA else spec.replace()


#: junction parameters of the fit model (temperature comes from the chain): free by default ξ_S′ and γ_B
#: (as :func:`fit_line_scan`); the sides' start lengths (60 and 40 nm, ≥ 10 ξ) are chosen, not Lin et al.'s
_MODEL_PARAMS = tuple(
    _models.fit_param(_fit_spec(sp), vary=sp in (XI_N, GAMMA_B), fit_range=sp.soft,
                      start={LENGTH_S.name: 60.0, LENGTH_N.name: 40.0}.get(sp.name))
    for sp in SPECS if sp is not TEMPERATURE) + (_models.fit_param(POSITION, vary=False),)


def usadel_model(name: str = "usadel", *, points_per_xi: float = FIT_POINTS_PER_XI,
                 n_energies: int = FIT_N_ENERGIES, cache_size: int = 8) -> _models.FitModel:
    """A fit model (not registered) whose sample DOS is the Usadel N(x, E) of a junction at position x.

    Parameters: the junction's (:class:`Junction`; its temperature is the chain's ``temperature``,
    its mismatch γ is called ``gamma_mismatch``) and the tip position ``x`` (nm, interface at 0).
    Every call of its ``sample(**params)`` with the same junction parameters reuses one solve and
    one DOS table (an LRU cache of ``cache_size`` parameter sets per model), so a line scan of N
    spectra costs one Usadel solve per parameter set, not N.

    A line scan G (len(positions), len(bias)) is then one global fit with x per spectrum::

        fitting.fit_global(line_scan_datasets(positions, bias, G), model="usadel",
                           shared=["xi_n", "gamma_b", "scale"], series={"x": positions},
                           initial={...junction..., "temperature": T})

    or, with the interface position x₀ free, ``series={"position": positions, "x": position_tie()}``
    (x_i = position_i − x_offset).  ``points_per_xi``, ``n_energies``: the numerics (:meth:`Junction.solve`,
    :func:`dos_table`).  The registered ``usadel`` model uses the defaults; register another with
    ``models.register(usadel_model("usadel_coarse", points_per_xi=8, n_energies=150))``.
    """
    ppx = _v.scalar("points_per_xi", points_per_xi, "", minimum=4.0)
    n = int(_v.scalar("n_energies", n_energies, "", minimum=16))
    cache = _JunctionCache(ppx, n, cache_size)

    return _models.FitModel(name, _MODEL_PARAMS, UsadelSample(cache),
                            "Usadel S/S′ junction: the local DOS at the tip position x (self-consistent 1D model)",
                            topic=__name__, chain=("temperature",), diff_step=FIT_DIFF_STEP,
                            max_nfev=FIT_MAX_NFEV)


class UsadelSample:
    """``sample(**params)`` of a :func:`usadel_model`: a :class:`UsadelDOS`; ``cache`` its solutions."""

    def __init__(self, cache: _JunctionCache) -> None:
        self.cache = cache

    def __call__(self, *, x: float, temperature: float, gamma_mismatch: float, **junction: float) -> UsadelDOS:
        return UsadelDOS(self.cache, Junction(temperature=temperature, gamma=gamma_mismatch, **junction), x)


def _shifted(position: np.ndarray, x_offset: float) -> np.ndarray:
    return position - x_offset


def position_tie(*, on: str = "position", x_offset: float | None = None, vary: bool = True) -> Tie:
    """The Tie x_i = position_i − x_offset of a line scan (``series={on: positions, "x": position_tie()}``).

    ``x_offset`` (nm) is the interface position in the data's frame: a shared parameter of the
    global fit, free unless ``vary=False`` (start: ``x_offset`` or 0; fit range ±5 nm, set others
    through ``bounds``).
    """
    spec = _FIT_EXTRA["x_offset"]
    start = spec.default if x_offset is None else spec.check(x_offset)
    return Tie(_shifted, on=on, x_offset=_models.fit_param(spec, vary=vary, start=start, fit_range=spec.soft))


def line_scan_datasets(positions: np.ndarray, bias: np.ndarray, didv: np.ndarray
                       ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The spectra of a line scan G (len(positions), len(bias)) as the ``datasets`` of ``fit_global``."""
    X = _v.array("positions", positions).ravel()
    V = _v.array("bias", bias).ravel()
    G = np.asarray(didv, dtype=float)
    if G.shape != (X.size, V.size):
        raise ValueError(f"didv must have shape (len(positions), len(bias)) = {(X.size, V.size)}, got {G.shape}")
    return [(V, G[i]) for i in range(X.size)]


USADEL = _models.register(usadel_model())
