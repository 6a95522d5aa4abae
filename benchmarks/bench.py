"""Benchmark: time of one panel update, split into kernels and widget refresh, beside the naive way.

Prints numbers; it is not a timed test.  Run with ``make bench``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _timing import best

from gapscope.kernels import dos, tunneling, ysr
from gapscope.kernels.constants import KB
from gapscope.widgets import PRESETS, GapPanel, ShibaPanel, Task
from gapscope.widgets.gap_panel import SYMMETRIES


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
    """One gap-panel update: the pure compute (kernels), the draw (mutating marks), and both."""
    p = GapPanel()
    if preset:
        p.preset.value = preset
    if extra:
        p.set(**extra)
    v = p.values
    task = Task()
    k_best, k_med = best(lambda: p.compute(v, task))
    result = p.compute(v, task)
    d_best, d_med = best(lambda: p._draw(result, 0.0))
    print(f"{name:<46} compute {k_best * 1e3:7.2f} ms (median {k_med * 1e3:6.2f})   "
          f"draw {d_best * 1e3:6.2f} ms (median {d_med * 1e3:6.2f})   "
          f"one update ≈ {(k_med + d_med) * 1e3:6.2f} ms")


def shiba_rows(full_naive: bool) -> None:
    print("\nShiba panel kernels (Nb-like 2D band, k_F 10/nm, ħv_F 179 meV·nm, Δ 1.5, Γ 0.0259 meV, one s channel)")
    sub = ysr.Substrate(dim=2, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.0259)
    imp = lambda a: [ysr.Impurity(channels=[ysr.Channel("s", a, 0.3)])]
    chain = dict(temperature=0.32, tip_delta=1.43, tip_gamma=0.0259, vmod_rms=0.02)
    V = np.linspace(-3.5, 3.5, 1000)
    eng = ysr.Engine(sub, imp(0.7))
    tip = np.array([[0.15, 0.0]])
    spec = lambda: tunneling.didv(V, sample_dos=eng.sample_dos(tip[0]), **chain)
    spec()
    alphas = iter(np.linspace(0.5, 1.2, 10000))

    def j_spectrum():
        eng.update(sub, imp(next(alphas)))
        spec()
    b, m = best(j_spectrum)
    print(f"  spectrum, 1000 biases, SC tip + lock-in, after a J change      {b * 1e3:8.2f} ms (median {m * 1e3:.2f})")
    eng_cold = lambda: tunneling.didv(V, sample_dos=ysr.Engine(sub, imp(0.7)).sample_dos(tip[0]), **chain)
    b2, m2 = best(eng_cold, 5)
    print("  same, naive (propagators rebuilt every call)                     "
          f"{b2 * 1e3:8.2f} ms (median {m2 * 1e3:.2f})")

    for label, ch in (("normal tip, 0.32 K", dict(temperature=0.32)), ("SC tip Δ_t 1.43 meV + lock-in", chain)):
        bias = np.array([0.59 + ch.get("tip_delta", 0.0)])
        E = tunneling.energy_grid(bias, sample_gamma=sub.gamma, **ch)
        w = tunneling.didv_weights(bias, E, **ch)[0]
        x = np.linspace(-2.5, 2.5, 128)
        X, Y = np.meshgrid(x, x)
        pts = np.c_[X.ravel(), Y.ravel()]
        t0 = time.perf_counter()
        e2 = ysr.Engine(sub, imp(0.7))
        e2.weighted_map(pts, E, w)
        cold = time.perf_counter() - t0
        alphas = iter(np.linspace(0.5, 1.2, 10000))

        def j_map(e2=e2, alphas=alphas, pts=pts, E=E, w=w):   # bound now: best() calls it in this iteration
            e2.update(sub, imp(next(alphas)))
            e2.weighted_map(pts, E, w)
        bj, mj = best(j_map, 7)
        n_naive = pts.shape[0] if full_naive else 256
        keep = np.abs(w) >= 1e-4 * np.abs(w).max()
        t0 = time.perf_counter()
        for p in pts[:n_naive]:                      # per-pixel loop, nothing cached
            ysr.ldos(sub, imp(0.7), p[None, :], E[keep]) @ w[keep]
        naive = (time.perf_counter() - t0) * pts.shape[0] / n_naive
        note = "" if full_naive else f" (extrapolated from {n_naive} pixels)"
        print(f"  128² map, {label:<30} ({keep.sum()} energies): after J change {bj * 1e3:7.2f} ms "
              f"(median {mj * 1e3:.2f}); after a Δ/k_F change {cold * 1e3:7.0f} ms; naive per-pixel loop "
              f"{naive:7.1f} s{note}")

    p = ShibaPanel()
    p.wait()
    alphas = iter(np.linspace(0.5, 1.2, 10000))

    def alpha_update():
        p.controls["alpha"].set_trait("value", float(next(alphas)))
        p.wait()
    b, m = best(alpha_update, 7)
    print(f"  Shiba panel, one update after an α change (background compute + draw: spectrum + 128² SC-tip "
          f"map + PNG)  {b * 1e3:7.1f} ms (median {m * 1e3:.1f})")


def fit_rows() -> None:
    from gapscope.kernels import fitting
    print("\nFitting (lmfit least_squares through the full chain)")
    V = np.linspace(-4.0, 4.0, 1000)
    truth = dict(delta=1.50, gamma=0.02, tip_delta=1.31, tip_gamma=0.015, temperature=1.4, vmod_rms=0.1)
    y = fitting.synthetic("dynes", V, noise=0.02, seed=1, **truth)
    init = dict(delta=1.45, gamma=0.04, tip_delta=1.35, tip_gamma=0.02, temperature=1.4, vmod_rms=0.1)
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = fitting.fit(V, y, model="dynes", initial=init, fixed=dict(tip_delta=False))
        ts.append(time.perf_counter() - t0)
    print(f"  1000-point spectrum, SC tip + lock-in, Δ, Γ, Δ_t, scale free: {min(ts):.2f} s ({r.nfev} evaluations); "
          f"Δ = {r.values['delta']:.4f} ± {r.errors['delta']:.4f}, Δ_t = {r.values['tip_delta']:.4f} ± "
          f"{r.errors['tip_delta']:.4f} meV")
    nx = ny = 64
    Vg = np.linspace(-3, 3, 200)
    rng = np.random.default_rng(0)
    d = 1.2 + 0.1 * rng.random((nx, ny))
    base = {dl: fitting.evaluate("dynes", Vg, delta=dl, gamma=0.05, temperature=1.0) for dl in np.unique(d.round(3))}
    data = np.array([[base[d[i, j].round(3)] + rng.normal(0, 0.01, Vg.size) for j in range(ny)] for i in range(nx)])
    t0 = time.perf_counter()
    res = fitting.fit_grid(Vg, data, model="dynes", initial=dict(temperature=1.0), n_jobs=2, chunk=64)
    el = time.perf_counter() - t0
    err = np.nanmax(np.abs(res.values["delta"] - d.round(3)))
    print(f"  64×64 grid, 200 points per pixel, Dynes, normal tip, 2 processes: {el:.1f} s "
          f"({el / (nx * ny) * 1e3:.1f} ms per pixel); max |Δ − Δ_true| = {err:.4f} meV")


def topic_rows() -> None:
    """Each topic's own rows: every benchmarks/bench_<topic>.py with a rows() function, in name order."""
    import importlib.util
    from pathlib import Path
    for path in sorted(Path(__file__).resolve().parent.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "print_rows"):       # modules whose rows() returns records print them here
            module.print_rows()
        elif hasattr(module, "rows"):
            module.rows()


