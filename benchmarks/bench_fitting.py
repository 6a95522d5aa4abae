"""Benchmark of the fitting kernels of issue 15: global fit, deconvolution, YSR on-site fit, grid fits on dask.

Rows (synthetic data, labelled so; targets from the issue):

* global fit of 10 spectra × 1000 points: a Dynes T-series with Δ(T) = bcs_gap(T; Δ₀, T_c) tied,
  Γ shared, a scale per spectrum (target ≤ 5 s);
* deconvolution of a 1000-point SIS spectrum (anisotropic-s sample, Nb-like tip) (target ≤ 1 s);
* YSR on-site fit of a 1000-point spectrum, normal and superconducting tip (target ≤ 2 s), beside the
  same fit through the T-matrix Engine (the former implementation);
* grid-fit throughput: process pool (2 processes) vs dask LocalCluster (2 single-threaded worker
  processes) on an NX×NY×200 grid (default 32×32; ``--full`` for 128×128), with the largest difference
  between the two results;
* a Usadel line scan, 20 positions × 200 biases (ξ_S′, γ_B, scale free): ``fit_global`` with the
  registered ``usadel`` model beside the topic's own ``proximity.fit_line_scan`` (median of 5, the
  model's junction cache cleared before each run), with the number of Usadel solves.

Prints numbers; it is not a timed test.  ``rows()`` returns the records, ``print_rows()`` prints them
(for ``benchmarks/bench.py``); run alone with ``.venv/bin/python benchmarks/bench_fitting.py [--full]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from gapscope.kernels import dos, fitting, gap, tunneling
from gapscope.kernels.ysr import fitmodels


def _timed(f, repeat: int = 3) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def global_row() -> dict:
    V = np.linspace(-4, 4, 1000)
    T = np.linspace(0.5, 8.0, 10)
    d = gap.bcs_gap(T, delta0=1.3, tc=8.6)
    data = [(V, fitting.synthetic("dynes", V, noise=0.01, seed=i, temperature=t, delta=di, gamma=0.04,
                                  scale=1 + 0.05 * i)) for i, (t, di) in enumerate(zip(T, d, strict=True))]

    def run():
        return fitting.fit_global(data, model="dynes", shared=["gamma"],
                                  series={"temperature": T,
                                          "delta": fitting.Tie(gap.bcs_gap, delta0=gap.DELTA0, tc=gap.TC)},
                                  initial={"delta0": 1.2, "tc": 8.0, "gamma": 0.06}, sigma=0.01)
    t, r = _timed(run)
    return {"case": "global fit, 10 spectra × 1000 points (BCS Δ(T) tie, Γ shared, 10 scales)", "seconds": t,
            "target": 5.0, "note": f"{r.nfev} evaluations; Δ₀ = {r.values['delta0']:.4f} ± {r.errors['delta0']:.4f} "
                                   f"meV, T_c = {r.values['tc']:.3f} ± {r.errors['tc']:.3f} K (truth 1.3, 8.6)"}


def deconvolution_row() -> dict:
    V = np.linspace(-4, 4, 1000)
    chain = dict(temperature=0.5, tip_delta=1.31, tip_gamma=0.02, vmod_rms=0.02)
    truth = dos.bind("anisotropic_s", delta=1.0, anisotropy=0.3, gamma=0.05, n=6)
    y = 2.0 * (tunneling.didv(V, sample_dos=truth, **chain) + np.random.default_rng(1).normal(0, 0.01, V.size))
    t, r = _timed(lambda: fitting.deconvolve(V, y, scale=2.0, **chain))
    inside = np.mean(np.abs(r.dos - truth(r.energies)) <= r.dos_error)
    return {"case": f"deconvolution, 1000-point SIS spectrum, {r.energies.size} energies (GCV)", "seconds": t,
            "target": 1.0, "note": f"λ = {r.lam:.3g}, tr H = {r.dof:.0f}, truth inside ±1σ at {inside:.0%} of energies"}


def ysr_rows() -> list[dict]:
    V = np.linspace(-3, 3, 1000)
    m = fitting.MODELS["ysr_onsite"]
    fitting.MODELS["_ysr_onsite_engine"] = dataclasses.replace(m, name="_ysr_onsite_engine",
                                                               sample=fitmodels.onsite_dos_engine)
    out = []
    try:
        for label, chain in (("normal tip, 0.4 K", dict(temperature=0.4)),
                             ("SC tip 1.3 meV + lock-in", dict(temperature=0.4, tip_delta=1.3, tip_gamma=0.02,
                                                               vmod_rms=0.03))):
            y = fitting.synthetic("ysr_onsite", V, noise=0.005, seed=2, **chain)
            init = dict(delta=1.45, gamma=0.03, alpha=0.6, beta=0.25, **chain)
            t, r = _timed(lambda y=y, init=init: fitting.fit(V, y, model="ysr_onsite", initial=init))
            te, re = _timed(lambda y=y, init=init: fitting.fit(V, y, model="_ysr_onsite_engine", initial=init), 1)
            out.append({"case": f"YSR on-site fit, 1000 points, {label}", "seconds": t, "target": 2.0,
                        "note": f"{r.nfev} evaluations; through the T-matrix Engine {te:.2f} s "
                                f"({re.nfev} evaluations)"})
    finally:
        del fitting.MODELS["_ysr_onsite_engine"]
    return out


def grid_rows(nx: int, ny: int) -> list[dict]:
    Vg = np.linspace(-3, 3, 200)
    rng = np.random.default_rng(0)
    d = (1.2 + 0.1 * rng.random((nx, ny))).round(3)
    base = {dl: fitting.evaluate("dynes", Vg, delta=dl, gamma=0.05, temperature=1.0) for dl in np.unique(d)}
    data = np.array([[base[d[i, j]] + rng.normal(0, 0.01, Vg.size) for j in range(ny)] for i in range(nx)])
    kw = dict(model="dynes", initial=dict(temperature=1.0), n_jobs=2, chunk=64)
    t0 = time.perf_counter()
    pool = fitting.fit_grid(Vg, data, **kw)
    tp = time.perf_counter() - t0
    t0 = time.perf_counter()
    dask = fitting.fit_grid(Vg, data, client="local", **kw)
    td = time.perf_counter() - t0
    diff = max(float(np.nanmax(np.abs(pool.values[k] - dask.values[k]))) for k in pool.values)
    n = nx * ny
    return [{"case": f"grid fit {nx}×{ny}×200, process pool (2 processes)", "seconds": tp, "target": None,
             "note": f"{n / tp:.0f} pixels/s"},
            {"case": f"grid fit {nx}×{ny}×200, dask LocalCluster (2 workers)", "seconds": td, "target": None,
             "note": f"{n / td:.0f} pixels/s (incl. cluster start); max |dask − pool| = {diff:.2g}"}]


def line_scan_rows(repeat: int = 5) -> list[dict]:
    import statistics

    from gapscope.kernels import proximity

    small = dict(delta_s=1.3, delta_n=1.0, xi_s=6.0, xi_n=3.0, gamma=1.0, gamma_b=0.5, temperature=1.0,
                 omega_c=15.0, length_s=60.0, length_n=40.0, dynes_gamma=0.02)
    truth = proximity.Junction(**small)
    V = np.linspace(-2.5, 2.5, 200)
    X = np.linspace(-6.0, 13.0, 20)
    G = 1.05 * proximity.line_scan(truth.solve(tol=1e-10), V, X, n_energies=300).didv
    G = G + np.random.default_rng(3).normal(0.0, 0.01, G.shape)
    start = truth.replace(xi_n=2.2, gamma_b=0.2)
    model = fitting.MODELS["usadel"]
    initial = {(proximity.MISMATCH_NAME if k == "gamma" else k): v for k, v in start.values().items()}
    initial["scale"] = 1.0
    out = []
    for label, run in (
            ("fit_global(model='usadel')", lambda: fitting.fit_global(
                proximity.line_scan_datasets(X, V, G), model="usadel", shared=["xi_n", "gamma_b", "scale"],
                series={"x": X}, initial=initial, sigma=0.01)),
            ("proximity.fit_line_scan", lambda: proximity.fit_line_scan(
                X, V, G, junction=start, free=("xi_n", "gamma_b", "scale"), sigma=0.01))):
        times, r = [], None
        for _ in range(repeat):
            model.sample.cache.clear()
            solves = model.sample.cache.solves
            t0 = time.perf_counter()
            r = run()
            times.append(time.perf_counter() - t0)
        assert r is not None
        note = f"ξ_S′ = {r.values['xi_n']:.4f} ± {r.errors['xi_n']:.4f} nm, γ_B = {r.values['gamma_b']:.4f} ± " \
               f"{r.errors['gamma_b']:.4f} (truth 3, 0.5); {r.nfev} evaluations"
        if label.startswith("fit_global"):
            note += f", {model.sample.cache.solves - solves} Usadel solves"
        out.append({"case": f"Usadel line scan 20 × 200, {label} (median of {repeat})",
                    "seconds": statistics.median(times), "target": None,
                    "note": note + f"; runs {min(times):.1f}–{max(times):.1f} s"})
    return out


def _iter_rows(full: bool):
    fitting.fit(np.linspace(-2, 2, 50), np.ones(50))          # warm-up: lmfit import
    yield global_row()
    yield deconvolution_row()
    yield from ysr_rows()
    yield from grid_rows(*((128, 128) if full else (32, 32)))
    yield from line_scan_rows()


def rows(full: bool = False) -> list[dict]:
    """All records; ``full``: the 128×128×200 grid (an hour on 2 busy shared cores)."""
    return list(_iter_rows(full))


def print_rows(full: bool = False, only_line_scan: bool = False) -> None:
    """The fitting benchmark lines (called by benchmarks/bench.py), each as soon as it is measured."""
    print("\nFitting kernels (issue 15; synthetic data; best of 3 where repeated)", flush=True)
    for r in (line_scan_rows() if only_line_scan else _iter_rows(full)):
        target = f"(target ≤ {r['target']:g} s)" if r["target"] else ""
        print(f"  {r['case']:<66} {r['seconds']:8.2f} s {target:<17} {r['note']}", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="grid fit on the full 128×128×200 grid")
    ap.add_argument("--line-scan", action="store_true", help="only the Usadel line-scan rows")
    a = ap.parse_args()
    print_rows(a.full, a.line_scan)
