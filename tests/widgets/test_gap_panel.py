"""Headless widget tests: set a control in Python, check the plotted data against the kernels."""

import numpy as np
import pytest

from gapscope.kernels import dos, gap, tunneling
from gapscope.kernels.specs import Spec
from gapscope.widgets import GAP_PARAMS, PANELS, PRESETS, GapPanel, check_against, markdown_table, param
from gapscope.widgets.gap_panel import SYMMETRIES


def expected_didv(v):
    model, names = SYMMETRIES[v["symmetry"]]
    shape = dict(symmetry=model, anisotropy=v["anisotropy"] if model == "anisotropic_s" else 0.0)
    d = float(gap.bcs_gap(v["temperature"], delta0=v["delta"], tc=v["tc"], **shape)) if v["follow_bcs"] else v["delta"]
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
    # SIS coherence peak at Δ_t + Δ_s = 1.31 + 1.54 = 2.85 mV, the paper's ±2.85 mV coherence-peak maps
    assert abs(V[np.argmax(G)]) == pytest.approx(2.85, abs=0.02)
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
                  extra=("tc", "v_max", "tip_tc"))
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


# ------------------------------------------------------------------ weak-coupling references, Δ(T), tip Δ_t(T)
def fs_ratio(g):
    """2Δ₀/k_BT_c = 2πe^{−γ} exp(−⟨g² ln|g|⟩/⟨g²⟩), Fermi-circle averages by adaptive quadrature."""
    from scipy import integrate
    num = integrate.quad(lambda p: g(p) ** 2 * np.log(abs(g(p))) if g(p) != 0 else 0.0, 0, 2 * np.pi, limit=400,
                         points=[np.pi / 4, 3 * np.pi / 4, 5 * np.pi / 4, 7 * np.pi / 4])[0]
    return 2 * np.pi * np.exp(-0.5772156649015329 - num / integrate.quad(lambda p: g(p) ** 2, 0, 2 * np.pi)[0])


def matsubara_gap(t, g, n_freq=3000):
    """Δ(T)/k_BT_c of the weak-coupling gap g(φ) at t = T/T_c from the Matsubara sum (units k_BT_c = 1)."""
    from scipy.optimize import brentq
    w = np.pi * t * (2 * np.arange(n_freq) + 1)
    g2 = g * g

    def eq(d):
        s = (g2[None, :] * (1 / w[:, None] - 1 / np.sqrt(w[:, None] ** 2 + d * d * g2[None, :]))).mean(axis=1).sum()
        wc = 2 * np.pi * t * n_freq
        return (2 * np.pi * t * s + d * d * np.mean(g2 * g2) / (4 * wc * wc)) / g2.mean() - np.log(1 / t)
    return brentq(eq, 1e-9, 10.0, xtol=1e-14)


def readout_ratio(panel):
    import re
    m = re.search(r"weak coupling, [^:]*: ([0-9.]+)\)", panel.readout.value)
    assert m, panel.readout.value
    return float(m.group(1))


@pytest.mark.parametrize("symmetry,a,g", [("s-wave (Dynes)", 0.3, lambda p: 1.0),
                                          ("anisotropic s", 0.3, lambda p: 1 + 0.3 * np.cos(6 * p)),
                                          ("anisotropic s", 0.8, lambda p: 1 + 0.8 * np.cos(6 * p)),
                                          ("d-wave", 0.3, lambda p: np.cos(2 * p))])
def test_reference_ratio_is_the_weak_coupling_value_of_the_chosen_symmetry(panel, symmetry, a, g):
    panel.set(symmetry=symmetry, anisotropy=a)
    assert readout_ratio(panel) == pytest.approx(fs_ratio(g), abs=6e-4)
    assert "BCS 3.528" not in panel.readout.value


@pytest.mark.parametrize("symmetry,gfun", [("d-wave", lambda p: np.cos(2 * p)),
                                           ("anisotropic s", lambda p: 1 + 0.3 * np.cos(p))])
