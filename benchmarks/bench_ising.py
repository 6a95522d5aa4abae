"""Benchmark of the Ising panel: one H_c2(T) + Δ(T, B) + DOS + dI/dV update without Rashba (compute and
draw separately), the same with Rashba (background compute, what the panel shows meanwhile), each kernel
beside the naive way (brute-force Matsubara sums of an explicit 4×4 BdG per frequency, root by root;
the DOS by diagonalising H_BdG(ξ) on a ξ grid; the Rashba DOS without the model's symmetries).

Prints numbers; it is not a timed test.  ``rows()`` prints this panel's lines (for ``benchmarks/bench.py``);
run alone with ``.venv/bin/python benchmarks/bench_ising.py``.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
from _timing import best
from scipy.optimize import brentq

from gapscope.kernels import ising, nambu
from gapscope.kernels.constants import KB
from gapscope.widgets import Task
from gapscope.widgets.ising_panel import N_BIAS, N_T, IsingPanel


def _bdg(delta: float, beta: float, h: np.ndarray, eta: float) -> np.ndarray:
    """4×4 H_BdG(ξ = 0) = τ₀⊗h·σ + ηβ τ_z⊗σ_z + Δτ_x⊗σ₀ (the kernel's basis)."""
    return (nambu.kron(nambu.TAU0, nambu.sigma_dot(h)) + eta * beta * nambu.kron(nambu.TAUZ, nambu.SIGMAZ)
            + delta * nambu.kron(nambu.TAUX, nambu.SIGMA0))


def naive_pair(omega: float, delta: float, beta: float, h: np.ndarray) -> float:
    """⟨f_s(iω)⟩ by one 4×4 eig per frequency and valley (no closed form, no batching)."""
    tz = nambu.kron(nambu.TAUZ, nambu.SIGMA0)
    out = 0.0
    for eta in (1.0, -1.0):
        A = tz @ (1j * omega * np.eye(4) - _bdg(delta, beta, h, eta))
        a, V = np.linalg.eig(A)
        S = V @ np.diag(np.sign(a.imag)) @ np.linalg.inv(V)
        out += float(np.real(-0.5j * (S[0, 2] + S[1, 3]))) / 2
    return out


def naive_hc2(T: float, tc: float, beta: float, n_freq: int = 2000) -> float:
    """H_c2 (T) by brentq on the brute-force linearised gap equation, one frequency at a time."""
    kt = KB * T
    w = math.pi * kt * (2 * np.arange(n_freq) + 1)

    def excess(h: float) -> float:
        u = np.array([1 / x - naive_pair(x, 1e-7, beta, np.array([h, 0.0, 0.0])) / 1e-7 for x in w])
        return 2 * math.pi * kt * u.sum() + 0.5 * u[-1] * w[-1] - math.log(tc / T)

    return 2 * brentq(excess, 1e-3, 20.0, xtol=1e-10) / (2 * ising.MU_B)


def naive_gap(T: float, tc: float, beta: float, h: np.ndarray, n_freq: int = 1500) -> float:
    """Δ(T, h) by brentq on the brute-force gap equation, one frequency at a time (upper root only)."""
    kt = KB * T
    w = math.pi * kt * (2 * np.arange(n_freq) + 1)

    def g(d: float) -> float:
        u = np.array([1 / x - naive_pair(x, d, beta, h) / d for x in w])
        return math.log(tc / T) - 2 * math.pi * kt * u.sum() - 0.5 * u[-1] * w[-1]

    return brentq(g, 0.05, 0.6, xtol=1e-10)


def naive_dos(E: np.ndarray, delta: float, beta: float, h: np.ndarray, gamma: float, W: float = 20.0) -> np.ndarray:
    """N(E) by diagonalising H_BdG(ξ) on a ξ grid (step Γ/8, |ξ| < W) with Lorentzian broadening."""
    dx = gamma / 8
    xi = np.arange(-W, W, dx) + dx / 2
    tz = np.diag([1.0, 1.0, -1.0, -1.0])
    out = np.zeros(E.size)
    for eta in (1.0, -1.0):
        for d, sign in ((delta, 1.0), (0.0, -1.0)):
            e, U = np.linalg.eigh(_bdg(d, beta, h, eta)[None] + xi[:, None, None] * tz[None])
            wgt = np.sum(np.abs(U[:, :2, :]) ** 2, axis=1)
            for i, x in enumerate(E):
                out[i] += sign * 0.25 * dx * np.sum(wgt * (gamma / np.pi) / ((x - e) ** 2 + gamma ** 2))
    return out + 1.0


def panel_row(name: str, **values) -> None:
    """Compute with cold kernel caches (both H_c2 lines recomputed), draw, and one update as a user sees it."""
    p = IsingPanel(**values)
    p.wait()
    v = p.values
    task = Task()

    def cold() -> None:
        ising._hc2_cached.cache_clear()
        p.compute(v, task)
    k_best, k_med = best(cold)
    result = p.compute(v, task)
    d_best, d_med = best(lambda: p._draw(result, 0.0))
    print(f"  {name:<58} compute {k_best * 1e3:7.2f} ms (median {k_med * 1e3:6.2f})   draw {d_best * 1e3:6.2f} ms "
          f"(median {d_med * 1e3:6.2f})   one update ≈ {(k_med + d_med) * 1e3:6.2f} ms")


def slider_rows() -> None:
    """Wall-clock time from a slider move to the drawn plots (background thread included), new values each time."""
    p = IsingPanel()
    p.wait()
    for name, values in (("β_so (new H_c2 line; the Pauli line is reused)", np.linspace(1.05, 3.0, 15)),
                         ("B (both lines reused: Δ, DOS, dI/dV)", np.linspace(5.05, 15.0, 15)),
                         ("T (Δ, DOS, dI/dV, H_c2 at T)", np.linspace(0.31, 2.0, 15))):
        key = {"β": "beta_so", "B": "b", "T": "temperature"}[name[0]]
        times = []
        for x in values:
            t0 = time.perf_counter()
            p.controls[key].set_trait("value", float(x))
            p.wait()
            times.append(time.perf_counter() - t0)
        print(f"  slider move → plots drawn, {name:<50} {min(times) * 1e3:7.2f} ms (median "
              f"{statistics.median(times) * 1e3:.2f})")


def rows() -> None:
    print(f"\nIsing panel (T_c 3 K, β_so 1 meV, 10 T in-plane, 0.5 K, Γ 0.02 meV; H_c2 line of {N_T} temperatures, "
          f"Δ(T, B) with free energies, {N_BIAS}-bias spectrum; best and median of 15)")
    panel_row("defaults, normal tip (H_c2 + Pauli lines, Δ, DOS, dI/dV)")
    panel_row("SC tip Δ_t 1.31 meV + lock-in 0.01 mV", tip="superconducting")
    panel_row("NbSe₂ preset values (β_so 75 meV, 30 T)", beta_so=75.0, b=30.0)
    panel_row("out-of-plane field (4 T, 90°)", b=4.0, angle=90.0)
    slider_rows()

    tc, T, beta = 3.0, 1.5, 1.0
    Tline = tc * np.linspace(0.01, 1.0, N_T)
    def line() -> None:
        ising._hc2_cached.cache_clear()
        ising.hc2_inplane(Tline, tc=tc, beta_so=beta)
    b, m = best(line)
    t0 = time.perf_counter()
    ref = naive_hc2(T, tc, beta)
    one = time.perf_counter() - t0
    print(f"  H_c2(T) line, {N_T} temperatures (closed form, vectorised Illinois)  {b * 1e3:7.2f} ms (median "
          f"{m * 1e3:.2f}); naive: {one:.2f} s per temperature (brute Matsubara sum, 4×4 eig per frequency) → "
          f"{one * N_T:.0f} s for the line; H_c2(1.5 K) {float(ising.hc2_inplane(T, tc=tc, beta_so=beta)):.6f} vs "
          f"{ref:.6f} T")
    h = ising.field_vector(b=10.0)
    b, m = best(lambda: ising.gap_solution(0.5, tc=tc, beta_so=beta, field=h))
    t0 = time.perf_counter()
    dn = naive_gap(0.5, tc, beta, h)
    naive = time.perf_counter() - t0
    print(f"  Δ(T, B) with all roots and free energies                          {b * 1e3:7.2f} ms (median "
          f"{m * 1e3:.2f}); naive upper root only: {naive:.2f} s; Δ = "
          f"{ising.self_consistent_gap(0.5, tc=tc, beta_so=beta, field=h):.7f} vs {dn:.7f} meV")
    E = np.linspace(-1.5, 1.5, N_BIAS)
    b, m = best(lambda: ising.dos(E, delta=0.3, beta_so=beta, field=h, gamma=0.02))
    t0 = time.perf_counter()
    nd = naive_dos(E[::10], 0.3, beta, h, 0.02)
    naive = (time.perf_counter() - t0) * 10
    diff = np.max(np.abs(nd - ising.dos(E[::10], delta=0.3, beta_so=beta, field=h, gamma=0.02)))
    print(f"  DOS, {N_BIAS} energies (closed form)                                    {b * 1e3:7.3f} ms (median "
          f"{m * 1e3:.3f}); naive ξ-grid diagonalisation: {naive:.1f} s (extrapolated from {E[::10].size} "
          f"energies; max difference {diff:.1e})")

    print("\nIsing panel with Rashba λ_R = 0.5 meV (otherwise defaults): background compute")
    p = IsingPanel()
    p.wait()
    texts: list[tuple[float, str]] = []
    real = p._report_progress
    t_start = [0.0]

    def record(f: float, text: str) -> None:
        texts.append((time.perf_counter() - t_start[0], text))
        real(f, text)
    p._report_progress = record      # type: ignore[method-assign]
    times, blocked = [], []
    for lam in (0.5, 0.6, 0.7):
        texts.clear()
        t_start[0] = time.perf_counter()
        p.set(rashba=lam)
        blocked.append(time.perf_counter() - t_start[0])
        p.wait(timeout=600)
        times.append(time.perf_counter() - t_start[0])
    v = p.values
    hv = ising.field_vector(b=v["b"])
    print(f"  one update (H_c2 line + Δ + Rashba DOS on a Γ/2 table + dI/dV): {min(times):.2f} s (median "
          f"{statistics.median(times):.2f} s); the slider call returns after {max(blocked) * 1e3:.1f} ms")
    stages = []
    for t, text in texts:
        stage = text.split(" …")[0].split(" average")[0]
        if not stages or stages[-1][1] != stage:
            stages.append((t, stage))
    print("  meanwhile the panel shows 'computing…', a progress bar and Cancel, keeps the previous curves and "
          "answers the other controls; the status reads, in turn (s after the move):")
    print("    " + "; ".join(f"{t:.2f} s {s}" for t, s in stages) + f"; {times[-1]:.2f} s drawn "
          f"({len(texts)} progress reports)")
    t0 = time.perf_counter()
    p.set(rashba=0.5)
    print(f"  back to a previous state (cache): {(time.perf_counter() - t0) * 1e3:.1f} ms")
    for label, f in (
            ("  H_c2 line with Rashba", lambda: (ising._hc2_cached.cache_clear(),
                                                ising.hc2(Tline, tc=tc, beta_so=beta, rashba=0.5))),
            ("  Δ(T, B) with Rashba (16 angles)", lambda: ising.gap_solution(0.5, tc=tc, beta_so=beta, field=hv,
                                                                             rashba=0.5))):
        b, m = best(f, 3)
        print(f"{label:<66} {b:7.2f} s (median {m:.2f})")
    E = np.linspace(-2.5, 2.5, 501)
    kw = dict(delta=0.33, beta_so=beta, field=hv, gamma=0.02, rashba=0.5)
    n_phi = ising._n_phi_dos(0.5, hv, 0.02)
    b, m = best(lambda: ising.dos(E, **kw), 3)
    t0 = time.perf_counter()
    full = ising.dos(E, **kw, method="bdg")
    naive = time.perf_counter() - t0
    diff = np.max(np.abs(full - ising.dos(E, **kw)))
    print(f"  Rashba DOS, {E.size} energies × {n_phi} angles (|E| and one valley)        {b:7.2f} s (median "
          f"{m:.2f}); without the symmetries (both valleys, all E): {naive:.2f} s; max difference {diff:.1e}")


if __name__ == "__main__":
    rows()
