"""Createc ``.VERT`` point spectra.

Layout (as the Createc STM software writes it): a ``[ParVERT30]``/``[ParVERT32]`` line,
``key=value`` header lines (older keys as ``Long name / Key=value``; the part after the last
``/`` is the key), NUL padding, a ``DATA`` line, one line of integers (number of points,
position x, y in DAC, the output-channel code, …), then one tab-separated row per point:
the point index, the bias ``V`` in mV, ``Z`` (and, in ParVERT32 files whose 7th integer is 3,
``X``) in DAC units, then the channels the code selects, bit k of the code selecting (in
order) ``I``, ``dI/dV``, ``d2I/dV2``, ``ADC0`` … ``ADC3``, ``NA01`` … ``NA03``, ``di_q``,
``di2_q``, ``DAC0``.  (This column map is the one ProbeFlow decodes; columns beyond it are
kept as ``column k``.)

Units: ``V`` is in mV; ``I`` is converted to A with the DAC range (±10 V over ``DAC-Type``
bits, doubled for the bipolar range) and the preamplifier gain ``10^GainPre`` V/A — on the
real files this gives the setpoint current the header records.  Every other column is in
raw instrument units (``DAC``/``arb.``).  A spectrum whose bias stays constant is a time
trace: its x axis is the point index divided by ``SpecFreq`` (Hz).
"""

from __future__ import annotations

import math
import re

import numpy as np

from ._common import (
    MAX_HEADER_BYTES,
    MAX_HEADER_LINES,
    FileFormatError,
    Spectrum,
    drop_torn_last_row,
    parse_rows,
    recognise_measurement,
    sha256_of,
)

__all__ = ["read_vert", "CHANNEL_BITS"]

#: the output channels bit k of the VERT channel code selects, in column order
CHANNEL_BITS = ("I", "dI/dV", "d2I/dV2", "ADC0", "ADC1", "ADC2", "ADC3", "NA01", "NA02", "NA03", "di_q", "di2_q",
                "DAC0")
_DATA = re.compile(rb"(?:^|\n)DATA[ \t]*\r?\n")


def _num(header: dict[str, str], key: str, default: float) -> float:
    t = header.get(key, "").strip().replace(",", ".")
    try:
        v = float(t)
    except ValueError:
        return default
    return v if math.isfinite(v) else default


