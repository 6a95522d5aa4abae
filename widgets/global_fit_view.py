"""The fit panel's global fit: several spectra, one model, parameters shared, per spectrum, or tied to Δ(T).

:class:`GlobalFitView` collects spectra (uploads, files in the data folder, or a row of the loaded
grid — a line scan), each with its temperature — read from the file's metadata when the file records
one (a Nanonis ``Temperature … (K)`` header entry), typed otherwise — and, for a model with a tip
position ``x`` (the Usadel junction), its position along the line (from the grid; typed for files),
and runs :func:`gapscope.kernels.fitting.fit_global` in the background through the panel's ``submit``
(the bar follows the fit's iterations; Cancel stops the fit itself within about a second).
The model, start values, fixed flags, bounds and the fit window are the panel's table's; here each
parameter gets a role:

* **per spectrum** — one free value per spectrum;
* **shared** — one free value for all spectra;
* **fixed** — the table's value for all;
* **series (T)** (temperature) — fixed per spectrum at its temperature;
* **Δ(T) BCS** (delta) — Δ_i = Δ(T_i; Δ₀, T_c) of the weak-coupling BCS shape
  (:func:`gapscope.kernels.gap.bcs_gap`), with Δ₀ and T_c shared free parameters;
* **series (x)** (x) — fixed per spectrum at x_i = position_i − x₀ (x₀ typed: the interface's
  position along the line);
* **x − x₀ (x₀ free)** (x) — the same with x₀ a shared free parameter
  (:func:`gapscope.kernels.proximity.position_tie`).

The result: each spectrum with its fit, a table of the per-spectrum parameters against T, and
the shared parameters with their errors and correlations.  No physics here.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from gapscope.kernels import fitting, gap, proximity, readers, tunneling

from .dataroot import PathRefused, uploaded_files
from .panel import Cancelled

__all__ = ["GlobalFitView", "Entry", "ROLES", "temperature_of", "MAX_SPECTRA"]

#: most spectra in one global fit
MAX_SPECTRA = 64
PER, SHARED, FIXED, SERIES, BCS = "per spectrum", "shared", "fixed", "series (T)", "Δ(T) BCS"
SERIES_X, X_TIE = "series (x)", "x − x₀ (x₀ free)"
_X_OFFSET = proximity.position_tie().params["x_offset"].spec    # type: ignore[union-attr]
ROLES = (PER, SHARED, FIXED)
COLOURS = ("#1f4e9c", "#c0392b", "#2ca02c", "#8e44ad", "#e67e22", "#16a085", "#7f8c8d", "#d35400")
ACCEPT = ".dat,.csv,.txt,.VERT,.vert,.sm4"
_TEMPERATURE = re.compile(r"temperature[^>]*>.*\(K\)$|^temperature.*\(K\)$|^temperature$", re.IGNORECASE)


def role_options(name: str) -> list[str]:
    """The roles a parameter can take."""
    if name == "x":
        return [SERIES_X, X_TIE, FIXED]
    opts = [SERIES, FIXED, SHARED] if name == "temperature" else list(ROLES)
    return opts + [BCS] if name == "delta" else opts


def make_entry(label: str, bias: np.ndarray, didv: np.ndarray, t: float | None, source: dict, norm: float,
               position: float | None = None) -> Entry:
    """An :class:`Entry` with increasing biases, normalised at |V| ≥ ``norm`` if ``norm`` > 0."""
    order = np.argsort(bias)
    V, y = np.asarray(bias, float)[order], np.asarray(didv, float)[order]
    if norm > 0:
        y = readers.normalise(V, y, above=norm)
    return Entry(label, V, y, t, source, position)


def temperature_of(header: dict[str, str]) -> float | None:
    """The sample temperature (K) a file's header records (the first ``Temperature … (K)`` entry), or None."""
    for k, v in header.items():
        if _TEMPERATURE.search(k.strip()):
            try:
                t = float(str(v).strip().split()[0])
            except (ValueError, IndexError):
                continue
            if math.isfinite(t) and 0.0 <= t <= tunneling.TEMPERATURE.bounds[1]:
                return t
    return None


@dataclass
class Entry:
    """One spectrum of the global fit: biases (mV, increasing), conductance, where it came from, and its
    position along a line (nm; a grid pixel's distance from the line's first pixel)."""

    label: str
    bias: np.ndarray
    didv: np.ndarray
    temperature: float | None
    source: dict[str, Any]
    position: float | None = None


class _TaskCancel:
    """The panel task's cancel state as the ``cancel`` event of ``fit_global`` (``is_set``)."""

    def __init__(self, task: Any) -> None:
        self.task = task

    def is_set(self) -> bool:
        return bool(self.task.cancelled)


