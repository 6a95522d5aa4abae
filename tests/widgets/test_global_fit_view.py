"""The fit panel's global fit and deconvolution views, against independent computations.

* the plotted global-fit curves equal ``fitting.evaluate`` at the per-spectrum values assembled here;
* with every parameter per spectrum the global fit equals separate ``fitting.fit`` calls;
* the Δ(T) tie recovers the Δ₀, T_c and Γ the synthetic spectra were made with (within their errors), and
  the tied Δ_i are the weak-coupling BCS gap written out here (the gap equation solved by quadrature);
* the deconvolved DOS has its coherence peaks where the Dynes DOS written out here has them, and the plotted
  residual is data − forward, with the scatter of the noise the data were made with.
"""

import datetime
import html
import threading

import bqplot as bq
import numpy as np
import pytest
from scipy import integrate, optimize

from gapscope.kernels import fitting, readers
from gapscope.widgets import FitPanel
from gapscope.widgets.panel import Panel

KB = 8.617333262e-2                        # meV/K
WC = np.pi * np.exp(-np.euler_gamma)       # weak coupling: Δ₀ = π e^(−γ) k_B T_c ≈ 1.764 k_B T_c
T = (0.5, 3.0, 5.5)
TRUE = dict(delta0=1.3, tc=1.3 / (WC * KB), gamma=0.03)     # T_c ≈ 8.55 K
NB = "Nb(110) with a Nb tip — Friedrich et al. (synthetic)"


def bcs_gap_by_quadrature(t, delta0, tc):
    """Δ₀ times the weak-coupling BCS shape at t/T_c, independently: the gap equation of a Δ(0) = 1 meV
    superconductor, ln(1/Δ) = 2∫₀^∞ f(E)/E dξ with E = √(ξ² + Δ²), solved at T = (t/T_c)·T_c,wc."""
    if t >= tc:
        return 0.0
    if t == 0:
        return delta0
    temp = t / tc * (1.0 / (WC * KB))      # the same reduced temperature for Δ(0) = 1 meV

    def eq(d):
        def f(x):
            e = np.hypot(x, d)
            return 2.0 / (e * (np.exp(e / (KB * temp)) + 1.0))
        return np.log(1.0 / d) - integrate.quad(f, 0, 60 * KB * temp + 10 * d, limit=200)[0]
    return delta0 * optimize.brentq(eq, 1e-9, 1.0)


def dat_file(path, t, seed, *, metadata=True):
    V = np.linspace(-4, 4, 241)
    d = bcs_gap_by_quadrature(t, TRUE["delta0"], TRUE["tc"])
    y = 2.0 * fitting.synthetic("dynes", V, noise=0.004, seed=seed, temperature=t, delta=d, gamma=TRUE["gamma"])
    header = {"Temperature 1>Temperature 1 (K)": f"{t:.4E}"} if metadata else {}
    readers.write_dat(path, readers.Spectrum(bias=V, channels={"LI Demod 1 X": y}, units={"LI Demod 1 X": "A"},
                                             header=header))
    return V, y


@pytest.fixture
def three(tmp_path):
    for i, t in enumerate(T):
        dat_file(tmp_path / f"T{i}.dat", t, seed=10 + i)
    p = FitPanel(data_root=tmp_path)
    for i in range(3):
        assert p.global_view.add_path(f"T{i}.dat")
    return p


def per_spectrum_values(r, i):
    """Dataset i's model parameters, assembled here from the result's arrays and floats."""
    names = [q.name for q in fitting.MODELS[r.model].all_params]
    return {k: (float(r.values[k][i]) if np.ndim(r.values[k]) else float(r.values[k])) for k in names}


