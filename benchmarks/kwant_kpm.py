"""kwant's KPM on the lattice benchmark's workload, run by bench_ysr_lattice.py in kwant's own venv (``make kwant``).

kwant 1.5 builds only against numpy < 2, so it cannot share gapscope's environment; this script
imports kwant and numpy only, and prints one JSON line.  The workload (issue 12): square lattice
t = 1, μ = −1, Δ = 0.2t, a classical spin with exchange 1.5t along z on site (0, 0), an L×L torus
(L = 41), the LDOS at the impurity at 400 energies in [−0.4, 0.4]t.  BdG orbitals per site
(e↑, e↓, h↑, h↓): on-site −μτ_z + Δτ_x (+ J σ_z at the impurity), hopping −tτ_z.  The LDOS comes
from kwant.kpm.SpectralDensity with the impurity's four orbital vectors (exact, not random) and
the Lorentz kernel, whose broadening is λ·a/N (λ = 4, a = 2b/(2 − 0.05) kwant's scale for the bounds ±b,
N moments): N = λa/Γ matches the Dynes Γ of gapscope's torus.  Usage: ``python kwant_kpm.py N [N …]``.
"""

from __future__ import annotations

import json
import sys
import time

import kwant
import kwant.kpm
import numpy as np
import tinyarray as ta

T, MU, DELTA, J, L = 1.0, -1.0, 0.2, 1.5, 41
S0, SZ = np.eye(2), np.diag([1.0, -1.0])
TZ = np.kron(np.diag([1.0, -1.0]), S0)
TX = np.kron(np.array([[0.0, 1.0], [1.0, 0.0]]), S0)
EX = np.kron(S0, SZ)
BOUND = 4.0 * T + abs(MU) + DELTA + J          # beyond every BdG eigenvalue (|ε| ≤ 4t + |μ|, the spin adds ≤ J)
#: kwant rescales H by a = |b₊ − b₋|/(2 − ε) with its default ε = 0.05; the Lorentz kernel then broadens by λa/N
SCALE = 2.0 * BOUND / (2.0 - 0.05)


def hamiltonian():
    lat = kwant.lattice.square(1, norbs=4)
    syst = kwant.Builder(kwant.TranslationalSymmetry((L, 0), (0, L)))
    origin = ta.array((0, 0))
    syst[lat.shape(lambda p: True, (0, 0))] = lambda site: -MU * TZ + DELTA * TX + (J * EX if site.tag == origin
                                                                                    else 0.0 * TZ)
    syst[lat.neighbors()] = -T * TZ
    fsyst = kwant.wraparound.wraparound(syst).finalized()
    H = fsyst.hamiltonian_submatrix(params=dict(k_x=0.0, k_y=0.0), sparse=True).tocsr()
    imp = [i for i, s in enumerate(fsyst.sites) if s.tag == origin][0]
    return H, imp


def main() -> None:
    w = np.linspace(-0.4, 0.4, 400)
    out = {"bound": BOUND, "scale": SCALE, "runs": []}
    for nm in (int(a) for a in sys.argv[1:]):
        t0 = time.perf_counter()
        H, imp = hamiltonian()
        vecs = np.zeros((4, H.shape[0]), complex)
        for o in range(4):
            vecs[o, 4 * imp + o] = 1.0
        sd = kwant.kpm.SpectralDensity(H, num_moments=nm, vector_factory=iter(vecs), num_vectors=4,
                                       bounds=(-BOUND, BOUND), kernel=kwant.kpm.lorentz_kernel)
        rho = 4.0 * np.real(sd(w))                 # the average over the 4 vectors → their sum, −Im Tr G/π
        out["runs"].append({"moments": nm, "seconds": time.perf_counter() - t0, "eta": 4.0 * SCALE / nm,
                            "ldos": rho.tolist()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
