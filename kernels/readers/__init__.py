"""Readers for instrument files: spectra, grids and images, detected from their content.

==========================  =========================  ===================================
format                      detected by                read with
==========================  =========================  ===================================
Nanonis ``.dat`` spectrum   a ``[DATA]`` line          :func:`read_spectrum`
Nanonis ``.3ds`` grid       ``Grid dim=`` header       :func:`read_grid`
Nanonis ``.sxm`` image      ``:NANONIS_VERSION:``      :func:`read_image`
Createc ``.VERT`` spectrum  ``[ParVERT…]``             :func:`read_spectrum`
RHK ``.sm4``                ``STiMage`` signature      :func:`read_spectrum` (line pages),
                                                       :func:`read_grid`, :func:`read_image`
CSV/TSV/TXT table           anything else that is text :func:`read_spectrum`
==========================  =========================  ===================================

Every reader either returns a complete object or raises one :class:`FileFormatError` (a
``ValueError``) whose message names the file and what is wrong; nothing half-read escapes,
and no reader allocates more than a bounded multiple of the file's size (``_common``).
The sweep axis (``bias``) is in mV for bias sweeps; a Z sweep (nm), a time trace (s) or another
sweep is read on its own axis, says so (``sweep``, ``sweep_unit``, ``kind``), and refuses
:meth:`Spectrum.conductance`.  Lateral coordinates are nm; channels keep the file's units.

Exports with provenance (CSV, NeXus/HDF5): :mod:`gapscope.kernels.readers.export`.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from . import createc, export, nanonis, rhk, text
from ._common import (
    ALLOC_FACTOR,
    ALLOC_SLACK,
    MAX_HEADER_BYTES,
    MAX_HEADER_LINES,
    SWEEP_UNITS,
    FileFormatError,
    Frame,
    Grid,
    Image,
    Spectrum,
    default_channel,
    differentiate,
    is_current,
    is_lockin,
    is_number,
    normalise,
    read_bytes,
    split_label,
)
from ._common import (
    _bwd_name as _bwd_name,
)
from .export import provenance, write_csv, write_nexus

__all__ = ["FileFormatError", "Spectrum", "Grid", "Image", "Frame", "read_spectrum", "read_grid", "read_image",
           "read_any", "detect_format", "write_grid", "write_dat", "write_csv", "write_nexus", "provenance",
           "differentiate", "normalise", "default_channel", "FORMATS", "MAX_HEADER_LINES", "ALLOC_FACTOR",
           "ALLOC_SLACK", "createc", "export", "nanonis", "rhk", "text"]

#: format key → what it is
FORMATS = {
    "nanonis_dat": "Nanonis .dat spectrum",
    "nanonis_3ds": "Nanonis .3ds grid",
    "nanonis_sxm": "Nanonis .sxm scan image",
    "createc_vert": "Createc .VERT spectrum",
    "rhk_sm4": "RHK .sm4 file",
    "text": "text table",
}
_DAT = re.compile(rb"(?m)^\[DATA\][ \t]*\r?$")

# the names widgets/ and older scripts use
_default_channel = default_channel
_split_label = split_label
_is_current = is_current
_is_lockin = is_lockin
_read_bytes = read_bytes
_is_number = is_number
_UNIT_TO_MV = SWEEP_UNITS["bias"][1]


def detect_format(data: bytes) -> str:
    """The format of a file's bytes (a key of :data:`FORMATS`), from its content, not its name."""
    head = data[:4096].removeprefix(b"\xef\xbb\xbf")
    if data[2:16] == rhk.SIGNATURE:
        return "rhk_sm4"
    if head.startswith(b":NANONIS_VERSION:"):
        return "nanonis_sxm"
    if head.startswith(b"[ParVERT"):
        return "createc_vert"
    if head.startswith(b"Grid dim=") or (b"Grid dim=" in head and data.find(b":HEADER_END:", 0, MAX_HEADER_BYTES)
                                         >= 0):
        return "nanonis_3ds"
    if _DAT.search(data, 0, MAX_HEADER_BYTES) or head.startswith(b"Experiment\t"):
        return "nanonis_dat"
    return "text"


def _load(path: str | os.PathLike, data: bytes | None) -> tuple[str, bytes, str]:
    raw = read_bytes(path, data)
    return str(path), raw, detect_format(raw)


def _wrong(name: str, fmt: str, wanted: str) -> FileFormatError:
    other = {"nanonis_3ds": "read_grid", "nanonis_sxm": "read_image"}.get(fmt, "read_spectrum")
    return FileFormatError(name, f"a {FORMATS[fmt]}, not {wanted}: read it with {other}")


def _dispatch(path: str | os.PathLike, data: bytes | None, readers: dict, not_text: str, wanted: str) -> Any:
    """Read ``path`` with the reader its detected format maps to in ``readers`` (format → reader(name, raw));
    a text file gets ``not_text``, another known format the name of the right reader."""
    name, raw, fmt = _load(path, data)
    if not raw:
        raise FileFormatError(name, "the file is empty")
    if fmt in readers:
        return readers[fmt](name, raw)
    if fmt == "text":
        raise FileFormatError(name, not_text)
    raise _wrong(name, fmt, wanted)


