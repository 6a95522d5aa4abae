"""Readers on real Nanonis files, a malformed-file corpus, and writer/reader round trips."""

from pathlib import Path

import numpy as np
import pytest

from gapscope.kernels import readers

DATA = Path(__file__).resolve().parents[1] / "data" / "nanonis"   # tests/data/nanonis, with licences and README


@pytest.fixture(scope="module")
def data_dir():
    if not DATA.exists():
        pytest.fail(f"tests/data/nanonis not found at {DATA}")
    return DATA


def test_old_header_dat_with_nan_and_all_channels(data_dir):
    s = readers.read_spectrum(data_dir / "Bias-Spectroscopy002.dat")
    assert s.bias.size == 1024
    assert s.bias[0] == pytest.approx(-200.0) and s.bias[-1] == pytest.approx(200.0, abs=0.5)   # V → mV
    assert list(s.channels) == ["Bias calc", "Input 3", "Input 3 [bwd]", "Input 3 [filt]", "Input 3 [bwd] [filt]"]
    assert all(s.units[c] == "A" for c in list(s.channels)[1:]) and s.units["Bias calc"] == "V"
    assert np.isnan(s.channels["Input 3 [filt]"][0])
    assert s.channels["Input 3"][0] == pytest.approx(-132.523e-12)
    assert s.header["Date"] == "04.08.2015 08:49:41"
    assert s.header["Filter type"] == "Gaussian"
    g = s.conductance()                                    # current channel: differentiated
    assert g.shape == s.bias.shape and np.isfinite(g).all()


def test_duplicate_header_keys(data_dir):
    s = readers.read_spectrum(data_dir / "duplicate_headers.dat")
    ref = readers.read_spectrum(data_dir / "Bias-Spectroscopy002.dat")
    assert s.header["Experiment"] == "bias spectroscopy"
    assert any("occurs" in w for w in s.warnings)
    for k in ref.channels:
        np.testing.assert_array_equal(np.nan_to_num(s.channels[k]), np.nan_to_num(ref.channels[k]))


def test_long_header_25_channels(data_dir):
    s = readers.read_spectrum(data_dir / "NanonisReader_BiasSpectroscopy.dat")
    assert len(s.channels) == 25
    assert s.units["Current"] == "A" and s.units["Z"] == "m" and s.units["Excitation [bwd]"] == "V"
    assert s.bias[0] == pytest.approx(-2000.0)
    assert "Current [bwd]" in s.channels and "Current [filt]" in s.channels


def test_real_3ds_grid(data_dir):
    g = readers.read_grid(data_dir / "NanonisReader_STS_grid_lockin.3ds")
    assert set(g.data) == {"Current", "LockinX", "LockinY", "Bias_m"}
    assert all(v.shape == (30, 30, 200) for v in g.data.values())
    assert g.units["LockinX"] == "V" and g.units["Current"] == "A"
    assert g.bias.size == 200 and g.bias[0] == pytest.approx(-220.0, abs=1e-3)
    assert g.x[-1] == pytest.approx(5.0) and g.y[-1] == pytest.approx(5.0)
    # per-pixel layout: the current follows the bias sweep (negative → positive) in every pixel
    cur = g.data["Current"]
    assert np.all(cur[:, :, :10].mean(axis=2) < 0) and np.all(cur[:, :, -10:].mean(axis=2) > 0)
    assert g.params["Sweep Start"][12, 5] == pytest.approx(-0.22) and g.params["Z-Ctrl hold"][0, 0] == 1.0
    # 45° grid: one step along x moves (+, −) in absolute X/Y, along y (+, +)
    step_x = g.positions[1, 0] - g.positions[0, 0]
    step_y = g.positions[0, 1] - g.positions[0, 0]
    assert step_x[0] > 0 > step_x[1] and step_y[0] > 0 and step_y[1] > 0
    assert np.hypot(*step_x) == pytest.approx(5.0 / 29, rel=0.05)


def test_grid_round_trip_non_square(tmp_path):
    nx, ny, nb = 7, 4, 31
    bias = np.linspace(-5, 5, nb)
    x, y = np.linspace(0, 3.0, nx), np.linspace(0, 1.5, ny)
    data = np.fromfunction(lambda i, j, k: 1000 * i + 10 * j + k * 0.01, (nx, ny, nb))
    g = readers.Grid(bias=bias, x=x, y=y, data={"LockinX": data, "Current": -data},
                     units={"LockinX": "V", "Current": "A"}, header={})
    path = tmp_path / "g.3ds"
    readers.write_grid(path, g)
    r = readers.read_grid(path)
    np.testing.assert_allclose(r.bias, bias, rtol=1e-6)
    np.testing.assert_allclose(r.x, x, rtol=1e-6)
    np.testing.assert_allclose(r.y, y, rtol=1e-6)
    np.testing.assert_allclose(r.data["LockinX"], data, rtol=1e-6)        # x and y not swapped
    np.testing.assert_allclose(r.data["Current"], -data, rtol=1e-6)
    np.testing.assert_allclose(r.positions[..., 0], np.meshgrid(x, y, indexing="ij")[0], rtol=1e-5)


def test_incomplete_grid_reads_nan(tmp_path):
    nx, ny, nb = 3, 2, 10
    g = readers.Grid(bias=np.linspace(-1, 1, nb), x=np.arange(nx) * 1.0, y=np.arange(ny) * 1.0,
                     data={"LockinX": np.ones((nx, ny, nb))}, units={"LockinX": "V"}, header={})
    path = tmp_path / "g.3ds"
    readers.write_grid(path, g)
    raw = path.read_bytes()
    path.write_bytes(raw[:-(4 * (4 + nb)) * 2])                             # last two pixels missing
    r = readers.read_grid(path)
    assert np.isnan(r.data["LockinX"][1, 1]).all() and np.isnan(r.data["LockinX"][2, 1]).all()
    assert np.isfinite(r.data["LockinX"][0, 0]).all()
    assert any("incomplete" in w for w in r.warnings)