def test_temperatures_come_from_the_files_and_the_bcs_tie_recovers_the_truth(three):
    g = three.global_view
    assert [e.temperature for e in g.entries] == pytest.approx(list(T))
    g.set_roles(gamma="shared", delta="Δ(T) BCS")
    g.tc_start.value = 8.0
    r = g.run()
    assert r is not None and r.success, html.unescape(three.message.value)
    for k, v in TRUE.items():
        assert abs(r.values[k] - v) < max(5 * r.errors[k], 0.01 * v), (k, r.values[k], r.errors[k])
    for i, t in enumerate(T):            # tied Δ_i: the BCS gap of the fitted Δ₀, T_c, by quadrature here
        assert r.values["delta"][i] == pytest.approx(bcs_gap_by_quadrature(t, r.values["delta0"], r.values["tc"]),
                                                     rel=2e-3)
    fits = g.fit_marks()
    assert len(fits) == 3
    for i, (m, e) in enumerate(zip(fits, g.entries, strict=True)):
        np.testing.assert_allclose(m.y, fitting.evaluate("dynes", e.bias, **per_spectrum_values(r, i)), rtol=1e-12)
        np.testing.assert_array_equal(m.x, e.bias)
    scatter = [m for m in g.fig.marks if isinstance(m, bq.Scatter)]
    np.testing.assert_array_equal(scatter[1].y, g.entries[1].didv)
    table, shared = html.unescape(g.table.value), html.unescape(g.shared.value)
    assert "delta (tied)" in table and "temperature" in table and f"{r.values['delta'][2]:.5g}" in table
    assert "delta0" in shared and "tc" in shared and "gamma" in shared and "Correlations" in shared
    assert f"{r.values['tc']:.5g} ± {r.errors['tc']:.2g}" in shared


def test_every_parameter_per_spectrum_equals_separate_fits(three):
    g = three.global_view
    g.set_roles(temperature="series (T)", gamma="per spectrum")
    r = g.run()
    assert r is not None
    for i, e in enumerate(g.entries):
        single = fitting.fit(e.bias, e.didv, model="dynes", initial={"temperature": T[i], "delta": 1.3, "gamma": 0.05,
                                                                       "scale": fitting.guess_scale(e.bias, e.didv)})
        for k in ("delta", "gamma", "scale"):
            assert r.values[k][i] == pytest.approx(single.values[k], rel=1e-4, abs=1e-6), (i, k)


def test_files_without_temperature_ask_for_it_then_fit(tmp_path):
    p = FitPanel(data_root=tmp_path)
    for i, t in enumerate(T):
        dat_file(tmp_path / f"n{i}.dat", t, seed=i, metadata=False)
        assert p.global_view.add_path(f"n{i}.dat")
    g = p.global_view
    assert [e.temperature for e in g.entries] == [None, None, None]
    g.set_roles(gamma="shared")
    assert g.run() is None
    assert "Type the temperature of spectrum 1, 2, 3" in html.unescape(p.message.value)
    g.set_temperatures(list(T))
    r = g.run()
    assert r is not None and list(r.series["temperature"]) == list(T)


def test_several_uploads_at_once_and_a_data_root_escape_refused(tmp_path):
    p = FitPanel(data_root=tmp_path)
    files = []
    for i, t in enumerate(T):
        dat_file(tmp_path / f"u{i}.dat", t, seed=i)
        content = (tmp_path / f"u{i}.dat").read_bytes()
        files.append({"name": f"u{i}.dat", "type": "", "size": len(content), "content": memoryview(content),
                      "last_modified": datetime.datetime.now(datetime.timezone.utc)})
    p.global_view.upload.value = tuple(files)
    assert [e.label for e in p.global_view.entries] == ["u0.dat", "u1.dat", "u2.dat"]
    assert not p.global_view.add_path("../u0.dat")
    assert "inside the data folder" in html.unescape(p.message.value)


def test_a_grid_row_is_a_series_with_a_shared_tip_gap(tmp_path):
    bias = np.linspace(-4, 4, 200)
    deltas = [1.2, 1.3, 1.4]
    cube = np.array([[fitting.synthetic("dynes", bias, noise=0.003, seed=i + 3 * j, temperature=1.0, delta=deltas[i],
                                        gamma=0.03, tip_delta=1.1, tip_gamma=0.02) for j in range(2)]
                     for i in range(3)])
    readers.write_grid(tmp_path / "g.3ds", readers.Grid(bias=bias, x=np.linspace(0, 2, 3), y=np.linspace(0, 1, 2),
                                                        data={"LockinX": cube}, units={"LockinX": "V"}, header={}))
    p = FitPanel(data_root=tmp_path)
    assert p.load_path("g.3ds")
    g = p.global_view
    assert not g.grid_button.disabled
    assert g.add_grid_row(1) and len(g.entries) == 3
    for row, v in (("temperature", 1.0), ("tip_delta", 1.0), ("tip_gamma", 0.02)):
        p.rows[row].value.value = v
    g.set_roles(temperature="fixed", tip_delta="shared", gamma="shared")
    r = g.run()
    assert r is not None
    assert r.values["tip_delta"] == pytest.approx(1.1, abs=5 * r.errors["tip_delta"] + 1e-3)
    np.testing.assert_allclose(r.values["delta"], deltas, atol=0.01)
    p.demo.value = NB                                  # new data: the grid's pixels leave the global fit
    assert g.entries == [] and g.result is None


