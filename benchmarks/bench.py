"""Benchmark: time of one panel update, split into kernels and widget refresh, beside the naive way.

Prints numbers; it is not a timed test.  Run with ``make bench``.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from gapscope.kernels import dos, tunneling
from gapscope.kernels.constants import KB
from gapscope.widgets import PRESETS, GapPanel


def best(f, repeat: int = 15) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def naive_sis_didv(V, sample, td, tg, T, vrms):
    """The obvious way: I(V) by a dense O(N_V × N_E) sum, np.gradient, lock-in by a φ-sum per point."""
    kT = KB * T
    h = min(tg, sample.width, kT) / 3
    E = np.arange(-(np.abs(V).max() + 40 * kT + 1), np.abs(V).max() + 40 * kT + 1, h)
    f = lambda x: 0.5 * (1 - np.tanh(0.5 * x / kT))
    ns = sample(E)
    a = np.sqrt(2) * vrms
    phi = (np.arange(32) + 0.5) * 2 * np.pi / 32
    Vq = (V[:, None] + a * np.cos(phi)[None, :]).ravel()
    grid = np.arange(Vq.min() - 2 * h, Vq.max() + 2 * h, h / 2)
    I = np.empty(grid.size)
    for i, v in enumerate(grid):
        nt = dos.dynes(E - v, delta=td, gamma=tg)
        I[i] = h * np.sum(nt * ns * (f(E - v) - f(E)))
    G = np.gradient(I, grid)
    return (np.interp(Vq, grid, G).reshape(V.size, -1) * (2 / 32) * np.sin(phi) ** 2).sum(axis=1)


def panel_row(name: str, preset: str | None, **extra) -> None:
    p = GapPanel()
    if preset:
        p.preset.value = preset
    if extra:
        p.set(**extra)
    v = p.values

    def kernels():
        sample, _ = p.sample_dos(v)
        V = np.linspace(-v["window"], v["window"], 1000)
        td = v["tip_delta"] if v["tip"] == "superconducting" else 0.0
        tunneling.didv(V, sample_dos=sample, temperature=v["temperature"], tip_delta=td,
                       tip_gamma=v["tip_gamma"], vmod_rms=v["vmod_rms"])
        sample.cell_average(V, V[1] - V[0])

    k_best, k_med = best(kernels)
    r_best, r_med = best(p.refresh)
    print(f"{name:<44} kernels {k_best * 1e3:7.2f} ms (median {k_med * 1e3:6.2f})   "
          f"full refresh {r_best * 1e3:7.2f} ms (median {r_med * 1e3:6.2f})   widget part ≈ {(r_med - k_med) * 1e3:6.2f} ms")


def main() -> None:
    print("gapscope benchmark — one panel update of a 1000-point spectrum (2 cores; best and median of 15)\n")
    print("Gap panel")
    panel_row("default (Pb(111), normal tip, 0.32 K)", None)
    for name in PRESETS:
        panel_row(name, name)
    panel_row("anisotropic s, Γ = 0.005 meV, SC tip", None, symmetry="anisotropic s", gamma=0.005,
              tip="superconducting")
    panel_row("d-wave, Γ = 0.02 meV, normal tip", None, symmetry="d-wave")

    print("\nSIS + lock-in kernel vs the naive way (Nb/Nb, Δ 1.50/1.31 meV, Γ 0.01, 1.4 K, V_mod 0.1 mV rms)")
    V = np.linspace(-4.5, 4.5, 1000)
    s = dos.bind("dynes", delta=1.5, gamma=0.01)
    fast = lambda: tunneling.didv(V, sample_dos=s, temperature=1.4, tip_delta=1.31, tip_gamma=0.01, vmod_rms=0.1)
    fb, fm = best(fast)
    t0 = time.perf_counter()
    slow = naive_sis_didv(V, s, 1.31, 0.01, 1.4, 0.1)
    naive = time.perf_counter() - t0
    diff = np.max(np.abs(slow - fast())) / np.max(fast())
    print(f"  gapscope FFT chain  {fb * 1e3:8.2f} ms (median {fm * 1e3:.2f})")
    print(f"  naive dense sum     {naive * 1e3:8.1f} ms   (×{naive / fm:.0f} slower; max relative difference {diff:.1e})")


if __name__ == "__main__":
    main()