def main() -> None:
    print("gapscope benchmark — one panel update of a 1000-point spectrum (2 cores; best and median of 15)\n")
    print("Gap panel")
    panel_row("default (Pb(111), normal tip, 0.32 K)", None)
    for name in PRESETS:
        panel_row(name, name)
    for symmetry in SYMMETRIES:
        for tip in ("normal", "superconducting"):
            panel_row(f"{symmetry}, {tip} tip (defaults)", None, symmetry=symmetry, tip=tip)
    panel_row("anisotropic s, Γ = 0.005 meV, SC tip", None, symmetry="anisotropic s", gamma=0.005,
              tip="superconducting")
    print("\nSmall-Γ anisotropic SIS (Δ 0.484, a 0.5, Γ 1e-3 meV; tip 1.81/0.05 meV; 5.79 K; 0.0866 mV rms; "
          "601 biases)")
    V6 = np.linspace(-4, 4, 601)
    an = dos.bind("anisotropic_s", delta=0.484, anisotropy=0.5, gamma=1e-3)
    ab, am = best(lambda: tunneling.didv(V6, sample_dos=an, temperature=5.79, tip_delta=1.81, tip_gamma=0.05,
                                         vmod_rms=0.0866), 7)
    print(f"  gapscope {ab * 1e3:8.1f} ms (median {am * 1e3:.1f})")

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
    print(f"  naive dense sum     {naive * 1e3:8.1f} ms   "
          f"(×{naive / fm:.0f} slower; max relative difference {diff:.1e})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--full-naive", action="store_true", help="time the naive map over all 128² pixels")
    args = ap.parse_args()
    main()
    shiba_rows(args.full_naive)
    fit_rows()
    topic_rows()
