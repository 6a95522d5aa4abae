"""Pixel-by-pixel fits of a grid: controls, progress, cancel, save/resume and the map.

:class:`GridFitView` runs :func:`gapscope.kernels.fitting.fit_grid` on a background thread
(its pixels go to worker processes) and shows one fitted quantity as a map.  It is hidden
until a grid is shown; a new grid, channel or normalisation resets it (a running fit is
cancelled and its result dropped), so the map always belongs to the data shown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from gapscope.kernels import fitting, readers

from .colormap import to_png

__all__ = ["GridFitView", "MAPS"]

#: quantities that can be mapped
MAPS = ("delta", "gamma", "redchi")


class GridFitView:
    """Grid-fit controls and map.

    Parameters
    ----------
    on_start : callable
        ``on_start(resume)`` — the "Fit grid" button; ``resume`` is the save/resume file or None.
        The owner gathers the fit settings and calls :meth:`start`.
    on_message : callable
        ``on_message(text, level)`` — a failed grid fit.
    """

    def __init__(self, on_start: Callable[[str | None], None], on_message: Callable[[str, str], None]) -> None:
        self.on_start, self.on_message = on_start, on_message
        self.param = w.Dropdown(options=list(MAPS), value="delta", description="Map")
        self.start_button = w.Button(description="Fit grid", icon="th")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, description="pixels")
        mx, my = bq.LinearScale(), bq.LinearScale()
        self.image = bq.Image(image=w.Image(value=to_png(np.zeros((2, 2))), format="png"),
                              scales={"x": mx, "y": my}, x=[0.0, 1.0], y=[0.0, 1.0])
        self.fig = bq.Figure(marks=[self.image], title="grid fit", min_aspect_ratio=1, max_aspect_ratio=1,
                             axes=[bq.Axis(scale=mx, label="x (nm)"), bq.Axis(scale=my, side="left", label="y (nm)")],
                             layout=w.Layout(width="340px", height="340px"))
        self.fig.add_class("gs-gridmap")
        tx, ty = bq.LinearScale(), bq.LinearScale()
        self.topo = bq.Image(image=w.Image(value=to_png(np.zeros((2, 2))), format="png"),
                             scales={"x": tx, "y": ty}, x=[0.0, 1.0], y=[0.0, 1.0])
        self.frame = bq.Lines(x=[0.0], y=[0.0], scales={"x": tx, "y": ty}, colors=["#ff4136"], stroke_width=2)
        self.topo_fig = bq.Figure(marks=[self.topo, self.frame], title="topography", min_aspect_ratio=1,
                                  max_aspect_ratio=1, layout=w.Layout(width="340px", height="340px", display="none"),
                                  axes=[bq.Axis(scale=tx, label="x (nm)"),
                                        bq.Axis(scale=ty, side="left", label="y (nm)")])
        self.topo_fig.add_class("gs-topography")
        self.topography: readers.Image | None = None
        self._grid: readers.Grid | None = None
        self.info = w.HTML()
        self.save = w.Text(placeholder="save/resume file in the data folder (.npz)", layout=w.Layout(width="18em"),
                           tooltip="results are saved here after every chunk; an existing file is resumed")
        self.widget = w.VBox([w.HBox([self.start_button, self.cancel_button, self.progress, self.param]),
                              self.save, w.HBox([self.fig, self.topo_fig, self.info])],
                             layout=w.Layout(display="none"))
        self.result: fitting.GridFitResult | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._generation = 0

    def observers(self) -> list[tuple[w.Widget, str | None, Callable]]:
        """(widget, trait, callback) of every control, for the panel to wire."""
        return [(self.start_button, None, lambda _: self.on_start(self.save.value.strip() or None)),
                (self.cancel_button, None, lambda _: self.cancel()),
                (self.param, "value", lambda _: self.draw_map())]

    # ------------------------------------------------------------------ state
    def show(self, grid: readers.Grid | None) -> None:
        """Show the controls for ``grid`` (hide them for None); any previous grid result is dropped."""
        self.reset()
        self._grid = grid
        if grid is None:
            self.widget.layout.display = "none"
            return
        self._draw_frame()
        self.image.x, self.image.y = [float(grid.x[0]), float(grid.x[-1])], [float(grid.y[0]), float(grid.y[-1])]
        self.progress.max = max(int(grid.x.size * grid.y.size), 1)
        self.widget.layout.display = "flex"

    def reset(self) -> None:
        """Cancel a running fit and drop its result and the map."""
        self._cancel.set()
        self._generation += 1
        self.result = None
        self.progress.value = 0
        self.info.value = ""
        self.fig.title = "grid fit"
        self._set_image(np.zeros((2, 2)), 0.0, 1.0)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cancel(self) -> None:
        """Stop after the running chunks; the pixels fitted so far are shown."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a running grid fit has finished (tests, scripts)."""
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ fitting
    def start(self, bias: np.ndarray, data: np.ndarray, *, model: str, arguments: Mapping[str, Any],
              resume: str | None = None, wait: bool = False) -> bool:
        """Fit every pixel of ``data`` (nx, ny, nbias) in the background.

        Parameters
        ----------
        bias, data : numpy.ndarray
            Biases (mV) and the grid's conductance.
        model : str
            Registered model name.
        arguments : mapping
            ``initial``, ``fixed``, ``bounds`` and ``window`` of :func:`fitting.fit_grid`.
        resume : str, optional
            Save/resume file (``.npz``).
        wait : bool
            Block until the fit has finished.

        Returns
        -------
        bool
            False if a grid fit is already running (nothing started).
        """
        if self.running:
            return False
        self._cancel = cancel = threading.Event()
        generation = self._generation
        self.cancel_button.disabled, self.start_button.disabled = False, True
        self.progress.value = 0

        def progress(done: int, total: int) -> None:
            if generation == self._generation:
                self.progress.value = done

        def work() -> None:
            try:
                r = fitting.fit_grid(bias, data, model=model, progress=progress, cancel=cancel, resume=resume,
                                     **arguments)
                if generation != self._generation:
                    return                                   # the data changed meanwhile: drop it
                self.result = r
                self.info.value = (f"{int(r.done.sum())} of {r.done.size} pixels in {r.elapsed:.1f} s"
                                   + (" (cancelled)" if r.cancelled else ""))
                self.draw_map()
            except Exception as exc:       # shown in the panel, never a traceback
                self.on_message(f"Grid fit failed: {exc}", "error")
            finally:
                self.cancel_button.disabled, self.start_button.disabled = True, False

        self._thread = threading.Thread(target=work, daemon=True, name="gapscope-grid-fit")
        self._thread.start()
        if wait:
            self._thread.join()
        return True

    # ------------------------------------------------------------------ map
    def draw_map(self) -> None:
        """Show the chosen quantity of the last result (1–99 % colour range)."""
        r = self.result
        if r is None:
            return
        name = self.param.value
        m = r.redchi if name == "redchi" else r.values.get(name)
        if m is None or not np.isfinite(m).any():
            return
        lo, hi = np.percentile(m[np.isfinite(m)], [1, 99])
        self._set_image(np.where(np.isfinite(m), m, lo).T[::-1], float(lo), float(hi))   # rows: y from top
        self.fig.title = f"{name}: {lo:.3g} … {hi:.3g}"

    def set_topography(self, img: readers.Image) -> None:
        """Show an image's topography beside the maps, with the loaded grid's frame outlined on it."""
        z = np.asarray(img.channels[img.topography], dtype=float)          # (nx, ny), y up
        finite = z[np.isfinite(z)]
        lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
        old = self.topo.image
        self.topo.image = w.Image(value=to_png(np.where(np.isfinite(z), z, lo).T[::-1], float(lo), float(hi)),
                                  format="png")
        old.close()
        self.topo.x, self.topo.y = [float(img.x[0]), float(img.x[-1])], [float(img.y[0]), float(img.y[-1])]
        unit = img.units.get(img.topography, "")
        self.topo_fig.title = f"{img.topography}: {lo:.3g} … {hi:.3g} {unit}".strip()
        self.topography = img
        self.topo_fig.layout.display = "flex"
        self._draw_frame()

    def _draw_frame(self) -> None:
        if self.topography is None or self._grid is None:
            self.frame.x, self.frame.y = [0.0], [0.0]
            return
        try:
            outline = self.topography.outline_of(self._grid)
        except (readers.FileFormatError, ValueError) as exc:
            self.on_message(f"The grid's frame cannot be placed on the image: {exc}", "warning")
            self.frame.x, self.frame.y = [0.0], [0.0]
            return
        self.frame.x, self.frame.y = outline[:, 0], outline[:, 1]

    def _set_image(self, img: np.ndarray, lo: float, hi: float) -> None:
        old = self.image.image
        self.image.image = w.Image(value=to_png(img, lo, hi), format="png")
        old.close()
