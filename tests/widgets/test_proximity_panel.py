"""Headless tests of the proximity panel: controls, clicks and presets change the plotted data as the kernels,
called independently, say; failures grey the plots; background work can be cancelled and is cached.
The panel computes in the background: every action is followed by ``wait()``."""

import threading
import time

import numpy as np
import pytest

from gapscope.kernels import proximity, sampling, tunneling
from gapscope.widgets.proximity_panel import PROXIMITY_PRESETS, ProximityPanel

PB = "Pb(111) / Ni–Pb alloy — Lin et al."
SN = "S/N bilayer with a minigap"


def ready(p):
    p.wait()
    return p


@pytest.fixture(scope="module")
def panel():
    return ready(ProximityPanel())


def reference_solution(p):
    v = p.values
    return ProximityPanel.junction(v).solve()


def test_default_state_is_the_paper_preset_and_matches_the_kernels(panel):
    v = panel.values
    for k, x in PROXIMITY_PRESETS[PB].values.items():
        assert v[k] == pytest.approx(x), k
    assert panel.valid and "gs-error" not in panel.message.value
    sol = reference_solution(panel)
    lo, hi = -v["window"], v["window"]
    keep = (sol.x >= lo) & (sol.x <= hi)
    np.testing.assert_allclose(panel.line_delta.x, sol.x[keep])
    np.testing.assert_allclose(panel.line_delta.y, sol.delta[keep], atol=1e-7)
    assert sol.decay_length_n == pytest.approx(3.55, abs=0.01)          # the text's L_d (ξ_S′ = 2.64 nm)
    assert f"{sol.decay_length_n:.3f}" in panel.readout.value and "2.75 nm (Fig. 4(d) caption)" in panel.readout.value
    assert "0.02041 (from r = 0.02, assumed γ_B = r/(1−r))" in panel.readout.value


def test_spectrum_at_the_tip_matches_an_untabulated_ldos(panel):
    """The plotted spectrum (DOS table → dos.tabulated → chain) vs the chain fed the exact Usadel LDOS at the
    tip as point values (sampling.PointDOS), which never sees the table."""
    v = panel.values
    sol = reference_solution(panel)
    x = v["x_tip"]
    exact = sampling.PointDOS(lambda E: sol.ldos([x], E)[0], width=sol.junction.dynes_gamma)
    V = np.asarray(panel.line_didv.x)
    G = tunneling.didv(V, sample_dos=exact, temperature=v["temperature"], vmod_rms=v["vmod_rms"])
    np.testing.assert_allclose(panel.line_didv.y, G, atol=3e-3 * G.max())
    E = np.asarray(panel.line_ldos.x)
    np.testing.assert_allclose(panel.line_ldos.y, sol.ldos([x], E)[0], atol=1e-8)


def test_line_scan_image_is_the_kernel_line_scan(panel):
    v = panel.values
    sol = reference_solution(panel)
    X = panel.curves["scan_positions_nm"]
    np.testing.assert_allclose(np.diff(X), 0.4, rtol=1e-9)                # Lin et al.'s 4 Å spacing
    ls = proximity.line_scan(sol, panel.curves["bias_mV"], X, temperature=v["temperature"], vmod_rms=v["vmod_rms"])
    np.testing.assert_allclose(panel.curves["scan_didv"], ls.didv, atol=1e-6)
    np.testing.assert_allclose(panel.curves["asymmetry"], ls.asymmetry, atol=1e-6)
    assert list(panel.scan_image.x) == [X[0], X[-1]]


def test_moving_xi_n_changes_delta_and_the_image():
    p = ready(ProximityPanel())
    d0, png0 = np.array(p.line_delta.y), p.scan_image.image.value
    L0 = p.readout.value
    p.controls["xi_n"].value = 4.0
    ready(p)
    sol = reference_solution(p)
    keep = (sol.x >= -p.values["window"]) & (sol.x <= p.values["window"])
    assert not np.array_equal(np.array(p.line_delta.y), d0) or len(p.line_delta.y) != len(d0)
    np.testing.assert_allclose(p.line_delta.y, sol.delta[keep], atol=1e-7)
    assert p.scan_image.image.value != png0
    assert p.readout.value != L0 and f"{sol.decay_length_n:.3f}" in p.readout.value
    assert sol.decay_length_n > 5.0                                     # L_1/e ≈ 1.35 ξ_S′


def test_click_on_the_scan_moves_the_tip_without_a_new_solve(panel):
    before = np.array(panel.line_didv.y)
    png = panel.scan_image.image.value
    panel.scan_image._handle_custom_msgs(None, {"event": "element_click", "data": {"click_x": -6.3, "click_y": 0.2}})
    ready(panel)
    assert panel.values["x_tip"] == pytest.approx(-6.3)
    assert list(panel.rule_scan.x) == [-6.3, -6.3] and list(panel.rule_delta.x) == [-6.3, -6.3]
    assert not np.allclose(before, panel.line_didv.y)
    assert panel.last_compute_s < 0.2                                   # the DOS table was reused
    assert panel.scan_image.image.value == png                          # the image does not depend on the tip
    sol = reference_solution(panel)
    E = np.asarray(panel.line_ldos.x)
    np.testing.assert_allclose(panel.line_ldos.y, sol.ldos([-6.3], E)[0], atol=1e-8)
    panel.move_tip(2.0)
    ready(panel)


