"""Base class of all panels: controls from declarations, one observer hub, one redraw.

A subclass declares ``PARAMS`` and implements

* ``build()`` — create figures and marks once, return the plot area widget;
* ``redraw(values)`` — call kernels and mutate marks (called inside ``hold_sync``);

and may add its own controls in ``extra_controls()``.  The base class wires every
observer in :meth:`wire`, turns bad input into a message in the panel (the previous curves
stay), offers a manual-update toggle for slow models, and switches sliders from
"update while dragging" to "update on release" when a redraw is measured to be slow.
"""

from __future__ import annotations

import contextlib
import html
import logging
import time
from typing import Any, ClassVar, Iterable

import ipywidgets as w
import numpy as np

from .params import Param, ParamControl

__all__ = ["Panel", "PanelInputError", "reference_html"]

log = logging.getLogger("gapscope.widgets")


def reference_html(reference: str, doi: str, note: str) -> str:
    """A preset's source line: reference, DOI link (or a plain statement that none is known), note."""
    link = (f' DOI <a href="https://doi.org/{html.escape(doi)}" target="_blank">{html.escape(doi)}</a>.' if doi
            else " (DOI not stated in the source text.)")
    return (f'<div style="font-size:0.85em;max-width:26em">{html.escape(reference)}.{link}<br>'
            f"{html.escape(note)}</div>")


class PanelInputError(ValueError):
    """Raised by a panel's redraw for input it cannot show; the text goes to the panel."""


class Panel:
    """One interactive topic: controls, figures, and a single redraw."""

    TITLE: ClassVar[str] = ""
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    #: a redraw slower than this (s) switches the sliders to update-on-release
    LIVE_BUDGET: ClassVar[float] = 0.08
    #: width of the control column
    SIDEBAR_WIDTH: ClassVar[str] = "27em"

    def __init__(self, **values: float) -> None:
        unknown = set(values) - {p.name for p in self.PARAMS}
        if unknown:
            raise TypeError(f"{type(self).__name__} has no parameters {sorted(unknown)}")
        self.controls: dict[str, ParamControl] = {p.name: p.control(values.get(p.name)) for p in self.PARAMS}
        self.message = w.HTML(layout=w.Layout(min_height="1.5em"))
        self.message.add_class("gs-message")
        self.manual = w.ToggleButton(value=False, description="Manual update", icon="hand-paper-o",
                                     tooltip="Recompute only when 'Update' is pressed (for slow models)")
        self.update_button = w.Button(description="Update", icon="refresh", disabled=True)
        self.last_redraw_s = 0.0
        self.redraw_count = 0
        self._stale = False
        self.plot_area = self.build()
        self.widget = self.layout()
        self.wire()
        self.refresh()

    # ------------------------------------------------------------------ subclass API
    def build(self) -> w.Widget:
        raise NotImplementedError

    def redraw(self, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def extra_controls(self) -> Iterable[w.Widget]:
        """Non-numeric controls (dropdowns, toggles) observed like the parameters."""
        return ()

    def marks(self) -> Iterable[w.Widget]:
        """Marks and scales mutated by ``redraw`` (held in one sync batch)."""
        return ()

    def sidebar(self) -> list[w.Widget]:
        return [*self.extra_controls(), *self.controls.values(), w.HBox([self.manual, self.update_button])]

    def layout(self) -> w.Widget:
        side = w.VBox(self.sidebar(), layout=w.Layout(width=self.SIDEBAR_WIDTH, flex="0 0 auto"))
        body = w.HBox([side, self.plot_area], layout=w.Layout(width="100%"))
        box = w.VBox([body, self.message])
        box.add_class("gs-panel")
        return box

    # ------------------------------------------------------------------ values
    @property
    def values(self) -> dict[str, Any]:
        """Current values of every declared parameter and extra control, by name."""
        out: dict[str, Any] = {n: c.value for n, c in self.controls.items()}
        out.update(self.extra_values())
        return out

    def extra_values(self) -> dict[str, Any]:
        return {}

    def set(self, **values: Any) -> None:
        """Set several parameters with a single redraw (used by presets and tests)."""
        with self.batch():
            for k, v in values.items():
                if k in self.controls:
                    self.controls[k].value = v
                else:
                    self.set_extra(k, v)

    def set_extra(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} has no control {name!r}")

    @contextlib.contextmanager
    def batch(self):
        """Suspend redraws inside the block, then redraw once."""
        self._batching = getattr(self, "_batching", 0) + 1
        try:
            yield
        finally:
            self._batching -= 1
            if self._batching == 0:
                self._changed(None)

    # ------------------------------------------------------------------ observers
    def wire(self) -> None:
        """Every observer of the panel, in one place."""
        for c in self.controls.values():
            c.observe(self._changed, "value")
        for c in self.extra_controls():
            if hasattr(c, "value"):
                c.observe(self._changed, "value")
        self.manual.observe(self._manual_toggled, "value")
        self.update_button.on_click(lambda _: self.refresh())

    def _manual_toggled(self, change: dict) -> None:
        self.update_button.disabled = not change["new"]
        if not change["new"] and self._stale:
            self.refresh()

    def _changed(self, change: dict | None) -> None:
        if getattr(self, "_batching", 0):
            return
        if self.manual.value:
            self._stale = True
            self.update_button.button_style = "warning"
            return
        self.refresh()

    # ------------------------------------------------------------------ redraw
    def refresh(self) -> bool:
        """Redraw now; bad input becomes a message and leaves the previous curves.

        Returns True when the plots were updated.
        """
        t0 = time.perf_counter()
        self.show_message("")
        try:
            with contextlib.ExitStack() as stack:
                for m in self.marks():
                    stack.enter_context(m.hold_sync())
                self.redraw(self.values)
        except (PanelInputError, ValueError) as exc:
            self.show_message(str(exc), level="error")
            return False
        except Exception as exc:  # never a traceback in the dashboard
            log.exception("redraw failed")
            self.show_message(f"Internal error ({type(exc).__name__}): {exc}. The plots show the last "
                              "valid state.", level="error")
            return False
        finally:
            self.last_redraw_s = time.perf_counter() - t0
        self.redraw_count += 1
        self._stale = False
        self.update_button.button_style = ""
        self._adapt_live_updates()
        return True

    def _adapt_live_updates(self) -> None:
        """Continuous updates for cheap parameters while a redraw is measured to be fast."""
        fast = self.last_redraw_s <= self.LIVE_BUDGET
        for c in self.controls.values():
            c.set_continuous(fast and c.param.live)

    def show_message(self, text: str, level: str = "info") -> None:
        colour = {"error": "#b00020", "warning": "#8a5a00", "info": "#555"}[level]
        self.message.value = (f'<span class="gs-{level}" style="color:{colour}">{html.escape(text)}</span>'
                              if text else "")

    @staticmethod
    def finite(name: str, *arrays: np.ndarray) -> None:
        """Raise PanelInputError if any array holds NaN/inf (nothing non-finite is plotted)."""
        for a in arrays:
            if not np.all(np.isfinite(a)):
                raise PanelInputError(f"{name} is not finite for these parameters; the plots were not updated")

    def _ipython_display_(self) -> None:  # pragma: no cover - notebook only
        from IPython.display import display
        display(self.widget)