class GlobalFitView:
    """Controls, spectra list, and results of a global fit inside the fit panel.

    Parameters
    ----------
    owner : FitPanel
        Gives the model, the parameter table, the fit window, the data root, the loaded grid,
        ``submit`` (background jobs) and ``show_message``.
    """

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.entries: list[Entry] = []
        self.result: Any = None
        self.upload = w.FileUpload(accept=ACCEPT, multiple=True, description="Add spectra",
                                   layout=w.Layout(width="auto"), tooltip="one or several spectra (uploads)")
        self.upload.add_class("gs-global-upload")
        self.path = w.Text(placeholder="or a file in the data folder", layout=w.Layout(width="15em"))
        self.path.add_class("gs-global-path")
        self.add_button = w.Button(description="Add", icon="plus", layout=w.Layout(width="auto"))
        self.grid_row = w.BoundedIntText(value=0, min=0, max=0, description="grid row y_j",
                                         style={"description_width": "6em"}, layout=w.Layout(width="11em"))
        self.grid_button = w.Button(description="Add grid row", icon="th", layout=w.Layout(width="auto"),
                                    tooltip="every pixel of row j of the loaded grid as one spectrum", disabled=True)
        self.clear_button = w.Button(description="Clear", icon="trash", layout=w.Layout(width="auto"))
        self.norm = w.FloatText(value=0.0, description="Normalise |V|≥", style={"description_width": "8.5em"},
                                layout=w.Layout(width="15em"), tooltip="mV; 0 = no normalisation (scale per spectrum)")
        self.tc_start = w.FloatText(value=gap.TC.default, description="T_c start (K)",
                                    style={"description_width": "8.5em"}, layout=w.Layout(width="15em"),
                                    tooltip="start value of T_c when Δ follows the BCS Δ(T)")
        self.x0_start = w.FloatText(value=0.0, description="x₀ (nm)", style={"description_width": "8.5em"},
                                    layout=w.Layout(width="15em"),
                                    tooltip="the interface's position along the line: x_i = position_i − x₀ "
                                            "(the start value when x₀ is free)")
        self.list_box = w.VBox()
        self.list_box.add_class("gs-global-list")
        self.roles: dict[str, w.Dropdown] = {}
        self.roles_box = w.GridBox(layout=w.Layout(grid_template_columns="9em 12em"))
        self.fit_button = w.Button(description="Fit all", icon="play", button_style="primary")
        self.fit_button.add_class("gs-global-fit")
        xs, ys = bq.LinearScale(), bq.LinearScale()
        self.scales = (xs, ys)
        self.fig = bq.Figure(marks=[], title="Global fit: spectra (points) and fits (lines)",
                             axes=[bq.Axis(scale=xs, label="bias V (mV)"), bq.Axis(scale=ys, side="left",
                                                                                  label="dI/dV")],
                             layout=w.Layout(width="100%", height="360px"),
                             fig_margin=dict(top=40, bottom=50, left=65, right=20))
        self.fig.add_class("gs-global-fig")
        self.table = w.HTML()
        self.table.add_class("gs-global-table")
        self.shared = w.HTML()
        self.shared.add_class("gs-global-shared")
        self.widget = w.VBox([
            w.HTML("<b>Spectra</b> (temperature from the file when it records one; type it otherwise)"),
            w.HBox([self.upload, self.path, self.add_button], layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.grid_row, self.grid_button, self.clear_button], layout=w.Layout(flex_flow="row wrap")),
            self.list_box, self.norm,
            w.HTML("<b>Parameters</b> (start values, bounds and the fit window: the table above)"),
            self.roles_box, self.tc_start, self.x0_start, self.fit_button, self.fig, self.table, self.shared])
        self.set_model(fitting.MODELS[owner.model.value])

    def observers(self) -> list[tuple[w.Widget, str | None, Callable]]:
        """(widget, trait, callback) for the panel to wire."""
        return [(self.upload, "value", self._uploaded),
                (self.add_button, None, lambda _: self.add_path(self.path.value)),
                (self.grid_button, None, lambda _: self.add_grid_row(self.grid_row.value)),
                (self.clear_button, None, lambda _: self.clear()),
                (self.norm, "value", lambda _: self._renormalise()),
                (self.fit_button, None, lambda _: self.run(wait=False)),
                (self.owner.model, "value", lambda ch: self.set_model(fitting.MODELS[ch["new"]]))]

    # ------------------------------------------------------------------ roles
    def set_model(self, model: Any) -> None:
        """One role per parameter of ``model`` (kept for parameters the previous model had too: the same
        quantity, not only the same name — Dynes' Γ is no Usadel γ)."""
        same = getattr(self, "_specs", {})
        old = {k: d.value for k, d in self.roles.items()}
        old = {k: v for k, v in old.items() if any(k == p.name and p.spec is same.get(k) for p in model.all_params)}
        self._specs = {p.name: p.spec for p in model.all_params}
        self.roles = {}
        cells: list[w.Widget] = []
        line = any(p.name == "x" for p in model.all_params)     # a line scan: what varies is x, the rest is shared
        for p in model.all_params:
            opts = role_options(p.name)
            default = (SERIES if p.name == "temperature" else SERIES_X if p.name == "x"
                       else FIXED if not p.vary else SHARED if line else PER)
            d = w.Dropdown(options=opts, value=old.get(p.name, default) if old.get(p.name) in opts else default,
                           layout=w.Layout(width="11.5em"))
            d.add_class(f"gs-role-{p.name}")
            self.roles[p.name] = d
            cells += [w.HTML(html.escape(p.name)), d]
        retired = list(self.roles_box.children)
        self.roles_box.children = cells
        for c in retired:
            c.close()
        self.x0_start.layout.display = None if "x" in self.roles else "none"
        self.result = None
        self._clear_output()
        if self.entries:                      # the rows show a position field for a model with x
            self._draw_list()

    def set_roles(self, **roles: str) -> None:
        """Set parameter roles by name (scripts, tests)."""
        for k, v in roles.items():
            self.roles[k].value = v

    # ------------------------------------------------------------------ spectra
    def _message(self, text: str, level: str) -> None:
        self.owner.show_message(text, level=level)

    def _uploaded(self, change: dict[str, Any]) -> None:
        for name, content in uploaded_files(change["new"]):
            try:
                self.owner.data_root.check_upload(name, len(content))
            except PathRefused as exc:
                self._message(str(exc), "error")
                continue
            self.add_bytes(name, bytes(content))

    def add_path(self, text: str) -> bool:
        """Add a spectrum from the data folder (nothing outside it)."""
        try:
            name, content = self.owner.data_root.read_bytes(text)
        except PathRefused as exc:
            self._message(f"Global fit: {exc}", "error")
            return False
        return self.add_bytes(name, content)

    def _spectrum(self, name: str, content: bytes) -> tuple[np.ndarray, np.ndarray, float | None]:
        obj = readers.read_any(name, data=content)
        if not isinstance(obj, readers.Spectrum):
            raise ValueError("a grid or an image: load a grid in the panel above and use 'Add grid row'")
        obj.require_tunnelling()
        return obj.bias, obj.conductance(), temperature_of(obj.header)

    def add_bytes(self, name: str, content: bytes, temperature: float | None = None) -> bool:
        """Add a spectrum file's content (its temperature from its header unless given)."""
        if len(self.entries) >= MAX_SPECTRA:
            self._message(f"A global fit takes at most {MAX_SPECTRA} spectra.", "warning")
            return False
        try:
            bias, didv, t = self._spectrum(name, content)
            entry = self._entry(name, bias, didv, t if temperature is None else temperature,
                                {"kind": "file", "name": name, "content": content})
        except (readers.FileFormatError, KeyError, ValueError) as exc:
            self._message(f"{name}: {exc}. Not added to the global fit.", "error")
            return False
        self.entries.append(entry)
        self._changed()
        return True

    def add_grid_row(self, j: int) -> bool:
        """Add every pixel of row ``j`` of the loaded grid (the panel's channel and normalisation)."""
        data = self.owner.data
        if data is None or data.grid is None or data.grid_didv is None:
            self._message("Load a .3ds grid in the panel first.", "warning")
            return False
        cube, grid = data.grid_didv, data.grid
        if not 0 <= j < cube.shape[1]:
            self._message(f"The grid has rows 0 … {cube.shape[1] - 1}.", "error")
            return False
        t = temperature_of(grid.header)
        added = 0
        for i in range(cube.shape[0]):
            if len(self.entries) >= MAX_SPECTRA:
                self._message(f"A global fit takes at most {MAX_SPECTRA} spectra; the rest of the row was left out.",
                              "warning")
                break
            self.entries.append(Entry(f"pixel ({i}, {j}) x = {grid.x[i]:.3g} nm", np.asarray(data.bias, float),
                                      np.asarray(cube[i, j], float), t, {"kind": "grid", "i": i, "j": int(j)},
                                      float(grid.x[i] - grid.x[0])))
            added += 1
        self._changed()
        return added > 0

    def _entry(self, label: str, bias: np.ndarray, didv: np.ndarray, t: float | None, source: dict) -> Entry:
        return make_entry(label, bias, didv, t, source, self.norm.value)

    def _renormalise(self) -> None:
        kept = []
        for e in self.entries:
            if e.source["kind"] != "file":
                kept.append(e)
                continue
            try:
                bias, didv, _ = self._spectrum(e.source["name"], e.source["content"])
                kept.append(self._entry(e.label, bias, didv, e.temperature, e.source))
            except ValueError as exc:
                self._message(f"{e.label}: {exc}; kept as it was.", "warning")
                kept.append(e)
        self.entries = kept
        self._changed()

    def clear(self) -> None:
        """Remove every spectrum and the result."""
        self.entries = []
        self._changed()

    def remove(self, index: int) -> None:
        del self.entries[index]
        self._changed()

    def _changed(self) -> None:
        self.result = None
        self._clear_output()
        self._draw_list()

    def _draw_list(self) -> None:
        rows: list[w.Widget] = []
        for k, e in enumerate(self.entries):
            t = w.FloatText(value=e.temperature if e.temperature is not None else math.nan,
                            description="T (K)", style={"description_width": "3em"}, layout=w.Layout(width="9em"),
                            tooltip="from the file" if e.temperature is not None else "type the temperature")
            t.add_class(f"gs-global-T-{k}")
            t.observe(lambda ch, k=k: self._typed_temperature(k, ch["new"]), "value")
            x = w.Button(description="✕", layout=w.Layout(width="3em"), tooltip="remove this spectrum")
            x.on_click(lambda _, k=k: self.remove(k))
            colour = COLOURS[k % len(COLOURS)]
            cells: list[w.Widget] = [w.HTML(f"<span style='display:inline-block;width:16em;color:{colour}'>"
                                            f"{k + 1}. {html.escape(e.label[:40])}</span>"), t]
            if "x" in self.roles:                # a model with a tip position: the spectrum's place on the line
                pos = w.FloatText(value=e.position if e.position is not None else math.nan, description="pos (nm)",
                                  style={"description_width": "4em"}, layout=w.Layout(width="10em"),
                                  tooltip="position along the line (from the grid; type it for a file)")
                pos.add_class(f"gs-global-pos-{k}")
                pos.observe(lambda ch, k=k: self._typed_position(k, ch["new"]), "value")
                cells.append(pos)
            rows.append(w.HBox([*cells, x]))
        retired = list(self.list_box.children)
        self.list_box.children = rows
        for r in retired:
            r.close()
        grid = self.owner.data.grid if self.owner.data is not None else None
        self.grid_button.disabled = grid is None
        if grid is not None:
            self.grid_row.max = max(int(grid.y.size) - 1, 0)

    def _typed_temperature(self, k: int, value: float) -> None:
        if k < len(self.entries):
            self.entries[k].temperature = float(value) if math.isfinite(value) else None
            self.result = None

    def _typed_position(self, k: int, value: float) -> None:
        if k < len(self.entries):
            self.entries[k].position = float(value) if math.isfinite(value) else None
            self.result = None

    def set_positions(self, positions: list[float]) -> None:
        """Type every spectrum's position along the line (nm)."""
        for e, x in zip(self.entries, positions, strict=True):
            e.position = float(x)
        self._changed()

    def set_temperatures(self, temperatures: list[float]) -> None:
        """Type every spectrum's temperature (K)."""
        for e, t in zip(self.entries, temperatures, strict=True):
            e.temperature = float(t)
        self._changed()

    def grid_changed(self) -> None:
        """The panel's data changed: grid pixels refer to the old grid and are removed."""
        kept = [e for e in self.entries if e.source["kind"] != "grid"]
        if len(kept) != len(self.entries):
            self.entries = kept
            self._changed()
        else:
            self._draw_list()

    # ------------------------------------------------------------------ fit
    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`fitting.fit_global` for the spectra, roles and the panel's table."""
        if len(self.entries) < 2:
            raise ValueError("A global fit needs at least two spectra: add files or a grid row.")
        roles = {k: d.value for k, d in self.roles.items()}
        args = self.owner.table.fit_arguments()
        initial, bounds = dict(args["initial"]), dict(args["bounds"])
        fixed = {k: roles.get(k) == FIXED for k in initial}
        shared = [k for k, r in roles.items() if r == SHARED]
        series: dict[str, Any] = {}
        uses_t = roles.get("temperature") == SERIES or roles.get("delta") == BCS
        if roles.get("delta") == BCS and roles.get("temperature") != SERIES:
            raise ValueError("Δ(T) BCS needs the temperatures: give temperature the role 'series (T)'.")
        if uses_t:
            missing = [str(k + 1) for k, e in enumerate(self.entries) if e.temperature is None]
            if missing:
                raise ValueError(f"Type the temperature of spectrum {', '.join(missing)} (its file records none).")
            temps = []
            for e in self.entries:
                try:
                    temps.append(tunneling.TEMPERATURE.check(e.temperature))
                except ValueError as exc:
                    raise ValueError(f"{e.label}: {exc}") from None
            series["temperature"] = temps
            for d in (initial, fixed, bounds):
                d.pop("temperature", None)
        if roles.get("scale") in (PER, SHARED):      # instrument units: start each scale from its spectrum
            guesses = [fitting.guess_scale(e.bias, e.didv) for e in self.entries]
            initial["scale"] = guesses if roles["scale"] == PER else float(np.median(guesses))
        if roles.get("delta") == BCS:
            tc = self.tc_start.value
            gap.TC.check(tc)
            series["delta"] = fitting.Tie(gap.bcs_gap, delta0=gap.DELTA0, tc=gap.TC)
            initial["delta0"], initial["tc"] = initial.pop("delta"), float(tc)
            fixed.pop("delta", None)
            bounds.pop("delta", None)
        if roles.get("x") in (SERIES_X, X_TIE):
            missing = [str(k + 1) for k, e in enumerate(self.entries) if e.position is None]
            if missing:
                raise ValueError(f"Type the position of spectrum {', '.join(missing)} along the line (nm).")
            pos = np.array([e.position for e in self.entries], dtype=float)
            x0 = float(self.x0_start.value)
            if not math.isfinite(x0):
                raise ValueError("x₀ (the interface's position along the line) must be a number.")
            for d in (initial, fixed, bounds):
                d.pop("x", None)
            if roles["x"] == SERIES_X:
                try:
                    series["x"] = [proximity.POSITION.check(v) for v in pos - x0]
                except ValueError as exc:
                    raise ValueError(f"x = position − x₀: {exc}") from None
            else:
                lo, hi = float(pos.min()) - 5.0, float(pos.max()) + 5.0
                if not lo <= x0 <= hi:
                    raise ValueError(f"x₀ = {x0:g} nm lies outside the line ({lo:g} … {hi:g} nm, 5 nm margin).")
                series["position"] = list(pos)
                series["x"] = proximity.position_tie(x_offset=x0)
                bounds["x_offset"] = (lo, hi)
        return dict(model=self.owner.model.value, shared=shared, series=series or None, initial=initial,
                    fixed=fixed, bounds=bounds, window=tuple(self.owner.window.value))

    def run(self, *, wait: bool = True) -> Any:
        """Fit all spectra at once in the background (the panel's progress bar and Cancel); show the result.

        Returns the :class:`~gapscope.kernels.fitting.GlobalFitResult` with ``wait=True`` (None if it failed,
        was cancelled, or the spectra or roles changed meanwhile).
        """
        try:
            args = self.arguments()
        except ValueError as exc:
            self._message(str(exc), "error")
            return None
        entries = list(self.entries)
        datasets = [(e.bias, e.didv) for e in entries]
        n = len(entries)

        def job(task: Any) -> Any:
            task.progress(0.0, f"global fit of {n} spectra …")
            try:
                r = fitting.fit_global(datasets, **args, progress=task.progress, cancel=_TaskCancel(task))
            except fitting.FitCancelled:
                raise Cancelled() from None
            except (ValueError, RuntimeError) as exc:
                raise ValueError(f"Global fit failed: {exc}") from exc
            return r

        def done(r: Any) -> None:
            same = len(self.entries) == len(entries) and all(a is b for a, b in zip(self.entries, entries, strict=True))
            if not same or r.model != self.owner.model.value:
                self._message("The spectra or the model changed during the global fit; its result was dropped.",
                              "warning")
                return
            self.show(r)

        future = self.owner.submit(job, done, label=f"global fit of {n} spectra …")
        if not wait:
            return None
        r = future.result()
        return r if r is not None and self.result is r else None

    # ------------------------------------------------------------------ sessions
    def state(self) -> dict[str, Any]:
        """The spectra (files embedded, compressed + base64, with their sha256), roles, and the result."""
        from . import session

        entries = []
        for e in self.entries:
            src = e.source
            item: dict[str, Any] = {"label": e.label, "temperature": e.temperature, "position": e.position}
            if src["kind"] == "file":
                item.update(kind="file", name=src["name"], sha256=session._sha(src["content"]),
                            size=len(src["content"]), content=session.pack_bytes(src["content"]))
            else:
                item.update(kind="grid", i=src["i"], j=src["j"])
            entries.append(item)
        return session.jsonable({"entries": entries, "roles": {k: d.value for k, d in self.roles.items()},
                                 "norm": float(self.norm.value), "tc_start": float(self.tc_start.value),
                                 "x0_start": float(self.x0_start.value),
                                 "result": None if self.result is None else result_state(self.result)})

    def check_state(self, obj: Any, c: Any, data: Any, model: str) -> dict[str, Any]:
        """Check a saved :meth:`state` (``data``, ``model``: the panel's as the session restores them)."""
        from . import session

        c.keys(obj, ("entries", "roles", "norm", "tc_start", "result"), ("x0_start",))
        names = tuple(p.name for p in fitting.MODELS[model].all_params)
        roles = {k: c.at("roles").at(k).choice(v, role_options(k))
                 for k, v in c.at("roles").keys(obj["roles"], names).items()}
        norm = c.at("norm").number(obj["norm"], 0.0, 1e4)
        tc = c.at("tc_start").number(obj["tc_start"], 0.0, gap.TC.bounds[1])
        x0 = c.at("x0_start").number(obj.get("x0_start", 0.0), *proximity.POSITION.bounds)
        ce = c.at("entries")
        if not isinstance(obj["entries"], list) or len(obj["entries"]) > MAX_SPECTRA:
            raise ce.fail(f"expected a list of at most {MAX_SPECTRA} spectra")
        entries = []
        for k, item in enumerate(obj["entries"]):
            ck = ce.at(k)
            ck.mapping(item, 10)
            kind = ck.at("kind").choice(item.get("kind"), ["file", "grid"])
            t = item.get("temperature")
            if t is not None:
                try:
                    t = tunneling.TEMPERATURE.check(ck.at("temperature").number(t))
                except ValueError as exc:
                    raise ck.at("temperature").fail(str(exc)) from None
            label = ck.at("label").text(item.get("label"), 200)
            x = item.get("position")
            if x is not None:
                x = ck.at("position").number(x, *proximity.POSITION.bounds)
            if kind == "file":
                ck.keys(item, ("kind", "label", "temperature", "name", "sha256", "size", "content"), ("position",))
                name = ck.at("name").text(item["name"], 255)
                size = ck.at("size").integer(item["size"], 0, self.owner.data_root.max_bytes)
                content = session.unpack_bytes(item["content"], size, f"{ck.where}.content")
                if session._sha(content) != item["sha256"]:
                    raise ck.at("content").fail("the embedded data do not match their sha256")
                try:
                    bias, didv, _ = self._spectrum(name, content)
                    entries.append(make_entry(label, bias, didv, t, {"kind": "file", "name": name,
                                                                     "content": content}, norm, x))
                except (readers.FileFormatError, KeyError, ValueError) as exc:
                    raise ck.fail(f"cannot be read: {exc}") from None
            else:
                ck.keys(item, ("kind", "label", "temperature", "i", "j"), ("position",))
                if data is None or data.grid_didv is None:
                    raise ck.fail("a grid pixel, but the session's data are no grid")
                nx, ny = data.grid_didv.shape[:2]
                i, j = ck.at("i").integer(item["i"], 0, nx - 1), ck.at("j").integer(item["j"], 0, ny - 1)
                entries.append(Entry(label, np.asarray(data.bias, float), np.asarray(data.grid_didv[i, j], float), t,
                                     {"kind": "grid", "i": i, "j": j}, x))
        result = None if obj["result"] is None else check_result(obj["result"], model, entries, c.at("result"))
        return {"entries": entries, "roles": roles, "norm": norm, "tc_start": tc, "x0_start": x0, "result": result}

    def restore_state(self, s: dict[str, Any]) -> None:
        """Apply a checked state (after the panel's model and data were restored)."""
        self.norm.value = s["norm"]
        self.tc_start.value = s["tc_start"]
        self.x0_start.value = s["x0_start"]
        self.entries = list(s["entries"])
        self.set_roles(**s["roles"])
        self._changed()
        if s["result"] is not None:
            self.show(s["result"])

    # ------------------------------------------------------------------ results
    def _clear_output(self) -> None:
        self.fig.marks = []
        self.table.value = self.shared.value = ""

    def show(self, r: Any) -> None:
        """Draw a global-fit result: spectra and fits, the per-spectrum table, the shared parameters."""
        xs, ys = self.scales
        marks = []
        for k, e in enumerate(self.entries):
            c = COLOURS[k % len(COLOURS)]
            ok = np.isfinite(e.didv)
            marks.append(bq.Scatter(x=e.bias[ok], y=e.didv[ok], scales={"x": xs, "y": ys}, colors=[c],
                                    default_size=6, opacities=[0.6]))
            marks.append(bq.Lines(x=r.bias[k], y=r.best_fit[k], scales={"x": xs, "y": ys}, colors=[c],
                                  stroke_width=2, labels=[f"{k + 1}"]))
        old = list(self.fig.marks)
        self.fig.marks = marks
        for m in old:
            m.close()
        self.result = r
        self.table.value = table_html(r, [e.label for e in self.entries])
        self.shared.value = shared_html(r)

    def fit_marks(self) -> list[bq.Lines]:
        """The fit curves, one per spectrum (in order)."""
        return [m for m in self.fig.marks if isinstance(m, bq.Lines)]


