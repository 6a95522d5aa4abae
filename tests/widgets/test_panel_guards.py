"""Panels estimate their cost before computing and refuse or coarsen with a message (issue 16).

One focused test per guard the bounds sweep (test_bounds_sweep.py) made necessary; each input is
allowed by the declared bounds.
"""

from __future__ import annotations

import numpy as np
import pytest

from gapscope.kernels import gap, ising
from gapscope.kernels.constants import KB
from gapscope.widgets import GapPanel, IsingPanel
from gapscope.widgets import ising_panel as ip


def _text(panel) -> str:
    return panel.message.value


def test_gap_panel_omits_a_weak_coupling_curve_beyond_the_kernels_bounds():
    """T_c = 300 K with a d-wave gap: the weak-coupling Δ₀ = 2.14 k_BT_c = 55 meV exceeds Δ₀ ≤ 50 meV.  The
    panel used to show the kernel's "delta0 must lie in [0, 50] meV" (a value the user never typed) and no
    curves; now it draws everything else and says why the reference is missing."""
    p = GapPanel(symmetry="d-wave", tc=300.0)
    assert "Internal error" not in _text(p) and "delta0 must" not in _text(p)
    assert "T_c = 300 K" in _text(p) and "weak-coupling" in _text(p)
    assert len(p.line_gapT_ref.x) == 0 and len(p.line_gapT.x) == 241
    assert np.all(np.isfinite(p.line_gapT.y))
    d0 = gap.delta0_from_ratio(tc=300.0, ratio=gap.weak_coupling_ratio(symmetry="dwave"))
    assert d0 == pytest.approx(0.5 * 4.28 * KB * 300.0, rel=2e-3) and d0 > 50.0
    p.set(tc=7.1)                                   # an ordinary T_c: the reference is back
    assert len(p.line_gapT_ref.x) == 241 and "weak-coupling" not in _text(p)


@pytest.fixture
def small_budgets(monkeypatch):
    """Budgets a small Rashba state exceeds, so the guards act in milliseconds instead of minutes."""
    monkeypatch.setattr(ip, "HC2_BUDGET", 2e4)
    monkeypatch.setattr(ip, "DOS_BUDGET", 5e3)


def test_ising_panel_coarsens_the_hc2_line_and_refuses_an_unaffordable_rashba_dos(small_budgets):
    p = IsingPanel(rashba=0.3, gamma=0.05)
    p.wait()
    v = p.values
    r = p.result
    # H_c2: the line at fewer temperatures, each exactly the kernel's
    assert ip.MIN_T <= r["T"].size < ip.N_T
    np.testing.assert_allclose(r["B"], ising.hc2(r["T"], tc=v["tc"], beta_so=v["beta_so"], rashba=0.3), rtol=1e-9)
    assert ising.hc2_cost(r["T"], rashba=0.3) <= ip.HC2_BUDGET or r["T"].size == ip.MIN_T
    # the DOS: not computed, and the message names the parameters and a Γ that fits the budget
    assert r["G"].size == 0 and len(p.line_didv.x) == 0
    msg = _text(p)
    assert "The spectrum is not computed" in msg and "λ_R = 0.3 meV" in msg and "raise Γ to ≥" in msg
    assert f"drawn at {r['T'].size} temperatures" in msg
    suggested = float(msg.split("raise Γ to ≥ ")[1].split(" meV")[0])
    hvec = ising.field_vector(b=v["b"], angle=v["angle"], g=v["g"])
    window = v["v_max"] + 25.0 * KB * v["temperature"] + 3.0 * v["vmod_rms"] + 0.5
    assert ising.sample_dos_cost(field=hvec, gamma=suggested, rashba=0.3, window=window) <= ip.DOS_BUDGET
    assert ising.sample_dos_cost(field=hvec, gamma=0.05, rashba=0.3, window=window) > ip.DOS_BUDGET
    # with that Γ the spectrum is drawn again
    p.set(gamma=suggested)
    p.wait()
    assert p.result["G"].size == ip.N_BIAS and "The spectrum is not computed" not in _text(p)


