"""Nanonis files: ``.dat`` spectra, ``.3ds`` grids, ``.sxm`` images (as the controllers write them).

* ``.dat``: tab-separated ``key<TAB>value`` header lines (keys may repeat; a UTF-8 BOM may
  precede the first), a ``[DATA]`` line, then a tab-separated table whose first row holds
  ``Name (unit)`` labels; the first column is the swept signal (``Bias calc (V)`` in bias
  spectroscopy, ``Z rel (m)`` in Z spectroscopy, a time in long-term records); trailing tabs
  and ``NaN`` values occur; forward/backward (``[bwd]``), filtered (``[filt]``) and per-sweep
  (``[AVG]``, ``[00001]`` …) channels.
* ``.3ds``: ``key=value`` header lines up to ``:HEADER_END:\\r\\n``, then per pixel (x fastest
  within each line) big-endian float32 values: the per-pixel parameters (``Sweep Start``,
  ``Sweep End``, then the experiment parameters), then each channel's points.  A multi-segment
  (``Filetype=MLS``) sweep lists its segments in ``Segment Start (V), Segment End (V), …,
  Steps (xn), …``.  Incomplete grids end early.
* ``.sxm``: ``:KEY:`` lines each followed by value lines, up to ``:SCANIT_END:``, then
  ``\\x1a\\x04`` and per channel (``DATA_INFO``) one or two (``both``: forward, backward)
  ny × nx float32 planes (``SCANIT_TYPE`` FLOAT MSBFIRST/LSBFIRST), each line in scan order:
  the first stored line is the first scanned (the top for ``SCAN_DIR`` down), backward lines
  run right to left.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ._common import (
    MAX_HEADER_BYTES,
    MAX_HEADER_LINES,
    SWEEP_UNITS,
    FileFormatError,
    Frame,
    Grid,
    Image,
    Spectrum,
    check_alloc,
    classify_sweep,
    decode_text,
    drop_torn_last_row,
    experiment_sweep,
    is_number,
    parse_rows,
    recognise_measurement,
    sha256_of,
    split_label,
    to_float,
    to_floats,
    to_int,
    unique_names,
)

__all__ = ["read_dat", "read_3ds", "read_sxm", "assemble_spectrum"]

_DATA_LINE = re.compile(r"^\[DATA\][ \t]*\r?$", re.M)
_NOT_BIAS_V = ("input", "aux", "output", "excitation", "amplitude", "gate", "li ", "lock", "piezo", "dac", "adc",
               "oc ", "kelvin")


# ----------------------------------------------------------------------------- .dat
def read_dat(name: str, data: bytes, *, bias_unit: str | None = None) -> Spectrum:
    """A Nanonis ``.dat`` spectrum (see the module docstring); the first column is the sweep."""
    text = decode_text(name, data)
    m = _DATA_LINE.search(text, 0, MAX_HEADER_BYTES)
    if m is None:
        raise FileFormatError(name, "Nanonis header without a [DATA] section (truncated or not a spectrum)")
    head = text[:m.start()].splitlines()
    if len(head) > MAX_HEADER_LINES:
        raise FileFormatError(name, f"header of {len(head)} lines before [DATA] (more than {MAX_HEADER_LINES})")
    header: dict[str, str] = {}
    warnings: list[str] = []
    repeated: dict[str, int] = {}
    for line in head:
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").split("\t")
        key = parts[0].strip()
        value = parts[1].strip() if len(parts) > 1 else ""
        if key in header:
            repeated[key] = repeated.get(key, 1) + 1
            continue                       # the first occurrence wins
        header[key] = value
    for key, n in repeated.items():
        warnings.append(f"header key {key!r} occurs {n} times; the first value is used")
    rest = text[m.end():].lstrip("\r").lstrip("\n")
    lines = rest.splitlines()
    if not lines or not lines[0].strip():
        raise FileFormatError(name, "[DATA] section has no column labels")
    labels = lines[0].rstrip("\r\n").split("\t")
    while labels and not labels[-1].strip():
        labels.pop()
    if not labels:
        raise FileFormatError(name, "[DATA] section has no column labels")
    if any(is_number(c.strip()) and c.strip() for c in labels):
        raise FileFormatError(name, "the line after [DATA] holds numbers, not column labels")
    first_line = text.count("\n", 0, m.end()) + 2
    rows = drop_torn_last_row(text, lines[1:], warnings)
    table = parse_rows(name, rows, len(labels), first_line + 1, "\t")
    return assemble_spectrum(name, labels, table, header, warnings, sweep_index=0, unitless="V",
                             bias_unit=bias_unit, fmt="nanonis_dat", expected=experiment_sweep(header),
                             digest=sha256_of(data))


def _sweep_of(name: str, label_name: str, unit: str) -> tuple[str, str, float] | None:
    got = classify_sweep(label_name, unit)
    if got and got[0] == "bias" and label_name.lower().startswith(_NOT_BIAS_V):
        return "other", unit, 1.0          # a voltage, but not the tunnelling bias
    return got


def assemble_spectrum(name: str, labels: list[str], table: np.ndarray, header: dict[str, str],
                      warnings: list[str], *, sweep_index: int, unitless: str, bias_unit: str | None, fmt: str,
                      expected: str | None = None, digest: str = "", strict_unit: bool = False) -> Spectrum:
    """Channels from labelled columns, the sweep axis from column ``sweep_index``.

    ``unitless`` is the unit assumed for a unitless bias column (with a warning); a
    ``bias_unit`` given by the caller overrides it and must agree with the file's unit.
    ``strict_unit``: an unrecognised x unit is an error (else the column is an "other" sweep).
    """
    names, units, dup = unique_names(name, labels)
    warnings.extend(dup)
    if len(names) < 2:
        raise FileFormatError(name, "only one column: need a sweep and at least one data channel")
    channels = {n: table[:, k] for k, n in enumerate(names)}
    unit_of = dict(zip(names, units, strict=True))
    xname = names[sweep_index]
    unit = unit_of[xname]
    if bias_unit and unit and bias_unit != unit:
        raise FileFormatError(name, f"bias unit declared {bias_unit!r} but the file says {unit!r}")
    got = _sweep_of(name, xname, unit or (bias_unit or ""))
    looks_bias = xname.lower().startswith(("bias", "voltage", "sample bias")) or xname.lower() in ("v", "u")
    if got is None or (looks_bias and got[0] != "bias" and unit):
        if strict_unit or looks_bias:
            raise FileFormatError(name, f"the x column {xname!r} has unit {unit!r}: not a voltage (V, mV, µV)"
                                  + ("" if looks_bias else ", a length (m, nm, pm, Å) or a time (s, ms)"))
        sweep, out_unit, factor = "other", unit, 1.0
        warnings.append(f"the first column {xname!r} ({unit or 'no unit'}) is no bias, Z or time signal: "
                        "it is the x axis as it is")
    else:
        sweep, out_unit, factor = got
    if sweep != "other" and not (unit or bias_unit):
        assumed = {"bias": unitless, "z": "m", "time": "s", "frequency": "Hz"}[sweep]
        out_unit, conv = SWEEP_UNITS[sweep]
        factor = conv[assumed]
        warnings.append(f"no unit for the {sweep} column {xname!r}: taken as {assumed}"
                        + (" (declare bias_unit='V' if it is volts)" if assumed == "mV" else
                           " (Nanonis stores SI units)"))
        unit_of[xname] = assumed
    elif bias_unit and not unit:
        unit_of[xname] = bias_unit
    x = channels[xname]
    if not np.all(np.isfinite(x)):
        bad = int(np.argmin(np.isfinite(x)))
        what = "bias" if sweep == "bias" else "sweep"
        raise FileFormatError(name, f"the {what} column {xname!r} contains NaN or non-numbers (row {bad + 1})")
    if expected and sweep not in (expected, "other"):
        warnings.append(f"the header says {header.get('Experiment', expected)!r} but the swept column {xname!r} is "
                        f"a {sweep} signal: read as a {sweep} sweep")
    if x.size > 1 and np.ptp(x) == 0:
        alt = None
        for k, n in enumerate(names):
            if k == sweep_index or "[" in n:
                continue
            cand = _sweep_of(name, n, unit_of[n])
            col = channels[n]
            if cand and cand[0] != "other" and np.all(np.isfinite(col)) and col.size > 1 and (
                    np.all(np.diff(col) > 0) or np.all(np.diff(col) < 0)):
                alt = (n, cand)
                break
        if alt is None:
            raise FileFormatError(name, f"the swept column {xname!r} holds one value ({x[0]:g} {unit}) in every "
                                        "row and no other column is swept: the file records no sweep")
        warnings.append(f"the first column {xname!r} is constant; {alt[0]!r} is swept and is the x axis")
        xname, (sweep, out_unit, factor) = alt[0], alt[1]
        x = channels[xname]
    spec = Spectrum(bias=x * factor, channels=channels, units=unit_of, header=header, path=name,
                    bias_channel=xname, warnings=warnings, sweep=sweep, sweep_unit=out_unit, format=fmt,
                    sha256=digest)
    recognise_measurement(spec)
    return spec


# ----------------------------------------------------------------------------- .3ds
_REQUIRED_3DS = ("Grid dim", "Points", "Channels", "# Parameters (4 byte)")
_MLS_KEY = re.compile(r"^(?:.*:\s*)?Segment Start \(V\)\s*,", re.I)


def _header_3ds(name: str, data: bytes) -> tuple[dict[str, str], int, list[str]]:
    end = data.find(b":HEADER_END:", 0, MAX_HEADER_BYTES)
    if end < 0:
        raise FileFormatError(name, "no ':HEADER_END:' line: not a .3ds grid (or its header is cut off)")
    head = data[:end].decode("latin-1")
    if head.startswith("\u00ef\u00bb\u00bf"):
        head = head[3:]
    hlines = head.splitlines()
    if len(hlines) > MAX_HEADER_LINES:
        raise FileFormatError(name, f"header longer than {MAX_HEADER_LINES} lines")
    header: dict[str, str] = {}
    warnings: list[str] = []
    for line in hlines:
        if "=" in line:
            k, v = line.split("=", 1)
            k = k.strip()
            if k in header:
                warnings.append(f"header key {k!r} occurs more than once; the first value is used")
                continue
            header[k] = v.strip().strip('"')
    nl = data.find(b"\n", end)
    return header, (nl + 1 if nl >= 0 else len(data)), warnings


def _mls_axis(name: str, header: dict[str, str], npts: int) -> np.ndarray | None:
    """The piecewise sweep of a multi-segment (MLS) grid from its segment table, in the header's unit."""
    key = next((k for k in header if _MLS_KEY.match(k)), None)
    if key is None:
        if header.get("Filetype", "").strip().upper() == "MLS":
            raise FileFormatError(name, "Filetype=MLS but the header has no segment table (Segment Start (V), …)")
        return None
    cols = [c.strip().lower() for c in key.split(":")[-1].split(",")]
    try:
        i_start, i_end = cols.index("segment start (v)"), cols.index("segment end (v)")
        i_steps = next(i for i, c in enumerate(cols) if c.startswith("steps"))
    except (ValueError, StopIteration):
        raise FileFormatError(name, f"the segment table {key!r} lacks Segment Start, Segment End or Steps") from None
    segs = [s for s in header[key].split(";") if s.strip()]
    if not segs or len(segs) > 10_000:
        raise FileFormatError(name, f"the segment table has {len(segs)} segments")
    pieces, steps = [], []
    for k, seg in enumerate(segs):
        vals = seg.split(",")
        if len(vals) < len(cols):
            raise FileFormatError(name, f"segment {k + 1} of the table has {len(vals)} values, expected {len(cols)}")
        a = to_float(name, f"{key} (segment {k + 1})", vals[i_start])
        b = to_float(name, f"{key} (segment {k + 1})", vals[i_end])
        n = to_int(name, f"{key} (segment {k + 1} steps)", vals[i_steps].split(".")[0], low=1, high=npts)
        if not (math.isfinite(a) and math.isfinite(b)):
            raise FileFormatError(name, f"segment {k + 1}: start {a} or end {b} is not finite")
        pieces.append(np.linspace(a, b, n))
        steps.append(n)
    total = sum(steps)
    if total == npts:
        axis = np.concatenate(pieces)
    elif total - (len(segs) - 1) == npts:          # consecutive segments share their joint
        axis = np.concatenate([pieces[0]] + [p[1:] for p in pieces[1:]])
    else:
        raise FileFormatError(name, f"the segment table gives {total} points ({' + '.join(map(str, steps))}), "
                                    f"but Points={npts}")
    return axis