def _pm(v: float, e: float) -> str:
    return f"{v:.5g} ± {e:.2g}" if np.isfinite(e) else f"{v:.5g}"


def table_html(r: Any, labels: list[str]) -> str:
    """Per-spectrum parameters (free, tied and series ones) against the series variable, one row per spectrum."""
    per = [k for k, v in r.values.items() if isinstance(v, np.ndarray) and (not r.fixed.get(k, True) or k in r.tied
                                                                          or k in r.series)]
    head = "".join(f"<th>{html.escape(k)}{' (tied)' if k in r.tied else ''}</th>" for k in per)
    rows = []
    for i, label in enumerate(labels):
        cells = "".join(f"<td class='gs-global-{html.escape(k)}-{i}'>"
                        f"{_pm(float(r.values[k][i]), float(r.errors[k][i]))}</td>" for k in per)
        rows.append(f"<tr><td>{i + 1}</td><td>{html.escape(label[:40])}</td>{cells}</tr>")
    return ("<table class='gs-global-params' style='font-size:0.9em'><tr><th>#</th><th>spectrum</th>" + head + "</tr>"
            + "".join(rows) + "</table>")


def shared_html(r: Any) -> str:
    """Shared (and Tie) parameters ± errors, fit statistics, and their correlations."""
    one = [k for k, v in r.values.items() if not isinstance(v, np.ndarray)]
    free = [k for k in one if not r.fixed.get(k, False)]
    items = "".join(f"<tr><td>{html.escape(k)}</td><td class='gs-shared-{html.escape(k)}'>"
                    f"{_pm(float(r.values[k]), float(r.errors[k]))}</td></tr>" for k in one)
    corr = ""
    if len(free) > 1:
        cells = "".join(f"<th>{html.escape(k)}</th>" for k in free)
        body = ""
        for a in free:
            row = ""
            for b in free:
                c = 1.0 if a == b else r.correlations.get((a, b), r.correlations.get((b, a), math.nan))
                row += f"<td>{c:+.2f}</td>" if np.isfinite(c) else "<td>—</td>"
            body += f"<tr><th>{html.escape(a)}</th>{row}</tr>"
        corr = (f"<div>Correlations</div><table class='gs-global-corr' style='font-size:0.85em'><tr><th></th>"
                f"{cells}</tr>{body}</table>")
    ties = "".join(f"; x = {html.escape(v)} − x_offset" if k == "x" else
                   f"; {html.escape(k)} follows the BCS Δ({html.escape(v)})" for k, v in r.tied.items())
    stats = (f"<div style='font-size:0.85em'><b>{html.escape(r.model)}</b>, {r.n_datasets} spectra: χ²_red = "
             f"{r.redchi:.4g}, AIC = {r.aic:.1f}, {r.ndata} points, {r.nvarys} free{ties}"
             + ("" if r.success else f" — <b>not converged</b>: {html.escape(r.message)}") + "</div>")
    return (stats + "<table class='gs-global-shared-table' style='font-size:0.9em'><tr><th>shared</th>"
            "<th>value</th></tr>" + items + "</table>" + corr)


