"""Readers for measured spectra: CSV/TXT, Nanonis ``.dat`` bias spectroscopy, Nanonis ``.3ds`` grids.

Every reader either returns a complete object or raises one :class:`FileFormatError` (a
``ValueError``) whose message names the file and what is wrong; nothing half-read escapes.
Biases are returned in mV; channels keep the units of the file (``units`` maps channel → unit).

Nanonis formats (as written by the controllers):

* ``.dat``: tab-separated ``key<TAB>value`` header lines (keys may repeat), a ``[DATA]`` line,
  then a tab-separated table whose first row holds ``Name (unit)`` labels; trailing tabs and
  ``NaN`` values occur; forward/backward (``[bwd]``) and filtered (``[filt]``) channels.
* ``.3ds``: ``key=value`` header lines up to ``:HEADER_END:\\r\\n``, then per pixel (x fastest
  within each line) big-endian float32 values: the per-pixel parameters, then each channel's
  points.  Incomplete grids end early; the missing pixels read as NaN.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FileFormatError", "Spectrum", "Grid", "read_spectrum", "read_grid", "write_grid", "write_dat",
           "differentiate", "normalise", "MAX_HEADER_LINES"]

#: a header longer than this is not a spectroscopy file
MAX_HEADER_LINES = 5000
_UNIT_TO_MV = {"V": 1e3, "mV": 1.0, "uV": 1e-3, "µV": 1e-3, "μV": 1e-3}
_LABEL = re.compile(r"\(([^()]*)\)")


class FileFormatError(ValueError):
    """A file that is not a readable spectrum or grid; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike | None, problem: str) -> None:
        self.path = str(path) if path is not None else "<data>"
        self.problem = problem
        super().__init__(f"{Path(self.path).name}: {problem}")


@dataclass
class Spectrum:
    """One bias spectrum: ``bias`` in mV, ``channels`` name → values, ``units`` name → unit."""

    bias: np.ndarray
    channels: dict[str, np.ndarray]
    units: dict[str, str]
    header: dict[str, str]
    path: str = ""
    bias_channel: str = ""
    warnings: list[str] = field(default_factory=list)

    def channel(self, name: str) -> np.ndarray:
        try:
            return self.channels[name]
        except KeyError:
            raise KeyError(f"no channel {name!r}; channels are {list(self.channels)}") from None

    def forward_backward_mean(self, name: str) -> np.ndarray:
        """Mean of a channel and its ``[bwd]`` partner (NaN-aware), or the channel alone."""
        fwd = self.channel(name)
        bwd_name = _bwd_name(name)
        if bwd_name not in self.channels:
            return fwd
        return np.nanmean(np.vstack([fwd, self.channels[bwd_name]]), axis=0)

    def conductance(self, *, channel: str | None = None, normalise_above: float | None = None) -> np.ndarray:
        """dI/dV from a lock-in channel, or numerically from a current channel.

        ``channel`` defaults to the first lock-in-like channel (``LI``, ``Lock``, ``dI/dV``,
        ``X``), else the first current channel (differentiated).  ``normalise_above`` (mV)
        divides by the mean conductance at |V| ≥ that bias.
        """
        name = channel or _default_channel(self)
        y = self.forward_backward_mean(name)
        if _is_current(name, self.units.get(name, "")):
            y = differentiate(self.bias, y)
        if normalise_above is not None:
            y = normalise(self.bias, y, above=normalise_above)
        return y


@dataclass
class Grid:
    """Grid spectroscopy: ``data[name]`` is (nx, ny, nbias); ``x``, ``y`` in nm (grid frame)."""

    bias: np.ndarray
    x: np.ndarray
    y: np.ndarray
    data: dict[str, np.ndarray]
    units: dict[str, str]
    header: dict[str, str]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    positions: np.ndarray | None = None
    path: str = ""
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers
def _bwd_name(name: str) -> str:
    if "[filt]" in name:
        return name.replace("[filt]", "[bwd] [filt]")
    return f"{name} [bwd]"


def _split_label(label: str) -> tuple[str, str]:
    """'Input 3 (A) [filt]' → ('Input 3 [filt]', 'A')."""
    m = _LABEL.search(label)
    if not m:
        return label.strip(), ""
    name = (label[:m.start()] + label[m.end():]).strip()
    return re.sub(r"\s+", " ", name), m.group(1).strip()


