"""Benchmark of the Rashba YSR engine: tip spectra of a 5-orbital Mn dimer and of a 10-atom chain on a
Nb(110)-like 2D band with α_R = 2·7.5·0.3294 meV nm, per coupling (α) change through ``Engine`` (caches
kept across ``Engine.update``), per α_R change (propagators rebuilt), YSR energies and a small map.

The α change touches the s channels only (2 of 10 for the dimer: the other 8 are folded into effective
propagators once, :meth:`Engine._downfold`; all 10 for the chain: the full tip-column solve).
Prints measured numbers (best and median of N, shared machine); it is not a timed test.  ``rows()``
prints the lines (for ``benchmarks/bench.py``); run alone with ``.venv/bin/python benchmarks/bench_ysr_rashba.py``.
"""

from __future__ import annotations

import numpy as np
from _timing import best

from gapscope.kernels import ysr
from gapscope.kernels.ysr import geometry as geo
from gapscope.kernels.ysr import tmatrix

SHAPES5 = ["s", "dxz", "dyz", "dx2-y2", "dxy"]
N_E = 1000
AR = geo.alpha_r_from_t_r(7.5)


def _dimer(alpha: float, rashba: float = AR) -> tuple[ysr.Substrate, list[ysr.Impurity]]:
    sub = ysr.Substrate(kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.02585, rashba=rashba)
    p = geo.nb110_dimer("√3a/2 [1-11]")
    ch = [ysr.Channel("s", alpha, 0.3)] + [ysr.Channel(s, 0.5, 0.2) for s in SHAPES5[1:]]
    return sub, geo.impurities(p, geo.spin_texture(p, texture="afm"), ch)


def _chain(alpha: float, rashba: float = AR) -> tuple[ysr.Substrate, list[ysr.Impurity]]:
    sub = ysr.Substrate(kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.02585, rashba=rashba)
    p = geo.nb110_chain(10, bond="a [001]")
    return sub, geo.impurities(p, geo.spin_texture(p, texture="afm"), [ysr.Channel("s", alpha, 0.3)])


def _alpha_row(name: str, build, point: tuple[float, float]) -> None:
    w = np.linspace(-3.0, 3.0, N_E)
    for label, tip_columns, fold in (("after: tip columns, unchanged channels folded", True, True),
                                     ("before: tip-column solve over all channels", True, False),
                                     ("before that: full t, two-step contraction", False, False)):
        eng = ysr.Engine(*build(0.7))
        eng.tip_columns = tip_columns
        eng.fold_channels = fold
        eng.ldos([point], w)                                   # warm the propagator caches
        alphas = iter(np.linspace(0.5, 0.9, 10000))

        def step(eng=eng, alphas=alphas) -> None:
            eng.update(*build(float(next(alphas))))
            eng.ldos([point], w)
        b, m = best(step, repeat=15)
        print(f"  {name}: {N_E}-energy tip spectrum per α change (Engine.update + ldos) {b * 1e3:8.1f} ms "
              f"(median {m * 1e3:.1f}; n = {eng.prop.n}; {label})")
    eng.tip_columns = True
    z = w + 1j * eng.substrate.gamma
    pt = np.array([[point[0], point[1], 0.0]])
    t = eng.t_matrix(z)
    spin = np.eye(2, dtype=complex)
    tt = eng.prop.reduce_t(t, spin)
    rows, cols = eng._reduced(pt, z, 0.1, "electron", exact=True)
    G = eng.channel_matrix(z)
    vm = tmatrix.v(eng.prop)
    eye = np.eye(eng.prop.n)
    parts = [("solve_t (full n×n t)", lambda: eng.t_matrix(z)),
             ("  before: dense v𝒢 product + solve", lambda: np.linalg.solve(eye[None] - vm[None] @ G,
                                                                           np.broadcast_to(vm, G.shape))),
             ("reduce_t (m = 2n)", lambda: eng.prop.reduce_t(t, spin)),
             ("Engine._contract (two steps)", lambda: eng._contract(rows, cols, tt)),
             ("  before: einsum optimize=True", lambda: -0.5 * np.imag(
                 np.einsum("tpeb,eba,tpea->pe", rows, tt, cols, optimize=True))),
             ("Engine._tip_columns (what ldos uses)", lambda: eng._tip_columns(rows, cols, z, spin))]
    phi, phib = eng.prop.map_propagators(pt, z, 0.1)

    def tip_columns() -> np.ndarray:      # what the spectrum needs: (1 − v𝒢)X = vΦ̄ for the tip's e columns only
        x = np.linalg.solve(np.eye(eng.prop.n)[None] - vm[None] @ G, vm[None] @ phib[0][:, :, :2])
        return -0.5 * np.imag(np.einsum("eai,eia->e", phi[0][:, :2, :], x))
    parts.append(("  the suggestion as first tried (dense v products)", tip_columns))
    for label, f in parts:
        b, m = best(f, repeat=7)
        print(f"      {label:48s} {b * 1e3:8.1f} ms (median {m * 1e3:.1f})")
    rs = iter(np.linspace(3.0, 6.0, 10000))

    def step_r() -> None:
        eng.update(*build(0.7, float(next(rs))))
        eng.ldos([point], w)
    b, m = best(step_r, repeat=5)
    print(f"  {name}: same per α_R change (propagators rebuilt)  {b * 1e3:8.1f} ms (median {m * 1e3:.1f})")


def rows() -> None:
    print(f"\nYSR with Rashba (α_R = {AR:.3f} meV nm, Nb-like 2D band, Γ = 0.02585 meV)")
    _alpha_row("5-orbital AFM dimer √3a/2 [1-11]", _dimer, (0.1, 0.05))
    _alpha_row("10-atom s chain a [001]        ", _chain, (0.05, 0.1))
    b, m = best(lambda: ysr.energies(*_dimer(0.7)), repeat=3)
    print(f"  5-orbital dimer: ysr.energies (eigen-branch + brentq) {b * 1e3:8.0f} ms (median {m * 1e3:.0f})")
    b, m = best(lambda: ysr.energies(*_chain(0.7)), repeat=3)
    print(f"  10-atom chain: ysr.energies         {b * 1e3:8.0f} ms (median {m * 1e3:.0f})")
    eng = ysr.Engine(*_dimer(0.7))
    x = np.linspace(-1.0, 1.0, 41)
    pts = np.array(np.meshgrid(x, x)).reshape(2, -1).T
    e = np.array([0.9, 0.95])
    b, m = best(lambda: ysr.Engine(*_dimer(0.7)).weighted_map(pts, e, np.ones(2)), repeat=3)
    print(f"  5-orbital dimer: 41×41 map at 2 energies (fresh engine) {b * 1e3:8.0f} ms (median {m * 1e3:.0f})")
    eng.weighted_map(pts, e, np.ones(2))
    b, m = best(lambda: eng.weighted_map(pts, e, np.array([1.0, 0.5])), repeat=5)
    print(f"  same, cached propagators (new weights) {b * 1e3:8.1f} ms (median {m * 1e3:.1f})")


if __name__ == "__main__":
    rows()