# ----------------------------------------------------------------------------- sessions of a result
RESULT_KEYS = ("model", "n_datasets", "values", "errors", "fixed", "shared", "tied", "series", "redchi", "chisqr",
               "aic", "bic", "ndata", "nvarys", "nfev", "success", "message", "elapsed", "correlations", "masks")


def result_state(r: Any) -> dict[str, Any]:
    from . import session

    return session.jsonable({
        "model": r.model, "n_datasets": r.n_datasets,
        "values": {k: (list(v) if isinstance(v, np.ndarray) else v) for k, v in r.values.items()},
        "errors": {k: (list(v) if isinstance(v, np.ndarray) else v) for k, v in r.errors.items()},
        "fixed": r.fixed, "shared": list(r.shared), "tied": r.tied,
        "series": {k: list(v) for k, v in r.series.items()}, "redchi": r.redchi, "chisqr": r.chisqr, "aic": r.aic,
        "bic": r.bic, "ndata": r.ndata, "nvarys": r.nvarys, "nfev": r.nfev, "success": r.success,
        "message": str(r.message)[:10000], "elapsed": r.elapsed,
        "correlations": [[a, b, v] for (a, b), v in r.correlations.items()],
        "masks": [session._pack_mask(m) for m in r.masks]})


def check_result(obj: Any, model: str, entries: list[Entry], c: Any) -> Any:
    """A saved global-fit result checked against the model's specs and the spectra; the fits are recomputed
    from the saved values with :func:`fitting.evaluate`."""
    from . import session

    c.keys(obj, RESULT_KEYS)
    c.at("model").choice(obj["model"], [model])
    n = c.at("n_datasets").integer(obj["n_datasets"], len(entries), len(entries))
    specs = {p.name: p.spec for p in fitting.MODELS[model].all_params}
    extra = {"delta0": gap.DELTA0, "tc": gap.TC, "x_offset": _X_OFFSET, "position": proximity.POSITION}
    series_names = ("temperature", "position", "x")
    names = tuple(specs) + tuple(extra)

    def value(k: str, v: Any, cv: Any, errors: bool) -> Any:
        spec = specs.get(k) or extra[k]
        def one(x: Any, cx: Any) -> float:
            if errors:
                y = cx.number(x, 0.0, none=True)
                return math.nan if y is None else float(y)
            try:
                return spec.check(cx.number(x))
            except ValueError as exc:
                raise cx.fail(str(exc)) from None
        if isinstance(v, list):
            if (k not in specs and k not in series_names) or len(v) != n:
                raise cv.fail(f"expected one value per spectrum ({n})")
            return np.array([one(x, cv.at(i)) for i, x in enumerate(v)])
        return one(v, cv)

    vals = {k: value(k, v, c.at("values").at(k), False)
            for k, v in c.at("values").keys(obj["values"], tuple(specs), tuple(extra)).items()}
    errs = {k: value(k, v, c.at("errors").at(k), True)
            for k, v in c.at("errors").keys(obj["errors"], tuple(vals)).items()}
    fixed = {k: c.at("fixed").at(k).boolean(v) for k, v in c.at("fixed").keys(obj["fixed"], tuple(vals)).items()}
    shared = tuple(c.at("shared").at(i).choice(k, names) for i, k in enumerate(c.at("shared").items(obj["shared"], 32)))
    tied = {c.at("tied").at(k).choice(k, list(specs)): c.at("tied").at(k).choice(v, ["temperature", "position"])
            for k, v in c.at("tied").mapping(obj["tied"], 4).items()}
    series = {}
    for k, v in c.at("series").mapping(obj["series"], 4).items():
        c.at("series").at(k).choice(k, list(series_names))
        series[k] = value(k, v, c.at("series").at(k), False)
    if not isinstance(obj["masks"], list) or len(obj["masks"]) != n:
        raise c.at("masks").fail(f"expected one mask per spectrum ({n})")
    masks = [session._unpack_mask(m, e.bias.size, c.at("masks").at(i))
             for i, (m, e) in enumerate(zip(obj["masks"], entries, strict=True))]
    corr = {}
    cc = c.at("correlations")
    for i, item in enumerate(cc.items(obj["correlations"], 400)):
        if not isinstance(item, list) or len(item) != 3:
            raise cc.at(i).fail("expected [name, name, correlation]")
        corr[(cc.at(i).choice(item[0], names), cc.at(i).choice(item[1], names))] = cc.at(i).number(item[2], -1.0001,
                                                                                                  1.0001)
    stats = {k: c.at(k).number(obj[k], none=True) for k in ("redchi", "chisqr", "aic", "bic", "elapsed")}
    stats = {k: math.nan if v is None else v for k, v in stats.items()}
    best, resid = [], []
    for i, e in enumerate(entries):
        vi = {k: float(v[i]) if isinstance(v, np.ndarray) else float(v) for k, v in vals.items() if k in specs}
        b = fitting.evaluate(model, e.bias, **vi)
        best.append(b)
        resid.append(e.didv - b)
    from gapscope.kernels.fit_global import GlobalFitResult

    return GlobalFitResult(
        model=model, n_datasets=n, values=vals, errors=errs, fixed=fixed, shared=shared, tied=tied, series=series,
        redchi=stats["redchi"], chisqr=stats["chisqr"], aic=stats["aic"], bic=stats["bic"],
        ndata=c.at("ndata").integer(obj["ndata"]), nvarys=c.at("nvarys").integer(obj["nvarys"]),
        best_fit=best, residual=resid, bias=[e.bias for e in entries], data=[e.didv for e in entries], masks=masks,
        success=c.at("success").boolean(obj["success"]), message=c.at("message").text(obj["message"]) or "",
        nfev=c.at("nfev").integer(obj["nfev"]), elapsed=stats["elapsed"], correlations=corr)