def _is_current(name: str, unit: str) -> bool:
    return unit == "A" or name.lower().startswith("current")


def _default_channel(s: Spectrum) -> str:
    names = [n for n in s.channels if n != s.bias_channel and "[bwd]" not in n and "[filt]" not in n]
    for n in names:
        low = n.lower()
        if any(k in low for k in ("lix", "li demod", "lock", "didv", "di/dv", "conductance")):
            return n
    for n in names:
        if _is_current(n, s.units.get(n, "")):
            return n
    if names:
        return names[0]
    raise KeyError("the spectrum has no data channel besides the bias")


def differentiate(bias: np.ndarray, current: np.ndarray) -> np.ndarray:
    """dI/dV by centred differences on the (possibly non-uniform) bias grid; NaN-safe."""
    b = np.asarray(bias, dtype=float)
    c = np.asarray(current, dtype=float)
    if b.size < 3:
        raise ValueError("differentiate needs at least three points")
    order = np.argsort(b)
    d = np.empty_like(c)
    d[order] = np.gradient(c[order], b[order])
    return d


def normalise(bias: np.ndarray, g: np.ndarray, *, above: float) -> np.ndarray:
    """Divide by the mean of g over |V| ≥ ``above`` (the normal-state conductance)."""
    b = np.asarray(bias, dtype=float)
    g = np.asarray(g, dtype=float)
    sel = (np.abs(b) >= above) & np.isfinite(g)
    if not np.any(sel):
        raise ValueError(f"no finite points with |V| ≥ {above} mV to normalise by")
    ref = float(np.mean(g[sel]))
    if ref == 0.0:
        raise ValueError("the normal-state conductance is zero; cannot normalise")
    return g / ref


def _read_bytes(path: str | os.PathLike, data: bytes | None) -> bytes:
    if data is not None:
        return data
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise FileFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read ({exc.strerror or exc})") from None


def _read_text(path: str | os.PathLike, data: bytes | None) -> tuple[str, str]:
    name = str(path)
    data = _read_bytes(path, data)
    if not data.strip():
        raise FileFormatError(path, "the file is empty")
    sample = data[:65536]
    if b"\x00" in sample:
        raise FileFormatError(path, "binary data where a text spectrum was expected (NUL bytes)")
    bad = sum(1 for ch in sample if ch < 9 or 13 < ch < 32)
    if bad > 0.01 * len(sample):
        raise FileFormatError(path, "not a text file (control characters)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return name, text


# ----------------------------------------------------------------------------- spectra
def read_spectrum(path: str | os.PathLike, *, data: bytes | None = None, bias_unit: str | None = None,
                  bias_column: str | int | None = None) -> Spectrum:
    """Read a bias spectrum: Nanonis ``.dat`` (detected by its ``[DATA]`` line) or CSV/TXT.

    Parameters
    ----------
    path : path-like
        File to read (also used in messages when ``data`` is given).
    data : bytes, optional
        File contents (e.g. from an upload) instead of reading ``path``.
    bias_unit : str, optional
        Unit of the bias column of a CSV/TXT without units in its header ("V" or "mV").
    bias_column : str or int, optional
        Which column is the bias (default: a column named like "bias"/"V", else the first).

    Raises
    ------
    FileFormatError
        With the file name and the problem.
    """
    name, text = _read_text(path, data)
    lines = text.splitlines()
    i_data = next((i for i, line in enumerate(lines) if line.strip() == "[DATA]"), None)
    if i_data is not None:
        if i_data > MAX_HEADER_LINES:
            raise FileFormatError(name, f"header of {i_data} lines before [DATA] (more than {MAX_HEADER_LINES})")
        return _read_dat(name, lines, i_data)
    if lines and lines[0].split("\t")[0].strip() == "Experiment":
        raise FileFormatError(name, "Nanonis header without a [DATA] section (truncated or not a spectrum)")
    return _read_csv(name, text, bias_unit=bias_unit, bias_column=bias_column)


def _parse_rows(name: str, rows: Iterable[str], ncol: int, first_line: int, sep: str | None) -> np.ndarray:
    out = []
    for k, raw in enumerate(rows):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in (line.split(sep) if sep else line.split())]
        if sep:
            parts = [p.strip() for p in parts]
            while parts and parts[-1] == "":
                parts.pop()
        if len(parts) != ncol:
            raise FileFormatError(name, f"line {first_line + k}: {len(parts)} values, expected {ncol} "
                                        "(truncated or malformed table)")
        try:
            out.append([float(p) if p not in ("", "N/A") else np.nan for p in parts])
        except ValueError:
            bad = next(p for p in parts if not _is_number(p))
            raise FileFormatError(name, f"line {first_line + k}: {bad!r} is not a number") from None
    if not out:
        raise FileFormatError(name, "no data rows")
    return np.array(out, dtype=float)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return s in ("", "N/A")