def test_results_are_cached_and_the_panel_stays_responsive(monkeypatch):
    p = ready(ProximityPanel())
    gate = threading.Event()
    real = p.compute

    def slow(values, task):
        gate.wait(10)
        return real(values, task)
    monkeypatch.setattr(p, "compute", slow)
    n = p.redraw_count
    p.set(gamma=2.0)                                     # returns at once, the work is on the worker
    assert p.busy and p.busy_box.layout.display == "flex"
    p.controls["gamma_b"].value = 0.3                    # other controls respond meanwhile (r mode: no effect)
    gate.set()
    ready(p)
    assert p.redraw_count == n + 1 and p.result["values"]["gamma"] == 2.0
    monkeypatch.setattr(p, "compute", lambda values, task: pytest.fail("cache miss"))
    p.set(gamma=1.0, gamma_b=0.0204)                     # the first state again: from the cache
    assert p.result["values"]["gamma"] == 1.0 and not p.busy and p.valid


def test_cancel_acts_within_a_second():
    p = ready(ProximityPanel())
    before = np.array(p.line_delta.y)
    p.set(temperature=0.05, omega_c=100.0)               # ≈ 3700 Matsubara frequencies: a slow solve
    deadline = time.perf_counter() + 20
    while "self-consistency" not in p.status.value and time.perf_counter() < deadline:
        time.sleep(0.01)                                 # until the solver reports from inside its iterations
    assert p.busy and "self-consistency" in p.status.value
    t0 = time.perf_counter()
    p.cancel_button.click()
    p.wait(timeout=5)
    assert time.perf_counter() - t0 < 1.0
    assert not p.busy and "Cancelled" in p.message.value
    np.testing.assert_array_equal(p.line_delta.y, before)


def test_bad_input_and_failed_solves_grey_the_plots(monkeypatch):
    p = ready(ProximityPanel())
    p.set(omega_c=1.0)                                   # below Δ_S
    ready(p)
    assert not p.valid and "omega_c" in p.message.value and "gs-error" in p.message.value
    assert p.line_delta.colors == ["#bbbbbb"] and p.line_didv.colors == ["#bbbbbb"]
    assert "no valid result" in p.fig_scan.title and p.curves == {}
    p.set(omega_c=30.0)
    ready(p)
    assert p.valid and p.line_delta.colors == ["#1f4e9c"] and "gs-error" not in p.message.value

    def fail(self, **kw):
        raise proximity.ConvergenceError("self-consistency did not converge in 400 iterations")
    monkeypatch.setattr(proximity.Junction, "solve", fail)
    p.set(xi_s=7.0)
    ready(p)
    assert not p.valid and "did not converge" in p.message.value and p.line_didv.colors == ["#bbbbbb"]
    p.set(length_n=2.0)                                  # shorter than ξ_S′
    ready(p)
    assert not p.valid and "length_n" in p.message.value


def test_above_both_tc_shows_the_normal_state():
    p = ready(ProximityPanel(temperature=9.0))
    assert p.valid and "normal state" in p.message.value
    np.testing.assert_allclose(p.line_delta.y, 0.0)
    np.testing.assert_allclose(p.line_didv.y, 1.0, atol=1e-9)


def test_interface_modes_and_superconducting_tip():
    p = ready(ProximityPanel())
    assert p.controls["gamma_b"].disabled and not p.controls["r"].disabled
    p.set(interface="γ_B", gamma_b=0.5)
    ready(p)
    assert not p.controls["gamma_b"].disabled and p.controls["r"].disabled
    assert p.result["solution"].junction.gamma_b == 0.5
    p.set(tip="superconducting", tip_delta=1.31, x_tip=-19.0, v_max=4.0)
    ready(p)
    assert not p.controls["tip_delta"].disabled
    V, G = np.asarray(p.line_didv.x), np.asarray(p.line_didv.y)
    d_local = float(p.result["solution"].at(-19.0))
    peak = V[V > 0][np.argmax(G[V > 0])]
    assert peak == pytest.approx(1.31 + d_local, abs=0.03)             # SIS peak at Δ_t + Δ(x)


def test_presets_load_with_their_references():
    p = ready(ProximityPanel())
    p.preset.value = SN
    ready(p)
    assert p.valid and p.values["delta_n"] == 0.0 and p.values["interface"] == "γ_B"
    assert "All chosen" in p.preset_info.value
    V, G = np.asarray(p.line_didv.x), np.asarray(p.line_didv.y)
    assert G[np.abs(V) < 0.02].max() < 0.3 < G.max()                    # minigap at the free N surface
    p.preset.value = PB
    ready(p)
    assert p.valid and "Lin" in p.preset_info.value and "DOI not found" in p.preset_info.value
    assert "3.55 nm in the text but 2.75 nm in the Fig. 4(d) caption" in p.preset_info.value


@pytest.mark.slow
def test_find_xi_n_for_the_caption_decay_length():
    p = ready(ProximityPanel())
    p.target.value = "2.75 nm (Fig. 4(d) caption)"
    p.match_button.click()
    p.wait(timeout=60)
    ready(p)
    assert p.values["xi_n"] == pytest.approx(2.04, abs=0.01)
    assert p.result["solution"].decay_length_n == pytest.approx(2.75, abs=2e-3)
    assert "matched" in p.readout.value


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in ProximityPanel.PARAMS])
def test_every_range_end_converges_and_is_finite(name):
    """From the default state, each slider at either end: a converged, finite result (or, where the combination
    is impossible, a message and greyed plots — never NaN curves)."""
    p = ready(ProximityPanel(tip="superconducting"))
    param = next(q for q in ProximityPanel.PARAMS if q.name == name)
    for end in param.slider:
        p.set(**{name: end})
        ready(p)
        assert p.valid, p.message.value
        assert np.all(np.isfinite(p.line_didv.y)) and np.all(np.isfinite(p.curves["scan_didv"]))
        assert np.all(np.isfinite(p.line_delta.y)) and "gs-error" not in p.message.value
