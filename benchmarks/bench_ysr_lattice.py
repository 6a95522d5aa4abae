"""Benchmark of the lattice YSR substrate (gapscope.kernels.ysr.lattice) against pyqula and exact diagonalisation.

The issue's workload: square lattice t = 1, μ = −1, Δ = 0.2t, one classical spin with exchange 1.5t along z,
Dynes broadening 0.01t (energies in units of t, i.e. t = 1 meV).  Rows:

* spectrum: 400 energies at the impurity — gapscope cold (k-mesh, bins, T-matrix) and after a coupling change
  (cached 𝒢), beside pyqula 0.0.96's embedding (timed on a few energies in this run, per-energy time × 400);
* 41×41 map at the YSR energy — gapscope (FFT of the k-mesh) beside pyqula's embedding map on an n×n supercell
  (measured here for n = 5, 9; n = 41 with ``--full``, the issue measured 156 s elsewhere);
* the same workload on a 13×13 torus (41×41 with ``--full``) by dense exact diagonalisation (one eigh gives
  every LDOS), beside the T-matrix on that torus (equal to ~1e-14);
* kwant's own workload, the 41×41 torus, cold (the exact k-sum of that torus);
* the Shiba dashboard on the lattice: a μ or t_R change to the drawn spectrum and to the whole update;
* the AFM dimer two sites apart, beside pyqula's embedding of a 3×1 supercell holding both spins.

kwant 1.5 does not build against numpy 2: ``make kwant`` builds it in its own venv (.venv-kwant, numpy < 2), and
the KPM spectrum on the 41×41 torus is then run there (benchmarks/kwant_kpm.py) and timed in this run; its exact
41×41 map (~460 s, measured elsewhere and quoted in the issue) is not re-run.

``--race``: the issue's race measured in this run — pyqula's full 400-energy spectrum and its 41×41 map (minutes of
CPU), beside gapscope's cold times (fresh substrate: k-mesh by the criterion, N₀, bins, T-matrix; median of 5).

Prints numbers; it is not a timed test.  Run alone with ``.venv/bin/python benchmarks/bench_ysr_lattice.py``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from gapscope.kernels.ysr import lattice

T, MU, DELTA, GAMMA, J = 1.0, -1.0, 0.2, 0.01, 1.5


def _imp(site=(0, 0), spin=(0.0, 0.0, 1.0), j=J):
    return lattice.Impurity(site=site, spin=spin, channels=[lattice.Channel(0, j, 0.0)])


def _pyqula():
    from pyqula import embedding, geometry
    g = geometry.square_lattice()
    h = g.get_hamiltonian(has_spin=True)
    h.add_onsite(-MU)          # pyqula hops with +t: its band is ours shifted by (π, π)
    h.add_swave(DELTA)
    hv = h.copy()
    hv.add_exchange([0.0, 0.0, J])
    return embedding.Embedding(h, m=hv)


def _torus(L):
    """Dense BdG matrix of the L×L torus with the impurity at site 0 (index 4·(n1·L + n2) + [e↑, e↓, h1, h2])."""
    N = L * L
    H = np.zeros((4 * N, 4 * N), complex)
    tz = np.kron(np.diag([1.0, -1.0]), np.eye(2))
    for n1 in range(L):
        for n2 in range(L):
            i = n1 * L + n2
            H[4 * i:4 * i + 4, 4 * i:4 * i + 4] += -MU * tz + DELTA * np.kron([[0, 1], [1, 0]], np.eye(2))
            for d1, d2 in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                j = ((n1 + d1) % L) * L + (n2 + d2) % L
                H[4 * j:4 * j + 4, 4 * i:4 * i + 4] += -T * tz
    H[0:4, 0:4] += J * np.kron(np.eye(2), np.diag([1.0, -1.0]))
    return H


def rows(full: bool = False, race: bool = False) -> None:
    print(f"\nLattice YSR substrate (square t = {T}, μ = {MU}, Δ = {DELTA}, Γ = {GAMMA}, exchange {J} along z; "
          "energies in units of t)")
    w = np.linspace(-0.4, 0.4, 400)
    xs = np.arange(-20, 21)
    pts = np.array([(a, b) for a in xs for b in xs])
    # cold = everything from the parameters: substrate, k-mesh, N₀, bins, T-matrix (median of 5 fresh runs)
    colds, cold_maps = [], []
    for _ in range(5):
        c0 = time.perf_counter()
        s_ = lattice.Substrate("square", t=T, mu=MU, delta=DELTA, gamma=GAMMA)
        lattice.Engine(s_, [_imp()]).ldos([(0, 0)], w, part="total")
        c1 = time.perf_counter()
        s_ = lattice.Substrate("square", t=T, mu=MU, delta=DELTA, gamma=GAMMA)
        e_ = lattice.energies(s_, [_imp()])
        c2 = time.perf_counter()
        lattice.Engine(s_, [_imp()]).ldos(pts, [e_[0]])
        c3 = time.perf_counter()
        colds.append(c1 - c0)
        cold_maps.append(c3 - c2)
    cold_spec, cold_map = float(np.median(colds)), float(np.median(cold_maps))
    print(f"  cold (fresh substrate each time, median of 5): 400-energy spectrum {cold_spec * 1e3:.0f} ms, 41×41 map "
          f"at E₀ {cold_map * 1e3:.0f} ms (YSR energy not included); kwant KPM 0.27 s (measured elsewhere, issue 12) "
          f"→ {0.27 / cold_spec:.2g}× on the spectrum (kwant's is a 41×41 torus, this the infinite lattice)")
    tors = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)       # (41² is too coarse for Γ: the torus, as kwant's)
        for _ in range(7):
            c0 = time.perf_counter()
            s_ = lattice.Substrate("square", t=T, mu=MU, delta=DELTA, gamma=GAMMA, nk=41)
            lattice.Engine(s_, [_imp()]).ldos([(0, 0)], w, part="total")
            tors.append(time.perf_counter() - c0)
    cold_tor = float(np.median(tors))
    print(f"  kwant's own workload, the 41×41 torus (Γ = {GAMMA}), 400 energies, cold from the parameters (median "
          f"of 7): gapscope {cold_tor * 1e3:.1f} ms (exact k-sum, equal poles merged) → {0.27 / cold_tor:.0f}× kwant's "
          "KPM 0.27 s (measured elsewhere)")
    kwant_rows(w, cold_tor, cold_spec, 2 * s_.n0 * lattice.Engine(s_, [_imp()]).ldos([(0, 0)], w, part="total")[0])
    t0 = time.perf_counter()
    sub = lattice.Substrate("square", t=T, mu=MU, delta=DELTA, gamma=GAMMA)
    eng = lattice.Engine(sub, [_imp()])
    t1 = time.perf_counter()
    spec = eng.ldos([(0, 0)], w, part="total")[0]
    t2 = time.perf_counter()
    eng.update(sub, [_imp(j=1.2)])
    eng.ldos([(0, 0)], w, part="total")
    t3 = time.perf_counter()
    eng.update(sub, [_imp()])
    e0 = lattice.energies(sub, [_imp()])
    t4 = time.perf_counter()
    olds, rashbas = [], []
    for _ in range(3):     # the on-site route before the triangles: the criterion's mesh, binned k-sum; and t_R
        c0 = time.perf_counter()
        s_ = lattice.Substrate("square", t=T, mu=MU, delta=DELTA, gamma=GAMMA, method="binned")
        lattice.Engine(s_, [_imp()]).ldos([(0, 0)], w, part="total")
        c1 = time.perf_counter()
        s_ = lattice.Substrate("square", t=T, mu=MU, delta=DELTA, gamma=GAMMA, rashba=0.3)
        lattice.Engine(s_, [_imp()]).ldos([(0, 0)], w, part="total")
        c2 = time.perf_counter()
        olds.append(c1 - c0)
        rashbas.append(c2 - c1)
    print(f"  on-site route: linear triangles on a {sub.triangle_nk}² mesh (curvature criterion) "
          f"{cold_spec * 1e3:.0f} ms cold, beside the direct binned k-sum on the criterion's {sub.nk[0]}² mesh "
          f"{np.median(olds) * 1e3:.0f} ms; with t_R = 0.3t (a t_R or μ slider change: a new substrate) "
          f"{np.median(rashbas) * 1e3:.0f} ms")
    print(f"  k-mesh {sub.nk} chosen by (2π/n)·v < Γ; substrate + mesh {t1 - t0:.2f} s; YSR energy "
          f"{e0[0]:.6f} t ({t4 - t3:.2f} s)")
    print(f"  spectrum, 400 energies on a built substrate: gapscope {(t2 - t1) * 1e3:.0f} ms (first call: bins), "
          f"after a coupling "
          f"change {(t3 - t2) * 1e3:.1f} ms")
    try:
        eb = _pyqula()
    except ImportError:
        print("  pyqula not installed (pip install pyqula==0.0.96): skipped")
        eb = None
    if eb is not None and race:
        eb.dos(energy=0.0, delta=GAMMA, nk=100, write=False)                    # numba / first-call compilation
        tq = time.perf_counter()
        pq_spec = np.array([eb.dos(energy=e, delta=GAMMA, nk=100, write=False) for e in w])
        tq1 = time.perf_counter()
        dev = np.max(np.abs(2 * sub.n0 * spec - pq_spec)) / np.max(np.abs(pq_spec))
        print(f"  RACE spectrum, 400 energies, measured here in this run: pyqula {tq1 - tq:.1f} s, gapscope cold "
              f"{cold_spec * 1e3:.0f} ms → {(tq1 - tq) / cold_spec:.0f}× (max deviation {dev:.1e} of the peak; "
              "pyqula nk = 100 is not converged above the gap)")
        eb.ldos(energy=float(lattice.energies(sub, [_imp()])[0]), delta=GAMMA, nsuper=3, nk=100, write=False)
        tq = time.perf_counter()
        eb.ldos(energy=float(lattice.energies(sub, [_imp()])[0]), delta=GAMMA, nsuper=41, nk=100, write=False)
        tq1 = time.perf_counter()
        print(f"  RACE 41×41 map at E₀, measured here in this run: pyqula {tq1 - tq:.1f} s, gapscope cold "
              f"{cold_map * 1e3:.0f} ms → {(tq1 - tq) / cold_map:.0f}×; kwant's exact map ~460 s (measured elsewhere) "
              f"→ {460 / cold_map:.0f}×")
    if eb is not None:
        eb.dos(energy=0.0, delta=GAMMA, nk=100, write=False)                    # numba / first-call compilation
        few = np.array([-0.3, -0.1, 0.0, 0.05, 0.15, 0.3])
        tq = time.perf_counter()
        ref = np.array([eb.dos(energy=e, delta=GAMMA, nk=100, write=False) for e in few])
        per = (time.perf_counter() - tq) / few.size
        ours = 2 * sub.n0 * eng.ldos([(0, 0)], few, part="total")[0]
        dev = np.max(np.abs(ours - ref)) / np.max(np.abs(spec * 2 * sub.n0))
        print(f"  pyqula embedding (nk = 100): {per:.3f} s per energy measured here → {400 * per:.0f} s for 400 "
              f"energies ({400 * per / (t3 - t2):.0f}× the cached gapscope update, "
              f"{400 * per / cold_spec:.0f}× cold from the parameters); max deviation on {few.size} energies "
              f"{dev:.1e} of the peak (pyqula nk = 100 is not converged above the gap; nk = 300 brings it to < 2e-3)")
    tm = time.perf_counter()
    amap = eng.ldos(pts, [e0[0]])
    tm1 = time.perf_counter()
    amap2 = eng.ldos(pts, [e0[0]])
    tm2 = time.perf_counter()
    assert np.allclose(amap, amap2)
    torus = tuple(int(n) for n in sub.decay_nk(np.array([e0[0] + 1j * GAMMA]), pts)[0])
    print(f"  41×41 map at E₀: gapscope {(tm1 - tm) * 1e3:.0f} ms (FFT of the {torus} torus on which G₀ at E₀ is the "
          f"infinite lattice's, not the criterion's {sub.nk}), {(tm2 - tm1) * 1e3:.1f} ms cached")
    if eb is not None:
        times = {}
        eb.ldos(energy=float(e0[0]), delta=GAMMA, nsuper=3, nk=100, write=False)     # first-call compilation
        for n in ((5, 9, 41) if full else (5, 9)):
            tq = time.perf_counter()
            eb.ldos(energy=float(e0[0]), delta=GAMMA, nsuper=n, nk=100, write=False)
            times[n] = time.perf_counter() - tq
        print("  pyqula embedding map on an n×n supercell, measured here: "
              + ", ".join(f"n = {n}: {s:.2f} s" for n, s in times.items())
              + ("" if full else " (n = 41: run with --full; the issue measured 156 s elsewhere)")
              + f"; ratio to gapscope's cold 41×41 map at the largest n: {times[max(times)] / (tm1 - tm):.1f}×")
    # exact diagonalisation on an L×L torus, and the T-matrix on the same torus
    L = 41 if full else 13
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tor = lattice.Substrate("square", t=T, mu=MU, delta=DELTA, gamma=0.05, nk=L)
    H = _torus(L)
    te = time.perf_counter()
    ev, U = np.linalg.eigh(H)
    te1 = time.perf_counter()
    ws = np.linspace(-0.4, 0.4, 400)
    u0 = U[0:4]
    g00 = np.einsum("an,bn,en->eab", u0, u0.conj(), 1.0 / (ws[:, None] + 0.05j - ev[None, :]))
    ed = -np.imag(np.einsum("eaa->e", g00)) / (2 * np.pi * tor.n0)
    te2 = time.perf_counter()
    tt = time.perf_counter()
    tm_ = lattice.Engine(tor, [_imp()]).ldos([(0, 0)], ws, part="total")[0]
    tt1 = time.perf_counter()
    ingap = np.sort(np.abs(ev[np.abs(ev) < DELTA - 1e-9]))[::2]
    print(f"  {L}×{L} torus (Γ = 0.05): dense ED {te1 - te:.2f} s eigh + {(te2 - te1) * 1e3:.0f} ms spectrum; T-matrix "
          f"on the same torus {(tt1 - tt) * 1e3:.0f} ms; max |Δρ| = {np.max(np.abs(tm_ - ed)):.1e}; in-gap ED "
          f"{ingap.round(6).tolist()} vs {lattice.energies(tor, [_imp()]).round(6).tolist()}")
    panel_rows()
    # the AFM dimer two sites apart: gapscope cold beside pyqula's embedding of a 3×1 supercell holding both spins
    dimer = [_imp((0, 0)), _imp((2, 0), spin=(0.0, 0.0, -1.0))]
    tds = []
    for _ in range(3):
        td = time.perf_counter()
        s_ = lattice.Substrate("square", t=T, mu=MU, delta=DELTA, gamma=GAMMA)
        lattice.Engine(s_, dimer).ldos([(0, 0), (1, 0), (2, 0)], w, part="total")
        tds.append(time.perf_counter() - td)
    cold_dim = float(np.median(tds))
    e_dim = lattice.energies(s_, dimer)
    line = (f"  AFM dimer two sites apart: 400-energy spectrum at its 3 sites {cold_dim:.2f} s cold (median of 3; the "
            f"off-site G₀ by the binned k-sum of the criterion's {s_.nk} mesh); energies {e_dim.round(5).tolist()}")
    if eb is not None:
        from pyqula import embedding, geometry
        g = geometry.square_lattice().get_supercell((3, 1))
        h = g.get_hamiltonian(has_spin=True)
        h.add_onsite(-MU)
        h.add_swave(DELTA)
        hv = h.copy()
        hv.add_exchange([[0.0, 0.0, J], [0.0, 0.0, 0.0], [0.0, 0.0, -J]])
        ed = embedding.Embedding(h, m=hv)
        ws = w if race else np.array([-0.3, -0.1, 0.0, 0.05, 0.15, 0.3])
        ed.ldos(energy=0.0, delta=GAMMA, nsuper=1, nk=100, write=False)
        tq = time.perf_counter()
        pq = np.array([ed.ldos(energy=e, delta=GAMMA, nsuper=1, nk=100, write=False)[2] for e in ws])
        per = (time.perf_counter() - tq) / ws.size
        ours = 2 * s_.n0 * lattice.Engine(s_, dimer).ldos([(0, 0), (1, 0), (2, 0)], ws, part="total").T
        dev = np.max(np.abs(ours - pq)) / np.max(np.abs(pq))
        what = "all 400 energies measured" if race else f"{per:.3f} s per energy on {ws.size} energies, × 400"
        line += (f"; pyqula embedding (3×1 supercell, nk = 100) {400 * per:.0f} s ({what}) → "
                 f"{400 * per / cold_dim:.0f}×; max deviation {dev:.1e} of the peak")
    print(line)


def kwant_rows(w: np.ndarray, cold_tor: float, cold_spec: float, ours: np.ndarray) -> None:
    """kwant 1.5's KPM on the same 41×41 torus, run in kwant's own venv (``make kwant``: it needs numpy < 2) by
    benchmarks/kwant_kpm.py; skipped with a note when that venv is missing (GAPSCOPE_KWANT_PYTHON names another)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path
    here = Path(__file__).resolve().parent
    py = os.environ.get("GAPSCOPE_KWANT_PYTHON") or str(here.parent / ".venv-kwant" / "bin" / "python")
    if not Path(py).exists():
        print("  kwant: not installed here (`make kwant` builds kwant 1.5 in its own venv, .venv-kwant; it needs "
              "numpy < 2); the issue's KPM time 0.27 s is quoted, measured elsewhere")
        return
    scale = 2.0 * (4.0 * T + abs(MU) + DELTA + J) / 1.95     # as kwant_kpm.SCALE: the Lorentz kernel's η = 4·scale/N
    matched = int(np.ceil(4.0 * scale / GAMMA))
    moments = [1024, 2048, matched]
    try:
        res = subprocess.run([py, "-W", "ignore", str(here / "kwant_kpm.py"), *map(str, moments)], check=True,
                             capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"  kwant: its venv failed to run the workload ({exc})", file=sys.stderr)
        return
    runs = json.loads(res.stdout.strip().splitlines()[-1])["runs"]
    parts = [f"{r['moments']} moments (η = {r['eta']:.3g}t) {r['seconds']:.2f} s" for r in runs]
    best = runs[-1]
    dev = np.max(np.abs(np.array(best["ldos"]) - ours)) / np.max(ours)
    print(f"  kwant 1.5 KPM measured here (its own venv, numpy < 2), the 41×41 torus, 400 energies, the impurity's 4 "
          f"orbital vectors, Lorentz kernel: {'; '.join(parts)}.  At η = Γ ({best['moments']} moments): "
          f"{best['seconds'] / cold_tor:.0f}× gapscope on that torus ({cold_tor * 1e3:.1f} ms), "
          f"{best['seconds'] / cold_spec:.0f}× gapscope's infinite lattice ({cold_spec * 1e3:.0f} ms); its LDOS "
          f"differs from gapscope's torus by {dev:.1e} of the peak (the Lorentz kernel, λ = 4, ends the "
          "Lorentzian's Chebyshev series where it is still e⁻⁴ ≈ 2 % of its first term)")


