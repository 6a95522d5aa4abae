"""Race: the continuum YSR engine (gapscope.kernels.ysr) against green-ysr 0.0.8 on the same spectra.

green-ysr (PyPI) is a pure-Python continuum T-matrix (Hartree atomic units, one energy and one tip at a
time, the Struve-function propagator through mpmath).  Cases as in tests/kernels/test_green_ysr.py: a
single impurity, an FM and an AFM dimer 10 a₀ apart and a 5-atom spin-spiral chain (pitch 9 a₀) on
green-ysr's default band (m = 18.7, p_F = 0.21 a.u.), Δ = 1 meV, Γ = 0.05 meV, exchange α = 0.84,
potential β = 0.19 (dimensionless); 41 energies in ±1.6 meV at 2 tip positions.  Both are timed in this
process: green-ysr once (seconds of CPU), gapscope as the best of 5 fresh-engine runs (cold: propagators,
T-matrix and LDOS).  The agreement printed is against green-ysr with its propagator replaced by the
parabolic band's exact one (the test module explains the swap and the electron/hole labels).

Prints numbers; it is not a timed test.  Run alone with ``.venv/bin/python benchmarks/bench_green_ysr.py``.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import constants as const
from scipy import special

from gapscope.kernels import ysr

A0 = const.physical_constants["Bohr radius"][0] * 1e9
HA = const.physical_constants["Hartree energy in eV"][0] * 1e3
M, PF, DELTA, GAMMA, ALPHA, U = 18.7, 0.21, 1.0, 0.05, 0.09, 0.02
CASES = {
    "single impurity": ([[0.0, 0.0]], [0.0]),
    "FM dimer (10 a0)": ([[0.0, 0.0], [10.0, 0.0]], [0.0, 0.0]),
    "AFM dimer (10 a0)": ([[0.0, 0.0], [10.0, 0.0]], [0.0, np.pi]),
    "5-atom spiral chain": ([[9.0 * i, 0.0] for i in range(5)], [i * np.pi / 3 for i in range(5)]),
}
TIPS = [[3.0, 2.0], [14.0, -3.0]]
ENERGIES = np.linspace(-1.6, 1.6, 41)


def _exact_class(base):
    class Exact(base):
        def G0(self, r1, r2, E):
            x = float(np.hypot(r1[0] - r2[0], r1[1] - r2[1]))
            if x < 1e-5:
                return super().G0(r1, r2, E)
            w = np.sqrt(self.delta ** 2 - E ** 2)
            qp, qm = np.sqrt(self.pf ** 2 + 2j * self.m * w), np.sqrt(self.pf ** 2 - 2j * self.m * w)
            h1, h2 = special.hankel1(0, qp * x), special.hankel2(0, qm * x)
            bcs = E / w * np.kron(self.s0, self.s0) + self.delta / w * np.kron(self.s1, self.s0)
            return self.m / 2 * (h1 + h2) / 2 * bcs + self.m / 2 * (h1 - h2) / 2j * np.kron(self.s3, self.s0)
    return Exact


def _peer(cls, pos, th):
    n = len(pos)
    g = cls(n, np.full(n, ALPHA), np.array(th, float), pos, U=np.full(n, U), m=M, pf=PF, delta=DELTA / HA, mode=0)
    zs = (ENERGIES + 1j * GAMMA) / HA
    return np.array([[g.ElecDOS(tp, z) for z in zs] for tp in TIPS]) / M


def _ours(pos, th):
    sub = ysr.Substrate(dim=2, kf=PF / A0, hbar_vf=PF / M * HA * A0, delta=DELTA, gamma=GAMMA)
    imps = [ysr.Impurity(position=tuple(np.asarray(p) * A0), spin=(float(np.sin(t)), 0.0, float(np.cos(t))),
                         channels=[ysr.Channel("s", M / 2 * ALPHA, M / 2 * U)]) for p, t in zip(pos, th, strict=True)]
    return ysr.Engine(sub, imps).ldos(np.asarray(TIPS) * A0, ENERGIES, part="hole", tip_radius=0.0)


def rows() -> None:
    try:
        import green_ysr
    except ImportError:
        print("\ngreen-ysr not installed (pip install green-ysr==0.0.8 mpmath): race skipped")
        return
    print(f"\nContinuum YSR engine vs green-ysr 0.0.8 ({ENERGIES.size} energies × {len(TIPS)} tips, Δ = {DELTA} meV, "
          f"Γ = {GAMMA} meV; green-ysr timed once, gapscope best of 5, cold engine each time)")
    exact = _exact_class(green_ysr.green)
    for name, (pos, th) in CASES.items():
        t0 = time.process_time()
        _peer(green_ysr.green, pos, th)
        t_peer = time.process_time() - t0
        times = []
        for _ in range(5):
            t1 = time.process_time()
            got = _ours(pos, th)
            times.append(time.process_time() - t1)
        ref = _peer(exact, pos, th)
        dev = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
        t_ours = min(times)
        print(f"  {name:<22} green-ysr {t_peer:7.2f} s   gapscope {t_ours * 1e3:7.2f} ms   "
              f"ratio {t_peer / t_ours:8.0f}×   "
              f"max deviation from green-ysr with the exact propagator {dev:.1e} of the peak")


if __name__ == "__main__":
    rows()