def _read_dat(name: str, lines: list[str], i_data: int) -> Spectrum:
    header: dict[str, str] = {}
    warnings: list[str] = []
    repeated: dict[str, int] = {}
    for line in lines[:i_data]:
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
    if i_data + 1 >= len(lines) or not lines[i_data + 1].strip():
        raise FileFormatError(name, "[DATA] section has no column labels")
    labels = [c for c in lines[i_data + 1].rstrip("\r\n").split("\t")]
    while labels and not labels[-1].strip():
        labels.pop()
    if not labels:
        raise FileFormatError(name, "[DATA] section has no column labels")
    if any(_is_number(c.strip()) and c.strip() for c in labels):
        raise FileFormatError(name, "the line after [DATA] holds numbers, not column labels")
    table = _parse_rows(name, lines[i_data + 2:], len(labels), i_data + 3, "\t")
    return _assemble(name, labels, table, header, warnings, bias_unit=None, bias_column=None)


def _assemble(name: str, labels: list[str], table: np.ndarray, header: dict[str, str], warnings: list[str], *,
              bias_unit: str | None, bias_column: str | int | None) -> Spectrum:
    channels: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for k, lab in enumerate(labels):
        nm, unit = _split_label(lab)
        if not nm:
            nm = f"column {k + 1}"
        base, j = nm, 2
        while nm in channels:
            nm = f"{base} ({j})"
            j += 1
        channels[nm] = table[:, k]
        units[nm] = unit
    names = list(channels)
    if isinstance(bias_column, int):
        if not -len(names) <= bias_column < len(names):
            raise FileFormatError(name, f"bias column {bias_column} does not exist ({len(names)} columns)")
        bname = names[bias_column]
    elif isinstance(bias_column, str):
        if bias_column not in channels:
            raise FileFormatError(name, f"no column {bias_column!r}; columns are {names}")
        bname = bias_column
    else:
        cands = [n for n in names if n.lower().startswith(("bias", "v ", "voltage", "sample bias")) or n.lower() in
                 ("v", "bias", "u", "energy")]
        bname = cands[0] if cands else names[0]
    unit = units[bname] or (bias_unit or "")
    if bias_unit and units[bname] and bias_unit != units[bname]:
        raise FileFormatError(name, f"bias unit declared {bias_unit!r} but the file says {units[bname]!r}")
    if not unit:
        unit = "mV"
        warnings.append("no unit for the bias column: taken as mV (declare bias_unit='V' if it is volts)")
    if unit not in _UNIT_TO_MV:
        raise FileFormatError(name, f"bias unit {unit!r} is not a voltage (V, mV, µV)")
    units[bname] = unit
    bias = channels[bname] * _UNIT_TO_MV[unit]
    if not np.all(np.isfinite(bias)):
        raise FileFormatError(name, "the bias column contains NaN or non-numbers")
    if len(channels) < 2:
        raise FileFormatError(name, "only one column: need a bias and at least one data channel")
    return Spectrum(bias=bias, channels=channels, units=units, header=header, path=name, bias_channel=bname,
                    warnings=warnings)


def _read_csv(name: str, text: str, *, bias_unit: str | None, bias_column: str | int | None) -> Spectrum:
    lines = [ln for ln in text.splitlines()]
    body = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not body:
        raise FileFormatError(name, "no data rows")
    try:
        dialect = csv.Sniffer().sniff("\n".join(body[:20]), delimiters=",;\t")
        sep: str | None = dialect.delimiter
    except csv.Error:
        sep = None                         # whitespace separated
    first = body[0]
    cells = [c.strip() for c in (first.split(sep) if sep else first.split())]
    while cells and cells[-1] == "":
        cells.pop()
    has_header = not all(_is_number(c) and c for c in cells)
    labels = cells if has_header else [f"column {k + 1}" for k in range(len(cells))]
    if not has_header:
        labels[0] = "bias"
        if len(labels) > 1:
            labels[1] = "signal"
    start = lines.index(first) + (1 if has_header else 0)
    table = _parse_rows(name, lines[start:], len(labels), start + 1, sep)
    header = {"format": "text table", "delimiter": repr(sep) if sep else "whitespace"}
    return _assemble(name, labels, table, header, [], bias_unit=bias_unit, bias_column=bias_column)


