"""Coupled Yu-Shiba-Rusinov states in short adatom chains: LCAO and extended models, spectra along the chain.

Two models of N identical magnetic adatoms on a line (Friedrich, Boshuis, Bode and Odobesko,
"Coupling of Yu-Shiba-Rusinov states in 1D chains of Fe atoms on Nb(110)", 2023, see
``references.cite("friedrich2023_fe_chains")``; the extended model after Ruby et al., Phys. Rev.
Lett. 120, 156803 (2018)):

* **LCAO** (:func:`lcao`): the symmetric Toeplitz matrix H_ii = E₀, H_{i,i±m} = k_m of the
  single-atom YSR state E₀ and the hoppings k₁, k₂, k₃, … between m-th neighbours (meV).
  The eigenstates are even (+1) or odd (−1) under the chain's mirror j → N − 1 − j; the
  Hamiltonian is diagonalised separately in the two projected subspaces P± = (1 ± R)/2, so
  degenerate levels keep clean parity labels.  Closed forms (paper's Eqs. S6–S11, with S10/S11
  corrected: the printed "k₃³" under the roots is k₃²/4):
  dimer E = E₀ ± k₁ (even +); trimer E_e = E₀ + k₂/2 ± √(2k₁² + k₂²/4), E_o = E₀ − k₂;
  tetramer E_e = E₀ + (k₁ + k₃)/2 ± √(5k₁²/4 + 2k₁k₂ − k₁k₃/2 + k₂² + k₃²/4),
  E_o = E₀ − (k₁ + k₃)/2 ± √(5k₁²/4 − 2k₁k₂ − k₁k₃/2 + k₂² + k₃²/4).
* **Extended** (:func:`extended`): 1D sites r_j = j d, single-atom states
  φ(r) = √(2/λ_F) sinc(2πr/λ_F) (sinc x = sin x / x, ∫φ² = 1) and a Gaussian exchange potential
  J(r) = J₀ P e^{−r²/ξ_J²}.  The generalised problem (E₀S + V)c = ESc with the overlaps
  S_ij = sinc(2π(r_i − r_j)/λ_F) and V_ij = Σ_{k≠j} ∫φ_i J_k φ_j gives the shifts E − E₀, linear in
  J₀; for the dimer E − E₀ = (C ± D)/(1 ± S) (Eq. S4).

Spectra along the chain (:func:`chain_dos`, :func:`line_spectra`): each eigenstate n (energy E_n,
coefficients C_jn on the sites, Σ_j C_jn² = 1) is a Lorentzian peak whose weight at the tip
position x is W_n(x) = [Σ_j C_jn g(x − x_j)]², with a Gaussian envelope g(u) = exp(−u²/2w²) of
width w at each site (peak 1 on an isolated site); the sample DOS at x is

    ρ(x, E) = N_D(E; Δ, Γ) + a Σ_n W_n(x) [u² L(E − E_n) + (1 − u²) L(E + E_n)],
    L(ε) = (Γ_YSR/π)/(ε² + Γ_YSR²),

with N_D the Dynes DOS of the substrate, a the spectral weight (meV) of a state on an isolated
site and u² its electron fraction; it goes through the house tunnelling chain
(:func:`gapscope.kernels.tunneling.didv`, a superconducting tip at the experiment's 1.4 K).
Sum rules: Σ_n W_n(x) = Σ_j g(x − x_j)² (completeness of the C_jn), ∫[ρ − N_D] dE = a Σ_n W_n(x).

Units: energies meV, lengths nm, J₀ meV·nm (with the normalisation used here ∫J dr = J₀).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.linalg import eigh

from . import _validate as _v
from . import dos as _dos
from . import tunneling
from .sampling import PointDOS
from .specs import Spec

__all__ = ["E0", "K1", "K2", "K3", "N_SITES", "D", "XI_J", "J0", "LAMBDA_F", "SPACING", "WIDTH", "DELTA",
           "GAMMA", "GAMMA_YSR", "WEIGHT", "ELECTRON_FRACTION", "reflection_basis", "lcao_matrix", "lcao",
           "lcao_states", "lcao_fan", "extended_matrices", "extended", "extended_states", "extended_fan",
           "EXTENDED_FAN_VARIABLES", "site_positions",
           "profile_weights", "chain_dos", "line_spectra"]

# ----------------------------------------------------------------------------- parameters
E0 = Spec("e0", "E₀", "meV", 0.6, (-1.5, 1.5), (-50.0, 50.0), 0.01,
          "single-atom YSR energy (LCAO: the centre energy E₀′ the paper aligns to)")
K1 = Spec("k1", "k₁", "meV", 0.40, (-1.0, 1.0), (-50.0, 50.0), 0.01, "hopping between nearest neighbours")
K2 = Spec("k2", "k₂", "meV", 0.0, (-0.5, 0.5), (-50.0, 50.0), 0.01, "hopping between second neighbours")
K3 = Spec("k3", "k₃", "meV", 0.0, (-0.5, 0.5), (-50.0, 50.0), 0.01, "hopping between third neighbours")
N_SITES = Spec("n", "N", "", 2, (1, 12), (1, 400), 1, "number of atoms in the chain", integer=True)
D = Spec("d", "d", "nm", 0.35, (0.05, 1.5), (0.0, 1e3), 0.01, "inter-atomic distance (extended model)",
         open_low=True)
XI_J = Spec("xi_j", "ξ_J", "nm", 0.4, (0.02, 1.5), (0.0, 1e3), 0.01, "decay length of the exchange potential",
            open_low=True)
J0 = Spec("j0", "J₀", "meV·nm", 1.0, (0.05, 5.0), (0.0, 1e4), 0.05,
          "strength of the exchange potential, ∫J(r)dr = J₀", open_low=True)
LAMBDA_F = Spec("lambda_f", "λ_F", "nm", 1.0, (0.2, 5.0), (0.0, 1e3), 0.01, "Fermi wavelength", open_low=True)
SPACING = Spec("spacing", "a_chain", "nm", 0.2853, (0.1, 1.5), (0.0, 50.0), 0.001,
               "distance between neighbouring atoms (extended model: d)", open_low=True)
WIDTH = Spec("width", "w", "nm", 0.15, (0.03, 0.5), (0.0, 10.0), 0.01,
             "width of the Gaussian envelope of a YSR state at its site (line profiles)", open_low=True)
DELTA = Spec("delta", "Δ", "meV", 1.52, (0.2, 3.0), (0.0, 20.0), 0.01, "substrate gap", open_low=True)
GAMMA = Spec("gamma", "Γ", "meV", 0.02, (0.001, 0.2), (0.0, 5.0), 0.001, "Dynes broadening of the substrate",
             open_low=True)
GAMMA_YSR = Spec("gamma_ysr", "Γ_YSR", "meV", 0.03, (0.002, 0.3), (0.0, 10.0), 0.001,
                 "half-width of the Lorentzian YSR peaks", open_low=True)
WEIGHT = Spec("weight", "a_YSR", "meV", 0.1, (0.0, 0.5), (0.0, 100.0), 0.005,
              "spectral weight of a YSR state on an isolated site")
ELECTRON_FRACTION = Spec("electron_fraction", "u²", "", 0.7, (0.0, 1.0), (0.0, 1.0), 0.01,
                         "electron part u² of each YSR state (hole part 1 − u²)")

_GH_NODES = 160            # Gauss–Hermite nodes per exchange centre (exact to ~1e-14 for ξ_J ≤ 2λ_F)
_GH = np.polynomial.hermite.hermgauss(_GH_NODES)
_S_FLOOR = 1e-9            # smallest eigenvalue of the overlap matrix S that the generalised eigenproblem accepts


def _n(n: int) -> int:
    if isinstance(n, bool):
        raise ValueError(f"n must be an integer number of atoms, got {n!r}")
    return int(N_SITES.check(n))


def _hoppings(hoppings: Sequence[float]) -> np.ndarray:
    try:
        ks = [float(k) if not isinstance(k, bool) else k for k in hoppings]
    except TypeError:
        raise ValueError(f"hoppings must be a sequence (k1, k2, …) in meV, got {hoppings!r}") from None
    specs = (K1, K2, K3)
    out = []
    for m, k in enumerate(ks, start=1):
        spec = specs[m - 1] if m <= 3 else K3.replace(name=f"k{m}", symbol=f"k{m}")
        out.append(spec.check(k))
    return np.array(out, dtype=float)


# ----------------------------------------------------------------------------- symmetry
def reflection_basis(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal bases of the even and odd subspaces of the mirror R: j → N − 1 − j.

    Returns (B₊, B₋) of shapes (N, ⌈N/2⌉) and (N, ⌊N/2⌋): columns (e_j ± e_{N−1−j})/√2 for
    j < N/2 and, for odd N, the centre site e_{(N−1)/2} in B₊.  B±ᵀ R B± = ±1.
    """
    n = _n(n)
    half = n // 2
    be = np.zeros((n, n - half))
    bo = np.zeros((n, half))
    r2 = 1.0 / math.sqrt(2.0)
    for j in range(half):
        be[j, j] = be[n - 1 - j, j] = r2
        bo[j, j], bo[n - 1 - j, j] = r2, -r2
    if n % 2:
        be[half, half] = 1.0
    return be, bo


