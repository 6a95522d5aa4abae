"""Benchmark of YSR dI/dV maps: one map update after an α change (cached propagators) and after a Δ change
(everything rebuilt), at 64² and 128², for 1 s channel, the 4-channel Mn preset of the Shiba panel and a
dimer with 5 orbital channels per atom — the fast path (radial harmonic tables + energy interpolation),
the reduced-map path it replaces, and the naive way (the exact direct per-pixel evaluation: Hankel
functions at every pixel and energy, full 4C × 4C matrices; extrapolated from a few pixels).

Energies: the Mn preset's map bias (state 4, negative side, through the superconducting tip Δ_t = 1.43 mV,
Γ_t = 0.01 meV, T = 0: 489 energies kept).  Prints numbers; it is not a timed test.  ``rows()`` prints
this topic's lines (for ``benchmarks/bench.py``); run alone with ``.venv/bin/python benchmarks/bench_ysr_maps.py``.
"""

from __future__ import annotations

import os
import time

import numpy as np
from _timing import best

from gapscope.kernels import tunneling, ysr
from gapscope.widgets.shiba_panel import SHIBA_PRESETS

FIVE = ["dz2", "dxz", "dyz", "dx2-y2", "dxy"]
#: Rashba SOC of the Rashba rows, meV nm (2·t_R·a with t_R = 7.5 meV, a = 0.3294 nm: Beck et al. 2021)
RASHBA = 4.941
RASHBA_CASE = "5 + 5 channels, Rashba α_R = 4.941"


def setups() -> tuple[ysr.Substrate, dict[str, list[ysr.Impurity]], np.ndarray, np.ndarray]:
    p = SHIBA_PRESETS["Mn on Nb(110) — Beck et al."]
    v = p.values
    sub = ysr.Substrate(dim=2, kf=v["kf"], hbar_vf=v["hbar_vf"], delta=v["delta"], gamma=v["gamma"])
    mn = [ysr.Impurity((0.0, 0.0), (0, 0, 1), [ysr.Channel(s, a, b) for s, (a, b) in p.channels.items()])]
    cases = {
        "1 channel (s)": [ysr.Impurity(channels=[ysr.Channel("s", 0.7, 0.3)])],
        "4 channels (Mn preset)": mn,
        "5 + 5 channels (AFM dimer, 0.285 nm)": [
            ysr.Impurity((0.0, 0.0), (0, 0, 1), [ysr.Channel(s, 0.5 + 0.05 * i, 0.1) for i, s in enumerate(FIVE)]),
            ysr.Impurity((0.2853, 0.0), (0, 0, -1), [ysr.Channel(s, 0.5 + 0.05 * i, 0.1) for i, s in enumerate(FIVE)])],
    }
    cases[RASHBA_CASE] = [ysr.Impurity(i.position, i.spin, [ysr.Channel(s, c.alpha, c.beta)
                                                            for s, c in zip(["s"] + FIVE[1:], i.channels, strict=True)])
                          for i in cases["5 + 5 channels (AFM dimer, 0.285 nm)"]]
    bias = np.array([-(ysr.energies(sub, mn)[3] + 1.43)])
    chain = dict(temperature=0.0, tip_delta=1.43, tip_gamma=0.01, vmod_rms=0.0)
    E = tunneling.energy_grid(bias, sample_gamma=sub.gamma, **chain)
    W = tunneling.didv_weights(bias, E, **chain)[0]
    return sub, cases, E, W


def with_alpha(imps: list[ysr.Impurity], a: float) -> list[ysr.Impurity]:
    return [ysr.Impurity(i.position, i.spin, [ysr.Channel(c.shape, c.alpha + a, c.beta) for c in i.channels])
            for i in imps]


def naive_map(sub: ysr.Substrate, imps: list[ysr.Impurity], pts: np.ndarray, E: np.ndarray, W: np.ndarray
              ) -> np.ndarray:
    """Exact direct evaluation: τ-blocks at every pixel and energy (no table), full matrices, t per energy."""
    prop = ysr.make_propagators(sub, imps)
    z = E + 1j * sub.gamma
    phi, phib = prop.map_propagators(pts, z, 0.1)
    t = ysr.solve_t(prop, z)
    proj = np.kron(np.diag([1.0, 0.0]), np.eye(2))
    bulk = -0.5 * np.imag(np.einsum("ab,eba->e", proj, prop.local_green(z)))
    corr = -0.5 * np.imag(np.einsum("ab,pebc,ecd,peda->pe", proj, phi, t, phib, optimize=True))
    return (bulk[None, :] + corr) @ W