def write_dat(path: str | os.PathLike, spectrum: Spectrum) -> None:
    """Write a spectrum in the Nanonis ``.dat`` layout (bias in V)."""
    lines = [f"{k}\t{v}\t" for k, v in spectrum.header.items()]
    labels, cols = [], []
    for nm, vals in spectrum.channels.items():
        unit = spectrum.units.get(nm, "")
        if nm == spectrum.bias_channel:
            vals, unit = spectrum.bias / 1e3, "V"
        labels.append(f"{nm} ({unit})" if unit else nm)
        cols.append(vals)
    out = io.StringIO()
    out.write("\n".join(lines) + "\n\n[DATA]\n" + "\t".join(labels) + "\n")
    for row in np.column_stack(cols):
        out.write("\t".join("NaN" if np.isnan(x) else f"{x:.6E}" for x in row) + "\n")
    Path(path).write_text(out.getvalue(), encoding="utf-8")


# ----------------------------------------------------------------------------- grids
_REQUIRED_3DS = ("Grid dim", "Points", "Channels", "# Parameters (4 byte)")


def read_grid(path: str | os.PathLike, *, data: bytes | None = None) -> Grid:
    """Read a Nanonis ``.3ds`` grid: ``data[channel]`` (nx, ny, nbias), bias in mV, x/y in nm.

    x and y are the grid-frame coordinates (0 … width, 0 … height, from ``Grid settings``);
    ``positions`` (nx, ny, 2) holds each pixel's absolute X, Y in nm when the file records them.

    Raises
    ------
    FileFormatError
        With the file name and the problem.
    """
    name = str(path)
    data = _read_bytes(path, data)
    if not data:
        raise FileFormatError(name, "the file is empty")
    end = data.find(b":HEADER_END:")
    if end < 0:
        raise FileFormatError(name, "no ':HEADER_END:' line (not a .3ds grid, or truncated header)")
    head = data[:end].decode("latin-1")
    body_start = data.find(b"\n", end)
    body = data[body_start + 1:] if body_start >= 0 else b""
    header: dict[str, str] = {}
    hlines = head.splitlines()
    if len(hlines) > MAX_HEADER_LINES:
        raise FileFormatError(name, f"header longer than {MAX_HEADER_LINES} lines")
    for line in hlines:
        if "=" in line:
            k, v = line.split("=", 1)
            header.setdefault(k.strip(), v.strip().strip('"'))
    missing = [k for k in _REQUIRED_3DS if k not in header]
    if missing:
        raise FileFormatError(name, f"header lacks {', '.join(missing)}")
    try:
        nx, ny = (int(t) for t in header["Grid dim"].lower().replace(" ", "").split("x"))
        npts = int(header["Points"])
        npar = int(header["# Parameters (4 byte)"])
    except ValueError:
        raise FileFormatError(name, "Grid dim, Points or '# Parameters (4 byte)' is not a number") from None
    if nx <= 0 or ny <= 0 or npts <= 0 or npar < 2:
        raise FileFormatError(name, f"impossible grid size {nx}×{ny}, {npts} points, {npar} parameters")
    chans = [c for c in header["Channels"].split(";") if c]
    if not chans:
        raise FileFormatError(name, "no channels listed")
    per_pixel = npar + npts * len(chans)
    nfloat = len(body) // 4
    expected = nx * ny * per_pixel
    warnings: list[str] = []
    if nfloat < per_pixel:
        raise FileFormatError(name, f"the data section holds {nfloat} values, less than one pixel ({per_pixel})")
    raw = np.frombuffer(body[:4 * min(nfloat, expected)], dtype=">f4").astype(float)
    if nfloat < expected:
        done = nfloat // per_pixel
        warnings.append(f"incomplete grid: {done} of {nx * ny} pixels measured; the rest are NaN")
        raw = np.concatenate([raw[:done * per_pixel], np.full(expected - done * per_pixel, np.nan)])
    elif len(body) > 4 * expected + 16:
        warnings.append(f"{len(body) - 4 * expected} bytes after the last pixel were ignored")
    pix = raw.reshape(ny, nx, per_pixel).transpose(1, 0, 2)       # file: x fastest within each line
    par_names = _param_names(header, npar)
    params = {n: pix[:, :, k] for k, n in enumerate(par_names)}
    d: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for ic, lab in enumerate(chans):
        nm, unit = _split_label(lab)
        d[nm] = pix[:, :, npar + ic * npts: npar + (ic + 1) * npts]
        units[nm] = unit
    start, stop = _first_finite(name, pix[:, :, 0]), _first_finite(name, pix[:, :, 1])
    sweep_name, sweep_unit = _split_label(header.get("Sweep Signal", "Bias (V)"))
    if sweep_unit not in _UNIT_TO_MV:
        raise FileFormatError(name, f"the sweep signal {header.get('Sweep Signal')!r} is not a bias in volts")
    bias = np.linspace(start, stop, npts) * _UNIT_TO_MV[sweep_unit]
    gs = [float(t) for t in header.get("Grid settings", "").split(";") if t.strip()] \
        if header.get("Grid settings") else []
    if len(gs) >= 4:
        width, height = gs[2] * 1e9, gs[3] * 1e9
    else:
        width, height = float(nx - 1), float(ny - 1)
        warnings.append("no 'Grid settings' in the header: x and y are pixel indices")
    x = np.linspace(0.0, width, nx)
    y = np.linspace(0.0, height, ny)
    positions = None
    if "X (m)" in params and "Y (m)" in params:
        positions = np.stack([params["X (m)"], params["Y (m)"]], axis=-1) * 1e9
    units[sweep_name] = sweep_unit
    return Grid(bias=bias, x=x, y=y, data=d, units=units, header=header, params=params, positions=positions,
                path=name, warnings=warnings)