def test_gap_follows_the_delta_T_of_its_symmetry(panel, symmetry, gfun):
    """The plotted Δ(T) (with the weak-coupling Δ₀ for this T_c) against an independent Matsubara solution."""
    from gapscope.kernels.constants import KB
    panel.set(symmetry=symmetry, anisotropy=0.3, tc=7.1)
    phi = (np.arange(256) + 0.5) * 2 * np.pi / 256
    T, D_ref = np.asarray(panel.line_gapT_ref.x), np.asarray(panel.line_gapT_ref.y)
    for t in (0.3, 0.6, 0.9):
        i = int(np.argmin(np.abs(T - t * 7.1)))
        assert D_ref[i] == pytest.approx(KB * 7.1 * matsubara_gap(T[i] / 7.1, gfun(phi)), rel=1e-5)
    D = np.asarray(panel.line_gapT.y)
    np.testing.assert_allclose(D, D_ref * panel.values["delta"] / D_ref[0], rtol=1e-12)   # same shape, your Δ₀
    panel.set(temperature=0.6 * 7.1)
    expected = panel.values["delta"] * matsubara_gap(0.6, gfun(phi)) / matsubara_gap(0.05, gfun(phi)) \
        if symmetry == "anisotropic s" else None
    if expected is not None:                    # anisotropic s is fully gapped: δ(0.05) = 1 to 1e-12
        assert panel.result["delta_T"] == pytest.approx(expected, rel=1e-5)


def test_tip_gap_can_follow_temperature_with_its_own_tc(panel):
    panel.set(tip="superconducting", tip_delta=1.43, tip_tc=9.2, temperature=6.0, tip_follows=True)
    d_t = 1.43 * matsubara_gap(6.0 / 9.2, np.ones(1)) / matsubara_gap(0.05, np.ones(1))   # BCS, δ(0.05) = 1
    assert panel.result["tip_delta"] == pytest.approx(d_t, rel=1e-6)
    V, _ = expected_didv(panel.values)
    model, names = SYMMETRIES[panel.values["symmetry"]]
    v = panel.values
    d = float(gap.bcs_gap(v["temperature"], delta0=v["delta"], tc=v["tc"]))
    G = tunneling.didv(V, sample_dos=dos.bind(model, **{n: (d if n == "delta" else v[n]) for n in names}),
                       temperature=6.0, tip_delta=d_t, tip_gamma=v["tip_gamma"], vmod_rms=v["vmod_rms"])
    np.testing.assert_allclose(panel.line_didv.y, G, rtol=1e-6, atol=1e-9)
    assert "follows T" in panel.readout.value
    panel.set(tip_follows=False)
    assert panel.result["tip_delta"] == 1.43


# ------------------------------------------------------------------ presets: paper vs chosen, budgets, Ni–Pb
def test_every_preset_says_what_is_the_papers_and_what_is_chosen():
    p = GapPanel()
    for name, preset in PRESETS.items():
        p.preset.value = name
        text = p.preset_info.value
        assert "<b>Paper:</b>" in text and "<b>Chosen:</b>" in text
        assert ("doi.org/" in text) or ("DOI not found" in text)
        assert "paper 00" not in text.lower() and "seeds" not in text
        # every lock-in amplitude is labelled rms or peak; a paper that does not say is called out
        if p.values["vmod_rms"] > 0:
            assert "rms" in preset.chosen
        assert "gs-error" not in p.message.value


def test_broadening_budgets_match_the_papers():
    p = GapPanel()
    p.preset.value = "Nb(110), Nb tip — Beck et al."          # one broadening k_B·300 mK, tip BCS DOS
    v = p.values
    assert v["gamma"] == pytest.approx(0.08617333262 * 0.3, rel=1e-12)
    assert v["temperature"] == 0.0 and v["vmod_rms"] == 0.0 and v["tip_gamma"] == 0.0
    V, G = np.asarray(p.line_didv.x), np.asarray(p.line_didv.y)
    Vf = np.linspace(2.88, 2.98, 1001)                        # the bare peak at Δ + Δ_t, within the bias step
    Gf = tunneling.didv(Vf, sample_dos=dos.bind("dynes", delta=1.5, gamma=v["gamma"]), temperature=0.0,
                        tip_delta=1.43, tip_gamma=0.0)
    assert Vf[np.argmax(Gf)] == pytest.approx(2.930, abs=2e-3)
    assert abs(V[np.argmax(G)]) == pytest.approx(2.93, abs=0.01)
    p.preset.value = "Nb(110), Nb tip — Friedrich et al."     # T = 1.4 K and 0.1 mV modulation: the paper's
    assert p.values["temperature"] == 1.4 and p.values["vmod_rms"] == 0.1
    assert "rms or peak not said" in PRESETS["Nb(110), Nb tip — Friedrich et al."].paper