def read_spectrum(path: str | os.PathLike, *, data: bytes | None = None, bias_unit: str | None = None,
                  bias_column: str | int | None = None) -> Spectrum:
    """Read a spectrum: Nanonis ``.dat``, Createc ``.VERT``, RHK ``.sm4`` (line pages) or CSV/TXT.

    Parameters
    ----------
    path : path-like
        File to read (also used in messages when ``data`` is given).
    data : bytes, optional
        File contents (e.g. from an upload) instead of reading ``path``.
    bias_unit : str, optional
        Unit of a bias column without a unit ("V" or "mV"; default V for Nanonis, mV for text).
    bias_column : str or int, optional
        Which column of a text table is the x axis (default: one named like "bias"/"V", else
        the first).

    Returns
    -------
    Spectrum
        ``bias`` is the sweep axis (mV for a bias sweep; see ``sweep``, ``sweep_unit``, ``kind``).

    Raises
    ------
    FileFormatError
        With the file name and the problem.
    """
    name, raw, fmt = _load(path, data)
    if not raw.strip():
        raise FileFormatError(name, "the file is empty")
    if fmt == "nanonis_dat":
        return nanonis.read_dat(name, raw, bias_unit=bias_unit)
    if fmt == "createc_vert":
        return createc.read_vert(name, raw)
    if fmt == "rhk_sm4":
        return rhk.read_sm4_spectrum(name, raw)
    if fmt == "text":
        return text.read_text(name, raw, bias_unit=bias_unit, bias_column=bias_column)
    raise _wrong(name, fmt, "a spectrum")


def read_grid(path: str | os.PathLike, *, data: bytes | None = None) -> Grid:
    """Read grid spectroscopy: Nanonis ``.3ds`` (or an RHK ``.sm4`` grid).

    ``data[channel]`` is (nx, ny, nsweep); ``bias`` the sweep axis (mV for bias sweeps; a
    multi-segment sweep is piecewise); x and y are pixel-centre coordinates in nm in the grid
    frame (``frame``: centre, size, angle), from the recorded tip positions when the file has
    them; ``positions`` (nx, ny, 2) holds each pixel's absolute X, Y in nm.

    Raises
    ------
    FileFormatError
        With the file name and the problem.
    """
    return _dispatch(path, data, {"nanonis_3ds": nanonis.read_3ds, "rhk_sm4": rhk.read_sm4_grid},
                     "no ':HEADER_END:' line: not a .3ds grid (or its header is cut off)", "a grid")


def read_image(path: str | os.PathLike, *, data: bytes | None = None) -> Image:
    """Read a scan image: Nanonis ``.sxm`` (or the image pages of an RHK ``.sm4``).

    Returns an :class:`Image`: ``channels[name]`` (nx, ny) for every channel and direction
    (``"Z"``, ``"Z [bwd]"`` …; backward ones mirrored to the forward orientation), ``x``, ``y``
    pixel centres in nm (y up), ``units``, ``direction``, ``frame`` (for overlays:
    :meth:`Image.outline_of`).

    Raises
    ------
    FileFormatError
        With the file name and the problem.
    """
    return _dispatch(path, data, {"nanonis_sxm": nanonis.read_sxm, "rhk_sm4": rhk.read_sm4_image},
                     "not a scan image (no ':NANONIS_VERSION:' header)", "an image")


def read_any(path: str | os.PathLike, *, data: bytes | None = None) -> Spectrum | Grid | Image:
    """Read whatever the file holds: a Spectrum, a Grid or an Image (by its detected format).

    An RHK ``.sm4`` gives its spectra (a Grid if they fill its grid), else its images.
    """
    name, raw, fmt = _load(path, data)
    if fmt == "nanonis_3ds":
        return nanonis.read_3ds(name, raw)
    if fmt == "nanonis_sxm":
        return nanonis.read_sxm(name, raw)
    if fmt == "rhk_sm4":
        try:
            return rhk.read_sm4_grid(name, raw)
        except FileFormatError as exc:
            if "images only" in str(exc):
                return rhk.read_sm4_image(name, raw)
            if "no spectroscopy grid" not in str(exc):
                raise
        return rhk.read_sm4_spectrum(name, raw)
    return read_spectrum(name, data=raw)


# ----------------------------------------------------------------------------- writers
_SI = {"bias": ("V", 1e-3), "z": ("m", 1e-9), "time": ("s", 1.0), "frequency": ("Hz", 1.0)}


