"""Headless tests of the fit panel: files in, fits out, bad files keep the data, results follow the data."""

import base64
import datetime
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from gapscope.kernels import fitting, readers
from gapscope.widgets import DEMOS, FitPanel

DATA = Path(__file__).resolve().parents[1] / "data" / "nanonis"   # tests/data/nanonis
needs_data = pytest.mark.skipif(not (DATA / "Bias-Spectroscopy002.dat").is_file(),
                                reason=f"Nanonis test files not found in {DATA}")

PB = "Pb(111), normal tip — Lin et al. (synthetic)"
NIPB = "Ni–Pb alloy, anisotropic gap — Lin et al. (synthetic)"
NB = "Nb(110) with a Nb tip — Friedrich et al. (synthetic)"


def csv_bytes(delta=1.2, seed=4):
    V = np.linspace(-4, 4, 400)
    y = fitting.synthetic("dynes", V, noise=0.01, seed=seed, temperature=0.5, delta=delta, gamma=0.03, scale=2.0)
    return ("bias (mV),dIdV (nS)\n" + "\n".join(f"{a:.5f},{b:.6f}" for a, b in zip(V, y, strict=True))).encode()


@pytest.fixture
def blocked_fit(monkeypatch):
    """Make fitting.fit wait for ``release`` (so a test sees the panel while a fit runs)."""
    started, release, real = threading.Event(), threading.Event(), fitting.fit

    def fit(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(fitting, "fit", fit)
    yield started, release
    release.set()


def test_demo_then_fit_fills_table_and_draws_fit():
    p = FitPanel()
    p.demo.value = PB
    assert "Synthetic data" in p.info.value and p.spectrum.label.startswith("SYNTHETIC")
    assert "Lin et al." in p.info.value and "paper 0" not in p.info.value
    r = p.run_fit()
    assert r is not None and r.success and p.result is r
    assert abs(r.values["delta"] - 1.30) < 3 * r.errors["delta"]
    assert float(p.rows["delta"][0].value) == pytest.approx(r.values["delta"])
    assert p.rows["delta"][4].value not in ("—", "", "n/a") and p.rows["temperature"].error.value == "fixed"
    np.testing.assert_allclose(p.line_fit.y, fitting.evaluate("dynes", p.spectrum["bias"], **r.values), rtol=1e-9)
    assert "χ²_red" in p.stats.value


def test_demo_labels_cite_authors_not_internal_numbers():
    for label, d in DEMOS.items():
        assert "paper" not in label.lower() and "paper 0" not in d.note and label.endswith("(synthetic)")
    assert {PB, NIPB, NB} <= set(DEMOS)


@pytest.mark.slow
def test_compare_models_prefers_anisotropic_for_nipb_demo():
    p = FitPanel()
    p.demo.value = NIPB
    ranked = p.run_compare()
    assert ranked[0].model == "anisotropic_s"
    assert "Preferred: <b>anisotropic_s</b>" in p.compare_out.value


def test_run_fit_without_waiting_returns_at_once_then_wait_shows_result(blocked_fit):
    started, release = blocked_fit
    p = FitPanel()
    p.demo.value = PB
    assert p.run_fit(wait=False) is None                    # returned while the fit is held
    assert started.wait(10)
    assert p.busy and p.busy_box.layout.display == "flex" and "fitting dynes" in p.status.value
    assert p.result is None and "χ²_red" not in p.stats.value and p.rows["delta"].error.value == "—"
    release.set()
    p.wait()
    assert p.result is not None and p.result.success and "χ²_red" in p.stats.value
    assert not p.busy and p.busy_box.layout.display == "none"
    assert float(p.rows["delta"].value.value) == pytest.approx(p.result.values["delta"])


def test_cancel_drops_a_running_fit(blocked_fit):
    started, release = blocked_fit
    p = FitPanel()
    p.demo.value = PB
    p.fit_button.click()                                    # the button runs in the background
    assert started.wait(10)
    p.cancel_button.click()
    release.set()
    p.wait()
    assert p.result is None and "Cancelled" in p.message.value and p.rows["delta"].error.value == "—"


def test_fit_finishing_after_new_data_is_dropped(blocked_fit):
    started, release = blocked_fit
    p = FitPanel()
    p.demo.value = PB
    p.run_fit(wait=False)
    assert started.wait(10)
    p.demo.value = NB
    release.set()
    p.wait()
    assert p.result is None and "χ²_red" not in p.stats.value and "dropped" in p.message.value


def test_new_demo_or_file_after_fit_clears_stats_errors_and_comparison():
    p = FitPanel()
    p.demo.value = PB
    assert p.run_fit() is not None and p.run_compare()
    assert "χ²_red" in p.stats.value and "gs-compare" in p.compare_out.value
    p.demo.value = NIPB
    assert p.result is None and p.stats.value == "" and p.compare_out.value == ""
    assert all(row.error.value == "—" for row in p.rows.values())
    p.offer_report()
    assert "Fit first" in p.message.value and p.download.value == ""
    p.run_fit()
    assert "χ²_red" in p.stats.value
    assert p.load_bytes("spectrum.csv", csv_bytes())
    assert p.result is None and p.stats.value == "" and all(r.error.value == "—" for r in p.rows.values())
    p.run_fit()
    p.norm.value = 3.5                                      # other normalisation: other data
    assert p.result is None and p.stats.value == "" and p.spectrum.provenance["normalised_above_mV"] == 3.5


def test_parts_importable_and_in_the_panel():
    from gapscope.widgets import fit_panel
    from gapscope.widgets.data_loader import DEMOS as LOADER_DEMOS
    from gapscope.widgets.data_loader import DataLoader, LoadedData
    from gapscope.widgets.fit_table import ParameterTable
    from gapscope.widgets.grid_fit_view import GridFitView

    assert fit_panel.DEMOS is LOADER_DEMOS is DEMOS
    p = FitPanel()
    assert isinstance(p.loader, DataLoader) and isinstance(p.table, ParameterTable)
    assert isinstance(p.grid_view, GridFitView)
    side = p.sidebar()
    assert p.loader.widget in side and p.table.widget in side and p.busy_box in side
    assert p.grid_view.widget in p.plot_area.children
    assert p.grid_view.widget.layout.display == "none"      # until a grid is loaded
    p.demo.value = PB
    assert isinstance(p.spectrum, LoadedData)
    # the CSS classes the browser tests use
    assert "gs-upload" in p.upload._dom_classes and "gs-fit" in p.fit_button._dom_classes
    assert "gs-val-delta" in p.rows["delta"].value._dom_classes
    assert "gs-err-delta" in p.rows["delta"].error._dom_classes and "gs-stats" in p.stats._dom_classes


def test_parameter_table_keeps_shared_values_and_reports_changes():
    from gapscope.widgets.fit_table import ParameterTable

    calls = []
    t = ParameterTable(fitting.MODELS["dynes"], on_change=lambda: calls.append(1))
    t.rows["delta"].value.value = 0.7
    t.rows["gamma"].fix.value = True
    assert calls == [1]
    t.set_model(fitting.MODELS["anisotropic_s"])
    assert list(t.rows) == [p.name for p in fitting.MODELS["anisotropic_s"].all_params]
    assert t.rows["delta"].value.value == 0.7 and t.rows["gamma"].fix.value is True
    args = t.fit_arguments()
    assert args["initial"]["delta"] == 0.7 and args["fixed"]["gamma"] is True and "anisotropy" in args["bounds"]
    t.rows["delta"].value.value = 0.8
    assert len(calls) == 2
    t.set_model(fitting.MODELS["dynes"], keep=False)
    assert t.rows["delta"].value.value == fitting.MODELS["dynes"].params[0].default


@needs_data
def test_real_file_loads_and_bad_file_keeps_data():
    p = FitPanel(data_root=DATA)
    p.load_path("Bias-Spectroscopy002.dat")
    assert p.spectrum is not None and p.channel.value == "Input 3"
    label, y = p.spectrum.label, p.spectrum.didv.copy()
    assert np.asarray(p.line_data.x).size > 1000 - 20
    p.load_bytes("broken.dat", b"Experiment\tbias spectroscopy\t\n\n[DATA]\nBias (V)\tI (A)\n0\tx\n")
    assert "broken.dat" in p.message.value and "kept" in p.message.value
    assert p.spectrum.label == label
    np.testing.assert_array_equal(p.spectrum.didv, y)
    p.load_path("nonexistent/file.dat")
    assert "no such file in the data folder" in p.message.value and p.spectrum.label == label


@needs_data
def test_upload_widget_value_is_read():
    p = FitPanel()
    content = (DATA / "NanonisReader_BiasSpectroscopy.dat").read_bytes()
    p.upload.value = ({"name": "NanonisReader_BiasSpectroscopy.dat", "type": "", "size": len(content),
                       "content": memoryview(content),
                       "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    assert p.spectrum is not None and "NanonisReader_BiasSpectroscopy.dat" in p.spectrum.label


def test_report_json_has_provenance():
    p = FitPanel()
    p.demo.value = NB
    p.run_fit()
    p.offer_report()
    payload = p.download.value.split("base64,")[1].split('"')[0]
    rep = json.loads(base64.b64decode(payload))
    assert rep["provenance"]["synthetic"] is True and rep["provenance"]["true_values"]["tip_delta"] == 1.31
    assert rep["model"] == "dynes" and "tip_delta" in rep["parameters"]


def test_grid_file_and_grid_fit(tmp_path):
    nx, ny = 3, 2
    bias = np.linspace(-3, 3, 150)
    deltas = np.array([[1.0, 1.1], [1.2, 1.3], [1.25, 1.35]])
    data = np.array([[fitting.synthetic("dynes", bias, noise=0.003, seed=i + 3 * j, temperature=0.5,
                                        delta=deltas[i, j], gamma=0.05) for j in range(ny)] for i in range(nx)])
    g = readers.Grid(bias=bias, x=np.linspace(0, 2, nx), y=np.linspace(0, 1, ny), data={"LockinX": data},
                     units={"LockinX": "V"}, header={})
    path = tmp_path / "demo.3ds"
    readers.write_grid(path, g)
    p = FitPanel(data_root=tmp_path)
    p.load_path("demo.3ds")
    assert p.grid is not None and p.channel.value == "LockinX"
    assert p.grid_view.widget.layout.display != "none"
    p.rows["temperature"][0].value = 0.5
    p.start_grid_fit(wait=True)
    r = p.grid_result
    assert r.done.all() and not r.cancelled
    np.testing.assert_allclose(r.values["delta"], deltas, atol=0.01)
    assert p.grid_view.progress.value == nx * ny and "6 of 6 pixels" in p.grid_view.info.value
    saved = tmp_path / "fit.npz"
    p.start_grid_fit(wait=True, resume="fit")           # in the data folder; ".npz" is added
    assert saved.exists()
    p.start_grid_fit(resume="fit.npz")                     # everything done: resumes instantly
    p.wait()
    assert p.grid_result.done.all() and p.grid_view.start_button.disabled is False
    p.demo.value = PB                                       # a spectrum: no grid, no map
    assert p.grid is None and p.grid_result is None and p.grid_view.widget.layout.display == "none"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DEMOS))
def test_every_demo_fits(name):
    if DEMOS[name].model not in fitting.MODELS:
        pytest.skip(f"fit model {DEMOS[name].model!r} is not registered by any kernels topic")
    p = FitPanel()
    p.demo.value = name
    r = p.run_fit()
    assert r is not None and r.success and "gs-error" not in p.message.value
    truth = DEMOS[name].params
    assert abs(r.values["delta"] - truth["delta"]) < max(5 * r.errors["delta"], 0.02), (r.values, r.errors)


@needs_data
def test_real_grid_file_shows_its_mean_spectrum_and_grid_controls():
    p = FitPanel(data_root=DATA)
    assert p.load_path("NanonisReader_STS_grid_lockin.3ds")
    g = p.grid
    assert g is not None and p.spectrum.grid_didv.shape == g.data[p.channel.value].shape
    assert "grid mean of" in p.spectrum.label and p.grid_view.widget.layout.display != "none"
    assert p.grid_view.progress.max == g.x.size * g.y.size
    above = 0.8 * float(np.max(np.abs(g.bias)))
    p.norm.value = above                                   # normalise the mean and every pixel
    outer = np.abs(g.bias) >= above
    assert np.nanmean(p.spectrum.didv[np.abs(p.spectrum.bias) >= above]) == pytest.approx(1.0)
    assert np.nanmean(p.spectrum.grid_didv[0, 0][outer]) == pytest.approx(1.0)


@needs_data
def test_unnormalised_real_file_fits_with_a_sane_scale():
    """Bias-Spectroscopy002.dat is in instrument units (~1e-13): the model used to sit 3e5 above the data with
    χ²_red = 3.7e-12 and no word of warning."""
    p = FitPanel(data_root=DATA)
    p.load_path("Bias-Spectroscopy002.dat")
    level = np.median(np.abs(p.spectrum.didv))
    assert p.rows["scale"].value.value == pytest.approx(fitting.guess_scale(p.spectrum.bias, p.spectrum.didv))
    r = p.run_fit()
    ratio = np.median(np.abs(r.best_fit)) / level
    assert 1 / 3 < ratio < 3 or "Check this fit" in p.message.value


def test_a_model_change_keeps_a_value_only_for_the_same_quantity():
    """Dynes' Γ (meV) typed as 0.02 must not become another model's dimensionless ``gamma`` (a value that
    would be out of its bounds, or silently wrong); a same-named parameter with the same unit keeps it."""
    from gapscope.kernels.models import FitModel, fit_param
    from gapscope.kernels.specs import Spec
    from gapscope.widgets.fit_table import ParameterTable

    mev = Spec("gamma", "Γ", "meV", 0.05, (0.0, 1.0), (0.0, 10.0), 0.001, "Dynes broadening")
    ratio = Spec("gamma", "γ", "", 1.0, (0.5, 5.0), (0.1, 100.0), 0.01, "resistivity ratio")
    dos = lambda **p: None  # noqa: E731  (never evaluated: only the table's rows are looked at)
    table = ParameterTable(FitModel("a", (fit_param(mev),), dos))
    table.rows["gamma"].value.value = 0.02
    table.rows["temperature"].value.value = 4.2
    table.set_model(FitModel("b", (fit_param(ratio),), dos))
    assert table.rows["gamma"].value.value == 1.0                 # the new quantity's default
    assert table.rows["temperature"].value.value == 4.2            # the chain's temperature is the same one
    table.set_model(FitModel("c", (fit_param(mev),), dos))
    table.rows["gamma"].value.value = 0.03
    table.set_model(FitModel("d", (fit_param(mev),), dos))
    assert table.rows["gamma"].value.value == 0.03


def test_a_model_that_costs_a_solve_is_evaluated_off_the_event_loop():
    """The Usadel model solves a junction per evaluation (0.2–1 s): after its first, slow evaluation the
    panel computes in the background, so an edit in the table returns at once and the curve follows."""
    import time

    from gapscope.kernels import proximity

    p = FitPanel()
    p.demo.value = PB
    assert not p.BACKGROUND
    p.model.value = "usadel"
    p.table.set_values({"x": 5.0})
    assert p.last_compute_s > p.LIVE_BUDGET and p.BACKGROUND
    before = np.array(p.line_fit.y)
    t0 = time.perf_counter()
    p.table.set_values({"xi_n": 4.0})                 # a new junction: a new solve
    assert time.perf_counter() - t0 < p.last_compute_s / 2
    p.wait()
    after = np.array(p.line_fit.y)
    assert not np.allclose(after, before)
    # the plotted curve is the junction's own spectrum at x = 5 nm (independently: Junction → line_scan)
    v = {k: float(r.value.value) for k, r in p.table.rows.items()}
    junction = proximity.Junction(gamma=v["gamma_mismatch"], temperature=v["temperature"],
                                  **{k: v[k] for k in ("delta_s", "delta_n", "xi_s", "xi_n", "gamma_b", "omega_c",
                                                       "length_s", "length_n", "dynes_gamma")})
    chain = {k: v[k] for k in ("temperature", "tip_delta", "tip_gamma", "vmod_rms")}
    ref = proximity.line_scan(junction.solve(), p.spectrum["bias"], np.array([5.0]), n_energies=300,
                              **chain).didv[0] * v["scale"]
    np.testing.assert_allclose(after, ref, rtol=5e-3, atol=5e-3 * float(np.max(np.abs(ref))))
