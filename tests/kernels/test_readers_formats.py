"""The formats beyond Nanonis spectra and grids: .sxm images, Createc .VERT, RHK .sm4, and the exports.

References are independent of the readers: numbers the files' headers record (setpoint
currents, scan frames, the Z the controller reported), physics (a lock-in dI/dV integrates to
the measured I(V); forward and backward scans of one area agree once mirrored), bytes edited
by hand, hashlib for the provenance digests.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

import gapscope
from gapscope.kernels import readers

TESTS = Path(__file__).resolve().parents[1]
REAL = TESTS / "data" / "real"
NANONIS = TESTS / "data" / "nanonis"
SXM = REAL / "pynxtools_STM_nanonis_generic_4_5.sxm"
SXM2 = REAL / "probeflow_A250407.141806.sxm"
VERT_T = REAL / "probeflow_A180201.124928.VERT"
VERT_B = REAL / "probeflow_createc_vert_didz_image_state.VERT"
SM4_Z = REAL / "spym_Iz_gold_9K.sm4"
SM4_V = REAL / "spym_dI-dV_Stripes-9K-HOPG.sm4"
GRID = NANONIS / "NanonisReader_STS_grid_lockin.3ds"

ALL = sorted(p for p in [*REAL.iterdir(), *NANONIS.iterdir()] if p.suffix in {".dat", ".3ds", ".sxm", ".VERT", ".sm4"})


def corr(a, b):
    a, b = np.ravel(a - np.nanmean(a)), np.ravel(b - np.nanmean(b))
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


# ----------------------------------------------------------------------------- every real file
EXPECTED = {
    "nanonispy2_Bias-Spectroscopy002_crlf.dat": ("Spectrum", "bias", None),
    "probeflow_A180201.124928.VERT": ("Spectrum", "time", "time trace"),
    "probeflow_A250407.141806.sxm": ("Image", None, None),
    "probeflow_createc_vert_didz_image_state.VERT": ("Spectrum", "bias", "Z feedback was closed"),
    "probeflow_nanonis_kelvin_parabola_500mv.dat": ("Spectrum", "bias", "Kelvin-probe sweep"),
    "probeflow_nanonis_sts_15mv.dat": ("Spectrum", "bias", None),
    "pynxtools_Bias-Spectroscopy00015_20230420.dat": ("Spectrum", "bias", None),
    "pynxtools_STM_nanonis_generic_4_5.sxm": ("Image", None, None),
    "pynxtools_STS_nanonis_generic_4_5.dat": ("Spectrum", "bias", None),
    "pynxtools_STS_nanonis_generic_5e_1.dat": ("Spectrum", "bias", None),
    "spym_Iz_gold_9K.sm4": ("Spectrum", "z", "Z sweep"),
    "spym_dI-dV_Stripes-9K-HOPG.sm4": ("Spectrum", "bias", None),
    "Bias-Spectroscopy002.dat": ("Spectrum", "bias", None),
    "NanonisReader_BiasSpectroscopy.dat": ("Spectrum", "bias", None),
    "NanonisReader_STS_grid_lockin.3ds": ("Grid", "bias", None),
    "duplicate_headers.dat": ("Spectrum", "bias", None),
}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_real_file_loads_or_is_refused_with_the_right_message(path):
    kind, sweep, refusal = EXPECTED[path.name]
    obj = readers.read_any(path)
    assert type(obj).__name__ == kind
    assert obj.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    if isinstance(obj, readers.Spectrum):
        assert obj.sweep == sweep
        if refusal is None:
            g = obj.conductance()
            assert g.shape == obj.bias.shape and np.isfinite(g).mean() > 0.9
        else:
            with pytest.raises(readers.FileFormatError, match=refusal) as info:
                readers._default_channel(obj)                     # the fit panel's first call
            assert str(info.value).startswith(path.name + ": ")
    elif isinstance(obj, readers.Grid):
        assert obj.sweep == sweep


# ----------------------------------------------------------------------------- .sxm
def test_sxm_channels_frame_and_units():
    im = readers.read_image(SXM)
    assert im.format == "nanonis_sxm" and im.scan_direction == "down"
    assert list(im.channels) == ["Z", "Z [bwd]", "Current", "Current [bwd]"]
    assert im.direction == {"Z": "forward", "Z [bwd]": "backward", "Current": "forward", "Current [bwd]": "backward"}
    assert im.units == {"Z": "m", "Z [bwd]": "m", "Current": "A", "Current [bwd]": "A"}
    assert all(a.shape == (256, 256) for a in im.channels.values())
    assert im.frame == readers.Frame(-528.0251, 11.30423, 4.0, 4.0, 0.0)        # SCAN_OFFSET, SCAN_RANGE, nm
    np.testing.assert_allclose(np.diff(im.x), 4.0 / 256)
    np.testing.assert_allclose(im.y[0], 2.0 / 256)
    assert im.topography == "Z"
    # physical units: the controller's last Z and the current setpoint the header records
    z_end = float(im.header["Z-Controller>Z (m)"])
    assert np.nanmin(im.channels["Z"]) < z_end < np.nanmax(im.channels["Z"])
    assert np.nanmean(im.channels["Current"]) == pytest.approx(float(im.header["Z-Controller>Setpoint"]), rel=0.2)


@pytest.mark.parametrize("path", [SXM, SXM2], ids=lambda p: p.name)
def test_sxm_backward_scans_are_mirrored_onto_the_forward_ones(path):
    im = readers.read_image(path)
    same = corr(im.channels["Z"], im.channels["Z [bwd]"])
    mirrored = corr(im.channels["Z"], im.channels["Z [bwd]"][::-1, :])
    assert same > 0.95 and same > mirrored + 0.3


def _sxm_edit(raw: bytes, key: str, value: str) -> bytes:
    head, sep, rest = raw.partition(b":SCANIT_END:")
    lines = head.decode("latin-1").split("\n")
    i = lines.index(f":{key}:")
    lines[i + 1] = value
    return "\n".join(lines).encode("latin-1") + sep + rest


def test_sxm_scan_direction_up_flips_the_lines():
    raw = SXM.read_bytes()
    down = readers.read_image(SXM)
    up = readers.read_image("up.sxm", data=_sxm_edit(raw, "SCAN_DIR", "up"))
    np.testing.assert_array_equal(up.channels["Z"], down.channels["Z"][:, ::-1])
    assert up.scan_direction == "up"


def test_sxm_little_endian_body_declared_lsbfirst():
    raw = SXM.read_bytes()
    start = raw.index(b"\x1a\x04") + 2
    body = np.frombuffer(raw[start:], dtype=">f4").astype("<f4").tobytes()
    edited = _sxm_edit(raw[:start], "SCANIT_TYPE", "              FLOAT            LSBFIRST") + body
    im = readers.read_image("le.sxm", data=edited)
    np.testing.assert_array_equal(im.channels["Current"], readers.read_image(SXM).channels["Current"])


def test_sxm_cut_off_and_claiming_too_much():
    raw = SXM.read_bytes()
    cut = readers.read_image("cut.sxm", data=raw[: len(raw) - 256 * 256 * 4])      # the last image missing
    assert np.isnan(cut.channels["Current [bwd]"]).all() and np.isfinite(cut.channels["Z"]).all()
    assert any("cut off" in w for w in cut.warnings)
    huge = _sxm_edit(raw, "SCAN_PIXELS", "       100000       100000")
    with pytest.raises(readers.FileFormatError, match="less than one 100000 × 100000 image"):
        readers.read_image("huge.sxm", data=huge)
    rows = "\n".join(f"\t{k}\tCh{k}\tV\tboth\t1.000E+0\t0.000E+0" for k in range(200))
    many = raw.replace(b"\t0\tCurrent\tA\tboth\t3.330E-10\t0.000E+0\n",
                       b"\t0\tCurrent\tA\tboth\t3.330E-10\t0.000E+0\n" + rows.encode() + b"\n", 1)
    assert len(many) > len(raw)
    with pytest.raises(readers.FileFormatError, match="disagree"):       # 404 images announced, 4 held
        readers.read_image("many.sxm", data=many)


def test_topography_beside_a_grid_overlay_outline():
    """A grid frame placed in an image frame: corners computed by hand (rotation clockwise by the angle)."""
    img = readers.Image(x=np.arange(4.0), y=np.arange(4.0), channels={"Z": np.zeros((4, 4))}, units={"Z": "m"},
                        header={}, frame=readers.Frame(10.0, 20.0, 8.0, 8.0, 0.0))
    grid_frame = readers.Frame(11.0, 21.0, 2.0, 2.0, 90.0)
    out = img.outline_of(grid_frame)
    # 90° clockwise: the grid's u axis points along −y, v along +x; its lower-left corner is at
    # centre − (u + v)/2·size = (11, 21) − (1·(0, −1) + 1·(1, 0)) = (10, 22) absolute → (4, 6) in the image
    np.testing.assert_allclose(out[0], [4.0, 6.0], atol=1e-12)
    np.testing.assert_allclose(out[1], [4.0, 4.0], atol=1e-12)           # + u·2 = (10, 20) → (4, 4)
    np.testing.assert_allclose(out[:4].mean(axis=0), [5.0, 5.0], atol=1e-12)
    g = readers.read_grid(GRID)
    im = readers.read_image(SXM)
    outline = im.outline_of(g)                                           # real files: far apart, still finite
    assert outline.shape == (5, 2) and np.isfinite(outline).all()
    with pytest.raises(readers.FileFormatError, match="no frame"):
        im.outline_of(readers.Grid(g.bias, g.x, g.y, {}, {}, {}, path="noframe.3ds"))


# ----------------------------------------------------------------------------- Createc .VERT
def test_createc_time_trace():
    s = readers.read_spectrum(VERT_T)
    assert s.format == "createc_vert" and s.sweep == "time" and s.sweep_unit == "s" and s.kind == "time trace"
    assert s.bias.size == 5000 and s.bias[1] == pytest.approx(1 / 1000.0) and s.header["SpecFreq"] == "1000.000"
    assert np.all(s.channels["V"] == -50.0)                     # the constant bias, in mV
    # I in A from the DAC (20 bit, ±10 V, doubled) and the 10^9 V/A preamplifier: the header's setpoint
    assert np.mean(s.channels["I"]) == pytest.approx(-float(s.header["Current[A]"]), rel=0.05)
    with pytest.raises(readers.FileFormatError, match="time trace"):
        s.conductance()


def test_createc_constant_current_bias_sweep():
    s = readers.read_spectrum(VERT_B)
    assert s.sweep == "bias" and s.bias[0] == pytest.approx(2506.5) and s.bias[-1] == pytest.approx(9000.0)
    assert list(s.channels) == ["V", "Z", "X", "I", "dI/dV", "ADC0", "NA02", "di_q", "column 10"]
    assert np.mean(s.channels["I"]) * 1e12 == pytest.approx(float(s.header["FBLogIset"]), rel=0.15)
    assert s.kind == "constant-current sweep"
    with pytest.raises(readers.FileFormatError, match="feedback was closed"):
        s.conductance()
    np.testing.assert_array_equal(s.conductance(channel="dI/dV"), s.channels["dI/dV"])


def test_createc_channel_code_that_names_too_many_columns():
    raw = VERT_T.read_bytes()
    edited = raw.replace(b"    5000      35   17325         1", b"    5000      35   17325         7", 1)
    with pytest.raises(readers.FileFormatError, match="channel code 7"):
        readers.read_spectrum("code.VERT", data=edited)


# ----------------------------------------------------------------------------- RHK .sm4
def test_rhk_iz_page_is_a_z_sweep():
    s = readers.read_spectrum(SM4_Z)
    assert s.format == "rhk_sm4" and s.sweep == "z" and s.sweep_unit == "nm" and s.bias_channel == "Distance"
    np.testing.assert_allclose(s.bias, 0.02 * np.arange(26), atol=1e-7)          # 20 pm steps
    assert len([c for c in s.channels if c.startswith("Current [0")]) == 20
    # at z = 0 the tip is where the feedback left it: the setpoint current the page header records
    assert s.channels["Current [AVG]"][0] == pytest.approx(float(s.header["current (A)"]), rel=0.1)
    assert np.all(np.diff(s.channels["Current [AVG]"][:10]) < 0)                  # decays with distance
    with pytest.raises(readers.FileFormatError, match="Z sweep"):
        s.conductance()


def test_rhk_lockin_integrates_to_the_measured_current():
    s = readers.read_spectrum(SM4_V)
    assert s.sweep == "bias" and s.bias[0] == pytest.approx(600.0, abs=1e-3) and s.bias[-1] == pytest.approx(-600.0)
    assert s.default_channel() == "LIA Current [AVG]"
    V, I, L = s.bias, s.channels["Current [AVG]"], s.channels["LIA Current [AVG]"]
    o = np.argsort(V)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (L[o][1:] + L[o][:-1]) * np.diff(V[o]))])
    assert corr(cum, I[o]) > 0.99
    assert I[0] == pytest.approx(float(s.header["current (A)"]), rel=0.2)      # setpoint at the start bias
    np.testing.assert_allclose(s.channels["LIA Current [AVG]"],
                               np.mean([s.channels[f"LIA Current [{k:05d}]"] for k in range(1, 7)], axis=0))


def _sm4_pages(raw: bytes):
    """(page index entry offset, page header offset) of each page, found by hand from the layout."""
    hsize = struct.unpack_from("<H", raw, 0)[0]
    nobj = struct.unpack_from("<I", raw, 42)[0]
    objs = [struct.unpack_from("<3I", raw, 2 + hsize + 12 * k) for k in range(nobj)]
    pih = next(o for o in objs if o[0] == 1)[1]
    npages, n2 = struct.unpack_from("<2I", raw, pih)
    off = next(o for o in (struct.unpack_from("<3I", raw, pih + 16 + 12 * k) for k in range(n2)) if o[0] == 2)[1]
    out = []
    for _ in range(npages):
        n3 = struct.unpack_from("<I", raw, off + 24)[0]
        pobjs = [struct.unpack_from("<3I", raw, off + 32 + 12 * k) for k in range(n3)]
        out.append((off, next(o for o in pobjs if o[0] == 3)[1]))
        off += 32 + 12 * n3
    return out


def test_rhk_grid_from_an_edited_grid_size():
    raw = bytearray(SM4_V.read_bytes())
    for _entry, header in _sm4_pages(bytes(raw)):
        struct.pack_into("<2I", raw, header + 104, 3, 2)             # GridXsize, GridYsize
    g = readers.read_grid("grid.sm4", data=bytes(raw))
    s = readers.read_spectrum(SM4_V)
    assert g.data["LIA Current"].shape == (3, 2, 481)
    np.testing.assert_array_equal(g.data["LIA Current"][1, 1], s.channels["LIA Current [00005]"])   # x fastest
    with pytest.raises(readers.FileFormatError, match="no spectroscopy grid"):
        readers.read_grid(SM4_V)


def test_rhk_image_page_from_an_edited_data_type():
    raw = bytearray(SM4_Z.read_bytes())
    entry, _header = _sm4_pages(bytes(raw))[0]
    struct.pack_into("<I", raw, entry + 16, 0)                       # page data type: image
    im = readers.read_image("image.sm4", data=bytes(raw))
    s = readers.read_spectrum(SM4_Z)
    assert list(im.channels) == ["Current [bwd]"] and im.direction["Current [bwd]"] == "backward"   # scan: left
    a = im.channels["Current [bwd]"]
    assert a.shape == (26, 20)
    for j in range(20):                                              # rows stored top first (y scale > 0)
        np.testing.assert_array_equal(a[:, j], s.channels[f"Current [{20 - j:05d}]"])
    with pytest.raises(readers.FileFormatError, match="images only"):
        readers.read_spectrum("image.sm4", data=bytes(raw))


def test_rhk_truncated_file_names_the_problem():
    raw = SM4_V.read_bytes()
    with pytest.raises(readers.FileFormatError, match="beyond the end") as info:
        readers.read_spectrum("cut.sm4", data=raw[:20000])
    assert str(info.value).startswith("cut.sm4: ")


# ----------------------------------------------------------------------------- detection
def test_formats_are_detected_from_content():
    want = {".dat": "nanonis_dat", ".3ds": "nanonis_3ds", ".sxm": "nanonis_sxm", ".VERT": "createc_vert",
            ".sm4": "rhk_sm4"}
    for p in ALL:
        assert readers.detect_format(p.read_bytes()) == want[p.suffix], p.name
    assert readers.detect_format(b"bias,g\n1,2\n") == "text"
    with pytest.raises(readers.FileFormatError, match="read it with read_image"):
        readers.read_grid(SXM)
    with pytest.raises(readers.FileFormatError, match="not an image: read it with read_spectrum"):
        readers.read_image(NANONIS / "Bias-Spectroscopy002.dat")


# ----------------------------------------------------------------------------- exports
def _comments(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# ") and ": " in line:
            k, v = line[2:].split(": ", 1)
            out[k] = v
    return out


def _table(path: Path) -> dict[str, np.ndarray]:
    """An exported CSV by hand: comment lines skipped, the first other line the labels."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    labels = lines[0].split(",")
    values = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]])
    return {lab: values[:, k] for k, lab in enumerate(labels)}