def test_friedrich_preset_uses_the_gap_its_paper_implies():
    k1, frac = 0.40, 0.26                                     # k₁ ≈ 0.40 meV ≈ 0.26 Δ_Nb (the paper)
    p = GapPanel()
    p.preset.value = "Nb(110), Nb tip — Friedrich et al."
    assert p.values["delta"] == pytest.approx(k1 / frac, abs=0.01)
    assert p.values["tip_delta"] + p.values["delta"] == pytest.approx(2.85, abs=1e-9)   # its ±2.85 mV maps


def test_ni_pb_coherence_peaks_the_model_cannot_enhance_and_says_why():
    p = GapPanel()
    p.preset.value = "Ni–Pb alloy — Lin et al."
    text = p.preset_info.value
    assert "cannot" in text and "D(E_F)" in text and "+0.04" in text
    assert "close to the weak-coupling 3.31" in text
    import re
    shown = float(re.search(r"A − A_ref = <b>([+−-][0-9.]+)</b>", text).group(1).replace("−", "-"))
    # independently: both presets' spectra from the dos models through the chain, A = (G_peak − 1)/(G_peak + 1)
    def A(v):
        V, G = expected_didv(v)
        return 0.5 * sum((G[s].max() - 1) / (G[s].max() + 1) for s in (V < 0, V > 0))
    nipb = dict(p.values)
    p.preset.value = "Pb(111) — Lin et al."
    pb = dict(p.values)
    assert shown == pytest.approx(A(nipb) - A(pb), abs=1.5e-3)
    assert shown < -0.15                                        # the paper: +0.04
    # and no choice of a or Δ₀ in this normalised single-band model gets there: A stays below Pb's
    for a in (0.0, 0.2, 0.4, 0.7, 1.0):
        for d in (1.0, 1.031, 1.1):
            assert A({**nipb, "anisotropy": a, "delta": d}) < A(pb)


def test_preset_ratios_sit_beside_the_weak_coupling_reference():
    p = GapPanel()
    p.preset.value = "Ni–Pb alloy — Lin et al."
    assert readout_ratio(p) == pytest.approx(3.308, abs=1e-3)
    p.preset.value = "Pb(111) — Lin et al."
    assert readout_ratio(p) == pytest.approx(3.528, abs=1e-3)


def test_polar_plot_has_a_square_area_and_exact_ticks(panel):
    """The isotropic Δ(φ) plot was drawn as an ellipse with a "−2.2e-16" tick."""
    panel.set(symmetry="s-wave (Dynes)")
    m = panel.fig_polar.fig_margin
    w_px = int(panel.fig_polar.layout.width.rstrip("px")) - m["left"] - m["right"]
    h_px = int(panel.fig_polar.layout.height.rstrip("px")) - m["top"] - m["bottom"]
    assert w_px == h_px
    for axis in panel.fig_polar.axes:
        t = np.asarray(axis.tick_values)
        assert t[2] == 0.0 and t[0] == -t[-1] and axis.tick_format == ".2f"


def test_reset_returns_to_the_chosen_preset_and_else_to_the_defaults():
    """Choosing the same preset again changes nothing in a dropdown, so moved sliders stayed moved."""
    p = GapPanel()
    name = next(iter(PRESETS))
    p.preset.value = name
    want = dict(p.values)
    p.set(delta=0.5, gamma=0.2, tip="superconducting")
    p.reset_button.click()
    assert p.values == want
    p.preset.value = "—"
    p.set(delta=0.7)
    p.reset()
    assert p.values["delta"] == GapPanel().values["delta"]