def test_csv_and_txt(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("# my spectrum\nbias (mV),dIdV (nS)\n-1,1.5\n0,0.1\n1,1.5\n2,1.2\n")
    s = readers.read_spectrum(p)
    np.testing.assert_array_equal(s.bias, [-1, 0, 1, 2])
    assert s.units["dIdV"] == "nS"
    p = tmp_path / "s.txt"
    p.write_text("-0.002 1.0\n0.0 0.2\n0.002 1.0\n")
    s = readers.read_spectrum(p, bias_unit="V")
    np.testing.assert_allclose(s.bias, [-2, 0, 2])
    s = readers.read_spectrum(p)
    assert any("taken as mV" in w for w in s.warnings)


def test_current_only_data_differentiated_and_normalised(tmp_path):
    V = np.linspace(-3, 3, 301)
    I = V ** 3 + 2 * V                                   # dI/dV = 3V² + 2
    p = tmp_path / "iv.csv"
    p.write_text("Bias (V),Current (A)\n" + "\n".join(f"{v / 1e3},{i}" for v, i in zip(V, I, strict=True)))
    s = readers.read_spectrum(p)
    np.testing.assert_allclose(s.bias, V, atol=1e-9)                 # V → mV
    g = s.conductance()                                              # the current channel, differentiated
    np.testing.assert_allclose(g[1:-1], (3 * V ** 2 + 2)[1:-1], rtol=1e-3)
    dg = readers.differentiate(s.bias, s.channels["Current"])
    np.testing.assert_allclose(dg[1:-1], (3 * V ** 2 + 2)[1:-1], rtol=1e-3)
    n = readers.normalise(V, 3 * V ** 2 + 2, above=2.9)
    assert n[-1] == pytest.approx(1.0, rel=0.05)


MALFORMED = {
    "empty.dat": b"",
    "blank.dat": b"\n\n  \n",
    "binary.dat": bytes(range(256)) * 40,
    "junk.dat": b"\x89PNG\r\n\x1a\n" + b"\x00\x01\x02" * 500,
    "no_data_section.dat": b"Experiment\tbias spectroscopy\t\nDate\t04.08.2015\t\nUser\t\t\n",
    "truncated.dat": b"Experiment\tbias spectroscopy\t\n\n[DATA]\nBias calc (V)\tInput 3 (A)\n"
                     b"-1E-3\t2E-12\n0E-3\t1E-12\n1E",
    "wrong_numbers.dat": b"Experiment\tbias spectroscopy\t\n\n[DATA]\nBias calc (V)\tInput 3 (A)\n"
                         b"-1E-3\t2E-12\n0E-3\tabc\n",
    "no_labels.dat": b"Experiment\tbias spectroscopy\t\n\n[DATA]\n-1E-3\t2E-12\n0E-3\t1E-12\n",
    "huge_header.dat": (b"Experiment\tbias spectroscopy\t\n" + b"Key\tvalue\t\n" * 20000
                        + b"[DATA]\nBias (V)\tI (A)\n0\t1\n"),
    "bad_unit.csv": b"bias (s),signal\n1,2\n2,3\n3,4\n",
    "one_column.csv": b"bias (mV)\n1\n2\n3\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_raise_one_clear_error(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(MALFORMED[name])
    with pytest.raises(readers.FileFormatError) as info:
        readers.read_spectrum(p)
    assert isinstance(info.value, ValueError)
    assert name in str(info.value)                     # names the file
    assert len(str(info.value)) > len(name) + 10       # and says what is wrong


@pytest.mark.parametrize("content,problem", [
    (b"", "empty"), (b"Grid dim=\"2 x 2\"\nPoints=3\n", "HEADER_END"),
    (b"Grid dim=\"2 x 2\"\r\n:HEADER_END:\r\n" + b"\0" * 64, "lacks"),
    (b"Grid dim=\"2 x 2\"\r\nPoints=3\r\nChannels=\"I (A)\"\r\n# Parameters (4 byte)=2\r\n:HEADER_END:\r\n" + b"\0" * 8,
     "less than one pixel"),
])
def test_malformed_grids(tmp_path, content, problem):
    p = tmp_path / "bad.3ds"
    p.write_bytes(content)
    with pytest.raises(readers.FileFormatError, match=problem):
        readers.read_grid(p)


def test_a_bad_file_does_not_touch_data_already_loaded(tmp_path, data_dir):
    good = readers.read_spectrum(data_dir / "Bias-Spectroscopy002.dat")
    copy = {k: v.copy() for k, v in good.channels.items()}
    p = tmp_path / "bad.dat"
    p.write_bytes(MALFORMED["truncated.dat"])
    with pytest.raises(readers.FileFormatError):
        readers.read_spectrum(p)
    for k in copy:
        np.testing.assert_array_equal(np.nan_to_num(copy[k]), np.nan_to_num(good.channels[k]))


def test_dat_writer_round_trip(tmp_path, data_dir):
    s = readers.read_spectrum(data_dir / "Bias-Spectroscopy002.dat")
    readers.write_dat(tmp_path / "w.dat", s)
    r = readers.read_spectrum(tmp_path / "w.dat")
    np.testing.assert_allclose(r.bias, s.bias, rtol=1e-6)
    for k in s.channels:
        np.testing.assert_allclose(np.nan_to_num(r.channels[k]), np.nan_to_num(s.channels[k]), rtol=1e-6)
