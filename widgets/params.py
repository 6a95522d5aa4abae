"""Parameter declarations: one record per physical parameter drives controls, checks and docs.

A :class:`Param` says what a parameter is (kernel keyword, symbol, unit, default), where its
slider runs, which values are allowed at all (hard bounds, also enforced on the number box),
and its slider step.  From it come

* :meth:`Param.control` — a slider with an editable number beside it;
* :func:`check_against` — the declared names must be keyword-only arguments of the kernels;
* :func:`markdown_table` — the parameter table for docs and the panel's help.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import ipywidgets as w
import traitlets

__all__ = ["Param", "ParamControl", "check_against", "markdown_table"]


@dataclass(frozen=True)
class Param:
    """Declaration of one physical parameter.

    Attributes
    ----------
    name : str
        Keyword of the kernel function(s) it feeds (e.g. ``"delta"``).
    symbol : str
        Symbol shown to the user (e.g. ``"Δ"``).
    unit : str
        Unit shown to the user ("meV", "K", "" for dimensionless).
    default : float
        Default value.
    slider : (float, float)
        Range of the slider.
    bounds : (float, float)
        Hard bounds: the number box accepts values in this range (may exceed the slider).
    step : float
        Slider step.
    doc : str
        One line for the help table.
    integer : bool
        Integer-valued parameter (integer slider and box).
    live : bool
        Redraw while the slider is dragged (cheap) or only on release (expensive to change).
    """

    name: str
    symbol: str
    unit: str
    default: float
    slider: tuple[float, float]
    bounds: tuple[float, float]
    step: float
    doc: str = ""
    integer: bool = False
    live: bool = True

    def __post_init__(self) -> None:
        lo, hi = self.slider
        blo, bhi = self.bounds
        if not (blo <= lo < hi <= bhi):
            raise ValueError(f"{self.name}: slider range {self.slider} must lie inside bounds {self.bounds}")
        if not (lo <= self.default <= hi):
            raise ValueError(f"{self.name}: default {self.default} outside slider range {self.slider}")
        if self.step <= 0:
            raise ValueError(f"{self.name}: step must be > 0")

    @property
    def label(self) -> str:
        return f"{self.symbol} ({self.unit})" if self.unit else self.symbol

    def control(self, value: float | None = None) -> "ParamControl":
        """A new slider-plus-number control for this parameter."""
        return ParamControl(self, self.default if value is None else value)


class ParamControl(w.HBox):
    """Slider and editable number for one :class:`Param`; ``value`` is the single truth.

    The number box accepts anything within the hard bounds (the slider then sits at its
    end); observers watch ``value``.
    """

    value = traitlets.Float()

    def __init__(self, param: Param, value: float) -> None:
        self.param = param
        self._syncing = False
        lo, hi = param.slider
        blo, bhi = param.bounds
        style = {"description_width": "7em"}
        if param.integer:
            self.slider = w.IntSlider(value=int(value), min=int(lo), max=int(hi), step=int(param.step),
                                      description=param.label, readout=False, style=style,
                                      layout=w.Layout(width="18em"))
            self.box = w.BoundedIntText(value=int(value), min=int(blo), max=int(bhi), step=int(param.step),
                                        layout=w.Layout(width="6em"))
        else:
            self.slider = w.FloatSlider(value=value, min=lo, max=hi, step=param.step, description=param.label,
                                        readout=False, style=style, layout=w.Layout(width="18em"))
            self.box = w.BoundedFloatText(value=value, min=blo, max=bhi, step=param.step,
                                          layout=w.Layout(width="6em"))
        self.box.continuous_update = False
        self.slider.tooltip = param.doc
        self.slider.add_class(f"gs-param-{param.name}")
        self.box.add_class(f"gs-value-{param.name}")
        super().__init__([self.slider, self.box])
        self.value = float(value)
        self.slider.observe(self._from_widget, "value")
        self.box.observe(self._from_widget, "value")
        self.observe(self._to_widgets, "value")

    def _from_widget(self, change: dict) -> None:
        if self._syncing or change["new"] is None:   # our own clamping of the slider, not a user move
            return
        if float(change["new"]) != self.value:
            self.value = float(change["new"])

    @traitlets.validate("value")
    def _validate(self, proposal: dict) -> float:
        v = float(proposal["value"])
        blo, bhi = self.param.bounds
        if not (blo <= v <= bhi):   # NaN fails here too
            raise traitlets.TraitError(f"{self.param.symbol} = {v:g} {self.param.unit} is outside the "
                                       f"allowed range {blo:g} … {bhi:g}")
        return v

    def _to_widgets(self, change: dict) -> None:
        v = change["new"]
        lo, hi = self.param.slider
        self._syncing = True
        try:
            sv = min(max(v, lo), hi)
            if self.slider.value != sv:
                self.slider.value = int(round(sv)) if self.param.integer else sv
            if self.box.value != v:
                self.box.value = int(round(v)) if self.param.integer else v
        finally:
            self._syncing = False

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


def markdown_table(params: Iterable[Param]) -> str:
    """Markdown table: symbol, unit, default, slider range, hard bounds, meaning."""
    rows = ["| parameter | symbol | unit | default | slider | allowed | meaning |",
            "|---|---|---|---|---|---|---|"]
    for p in params:
        rows.append(f"| `{p.name}` | {p.symbol} | {p.unit or '—'} | {p.default:g} | "
                    f"{p.slider[0]:g} … {p.slider[1]:g} | {p.bounds[0]:g} … {p.bounds[1]:g} | {p.doc} |")
    return "\n".join(rows)
