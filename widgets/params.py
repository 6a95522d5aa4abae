"""Controls from the kernels' parameter specs: a slider with an editable number per quantity.

The quantity itself — name, symbol, unit, default, usual and hard ranges, step, meaning — is
declared once, UI-free, as a :class:`gapscope.kernels.specs.Spec` next to its kernel.  A
:class:`Param` is how a panel shows one: the spec plus presentation (a panel's starting
value, a slider range inside the hard bounds, whether dragging updates live).  From it come

* :meth:`Param.control` — a slider with an editable number beside it;
* :func:`check_against` — the declared names must be keyword arguments of the kernels;
* :func:`markdown_table` — the parameter table for docs and the panel's help.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import traitlets

from gapscope.kernels import specs as _specs
from gapscope.kernels.specs import Spec

__all__ = ["Param", "ParamControl", "param", "check_against", "markdown_table", "Spec", "format_value", "parse_value"]


@dataclass(frozen=True)
class Param:
    """A :class:`Spec` as a panel shows it.

    Attributes
    ----------
    spec : Spec
        The quantity (its hard ``bounds`` are the kernel's; its ``soft`` range is the slider's).
    live : bool
        Redraw while the slider is dragged (cheap) or only on release (expensive to change).
    """

    spec: Spec
    live: bool = True

    name = property(lambda self: self.spec.name)
    symbol = property(lambda self: self.spec.symbol)
    unit = property(lambda self: self.spec.unit)
    default = property(lambda self: self.spec.default)
    slider = property(lambda self: self.spec.soft)
    bounds = property(lambda self: self.spec.bounds)
    step = property(lambda self: self.spec.step)
    doc = property(lambda self: self.spec.doc)
    integer = property(lambda self: self.spec.integer)
    label = property(lambda self: self.spec.label)

    def control(self, value: float | None = None) -> ParamControl:
        """A new slider-plus-number control for this parameter."""
        return ParamControl(self, self.default if value is None else value)


def param(spec: Spec, *, live: bool = True, **presentation: Any) -> Param:
    """A panel's view of ``spec``: ``default``, ``soft`` (slider range) and ``doc`` may be restated
    for the panel; the hard bounds stay the kernel's."""
    allowed = {"default", "soft", "doc", "symbol"}
    bad = set(presentation) - allowed
    if bad:
        raise TypeError(f"param({spec.name}): only {sorted(allowed)} may change for a panel, not {sorted(bad)}")
    return Param(spec.replace(**presentation) if presentation else spec, live)


def format_value(v: float, integer: bool = False) -> str:
    """A value as a user reads it: no floating-point noise ("0.005", not "0.005000000000000001")."""
    return str(int(round(v))) if integer else f"{v:.10g}"


def parse_value(text: str) -> float:
    """The number a user typed, or ``ValueError`` saying what is wrong (never a silent guess).

    A comma is refused rather than read as a thousands separator or a decimal point
    ("0,5" is ambiguous between locales); so are "1.2.3" and anything that is not one number.
    """
    t = text.strip().replace("−", "-").replace("\u2009", "").replace(" ", "")
    if "," in t:
        raise ValueError(f"“{text.strip()}”: use a decimal point, not a comma")
    try:
        return float(t)
    except ValueError:
        raise ValueError(f"“{text.strip()}” is not a number") from None


