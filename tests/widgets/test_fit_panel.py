"""Headless tests of the fit panel: files in, fits out, bad files keep the data."""

from pathlib import Path

import numpy as np
import pytest

from gapscope.kernels import fitting
from gapscope.widgets import DEMOS, FitPanel

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "nanonis"


def test_demo_then_fit_fills_table_and_draws_fit():
    p = FitPanel()
    p.demo.value = "Pb(111), normal tip — paper 000 (synthetic)"
    assert "Synthetic data" in p.info.value and p.spectrum["label"].startswith("SYNTHETIC")
    r = p.run_fit()
    assert r is not None and r.success
    assert abs(r.values["delta"] - 1.30) < 3 * r.errors["delta"]
    assert float(p.rows["delta"][0].value) == pytest.approx(r.values["delta"])
    assert p.rows["delta"][4].value not in ("—", "", "n/a") and p.rows["temperature"][4].value == "fixed"
    np.testing.assert_allclose(p.line_fit.y, fitting.evaluate("dynes", p.spectrum["bias"], **r.values), rtol=1e-9)
    assert "χ²_red" in p.stats.value


def test_compare_models_prefers_anisotropic_for_nipb_demo():
    p = FitPanel()
    p.demo.value = "Ni–Pb alloy, anisotropic gap — paper 000 (synthetic)"
    ranked = p.run_compare()
    assert ranked[0].model == "anisotropic_s"
    assert "Preferred: <b>anisotropic_s</b>" in p.compare_out.value


def test_real_file_loads_and_bad_file_keeps_data():
    p = FitPanel()
    p.load_path(str(DATA / "Bias-Spectroscopy002.dat"))
    assert p.spectrum is not None and p.channel.value == "Input 3"
    label, y = p.spectrum["label"], p.spectrum["didv"].copy()
    assert np.asarray(p.line_data.x).size > 1000 - 20
    p.load_bytes("broken.dat", b"Experiment\tbias spectroscopy\t\n\n[DATA]\nBias (V)\tI (A)\n0\tx\n")
    assert "broken.dat" in p.message.value and "kept" in p.message.value
    assert p.spectrum["label"] == label
    np.testing.assert_array_equal(p.spectrum["didv"], y)
    p.load_path("/nonexistent/file.dat")
    assert "cannot be read" in p.message.value and p.spectrum["label"] == label


def test_upload_widget_value_is_read():
    import datetime
    p = FitPanel()
    content = (DATA / "NanonisReader_BiasSpectroscopy.dat").read_bytes()
    p.upload.value = ({"name": "NanonisReader_BiasSpectroscopy.dat", "type": "", "size": len(content),
                       "content": memoryview(content),
                       "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    assert p.spectrum is not None and "NanonisReader_BiasSpectroscopy.dat" in p.spectrum["label"]


def test_report_json_has_provenance():
    import base64
    import json
    p = FitPanel()
    p.demo.value = "Nb(110) with a Nb tip — paper 004 (synthetic)"
    p.run_fit()
    p.offer_report()
    payload = p.download.value.split("base64,")[1].split('"')[0]
    rep = json.loads(base64.b64decode(payload))
    assert rep["provenance"]["synthetic"] is True and rep["provenance"]["true_values"]["tip_delta"] == 1.31
    assert rep["model"] == "dynes" and "tip_delta" in rep["parameters"]


def test_grid_file_and_grid_fit(tmp_path):
    from gapscope.kernels import readers
    nx, ny = 3, 2
    bias = np.linspace(-3, 3, 150)
    deltas = np.array([[1.0, 1.1], [1.2, 1.3], [1.25, 1.35]])
    data = np.array([[fitting.synthetic("dynes", bias, noise=0.003, seed=i + 3 * j, temperature=0.5,
                                        delta=deltas[i, j], gamma=0.05) for j in range(ny)] for i in range(nx)])
    g = readers.Grid(bias=bias, x=np.linspace(0, 2, nx), y=np.linspace(0, 1, ny), data={"LockinX": data},
                     units={"LockinX": "V"}, header={})
    path = tmp_path / "demo.3ds"
    readers.write_grid(path, g)
    p = FitPanel()
    p.load_path(str(path))
    assert p.grid is not None and p.channel.value == "LockinX"
    p.rows["temperature"][0].value = 0.5
    p.start_grid_fit(wait=True)
    r = p.grid_result
    assert r.done.all() and not r.cancelled
    np.testing.assert_allclose(r.values["delta"], deltas, atol=0.01)
    assert p.grid_progress.value == nx * ny and "6 of 6 pixels" in p.grid_info.value
    saved = tmp_path / "fit.npz"
    p.start_grid_fit(wait=True, resume=str(saved))
    assert saved.exists()
    p.start_grid_fit(wait=True, resume=str(saved))          # everything done: resumes instantly
    assert p.grid_result.done.all()


@pytest.mark.parametrize("name", list(DEMOS))
def test_every_demo_fits(name):
    p = FitPanel()
    p.demo.value = name
    r = p.run_fit()
    assert r is not None and r.success and "gs-error" not in p.message.value
    truth = DEMOS[name].params
    assert abs(r.values["delta"] - truth["delta"]) < max(5 * r.errors["delta"], 0.02), (r.values, r.errors)
