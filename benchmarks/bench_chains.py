"""Benchmark of the YSR chains panel: one update per model (compute and draw separately), and the kernels beside
the naive way (full diagonalisation without the mirror; the extended model's integrals on a dense grid; one
tunnelling computation per position instead of one per state for the line profile).

Prints numbers; it is not a timed test.  ``rows()`` prints this panel's lines (for ``benchmarks/bench.py``);
run alone with ``.venv/bin/python benchmarks/bench_chains.py``.
"""

from __future__ import annotations

import math
import time

import numpy as np
from _timing import best

from gapscope.kernels import chains, tunneling
from gapscope.widgets import Task
from gapscope.widgets.chains_panel import CHAINS_PRESETS, N_BIAS, N_X, ChainsPanel


def panel_row(label: str, repeat: int = 5, **values) -> None:
    p = ChainsPanel(**{k: v for k, v in values.items() if k != "preset"})
    if "preset" in values:
        p.preset.value = values["preset"]
    p.wait(timeout=600)
    v = p.values
    bc, mc = best(lambda: p.compute(v, Task()), repeat=repeat)
    r = p.compute(v, Task())
    bd, md = best(lambda: p.draw(r), repeat=repeat)
    print(f"  {label:<58} compute {bc * 1e3:8.1f} ms (median {mc * 1e3:.1f}); draw {bd * 1e3:6.1f} ms "
          f"(median {md * 1e3:.1f})")


def naive_extended(N: int, d: float, xi: float) -> np.ndarray:
    """Shifts with V integrated on a dense uniform grid (no Gauss–Hermite), S exact."""
    from scipy.linalg import eigh
    r = np.linspace(-6.0, (N - 1) * d + 6.0, 120001)
    h = r[1] - r[0]
    phi = np.array([math.sqrt(2) * np.sinc(2 * (r - j * d)) for j in range(N)])
    J = np.array([np.exp(-(r - k * d) ** 2 / xi ** 2) / (math.sqrt(math.pi) * xi) for k in range(N)])
    pos = d * np.arange(N)
    S = np.sinc(2 * np.subtract.outer(pos, pos))     # the exact overlap (on a finite grid its 1/r² tail is cut)
    V = np.array([[sum(h * np.sum(phi[i] * J[k] * phi[j]) for k in range(N) if k != j) for j in range(N)]
                  for i in range(N)])
    return eigh(V, S, eigvals_only=True)


def rows() -> None:
    print(f"\nYSR chains panel ({N_BIAS} biases, line profile of {N_X} positions, SC tip at 1.4 K, lock-in; "
          "best and median of 5)")
    panel_row("LCAO dimer (defaults: k₁ 0.40 meV, E₀ 0.6 meV)")
    panel_row("LCAO tetramer preset (Fe, E₀′ 0.7 meV)", preset="Fe tetramer ⟨1-11⟩ — Friedrich et al.")
    panel_row("LCAO N = 12, k₁…k₃", n=12, k2=0.1, k3=0.05)
    panel_row("extended trimer preset (d 0.7 λ_F, fan over d/λ_F)",
              preset="Extended model, Fig. S5 (d = 0.7 λ_F) — Friedrich et al.")
    t0 = time.perf_counter()
    p = ChainsPanel()
    p.preset.value = "AFM Mn dimer √3a/2 [1-11] with Rashba — Beck et al."
    p.wait(timeout=600)
    first = time.perf_counter() - t0
    v = p.values
    t0 = time.perf_counter()
    p.compute(v, Task())
    again = time.perf_counter() - t0
    print(f"  T-matrix AFM dimer with Rashba (preset; fan over 13 t_R)         first {first:6.2f} s (fan computed); "
          f"again {again:6.2f} s (fan memoised); lowest pair split by {1e3 * p.curves['splitting_meV']:.3f} μeV")
    assert CHAINS_PRESETS

    b, m = best(lambda: chains.lcao(40, e0=0.7, hoppings=(0.4, 0.1, 0.05)))
    H = chains.lcao_matrix(40, e0=0.7, hoppings=(0.4, 0.1, 0.05))
    bn, mn = best(lambda: np.linalg.eigh(H))
    print(f"  lcao N = 40 in the mirror subspaces                       {b * 1e3:8.3f} ms (median {m * 1e3:.3f}); "
          f"full eigh without symmetry {bn * 1e3:.3f} ms (parities then ill-defined at degeneracies)")
    b, m = best(lambda: chains.extended(4, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0))
    t0 = time.perf_counter()
    ref = naive_extended(4, 0.7, 0.4)
    naive = time.perf_counter() - t0
    s, _ = chains.extended(4, d=0.7, xi_j=0.4, j0=1.0, lambda_f=1.0)
    print(f"  extended tetramer (closed-form S, Gauss–Hermite V)        {b * 1e3:8.3f} ms (median {m * 1e3:.3f}); "
          f"V on a dense grid {naive * 1e3:.0f} ms; max difference {np.max(np.abs(ref - s)):.1e}")
    E, P, C = chains.lcao_states(4, e0=0.7, hoppings=(0.4,))
    pos = chains.site_positions(4, spacing=0.2853)
    V = np.linspace(-3.5, 3.5, N_BIAS)
    x = np.linspace(-1.2, 1.2, N_X)
    prof = dict(delta=1.52, gamma=0.02, gamma_ysr=0.03, weight=0.25, electron_fraction=0.7)
    chain = dict(temperature=1.4, tip_delta=1.33, tip_gamma=0.01, vmod_rms=0.1)
    b, m = best(lambda: chains.line_spectra(V, x, E, C, positions=pos, width=0.15, **prof, **chain), repeat=5)
    W = chains.profile_weights(x, C, positions=pos, width=0.15)
    t0 = time.perf_counter()
    naive = np.array([tunneling.didv(V, sample_dos=chains.chain_dos(E, W[i], **prof), **chain) for i in range(N_X)])
    tn = time.perf_counter() - t0
    G = chains.line_spectra(V, x, E, C, positions=pos, width=0.15, **prof, **chain)
    print(f"  line profile {N_X}×{N_BIAS}, one didv per state (5)            {b * 1e3:8.1f} ms (median "
          f"{m * 1e3:.1f}); one didv per position ({N_X}): {tn * 1e3:.0f} ms; max difference "
          f"{np.max(np.abs(G - naive)):.1e}")


if __name__ == "__main__":
    rows()