def _plausible(a: np.ndarray) -> float:
    """Fraction of float32 values that look like measured numbers (0, NaN, or 1e-30 … 1e12 in magnitude)."""
    if a.size == 0:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.abs(a.astype(np.float64))
        ok = np.isnan(a) | (m == 0) | ((m > 1e-30) & (m < 1e12))
    return float(ok.mean())


def _byte_order(name: str, body: bytes | memoryview, per_pixel: int, npar: int, warnings: list[str]) -> str:
    n = min(len(body) // 4, max(per_pixel * 8, 4096))
    be = np.frombuffer(body, dtype=">f4", count=n)
    le = np.frombuffer(body, dtype="<f4", count=n)
    pb, pl = _plausible(be), _plausible(le)
    if max(pb, pl) < 0.6:
        raise FileFormatError(name, f"the data section does not look like float32 numbers in either byte order "
                                    f"({100 * pb:.0f} % plausible big-endian, {100 * pl:.0f} % little-endian)")
    if pb >= 0.9 or pb >= pl:
        return ">f4"
    if pl >= 0.9:
        warnings.append(f"the data are little-endian float32 ({100 * pl:.0f} % plausible values; as big-endian "
                        f"only {100 * pb:.0f} %): read as little-endian, which Nanonis does not write")
        return "<f4"
    return ">f4"


def read_3ds(name: str, data: bytes) -> Grid:
    """A Nanonis ``.3ds`` grid (see the module docstring): ``data[channel]`` (nx, ny, nsweep)."""
    if not data:
        raise FileFormatError(name, "the file is empty")
    header, body_start, warnings = _header_3ds(name, data)
    body = memoryview(data)[body_start:]
    missing = [k for k in _REQUIRED_3DS if k not in header]
    if missing:
        raise FileFormatError(name, f"header lacks {', '.join(missing)}")
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", header["Grid dim"])
    if m is None:
        raise FileFormatError(name, f"Grid dim = {header['Grid dim']!r} is not 'nx x ny'")
    nx, ny = int(m.group(1)), int(m.group(2))
    npts = to_int(name, "Points", header["Points"], low=1)
    npar = to_int(name, "# Parameters (4 byte)", header["# Parameters (4 byte)"], low=0, high=100_000)
    if nx <= 0 or ny <= 0 or npar < 2:
        raise FileFormatError(name, f"impossible grid size {nx}×{ny}, {npts} points, {npar} parameters")
    names, units, dup = unique_names(name, [c for c in header["Channels"].split(";") if c.strip()])
    warnings.extend(dup)
    if not names:
        raise FileFormatError(name, "no channels listed")
    nch = len(names)
    if "Experiment size (bytes)" in header:
        exp_size = to_int(name, "Experiment size (bytes)", header["Experiment size (bytes)"])
        if exp_size != 4 * npts * nch:
            raise FileFormatError(name, f"the channel list ({nch} channels × {npts} points × 4 bytes = "
                                        f"{4 * npts * nch} bytes per pixel) disagrees with Experiment size (bytes)"
                                        f"={exp_size}: the pixels would be misaligned")
    else:
        warnings.append("no 'Experiment size (bytes)' in the header: the pixel stride is not checked against it")
    per_pixel = npar + npts * nch
    nfloat = len(body) // 4
    if nfloat < per_pixel:
        raise FileFormatError(name, f"the data section holds {nfloat} values, less than one pixel ({per_pixel})")
    npix = nx * ny
    done = min(nfloat // per_pixel, npix)
    ny_alloc = ny
    if done < npix:
        full = 8.0 * npix * per_pixel
        try:
            check_alloc(name, full, len(data), "the full grid")
        except FileFormatError:
            ny_alloc = -(-done // nx)
            check_alloc(name, 8.0 * nx * ny_alloc * per_pixel, len(data),
                        f"{ny_alloc} lines of {nx} pixels (Grid dim says {nx} × {ny}; the data hold {done} pixels)")
            warnings.append(f"incomplete grid: {done} of {npix} pixels measured; only the {ny_alloc} lines reached "
                            "are kept (missing pixels of the last are NaN)")
        else:
            warnings.append(f"incomplete grid: {done} of {npix} pixels measured; the rest are NaN")
    elif len(body) > 4 * npix * per_pixel + 16:
        warnings.append(f"{len(body) - 4 * npix * per_pixel} bytes after the last pixel were ignored")
    dtype = _byte_order(name, body, per_pixel, npar, warnings)
    out = np.full((nx * ny_alloc, per_pixel), np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        out[:done] = np.frombuffer(body, dtype=dtype, count=done * per_pixel).reshape(done, per_pixel)
    pix = out.reshape(ny_alloc, nx, per_pixel).transpose(1, 0, 2)       # file: x fastest within each line
    par_names = _param_names(header, npar)
    params = {n: pix[:, :, k] for k, n in enumerate(par_names)}
    d = {nm: pix[:, :, npar + ic * npts: npar + (ic + 1) * npts] for ic, nm in enumerate(names)}
    unit_of = dict(zip(names, units, strict=True))

    sweep_label = header.get("Sweep Signal", "Bias (V)")
    sname, sunit = split_label(sweep_label)
    got = _sweep_of(name, sname, sunit)
    if got is None:
        sweep, out_unit, factor = "other", sunit, 1.0
        warnings.append(f"the sweep signal {sweep_label!r} is no bias, Z or time signal: its axis is as it is")
    else:
        sweep, out_unit, factor = got
        if not sunit:
            si = {"bias": "V", "z": "m", "time": "s", "frequency": "Hz"}[sweep]
            out_unit, conv = SWEEP_UNITS[sweep]
            factor = conv[si]
            warnings.append(f"the sweep signal {sweep_label!r} has no unit: taken as {si} (Nanonis stores SI units)")
    axis = _mls_axis(name, header, npts)
    if axis is None:
        start, stop = _sweep_ends(name, pix[:, :, 0], pix[:, :, 1], warnings)
        axis = np.linspace(start, stop, npts)
    x_axis = axis * factor
    if not np.all(np.isfinite(x_axis)):
        raise FileFormatError(name, "the sweep axis is not finite")
    unit_of[sname] = sunit

    frame = _frame_3ds(name, header, warnings)
    positions = None
    if "X (m)" in params and "Y (m)" in params:
        positions = np.stack([params["X (m)"], params["Y (m)"]], axis=-1) * 1e9
    x, y = _grid_axes(frame, positions, nx, ny, ny_alloc, warnings)
    return Grid(bias=x_axis, x=x, y=y, data=d, units=unit_of, header=header, params=params, positions=positions,
                path=name, warnings=warnings, sweep=sweep, sweep_unit=out_unit, frame=frame, format="nanonis_3ds",
                sha256=sha256_of(data))


def _sweep_ends(name: str, start: np.ndarray, stop: np.ndarray, warnings: list[str]) -> tuple[float, float]:
    ok = np.isfinite(start) & np.isfinite(stop)
    if not ok.any():
        raise FileFormatError(name, "no pixel records its sweep start and end")
    s0, s1 = float(np.median(start[ok])), float(np.median(stop[ok]))
    scale = max(abs(s0), abs(s1), 1e-12)
    off = (np.abs(start[ok] - s0) > 1e-6 * scale) | (np.abs(stop[ok] - s1) > 1e-6 * scale)
    if off.mean() > 0.5:
        raise FileFormatError(name, f"the per-pixel sweep start/end differ in {int(off.sum())} of {int(ok.sum())} "
                                    "pixels: the parameter count or channel list disagrees with the data "
                                    "(misaligned pixels)")
    if off.any():
        warnings.append(f"{int(off.sum())} pixels record another sweep start/end than the rest "
                        f"({s0:g} … {s1:g}); the common one is used")
    return s0, s1


def _frame_3ds(name: str, header: dict[str, str], warnings: list[str]) -> Frame | None:
    if "Grid settings" not in header:
        warnings.append("no 'Grid settings' in the header: no frame")
        return None
    gs = to_floats(name, "Grid settings", header["Grid settings"])
    if len(gs) < 4:
        warnings.append(f"'Grid settings' has {len(gs)} numbers, not 5 (centre x, y, width, height, angle): no frame")
        return None
    angle = gs[4] if len(gs) >= 5 else 0.0
    if not all(math.isfinite(v) for v in gs[:4]) or not math.isfinite(angle) or gs[2] < 0 or gs[3] < 0:
        warnings.append(f"'Grid settings' = {header['Grid settings']!r} is not a finite frame: no frame")
        return None
    return Frame(gs[0] * 1e9, gs[1] * 1e9, gs[2] * 1e9, gs[3] * 1e9, angle)


def _grid_axes(frame: Frame | None, positions: np.ndarray | None, nx: int, ny: int, ny_alloc: int,
               warnings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in the frame (nm): from the recorded tip positions, else nominal.

    With recorded X/Y positions the axes are straight-line fits u = a + b·i (medians over the
    other index first) in frame coordinates; without them, i·width/nx — the pitch is width/nx
    and the first pixel sits at the frame's corner, as the recorded positions of a real 45°
    Nanonis grid show (first pixel 0.006 nm from the corner, pitch width/nx to 10⁻⁵).
    """
    if frame is None:
        warnings.append("x and y are pixel indices (no frame in the header)")
        return np.arange(nx, dtype=float), np.arange(ny_alloc, dtype=float)
    pitch_x = frame.width / nx
    pitch_y = frame.height / ny
    x = np.arange(nx) * pitch_x
    y = np.arange(ny_alloc) * pitch_y
    if positions is None:
        return x, y
    uv = frame.to_frame(positions)
    fitted = []
    for axis, n, nominal, pitch in ((0, nx, x, pitch_x), (1, ny_alloc, y, pitch_y)):
        with np.errstate(all="ignore"):
            vals = np.moveaxis(uv[..., axis], axis, 0)
            fin = np.isfinite(vals)
            med = np.array([np.median(r[f]) if f.any() else np.nan for r, f in zip(vals, fin, strict=True)])
        ok = np.isfinite(med)
        if n == 1:
            fitted.append(med if ok.all() and abs(med[0] - nominal[0]) <= max(pitch, 1e-9) else nominal)
            continue
        if ok.sum() < 2:
            fitted.append(nominal)
            continue
        idx = np.arange(n)[ok]
        b, a = np.polyfit(idx, med[ok], 1)
        line = a + b * np.arange(n)
        if pitch > 0 and np.isfinite(line).all() and abs(b - pitch) <= 0.1 * pitch and \
                np.max(np.abs(line - nominal)) <= pitch:
            fitted.append(line)
        else:
            if pitch > 0:
                warnings.append("the recorded X/Y positions do not match 'Grid settings': the axes are nominal")
            fitted.append(nominal)
    return fitted[0], fitted[1]


def _param_names(header: dict[str, str], npar: int) -> list[str]:
    names = [n for n in header.get("Fixed parameters", "Sweep Start;Sweep End").split(";") if n]
    names += [n for n in header.get("Experiment parameters", "").split(";") if n]
    if len(names) < npar:
        names += [f"parameter {k + 1}" for k in range(len(names), npar)]
    seen: dict[str, int] = {}
    out = []
    for n in names[:npar]:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


# ----------------------------------------------------------------------------- .sxm
def _header_sxm(name: str, data: bytes) -> tuple[dict[str, str], int]:
    end = data.find(b":SCANIT_END:", 0, MAX_HEADER_BYTES)
    if end < 0:
        raise FileFormatError(name, "no ':SCANIT_END:' line: not a Nanonis .sxm image (or its header is cut off)")
    mark = data.find(b"\x1a\x04", end, end + 256)
    if mark < 0:
        raise FileFormatError(name, "no data start marker (\\x1a\\x04) after ':SCANIT_END:' (file cut off?)")
    text = data[:end].decode("latin-1")
    if text.startswith("\u00ef\u00bb\u00bf"):
        text = text[3:]
    lines = text.splitlines()
    if len(lines) > 4 * MAX_HEADER_LINES:
        raise FileFormatError(name, f"header longer than {4 * MAX_HEADER_LINES} lines")
    header: dict[str, str] = {}
    key: str | None = None
    buf: list[str] = []
    for line in lines:
        s = line.rstrip("\r\n")
        if len(s) > 2 and s.startswith(":") and s.endswith(":") and "\t" not in s:
            if key is not None and key not in header:
                header[key] = "\n".join(buf).strip("\n")
            key, buf = s[1:-1], []
        elif key is not None:
            buf.append(s)
    if key is not None and key not in header:
        header[key] = "\n".join(buf).strip("\n")
    return header, mark + 2


def _data_info(name: str, text: str) -> list[tuple[str, str, str]]:
    rows = [r for r in text.splitlines() if r.strip()]
    if not rows:
        raise FileFormatError(name, "DATA_INFO lists no channels")
    head = rows[0].split()
    if head[:6] != ["Channel", "Name", "Unit", "Direction", "Calibration", "Offset"]:
        raise FileFormatError(name, f"DATA_INFO does not start with 'Channel Name Unit Direction Calibration "
                                    f"Offset' (found {rows[0].strip()[:60]!r})")
    out = []
    for r in rows[1:]:
        cells = [c for c in r.strip().split("\t") if c.strip()]
        if len(cells) < 6:
            cells = r.split()
        if len(cells) < 6:
            raise FileFormatError(name, f"DATA_INFO row {r.strip()[:60]!r} has fewer than 6 fields")
        _ch, nm, unit, direction = cells[0], cells[1], cells[2], cells[3].strip().lower()
        if direction not in ("both", "forward", "backward"):
            raise FileFormatError(name, f"DATA_INFO direction {cells[3]!r} is not forward, backward or both")
        out.append((nm.replace("_", " ").strip(), unit.strip(), direction))
    if not out:
        raise FileFormatError(name, "DATA_INFO lists no channels")
    return out


def read_sxm(name: str, data: bytes) -> Image:
    """A Nanonis ``.sxm`` scan (see the module docstring): every channel, forward and backward."""
    if not data:
        raise FileFormatError(name, "the file is empty")
    header, start = _header_sxm(name, data)
    warnings: list[str] = []
    for k in ("SCAN_PIXELS", "SCAN_RANGE", "DATA_INFO"):
        if k not in header:
            raise FileFormatError(name, f"header lacks {k}")
    px = header["SCAN_PIXELS"].split()
    if len(px) != 2:
        raise FileFormatError(name, f"SCAN_PIXELS = {header['SCAN_PIXELS'].strip()!r} is not 'nx ny'")
    nx = to_int(name, "SCAN_PIXELS", px[0], low=1)
    ny = to_int(name, "SCAN_PIXELS", px[1], low=1)
    kind = header.get("SCANIT_TYPE", "FLOAT MSBFIRST").split()
    if len(kind) != 2 or kind[0].upper() != "FLOAT" or kind[1].upper() not in ("MSBFIRST", "LSBFIRST"):
        raise FileFormatError(name, f"SCANIT_TYPE {header.get('SCANIT_TYPE', '').strip()!r} is not FLOAT "
                                    "MSBFIRST or LSBFIRST")
    dtype = ">f4" if kind[1].upper() == "MSBFIRST" else "<f4"
    info = _data_info(name, header["DATA_INFO"])
    planes: list[tuple[str, str, str]] = []
    for nm, unit, way in info:
        if way in ("both", "forward"):
            planes.append((nm, unit, "forward"))
        if way in ("both", "backward"):
            planes.append((f"{nm} [bwd]", unit, "backward"))
    names, _units, dup = unique_names(name, [p[0] for p in planes])
    warnings.extend(dup)
    plane = nx * ny
    body = memoryview(data)[start:]
    have = len(body) // 4
    need = plane * len(planes)
    if have < plane:
        raise FileFormatError(name, f"the data section holds {have} values, less than one {nx} × {ny} image")
    check_alloc(name, 8.0 * need, len(data), f"{len(planes)} images of {nx} × {ny}")
    if have < need:
        warnings.append(f"the file holds {have} of the {need} values the header announces (cut off): the rest "
                        "are NaN")
    elif len(body) > 4 * need + 16:
        warnings.append(f"{len(body) - 4 * need} bytes after the last image were ignored")
    raw = np.full(need, np.nan)
    n = min(have, need)
    with np.errstate(invalid="ignore", over="ignore"):
        raw[:n] = np.frombuffer(body, dtype=dtype, count=n)
    stack = raw.reshape(len(planes), ny, nx)
    scan_dir = header.get("SCAN_DIR", "down").strip().lower() or "down"
    if scan_dir not in ("up", "down"):
        warnings.append(f"SCAN_DIR {scan_dir!r} is neither up nor down: taken as down")
        scan_dir = "down"
    channels: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    direction: dict[str, str] = {}
    for ip, (nm, (_, unit, dirn)) in enumerate(zip(names, planes, strict=True)):
        a = stack[ip]
        if scan_dir == "down":
            a = a[::-1]                    # first stored line is the top one
        if dirn == "backward":
            a = a[:, ::-1]                 # backward lines are stored right to left
        channels[nm] = a.T                 # (nx, ny), [i, j] at (x[i], y[j]), y up
        units[nm] = unit
        direction[nm] = dirn
    rng = to_floats(name, "SCAN_RANGE", header["SCAN_RANGE"], sep=" ") if header["SCAN_RANGE"].strip() else []
    frame = None
    if len(rng) >= 2 and all(math.isfinite(v) and v > 0 for v in rng[:2]):
        off = to_floats(name, "SCAN_OFFSET", header.get("SCAN_OFFSET", "0 0"), sep=" ")
        ang = to_floats(name, "SCAN_ANGLE", header.get("SCAN_ANGLE", "0"), sep=" ")
        cx, cy = (off + [0.0, 0.0])[:2]
        angle = ang[0] if ang else 0.0
        if all(math.isfinite(v) for v in (cx, cy, angle)):
            frame = Frame(cx * 1e9, cy * 1e9, rng[0] * 1e9, rng[1] * 1e9, angle)
        else:
            warnings.append("SCAN_OFFSET or SCAN_ANGLE is not finite: no frame")
        width, height = rng[0] * 1e9, rng[1] * 1e9
        x = (np.arange(nx) + 0.5) * width / nx
        y = (np.arange(ny) + 0.5) * height / ny
    else:
        warnings.append(f"SCAN_RANGE = {header['SCAN_RANGE'].strip()!r} is not two positive sizes: x and y are "
                        "pixel indices")
        x, y = np.arange(nx, dtype=float), np.arange(ny, dtype=float)
    return Image(x=x, y=y, channels=channels, units=units, header=header, direction=direction, frame=frame,
                 scan_direction=scan_dir, path=name, warnings=warnings, format="nanonis_sxm",
                 sha256=sha256_of(data))
