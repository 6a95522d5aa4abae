"""Headless tests of the Ising panel: controls change the plotted data as independent computations say.

The panel computes in the background: every action is followed by ``wait()``.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import digamma

from gapscope.kernels import dos, ising, tunneling
from gapscope.widgets.ising_panel import DFT_NOTE, ISING_PARAMS, ISING_PRESETS, IsingPanel, parse_points

KB = 0.08617333262
MU_B = 0.05788381806
PSI_HALF = float(digamma(0.5))


def ready(p):
    p.wait()
    return p


def closed_form_hc2(T, tc, beta, g=2.0):
    """In-plane H_c2 (tesla) from ln(T/T_c) + h²/ρ²[Re ψ(½ + iρ/2πk_BT) − ψ(½)] = 0, by brentq."""
    out = []
    for t in T:
        x = 2 * math.pi * KB * t

        def f(h, x=x, t=t):
            rho = math.hypot(h, beta)
            return (h / rho) ** 2 * (digamma(0.5 + 1j * rho / x).real - PSI_HALF) - math.log(tc / t)
        out.append(brentq(f, 1e-12, 1e5, xtol=1e-14) * 2 / (g * MU_B) if t < tc else 0.0)
    return np.array(out)


def spin_split_gap(T, tc, h):
    """β = 0: ln(Δ₀/Δ) = ∫₀^∞ dξ [f(E − h) + f(E + h)]/E, E = √(ξ² + Δ²) (upper branch)."""
    d0 = math.pi * math.exp(-np.euler_gamma) * KB * tc
    kt = KB * T
    x, w = np.polynomial.legendre.leggauss(400)
    u = 6 * (x + 1)

    def g(d):
        E = d * np.cosh(u)
        f = lambda e: 0.5 * (1 - np.tanh(0.5 * e / kt))  # noqa: E731
        return math.log(d0 / d) - 6 * np.sum(w * (f(E - h) + f(E + h)))
    return brentq(g, 1e-3 * d0, d0, xtol=1e-15)


@pytest.fixture
def panel():
    return ready(IsingPanel())


def test_beta_slider_moves_the_plotted_hc2_line(panel):
    v = panel.values
    assert v["b"] > 0 and v["angle"] == 0 and v["rashba"] == 0 and v["pair_breaking"] == 0
    T = np.asarray(panel.line_hc2.x)
    before = np.asarray(panel.line_hc2.y).copy()
    np.testing.assert_allclose(before, closed_form_hc2(T, v["tc"], v["beta_so"]), rtol=1e-9)
    panel.controls["beta_so"].slider.value = 2.5
    ready(panel)
    after = np.asarray(panel.line_hc2.y)
    assert np.all(after[T < 0.95 * v["tc"]] > before[T < 0.95 * v["tc"]] + 0.1)
    np.testing.assert_allclose(after, closed_form_hc2(T, v["tc"], 2.5), rtol=1e-9)
    # the Pauli line (β_so = 0) and the Clogston point do not move
    np.testing.assert_allclose(panel.line_pauli.y, closed_form_hc2(np.asarray(panel.line_pauli.x), v["tc"], 0.0),
                               rtol=1e-9)
    assert list(panel.mark_bp.y) == pytest.approx([math.sqrt(2) * math.pi * math.exp(-np.euler_gamma) * KB
                                                   * v["tc"] / (2 * MU_B)])


def test_b_slider_changes_the_spectrum_as_spin_split_bcs_says(panel):
    """Out-of-plane field: N = ½[N_D(E − h) + N_D(E + h)] for any β_so with the self-consistent Δ of spin-split BCS."""
    panel.set(angle=90.0, b=2.0, beta_so=1.0, temperature=0.6, gamma=0.02, vmod_rms=0.0)
    spectra = {}
    for b in (2.0, 3.0):
        panel.controls["b"].slider.value = b
        ready(panel)
        v = panel.values
        h = b * MU_B
        d = spin_split_gap(v["temperature"], v["tc"], h)
        assert panel.result["solution"].delta == pytest.approx(d, rel=1e-7)
        V = np.asarray(panel.line_dos.x)
        ref = lambda E, d=d, h=h: 0.5 * (dos.dynes(E - h, delta=d, gamma=0.02)  # noqa: E731
                                         + dos.dynes(E + h, delta=d, gamma=0.02))
        np.testing.assert_allclose(panel.line_dos.y, ref(V), atol=1e-10)
        G = tunneling.didv(V, sample_dos=ref, temperature=v["temperature"])        # a plain callable: adaptive
        np.testing.assert_allclose(panel.line_didv.y, G, atol=1e-3 * G.max())
        spectra[b] = np.asarray(panel.line_didv.y).copy()
        assert list(panel.mark_point.x) == [v["temperature"]] and list(panel.mark_point.y) == [b]
    assert np.max(np.abs(spectra[2.0] - spectra[3.0])) > 0.05


def test_in_plane_field_barely_touches_an_ising_gap(panel):
    panel.set(angle=0.0, beta_so=20.0, b=5.0, temperature=0.3)
    g5 = np.asarray(ready(panel).line_didv.y).copy()
    d5 = panel.result["solution"].delta
    panel.set(b=15.0)
    d15 = ready(panel).result["solution"].delta
    assert d15 > 0.9 * d5 > 0.3
    assert "superconducting" in panel.readout.value
    panel.set(angle=90.0)                      # the same field out of plane is far beyond the Pauli limit
    assert ready(panel).result["solution"].delta == 0.0 and "normal" in panel.readout.value
    assert not np.allclose(panel.line_didv.y, g5)


def test_rashba_computes_in_the_background_with_progress(panel, monkeypatch):
    texts = []
    real = panel._report_progress
    monkeypatch.setattr(panel, "_report_progress", lambda f, t: (texts.append(t), real(f, t)))
    panel.set(rashba=0.5)
    assert panel.busy and panel.busy_box.layout.display == "flex"
    panel.preset_info.value = "still responsive"                    # widgets respond meanwhile
    ready(panel)
    assert not panel.busy and panel.result["values"]["rashba"] == 0.5 and panel.result["slow"]
    assert any("Fermi-circle" in t for t in texts) and any("Rashba DOS" in t for t in texts)
    assert np.all(np.isfinite(panel.line_didv.y)) and "gs-error" not in panel.message.value
    h = ising.hc2_inplane(np.asarray(panel.line_hc2.x), tc=panel.values["tc"], beta_so=1.0, rashba=0.5)
    np.testing.assert_allclose(panel.line_hc2.y, h, rtol=1e-12)
    assert np.all(h[:-1] < closed_form_hc2(np.asarray(panel.line_hc2.x)[:-1], panel.values["tc"], 1.0))
    # back to no Rashba: from the cache, no compute
    monkeypatch.setattr(panel, "compute", lambda values, task: pytest.fail("cache miss"))
    panel.set(rashba=0.0)
    assert panel.result["values"]["rashba"] == 0.0 and not panel.busy


def test_cancel_keeps_the_last_plot(panel, monkeypatch):
    before = np.array(panel.line_didv.y)
    gate = threading.Event()
    real = panel.compute

    def slow(values, task):
        gate.wait(10)
        return real(values, task)
    monkeypatch.setattr(panel, "compute", slow)
    panel.set(rashba=0.8)
    panel.cancel_button.click()
    gate.set()
    panel.wait()
    assert not panel.busy and "Cancelled" in panel.message.value
    np.testing.assert_array_equal(panel.line_didv.y, before)


def test_fit_of_typed_points_sets_beta_and_tc(panel):
    T = np.array([0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 2.8])
    B = ising.hc2_inplane(T, tc=3.2, beta_so=2.5)
    panel.points_text.value = "# T (K), B (T)\n" + "\n".join(f"{t:.3f}, {b:.6f}" for t, b in zip(T, B, strict=True))
    np.testing.assert_allclose(panel.mark_data.y, np.round(B, 6))
    r = panel.run_fit(wait=True)
    ready(panel)
    assert r.beta_so == pytest.approx(2.5, rel=1e-4) and r.tc == pytest.approx(3.2, rel=1e-5)
    assert panel.values["beta_so"] == pytest.approx(r.beta_so) and panel.values["tc"] == pytest.approx(r.tc)
    assert "β_so = 2.5" in panel.fit_result.value
    np.testing.assert_allclose(np.interp(T, panel.line_hc2.x, panel.line_hc2.y), B, rtol=2e-3)


def test_bad_points_give_a_message_and_keep_the_plots(panel):
    panel.points_text.value = "0.5, 30\nnot a number\n"
    assert "line 2" in panel.message.value and "gs-error" in panel.message.value
    assert panel.run_fit(wait=True) is None
    panel.points_text.value = "0.5, -3"
    assert "≥ 0" in panel.message.value
    with pytest.raises(ValueError, match="line 1"):
        parse_points("1 2 3")
    T, B = parse_points("0.5, 30 # comment\n\n1.0;20\n1.5 10")
    np.testing.assert_array_equal(T, [0.5, 1.0, 1.5])
    np.testing.assert_array_equal(B, [30, 20, 10])


def test_presets_cite_the_paper_and_the_panel_says_dft_overestimates(panel):
    for name, preset in ISING_PRESETS.items():
        panel.preset.value = name
        ready(panel)
        assert "gs-error" not in panel.message.value
        for k, val in preset.values.items():
            assert panel.values[k] == pytest.approx(val)
    assert {p.values["beta_so"] for p in ISING_PRESETS.values()} == {75.0, 57.5, 140.0, 0.0}
    panel.preset.value = "NbSe₂ monolayer — DFT β_so"
    info = panel.preset_info.value
    assert "Wickramaratne and Mazin" in info and "DOI not found" in info and "150 meV" in info
    ready(panel)
    assert float(np.max(panel.line_hc2.y)) > 300.0                       # hundreds of tesla
    note = panel.dft_note.value
    for text in ("half the spin-orbit band splitting", "hundreds of tesla", "30–35 T", "fit parameter", "Xi et al."):
        assert text in note
    assert "hundreds of tesla" in DFT_NOTE


def test_normal_state_and_full_pair_breaking_are_messages_not_nans(panel):
    panel.set(temperature=3.5)
    ready(panel)
    assert panel.result["solution"].delta == 0.0 and "normal" in panel.readout.value
    np.testing.assert_allclose(panel.line_dos.y, 1.0, atol=1e-12)
    panel.set(temperature=0.5, pair_breaking=0.25)                       # > Δ₀/2 = 0.228 meV at T_c0 = 3 K
    ready(panel)
    assert "pair breaking destroys" in panel.message.value
    assert np.all(np.isfinite(panel.line_didv.y)) and np.all(np.isfinite(panel.line_hc2.y))
    panel.set(pair_breaking=0.0, temperature=0.0, beta_so=1.0)           # T = 0: H_c2 diverges there
    ready(panel)
    assert "∞" in panel.readout.value and np.all(np.isfinite(panel.line_hc2.y))


def test_superconducting_tip(panel):
    panel.set(angle=90.0, b=2.0, beta_so=0.0, temperature=1.0, vmod_rms=0.0)
    panel.tip.value = "superconducting"
    ready(panel)
    v = panel.values
    assert not panel.controls["tip_delta"].disabled
    d = panel.result["solution"].delta
    h = 2.0 * MU_B
    ref = lambda E: 0.5 * (dos.dynes(E - h, delta=d, gamma=v["gamma"]) + dos.dynes(E + h, delta=d, gamma=v["gamma"]))  # noqa: E731
    V = np.asarray(panel.line_didv.x)
    G = tunneling.didv(V, sample_dos=ref, temperature=1.0, tip_delta=v["tip_delta"], tip_gamma=v["tip_gamma"])
    np.testing.assert_allclose(panel.line_didv.y, G, atol=2e-3 * G.max())


@pytest.mark.slow
@pytest.mark.parametrize("param", ISING_PARAMS, ids=lambda p: p.name)
def test_every_range_end_is_finite(param):
    p = ready(IsingPanel())
    for end in param.slider:
        p.set(**{param.name: end})
        ready(p)
        assert np.all(np.isfinite(p.line_didv.y)) and np.all(np.isfinite(p.line_hc2.y))
        assert "gs-error" not in p.message.value, p.message.value