def write_dat(path: str | os.PathLike, spectrum: Spectrum) -> None:
    """Write a spectrum in the Nanonis ``.dat`` layout: the sweep first (bias in V, Z in m, time in s)."""
    header = dict(spectrum.header)
    if "Experiment" not in header:
        header = {"Experiment": {"bias": "bias spectroscopy", "z": "Z spectroscopy"}.get(spectrum.sweep, "sweep"),
                  **header}
    lines = [f"{k}\t{v}\t" for k, v in header.items()]
    unit, factor = _SI.get(spectrum.sweep, (spectrum.sweep_unit, 1.0))
    xname = spectrum.bias_channel or {"bias": "Bias calc", "z": "Z rel", "time": "Time"}.get(spectrum.sweep, "x")
    labels = [f"{xname} ({unit})" if unit else xname]
    cols = [np.asarray(spectrum.bias, dtype=float) * factor]
    for nm, vals in spectrum.channels.items():
        if nm == spectrum.bias_channel:
            continue
        u = spectrum.units.get(nm, "")
        labels.append(f"{nm} ({u})" if u else nm)
        cols.append(np.asarray(vals, dtype=float))
    out = io.StringIO()
    out.write("\n".join(lines) + "\n\n[DATA]\n" + "\t".join(labels) + "\n")
    for row in np.column_stack(cols):
        out.write("\t".join("NaN" if np.isnan(v) else f"{v:.7E}" for v in row) + "\n")
    Path(path).write_text(out.getvalue(), encoding="utf-8")


def _segments(v: np.ndarray) -> list[tuple[float, float, int]]:
    """Runs of equal steps in a sweep: (start, end, points) each (one run for a linear sweep)."""
    if v.size < 3:
        return [(float(v[0]), float(v[-1]), int(v.size))]
    out = []
    i = 0
    tol = 1e-6 * max(float(np.max(np.abs(v))), 1e-12)
    while i < v.size:
        j = i + 1
        if j < v.size:
            step = v[j] - v[i]
            while j + 1 < v.size and abs((v[j + 1] - v[j]) - step) <= tol:
                j += 1
        else:
            j = i
        out.append((float(v[i]), float(v[j]), j - i + 1))
        i = j + 1
    return out


def write_grid(path: str | os.PathLike, grid: Grid) -> None:
    """Write a bias grid in the Nanonis ``.3ds`` layout (big-endian float32, x fastest per line).

    The frame is the grid's own (``grid.frame``), else an unrotated one whose lower-left corner
    is the origin of ``x``, ``y``; the recorded positions are the pixels' absolute coordinates
    in that frame, so :func:`read_grid` gives back ``x`` and ``y``.
    """
    if grid.sweep != "bias":
        raise ValueError(f"write_grid writes bias grids only (this one sweeps {grid.sweep})")
    nx, ny = grid.x.size, grid.y.size
    chans = list(grid.data)
    npts = grid.bias.size
    frame = grid.frame
    if frame is None:
        px = float(grid.x[1] - grid.x[0]) if nx > 1 else 1.0
        py = float(grid.y[1] - grid.y[0]) if ny > 1 else 1.0
        w = max(float(grid.x[-1]) + px, px)
        h = max(float(grid.y[-1]) + py, py)
        frame = Frame(w / 2, h / 2, w, h, 0.0)
    X, Y = np.meshgrid(grid.x, grid.y, indexing="ij")
    absolute = frame.to_absolute(np.stack([X, Y], axis=-1))
    par_names = ["Sweep Start", "Sweep End", "X (m)", "Y (m)"]
    segments = _segments(np.asarray(grid.bias, dtype=float) / 1e3)
    mls = []
    if len(segments) > 1:
        mls = ["Filetype=MLS",
               "Segment Start (V), Segment End (V), Settling (s), Integration (s), Steps (xn), Lockin, "
               "Init. Settling (s)=" + ";".join(f"{a:.9E},{b:.9E},0E+0,0E+0,{n},0E+0,0E+0" for a, b, n in segments)]
    header = [
        f'Grid dim="{nx} x {ny}"',
        f"Grid settings={frame.center_x * 1e-9:.9E};{frame.center_y * 1e-9:.9E};{frame.width * 1e-9:.9E};"
        f"{frame.height * 1e-9:.9E};{frame.angle:.9E}",
        'Sweep Signal="Bias (V)"',
        'Fixed parameters="Sweep Start;Sweep End"',
        'Experiment parameters="X (m);Y (m)"',
        f"# Parameters (4 byte)={len(par_names)}",
        f"Experiment size (bytes)={npts * len(chans) * 4}",
        f"Points={npts}",
        'Channels="' + ";".join(f"{c} ({grid.units.get(c, '')})" for c in chans) + '"',
        "Experiment=Grid Spectroscopy",
        *mls,
    ]
    pix = np.empty((nx, ny, len(par_names) + npts * len(chans)))
    pix[:, :, 0] = grid.bias[0] / 1e3
    pix[:, :, 1] = grid.bias[-1] / 1e3
    pix[:, :, 2] = absolute[..., 0] * 1e-9
    pix[:, :, 3] = absolute[..., 1] * 1e-9
    for k, c in enumerate(chans):
        pix[:, :, 4 + k * npts: 4 + (k + 1) * npts] = grid.data[c]
    body = pix.transpose(1, 0, 2).astype(">f4").tobytes()
    Path(path).write_bytes(("\r\n".join(header) + "\r\n:HEADER_END:\r\n").encode("latin-1") + body)