def _first_finite(name: str, a: np.ndarray) -> float:
    v = a[np.isfinite(a)]
    if v.size == 0:
        raise FileFormatError(name, "no pixel records its sweep start and end")
    return float(v.flat[0])


def _param_names(header: Mapping[str, str], npar: int) -> list[str]:
    names = [n for n in header.get("Fixed parameters", "Sweep Start;Sweep End").split(";") if n]
    names += [n for n in header.get("Experiment parameters", "").split(";") if n]
    if len(names) < npar:
        names += [f"parameter {k + 1}" for k in range(len(names), npar)]
    return names[:npar]


def write_grid(path: str | os.PathLike, grid: Grid) -> None:
    """Write a grid in the Nanonis ``.3ds`` layout (big-endian float32, x fastest per line)."""
    nx, ny = grid.x.size, grid.y.size
    chans = list(grid.data)
    npts = grid.bias.size
    par_names = ["Sweep Start", "Sweep End", "X (m)", "Y (m)"]
    width = float(grid.x[-1] - grid.x[0])
    height = float(grid.y[-1] - grid.y[0])
    header = [
        f'Grid dim="{nx} x {ny}"',
        f"Grid settings={0:.6E};{0:.6E};{width * 1e-9:.6E};{height * 1e-9:.6E};{0:.6E}",
        'Sweep Signal="Bias (V)"',
        'Fixed parameters="Sweep Start;Sweep End"',
        'Experiment parameters="X (m);Y (m)"',
        f"# Parameters (4 byte)={len(par_names)}",
        f"Experiment size (bytes)={npts * len(chans) * 4}",
        f"Points={npts}",
        'Channels="' + ";".join(f"{c} ({grid.units.get(c, '')})" for c in chans) + '"',
        "Experiment=Grid Spectroscopy",
    ]
    pix = np.empty((nx, ny, len(par_names) + npts * len(chans)))
    pix[:, :, 0] = grid.bias[0] / 1e3
    pix[:, :, 1] = grid.bias[-1] / 1e3
    X, Y = np.meshgrid(grid.x, grid.y, indexing="ij")
    pix[:, :, 2] = X * 1e-9
    pix[:, :, 3] = Y * 1e-9
    for k, c in enumerate(chans):
        pix[:, :, 4 + k * npts: 4 + (k + 1) * npts] = grid.data[c]
    body = pix.transpose(1, 0, 2).astype(">f4").tobytes()
    Path(path).write_bytes(("\r\n".join(header) + "\r\n:HEADER_END:\r\n").encode("latin-1") + body)
