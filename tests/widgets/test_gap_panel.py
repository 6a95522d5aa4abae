"""Headless widget tests: set a control in Python, check the plotted data against the kernels."""

import numpy as np
import pytest

from gapscope.kernels import dos, gap, tunneling
from gapscope.kernels.specs import Spec
from gapscope.widgets import GAP_PARAMS, PANELS, PRESETS, GapPanel, check_against, markdown_table, param
from gapscope.widgets.gap_panel import SYMMETRIES


def expected_didv(v):
    model, names = SYMMETRIES[v["symmetry"]]
    d = float(gap.bcs_gap(v["temperature"], delta0=v["delta"], tc=v["tc"])) if v["follow_bcs"] else v["delta"]
    sample = dos.bind(model, **{n: (d if n == "delta" else v[n]) for n in names})
    V = np.linspace(-v["v_max"], v["v_max"], 1000)
    td = v["tip_delta"] if v["tip"] == "superconducting" else 0.0
    return V, tunneling.didv(V, sample_dos=sample, temperature=v["temperature"], tip_delta=td,
                             tip_gamma=v["tip_gamma"], vmod_rms=v["vmod_rms"])


@pytest.fixture
def panel():
    return GapPanel()


def test_slider_change_redraws_with_kernel_output(panel):
    before = np.array(panel.line_didv.y).copy()
    panel.controls["delta"].slider.value = 0.8          # as a user drags the slider
    assert panel.controls["delta"].value == 0.8
    V, G = expected_didv(panel.values)
    np.testing.assert_allclose(panel.line_didv.x, V)
    np.testing.assert_allclose(panel.line_didv.y, G, rtol=1e-12)
    assert not np.allclose(before, panel.line_didv.y)
    # the DOS line is the sample's cell average on the same grid
    np.testing.assert_allclose(panel.line_dos.y, dos.bind("dynes", delta=float(gap.bcs_gap(
        0.32, delta0=0.8, tc=7.1)), gamma=0.02).cell_average(V, V[1] - V[0]), rtol=1e-12)


def test_number_box_beyond_slider_range(panel):
    panel.controls["v_max"].box.value = "30"            # allowed by hard bounds, beyond the slider
    assert panel.values["v_max"] == 30.0
    assert panel.controls["v_max"].slider.value == panel.controls["v_max"].slider.max
    assert np.max(panel.line_didv.x) == pytest.approx(30.0)


@pytest.mark.parametrize("symmetry", list(SYMMETRIES))
@pytest.mark.parametrize("tip", ["normal", "superconducting"])
def test_symmetry_and_tip_choices_match_kernels(panel, symmetry, tip):
    panel.set(symmetry=symmetry, tip=tip, temperature=1.0)
    V, G = expected_didv(panel.values)
    np.testing.assert_allclose(panel.line_didv.y, G, rtol=1e-10)


@pytest.mark.parametrize("param", GAP_PARAMS, ids=lambda p: p.name)
@pytest.mark.parametrize("end", [0, 1])
@pytest.mark.parametrize("symmetry,tip", [("s-wave (Dynes)", "superconducting"), ("anisotropic s", "normal"),
                                          ("d-wave", "superconducting")])
def test_every_declared_range_end_gives_finite_output(param, end, symmetry, tip):
    p = GapPanel(symmetry=symmetry, tip=tip)
    p.set(**{param.name: param.slider[end]})
    for mark in (p.line_didv, p.line_dos, p.line_gapT, p.line_polar):
        assert np.all(np.isfinite(np.asarray(mark.y, dtype=float)))
    assert "gs-error" not in p.message.value


def test_all_zero_broadenings_give_a_defined_result_and_a_note(panel):
    panel.set(gamma=0.0, temperature=0.0, vmod_rms=0.0)
    assert np.all(np.isfinite(panel.line_didv.y))
    assert "No broadening" in panel.message.value


def test_zero_gap_and_temperature_above_tc(panel):
    panel.set(delta=0.0)
    np.testing.assert_allclose(panel.line_didv.y, 1.0, atol=1e-12)
    panel.set(delta=1.3, temperature=8.0)
    np.testing.assert_allclose(panel.line_didv.y, 1.0, atol=1e-9)
    assert "T ≥ T_c" in panel.message.value


def test_tip_gap_beyond_window_warns(panel):
    panel.set(tip="superconducting", tip_delta=2.5, v_max=1.0)
    assert np.all(np.isfinite(panel.line_didv.y))
    assert "outside" in panel.message.value


def test_kernel_error_becomes_panel_message_and_keeps_curves(panel, monkeypatch):
    before = np.array(panel.line_didv.y).copy()

    def boom(*a, **k):
        raise ValueError("temperature must be ≥ 0 (in K), got -1")
    monkeypatch.setattr(tunneling, "didv", boom)
    panel.controls["delta"].value = 1.0
    assert "temperature must be" in panel.message.value and "gs-error" in panel.message.value
    np.testing.assert_array_equal(panel.line_didv.y, before)


