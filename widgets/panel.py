"""Base class of all panels: controls from specs, observers in one place, compute then draw.

A panel is one topic's view.  A subclass declares ``PARAMS`` (:class:`~.params.Param`
records over the kernels' specs) and implements a few hooks; it never rewires or re-lays
out the base:

* ``build()`` — create figures and marks once; return the plot area;
* ``compute(values, task) → result`` — **pure**: kernels only, no widget access, so it is
  testable, benchmarked and safe to run on a worker thread;
* ``draw(result)`` — mutate marks from a result (run inside ``hold_sync`` of ``marks()``);
* optional: ``make_extras()`` (named non-numeric controls, observed like the parameters),
  ``header()``/``footer()`` (widgets above and below the parameter controls),
  ``observers()`` (the panel's own callbacks, wired here with the rest), ``cache_key()``.

Slow topics set ``BACKGROUND = True``: ``compute`` then runs on a worker thread while the
rest of the panel stays responsive, with a visible "computing…" state, a progress bar fed
through ``task.progress``, a Cancel button, and an LRU cache of recent results, so that
moving back to a previous state is instant.  A newer request supersedes a running one
(its result is dropped; ``task.cancelled`` tells cooperative kernels to stop early).  A compute
may hand over a first result with ``task.publish`` (a spectrum before its slow map): it is drawn
at once, and the final result replaces it.

Every panel saves and restores its whole state as one JSON session file (``panel.save(path)``,
``Panel.load(path)``, the "Save session"/"Load session" controls under the footer; see
``session.py``): parameters, preset, extras and other input widgets are found generically; a
panel with state that is no widget overrides ``state_extra``/``check_extra``/``restore_extra``.

Bad input becomes a message in the panel (the previous curves stay); an unexpected error
becomes a message too, never a traceback.  Sliders switch from "update while dragging" to
"update on release" when an update is measured to be slow.
"""

from __future__ import annotations

import contextlib
import functools
import html
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import ipywidgets as w
import numpy as np

from . import session as _session
from .params import Param, ParamControl

__all__ = ["Panel", "PanelInputError", "Cancelled", "Task", "reference_html"]

log = logging.getLogger("gapscope.widgets")


def reference_html(reference: str, doi: str | None, note: str) -> str:
    """A preset's source line: reference, DOI link (or a plain statement that none is known), note."""
    link = (f' DOI <a href="https://doi.org/{html.escape(doi)}" target="_blank">{html.escape(doi)}</a>.' if doi
            else " (DOI not found.)")
    return (f'<div style="font-size:0.85em;max-width:26em">{html.escape(reference)}.{link}<br>'
            f"{html.escape(note)}</div>")


def _sending_new_widgets_once(init: Callable[..., None]) -> Callable[..., None]:
    """Widgets built while a panel is constructed send their later changes (classes, tooltips, the first
    draw) in one update each when construction ends, instead of one message per change: fewer messages for
    Voilà to relay per page (comm_msg per gap page 89 → 56, proximity 162 → 87; docs/class-server.md)."""
    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        previous = w.Widget._widget_construction_callback
        if getattr(previous, "gapscope_hold", False):        # an outer (subclass) constructor holds already
            init(self, *args, **kwargs)
            return
        held: list[contextlib.AbstractContextManager] = []

        def hold(widget: w.Widget) -> None:
            ctx = widget.hold_sync()
            ctx.__enter__()
            held.append(ctx)
            if previous is not None:
                previous(widget)
        hold.gapscope_hold = True  # type: ignore[attr-defined]
        w.Widget._widget_construction_callback = hold
        try:
            init(self, *args, **kwargs)
        finally:
            w.Widget._widget_construction_callback = previous
            for ctx in held:
                ctx.__exit__(None, None, None)
    return wrapper


class PanelInputError(ValueError):
    """Raised by a panel's compute for input it cannot show; the text goes to the panel."""


class Cancelled(Exception):
    """Raised inside a background compute when its task was cancelled or superseded."""