class ParamControl(w.VBox):
    """Slider and editable number for one :class:`Param`; ``value`` is the single truth.

    The number box accepts any value within the hard bounds (the slider then sits at its end).
    What cannot be taken as typed — not a number, a comma, outside the bounds — is refused with
    a note under the control, and the box shows the value in force again: nothing is clamped or
    reinterpreted silently.  Observers watch ``value``.
    """

    value = traitlets.Float()

    def __init__(self, param: Param, value: float) -> None:
        self.param = param
        self._syncing = False
        lo, hi = param.slider
        style = {"description_width": "8.5em"}      # "V_mod (mV rms)", "ħv_F (meV·nm)" fit untruncated
        if param.integer:
            self.slider = w.IntSlider(value=int(value), min=int(lo), max=int(hi), step=int(param.step),
                                      description=param.label, readout=False, style=style,
                                      layout=w.Layout(width="19.5em"))
        else:
            self.slider = w.FloatSlider(value=value, min=lo, max=hi, step=param.step, description=param.label,
                                        readout=False, style=style, layout=w.Layout(width="19.5em"))
        self.box = w.Text(value=format_value(value, param.integer), continuous_update=False,
                          layout=w.Layout(width="6em"))
        self.note = w.HTML(layout=w.Layout(display="none"))
        self.note.add_class(f"gs-note-{param.name}")
        self.slider.tooltip = param.doc
        self.slider.add_class(f"gs-param-{param.name}")
        self.box.add_class(f"gs-value-{param.name}")
        super().__init__([w.HBox([self.slider, self.box]), self.note])
        self.value = float(value)
        self.slider.observe(self._from_slider, "value")
        self.box.observe(self._from_box, "value")
        self.observe(self._to_widgets, "value")

    def _from_slider(self, change: dict) -> None:
        if self._syncing or change["new"] is None:   # our own clamping of the slider, not a user move
            return
        if float(change["new"]) != self.value:
            self.value = float(change["new"])

    def _from_box(self, change: dict) -> None:
        if self._syncing:
            return
        try:
            v = parse_value(change["new"])
            if self.param.integer and v != int(v):
                raise ValueError(f"{self.param.symbol} takes whole numbers, not {format_value(v)}")
            v = self.param.spec.check(v)
        except ValueError as exc:
            self.show_note(f"{exc}; allowed: {self._allowed()}. The value stays {self._shown()}.")
            self._sync_box()
            return
        self.show_note("")
        if v != self.value:
            self.value = v
        else:
            self._sync_box()

    def _allowed(self) -> str:
        lo, hi = self.param.bounds
        return f"{'> ' if self.param.spec.open_low else ''}{lo:g} … {hi:g} {self.param.unit}".strip()

    def _shown(self) -> str:
        return f"{format_value(self.value, self.param.integer)} {self.param.unit}".strip()

    def show_note(self, text: str) -> None:
        """A short note under the control (empty: hidden)."""
        self.note.value = (f"<span class='gs-note' style='color:#b00020;font-size:0.85em'>{html.escape(text)}</span>"
                           if text else "")
        self.note.layout.display = "" if text else "none"

    def _sync_box(self) -> None:
        self._syncing = True
        try:
            self.box.value = format_value(self.value, self.param.integer)
        finally:
            self._syncing = False

    @traitlets.validate("value")
    def _validate(self, proposal: dict) -> float:
        try:                                   # the kernel's own check: same bounds, same words
            return self.param.spec.check(proposal["value"])
        except ValueError as exc:
            raise traitlets.TraitError(f"{self.param.symbol}: {exc}") from None

    def _to_widgets(self, change: dict) -> None:
        v = change["new"]
        lo, hi = self.param.slider
        self._syncing = True
        try:
            sv = min(max(v, lo), hi)
            if self.slider.value != sv:
                self.slider.value = int(round(sv)) if self.param.integer else sv
            text = format_value(v, self.param.integer)
            if self.box.value != text:
                self.box.value = text
        finally:
            self._syncing = False
        self.show_note("" if lo <= v <= hi else f"{self._shown()} lies beyond the slider's range; the slider "
                       "sits at its end.")

    @property
    def disabled(self) -> bool:
        return self.slider.disabled

    @disabled.setter
    def disabled(self, flag: bool) -> None:
        self.slider.disabled = flag
        self.box.disabled = flag

    def set_continuous(self, flag: bool) -> None:
        """Update while dragging (cheap plots) or on release (expensive ones)."""
        self.slider.continuous_update = flag


def check_against(params: Iterable[Param], kernels: Sequence[Callable], *, extra: Iterable[str] = ()) -> None:
    """Raise ``TypeError`` unless every declared name is a keyword argument of a kernel.

    For functions only keyword-only arguments count (the positional ones are data such as
    energies); for classes (model records such as ``ysr.Substrate``) every field counts.

    ``extra`` lists names that are deliberately panel-level (e.g. a plot window).
    """
    accepted: set[str] = set(extra)
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for k in kernels:
        sig = list(inspect.signature(k).parameters.values())
        if not isinstance(k, type):       # functions: the first positional argument is the data (E, V, …)
            sig = [a for a in sig if a.kind is inspect.Parameter.KEYWORD_ONLY]
        accepted |= {a.name for a in sig if a.kind in named}
    missing = [p.name for p in params if p.name not in accepted]
    if missing:
        names = ", ".join(getattr(k, "__qualname__", repr(k)) for k in kernels)
        raise TypeError(f"parameters {missing} are not keyword arguments of {names}")


def markdown_table(params: Iterable[Param | Spec]) -> str:
    """Markdown table: symbol, unit, default, slider range, hard bounds, meaning."""
    return _specs.markdown_table(p.spec if isinstance(p, Param) else p for p in params)