def test_out_of_bounds_value_is_refused(panel):
    with pytest.raises(Exception, match=r"gamma must lie in \[0, 10\] meV"):
        panel.controls["gamma"].value = -1.0
    with pytest.raises(Exception, match="gamma must be finite"):
        panel.controls["gamma"].value = float("nan")
    assert panel.values["gamma"] == 0.02


def test_manual_update_defers_redraw(panel):
    panel.manual.value = True
    n = panel.redraw_count
    panel.controls["delta"].value = 0.5
    assert panel.redraw_count == n and panel.update_button.button_style == "warning"
    panel.update_button.click()
    assert panel.redraw_count == n + 1
    V, G = expected_didv(panel.values)
    np.testing.assert_allclose(panel.line_didv.y, G, rtol=1e-12)


def test_presets_reproduce_paper_numbers():
    p = GapPanel()
    p.preset.value = "Nb(110), Nb tip — Friedrich et al."
    V, G = np.asarray(p.line_didv.x), np.asarray(p.line_didv.y)
    # SIS coherence peak at Δ_t + Δ_s = 2.81 mV, shifted slightly inward by lock-in and Δ(1.4 K)
    assert abs(V[np.argmax(G)]) == pytest.approx(2.81, abs=0.03)
    p.preset.value = "Pb(111) — Lin et al."
    assert "4.25" in p.readout.value          # 2Δ/kTc for Δ = 1.3 meV, Tc = 7.1 K
    p.preset.value = "Nb(110), Nb tip — Beck et al."
    V, G = np.asarray(p.line_didv.x), np.asarray(p.line_didv.y)
    assert abs(V[np.argmax(G)]) == pytest.approx(2.93, abs=0.03)
    assert "10.1038/s41467-021-22261-6" in p.preset_info.value
    for name in PRESETS:
        p.preset.value = name
        assert "gs-error" not in p.message.value


def test_polar_inset_and_gap_T(panel):
    panel.set(symmetry="d-wave", delta=1.2)
    x = np.asarray(panel.line_polar.x)
    y = np.asarray(panel.line_polar.y)
    r = np.hypot(x, y)
    assert r.max() == pytest.approx(float(gap.bcs_gap(0.32, delta0=1.2, tc=7.1)), rel=1e-3)
    assert np.asarray(panel.line_gapT.y)[0] == pytest.approx(1.2)
    assert panel.dot_gapT.x[0] == pytest.approx(0.32)


def test_csv_export_contains_curves(panel):
    text = panel.csv_text()
    rows = [r for r in text.splitlines() if not r.startswith("#")]
    assert rows[0].startswith("bias_mV")
    data = np.loadtxt(rows[1:], delimiter=",")
    np.testing.assert_allclose(data[:, 1], panel.line_didv.y, rtol=1e-7)
    panel.offer_csv()
    assert "data:text/csv;base64," in panel.download.value


def test_declarations_checked_against_kernels():
    check_against(GAP_PARAMS, [dos.dynes, dos.anisotropic_s, dos.dwave, tunneling.didv, gap.bcs_gap],
                  extra=("tc", "v_max"))
    with pytest.raises(TypeError, match="not keyword arguments"):
        check_against([param(Spec("dleta", "Δ", "meV", 1, (0, 2), (0, 3), 0.1))], [dos.dynes])
    with pytest.raises(ValueError, match="soft range"):
        Spec("x", "x", "", 1, (0, 5), (1, 3), 0.1)
    with pytest.raises(TypeError, match="may change for a panel"):
        param(dos.GAMMA, bounds=(0, 1))
    table = markdown_table(GAP_PARAMS)
    assert "| `delta` | Δ₀ | meV |" in table


def test_registry_lists_gap_panel_and_builds_it():
    entry = PANELS["gap"]
    assert entry.notebook == "gap.ipynb"
    assert isinstance(entry.factory(), GapPanel)


@pytest.mark.parametrize("typed,why", [("0,5", "decimal point"), ("1.2.3", "not a number"), ("-1", "must lie in"),
                                       ("1e9", "must lie in"), ("abc", "not a number"), ("nan", "finite")])
def test_number_box_refuses_what_it_cannot_take_as_typed(panel, typed, why):
    """'0,5' used to become 5, '1.2.3' 1.23, −1 became 0 and 10⁹ the upper bound, silently."""
    c = panel.controls["gamma"]
    c.box.value = "0.05"
    assert c.value == 0.05 and c.note.value == ""
    c.box.value = typed
    assert c.value == 0.05 and c.box.value == "0.05"               # unchanged, and shown as it is
    assert why in c.note.value and "stays 0.05 meV" in c.note.value


def test_number_box_shows_no_floating_point_noise(panel):
    panel.controls["gamma"].value = 0.1 * 0.05               # 0.005000000000000001
    assert panel.controls["gamma"].box.value == "0.005"
    panel.controls["v_max"].box.value = " 2.5 "
    assert panel.values["v_max"] == 2.5 and panel.controls["v_max"].note.value == ""
