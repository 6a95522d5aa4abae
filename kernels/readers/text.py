"""Plain text tables (CSV, TSV, whitespace-separated TXT), as users export them.

An optional header row of labels (``bias (mV), dIdV (nS)``); ``#`` comment lines; the x
column is the one named like a bias (``bias``, ``V``, ``voltage`` …), else the first, or the
one the caller names.  Its unit comes from its label (``(mV)``), else from ``bias_unit``, else
mV with a warning.  A last row shorter than the fixed-width rows above it, in a file without a
final line end, is a torn row and is dropped with a warning.
"""

from __future__ import annotations

import csv

from ._common import FileFormatError, Spectrum, decode_text, is_number, parse_rows, sha256_of
from .nanonis import assemble_spectrum

__all__ = ["read_text"]


def _torn(rows: list[str], sep: str | None) -> bool:
    """The last row has a value shorter than every row above it, in a column whose width never varies."""
    body = [r.strip() for r in rows if r.strip() and not r.lstrip().startswith("#")]
    if len(body) < 4:
        return False
    split = [[c.strip() for c in (r.split(sep) if sep else r.split())] for r in body[-6:]]
    last, prev = split[-1], split[:-1]
    if any(len(p) != len(last) for p in prev):
        return False
    for k, cell in enumerate(last):
        widths = {len(p[k]) for p in prev}
        if len(widths) == 1 and len(cell) < widths.pop():
            return True
    return False


def read_text(name: str, data: bytes, *, bias_unit: str | None = None,
              bias_column: str | int | None = None) -> Spectrum:
    """A text table as a spectrum (see the module docstring)."""
    text = decode_text(name, data)
    lines = text.splitlines()
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
    has_header = not all(is_number(c) and c for c in cells)
    labels = cells if has_header else [f"column {k + 1}" for k in range(len(cells))]
    if not has_header:
        labels[0] = "bias"
        if len(labels) > 1:
            labels[1] = "signal"
    start = lines.index(first) + (1 if has_header else 0)
    rows = lines[start:]
    warnings: list[str] = []
    if not text.endswith(("\n", "\r")) and _torn(rows, sep):
        last = max(i for i, r in enumerate(rows) if r.strip())
        warnings.append(f"the last row is cut off (shorter than the fixed-width rows above, no line end): dropped "
                        f"{rows[last][:60]!r}")
        rows = rows[:last]
    table = parse_rows(name, rows, len(labels), start + 1, sep)
    header = {"format": "text table", "delimiter": repr(sep) if sep else "whitespace"}
    names = [lab.split("(")[0].strip().lower() for lab in labels]
    if isinstance(bias_column, int):
        if not -len(labels) <= bias_column < len(labels):
            raise FileFormatError(name, f"bias column {bias_column} does not exist ({len(labels)} columns)")
        index = bias_column % len(labels)
    elif isinstance(bias_column, str):
        full = [lab.strip() for lab in labels]
        plain = [lab.split("(")[0].strip() for lab in labels]
        if bias_column in full:
            index = full.index(bias_column)
        elif bias_column in plain:
            index = plain.index(bias_column)
        else:
            raise FileFormatError(name, f"no column {bias_column!r}; columns are {plain}")
    else:
        cands = [k for k, n in enumerate(names) if n.startswith(("bias", "v ", "voltage", "sample bias"))
                 or n in ("v", "bias", "u", "energy")]
        index = cands[0] if cands else 0
    return assemble_spectrum(name, labels, table, header, warnings, sweep_index=index, unitless="mV",
                             bias_unit=bias_unit, fmt="text", digest=sha256_of(data), strict_unit=True)
