"""Kernels bound their work for every allowed input (issue 16): grid sizes, temporaries, cost estimates.

Each test pins an input the bounds sweep (tests/widgets/test_bounds_sweep.py) found to take gigabytes or
many seconds, and checks the result against an independent computation.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
from scipy.integrate import quad

from gapscope.kernels import dos, ising, tunneling
from gapscope.kernels.constants import KB


def test_fine_biases_over_a_hot_range_keep_the_grid_bounded():
    """T = 300 K with biases 0.1 µV apart: an aligned grid would need 10⁷ points (2 GB, 13 s); the grid
    falls back to at most 2¹⁷ points and dI/dV still equals the thermal average of the DOS (quadrature)."""
    V = np.linspace(-0.05, 0.05, 1000)
    kT = KB * 300.0
    g = tunneling._plan(V, lo=-0.05 - 20 * kT, hi=0.05 + 20 * kT, h_target=kT / 6.0 / 100.0)
    assert g.n <= 2 * tunneling._N_MAX
    sample = dos.bind("dynes", delta=5.0, gamma=0.5)
    t0 = time.perf_counter()
    G = tunneling.didv(V, sample_dos=sample, temperature=300.0, vmod_rms=0.02)
    assert time.perf_counter() - t0 < 3.0

    def thermal(v: float) -> float:          # ∫ N(E) (−f′)(E − V) dE, lock-in ignored (0.02 mV ≪ k_BT)
        def f(E):
            return float(sample(np.array([E]))[0]) / (4 * kT * np.cosh((E - v) / (2 * kT)) ** 2)
        return quad(f, v - 40 * kT, v + 40 * kT, points=[-5.0, 5.0], limit=400)[0]

    for i in (0, 500, 999):
        assert G[i] == pytest.approx(thermal(V[i]), abs=2e-4)


def test_lockin_weights_stay_within_a_block_of_memory():
    """A map at ±50 mV with a 20 mV lock-in and a sharp SC tip: 512 phases × 10⁵ energies used to be built
    at once (several 0.9 GB complex temporaries; the Shiba panel ran out of memory); now in blocks.  The
    weights still give dI/dV = w·N(E) as the FFT path of didv does."""
    chain = dict(temperature=0.32, tip_delta=1.43, tip_gamma=0.0259, vmod_rms=20.0)
    E = np.linspace(-60.0, 80.0, 20_001)          # 512 lock-in phases × 20 001 energies: 160 MiB per temporary
    tracemalloc.start()
    w = tunneling.didv_weights(np.array([50.0]), E, **chain)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 150 * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MiB"
    sample = dos.bind("dynes", delta=1.5, gamma=0.05)
    V = np.array([-3.0, 2.0, 50.0])
    small = dict(chain, vmod_rms=0.3)
    Es = tunneling.energy_grid(V, sample_gamma=0.05, **small)
    ws = tunneling.didv_weights(V, Es, **small)
    np.testing.assert_allclose(ws @ sample(Es), tunneling.didv(V, sample_dos=sample, **small), atol=2e-3)
    assert np.all(np.isfinite(w))


def test_ising_cost_estimates_count_the_work_done(monkeypatch):
    """sample_dos_cost bounds the number of 4×4 BdG signs sample_dos computes (within 2×); hc2_cost is the
    number of pole terms per root-finding step."""
    counted = []
    real = ising._sign_traces

    def counting(A):
        counted.append(A.shape[0] * A.shape[1])
        return real(A)

    monkeypatch.setattr(ising, "_sign_traces", counting)
    h = ising.field_vector(b=5.0, angle=0.0)
    kw = dict(field=h, gamma=0.1, rashba=0.4, window=3.0)
    ising.sample_dos(delta=0.4, beta_so=1.0, **kw)
    cost = ising.sample_dos_cost(**kw)
    assert cost / 2 <= sum(counted) <= cost           # the distinct |E| of the table, times the φ nodes
    assert ising.sample_dos_cost(field=h, gamma=0.1, rashba=0.0, window=3.0) == 0      # closed form
    T = np.linspace(0.1, 2.9, 10)
    assert ising.hc2_cost(T, rashba=0.0) == 20
    W, _ = ising._linear_terms(h[None, :], 1.0, 0.4, ising._n_phi_linear(0.4, 0.1))
    assert ising.hc2_cost(T, rashba=0.4) == T.size * W.shape[-1]


def test_didv_weights_cost_counts_the_tip_evaluations(monkeypatch):
    """didv_weights_cost = the number of tip-DOS evaluations didv_weights makes (counted), before making them."""
    counted = []
    for name in ("_dynes_raw", "_dynes_anti_raw"):
        real = getattr(tunneling, name)

        def counting(x, *args, _real=real, _name=name):
            counted.append(np.size(x) / (2 if _name == "_dynes_anti_raw" else 1))   # a cell average: two calls
            return _real(x, *args)
        monkeypatch.setattr(tunneling, name, counting)
    V, E = np.array([0.5, 1.0]), np.linspace(-3.0, 3.0, 601)
    for tip_gamma in (0.05, 0.001):                        # point values, and cell averages of a sharp tip
        counted.clear()
        tunneling.didv_weights(V, E, temperature=0.3, tip_delta=1.3, tip_gamma=tip_gamma, vmod_rms=0.1)
        assert sum(counted) == tunneling.didv_weights_cost(V, E, tip_delta=1.3, vmod_rms=0.1)
    assert tunneling.didv_weights_cost(V, E, vmod_rms=0.0) == V.size * E.size