def panel_rows() -> None:
    """The Shiba dashboard on a lattice (its defaults: t = 3, μ = −3, Δ = 1.5, Γ = 0.0259 meV, superconducting tip
    at 0.32 K): a μ or t_R change, time from the change to the drawn spectrum (the staged result) and to the
    whole update (YSR energies, E(α), map), median of 5 changes each."""
    from gapscope.widgets import ShibaPanel
    p = ShibaPanel()
    p.wait()
    p.set(substrate="square")
    p.wait()
    out = {}
    for name, values in (("mu", (-2.95, -2.9, -2.85, -2.8, -2.75)), ("rashba", (0.3, 0.35, 0.4, 0.45, 0.5))):
        first, whole = [], []
        for x in values:
            p.set(**{name: x})
            p.wait()
            first.append(p.last_partial_s)
            whole.append(p.last_redraw_s)
        out[name] = (float(np.median(first)), float(np.median(whole)))
        p.set(mu=-3.0, rashba=0.0)
        p.wait()
    print("  Shiba dashboard on the square lattice (defaults), from a change to the drawn spectrum / to the whole "
          f"update: μ {out['mu'][0] * 1e3:.0f} / {out['mu'][1] * 1e3:.0f} ms, t_R {out['rashba'][0] * 1e3:.0f} / "
          f"{out['rashba'][1] * 1e3:.0f} ms (median of 5; the spectrum by the triangle route, then the YSR energies "
          "and E(α); the superconducting tip's map is refused as too costly)")


if __name__ == "__main__":
    import sys
    rows(full="--full" in sys.argv, race="--race" in sys.argv)