def read_vert(name: str, data: bytes) -> Spectrum:
    """A Createc ``.VERT`` spectrum (see the module docstring)."""
    if not data.strip():
        raise FileFormatError(name, "the file is empty")
    m = _DATA.search(data, 0, MAX_HEADER_BYTES)
    if m is None:
        raise FileFormatError(name, "Createc header without a DATA line (truncated or not a .VERT spectrum)")
    head = data[:m.start()].replace(b"\x00", b"").decode("latin-1")
    lines = head.splitlines()
    if len(lines) > MAX_HEADER_LINES:
        raise FileFormatError(name, f"header longer than {MAX_HEADER_LINES} lines")
    version = lines[0].strip().strip("[]") if lines else ""
    header: dict[str, str] = {"version": version}
    for line in lines[1:]:
        if "=" not in line:
            continue
        k, val = line.split("=", 1)
        key = k.split("/")[-1].strip()
        if key and key not in header:
            header[key] = val.strip()
    body = data[m.end():]
    if b"\x00" in body[:65536]:
        raise FileFormatError(name, "binary data after the DATA line where a table was expected (NUL bytes)")
    text = body.decode("latin-1")
    rows = text.splitlines()
    if not rows or not rows[0].strip():
        raise FileFormatError(name, "no parameter line after DATA")
    nums = rows[0].split()
    if len(nums) < 4 or not all(re.fullmatch(r"[+-]?\d+", t) for t in nums[:4]):
        raise FileFormatError(name, f"the line after DATA ({rows[0].strip()[:60]!r}) is not the expected integers "
                                    "(points, x, y, channel code, …)")
    npts, code = int(nums[0]), int(nums[3])
    if code < 0:
        raise FileFormatError(name, f"negative channel code {code}")
    marker = nums[6] if len(nums) >= 7 and re.fullmatch(r"\d+", nums[6]) else "2"
    names = ["index", "V", "Z"] + (["X"] if version == "ParVERT32" and marker == "3" else [])
    names += [c for k, c in enumerate(CHANNEL_BITS) if code >> k & 1]
    warnings: list[str] = []
    rows = drop_torn_last_row(text, rows[1:], warnings)
    first = next((r for r in rows if r.strip()), None)
    if first is None:
        raise FileFormatError(name, "no data rows")
    ncol = len([c for c in first.strip().split("\t") if c.strip()])
    if ncol < len(names):
        raise FileFormatError(name, f"the rows have {ncol} columns but the header's channel code {code} names "
                                    f"{len(names)} ({', '.join(names)})")
    if ncol > len(names):
        extra = [f"column {k + 1}" for k in range(len(names), ncol)]
        warnings.append(f"{len(extra)} column(s) beyond those the channel code names, kept as {extra} (raw units)")
        names += extra
    table = parse_rows(name, rows, ncol, data.count(b"\n", 0, m.end()) + 2, "\t")
    if table.shape[0] != npts:
        warnings.append(f"the header announces {npts} points; the file holds {table.shape[0]}")
    channels = {n: table[:, k] for k, n in enumerate(names) if n != "index"}
    bits = int(re.sub(r"\D", "", header.get("DAC-Type", "20")) or 20)
    if not 8 <= bits <= 32:
        warnings.append(f"DAC-Type {header.get('DAC-Type')!r} is not 8 … 32 bits: 20 bits assumed")
        bits = 20
    gain = _num(header, "GainPre 10^", 9.0)
    units = {n: ("DAC" if n in ("Z", "X") else "arb.") for n in channels}
    units["V"] = "mV"
    if "I" in channels:
        channels["I"] = channels["I"] * (20.0 / 2 ** bits) / 10 ** gain
        units["I"] = "A"
    v = channels["V"]
    if not np.all(np.isfinite(v)):
        raise FileFormatError(name, "the bias column V contains NaN or non-numbers")
    header_ramp = [_num(header, f"Vpoint{k}.V", math.nan) for k in range(8)
                   if k == 0 or _num(header, f"Vpoint{k}.t", 0) > 0]
    header_ramp = [r for r in header_ramp if math.isfinite(r)]
    data_sweeps = float(np.ptp(v)) >= 1.0 if v.size > 1 else False
    if len(header_ramp) >= 2 and (max(header_ramp) - min(header_ramp) >= 1.0) != data_sweeps:
        warnings.append(f"the header's bias ramp (Vpoint …) and the V column disagree on whether the bias is "
                        f"swept; the data decide ({'swept' if data_sweeps else 'constant'})")
    if data_sweeps:
        x, sweep, unit, xname = v, "bias", "mV", "V"
    else:
        freq = _num(header, "SpecFreq", math.nan)
        idx = table[:, 0]
        if freq > 0:
            x, sweep, unit = idx / freq, "time", "s"
        else:
            x, sweep, unit = idx.copy(), "index", ""
            warnings.append("a time trace without a valid SpecFreq: the x axis is the point index")
        xname = "Time" if sweep == "time" else "index"
        channels = {xname: x, **channels}
        units[xname] = unit
    spec = Spectrum(bias=x, channels=channels, units=units, header=header, path=name, bias_channel=xname,
                    warnings=warnings, sweep=sweep, sweep_unit=unit, format="createc_vert", sha256=sha256_of(data))
    if any(u == "arb." for u in units.values()):
        spec.warnings.append("Createc channels other than V and I are in raw instrument units")
    recognise_measurement(spec)
    return spec
