"""Benchmark of the proximity panel: the self-consistent Usadel solve and the 600-energy line scan at the
default preset (Pb(111)/Ni–Pb alloy, 0.32 K: 173 Matsubara frequencies, 482 nodes), compute and draw
separately, beside the naive way (one frequency or energy at a time, plain fixed-point iteration, full
Γ-continuation for every energy).

Prints numbers; it is not a timed test.  ``rows()`` prints this panel's lines (for ``benchmarks/bench.py``);
run alone with ``.venv/bin/python benchmarks/bench_proximity.py``.
"""

from __future__ import annotations

import math
import time

import numpy as np
from _timing import best as _best

from gapscope.kernels import proximity
from gapscope.kernels.constants import KB
from gapscope.widgets import Task
from gapscope.widgets.proximity_panel import N_BIAS, N_ENERGIES, ProximityPanel


def best(f, repeat: int = 7) -> tuple[float, float]:
    return _best(f, repeat)


def naive_solve(j: proximity.Junction, tol: float = 1e-8, max_iter: int = 2000) -> tuple[np.ndarray, int]:
    """Plain fixed-point Δ ← λ·2πk_BT Σ sin θ_n, each Matsubara frequency solved on its own (no batching,
    no Anderson mixing); same discretisation and Newton step as the kernel."""
    grid = proximity._grid(j, 12.0)
    lam = np.where(np.arange(grid.x.size) < grid.n_s, *j.couplings)
    omegas = proximity._frequencies(j.temperature, j.omega_c)
    delta = np.where(np.arange(grid.x.size) < grid.n_s, *j.bulk_gaps)
    theta = np.arctan2(delta[None, :], omegas[:, None])
    pref = 2.0 * math.pi * KB * j.temperature
    for it in range(1, max_iter + 1):
        for n in range(omegas.size):
            theta[n:n + 1], _ = proximity._newton(theta[n:n + 1], omegas[n:n + 1], delta, grid, tol=1e-12,
                                                  max_iter=60)
        new = lam * pref * np.sin(theta).sum(axis=0)
        err = float(np.max(np.abs(new - delta)))
        delta = new
        if err < tol:
            return delta, it
    return delta, max_iter


def naive_dos(sol: proximity.Solution, E: np.ndarray) -> np.ndarray:
    """N(x, E) one energy at a time with the full Γ-continuation 0.2 → 0.06 → Γ_D for every energy."""
    g = sol.junction.dynes_gamma
    out = np.empty((sol.x.size, E.size))
    for i, e in enumerate(E):
        th = None
        for gs in (0.2, 0.06, g):
            om = np.array([gs - 1j * e])
            if th is None:
                s = np.sqrt(om[:, None] ** 2 + sol.delta[None, :] ** 2)
                th = -1j * np.log((om[:, None] + 1j * sol.delta[None, :]) / s)
            th, _ = proximity._newton(th, om, sol.delta, sol.grid, tol=1e-10, max_iter=80)
        out[:, i] = np.real(np.cos(th[0]))
    return out


def rows() -> None:
    p = ProximityPanel()
    p.wait()
    v = p.values
    j = ProximityPanel.junction(v)
    chain = ProximityPanel.chain(v)
    X = ProximityPanel.positions(j, v["window"])
    V = np.linspace(-v["v_max"], v["v_max"], N_BIAS)
    print(f"\nProximity panel (default preset: Pb(111)/Ni–Pb, T = {j.temperature:g} K, N_w = {j.n_frequencies}, "
          f"{p.result['solution'].x.size} nodes; line scan: {N_ENERGIES} energies E ≥ 0, {X.size} positions, "
          f"{N_BIAS} biases, normal tip, V_mod {chain['vmod_rms']:g} mV)")

    sb, sm = best(lambda: j.solve())
    sol = j.solve()
    print(f"  self-consistent solve ({sol.iterations} Anderson iterations)          {sb * 1e3:8.1f} ms "
          f"(median {sm * 1e3:.1f})")
    t0 = time.perf_counter()
    d_naive, it_naive = naive_solve(j)
    tn = time.perf_counter() - t0
    print(f"  same, naive (one ω at a time, plain fixed point: {it_naive} iterations) {tn * 1e3:8.0f} ms   "
          f"(×{tn / sm:.0f} slower; max |ΔΔ| = {np.max(np.abs(d_naive - sol.delta)):.1e} meV)")

    e_max = proximity.chain_energy(V, temperature=chain["temperature"], vmod_rms=chain["vmod_rms"])
    Ep = proximity.scan_energies(sol, e_max, N_ENERGIES)
    db, dm = best(lambda: sol.dos(Ep))
    table = proximity.dos_table(sol, e_max, N_ENERGIES)
    cb, cm = best(lambda: proximity.line_scan(sol, V, X, table=table, **chain))
    lb, lm = best(lambda: proximity.line_scan(sol, V, X, n_energies=N_ENERGIES, **chain))
    print(f"  N(x, E), {N_ENERGIES} energies × {sol.x.size} nodes                       {db * 1e3:8.1f} ms "
          f"(median {dm * 1e3:.1f})")
    print(f"  chain: {X.size} positions through dos.tabulated → didv                  {cb * 1e3:8.1f} ms "
          f"(median {cm * 1e3:.1f})")
    print(f"  600-energy line scan (N(x, E) + chain)                             {lb * 1e3:8.1f} ms "
          f"(median {lm * 1e3:.1f})")
    t0 = time.perf_counter()
    N_naive = naive_dos(sol, Ep)
    tdn = time.perf_counter() - t0
    print(f"  N(x, E) naive (one energy at a time, full Γ-continuation)          {tdn * 1e3:8.0f} ms   "
          f"(×{tdn / dm:.0f} slower; max |ΔN| = {np.max(np.abs(N_naive - sol.dos(Ep))):.1e})")

    task = Task()

    def full_compute():
        p._memo.clear()
        return p.compute(v, task)
    kb, km = best(full_compute, 5)
    result = p.compute(v, task)
    drb, drm = best(lambda: p._draw(result, 0.0))
    tip_v = dict(v, x_tip=-3.0)
    tb, tm = best(lambda: p.compute(tip_v, task))
    print(f"  panel compute, new state (solve + line scan + spectrum at x_tip)   {kb * 1e3:8.1f} ms "
          f"(median {km * 1e3:.1f})")
    print(f"  panel draw (Δ(x), spectrum, PNG of the {X.size}×{N_BIAS} line scan, A(x))       {drb * 1e3:8.1f} ms "
          f"(median {drm * 1e3:.1f})")
    print(f"  panel compute after a tip move (DOS table reused)                  {tb * 1e3:8.1f} ms "
          f"(median {tm * 1e3:.1f})")


if __name__ == "__main__":
    rows()
