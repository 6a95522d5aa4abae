"""The fit panel's global fit and deconvolution views, against independent computations.

* the plotted global-fit curves equal ``fitting.evaluate`` at the per-spectrum values assembled here;
* with every parameter per spectrum the global fit equals separate ``fitting.fit`` calls;
* the Δ(T) tie recovers the Δ₀, T_c and Γ the synthetic spectra were made with (within their errors), and
  the tied Δ_i are the weak-coupling BCS gap written out here (the gap equation solved by quadrature);
* a line of a grid fitted with the Usadel model recovers the junction it was made with, and its plotted fits are
  the junction's own line scan at the fitted values (solved here); Cancel stops a running global fit within 2 s;
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


# ----------------------------------------------------------------------------- a line scan with the Usadel model
SMALL = dict(delta_s=1.3, delta_n=1.0, xi_s=6.0, xi_n=3.0, gamma_mismatch=1.0, gamma_b=0.5, omega_c=15.0,
             length_s=60.0, length_n=40.0, dynes_gamma=0.02)         # the model's names (γ: gamma_mismatch)


def junction_of(values, **changes):
    from gapscope.kernels import proximity
    j = {("gamma" if k == "gamma_mismatch" else k): v for k, v in values.items()}
    return proximity.Junction(**j, temperature=1.0).replace(**changes)
LINE_X0 = 6.0                                     # the interface's position along the line (nm)


def line_scan_grid(tmp_path, junction, *, n=9, noise=0.01):
    """A 3ds line (n × 1 pixels, 2 nm apart) across a junction solved here, through the junction's own line scan."""
    from gapscope.kernels import proximity
    sol = junction_of(junction).solve(tol=1e-10)
    bias = np.linspace(-2.5, 2.5, 81)
    pos = np.linspace(0.0, 2.0 * (n - 1), n)
    G = 1.05 * proximity.line_scan(sol, bias, pos - LINE_X0, n_energies=300).didv
    G = G + np.random.default_rng(11).normal(0.0, noise, G.shape)
    readers.write_grid(tmp_path / "line.3ds", readers.Grid(bias=bias, x=pos, y=np.zeros(1),
                                                           data={"LockinX": G[:, None]}, units={"LockinX": "V"},
                                                           header={}))
    return pos, bias, G


def usadel_panel(tmp_path, junction, start):
    p = FitPanel(data_root=tmp_path)
    assert p.load_path("line.3ds")
    with p.batch():
        p.model.value = "usadel"
        p.table.set_values({**junction, **start, "temperature": 1.0, "scale": 1.0})
    g = p.global_view
    assert g.add_grid_row(0) and len(g.entries) == 9
    g.x0_start.value = LINE_X0
    # a model with a tip position: its free parameters are shared by default (a line scan), x is the series;
    # the chain's and scale's roles stay as they were for the previous model (the same quantities)
    assert {k: d.value for k, d in g.roles.items() if d.value != "fixed"} == {
        "xi_n": "shared", "gamma_b": "shared", "scale": "per spectrum", "x": "series (x)", "temperature": "series (T)"}
    g.set_roles(temperature="fixed", scale="shared")
    return p, g


def test_a_grid_line_scan_with_the_usadel_model_recovers_the_junction_and_plots_its_line_scan(tmp_path):
    from gapscope.kernels import proximity
    pos, bias, G = line_scan_grid(tmp_path, SMALL)
    p, g = usadel_panel(tmp_path, SMALL, dict(xi_n=2.2, gamma_b=0.2))
    assert g.roles["x"].value == "series (x)" and not g.x0_start.layout.display
    np.testing.assert_allclose([e.position for e in g.entries], pos, atol=1e-6)
    bar = []
    p.progress_bar.observe(lambda ch: bar.append(ch["new"]), "value")
    r = g.run()
    assert r is not None and r.success, html.unescape(p.message.value)
    assert any(0.0 < v < 1.0 for v in bar)                          # the bar followed the iterations
    np.testing.assert_allclose(r.values["x"], pos - LINE_X0, atol=1e-6)      # float32 positions in a .3ds
    for k, true in (("xi_n", 3.0), ("gamma_b", 0.5), ("scale", 1.05)):      # the junction the grid was made with
        assert abs(r.values[k] - true) < 3 * r.errors[k], (k, r.values[k], r.errors[k])
    # the plotted fits: the junction's own line scan at the fitted values, computed here
    sol = junction_of(SMALL, xi_n=r.values["xi_n"], gamma_b=r.values["gamma_b"]).solve(tol=1e-10)
    expect = r.values["scale"] * proximity.line_scan(sol, bias, pos - LINE_X0, n_energies=300).didv
    for i, m in enumerate(g.fit_marks()):
        np.testing.assert_allclose(m.y, expect[i], atol=5e-4)
    table = html.unescape(g.table.value)
    assert "x" in table and f"{r.values['x'][3]:.5g}" in table


def test_a_free_interface_position_and_a_missing_position_are_said(tmp_path):
    line_scan_grid(tmp_path, SMALL)
    p, g = usadel_panel(tmp_path, SMALL, dict(xi_n=2.5))
    g.set_roles(gamma_b="fixed", x="x − x₀ (x₀ free)")
    g.x0_start.value = 5.0
    r = g.run()
    assert r is not None, html.unescape(p.message.value)
    assert abs(r.values["x_offset"] - LINE_X0) < 3 * r.errors["x_offset"]
    assert "x = position − x_offset" in html.unescape(g.shared.value)
    g.x0_start.value = 99.0
    assert g.run() is None and "lies outside the line" in html.unescape(p.message.value)
    g.entries[2].position = None
    assert g.run() is None and "Type the position of spectrum 3" in html.unescape(p.message.value)


def test_cancel_stops_a_running_global_fit_within_two_seconds(tmp_path):
    import time
    slow = dict(SMALL, length_s=120.0, length_n=60.0, omega_c=30.0)   # about a second per junction solve here
    line_scan_grid(tmp_path, SMALL)
    p, g = usadel_panel(tmp_path, slow, dict(xi_n=2.2, gamma_b=0.2))
    assert g.run(wait=False) is None
    deadline = time.perf_counter() + 30
    while "global fit of 9 spectra" not in p.status.value and time.perf_counter() < deadline:
        time.sleep(0.02)
    assert p.busy, "the fit ended before it could be cancelled"
    time.sleep(0.3)
    t0 = time.perf_counter()
    p.cancel()
    while p.busy and time.perf_counter() - t0 < 2.0:
        time.sleep(0.02)
    assert not p.busy, "the global fit still runs 2 s after Cancel"
    assert "Cancelled" in p.message.value and g.result is None and g.fig.marks == []
    assert p.busy_box.layout.display == "none"


def test_a_line_scan_fit_comes_back_from_a_session(tmp_path):
    line_scan_grid(tmp_path, SMALL)
    p, g = usadel_panel(tmp_path, SMALL, dict(xi_n=2.6))
    g.set_roles(gamma_b="fixed", x="x − x₀ (x₀ free)")
    g.x0_start.value = 5.5
    assert g.run() is not None, html.unescape(p.message.value)
    q = Panel.load(p.save(tmp_path / "s.json"), data_root=tmp_path)
    assert q.model.value == "usadel" and q.global_view.x0_start.value == 5.5
    assert q.global_view.result.values["x_offset"] == g.result.values["x_offset"]
    for a, b in zip(g.fit_marks(), q.global_view.fit_marks(), strict=True):
        np.testing.assert_array_equal(a.y, b.y)
    assert q.state() == p.state()
