"""Exports users can take elsewhere: CSV and NeXus/HDF5, each with its provenance.

Provenance (:func:`provenance`): the source file's name, its sha256 (of the bytes the reader
read), its detected format, the software (``gapscope``) and its version
(``gapscope.__version__``), and the export time (UTC).

* :func:`write_csv` — one table per file, provenance as leading ``#`` lines (which
  :func:`~gapscope.kernels.readers.read_spectrum` skips, so an exported spectrum reads back):
  a spectrum (sweep axis, then every channel), a grid or image (long format: one row per
  pixel and sweep point), a fit (bias, data, best fit, residual, used; the parameters with
  their errors in the comment lines) or a grid fit (one row per pixel).
* :func:`write_nexus` — an HDF5 file laid out as NeXus: ``/entry`` (NXentry, ``definition``
  ``NXsts`` for bias spectra and grids: the NXdata/instrument subset gapscope knows, not a
  validated NXsts file), ``/entry/data`` (NXdata: the sweep axis, x, y, every channel with its
  unit and original name), ``/entry/image`` (NXdata), ``/entry/fit`` (NXprocess with the
  model and an NXparameters group of values, errors and maps), ``/entry/provenance``
  (NXnote).  Needs ``h5py`` (the ``export`` extra).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._common import Grid, Image, Spectrum

__all__ = ["provenance", "write_csv", "write_nexus"]


def _version() -> str:
    from ... import __version__
    return __version__


def provenance(source: Spectrum | Grid | Image | str | os.PathLike | bytes | None = None, *,
               name: str | None = None) -> dict[str, str]:
    """What an export records about where its data came from.

    ``source`` is a loaded object (its ``path``, ``sha256``, ``format``), a path (hashed now) or
    the file's bytes; ``name`` overrides the file name recorded.
    """
    out = {"software": "gapscope", "software_version": _version(),
           "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if isinstance(source, Spectrum | Grid | Image):
        out.update(source_file=Path(source.path).name if source.path else "", source_sha256=source.sha256,
                   source_format=source.format)
    elif isinstance(source, bytes):
        out.update(source_file=name or "", source_sha256=hashlib.sha256(source).hexdigest(), source_format="")
    elif source is not None:
        p = Path(source)
        out.update(source_file=p.name, source_sha256=hashlib.sha256(p.read_bytes()).hexdigest(), source_format="")
    if name:
        out["source_file"] = name
    return out


# ----------------------------------------------------------------------------- CSV
def _label(name: str, unit: str) -> str:
    name = name.replace(",", ";")
    return f"{name} ({unit})" if unit else name


def _is_fit(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("best_fit", "values", "errors", "bias", "data"))


def _is_grid_fit(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("values", "errors", "redchi", "done")) and not _is_fit(obj)


def write_csv(path: str | os.PathLike, obj: Any, *, source: Spectrum | Grid | Image | None = None) -> None:
    """Write a Spectrum, Grid, Image, fit result or grid fit result as one CSV table.

    ``source`` (for fit results): the data they were fitted to, for provenance and, for a grid
    fit, the pixel coordinates in nm.
    """
    prov = provenance(source if source is not None else (obj if isinstance(obj, Spectrum | Grid | Image) else None))
    out = io.StringIO()
    for k, v in prov.items():
        out.write(f"# {k}: {v}\n")
    fmt = "%.9g"
    if isinstance(obj, Spectrum):
        out.write(f"# sweep: {obj.sweep} ({obj.sweep_unit}); kind: {obj.kind}\n")
        names = [n for n in obj.channels if n != obj.bias_channel]
        first = {"bias": "bias", "z": "z", "time": "time"}.get(obj.sweep, obj.bias_channel or "x")
        out.write(",".join([_label(first, obj.sweep_unit)] + [_label(n, obj.units.get(n, "")) for n in names]) + "\n")
        np.savetxt(out, np.column_stack([obj.bias] + [obj.channels[n] for n in names]), delimiter=",", fmt=fmt)
    elif isinstance(obj, Grid):
        out.write(f"# sweep: {obj.sweep} ({obj.sweep_unit}); grid {obj.x.size} x {obj.y.size}; x, y in nm in the "
                  "grid frame\n")
        names = list(obj.data)
        out.write(",".join(["x (nm)", "y (nm)", _label(obj.sweep, obj.sweep_unit)]
                           + [_label(n, obj.units.get(n, "")) for n in names]) + "\n")
        nb = obj.bias.size
        for i in range(obj.x.size):
            for j in range(obj.y.size):
                block = np.column_stack([np.full(nb, obj.x[i]), np.full(nb, obj.y[j]), obj.bias]
                                        + [obj.data[n][i, j] for n in names])
                np.savetxt(out, block, delimiter=",", fmt=fmt)
    elif isinstance(obj, Image):
        names = list(obj.channels)
        out.write(f"# image {obj.x.size} x {obj.y.size}; x, y in nm in the scan frame\n")
        out.write(",".join(["x (nm)", "y (nm)"] + [_label(n, obj.units.get(n, "")) for n in names]) + "\n")
        X, Y = np.meshgrid(obj.x, obj.y, indexing="ij")
        np.savetxt(out, np.column_stack([X.ravel(), Y.ravel()] + [obj.channels[n].ravel() for n in names]),
                   delimiter=",", fmt=fmt)
    elif _is_fit(obj):
        out.write(f"# model: {obj.model}\n")
        for k, v in obj.values.items():
            out.write(f"# {k} = {v!r} ± {obj.errors.get(k, float('nan'))!r}\n")
        for k in ("redchi", "chisqr", "aic", "bic", "ndata", "nvarys", "success"):
            if hasattr(obj, k):
                out.write(f"# {k} = {getattr(obj, k)!r}\n")
        out.write("bias (mV),data,best_fit,residual,used\n")
        mask = np.asarray(getattr(obj, "mask", np.ones(np.size(obj.bias), bool)), dtype=float)
        best = np.asarray(obj.best_fit, dtype=float)
        data = np.asarray(obj.data, dtype=float)
        res = np.asarray(getattr(obj, "residual", data - best), dtype=float)
        if res.shape != data.shape:
            res = data - best
        np.savetxt(out, np.column_stack([obj.bias, data, best, res, mask]), delimiter=",", fmt=fmt)
    elif _is_grid_fit(obj):
        out.write(f"# model: {getattr(obj, 'model', '')}\n")
        done = np.asarray(obj.done)
        nx, ny = done.shape
        if isinstance(source, Grid) and source.x.size == nx and source.y.size == ny:
            X, Y = np.meshgrid(source.x, source.y, indexing="ij")
            head = ["x (nm)", "y (nm)"]
        else:
            X, Y = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
            head = ["i", "j"]
        names = list(obj.values)
        out.write(",".join(head + ["done", "redchi"] + names + [f"{n}_error" for n in names]) + "\n")
        cols = [X.ravel(), Y.ravel(), done.ravel().astype(float), np.asarray(obj.redchi).ravel()]
        cols += [np.asarray(obj.values[n]).ravel() for n in names]
        cols += [np.asarray(obj.errors.get(n, np.full((nx, ny), np.nan))).ravel() for n in names]
        np.savetxt(out, np.column_stack(cols), delimiter=",", fmt=fmt)
    else:
        raise TypeError(f"write_csv writes a Spectrum, Grid, Image, fit or grid fit result, not {type(obj).__name__}")
    Path(path).write_text(out.getvalue(), encoding="utf-8")


# ----------------------------------------------------------------------------- NeXus / HDF5
def _h5py() -> Any:
    try:
        return importlib.import_module("h5py")
    except ImportError:
        raise ImportError("NeXus export needs h5py: pip install 'gapscope[export]' (or pip install h5py)") from None


def _nx_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "channel"
    if base[0].isdigit():
        base = "c_" + base
    out, k = base, 2
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def _dataset(group: Any, key: str, values: np.ndarray, unit: str, long_name: str) -> Any:
    ds = group.create_dataset(key, data=np.asarray(values, dtype=float))
    if unit:
        ds.attrs["units"] = unit
    ds.attrs["long_name"] = long_name
    return ds


def _write_data(entry: Any, obj: Spectrum | Grid) -> None:
    nx = entry.create_group("data")
    nx.attrs["NX_class"] = "NXdata"
    taken = {"x", "y"}
    axis = _nx_name(obj.sweep if obj.sweep != "other" else "sweep", taken)
    _dataset(nx, axis, obj.bias, obj.sweep_unit, getattr(obj, "sweep_label", obj.sweep))
    if isinstance(obj, Spectrum):
        chans = {n: v for n, v in obj.channels.items() if n != obj.bias_channel}
        axes: list[str] = [axis]
        default = None
        try:
            default = obj.default_channel()
        except ValueError:
            pass
    else:
        chans = obj.data
        _dataset(nx, "x", obj.x, "nm", "x (grid frame)")
        _dataset(nx, "y", obj.y, "nm", "y (grid frame)")
        axes = ["x", "y", axis]
        try:
            default = obj.default_channel()
        except ValueError:
            default = None
        if obj.positions is not None:
            _dataset(nx, "positions", obj.positions, "nm", "absolute X, Y of each pixel")
    keys = {}
    for n, v in chans.items():
        keys[n] = _nx_name(n, taken)
        _dataset(nx, keys[n], v, obj.units.get(n, ""), n)
    if chans:
        nx.attrs["signal"] = keys[default] if default in keys else next(iter(keys.values()))
    nx.attrs["axes"] = axes
    for k, a in enumerate(axes):
        nx.attrs[f"{a}_indices"] = k


def _write_image(entry: Any, img: Image, group: str) -> None:
    g = entry.create_group(group)
    g.attrs["NX_class"] = "NXdata"
    taken = {"x", "y"}
    _dataset(g, "x", img.x, "nm", "x (scan frame)")
    _dataset(g, "y", img.y, "nm", "y (scan frame)")
    keys = {}
    for n, v in img.channels.items():
        keys[n] = _nx_name(n, taken)
        ds = _dataset(g, keys[n], v, img.units.get(n, ""), n)
        ds.attrs["direction"] = img.direction.get(n, "")
    if keys:
        top = img.topography
        g.attrs["signal"] = keys[top] if top in keys else next(iter(keys.values()))
    g.attrs["axes"] = ["x", "y"]
    g.attrs["x_indices"], g.attrs["y_indices"] = 0, 1
    if img.frame is not None:
        f = img.frame
        g.attrs["frame_center_nm"] = [f.center_x, f.center_y]
        g.attrs["frame_size_nm"] = [f.width, f.height]
        g.attrs["frame_angle_deg"] = f.angle


def _write_fit(entry: Any, fit: Any) -> None:
    g = entry.create_group("fit")
    g.attrs["NX_class"] = "NXprocess"
    g.create_dataset("program", data="gapscope")
    g.create_dataset("version", data=_version())
    g.create_dataset("model", data=str(getattr(fit, "model", "")))
    p = g.create_group("parameters")
    p.attrs["NX_class"] = "NXparameters"
    for k, v in fit.values.items():
        p.create_dataset(k, data=np.asarray(v, dtype=float))
        p.create_dataset(f"{k}_error", data=np.asarray(fit.errors.get(k, np.nan), dtype=float))
    for k in ("redchi", "chisqr", "aic", "bic", "done"):
        if hasattr(fit, k):
            v = getattr(fit, k)
            p.create_dataset(k, data=np.asarray(v, dtype=bool if k == "done" else float))
    if _is_fit(fit):
        c = g.create_group("curve")
        c.attrs["NX_class"] = "NXdata"
        _dataset(c, "bias", fit.bias, "mV", "bias")
        _dataset(c, "data", fit.data, "", "measured conductance")
        _dataset(c, "best_fit", fit.best_fit, "", f"best fit ({fit.model})")
        c.attrs["signal"], c.attrs["auxiliary_signals"], c.attrs["axes"] = "data", ["best_fit"], ["bias"]


def write_nexus(path: str | os.PathLike, data: Spectrum | Grid | Image, *, fit: Any = None,
                image: Image | None = None, extra: Mapping[str, str] | None = None) -> None:
    """Write the data (and a fit result, and a topography image) as a NeXus/HDF5 file.

    Parameters
    ----------
    path : path-like
        Output file (``.nxs`` or ``.h5``).
    data : Spectrum, Grid or Image
        What was loaded; its provenance is recorded.
    fit : FitResult or GridFitResult, optional
        A fit of ``data`` (values, errors, maps; the curve of a single fit).
    image : Image, optional
        A topography shown beside a grid, written as ``/entry/image``.
    extra : mapping, optional
        More provenance lines (e.g. the channel and normalisation the fit used).
    """
    h5py = _h5py()
    prov = provenance(data)
    prov.update({k: str(v) for k, v in (extra or {}).items()})
    with h5py.File(path, "w") as f:
        f.attrs["default"] = "entry"
        f.attrs["creator"] = "gapscope"
        f.attrs["creator_version"] = prov["software_version"]
        f.attrs["file_time"] = prov["exported"]
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "image" if isinstance(data, Image) else "data"
        if getattr(data, "sweep", "") == "bias":
            entry.create_dataset("definition", data="NXsts")
        entry.create_dataset("program_name", data="gapscope").attrs["version"] = prov["software_version"]
        entry.create_dataset("title", data=Path(data.path).name if data.path else "gapscope export")
        note = entry.create_group("provenance")
        note.attrs["NX_class"] = "NXnote"
        for k, v in prov.items():
            note.create_dataset(k, data=v)
        if isinstance(data, Image):
            _write_image(entry, data, "image")
        else:
            _write_data(entry, data)
            kind = getattr(data, "kind", "")
            if kind:
                entry["data"].attrs["kind"] = kind
        if image is not None:
            _write_image(entry, image, "image")
            entry["image"].attrs["source_file"] = Path(image.path).name
            entry["image"].attrs["source_sha256"] = image.sha256
        if fit is not None:
            _write_fit(entry, fit)