def test_cancel_drops_a_running_global_fit(three, monkeypatch):
    started, release, real = threading.Event(), threading.Event(), fitting.fit_global

    def held(*a, **k):
        started.set()
        assert release.wait(30)
        return real(*a, **k)
    monkeypatch.setattr(fitting, "fit_global", held)
    g = three.global_view
    g.set_roles(gamma="shared")
    assert g.run(wait=False) is None
    assert started.wait(10) and three.busy and "global fit of 3 spectra" in three.status.value
    three.cancel()
    release.set()
    three.wait()
    assert g.result is None and g.fig.marks == [] and "Cancelled" in three.message.value


def test_too_few_spectra_and_a_tie_without_temperatures_are_said(three):
    g = three.global_view
    g.set_roles(temperature="fixed", delta="Δ(T) BCS")
    assert g.run() is None and "give temperature the role 'series (T)'" in html.unescape(three.message.value)
    g.remove(0)
    g.remove(0)
    assert g.run() is None and "at least two spectra" in three.message.value


def dynes_dos(E, delta, gamma):
    z = E + 1j * gamma
    return np.abs(np.real(z / np.sqrt(z * z - delta ** 2)))


def test_deconvolution_recovers_the_dos_and_shows_the_forward_residual():
    p = FitPanel()
    p.demo.value = NB                    # Δ = 1.5 meV, Γ = 0.02 meV seen through a Δ_t = 1.31 meV tip; noise 0.05
    for k, v in dict(temperature=1.4, tip_delta=1.31, tip_gamma=0.015, vmod_rms=0.1).items():
        p.rows[k].value.value = v
    v = p.deconv_view
    r = v.run()
    assert r is not None, html.unescape(p.message.value)
    np.testing.assert_array_equal(v.line_dos.x, r.energies)
    np.testing.assert_array_equal(v.band.y, np.vstack([r.dos_low, r.dos_high]))
    assert np.all(r.dos_low <= r.dos) and np.all(r.dos <= r.dos_high)
    E = r.energies
    for side in (E > 0.5, E < -0.5):     # coherence peaks where the Dynes DOS (written here) has them: |E| = Δ
        peak = E[side][np.argmax(r.dos[side])]
        truth = E[side][np.argmax(dynes_dos(E[side], 1.5, 0.02))]
        assert abs(abs(peak) - abs(truth)) < 0.15, (peak, truth)
    far = np.abs(E) > 2.6
    assert abs(np.mean(r.dos[far]) - 1.0) < 0.1
    np.testing.assert_allclose(v.line_res.y, p.data.didv - v.line_forward.y, atol=1e-12)
    assert 0.03 < np.std(v.line_res.y) < 0.08        # the demo's noise σ = 0.05
    assert "λ =" in v.readout.value and "Δ_t = 1.31" in v.readout.value
    p.demo.value = "Pb(111), normal tip — Lin et al. (synthetic)"     # other data: the DOS is cleared
    assert v.result is None and list(v.line_dos.y) == [0.0]


def test_global_fit_and_deconvolution_come_back_from_a_session(three, tmp_path):
    g = three.global_view
    g.set_roles(gamma="shared", delta="Δ(T) BCS")
    g.run()
    three.demo.value = NB
    for k, v in dict(temperature=1.4, tip_delta=1.31, tip_gamma=0.015, vmod_rms=0.1).items():
        three.rows[k].value.value = v
    three.deconv_view.run()
    other = tmp_path / "other"
    other.mkdir()
    q = Panel.load(three.save(tmp_path / "s.json"), data_root=other)
    assert [e.temperature for e in q.global_view.entries] == list(T)
    assert q.global_view.result.values["tc"] == g.result.values["tc"]
    assert {k: d.value for k, d in q.global_view.roles.items()} == {k: d.value for k, d in g.roles.items()}
    for a, b in zip(g.fit_marks(), q.global_view.fit_marks(), strict=True):
        np.testing.assert_array_equal(a.y, b.y)
    for name in ("line_dos", "band", "line_forward", "line_res"):
        np.testing.assert_array_equal(getattr(q.deconv_view, name).y, getattr(three.deconv_view, name).y)
    assert q.deconv_view.readout.value == three.deconv_view.readout.value
    assert q.state() == three.state()