def test_csv_export_of_a_spectrum_reads_back_with_provenance(tmp_path):
    src = REAL / "pynxtools_STS_nanonis_generic_4_5.dat"
    s = readers.read_spectrum(src)
    out = tmp_path / "s.csv"
    readers.write_csv(out, s)
    meta = _comments(out)
    assert meta["source_file"] == src.name and meta["source_format"] == "nanonis_dat"
    assert meta["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert meta["software"] == "gapscope" and meta["software_version"] == gapscope.__version__
    r = readers.read_spectrum(out)
    np.testing.assert_allclose(r.bias, s.bias, rtol=1e-8)
    for k in s.channels:
        if k != s.bias_channel:
            np.testing.assert_allclose(r.channels[k], s.channels[k], rtol=1e-8)
            assert r.units[k] == s.units[k]


def test_csv_export_of_a_grid_image_and_fits(tmp_path):
    g = readers.read_grid(GRID)
    crop = readers.Grid(g.bias, g.x[:2], g.y[:3], {k: v[:2, :3] for k, v in g.data.items()}, dict(g.units), {},
                        path=g.path, sha256=g.sha256, format=g.format)
    readers.write_csv(tmp_path / "g.csv", crop)
    table = _table(tmp_path / "g.csv")
    assert table["bias (mV)"].size == 2 * 3 * 200
    np.testing.assert_allclose(table["LockinX (V)"].reshape(2, 3, 200), crop.data["LockinX"], rtol=1e-8)
    np.testing.assert_allclose(table["x (nm)"].reshape(2, 3, 200)[:, 0, 0], crop.x, rtol=1e-8)
    im = readers.read_image(SXM2)
    readers.write_csv(tmp_path / "i.csv", im)
    t = _table(tmp_path / "i.csv")
    np.testing.assert_allclose(t["Z (m)"].reshape(im.x.size, im.y.size), im.channels["Z"], rtol=1e-8)
    fitting = pytest.importorskip("gapscope.kernels.fitting")
    res = fitting.GridFitResult("dynes", {"delta": np.full((2, 3), 1.3)}, {"delta": np.full((2, 3), 0.01)},
                                np.ones((2, 3)), np.ones((2, 3), bool))
    readers.write_csv(tmp_path / "f.csv", res, source=crop)
    t = _table(tmp_path / "f.csv")
    np.testing.assert_allclose(t["delta"], 1.3)
    np.testing.assert_allclose(t["delta_error"], 0.01)
    np.testing.assert_allclose(t["x (nm)"].reshape(2, 3)[:, 0], crop.x)
    assert _comments(tmp_path / "f.csv")["source_sha256"] == hashlib.sha256(GRID.read_bytes()).hexdigest()


def test_nexus_export_with_fit_and_image(tmp_path):
    h5py = pytest.importorskip("h5py")
    fitting = pytest.importorskip("gapscope.kernels.fitting")
    s = readers.read_spectrum(REAL / "probeflow_nanonis_sts_15mv.dat")
    V = np.linspace(-4, 4, 200)
    y = fitting.synthetic("dynes", V, noise=0.01, seed=2, delta=1.3, gamma=0.05, temperature=1.0)
    fit = fitting.fit(V, y, model="dynes", initial={"temperature": 1.0})
    img = readers.read_image(SXM2)
    path = tmp_path / "out.nxs"
    readers.write_nexus(path, s, fit=fit, image=img, extra={"channel": "LockIn [AVG]"})
    with h5py.File(path, "r") as f:
        e = f["entry"]
        assert e.attrs["NX_class"] == "NXentry" and e["definition"][()].decode() == "NXsts"
        prov = {k: v[()].decode() for k, v in e["provenance"].items()}
        assert prov["source_sha256"] == hashlib.sha256((REAL / "probeflow_nanonis_sts_15mv.dat").read_bytes()) \
            .hexdigest()
        assert prov["software_version"] == gapscope.__version__ and prov["channel"] == "LockIn [AVG]"
        d = e["data"]
        assert d.attrs["NX_class"] == "NXdata" and d.attrs["signal"] == "LockIn_AVG"
        np.testing.assert_array_equal(d["bias"][()], s.bias)
        assert d["bias"].attrs["units"] == "mV" and d["LockIn_AVG"].attrs["long_name"] == "LockIn [AVG]"
        np.testing.assert_array_equal(d["LockIn_AVG"][()], s.channels["LockIn [AVG]"])
        p = e["fit/parameters"]
        assert p["delta"][()] == pytest.approx(fit.values["delta"]) and "delta_error" in p
        np.testing.assert_array_equal(e["fit/curve/best_fit"][()], fit.best_fit)
        np.testing.assert_array_equal(e["image/Z"][()], img.channels["Z"])
        assert e["image"].attrs["source_sha256"] == img.sha256


def test_nexus_export_of_a_grid(tmp_path):
    h5py = pytest.importorskip("h5py")
    g = readers.read_grid(GRID)
    readers.write_nexus(tmp_path / "g.h5", g)
    with h5py.File(tmp_path / "g.h5", "r") as f:
        d = f["entry/data"]
        assert list(d.attrs["axes"]) == ["x", "y", "bias"] and d.attrs["signal"] == "LockinX"
        np.testing.assert_array_equal(d["LockinX"][()], g.data["LockinX"])
        np.testing.assert_array_equal(d["positions"][()], g.positions)