def substrate(sub: ysr.Substrate, name: str, delta: float | None = None, rashba: float | None = None
              ) -> ysr.Substrate:
    """The case's substrate (Rashba rows: α_R = RASHBA unless given), optionally with another Δ."""
    ar = (RASHBA if rashba is None else rashba) if name == RASHBA_CASE else 0.0
    return ysr.Substrate(dim=2, kf=sub.kf, hbar_vf=sub.hbar_vf, delta=sub.delta if delta is None else delta,
                         gamma=sub.gamma, rashba=ar)


def rows(repeat: int = 5, sizes: tuple[int, ...] = (64, 128), old_max: int = 64) -> None:
    """Print the rows; the reduced-map path ('before') only up to ``old_max``² pixels (it takes minutes at 128²).

    Rashba rows: 'fast' is the fast path (harmonic basis of 24 functions per 5-channel site, energy-summed
    term kernels P = Σ_α c_α(z) P_α, merged cross-site products, closed-form radial profiles), 'dense' the same
    factorisation with per-energy kernels (``Engine.block_kernels = False``: dense T̃ products, two
    cross-site products per pair; ``_FastMap.pair_ratios = False``: S̄ tabulated and interpolated separately),
    and 't_R' a Rashba change (propagators and the map's tables rebuilt)."""
    base, cases, E, W = setups()
    keep = np.abs(W) >= 1e-4 * np.abs(W).max()
    load = os.getloadavg()[0]
    print(f"\nYSR dI/dV maps (Mn preset substrate, map at state 4 through the SC tip: {keep.sum()} energies; "
          f"2 cores, load {load:.1f}; best of {repeat}, median)")
    for name, imps in cases.items():
        sub = substrate(base, name)
        for npx in sizes:
            x = np.linspace(-1.5, 1.5, npx)
            X, Y = np.meshgrid(x, x[::-1])
            pts = np.c_[X.ravel(), Y.ravel()]
            line = f"  {name:<38} {npx:>3}²"
            variants = [("fast", True, True), ("before", False, True)]
            if name == RASHBA_CASE:
                variants = [("fast", True, True), ("dense", True, False)]
            for label, fast, blocks in variants:
                if not fast and npx > old_max:
                    continue
                ysr.Engine.fast_maps = fast
                ysr.Engine.block_kernels = blocks
                ysr.engine._FastMap.pair_ratios = blocks
                try:
                    shifts = iter(np.linspace(-0.2, 0.2, 1000))
                    eng = ysr.Engine(sub, imps)
                    eng.weighted_map(pts, E, W, orbital_radius=0.1)

                    def alpha(eng=eng, imps=imps, shifts=shifts, pts=pts, sub=sub):
                        eng.update(sub, with_alpha(imps, next(shifts)))
                        eng.weighted_map(pts, E, W, orbital_radius=0.1)
                    ba, ma = best(alpha, repeat if fast else 2)
                    deltas = iter(np.linspace(1.45, 1.55, 1000))

                    def delta(eng=eng, imps=imps, deltas=deltas, pts=pts, name=name):
                        eng.update(substrate(base, name, delta=float(next(deltas))), imps)
                        eng.weighted_map(pts, E, W, orbital_radius=0.1)
                    bd, md = best(delta, max(2, repeat // 2) if fast else 1)
                    line += (f"  {label}: α {ba * 1e3:6.0f} ms ({ma * 1e3:.0f})  Δ {bd * 1e3:6.0f} ms ({md * 1e3:.0f})")
                    if name == RASHBA_CASE:
                        ars = iter(np.linspace(4.5, 5.5, 1000))

                        def rashba(eng=eng, imps=imps, ars=ars, pts=pts, name=name):
                            eng.update(substrate(base, name, rashba=float(next(ars))), imps)
                            eng.weighted_map(pts, E, W, orbital_radius=0.1)
                        br, mr = best(rashba, 2)
                        line += f"  t_R {br * 1e3:6.0f} ms ({mr * 1e3:.0f})"
                finally:
                    ysr.Engine.fast_maps = True
                    ysr.Engine.block_kernels = True
                    ysr.engine._FastMap.pair_ratios = True
            if npx == sizes[-1]:
                n_naive = 64
                t0 = time.perf_counter()
                ref = naive_map(sub, imps, pts[:n_naive], E[keep], W[keep])
                naive = (time.perf_counter() - t0) * pts.shape[0] / n_naive
                eng = ysr.Engine(sub, imps)
                got = eng.weighted_map(pts[:n_naive], E, W, orbital_radius=0.1)
                err = np.max(np.abs(got - ref)) / np.abs(ref).max()
                line += f"  naive per-pixel {naive:6.1f} s (from {n_naive} px; fast − naive ≤ {err:.1e} of max)"
            print(line)


if __name__ == "__main__":
    rows()
