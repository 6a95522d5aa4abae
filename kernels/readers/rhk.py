"""RHK ``.sm4`` files (RHK Technology R9/XPMPro): spectra, spectroscopy grids and images.

Layout (little-endian): a uint16 header size, the UTF-16 signature ``STiMage 005.00x 1``, page
count, object-list count and object size; a list of objects (id, offset, size: uint32 each)
— the page index header (id 1) leads to the page index array (id 2), one entry per page
(16-byte id, data type: 0 image, 1 line; source type; object count; minor version) with its
objects: page header (3), page data (4).  A page header holds (uint16 field size, string
count, then uint32) page type, sub-source, line type, x/y corner, x size, y size, image
type, scan type, group id, data size, min/max z, (float32) x, y, z, xy scale, x, y, z offset,
period, bias, current, angle, (uint32) colour-info count, grid x/y size, object count, flags,
and its own objects: strings (10: label, …, x unit, y unit, z unit, x label, …), spectrum
drift data (8: per spectrum time, x, y, … as float32).  Page data are int32 (float32 for
some line types) scaled as ``value = raw·z scale + z offset``; a line page holds ``y size``
spectra of ``x size`` points on the axis ``x offset + x scale·i``.

The x axis's unit decides the sweep: V → bias, m → Z, s → time (RHK also labels I(z) pages
with the I-V line type; the unit is what the file measured).  Checked on two real files (an
I(z) page, and a dI/dV + I(V) pair of pages); image pages and grids follow the same layout
but no real RHK image or grid file was available to check their orientation against.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from ._common import (
    FileFormatError,
    Frame,
    Grid,
    Image,
    Spectrum,
    classify_sweep,
    recognise_measurement,
    sha256_of,
    unique_names,
)

__all__ = ["read_sm4_spectrum", "read_sm4_grid", "read_sm4_image", "SIGNATURE"]

SIGNATURE = "STiMage".encode("utf-16-le")
_FLOAT_LINES = {1, 6, 9, 10, 11, 13, 18, 19, 21, 22}
_STRING_NAMES = ("label", "system", "session", "user", "filename", "date", "time", "x_unit", "y_unit", "z_unit",
                 "x_label", "y_label", "status_channel", "completed_lines", "oversampling", "sliced_voltage",
                 "pll_status", "setpoint_unit", "drive_values")


class _Buf:
    """Bounds-checked little-endian reads from the file's bytes; every overrun is a FileFormatError."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self.data = name, data

    def unpack(self, fmt: str, off: int, what: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if off < 0 or off + size > len(self.data):
            raise FileFormatError(self.name, f"{what} at byte {off} lies beyond the end of the file "
                                             f"({len(self.data)} bytes): truncated or corrupt")
        return struct.unpack_from("<" + fmt, self.data, off)

    def objects(self, off: int, count: int, what: str) -> list[tuple[int, int, int]]:
        if not 0 <= count <= 256:
            raise FileFormatError(self.name, f"{what} lists {count} objects (at most 256 are sensible)")
        out = []
        for k in range(count):
            oid, o, s = self.unpack("3I", off + 12 * k, f"{what} object {k + 1}")
            if s and (o + s > len(self.data)):
                raise FileFormatError(self.name, f"{what} object {oid} ({s} bytes at {o}) lies beyond the end of "
                                                 "the file: truncated or corrupt")
            out.append((oid, o, s))
        return out

    def string(self, off: int, what: str) -> tuple[str, int]:
        (n,) = self.unpack("H", off, what)
        end = off + 2 + 2 * n
        if end > len(self.data):
            raise FileFormatError(self.name, f"{what} ({n} characters at {off}) runs beyond the end of the file")
        return self.data[off + 2:end].decode("utf-16-le", errors="replace").rstrip("\x00"), end


class _Page:
    """One page: its header numbers, strings, scaled values (ys, xs) and x axis."""

    def __init__(self) -> None:
        self.strings: dict[str, str] = {}
        self.values: np.ndarray = np.empty(0)
        self.axis: np.ndarray = np.empty(0)
        self.positions: np.ndarray | None = None
        self.dtype = self.minor = self.page_type = self.line_type = self.scan_type = 0
        self.xs = self.ys = self.grid_x = self.grid_y = 0
        self.xscale = self.yscale = self.xoffset = self.yoffset = 0.0
        self.period = self.bias = self.current = self.angle = 0.0


def _pages(name: str, data: bytes) -> tuple[list[_Page], dict[str, str], list[str]]:
    b = _Buf(name, data)
    if len(data) < 58 or data[2:16] != SIGNATURE:
        raise FileFormatError(name, "no 'STiMage' signature: not an RHK .sm4 file")
    (hsize,) = b.unpack("H", 0, "file header size")
    sig = data[2:38].decode("utf-16-le", errors="replace").rstrip("\x00")
    _pc, nobj, fsize = b.unpack("3I", 38, "file header")
    if fsize != 12:
        raise FileFormatError(name, f"object field size {fsize}, not 12: an .sm4 layout this reader does not know")
    objs = b.objects(2 + hsize, nobj, "file header")
    pih = next((o for o in objs if o[0] == 1), None)
    if pih is None:
        raise FileFormatError(name, "no page index header")
    npages, nobj2 = b.unpack("2I", pih[1], "page index header")
    if not 1 <= npages <= 4096:
        raise FileFormatError(name, f"the page index lists {npages} pages")
    pia = next((o for o in b.objects(pih[1] + 16, nobj2, "page index header") if o[0] == 2), None)
    if pia is None:
        raise FileFormatError(name, "no page index array")
    header = {"signature": sig, "pages": str(npages)}
    warnings: list[str] = []
    pages: list[_Page] = []
    off = pia[1]
    for p in range(npages):
        dtype, _src, nobj3, minor = b.unpack("4I", off + 16, f"page index entry {p + 1}")
        pobjs = b.objects(off + 32, nobj3, f"page {p + 1} index")
        off += 32 + 12 * nobj3
        if dtype not in (0, 1):
            warnings.append(f"page {p + 1}: data type {dtype} (not image or line) skipped")
            continue
        ph = next((o for o in pobjs if o[0] == 3), None)
        pd = next((o for o in pobjs if o[0] == 4), None)
        if ph is None or pd is None:
            raise FileFormatError(name, f"page {p + 1} has no page header or no page data")
        pg = _Page()
        pg.dtype, pg.minor = dtype, minor
        o = ph[1]
        _fs, nstr = b.unpack("2H", o, f"page {p + 1} header")
        (pg.page_type, _sub, pg.line_type, _xc, _yc, xs, ys, _it, pg.scan_type, _gid, dsize, _zmin,
         _zmax) = b.unpack("13I", o + 4, f"page {p + 1} header")
        (pg.xscale, pg.yscale, zscale, _xy, pg.xoffset, pg.yoffset, zoffset, pg.period, pg.bias, pg.current,
         pg.angle) = b.unpack("11f", o + 56, f"page {p + 1} header")
        _ci, pg.grid_x, pg.grid_y, nobj4 = b.unpack("4I", o + 100, f"page {p + 1} header")
        hobjs = b.objects(o + 180, nobj4, f"page {p + 1} header")
        if not (1 <= xs <= 2**24 and 1 <= ys <= 2**24):
            raise FileFormatError(name, f"page {p + 1}: impossible size {xs} × {ys}")
        scales = (pg.xscale, pg.yscale, zscale, pg.xoffset, pg.yoffset, zoffset)
        if not all(math.isfinite(v) for v in scales):
            raise FileFormatError(name, f"page {p + 1}: a scale or offset of the header is not finite")
        rows = ys + 1 if pg.line_type == 22 and dtype == 1 else ys
        need = 4 * xs * rows
        if dsize != need or pd[2] < need or pd[1] + need > len(data):
            raise FileFormatError(name, f"page {p + 1}: {xs} × {rows} values need {need} bytes; the header says "
                                        f"{dsize} and the page data object holds {pd[2]} (corrupt or truncated)")
        if not 0 <= nstr <= 256:
            raise FileFormatError(name, f"page {p + 1} lists {nstr} strings")
        for oid, so, ssize in hobjs:
            if oid == 10 and ssize:
                q = so
                for k in range(nstr):
                    s, q = b.string(q, f"page {p + 1} string {k + 1}")
                    pg.strings[_STRING_NAMES[k] if k < len(_STRING_NAMES) else f"string {k + 1}"] = s
            elif oid == 8 and ssize:
                n = ssize // 28
                if n >= 1:
                    arr = np.frombuffer(data, dtype="<f4", count=7 * n, offset=so).reshape(n, 7)
                    pg.positions = arr[:, 1:3].astype(float) * 1e9          # absolute X, Y in nm
        raw_dtype = "<f4" if (pg.line_type in _FLOAT_LINES and dtype == 1) else "<i4"
        raw = np.frombuffer(data, dtype=raw_dtype, count=xs * rows, offset=pd[1]).astype(float)
        if pg.line_type == 22 and dtype == 1:
            tmp = raw.reshape(xs, ys + 1).T
            pg.axis, pg.values = tmp[0].copy(), tmp[1:] * zscale + zoffset
        else:
            pg.values = raw.reshape(ys, xs) * zscale + zoffset
            pg.axis = pg.xoffset + pg.xscale * np.arange(xs)
        pg.xs, pg.ys = xs, ys
        pages.append(pg)
    if not pages:
        raise FileFormatError(name, "no image or spectrum pages")
    return pages, header, warnings


def _line_group(name: str, pages: list[_Page], warnings: list[str]) -> list[_Page]:
    lines = [p for p in pages if p.dtype == 1]
    if not lines:
        raise FileFormatError(name, "the file holds images only, no spectra: read it with read_image")
    first = lines[0]
    same = [p for p in lines if p.xs == first.xs and p.strings.get("x_unit") == first.strings.get("x_unit")
            and np.allclose(p.axis, first.axis, rtol=1e-6, atol=0)]
    if len(same) < len(lines):
        warnings.append(f"{len(lines) - len(same)} spectrum page(s) on another x axis were left out")
    return same


def _sweep(name: str, page: _Page) -> tuple[str, str, float, str, str]:
    unit = page.strings.get("x_unit", "").strip()
    label = page.strings.get("x_label", "").strip() or {7: "Bias", 8: "Z", 24: "Time"}.get(page.line_type, "x")
    got = classify_sweep(label, unit)
    if got is None or (got[1] == "" and got[0] != "other"):
        return "other", unit, 1.0, label, unit
    return got[0], got[1], got[2], label, unit


def _common_header(header: dict[str, str], page: _Page) -> dict[str, str]:
    out = dict(header)
    out.update({k: v for k, v in page.strings.items() if k != "drive_values"})
    out.update({"bias (V)": f"{page.bias:.6g}", "current (A)": f"{page.current:.6g}",
                "period (s)": f"{page.period:.6g}", "page type": str(page.page_type),
                "line type": str(page.line_type), "grid": f"{page.grid_x} x {page.grid_y}"})
    return out


def read_sm4_spectrum(name: str, data: bytes) -> Spectrum:
    """The spectra of an ``.sm4`` file: one channel per page (per trace, plus their mean)."""
    pages, header, warnings = _pages(name, data)
    group = _line_group(name, pages, warnings)
    sweep, sunit, factor, xlabel, xunit = _sweep(name, group[0])
    labels = [p.strings.get("label", "").strip() or f"page {k + 1}" for k, p in enumerate(group)]
    names, _u, dup = unique_names(name, [f"{lab}" for lab in labels])
    warnings.extend(dup)
    channels: dict[str, np.ndarray] = {xlabel: group[0].axis.copy()}
    units: dict[str, str] = {xlabel: xunit}
    for nm, p in zip(names, group, strict=True):
        zunit = p.strings.get("z_unit", "").strip()
        if p.ys == 1:
            channels[nm] = p.values[0]
            units[nm] = zunit
            continue
        one_place = p.positions is None or p.positions.shape[0] != p.ys or bool(
            np.all(np.ptp(p.positions, axis=0) < 0.1))
        if one_place:
            ok = np.isfinite(p.values).any(axis=0)
            avg = np.full(p.xs, np.nan)
            avg[ok] = np.nanmean(p.values[:, ok], axis=0)
            channels[f"{nm} [AVG]"] = avg
            units[f"{nm} [AVG]"] = zunit
        else:
            warnings.append(f"{nm!r}: {p.ys} spectra at different positions (a line or grid): no average")
        for k in range(p.ys):
            channels[f"{nm} [{k + 1:05d}]"] = p.values[k]
            units[f"{nm} [{k + 1:05d}]"] = zunit
    spec = Spectrum(bias=group[0].axis * factor, channels=channels, units=units,
                    header=_common_header(header, group[0]), path=name, bias_channel=xlabel, warnings=warnings,
                    sweep=sweep, sweep_unit=sunit, format="rhk_sm4", sha256=sha256_of(data))
    recognise_measurement(spec)
    return spec


def read_sm4_grid(name: str, data: bytes) -> Grid:
    """A spectroscopy grid of an ``.sm4`` file: spectrum pages with grid x × y size = their spectra count."""
    pages, header, warnings = _pages(name, data)
    group = _line_group(name, pages, warnings)
    p0 = group[0]
    gx, gy = p0.grid_x, p0.grid_y
    if gx * gy == 0 or gx * gy != p0.ys:
        raise FileFormatError(name, f"no spectroscopy grid: the page holds {p0.ys} spectra and its grid size is "
                                    f"{gx} × {gy}; read it with read_spectrum")
    sweep, sunit, factor, xlabel, xunit = _sweep(name, p0)
    names, _u, dup = unique_names(name, [p.strings.get("label", "").strip() or f"page {k + 1}"
                                         for k, p in enumerate(group)])
    warnings.extend(dup)
    d = {nm: p.values.reshape(gy, gx, p.xs).transpose(1, 0, 2) for nm, p in zip(names, group, strict=True)}
    units = {nm: p.strings.get("z_unit", "").strip() for nm, p in zip(names, group, strict=True)}
    units[xlabel] = xunit
    positions = None
    if p0.positions is not None and p0.positions.shape[0] == p0.ys:
        positions = p0.positions.reshape(gy, gx, 2).transpose(1, 0, 2)
    if positions is not None and np.all(np.isfinite(positions)) and gx > 1 and gy > 1:
        origin = positions[0, 0]
        ex, ey = positions[-1, 0] - origin, positions[0, -1] - origin
        lx, ly = float(np.hypot(*ex)), float(np.hypot(*ey))
        x = np.linspace(0.0, lx, gx)
        y = np.linspace(0.0, ly, gy)
        angle = -math.degrees(math.atan2(ex[1], ex[0])) if lx > 0 else 0.0
        px, py = (lx / (gx - 1), ly / (gy - 1))
        centre = origin + (ex + ey) / 2
        frame = Frame(float(centre[0]), float(centre[1]), lx + px, ly + py, angle)
        x, y = x + px / 2, y + py / 2
    else:
        x, y, frame = np.arange(gx, dtype=float), np.arange(gy, dtype=float), None
        warnings.append("no spectrum positions: x and y are pixel indices")
    return Grid(bias=p0.axis * factor, x=x, y=y, data=d, units=units, header=_common_header(header, p0),
                positions=positions, path=name, warnings=warnings, sweep=sweep, sweep_unit=sunit, frame=frame,
                format="rhk_sm4", sha256=sha256_of(data))


def read_sm4_image(name: str, data: bytes) -> Image:
    """The image pages of an ``.sm4`` file: ``channels[label]`` (nx, ny), y up, x, y in nm."""
    pages, header, warnings = _pages(name, data)
    imgs = [p for p in pages if p.dtype == 0]
    if not imgs:
        raise FileFormatError(name, "the file holds spectra only, no images: read it with read_spectrum")
    first = imgs[0]
    same = [p for p in imgs if (p.xs, p.ys) == (first.xs, first.ys)]
    if len(same) < len(imgs):
        warnings.append(f"{len(imgs) - len(same)} image page(s) of another size were left out")
    base = [p.strings.get("label", "").strip() or f"page {k + 1}" for k, p in enumerate(same)]
    labels = [f"{lab} [bwd]" if p.scan_type in (1, 3) else lab for lab, p in zip(base, same, strict=True)]
    names, _u, dup = unique_names(name, labels)
    warnings.extend(dup)
    channels, units, direction = {}, {}, {}
    for nm, p in zip(names, same, strict=True):
        a = p.values                                   # (ys, xs)
        if p.yscale > 0:
            a = a[::-1]
        if p.xscale < 0:
            a = a[:, ::-1]
        channels[nm] = a.T
        units[nm] = p.strings.get("z_unit", "").strip()
        direction[nm] = "backward" if p.scan_type in (1, 3) else "forward"
    f = 1e9 if first.strings.get("x_unit", "").strip() == "m" else 1.0
    w, h = abs(first.xscale) * first.xs * f, abs(first.yscale) * first.ys * f
    x = (np.arange(first.xs) + 0.5) * abs(first.xscale) * f
    y = (np.arange(first.ys) + 0.5) * abs(first.yscale) * f
    frame = Frame(first.xoffset * f, first.yoffset * f, w, h, first.angle) if f == 1e9 else None
    return Image(x=x, y=y, channels=channels, units=units, header=_common_header(header, first),
                 direction=direction, frame=frame, scan_direction="", path=name, warnings=warnings,
                 format="rhk_sm4", sha256=sha256_of(data))
