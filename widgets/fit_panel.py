"""Fit panel: load a measured spectrum (or grid), fit any registered model, compare models.

Composes :class:`~.data_loader.DataLoader`, :class:`~.fit_table.ParameterTable`,
:class:`~.grid_fit_view.GridFitView`, :class:`~.global_fit_view.GlobalFitView` (several spectra,
shared/per-spectrum/Δ(T) parameters) and :class:`~.deconvolution_view.DeconvolutionView` (the DOS
behind the data, known tip) on the :class:`~.panel.Panel` base; fits and model
comparisons run through :meth:`~.panel.Panel.submit` (progress, Cancel, responsive page).
Results always belong to the data shown: new data clears statistics, ± column, comparison
and grid map, and a fit finishing after the data or the model changed is dropped.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from gapscope.kernels import fitting

from . import session
from .data_loader import DEMOS, DataLoader, Demo, LoadedData
from .dataroot import DataRoot, PathRefused
from .deconvolution_view import DeconvolutionView
from .fit_table import ParameterTable, compare_html, stats_html
from .global_fit_view import GlobalFitView
from .grid_fit_view import GridFitView
from .panel import Panel, PanelInputError, Task

__all__ = ["FitPanel", "DEMOS", "Demo"]

#: chain parameters fixed by default (known from the experiment); a demo keeps them fixed
CHAIN_FIXED = tuple(p.name for p in fitting.CHAIN if not p.vary)
#: parameters passed from the table to every model of a comparison
COMPARE_SHARED = (*CHAIN_FIXED, "delta", "gamma")
#: models ranked by "Compare models"
COMPARE_MODELS = ("dynes", "anisotropic_s", "dwave")
HINT = "<i>Load a file, drop one on Upload, or pick a demo.</i>"


class FitPanel(Panel):
    """Measured spectrum over the model, fit with uncertainties, model comparison, grid fits.

    ``result`` is the fit shown (of the data shown) or None; ``data`` (alias ``spectrum``)
    the :class:`~.data_loader.LoadedData` shown.  :meth:`run_fit` and :meth:`run_compare`
    block until done by default (scripts, tests); the buttons run them in the background.
    """

    TITLE = "Fit measured spectra"
    PARAMS = ()
    SIDEBAR_WIDTH = "38em"

    def __init__(self, *, data_root: DataRoot | str | None = None) -> None:
        self._fit: fitting.FitResult | None = None
        self.data: LoadedData | None = None
        self.curves: Any = None
        self.data_root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
        self.loader = DataLoader(self._on_data, lambda text, level: self.show_message(text, level=level),
                                 self.data_root, on_image=lambda img: self.grid_view.set_topography(img))
        self._raw: tuple[str, bytes] | None = None          # the loaded file's bytes, for sessions
        self.loader.load_bytes = self._keep_bytes(self.loader.load_bytes)
        self.upload, self.path, self.demo = self.loader.upload, self.loader.path, self.loader.demo
        self.info, self.channel, self.norm = self.loader.info, self.loader.channel, self.loader.norm
        self.model = w.Dropdown(options=list(fitting.MODELS), value="dynes", description="Model",
                                style={"description_width": "7em"})
        self.table = ParameterTable(fitting.MODELS[self.model.value], on_change=lambda: self._changed(None))
        self.window = w.FloatRangeSlider(value=(-4.0, 4.0), min=-4.0, max=4.0, step=0.01, description="Fit window",
                                         style={"description_width": "7em"}, continuous_update=False)
        self.intervals = w.Dropdown(options=[("covariance", "covariance"), ("+ profile", "profile"),
                                             ("+ bootstrap", "bootstrap")], value="covariance", description="Errors",
                                    style={"description_width": "7em"})
        self.fit_button = w.Button(description="Fit", icon="play", button_style="primary")
        self.fit_button.add_class("gs-fit")
        self.compare_button = w.Button(description="Compare models", icon="balance-scale")
        self.compare_button.add_class("gs-compare-button")
        self.report_button = w.Button(description="Report", icon="download", tooltip="JSON fit report")
        self.png_button = w.Button(description="PNG", icon="image")
        self.csv_button = w.Button(description="CSV", icon="table",
                                   tooltip="the data (and the fit) as CSV, with provenance")
        self.nexus_button = w.Button(description="NeXus", icon="save",
                                     tooltip="the data, the fit and a topography as NeXus/HDF5, with provenance")
        self.download = w.HTML()
        self.stats = w.HTML()
        self.stats.add_class("gs-stats")
        self.compare_out = w.HTML()
        self.grid_view = GridFitView(lambda resume: self.start_grid_fit(resume=resume),
                                     lambda text, level: self.show_message(text, level=level))
        self.global_view = GlobalFitView(self)
        self.deconv_view = DeconvolutionView(self)
        self.more = w.Accordion(children=[self.global_view.widget, self.deconv_view.widget], selected_index=None,
                                titles=("Global fit of several spectra (shared, per-spectrum and Δ(T) parameters)",
                                        "Deconvolution: the sample DOS behind the data (known tip)"))
        self.more.add_class("gs-fit-more")
        super().__init__()

    # ------------------------------------------------------------------ state
    def _keep_bytes(self, load: Any) -> Any:
        def load_bytes(name: str, content: bytes) -> bool:
            before = self.loader._source
            ok = load(name, content)
            if ok and self.loader._source is not before:
                self._raw = (name, bytes(content))
            return ok
        return load_bytes

    # sessions (session.py): the data (embedded), model, table, window, fit and grid results
    def session_widgets(self) -> dict[str, w.Widget]:
        return {}

    def state_extra(self) -> dict[str, Any]:
        return session.fit_state(self)

    def check_extra(self, extra: Any, where: session.Check) -> Any:
        return session.check_fit_state(self, extra, where)

    def restore_extra(self, extra: Any) -> None:
        session.apply_fit_state(self, extra)

    def session_note(self) -> str:
        src = self.loader._source
        if src is None or src["kind"] == "demo" or self._raw is None:
            return "Session saved (a demo is regenerated on load): the link below downloads it."
        name, raw = self._raw
        sha = hashlib.sha256(raw).hexdigest()[:12]
        if len(raw) > session.EMBED_LIMIT:
            return (f"Session saved WITHOUT the data ({len(raw) / 2 ** 20:.0f} MiB is above the embedding limit): "
                    f"loading it needs {name} (sha256 {sha}…) in the data folder.")
        return (f"Session saved with the data embedded (compressed, base64; sha256 {sha}…): a colleague can reload "
                "it without the file. The link below downloads it.")

    @property
    def result(self) -> fitting.FitResult | None:
        """The fit shown, or None (cleared by new data)."""
        return self._fit

    @result.setter
    def result(self, value: Any) -> None:
        # The base stores its last drawn compute result under this name; here that is ``curves``
        # and ``result`` keeps its public meaning, the fit.
        self.curves = value

    #: the data shown (``spectrum["bias"]`` and ``spectrum.bias`` both work)
    spectrum = property(lambda self: self.data)
    #: the loaded grid, if the data come from one
    grid = property(lambda self: self.data.grid if self.data is not None else None)
    #: the last grid fit of the data shown
    grid_result = property(lambda self: self.grid_view.result)
    #: the table's rows: ``rows[name].value`` (also ``rows[name][0]``) … ``rows[name].error``
    rows = property(lambda self: self.table.rows)

    # ------------------------------------------------------------------ layout and observers
    def build(self) -> w.Widget:
        xs, ys = bq.LinearScale(), bq.LinearScale()
        self.line_data = bq.Lines(x=[0.0], y=[0.0], scales={"x": xs, "y": ys}, colors=["#333333"], marker="circle",
                                  marker_size=6, stroke_width=0.8, labels=["data"], display_legend=True)
        self.line_fit = bq.Lines(x=[0.0], y=[0.0], scales={"x": xs, "y": ys}, colors=["#c0392b"], stroke_width=2.2,
                                 labels=["model"], display_legend=True)
        self.fig = bq.Figure(marks=[self.line_data, self.line_fit], title="Data and model", legend_location="top-left",
                             axes=[bq.Axis(scale=xs, label="bias V (mV)"),
                                   bq.Axis(scale=ys, side="left", label="dI/dV")],
                             layout=w.Layout(width="100%", height="360px"),
                             fig_margin=dict(top=40, bottom=50, left=65, right=20))
        self.fig.add_class("gs-fitfig")
        rx, ry = bq.LinearScale(), bq.LinearScale()
        self.line_res = bq.Lines(x=[0.0], y=[0.0], scales={"x": rx, "y": ry}, colors=["#1f4e9c"])
        self.fig_res = bq.Figure(marks=[self.line_res], title="Residuals (data − model)",
                                 axes=[bq.Axis(scale=rx, label="bias V (mV)"), bq.Axis(scale=ry, side="left")],
                                 layout=w.Layout(width="100%", height="200px"),
                                 fig_margin=dict(top=35, bottom=45, left=65, right=20))
        return w.VBox([self.fig, self.fig_res, self.stats, self.compare_out, self.grid_view.widget, self.more],
                      layout=w.Layout(flex="1 1 auto", min_width="500px"))

    def marks(self) -> Iterable[w.Widget]:
        return (self.line_data, self.line_fit, self.line_res)

    def header(self) -> list[w.Widget]:
        return [self.loader.widget, self.model, self.window, self.intervals, self.table.widget,
                w.HBox([self.fit_button, self.compare_button])]

    def footer(self) -> list[w.Widget]:
        return [w.HBox([self.report_button, self.png_button, self.csv_button, self.nexus_button],
                       layout=w.Layout(flex_flow="row wrap")), self.download]

    def observers(self):
        return [*self.loader.observers(), *self.grid_view.observers(), *self.global_view.observers(),
                *self.deconv_view.observers(),
                (self.model, "value", self._model_changed),
                (self.fit_button, None, lambda _: self.run_fit(wait=False)),
                (self.compare_button, None, lambda _: self.run_compare(wait=False)),
                (self.report_button, None, lambda _: self.offer_report()),
                (self.png_button, None, lambda _: self.fig.save_png("gapscope_fit.png")),
                (self.csv_button, None, lambda _: self.offer_export("csv")),
                (self.nexus_button, None, lambda _: self.offer_export("nexus"))]

    # ------------------------------------------------------------------ values, compute, draw
    def extra_values(self) -> dict[str, Any]:
        return {"data": self.data, "model": self.model.value, "params": self.table.values()}

    def set_extra(self, name: str, value: Any) -> None:
        if name in self.table.rows:
            self.table.set_values({name: value})
        else:
            super().set_extra(name, value)

    def compute(self, values: dict[str, Any], task: Task) -> dict[str, Any] | None:
        data: LoadedData | None = values["data"]
        if data is None:
            return None
        model = fitting.evaluate(values["model"], data.bias, **values["params"])
        self.finite("model", model)
        return {"bias": data.bias, "didv": data.didv, "model": model, "finite": np.isfinite(data.didv),
                "label": data.label}

    def draw(self, r: dict[str, Any] | None) -> None:
        if r is None:
            self.stats.value = HINT
            return
        V, y, ok = r["bias"], r["didv"], r["finite"]
        self.line_data.x, self.line_data.y = V[ok], y[ok]
        self.line_fit.x, self.line_fit.y = V, r["model"]
        self.line_res.x, self.line_res.y = V[ok], (y - r["model"])[ok]
        self.fig.title = r["label"]

    def after_draw(self, result: Any) -> None:
        super().after_draw(result)
        # A model whose evaluation costs a solve (the Usadel junction: 0.2–1 s) is evaluated off the
        # event loop from then on, so typing in the table never freezes the page.
        if self.last_compute_s > self.LIVE_BUDGET:
            self.BACKGROUND = True

    # ------------------------------------------------------------------ data in
    def load_path(self, path: str) -> bool:
        """Load a file from the server's disk (spectrum or ``.3ds`` grid); False if it cannot be read."""
        return self.loader.load_path(path)

    def load_bytes(self, name: str, data: bytes) -> bool:
        """Parse a file's content; on failure show the reader's message and keep what was loaded."""
        return self.loader.load_bytes(name, data)

    def _on_data(self, data: LoadedData) -> None:
        new_demo = data.demo is not None and (self.data is None or self.data.demo is not data.demo)
        with self.batch():
            self.data = data
            self._clear_results()
            if new_demo:
                self._apply_demo(data.demo)
            elif not self.table.is_fixed("scale"):
                # instrument units (often ~1e-12 S): start the scale from the data, not from 1
                self.table.set_values({"scale": fitting.guess_scale(data.bias, data.didv)})
            lo, hi = float(data.bias[0]), float(data.bias[-1])
            with self.window.hold_trait_notifications():
                self.window.min, self.window.max = min(lo, self.window.min), max(hi, self.window.max)
                self.window.min, self.window.max = lo, hi
                self.window.value = (lo, hi)
            self.grid_view.show(data.grid)
            self.global_view.grid_changed()
            self.deconv_view.reset()

    def _clear_results(self) -> None:
        self._fit = None
        self.table.clear_errors()
        self.stats.value = self.compare_out.value = self.download.value = ""

    def _apply_demo(self, d: Demo) -> None:
        """The demo's model, starting from the model's defaults (not the last fit) and the demo's start values."""
        self.model.value = d.model
        self.table.set_model(fitting.MODELS[d.model], keep=False)
        self.table.set_values(d.fit_initial)
        for k in d.fit_initial:
            self.table.set_fixed(k, k in CHAIN_FIXED and k not in d.fit_free)
        for k in d.fit_free:
            self.table.set_fixed(k, False)

    def _model_changed(self, change: dict[str, Any]) -> None:
        with self.batch():
            self.table.set_model(fitting.MODELS[change["new"]])

    # ------------------------------------------------------------------ fits
    def run_fit(self, *, wait: bool = True) -> fitting.FitResult | None:
        """Fit the current model to the data shown; fill the table's values and ± and draw the fit.

        Parameters
        ----------
        wait : bool
            Block until the fit is shown and return it (default); False returns None at once.

        Returns
        -------
        FitResult or None
            None if the fit failed, was cancelled or dropped, or runs in the background.
        """
        data, model = self.data, self.model.value
        if data is None:
            self.show_message("Nothing to fit: load data or pick a demo first.", level="warning")
            return None
        args = dict(self.table.fit_arguments(), window=tuple(self.window.value),
                    intervals=None if self.intervals.value == "covariance" else self.intervals.value)

        def job(task: Task) -> fitting.FitResult:
            task.progress(0.0, f"fitting {model} …")
            try:
                return fitting.fit(data.bias, data.didv, model=model, **args)
            except (ValueError, RuntimeError) as exc:
                raise PanelInputError(f"Fit failed: {exc}") from exc

        future = self.submit(job, lambda r: self._show_fit(r, data), label=f"fitting {model} …")
        if not wait:
            return None
        r = future.result()
        return r if r is not None and self._fit is r else None

    def _show_fit(self, r: fitting.FitResult, data: LoadedData) -> None:
        if data is not self.data or r.model != self.model.value:
            self.show_message("The data or the model changed during the fit; its result was dropped.",
                              level="warning")
            return
        with self.batch():
            self.table.show_result(r)
            self._fit = r
        self.stats.value = stats_html(r)
        doubts = fitting.plausibility(r)
        if doubts:
            self.show_message("Check this fit: " + "; ".join(doubts) + ".", level="warning")

    def run_compare(self, models: tuple[str, ...] = COMPARE_MODELS, *, wait: bool = True) -> list[fitting.FitResult]:
        """Fit ``models`` (registered names) with shared Δ, Γ and chain; show them ranked by AIC.

        Parameters
        ----------
        models : tuple of str
            Registered model names.
        wait : bool
            Block until done and return the ranking (default); False returns ``[]`` at once.

        Returns
        -------
        list of FitResult
            Best (lowest AIC) first; empty if it failed, was dropped or runs in the background.
        """
        data = self.data
        if data is None:
            self.show_message("Nothing to compare: load data or pick a demo first.", level="warning")
            return []
        args = self.table.fit_arguments()
        initial = {k: args["initial"][k] for k in COMPARE_SHARED if k in args["initial"]}
        fixed = {k: v for k, v in args["fixed"].items() if k in CHAIN_FIXED}
        window = tuple(self.window.value)

        def job(task: Task) -> list[fitting.FitResult]:
            results = []
            for i, name in enumerate(models):
                task.progress(i / len(models), f"fitting {name} ({i + 1} of {len(models)}) …")
                try:
                    results += fitting.compare(data.bias, data.didv, models=(name,), initial=initial, fixed=fixed,
                                               window=window)
                except (ValueError, RuntimeError) as exc:
                    raise PanelInputError(f"Comparison failed ({name}): {exc}") from exc
            return sorted(results, key=lambda r: r.aic)

        def done(ranked: list[fitting.FitResult]) -> None:
            if data is not self.data:
                self.show_message("The data changed during the comparison; its result was dropped.", level="warning")
                return
            self.compare_out.value = compare_html(ranked)

        future = self.submit(job, done, label="comparing models …")
        if not wait:
            return []
        ranked = future.result()
        return ranked if ranked and data is self.data else []

    def offer_report(self) -> None:
        """A download link of the JSON report of the fit shown, with the data's provenance."""
        if self._fit is None or self.data is None:
            self.show_message("Fit first; the report describes a fit.", level="warning")
            return
        payload = base64.b64encode(self._fit.to_json(**self.data.provenance).encode()).decode()
        self.download.value = (f'<a download="gapscope_fit.json" href="data:application/json;base64,{payload}" '
                               'class="gs-download">⬇ gapscope_fit.json</a>')

    def export_bytes(self, kind: str) -> tuple[str, bytes]:
        """(file name, content) of an export of the data shown — and the fit of it, if any — with provenance.

        ``kind`` "csv": the data as read (every channel; a grid pixel by pixel), then the fit's table; a demo's
        synthetic spectrum as bias and dI/dV.  ``kind`` "nexus": one NeXus/HDF5 file with the data, the fit and a
        loaded topography.
        """
        import tempfile
        from pathlib import Path

        from gapscope.kernels import readers

        if self.data is None:
            raise PanelInputError("Load data first: an export describes the data shown.")
        src = self.loader._source or {}
        obj = src.get("grid") or src.get("spectrum")
        stem = Path(str(self.data.provenance.get("file", "data"))).stem.replace("synthetic:", "synthetic-")[:60]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "export"
            if kind == "csv":
                if obj is None:                     # a demo: the synthetic spectrum itself
                    text = "".join(f"# {k}: {v}\n" for k, v in self.data.provenance.items() if k != "true_values")
                    text += "bias (mV),didv\n" + "".join(f"{a:.9g},{b:.9g}\n"
                                                       for a, b in zip(self.data.bias, self.data.didv, strict=True))
                    parts = [text.encode()]
                else:
                    readers.write_csv(out, obj)
                    parts = [out.read_bytes()]
                if self._fit is not None:
                    readers.write_csv(out, self._fit, source=obj)
                    parts.append(b"\n" + out.read_bytes())
                return f"{stem}-gapscope.csv", b"".join(parts)
            if kind == "nexus":
                if obj is None:
                    raise PanelInputError("NeXus export needs data from a file (a demo is synthetic).")
                readers.write_nexus(out, obj, fit=self._fit, image=self.loader.image,
                                    extra={k: str(v) for k, v in self.data.provenance.items()})
                return f"{stem}-gapscope.nxs", out.read_bytes()
        raise ValueError(f"unknown export kind {kind!r}")

    def offer_export(self, kind: str) -> None:
        """A download link for :meth:`export_bytes` (or, past 20 MB, a file in the data folder's exports/)."""
        try:
            name, content = self.export_bytes(kind)
        except (PanelInputError, ValueError) as exc:
            self.show_message(str(exc), level="error")
            return
        if len(content) > 20 * 2 ** 20:
            target = self.data_root.root / "exports"
            target.mkdir(exist_ok=True)
            (target / name).write_bytes(content)
            self.show_message(f"The export is {len(content) / 2 ** 20:.0f} MB: written to exports/{name} in the "
                              "data folder.", level="info")
            return
        mime = "text/csv" if kind == "csv" else "application/x-hdf5"
        payload = base64.b64encode(content).decode()
        self.download.value = (f'<a download="{name}" href="data:{mime};base64,{payload}" class="gs-download">'
                               f"⬇ {name}</a>")

    def wait(self, timeout: float | None = 60.0) -> None:
        """Block until fits, comparisons and a grid fit running in the background have finished."""
        super().wait(timeout)
        self.grid_view.wait(timeout)

    # ------------------------------------------------------------------ grids
    def start_grid_fit(self, *, wait: bool = False, resume: str | None = None) -> None:
        """Fit every pixel of the loaded grid in the background on all cores; Cancel stops it."""
        data = self.data
        if data is None or data.grid is None:
            self.show_message("Load a .3ds grid first.", level="warning")
            return
        args = dict(self.table.fit_arguments(), window=tuple(self.window.value))
        if resume is not None:
            try:
                resume = str(self.data_root.resolve_write(resume, suffix=".npz"))
            except PathRefused as exc:
                self.show_message(f"Save/resume file: {exc}", level="error")
                return
        if not self.grid_view.start(data.grid.bias, data.grid_didv, model=self.model.value, arguments=args,
                                    resume=resume, wait=wait):
            self.show_message("A grid fit is already running.", level="warning")
