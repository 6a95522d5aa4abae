"""The fit panel with the formats STM groups have: content detection, topography beside a grid, non-bias sweeps."""

from pathlib import Path

import numpy as np
import pytest

from gapscope.kernels import readers
from gapscope.widgets import FitPanel

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def panel():
    return FitPanel(data_root=DATA)


def test_topography_is_shown_beside_the_grid_with_the_frame_outlined(panel):
    assert panel.load_path("nanonis/NanonisReader_STS_grid_lockin.3ds")
    grid = panel.grid
    assert panel.load_path("real/pynxtools_STM_nanonis_generic_4_5.sxm")
    assert panel.grid is grid                                   # the image does not replace the data
    img = readers.read_image(DATA / "real" / "pynxtools_STM_nanonis_generic_4_5.sxm")
    view = panel.grid_view
    assert view.topo_fig.layout.display == "flex" and img.topography in view.topo_fig.title
    np.testing.assert_allclose(np.c_[view.frame.x, view.frame.y], img.outline_of(grid))
    assert view.topo.x[0] == pytest.approx(float(img.x[0])) and view.topo.y[-1] == pytest.approx(float(img.y[-1]))


@pytest.mark.parametrize("name", ["real/probeflow_nanonis_kelvin_parabola_500mv.dat",
                                  "real/spym_Iz_gold_9K.sm4"])
def test_a_sweep_that_is_not_a_tunnelling_spectrum_is_refused_with_the_readers_words(panel, name):
    assert panel.load_path("nanonis/Bias-Spectroscopy002.dat")
    before = panel.spectrum.label
    assert not panel.load_path(name)
    msg = panel.message.value
    assert ("not a tunnelling spectrum" in msg or "not a bias spectrum" in msg) and panel.spectrum.label == before


def test_format_is_told_by_content_not_extension(panel, tmp_path):
    content = (DATA / "nanonis" / "Bias-Spectroscopy002.dat").read_bytes()
    assert panel.loader.load_bytes("renamed.txt", content) and "renamed.txt" in panel.spectrum.label


def test_exports_carry_the_data_the_fit_and_their_provenance(panel):
    import hashlib
    import io

    import h5py
    assert panel.load_path("nanonis/Bias-Spectroscopy002.dat")
    sha = hashlib.sha256((DATA / "nanonis" / "Bias-Spectroscopy002.dat").read_bytes()).hexdigest()
    name, csv = panel.export_bytes("csv")
    assert name.endswith(".csv") and sha in csv.decode() and "Bias-Spectroscopy002.dat" in csv.decode()
    panel.run_fit()
    _, csv2 = panel.export_bytes("csv")
    assert len(csv2) > len(csv) and b"scale" in csv2
    name, nx = panel.export_bytes("nexus")
    found = []
    with h5py.File(io.BytesIO(nx), "r") as f:
        f.visititems(lambda n, o: found.append(repr(o[()]) if isinstance(o, h5py.Dataset) and o.size < 100 else
                                                repr(dict(o.attrs))))
    assert any(sha in t for t in found)
    panel.offer_export("csv")
    assert "data:text/csv;base64," in panel.download.value
