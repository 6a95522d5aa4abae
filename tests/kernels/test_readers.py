"""Nanonis readers on real files and minimally edited real files: each fix of issue 9 has a test here.

Independent references: the unedited file read before the edit, numbers the headers record
(setpoints, frames, segment tables), closed forms, and numbers computed in the test by hand.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from gapscope.kernels import readers

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data" / "nanonis"       # tests/data/nanonis, with licences and README
REAL = TESTS / "data" / "real"          # tests/data/real, with SOURCES.tsv and licences
GRID = DATA / "NanonisReader_STS_grid_lockin.3ds"
DAT = DATA / "Bias-Spectroscopy002.dat"


@pytest.fixture(scope="module")
def data_dir():
    if not DATA.exists():
        pytest.fail(f"tests/data/nanonis not found at {DATA}")
    return DATA


@pytest.fixture(scope="module")
def grid_bytes():
    return GRID.read_bytes()


@pytest.fixture(scope="module")
def grid_ref():
    return readers.read_grid(GRID)


def edit_3ds(raw: bytes, edit) -> bytes:
    """The .3ds with its header lines passed through ``edit(list[str]) -> list[str]``; the body unchanged."""
    end = raw.index(b":HEADER_END:")
    lines = raw[:end].decode("latin-1").split("\r\n")
    return "\r\n".join(edit(lines)).encode("latin-1") + raw[end:]


def set_key(key: str, value: str):
    def edit(lines):
        return [f"{key}={value}" if ln.startswith(key + "=") else ln for ln in lines]
    return edit


def dat_table(path: Path):
    """(header lines, labels, rows as lists of strings) of a Nanonis .dat, split by hand."""
    text = path.read_text(encoding="utf-8")
    head, body = text.split("[DATA]\n")
    lines = body.splitlines()
    return head, lines[0].split("\t"), [ln.split("\t") for ln in lines[1:] if ln.strip()]


def write_dat_text(path: Path, head: str, labels, rows) -> Path:
    path.write_text(head + "[DATA]\n" + "\t".join(labels) + "\n" + "".join("\t".join(r) + "\n" for r in rows),
                    encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- real files as before
def test_old_header_dat_with_nan_and_all_channels(data_dir):
    s = readers.read_spectrum(data_dir / "Bias-Spectroscopy002.dat")
    assert s.bias.size == 1024 and s.sweep == "bias" and s.sweep_unit == "mV" and s.format == "nanonis_dat"
    assert s.bias[0] == pytest.approx(-200.0) and s.bias[-1] == pytest.approx(200.0, abs=0.5)   # V → mV
    assert list(s.channels) == ["Bias calc", "Input 3", "Input 3 [bwd]", "Input 3 [filt]", "Input 3 [bwd] [filt]"]
    assert all(s.units[c] == "A" for c in list(s.channels)[1:]) and s.units["Bias calc"] == "V"
    assert np.isnan(s.channels["Input 3 [filt]"][0])
    assert s.channels["Input 3"][0] == pytest.approx(-132.523e-12)
    assert s.header["Date"] == "04.08.2015 08:49:41"
    assert s.header["Filter type"] == "Gaussian"
    assert s.kind == "tunnelling spectrum" and s.tunnelling_problem() is None
    g = s.conductance()                                    # current channel: differentiated
    assert g.shape == s.bias.shape and np.isfinite(g).all()
    assert "differentiation" in s.describe_conductance()
    assert s.x is s.bias and s.sweep_label == "Bias (mV)"
    lock = readers.read_spectrum(REAL / "pynxtools_STS_nanonis_generic_5e_1.dat")
    assert lock.describe_conductance() == "dI/dV: lock-in channel 'LI Demod 1 X' (A)"


def test_crlf_copy_reads_like_the_lf_original(data_dir):
    a = readers.read_spectrum(data_dir / "Bias-Spectroscopy002.dat")
    b = readers.read_spectrum(REAL / "nanonispy2_Bias-Spectroscopy002_crlf.dat")
    np.testing.assert_array_equal(a.bias, b.bias)
    for k in a.channels:
        np.testing.assert_array_equal(np.nan_to_num(a.channels[k]), np.nan_to_num(b.channels[k]))


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


def test_multi_sweep_file_defaults_to_the_averaged_lockin():
    s = readers.read_spectrum(REAL / "probeflow_nanonis_sts_15mv.dat")
    assert s.bias[0] == pytest.approx(-15.0) and s.bias[-1] == pytest.approx(15.0) and s.bias.size == 401
    assert s.default_channel() == "LockIn [AVG]"
    # the average the file records is the mean of its two sweeps
    np.testing.assert_allclose(s.channels["LockIn [AVG]"],
                               (s.channels["LockIn [00001]"] + s.channels["LockIn [00002]"]) / 2, rtol=1e-4)


def test_second_harmonic_lockin_is_not_the_default():
    """The 5e file lists LI Demod 2 before LI Demod 1; its header says demodulator 2 is the 2nd harmonic."""
    s = readers.read_spectrum(REAL / "pynxtools_STS_nanonis_generic_5e_1.dat")
    assert list(s.channels)[1:3] == ["Current", "LI Demod 2 X"]
    assert s.header["Lock-in>Harmonic D2"] == "2" and s.header["Lock-in>Harmonic D1"] == "1"
    assert s.default_channel() == "LI Demod 1 X"
    r = readers.read_spectrum(REAL / "pynxtools_STS_nanonis_generic_4_5.dat")
    assert r.default_channel() == "LI Demod X"             # X before R and Y
    q = readers.read_spectrum(REAL / "pynxtools_Bias-Spectroscopy00015_20230420.dat")
    assert q.default_channel() == "LI Demod 1 X" and q.bias.size == 2048


def test_real_3ds_grid(data_dir, grid_ref):
    g = grid_ref
    assert set(g.data) == {"Current", "LockinX", "LockinY", "Bias_m"}
    assert all(v.shape == (30, 30, 200) for v in g.data.values())
    assert g.units["LockinX"] == "V" and g.units["Current"] == "A"
    assert g.bias.size == 200 and g.bias[0] == pytest.approx(-220.0, abs=1e-3) and g.sweep == "bias"
    assert g.frame == readers.Frame(84.51877, 632.9924, 5.0, 5.0, 45.0)
    # pixel pitch width/nx (5 nm / 30), first pixel at the frame's corner: from the recorded positions
    np.testing.assert_allclose(np.diff(g.x), 5.0 / 30, rtol=1e-3)
    assert abs(g.x[0]) < 0.02 and abs(g.y[0]) < 0.02
    uv = g.frame.to_frame(g.positions)                     # recorded absolute X, Y into the frame
    np.testing.assert_allclose(uv[..., 0], g.x[:, None] + 0 * uv[..., 0], atol=1e-3)
    np.testing.assert_allclose(uv[..., 1], g.y[None, :] + 0 * uv[..., 1], atol=1e-3)
    # per-pixel layout: the current follows the bias sweep (negative → positive) in every pixel
    cur = g.data["Current"]
    assert np.all(cur[:, :, :10].mean(axis=2) < 0) and np.all(cur[:, :, -10:].mean(axis=2) > 0)
    assert g.params["Sweep Start"][12, 5] == pytest.approx(-0.22) and g.params["Z-Ctrl hold"][0, 0] == 1.0
    # 45° grid: one step along x moves (+, −) in absolute X/Y, along y (+, +) — a clockwise frame
    step_x = g.positions[1, 0] - g.positions[0, 0]
    step_y = g.positions[0, 1] - g.positions[0, 0]
    assert step_x[0] > 0 > step_x[1] and step_y[0] > 0 and step_y[1] > 0
    assert np.hypot(*step_x) == pytest.approx(5.0 / 30, rel=1e-3)
    c = g.frame.corners()
    assert c.shape == (5, 2) and np.allclose(c[0], c[-1])
    np.testing.assert_allclose(c[:4].mean(axis=0), [84.51877, 632.9924], atol=1e-9)
    assert g.default_channel() == "LockinX"


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
    np.testing.assert_allclose(r.x, x, atol=1e-6)
    np.testing.assert_allclose(r.y, y, atol=1e-6)
    np.testing.assert_allclose(r.data["LockinX"], data, rtol=1e-6)        # x and y not swapped
    np.testing.assert_allclose(r.data["Current"], -data, rtol=1e-6)
    np.testing.assert_allclose(r.positions[..., 0], np.meshgrid(x, y, indexing="ij")[0], atol=1e-5)
    assert not r.warnings


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
    assert s.units["dIdV"] == "nS" and s.format == "text"
    p = tmp_path / "s.txt"
    p.write_text("-0.002 1.0\n0.0 0.2\n0.002 1.0\n")
    s = readers.read_spectrum(p, bias_unit="V")
    np.testing.assert_allclose(s.bias, [-2, 0, 2])
    s = readers.read_spectrum(p)
    assert any("taken as mV" in w for w in s.warnings)
    p = tmp_path / "z.csv"                                                 # a user's I(z) table
    p.write_text("z (nm),current (A)\n0,1e-9\n0.1,5e-10\n0.2,2.5e-10\n")
    s = readers.read_spectrum(p)
    assert s.sweep == "z" and s.sweep_unit == "nm"
    with pytest.raises(readers.FileFormatError, match="Z sweep"):
        s.conductance()


def test_current_only_data_differentiated_and_normalised(tmp_path):
    V = np.linspace(-3, 3, 301)
    I = V ** 3 + 2 * V                                   # dI/dV = 3V² + 2
    p = tmp_path / "iv.csv"
    p.write_text("Bias (V),Current (A)\n" + "\n".join(f"{v / 1e3},{i}" for v, i in zip(V, I, strict=True)))
    s = readers.read_spectrum(p)
    np.testing.assert_allclose(s.bias, V, atol=1e-9)                 # V → mV; no final newline: all rows kept
    g = s.conductance()                                              # the current channel, differentiated
    np.testing.assert_allclose(g[1:-1], (3 * V ** 2 + 2)[1:-1], rtol=1e-3)
    dg = readers.differentiate(s.bias, s.channels["Current"])
    np.testing.assert_allclose(dg[1:-1], (3 * V ** 2 + 2)[1:-1], rtol=1e-3)
    n = readers.normalise(V, 3 * V ** 2 + 2, above=2.9)
    assert n[-1] == pytest.approx(1.0, rel=0.05)


def test_differentiate_survives_repeated_bias_values():
    V = np.concatenate([np.linspace(-2, 0, 11), np.linspace(0, 2, 11)])     # an MLS joint repeated
    I = 2 * V + V ** 3
    g = readers.differentiate(V, I)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g[2:-2], (2 + 3 * V ** 2)[2:-2], atol=0.05)


MALFORMED = {
    "empty.dat": b"",
    "blank.dat": b"\n\n  \n",
    "binary.dat": bytes(range(256)) * 40,
    "junk.dat": b"\x89PNG\r\n\x1a\n" + b"\x00\x01\x02" * 500,
    "no_data_section.dat": b"Experiment\tbias spectroscopy\t\nDate\t04.08.2015\t\nUser\t\t\n",
    "short_row.dat": b"Experiment\tbias spectroscopy\t\n\n[DATA]\nBias calc (V)\tInput 3 (A)\n"
                     b"-1E-3\t2E-12\n0E-3\n1E-3\t1E-12\n",
    "wrong_numbers.dat": b"Experiment\tbias spectroscopy\t\n\n[DATA]\nBias calc (V)\tInput 3 (A)\n"
                         b"-1E-3\t2E-12\n0E-3\tabc\n",
    "no_labels.dat": b"Experiment\tbias spectroscopy\t\n\n[DATA]\n-1E-3\t2E-12\n0E-3\t1E-12\n",
    "huge_header.dat": (b"Experiment\tbias spectroscopy\t\n" + b"Key\tvalue\t\n" * 20000
                        + b"[DATA]\nBias (V)\tI (A)\n0\t1\n"),
    "bad_unit.csv": b"bias (s),signal\n1,2\n2,3\n3,4\n",
    "one_column.csv": b"bias (mV)\n1\n2\n3\n",
    "labels_without_room.dat": (b"Experiment\tbias spectroscopy\t\n\n[DATA]\n"
                                + b"\t".join(b"c%d (A)" % k for k in range(5000)) + b"\n1\t2\n"),
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
    p.write_bytes(MALFORMED["wrong_numbers.dat"])
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


# ----------------------------------------------------------------------------- issue 9, item 1: memory
def _peak(f):
    tracemalloc.start()
    try:
        try:
            out = f()
        except readers.FileFormatError as exc:
            out = exc
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_huge_grid_dim_is_refused_without_allocating(grid_bytes):
    raw = edit_3ds(grid_bytes, set_key("Grid dim", '"100000 x 100000"'))
    out, peak = _peak(lambda: readers.read_grid("big.3ds", data=raw))
    assert isinstance(out, readers.FileFormatError) and "big.3ds" in str(out)
    assert "disagree" in str(out) and peak < 2 * len(raw)


def test_grid_dim_claiming_more_lines_keeps_what_was_measured(grid_bytes, grid_ref):
    """30 × 3000 pixels claimed, 30 × 30 measured: padding all would take 580 MB; the lines reached are kept."""
    raw = edit_3ds(grid_bytes, set_key("Grid dim", '"30 x 3000"'))
    g, peak = _peak(lambda: readers.read_grid("tall.3ds", data=raw))
    assert isinstance(g, readers.Grid) and g.data["LockinX"].shape == (30, 30, 200)
    np.testing.assert_array_equal(g.data["LockinX"], grid_ref.data["LockinX"])
    assert any("lines reached" in w for w in g.warnings)
    assert peak < 4 * len(raw)


def test_real_grid_reads_within_a_small_multiple_of_its_size(grid_bytes):
    g, peak = _peak(lambda: readers.read_grid("g.3ds", data=grid_bytes))
    assert isinstance(g, readers.Grid)
    assert peak < 4 * len(grid_bytes)                      # the bytes, one float64 copy, small arrays


def test_points_beyond_the_data_are_refused(grid_bytes):
    raw = edit_3ds(grid_bytes, lambda ls: [ln.replace("Points=200", "Points=2000000000")
                                           .replace("Experiment size (bytes)=3200", "Experiment size (bytes)="
                                                    "32000000000") for ln in ls])
    with pytest.raises(readers.FileFormatError, match="less than one pixel"):
        readers.read_grid("p.3ds", data=raw)


# ----------------------------------------------------------------------------- item 2: every error named
def test_decimal_comma_in_grid_settings_is_read(grid_bytes, grid_ref):
    raw = edit_3ds(grid_bytes, set_key("Grid settings", "8,451877E-8;6,329924E-7;5,000000E-9;5,000000E-9;4,5E+1"))
    g = readers.read_grid("comma.3ds", data=raw)
    assert g.frame == grid_ref.frame
    np.testing.assert_allclose(g.x, grid_ref.x)


@pytest.mark.parametrize("key,value,problem", [
    ("Grid settings", "1.1E-7;abc;5E-9;5E-9;0", "Grid settings"),
    ("Points", "two hundred", "Points"),
    ("# Parameters (4 byte)", "10.5", "Parameters"),
    ("Grid dim", '"30 by 30"', "Grid dim"),
    ("Experiment size (bytes)", "lots", "Experiment size"),
])
def test_bad_header_numbers_are_file_format_errors_naming_the_key(grid_bytes, key, value, problem):
    raw = edit_3ds(grid_bytes, set_key(key, value))
    with pytest.raises(readers.FileFormatError, match=problem) as info:
        readers.read_grid("named.3ds", data=raw)
    assert str(info.value).startswith("named.3ds: ")


# ----------------------------------------------------------------------------- item 3: non-bias sweeps
def _z_file(tmp_path: Path, *, nan_bias: bool) -> Path:
    """Bias-Spectroscopy002.dat made a Z spectroscopy: the sweep column becomes Z rel (±1 nm), a
    recorded Bias column is constant (0 V) or NaN, as Z files of other instruments have."""
    head, labels, rows = dat_table(DAT)
    head = head.replace("Experiment\tbias spectroscopy", "Experiment\tZ spectroscopy")
    labels = ["Z rel (m)", "Current (A)", "Bias (V)"]
    out = []
    for r in rows:
        z = float(r[0]) * 5e-9
        out.append([f"{z:.6E}", r[1], "NaN" if nan_bias else "0E+0"])
    return write_dat_text(tmp_path / f"z_{nan_bias}.dat", head, labels, out)


@pytest.mark.parametrize("nan_bias", [False, True])
def test_z_spectroscopy_is_read_on_its_z_axis_and_refused_as_a_spectrum(tmp_path, nan_bias):
    p = _z_file(tmp_path, nan_bias=nan_bias)
    s = readers.read_spectrum(p)
    assert s.sweep == "z" and s.sweep_unit == "nm" and s.bias_channel == "Z rel" and s.kind == "Z spectroscopy"
    ref = readers.read_spectrum(DAT)
    np.testing.assert_allclose(s.x, ref.bias / 200.0, rtol=1e-5)          # ±200 mV → ±1 nm
    for call in (s.conductance, s.require_tunnelling, lambda: readers._default_channel(s)):
        with pytest.raises(readers.FileFormatError, match="Z sweep") as info:
            call()
        assert p.name in str(info.value) and "not a bias spectrum" in str(info.value)
    assert s.sweep_label == "Z (nm)"


def test_long_term_record_is_a_time_trace_not_a_bias_spectrum(tmp_path):
    """A LongTerm-like file: time first, the bias recorded as a −141 … −7 V series, as the issue found."""
    head, _labels, rows = dat_table(DAT)
    head = head.replace("Experiment\tbias spectroscopy", "Experiment\tLongTerm")
    n = len(rows)
    out = [[f"{0.1 * k:.6E}", r[1], f"{-141 + 134 * k / (n - 1):.6E}"] for k, r in enumerate(rows)]
    p = write_dat_text(tmp_path / "longterm.dat", head, ["Time (s)", "Current (A)", "Bias (V)"], out)
    s = readers.read_spectrum(p)
    assert s.sweep == "time" and s.sweep_unit == "s" and s.bias[-1] == pytest.approx(0.1 * (n - 1))
    with pytest.raises(readers.FileFormatError, match="time trace"):
        s.conductance()


def test_header_saying_bias_but_data_sweeping_z_follows_the_data(tmp_path):
    head, _labels, rows = dat_table(DAT)
    out = [["2E-1", r[1], f"{float(r[0]) * 5e-9:.6E}"] for r in rows]     # Bias calc constant, Z rel swept
    p = write_dat_text(tmp_path / "liar.dat", head, ["Bias calc (V)", "Current (A)", "Z rel (m)"], out)
    s = readers.read_spectrum(p)
    assert s.sweep == "z" and s.bias_channel == "Z rel" and any("constant" in w for w in s.warnings)


def test_z_sweep_grid_is_read_on_its_axis_and_refused(grid_bytes):
    raw = edit_3ds(grid_bytes, set_key("Sweep Signal", '"Z (m)"'))
    g = readers.read_grid("zgrid.3ds", data=raw)
    assert g.sweep == "z" and g.sweep_unit == "nm" and g.bias[0] == pytest.approx(-0.22e9, rel=1e-6)
    for call in (g.require_tunnelling, g.default_channel):
        with pytest.raises(readers.FileFormatError, match="grid of z sweeps"):
            call()


def test_z_spectrum_round_trips_through_the_dat_writer(tmp_path):
    s = readers.read_spectrum(_z_file(tmp_path, nan_bias=False))
    readers.write_dat(tmp_path / "zw.dat", s)
    r = readers.read_spectrum(tmp_path / "zw.dat")
    assert r.sweep == "z" and r.header["Experiment"] == "Z spectroscopy"
    np.testing.assert_allclose(r.x, s.x, rtol=1e-6)


def test_kelvin_parabola_loads_but_is_refused_as_a_tunnelling_spectrum():
    s = readers.read_spectrum(REAL / "probeflow_nanonis_kelvin_parabola_500mv.dat")
    assert s.sweep == "bias" and s.kind == "Kelvin parabola" and s.bias[0] == pytest.approx(500.0)
    with pytest.raises(readers.FileFormatError, match="Kelvin") as info:
        readers._default_channel(s)                      # what the fit panel calls on loading
    assert "OC M1 Freq. Shift" in str(info.value) and "not a tunnelling spectrum" in str(info.value)
    with pytest.raises(readers.FileFormatError, match="Kelvin"):
        s.conductance()
    g = s.conductance(channel="Current")                 # an explicit choice is the user's
    assert g.shape == s.bias.shape


# ----------------------------------------------------------------------------- item 4: torn last row
def test_truncated_dat_drops_its_torn_last_row(tmp_path):
    raw = DAT.read_bytes()
    assert raw.endswith(b"-111.968E-12\n")
    p = tmp_path / "cut.dat"
    p.write_bytes(raw[:-2])                                # "-111.968E-1": a number that parses, wrongly
    s = readers.read_spectrum(p)
    ref = readers.read_spectrum(DAT)
    assert s.bias.size == ref.bias.size - 1
    assert any("cut off" in w for w in s.warnings)
    for k in ref.channels:
        np.testing.assert_array_equal(np.nan_to_num(s.channels[k]), np.nan_to_num(ref.channels[k][:-1]))
    assert not np.any(np.isclose(s.channels["Input 3 [bwd] [filt]"], -11.1968))


def test_truncated_text_table_with_fixed_width_rows(tmp_path):
    p = tmp_path / "cut.csv"
    p.write_text("bias (mV),g (nS)\n-1.000,1.2500\n-0.500,0.7500\n0.000,0.1250\n0.500,0.7500\n1.000,1.25")
    s = readers.read_spectrum(p)
    assert s.bias.size == 4 and any("cut off" in w for w in s.warnings)


# ----------------------------------------------------------------------------- item 5: pixel stride
def test_channel_list_disagreeing_with_experiment_size_is_refused(grid_bytes):
    raw = edit_3ds(grid_bytes, set_key("Channels", '"Current (A);LockinX (V);LockinY (V)"'))
    with pytest.raises(readers.FileFormatError, match="Experiment size") as info:
        readers.read_grid("stride.3ds", data=raw)
    assert "misaligned" in str(info.value)


def test_channel_list_disagreeing_without_experiment_size_is_caught_by_the_sweep_parameters(grid_bytes):
    raw = edit_3ds(grid_bytes, lambda ls: [ln for ln in set_key("Channels", '"Current (A);LockinX (V);LockinY (V)"')(ls)
                                           if not ln.startswith("Experiment size")])
    with pytest.raises(readers.FileFormatError, match="misaligned"):
        readers.read_grid("stride.3ds", data=raw)


def test_duplicated_channel_names_are_kept_apart(grid_bytes, grid_ref):
    raw = edit_3ds(grid_bytes, set_key("Channels", '"Current (A);Current (A);LockinY (V);Bias_m (V)"'))
    g = readers.read_grid("dup.3ds", data=raw)
    assert list(g.data) == ["Current", "Current (2)", "LockinY", "Bias_m"]
    np.testing.assert_array_equal(g.data["Current (2)"], grid_ref.data["LockinX"])
    assert any("more than once" in w for w in g.warnings)


# ----------------------------------------------------------------------------- item 6: MLS sweeps
@pytest.mark.parametrize("shared", [True, False])
def test_multi_segment_grid_gets_its_piecewise_axis(grid_bytes, shared):
    segs = ([(-220e-3, -50e-3, 81), (-50e-3, 50e-3, 41), (50e-3, 220e-3, 80)] if shared else
            [(-220e-3, -50e-3, 80), (-49e-3, 49e-3, 40), (50e-3, 220e-3, 80)])
    table = ";".join(f"{a:.6E},{b:.6E},10E-3,100E-3,{n},0E+0,0E+0" for a, b, n in segs)
    key = "Segment Start (V), Segment End (V), Settling (s), Integration (s), Steps (xn), Lockin, Init. Settling (s)"
    raw = edit_3ds(grid_bytes, lambda ls: ls[:3] + ["Filetype=MLS", f"{key}={table}"] + ls[3:])
    g = readers.read_grid("mls.3ds", data=raw)
    pieces = [np.linspace(a, b, n) * 1e3 for a, b, n in segs]          # by hand, in mV
    expected = np.concatenate([pieces[0]] + [p[1:] for p in pieces[1:]]) if shared else np.concatenate(pieces)
    assert expected.size == 200
    np.testing.assert_allclose(g.bias, expected, rtol=1e-12)
    assert not np.allclose(g.bias, np.linspace(-220, 220, 200))


def test_segment_table_that_does_not_add_up_is_refused(grid_bytes):
    key = "Segment Start (V), Segment End (V), Settling (s), Integration (s), Steps (xn), Lockin, Init. Settling (s)"
    raw = edit_3ds(grid_bytes, lambda ls: ls + ["Filetype=MLS", f"{key}=-0.2,0,0,0,50,0,0;0,0.2,0,0,50,0,0"])
    with pytest.raises(readers.FileFormatError, match="Points=200"):
        readers.read_grid("mls.3ds", data=raw)


def test_mls_grid_round_trip_through_the_writer(tmp_path):
    bias = np.concatenate([np.linspace(-3, -1, 5), np.linspace(-0.9, 0.9, 19), np.linspace(1, 3, 5)])
    data = np.random.default_rng(0).normal(size=(2, 3, bias.size))
    g = readers.Grid(bias=bias, x=np.arange(2.0), y=np.arange(3.0), data={"LockinX": data}, units={"LockinX": "V"},
                     header={})
    readers.write_grid(tmp_path / "m.3ds", g)
    r = readers.read_grid(tmp_path / "m.3ds")
    np.testing.assert_allclose(r.bias, bias, atol=1e-9)
    np.testing.assert_allclose(r.data["LockinX"], data, rtol=1e-6)


# ----------------------------------------------------------------------------- item 7
def test_byte_order_mark_is_not_part_of_the_first_key():
    path = REAL / "pynxtools_STS_nanonis_generic_4_5.dat"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    s = readers.read_spectrum(path)
    assert s.header["Experiment"] == "bias spectroscopy"
    assert not any("\ufeff" in k or "ï»¿" in k for k in s.header)


def test_unitless_bias_in_a_nanonis_file_is_volts_with_a_warning(tmp_path):
    head, labels, rows = dat_table(DAT)
    p = write_dat_text(tmp_path / "nounit.dat", head, ["Bias calc"] + labels[1:], rows)
    s = readers.read_spectrum(p)
    np.testing.assert_allclose(s.bias, readers.read_spectrum(DAT).bias)
    assert any("taken as V" in w for w in s.warnings)
    assert readers.read_spectrum(p, bias_unit="mV").bias[0] == pytest.approx(-0.2)


def test_no_lockin_and_no_current_is_refused_not_passed_off(tmp_path):
    head, _labels, rows = dat_table(DAT)
    p = write_dat_text(tmp_path / "temp.dat", head, ["Bias calc (V)", "Temperature 1 (K)"], [r[:2] for r in rows])
    s = readers.read_spectrum(p)
    with pytest.raises(readers.FileFormatError, match="no lock-in"):
        s.conductance()
    np.testing.assert_array_equal(s.conductance(channel="Temperature 1"), s.channels["Temperature 1"])


@pytest.mark.parametrize("value", ["NaN;6.329924E-7;5E-9;5E-9;45", "8.45E-8;6.33E-7;inf;5E-9;45",
                                   "8.45E-8;6.33E-7;5E-9;-5E-9;45"])
def test_non_finite_grid_settings_give_no_frame_and_finite_coordinates(grid_bytes, value):
    raw = edit_3ds(grid_bytes, set_key("Grid settings", value))
    g = readers.read_grid("nan.3ds", data=raw)
    assert g.frame is None and np.isfinite(g.x).all() and np.isfinite(g.y).all()
    np.testing.assert_array_equal(g.x, np.arange(30))
    assert any("Grid settings" in w for w in g.warnings)


def test_little_endian_body_is_recognised(grid_bytes, grid_ref):
    end = grid_bytes.index(b":HEADER_END:\r\n") + len(b":HEADER_END:\r\n")
    body = np.frombuffer(grid_bytes[end:], dtype=">f4").astype("<f4").tobytes()
    g = readers.read_grid("le.3ds", data=grid_bytes[:end] + body)
    assert any("little-endian" in w for w in g.warnings)
    np.testing.assert_array_equal(g.data["LockinX"], grid_ref.data["LockinX"])


def test_garbage_body_is_refused_not_read(grid_bytes):
    end = grid_bytes.index(b":HEADER_END:\r\n") + len(b":HEADER_END:\r\n")
    noise = np.random.default_rng(1).integers(0, 256, len(grid_bytes) - end, dtype=np.uint8).tobytes()
    with pytest.raises(readers.FileFormatError, match="float32|misaligned"):
        readers.read_grid("noise.3ds", data=grid_bytes[:end] + noise)


# ----------------------------------------------------------------------------- format detection
def test_a_grid_given_to_read_spectrum_says_which_reader_to_use():
    with pytest.raises(readers.FileFormatError, match="read it with read_grid"):
        readers.read_spectrum(GRID)
    with pytest.raises(readers.FileFormatError, match="read it with read_spectrum"):
        readers.read_grid(DAT)
    with pytest.raises(readers.FileFormatError, match="read it with read_image"):
        readers.read_spectrum(REAL / "pynxtools_STM_nanonis_generic_4_5.sxm")


def test_format_is_detected_from_content_not_name(tmp_path):
    p = tmp_path / "renamed.txt"
    p.write_bytes(GRID.read_bytes())
    assert isinstance(readers.read_any(p), readers.Grid)
    q = tmp_path / "spectrum.3ds"
    q.write_bytes(DAT.read_bytes())
    assert isinstance(readers.read_any(q), readers.Spectrum)
    with pytest.raises(readers.FileFormatError, match="not found"):
        readers.read_spectrum(tmp_path / "missing.dat")
