"""Headless tests of the Shiba panel: sliders and map clicks change the plotted data as the kernels say."""

import numpy as np
import pytest

from gapscope.kernels import tunneling, ysr
from gapscope.widgets import SHIBA_PARAMS, SHIBA_PRESETS, ShibaPanel
from gapscope.widgets.shiba_panel import VIEWS


@pytest.fixture
def small_maps(monkeypatch):
    """Range sweeps need not pay for 128² maps; map correctness is tested above."""
    from gapscope.widgets import shiba_panel
    monkeypatch.setattr(shiba_panel, "map_pixels", lambda n: 24)


@pytest.fixture(scope="module")
def panel():
    return ShibaPanel(tip="normal", temperature=0.1, vmod_rms=0.0, gamma=0.02)


def expected_spectrum(p):
    v = p.values
    sub, imps = p.model(v)
    part, axis = VIEWS[v["view"]]
    V = np.linspace(-v["window"], v["window"], 600)
    rho = lambda E: ysr.ldos(sub, imps, [p.tip_position], E, part=part, spin_axis=axis,
                             tip_radius=v["tip_radius"])[0]
    td = v["tip_delta"] if v["tip"] == "superconducting" else 0.0
    return V, tunneling.didv(V, sample_dos=rho, temperature=v["temperature"], tip_delta=td,
                             tip_gamma=v["tip_gamma"], vmod_rms=v["vmod_rms"])


def test_alpha_slider_moves_the_plotted_peak(panel):
    panel.move_tip(0.0, 0.0)                                   # on the adatom (r_c regularises)
    panel.controls["alpha"].slider.value = 0.5
    V, G = expected_spectrum(panel)
    np.testing.assert_allclose(panel.line_didv.y, G, rtol=1e-5, atol=1e-6)
    pos = (V > 0.05) & (V < 1.2)                               # inside the gap
    e_a = V[pos][np.argmax(np.asarray(panel.line_didv.y)[pos])]
    panel.controls["alpha"].slider.value = 0.9
    e_b = V[pos][np.argmax(np.asarray(panel.line_didv.y)[pos])]
    for a, e in ((0.5, e_a), (0.9, e_b)):
        assert e == pytest.approx(abs(ysr.single_energy(alpha=a, beta=0.3, delta=1.5)), abs=0.02)
    assert e_b < e_a


def test_map_click_moves_tip_and_spectrum(panel):
    before = np.array(panel.line_didv.y)
    png_before = panel.map_image.image.value
    panel.map_image._handle_custom_msgs(None, {"event": "element_click", "data": {"click_x": 0.8, "click_y": -0.4}})
    assert panel.tip_position == (0.8, -0.4)
    assert list(panel.tip_mark.x) == [0.8]
    assert not np.allclose(before, panel.line_didv.y)
    V, G = expected_spectrum(panel)
    np.testing.assert_allclose(panel.line_didv.y, G, rtol=1e-5, atol=1e-6)
    assert panel.map_image.image.value == png_before          # the map does not depend on the tip


def test_map_equals_kernel_map(panel):
    v = panel.values
    sub, imps = panel.model(v)
    L = v["map_size"]
    x = np.linspace(-L, L, 128)
    X, Y = np.meshgrid(x, x[::-1])
    chain = dict(temperature=v["temperature"], tip_delta=0.0, tip_gamma=v["tip_gamma"], vmod_rms=v["vmod_rms"])
    E = tunneling.energy_grid(np.array([v["bias"]]), sample_gamma=sub.gamma, **chain)
    w = tunneling.didv_weights(np.array([v["bias"]]), E, **chain)[0]
    keep = np.abs(w) >= 1e-4 * np.abs(w).max()
    rho = ysr.ldos(sub, imps, np.c_[X.ravel(), Y.ravel()], E[keep], tip_radius=v["tip_radius"])
    ref = (rho @ w[keep]).reshape(128, 128)
    np.testing.assert_allclose(panel.map_data, ref, atol=2e-4 * np.abs(ref).max())


def test_views_and_channels(panel):
    for view in VIEWS:
        panel.view.value = view
        assert "gs-error" not in panel.message.value
        V, G = expected_spectrum(panel)
        np.testing.assert_allclose(panel.line_didv.y, G, rtol=1e-5, atol=1e-6)
    panel.view.value = "electron (normal tip)"
    panel.channel.value = "dxy"
    assert panel.values["alpha"] == 0.0
    panel.controls["alpha"].value = 0.6
    assert panel.channels["dxy"] == (0.6, 0.0) and panel.channels["s"][0] == 0.9
    panel.channel.value = "s"
    assert panel.values["alpha"] == 0.9


def test_bad_input_gives_messages_not_nans(small_maps):
    p = ShibaPanel(tip="normal")
    p.set(gamma=0.0)
    assert "Γ = 0" in p.message.value and np.all(np.isfinite(p.line_didv.y))
    p.set(gamma=0.02, alpha=float(np.sqrt(1 + 0.3 ** 2)))
    assert "quantum phase transition" in p.message.value
    p.set(alpha=0.0, beta=0.0)                                 # no scattering at all: bulk spectrum
    assert np.all(np.isfinite(p.line_didv.y)) and "gs-error" not in p.message.value


@pytest.mark.parametrize("param", SHIBA_PARAMS, ids=lambda p: p.name)
def test_every_range_end_is_finite(param, small_maps):
    p = ShibaPanel(tip="superconducting", map_size=1.0, window=2.0)
    for end in param.slider:
        p.set(**{param.name: end})
        assert np.all(np.isfinite(p.line_didv.y)) and np.all(np.isfinite(p.map_data))
        assert "gs-error" not in p.message.value, p.message.value


def test_presets_load_with_their_references(small_maps):
    p = ShibaPanel()
    for name, preset in SHIBA_PRESETS.items():
        p.preset.value = name
        assert "gs-error" not in p.message.value
        assert set(k for k, (a, b) in p.channels.items() if a or b) == set(preset.channels)
    p.preset.value = "Mn on Nb(110) — paper 002"
    assert "10.1038/s41467-021-22261-6" in p.preset_info.value
    # four YSR pairs in the LDOS beside the adatom (φ = 45°: every d lobe is visible)
    p.move_tip(0.2, 0.2)
    V, R = np.asarray(p.line_ldos.x), np.asarray(p.line_ldos.y)
    floor = np.median(R[np.abs(V) < 0.1])
    for a, b in SHIBA_PRESETS["Mn on Nb(110) — paper 002"].channels.values():
        e = abs(ysr.single_energy(alpha=a, beta=b, delta=1.5))
        near = np.abs(np.abs(V) - e) < 0.03
        assert R[near].max() > 3 * floor + 0.05