class Task:
    """What a running compute sees of the panel: progress reporting, staged results and cancellation.

    ``progress(fraction, text)`` updates the panel's progress bar (thread-safe: it only sets
    traits); ``check()`` raises :class:`Cancelled` once the task was cancelled, so kernels
    that loop can stop early; ``cancelled`` tells without raising.  ``publish(result)`` hands
    a first, partial result to the panel while the compute goes on (a spectrum before its
    slow map): a background panel draws it at once if the task is still current (not cached,
    and ``draw`` sees the same kind of result as the final one); elsewhere it is ignored.
    """

    def __init__(self, on_progress: Callable[[float, str], None] | None = None,
                 on_publish: Callable[[Any], None] | None = None) -> None:
        self._event = threading.Event()
        self._on_progress = on_progress
        self._on_publish = on_publish

    def publish(self, result: Any) -> None:
        self.check()
        if self._on_publish is not None:
            self._on_publish(result)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        self._event.set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def progress(self, fraction: float, text: str = "") -> None:
        self.check()
        if self._on_progress is not None:
            self._on_progress(float(min(max(fraction, 0.0), 1.0)), text)


class Panel:
    """One interactive topic: controls, figures, and compute → draw."""

    TITLE: ClassVar[str] = ""
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    #: run ``compute`` on a worker thread (for topics whose solves take longer than a frame)
    BACKGROUND: ClassVar[bool] = False
    #: recent results kept for instant return to a previous state (0: no cache)
    CACHE_SIZE: ClassVar[int] = 0
    #: an update slower than this (s) switches the sliders to update-on-release
    LIVE_BUDGET: ClassVar[float] = 0.08
    #: width of the control column
    SIDEBAR_WIDTH: ClassVar[str] = "29em"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:          # a subclass's widgets built before super().__init__() too
            cls.__init__ = _sending_new_widgets_once(cls.__dict__["__init__"])  # type: ignore[method-assign]

    @_sending_new_widgets_once
    def __init__(self, **values: Any) -> None:
        self.extras: dict[str, w.Widget] = dict(self.make_extras())
        names = {p.name for p in self.PARAMS}
        unknown = set(values) - names - set(self.extras)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no parameters {sorted(unknown)}")
        self.controls: dict[str, ParamControl] = {p.name: p.control(values.get(p.name)) for p in self.PARAMS}
        for k, v in values.items():
            if k in self.extras:
                self.extras[k].value = v
        self.message = w.HTML(layout=w.Layout(min_height="1.5em"))
        self.message.add_class("gs-message")
        self.manual = w.ToggleButton(value=False, description="Manual update", icon="hand-paper-o",
                                     tooltip="Recompute only when 'Update' is pressed (for slow models)")
        self.update_button = w.Button(description="Update", icon="refresh", disabled=True)
        self.reset_button = w.Button(description="Reset", icon="undo", layout=w.Layout(width="8em"),
                                     tooltip="back to the chosen preset (or the defaults): undoes moved sliders")
        self.reset_button.add_class("gs-reset")
        self.status = w.HTML()
        self.status.add_class("gs-status")
        self.progress_bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="12em"))
        self.cancel_button = w.Button(description="Cancel", icon="stop", layout=w.Layout(width="7em"))
        self.cancel_button.add_class("gs-cancel")
        self.busy_box = w.HBox([self.status, self.progress_bar, self.cancel_button],
                               layout=w.Layout(display="none"))
        self.session_bar = _session.SessionBar(self, self._session_root)
        self.last_redraw_s = 0.0
        self.last_compute_s = 0.0
        #: seconds from a change to the draw of the last staged (partial) result (0: none yet)
        self.last_partial_s = 0.0
        self.redraw_count = 0
        self.result: Any = None
        self._stale = False
        self._batching = 0
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.RLock()
        self._seq = 0
        self._task: Task | None = None
        self._future: Future | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._jobs: ThreadPoolExecutor | None = None
        self._job_task: Task | None = None
        self._job_future: Future | None = None
        self._initial = {**{n: c.value for n, c in self.controls.items()},
                         **{n: c.value for n, c in self.extras.items() if hasattr(c, "value")}}
        self.plot_area = self.build()
        self.widget = self.layout()
        self._wire()
        # The first state is computed before the panel is shown, even for a background panel: a page then
        # arrives complete (Voilà waits for it) instead of racing its first result against the page's load.
        self.refresh(wait=True)

    # ------------------------------------------------------------------ subclass hooks
    def make_extras(self) -> dict[str, w.Widget]:
        """Named non-numeric controls (dropdowns, toggles); their ``value`` joins :attr:`values`."""
        return {}

    def build(self) -> w.Widget:
        raise NotImplementedError

    def compute(self, values: dict[str, Any], task: Task) -> Any:
        """Pure computation of everything ``draw`` needs (no widget access)."""
        raise NotImplementedError

    def draw(self, result: Any) -> None:
        """Mutate marks from a result of :meth:`compute`."""
        raise NotImplementedError

    def marks(self) -> Iterable[w.Widget]:
        """Marks and scales mutated by ``draw`` (held in one sync batch)."""
        return ()

    def header(self) -> list[w.Widget]:
        """Widgets above the parameter controls (default: the extras)."""
        return list(self.extras.values())

    def footer(self) -> list[w.Widget]:
        """Widgets below the parameter controls (exports, downloads)."""
        return []

    def observers(self) -> Iterable[tuple[w.Widget, str | None, Callable]]:
        """The panel's own callbacks: (widget, trait, callback), or (button, None, on_click)."""
        return ()

    def cache_key(self, values: dict[str, Any]) -> Hashable:
        """Key of a result in the cache: by default every value."""
        return repr(sorted(values.items()))

    # ------------------------------------------------------------------ layout
    def sidebar(self) -> list[w.Widget]:
        return [*self.header(), *self.controls.values(), w.HBox([self.manual, self.update_button]),
                self.busy_box, *self.footer(), self.session_bar.widget]

    def layout(self) -> w.Widget:
        side = w.VBox(self.sidebar(), layout=w.Layout(width=self.SIDEBAR_WIDTH, flex="0 0 auto"))
        body = w.HBox([side, self.plot_area], layout=w.Layout(width="100%"))
        box = w.VBox([self.message, body])
        box.add_class("gs-panel")
        return box

    # ------------------------------------------------------------------ values
    @property
    def values(self) -> dict[str, Any]:
        """Current values of every parameter and extra control, by name."""
        out: dict[str, Any] = {n: c.value for n, c in self.controls.items()}
        out.update({n: c.value for n, c in self.extras.items() if hasattr(c, "value")})
        out.update(self.extra_values())
        return out

    def extra_values(self) -> dict[str, Any]:
        """Values that are not controls (e.g. a tip position set by clicking)."""
        return {}

    def set(self, **values: Any) -> None:
        """Set several parameters with a single update (used by presets and tests)."""
        with self.batch():
            for k, v in values.items():
                if k in self.controls:
                    self.controls[k].value = v
                elif k in self.extras:
                    self.extras[k].value = v
                else:
                    self.set_extra(k, v)

    def set_extra(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} has no control {name!r}")

    def reset(self) -> None:
        """Every control back to the panel's starting values (panels with presets re-apply the chosen one)."""
        self.set(**self._initial)

    @contextlib.contextmanager
    def batch(self):
        """Suspend updates inside the block, then update once."""
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            if self._batching == 0:
                self._changed(None)

    # ------------------------------------------------------------------ sessions (see session.py)
    def state(self) -> dict[str, Any]:
        """The whole state of the dashboard as JSON data (parameters, preset, extras, other widgets, extra)."""
        return _session.panel_state(self)

    def restore(self, state: dict[str, Any]) -> None:
        """Check every field of a saved ``state`` (:class:`~.session.SessionError` if any is refused, with
        nothing changed), then apply it in one update."""
        checked = _session.check_state(self, state)
        _session.apply_state(self, checked)
        if self.manual.value:
            self.refresh()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the session (one JSON file, with an integrity digest) to ``path``."""
        return _session.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike | bytes, **kwargs: Any) -> Panel:
        """A new panel of the class the session file names, in its saved state (``kwargs``: constructor's)."""
        return _session.load(path, cls=cls, **kwargs)

    def session_widgets(self) -> dict[str, w.Widget]:
        """Input widgets saved beside the parameters and extras (default: found on the panel)."""
        return _session.discover_widgets(self)

    def state_extra(self) -> dict[str, Any]:
        """Saved state that is not a widget (default: :meth:`extra_values` as JSON)."""
        return _session.generic_extra(self)

    def check_extra(self, extra: Any, where: _session.Check) -> Any:
        """Check the saved :meth:`state_extra` (default: known keys, each shaped like the current value)."""
        return _session.check_generic_extra(self, extra, where)

    def restore_extra(self, extra: Any) -> None:
        """Apply a checked :meth:`state_extra` (default: :meth:`set`, collections first)."""
        _session.apply_generic_extra(self, extra)

    def session_note(self) -> str:
        """What the user is told when a session is offered for download."""
        return "Session saved: the link below downloads it; “Load session” restores it here or on another page."

    def _session_root(self) -> Any:
        from .dataroot import DataRoot
        root = getattr(self, "data_root", None)
        return root if isinstance(root, DataRoot) else DataRoot()

    # ------------------------------------------------------------------ observers (all of them)
    def _wire(self) -> None:
        for c in self.controls.values():
            c.observe(self._changed, "value")
        for c in self.extras.values():
            if hasattr(c, "value"):
                c.observe(self._changed, "value")
        self.manual.observe(self._manual_toggled, "value")
        self.update_button.on_click(lambda _: self.refresh())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.reset_button.on_click(lambda _: self.reset())
        for widget, trait, callback in [*self.observers(), *self.session_bar.observers()]:
            if trait is None:
                widget.on_click(callback)
            else:
                widget.observe(callback, trait)

    def _manual_toggled(self, change: dict) -> None:
        self.update_button.disabled = not change["new"]
        if not change["new"] and self._stale:
            self.refresh()

    def _changed(self, change: dict | None) -> None:
        if self._batching:
            return
        if self.manual.value:
            self._stale = True
            self.update_button.button_style = "warning"
            return
        self.refresh()

    # ------------------------------------------------------------------ compute → draw
    def refresh(self, *, wait: bool = False) -> bool:
        """Compute for the current values and draw (now, or on the worker for BACKGROUND panels).

        Returns True when the plots were updated (for a background panel: when the result came
        from the cache, or with ``wait=True`` when the computation finished and was drawn).
        """
        values = self.values
        key = self.cache_key(values) if self.CACHE_SIZE else None
        with self._lock:
            self._seq += 1
            seq = self._seq
            if self._task is not None:
                self._task.cancel()          # superseded: its result will be dropped
                self._task = None
            if key is not None and key in self._cache:
                self._cache.move_to_end(key)
                self._set_busy(False)
                return self._draw(self._cache[key], 0.0)
        if not self.BACKGROUND:
            t0 = time.perf_counter()
            ok, result = self._run_compute(values, Task())
            return self._draw(result, time.perf_counter() - t0, key=key) if ok else False
        t0 = time.perf_counter()
        task = Task(self._report_progress, lambda result: self._publish(result, task, seq, t0))
        with self._lock:
            self._task = task
            self._set_busy(True)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"gapscope-{type(self).__name__}")
            self._future = self._executor.submit(self._background, values, task, seq, key)
        if wait:
            return bool(self._future.result())
        return False

    def _run_compute(self, values: dict[str, Any], task: Task) -> tuple[bool, Any]:
        try:
            return True, self.compute(values, task)
        except Cancelled:
            return False, None
        except (PanelInputError, ValueError) as exc:
            self.show_message(str(exc), level="error")
        except Exception as exc:  # never a traceback in the dashboard
            log.exception("compute failed")
            self.show_message(f"Internal error ({type(exc).__name__}): {exc}. The plots show the last valid state.",
                              level="error")
        return False, None

    def _background(self, values: dict[str, Any], task: Task, seq: int, key: Hashable | None) -> bool:
        t0 = time.perf_counter()
        ok, result = self._run_compute(values, task)
        with self._lock:
            current = seq == self._seq
            if self._task is task:
                self._task = None
            self._set_busy(False)
            if not (ok and current) or task.cancelled:
                return False
            return self._draw(result, time.perf_counter() - t0, key=key)

    def _publish(self, result: Any, task: Task, seq: int, t0: float) -> None:
        """A background compute's staged result: drawn now if its task is still the current one."""
        with self._lock:
            if seq != self._seq or task.cancelled:
                raise Cancelled()
            if self._draw(result, time.perf_counter() - t0, adapt=False):
                self.last_partial_s = self.last_redraw_s

    def _draw(self, result: Any, compute_s: float, key: Hashable | None = None, *, adapt: bool = True) -> bool:
        t0 = time.perf_counter()
        self.show_message("")
        try:
            with contextlib.ExitStack() as stack:
                for m in self.marks():
                    stack.enter_context(m.hold_sync())
                self.draw(result)
        except (PanelInputError, ValueError) as exc:
            self.show_message(str(exc), level="error")
            return False
        except Exception as exc:  # never a traceback in the dashboard
            log.exception("draw failed")
            self.show_message(f"Internal error ({type(exc).__name__}): {exc}. The plots show the last valid state.",
                              level="error")
            return False
        self.result = result
        if key is not None:
            self._cache[key] = result
            while len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        self.last_compute_s = compute_s
        self.last_redraw_s = compute_s + (time.perf_counter() - t0)
        self.redraw_count += 1
        self._stale = False
        self.update_button.button_style = ""
        self.after_draw(result)
        if adapt:
            self._adapt_live_updates()
        return True

    def after_draw(self, result: Any) -> None:
        """Hook after a successful draw (e.g. warnings about the shown state)."""

    def submit(self, job: Callable[[Task], Any], on_done: Callable[[Any], None], *,
               label: str = "working …") -> Future:
        """Run a long action (a fit, a model comparison) on a worker thread.

        ``job(task)`` computes without touching widgets and may report ``task.progress``;
        ``on_done(result)`` then updates the panel.  While it runs the panel shows ``label``,
        a progress bar and Cancel (which sets ``task.cancelled``; a job that checks it stops
        early, and a cancelled job's result is dropped).  Errors become a message.
        """
        task = Task(self._report_progress)

        def run() -> Any:
            try:
                result = job(task)
            except Cancelled:
                return None
            except (PanelInputError, ValueError, RuntimeError) as exc:
                self.show_message(str(exc), level="error")
                return None
            except Exception as exc:  # never a traceback in the dashboard
                log.exception("background job failed")
                self.show_message(f"Internal error ({type(exc).__name__}): {exc}.", level="error")
                return None
            finally:
                with self._lock:
                    if self._job_task is task:
                        self._job_task = None
                        self._set_busy(False)
            if task.cancelled:
                return None
            on_done(result)
            return result

        with self._lock:
            if self._job_task is not None:
                self._job_task.cancel()
            self._job_task = task
            self._set_busy(True, label)
            if self._jobs is None:
                self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"gapscope-{type(self).__name__}-job")
            self._job_future = self._jobs.submit(run)
        return self._job_future

    def cancel(self) -> None:
        """Cancel the running background computation or job (the last plots stay)."""
        with self._lock:
            for t in (self._task, self._job_task):
                if t is not None:
                    t.cancel()
            self._task = self._job_task = None
            self._seq += 1
            self._set_busy(False)
        self.show_message("Cancelled: the plots show the last finished state.", level="warning")

    def wait(self, timeout: float | None = 60.0) -> None:
        """Block until running background computations and jobs have finished (tests, scripts)."""
        for fut in (self._future, self._job_future):
            if fut is not None:
                fut.result(timeout=timeout)

    @property
    def busy(self) -> bool:
        return any(f is not None and not f.done() for f in (self._future, self._job_future))

    def _set_busy(self, flag: bool, label: str = "computing…") -> None:
        flag = flag or self._task is not None or self._job_task is not None
        self.busy_box.layout.display = "flex" if flag else "none"
        if flag:
            self.status.value = f"<span class='gs-computing' style='color:#555'>{html.escape(label)}</span>"
            self.progress_bar.value = 0.0
        else:
            self.status.value = ""

    def _report_progress(self, fraction: float, text: str) -> None:
        self.progress_bar.value = fraction
        if text:
            self.status.value = f"<span class='gs-computing' style='color:#555'>{html.escape(text)}</span>"

    def _adapt_live_updates(self) -> None:
        """Continuous updates for cheap parameters while an update is measured to be fast."""
        fast = self.last_redraw_s <= self.LIVE_BUDGET
        for c in self.controls.values():
            c.set_continuous(fast and c.param.live)

    # ------------------------------------------------------------------ messages
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