def _sectors(h: np.ndarray, s: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenpairs of (h, s) (s = 1 if None) in the even and odd subspaces: (E ascending, parity, C)."""
    n = h.shape[0]
    be, bo = reflection_basis(n)
    vals, pars, vecs = [], [], []
    for b, p in ((be, 1), (bo, -1)):
        if b.shape[1] == 0:
            continue
        hb = b.T @ h @ b
        if s is None:
            e, c = np.linalg.eigh(hb)
        else:
            e, c = eigh(hb, b.T @ s @ b)
        vals.append(e)
        pars.append(np.full(e.size, p))
        vecs.append(b @ c)
    E = np.concatenate(vals)
    P = np.concatenate(pars)
    C = np.concatenate(vecs, axis=1)
    order = np.argsort(E, kind="stable")
    E, P, C = E[order], P[order], C[:, order]
    tol = 1e-10 * max(1.0, float(np.abs(E).max()))       # degenerate within round-off: even first
    lo = 0
    for hi in range(1, E.size + 1):
        if hi == E.size or E[hi] - E[hi - 1] > tol:
            if hi - lo > 1:
                sub = lo + np.argsort(-P[lo:hi], kind="stable")
                P[lo:hi], C[:, lo:hi] = P[sub], C[:, sub]
            lo = hi
    return E, P, C


# ----------------------------------------------------------------------------- LCAO
def lcao_matrix(n: int, *, e0: float, hoppings: Sequence[float]) -> np.ndarray:
    """The N×N LCAO Hamiltonian (meV): H_ii = E₀, H_{i,i±m} = k_m (hoppings beyond N − 1 neighbours have no pair)."""
    n = _n(n)
    e0 = E0.check(e0)
    ks = _hoppings(hoppings)
    first = np.zeros(n)
    first[0] = e0
    m = min(ks.size, n - 1)
    first[1:1 + m] = ks[:m]
    idx = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    return first[idx]


def lcao_states(n: int, *, e0: float, hoppings: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenstates of the LCAO chain: (energies ascending meV, parities ±1, coefficients C (N, N)).

    Column n of C is the normalised eigenvector of energy E_n (Σ_j C_jn² = 1), even (+1) or
    odd (−1) under j → N − 1 − j; computed in the two mirror subspaces (:func:`reflection_basis`),
    so degenerate levels keep clean parities (ties: even first).
    """
    h = lcao_matrix(n, e0=e0, hoppings=hoppings)
    return _sectors(h)


def lcao(n: int, *, e0: float, hoppings: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """YSR energies and parities of an N-atom chain in the LCAO model.

    H_ii = E₀, H_{i,i±m} = k_m;  nearest neighbours only: E_n = E₀ + 2k₁ cos(nπ/(N + 1)),
    parity (−1)^{n+1} (n = 1 … N from the top for k₁ > 0: the highest state is even).

    Parameters
    ----------
    n : int
        Number of atoms N (1 … 400).
    e0 : float
        Single-atom YSR energy E₀, meV.
    hoppings : sequence of float
        (k₁, k₂, k₃, …): hoppings to 1st, 2nd, 3rd … neighbours, meV.

    Returns
    -------
    energies : ndarray (N,)
        Ascending, meV.
    parities : ndarray (N,) of int
        +1 even, −1 odd under the chain's mirror (diagonalised per mirror subspace, so
        degenerate levels keep clean labels; ties are listed even first).
    """
    E, P, _ = lcao_states(n, e0=e0, hoppings=hoppings)
    return E, P.astype(int)


def lcao_fan(n: int, *, e0: float, hoppings: Sequence[float], k1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Even and odd LCAO energies (meV) along a sweep of k₁ (the fan diagram), the other hoppings fixed.

    Returns (even, odd) of shapes (len(k1), ⌈N/2⌉) and (len(k1), ⌊N/2⌋), ascending per row: one
    batched diagonalisation per mirror subspace, H(k₁) = H(0) + k₁ T₁.  ``hoppings`` are (k₂, k₃, …)
    are the full (k₁, k₂, …) tuple; its k₁ is replaced by the sweep.
    """
    ks = _v.array("k1", np.atleast_1d(k1)).ravel()
    for k in ks:
        K1.check(k)
    hs = list(hoppings) if len(hoppings) else [0.0]
    h0 = lcao_matrix(n, e0=e0, hoppings=[0.0, *hs[1:]])
    t1 = lcao_matrix(n, e0=0.0, hoppings=[1.0]) if n > 1 else np.zeros((1, 1))
    out = []
    for b in reflection_basis(n):
        if b.shape[1] == 0:
            out.append(np.zeros((ks.size, 0)))
            continue
        stack = (b.T @ h0 @ b)[None] + ks[:, None, None] * (b.T @ t1 @ b)[None]
        out.append(np.linalg.eigvalsh(stack))
    return out[0], out[1]


# ----------------------------------------------------------------------------- extended model
def _extended_args(d: float, xi_j: float, j0: float, lambda_f: float, norm: str) -> tuple[float, float]:
    d = D.check(d)
    xi = XI_J.check(xi_j)
    J0.check(j0)
    lam = LAMBDA_F.check(lambda_f)
    if norm not in ("consistent", "printed"):
        raise ValueError(f"norm must be 'consistent' or 'printed', got {norm!r}")
    if d / lam < 0.02:
        raise ValueError(f"d = {d:g} nm is below 0.02 λ_F = {0.02 * lam:g} nm: the sinc states are then almost "
                         "identical and the overlap matrix S is singular")
    if xi / lam > 2.0:
        raise ValueError(f"xi_j = {xi:g} nm exceeds 2 λ_F = {2 * lam:g} nm: the Gaussian exchange potential "
                         "is then no longer local (and its quadrature not converged)")
    return d / lam, xi / lam


def extended_matrices(n: int, *, d: float, xi_j: float, lambda_f: float, norm: str = "consistent"
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Overlap S and exchange V (units of J₀/λ_F) of the extended model: (S, V), both (N, N).

    S_ij = sinc(2π(r_i − r_j)/λ_F) (exact), V_ij = Σ_{k≠j} ∫φ_i J_k φ_j by Gauss–Hermite quadrature
    about each centre r_k (160 nodes).  ``norm`` "consistent": J = J₀ e^{−r²/ξ_J²}/(√π ξ_J);
    "printed": the supplement's J₀ e^{−r²/ξ_J²}/√(π ξ_J) with lengths in units of λ_F (V × √(ξ_J/λ_F)).
    """
    n = _n(n)
    dd, xi = _extended_args(d, xi_j, 1.0, lambda_f, norm)
    r = dd * np.arange(n)                                   # units of λ_F
    S = np.sinc(2.0 * np.subtract.outer(r, r))              # np.sinc(x) = sin(πx)/(πx)
    x, w = _GH
    pts = r[:, None] + xi * x[None, :]                      # (k, m): nodes around centre k
    V = np.zeros((n, n))
    own = np.zeros((n, n))                                  # own[i, j] = ∫φ_i J_j φ_j (the k = j term, dropped)
    for k in range(n):                                      # memory O(N²) per centre, not O(N³)
        phi = math.sqrt(2.0) * np.sinc(2.0 * (pts[k][:, None] - r[None, :]))     # φ_i at the nodes of centre k
        Mk = (phi * w[:, None]).T @ phi / math.sqrt(math.pi)                       # ∫φ_i J_k φ_j, J₀ = λ_F = 1
        V += Mk
        own[:, k] = Mk[:, k]
    V -= own
    V = 0.5 * (V + V.T)                                     # symmetric in 1D (φ, J even); removes round-off
    if norm == "printed":
        V = V * math.sqrt(xi)
    return S, V


def extended_states(n: int, *, d: float, xi_j: float, j0: float, lambda_f: float, norm: str = "consistent"
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shifts (units of J₀/λ_F, ascending), parities and coefficients c (N, N) of the extended model.

    The coefficients solve V c = s S c; each column is scaled to Σ_j c_j² = 1 (for line profiles).
    Raises ``ValueError`` when S is numerically singular (smallest eigenvalue < 1e-9: for d < λ_F/2
    the sinc states of a long chain are over-complete).
    """
    _extended_args(d, xi_j, j0, lambda_f, norm)
    S, V = extended_matrices(n, d=d, xi_j=xi_j, lambda_f=lambda_f, norm=norm)
    smallest = float(np.linalg.eigvalsh(S)[0])
    if smallest < _S_FLOOR:
        raise ValueError(f"the {n} sinc states at d = {d / lambda_f:.3g} λ_F are numerically linearly dependent "
                         f"(smallest eigenvalue of the overlap S: {smallest:.2g}): for d < λ_F/2 the band-limited sinc "
                         "states of a long chain are over-complete; use fewer atoms or d ≥ λ_F/2")
    E, P, C = _sectors(V, S)
    return E, P, C / np.linalg.norm(C, axis=0)


def extended(n: int, *, d: float, xi_j: float, j0: float, lambda_f: float, norm: str = "consistent"
             ) -> tuple[np.ndarray, np.ndarray]:
    """YSR energy shifts E − E₀ of an N-atom chain in the extended model (Ruby et al.; paper's Fig. S5).

    Sites r_j = j d on a line; φ(r) = √(2/λ_F) sinc(2πr/λ_F), sinc x = sin x/x; exchange
    J(r) = J₀ P e^{−r²/ξ_J²}.  Generalised eigenproblem (E₀S + V)c = ESc with
    S_ij = sinc(2π(r_i − r_j)/λ_F) and V_ij = Σ_{k≠j} ∫φ_i J_k φ_j; the shifts are the
    eigenvalues of (V, S), independent of E₀ and linear in J₀ (dimer: (C ± D)/(1 ± S), Eq. S4).

    **Normalisation.** By default P = 1/(√π ξ_J), so that ∫J dr = J₀ (J₀ in meV·nm): the
    dimensionally consistent form.  The paper's supplement prints P = 1/√(π ξ_J), which is
    dimensionally inconsistent; ``norm="printed"`` reproduces it with lengths in units of λ_F
    (all shifts × √(ξ_J/λ_F); the orderings are the same).

    Parameters
    ----------
    n : int
        Number of atoms N.
    d : float
        Inter-atomic distance, nm (≥ 0.02 λ_F: S is singular as d → 0).
    xi_j : float
        Decay length ξ_J of the exchange potential, nm (≤ 2 λ_F).
    j0 : float
        Exchange strength J₀ > 0, meV·nm; the shifts in meV are the returned numbers × J₀/λ_F.
    lambda_f : float
        Fermi wavelength λ_F, nm.
    norm : {"consistent", "printed"}

    Returns
    -------
    shifts : ndarray (N,)
        (E − E₀)/(J₀/λ_F), ascending (dimensionless).
    parities : ndarray (N,) of int
        +1 even, −1 odd under the chain's mirror.
    """
    E, P, _ = extended_states(n, d=d, xi_j=xi_j, j0=j0, lambda_f=lambda_f, norm=norm)
    return E, P.astype(int)


#: the variables an extended-model fan can run over (keywords of :func:`extended`)
EXTENDED_FAN_VARIABLES = ("d", "xi_j", "j0")


def extended_fan(n: int, *, d: float, xi_j: float, j0: float, lambda_f: float, over: str, values: np.ndarray,
                 norm: str = "consistent") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Even and odd shifts E − E₀ (meV) of the extended model along a sweep of d, ξ_J or J₀ (a fan diagram).

    ``over`` names the swept keyword ("d" or "xi_j" in nm, "j0" in meV·nm), ``values`` its values; the
    other keywords are fixed.  The shifts in meV are (J₀/λ_F) × the eigenvalues of (V, S) of
    :func:`extended` at each value: linear in J₀ (one solve serves a J₀ sweep), a new (S, V) per
    value of d or ξ_J.  Values where :func:`extended` refuses (numerically singular S at small d)
    are left out.

    Returns
    -------
    kept : ndarray (m,)
        The swept values that were solved (ascending as given).
    even, odd : ndarray (m, ⌈N/2⌉), (m, ⌊N/2⌋)
        Shifts per sector, meV, ascending per row.
    """
    if over not in EXTENDED_FAN_VARIABLES:
        raise ValueError(f"over must be one of {EXTENDED_FAN_VARIABLES}, got {over!r}")
    n = _n(n)
    xs = _v.array("values", np.atleast_1d(values)).ravel()
    spec = {"d": D, "xi_j": XI_J, "j0": J0}[over]
    for x in xs:
        spec.check(x)
    args = dict(d=d, xi_j=xi_j, j0=j0, lambda_f=lambda_f)
    kept, ev, od = [], [], []
    if over == "j0":
        s, p = extended(n, **args, norm=norm)
        for x in xs:
            kept.append(x)
            ev.append(s[p == 1] * x / lambda_f)
            od.append(s[p == -1] * x / lambda_f)
    else:
        for x in xs:
            try:
                s, p = extended(n, **{**args, over: float(x)}, norm=norm)
            except ValueError:
                continue
            kept.append(x)
            ev.append(s[p == 1] * j0 / lambda_f)
            od.append(s[p == -1] * j0 / lambda_f)
    m = len(kept)
    return (np.array(kept, dtype=float), np.array(ev, dtype=float).reshape(m, n - n // 2),
            np.array(od, dtype=float).reshape(m, n // 2))


# ----------------------------------------------------------------------------- spectra along the chain
def site_positions(n: int, *, spacing: float) -> np.ndarray:
    """Positions x_j = (j − (N − 1)/2)·spacing of the atoms along the chain, centred on 0, nm."""
    n = _n(n)
    a = SPACING.check(spacing)
    return (np.arange(n) - 0.5 * (n - 1)) * a


def profile_weights(x: np.ndarray | float, vectors: np.ndarray, *, positions: np.ndarray, width: float
                    ) -> np.ndarray:
    """Weights W_n(x) = [Σ_j C_jn g(x − x_j)]² of each state at tip positions x (nm): (len(x), n_states).

    g(u) = exp(−u²/(2w²)) is the envelope of a YSR state at its site (1 on the site); the
    columns of ``vectors`` are the states' coefficients on the sites at ``positions`` (nm).
    Sum rule (orthonormal C): Σ_n W_n(x) = Σ_j g(x − x_j)².
    """
    w = WIDTH.check(width)
    xx = _v.array("x", np.atleast_1d(x)).ravel()
    pos = _v.array("positions", positions).ravel()
    C = _v.array("vectors", vectors)
    if C.ndim != 2 or C.shape[0] != pos.size:
        raise ValueError(f"vectors must be (n_sites, n_states) with n_sites = {pos.size}, got shape {C.shape}")
    g = np.exp(-0.5 * ((xx[:, None] - pos[None, :]) / w) ** 2)
    return (g @ C) ** 2


def _lorentz(E: np.ndarray, e: np.ndarray, gamma: float) -> np.ndarray:
    return (gamma / np.pi) / ((E[..., None] - e) ** 2 + gamma ** 2)


def _peaks(E: np.ndarray, energies: np.ndarray, gamma_ysr: float, u2: float) -> np.ndarray:
    """u² L(E − E_n) + (1 − u²) L(E + E_n) for every state: shape E.shape + (n_states,)."""
    return u2 * _lorentz(E, energies, gamma_ysr) + (1.0 - u2) * _lorentz(E, -energies, gamma_ysr)


def _dos_args(delta: float, gamma: float, gamma_ysr: float, weight: float, electron_fraction: float
              ) -> tuple[float, float, float, float, float]:
    return (DELTA.check(delta), GAMMA.check(gamma), GAMMA_YSR.check(gamma_ysr), WEIGHT.check(weight),
            ELECTRON_FRACTION.check(electron_fraction))


def chain_dos(energies: np.ndarray, weights: np.ndarray, *, delta: float, gamma: float, gamma_ysr: float,
              weight: float, electron_fraction: float) -> PointDOS:
    """Sample DOS at one tip position: ρ(E) = N_D(E; Δ, Γ) + a Σ_n W_n [u² L(E − E_n) + (1 − u²) L(E + E_n)].

    Parameters
    ----------
    energies : array_like (n_states,)
        YSR energies E_n, meV.
    weights : array_like (n_states,)
        W_n at the tip (e.g. a row of :func:`profile_weights`).
    delta, gamma : float
        Substrate gap Δ and Dynes Γ > 0, meV.
    gamma_ysr : float
        Half-width Γ_YSR > 0 of the Lorentzian peaks, meV.
    weight : float
        Spectral weight a of one state on an isolated site, meV (∫[ρ − N_D] dE = a Σ_n W_n).
    electron_fraction : float
        u² ∈ [0, 1]: the electron part of each state (peak at +E_n), the hole part 1 − u² (at −E_n).

    Returns
    -------
    PointDOS
        Normalised DOS (→ 1 far from the gap) with ``width`` = min(Γ, Γ_YSR), its narrowest feature.
    """
    dl, g, gy, a, u2 = _dos_args(delta, gamma, gamma_ysr, weight, electron_fraction)
    e = _v.array("energies", energies).ravel()
    W = _v.array("weights", weights).ravel()
    if W.shape != e.shape:
        raise ValueError(f"weights must have one entry per state ({e.size}), got {W.size}")

    def func(E: np.ndarray) -> np.ndarray:
        E = np.asarray(E, dtype=float)
        return _dos.dynes(E, delta=dl, gamma=g) + a * (_peaks(E, e, gy, u2) @ W)

    return PointDOS(func, width=min(g, gy))


def line_spectra(V: np.ndarray, x: np.ndarray, energies: np.ndarray, vectors: np.ndarray, *,
                 positions: np.ndarray, width: float, delta: float, gamma: float, gamma_ysr: float, weight: float,
                 electron_fraction: float, temperature: float, tip_delta: float = 0.0,
                 tip_gamma: float = tunneling.DEFAULT_TIP_GAMMA, vmod_rms: float = 0.0) -> np.ndarray:
    """dI/dV along the chain: (len(x), len(V)), through the tunnelling chain (:func:`tunneling.didv`).

    The chain is linear in the sample DOS, so with ρ(x, E) = N_D + a Σ_n W_n(x) ℓ_n(E)
    (:func:`chain_dos`, :func:`profile_weights`),

        G(x, V) = G[N_D](V) + a Σ_n W_n(x) G[ℓ_n](V),

    one tunnelling computation per state instead of one per position (or one per position when
    there are more states than positions: the same result).  V in mV, x and
    ``positions`` in nm, energies meV, T in K; other parameters as in :func:`chain_dos` and
    :func:`tunneling.didv`.
    """
    dl, g, gy, a, u2 = _dos_args(delta, gamma, gamma_ysr, weight, electron_fraction)
    e = _v.array("energies", energies).ravel()
    W = profile_weights(x, vectors, positions=positions, width=width)
    if W.shape[1] != e.size:
        raise ValueError(f"vectors must have one column per energy ({e.size}), got {W.shape[1]}")
    chain = dict(temperature=temperature, tip_delta=tip_delta, tip_gamma=tip_gamma, vmod_rms=vmod_rms)
    V = _v.array("V", V)
    if e.size + 1 > W.shape[0]:     # more states than positions: one tunnelling computation per position
        return np.array([tunneling.didv(V, sample_dos=chain_dos(e, Wi, delta=dl, gamma=g, gamma_ysr=gy, weight=a,
                                                                 electron_fraction=u2), **chain).ravel()
                         for Wi in W])
    base = tunneling.didv(V, sample_dos=PointDOS(lambda E: _dos.dynes(E, delta=dl, gamma=g), width=g), **chain)

    def peak(en: float) -> PointDOS:
        """ℓ_n(E) = u² L(E − E_n) + (1 − u²) L(E + E_n) of one state, as a sample DOS."""
        return PointDOS(lambda E: _peaks(np.asarray(E, dtype=float), np.array([en]), gy, u2)[..., 0], width=gy)

    parts = np.array([tunneling.didv(V, sample_dos=peak(float(en)), **chain) for en in e]).reshape(e.size, -1)
    return base.ravel()[None, :] + a * (W @ parts)