def test_ising_panel_default_rashba_range_stays_within_the_real_budgets():
    """The slider's whole Rashba range (λ_R ≤ 5 meV) with the defaults is computed in full: the guards only
    act beyond it (λ_R = 200 meV estimates 2.5 million BdG solutions, ~1 min)."""
    v = {p.name: p.default for p in IsingPanel.PARAMS}
    hvec = ising.field_vector(b=v["b"], angle=v["angle"], g=v["g"])
    window = v["v_max"] + 25.0 * KB * v["temperature"] + 3.0 * v["vmod_rms"] + 0.5
    T = v["tc"] * np.linspace(0.01, 1.0, ip.N_T)
    assert ising.sample_dos_cost(field=hvec, gamma=v["gamma"], rashba=5.0, window=window) <= ip.DOS_BUDGET
    assert ising.sample_dos_cost(field=hvec, gamma=v["gamma"], rashba=200.0, window=window) > 2e6
    assert ising.hc2_cost(T, rashba=200.0) > ip.HC2_BUDGET


def test_shiba_map_is_refused_before_its_weights_exceed_the_budget(monkeypatch):
    """Γ = 0 (drawn with Γ = 10⁻³Δ), V_map = 50 mV and V_mod = 20 mV made the map's tunnelling weights a
    512 × 10⁵ complex matrix (out of memory).  Their cost is now estimated first; past the budget the map is
    refused with the numbers and what to change, and the spectrum is still drawn."""
    from gapscope.kernels import tunneling
    from gapscope.widgets import ShibaPanel
    from gapscope.widgets import shiba_panel as sp

    monkeypatch.setattr(sp, "WEIGHTS_BUDGET", 1e4)          # the defaults' map exceeds this: quick to test
    p = ShibaPanel(map_size=1.0)
    p.wait()
    v = p.values
    E = tunneling.energy_grid(np.array([v["bias"]]), sample_gamma=v["gamma"], temperature=v["temperature"],
                              tip_delta=v["tip_delta"], tip_gamma=v["tip_gamma"], vmod_rms=v["vmod_rms"])
    work = tunneling.didv_weights_cost(np.array([v["bias"]]), E, tip_delta=v["tip_delta"], vmod_rms=v["vmod_rms"])
    assert work > 1e4
    msg = _text(p)
    assert "The map is not drawn: its tunnelling weights" in msg and f"{E.size} energies" in msg
    assert "Internal error" not in msg and p.result["M"] is None and p.map_data is None
    assert len(p.line_didv.y) == 600 and np.all(np.isfinite(p.line_didv.y))
    monkeypatch.setattr(sp, "WEIGHTS_BUDGET", 5e7)
    p.set(bias=1.9)
    p.wait()
    assert p.result["M"] is not None and "tunnelling weights" not in _text(p)


def test_shiba_back_to_the_bias_control_from_a_state_beyond_its_bounds(monkeypatch):
    """Map at state 1 through a Δ_t = 50 meV tip puts the map at |E₁| + Δ_t ≈ 50.6 mV; choosing "the bias
    control" again copied that bias into the control, whose bound is 50 mV: a TraitError escaped the panel
    (a traceback, and the map stuck).  Now the control takes the nearest allowed bias."""
    from gapscope.widgets import ShibaPanel
    from gapscope.widgets import shiba_panel as sp

    monkeypatch.setattr(sp, "map_pixels", lambda n: 24)
    p = ShibaPanel(tip="superconducting", tip_delta=50.0, map_size=1.0)
    p.set(map_state=1)
    p.wait()
    assert p.result["bias"] > sp.BIAS.bounds[1]
    p.set(map_state=0)
    p.wait()
    assert p.values["bias"] == sp.BIAS.bounds[1] and p.result["bias"] == sp.BIAS.bounds[1]
    assert "Internal error" not in _text(p)
