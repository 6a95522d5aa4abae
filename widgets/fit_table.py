"""The fit panel's parameter table (value, fix, min, max, ±) and its result summaries.

A :class:`ParameterTable` shows one row per parameter of a :class:`~gapscope.kernels.models.FitModel`
(the model's own parameters, the measurement chain and ``scale``), turns the rows into the
keyword arguments of :func:`gapscope.kernels.fitting.fit`, and shows a
:class:`~gapscope.kernels.fitting.FitResult` in them.  It knows nothing of the panel: a
change of a value is reported through ``on_change``.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import ipywidgets as w
import numpy as np

from gapscope.kernels.fitting import FitResult
from gapscope.kernels.models import FitModel

__all__ = ["ParameterTable", "Row", "stats_html", "compare_html"]

#: text of the ± column before a fit (and after :meth:`ParameterTable.clear_errors`)
NO_ERROR = "—"


class Row(NamedTuple):
    """The widgets of one parameter: ``row[0]`` is the value box, ``row[4]`` the ± cell."""

    value: w.FloatText
    fix: w.Checkbox
    lower: w.FloatText
    upper: w.FloatText
    error: w.HTML


class ParameterTable:
    """Editable fit parameters of one model.

    Parameters
    ----------
    model : FitModel
        The model whose parameters are shown.
    on_change : callable, optional
        Called without arguments whenever a parameter *value* changes (fix, min and max
        only matter to the next fit).

    Attributes
    ----------
    widget : ipywidgets.GridBox
        The table (CSS class ``gs-table``; value boxes ``gs-val-<name>``, ± cells ``gs-err-<name>``).
    rows : dict of str to Row
        The row of each parameter, in the model's order.
    model : FitModel
        The model shown.
    """

    HEADINGS = ("parameter", "value", "fix", "min", "max", "±")

    def __init__(self, model: FitModel, on_change: Callable[[], None] | None = None) -> None:
        self.on_change = on_change
        self.widget = w.GridBox(layout=w.Layout(grid_template_columns="7em 6.5em 3em 5.5em 5.5em 7em"))
        self.widget.add_class("gs-table")
        self.rows: dict[str, Row] = {}
        self.model = model
        self.set_model(model)

    def set_model(self, model: FitModel, *, keep: bool = True) -> None:
        """Rebuild the rows for ``model``.

        Parameters
        ----------
        model : FitModel
            The new model.
        keep : bool
            Keep value, fix, min and max of parameters that the old model has too (the same
            quantity: same name and unit, the kept values within the new hard bounds); otherwise
            every row starts from the model's defaults.
        """
        before = {p.name: p for p in self.model.all_params} if self.rows else {}
        old = {}
        for p in model.all_params if keep else ():
            r, q = self.rows.get(p.name), before.get(p.name)
            if r is None or q is None or q.unit != p.unit:
                continue
            kept = (r.value.value, r.fix.value, r.lower.value, r.upper.value)
            if all(p.spec.bounds[0] <= x <= p.spec.bounds[1] for x in (kept[0], kept[2], kept[3])):
                old[p.name] = kept
        retired = list(self.widget.children)
        for r in self.rows.values():
            r.value.unobserve(self._value_changed, "value")
        cells: list[w.Widget] = [w.HTML(f"<b>{t}</b>") for t in self.HEADINGS]
        rows: dict[str, Row] = {}
        for p in model.all_params:
            val, fix, lo, hi = old.get(p.name, (p.default, not p.vary, p.lower, p.upper))
            row = Row(w.FloatText(value=val, layout=w.Layout(width="6em")),
                      w.Checkbox(value=fix, indent=False, layout=w.Layout(width="2.5em")),
                      w.FloatText(value=lo, layout=w.Layout(width="5em")),
                      w.FloatText(value=hi, layout=w.Layout(width="5em")),
                      w.HTML(NO_ERROR))
            row.value.add_class(f"gs-val-{p.name}")
            row.error.add_class(f"gs-err-{p.name}")
            row.value.observe(self._value_changed, "value")   # rows come and go with the model
            rows[p.name] = row
            unit = f" ({html.escape(p.unit)})" if p.unit else ""
            cells += [w.HTML(f"<span title='{html.escape(p.doc, quote=True)}'>{html.escape(p.name)}{unit}</span>"),
                      *row]
        self.model, self.rows = model, rows
        self.widget.children = cells
        for cell in retired:
            cell.close()

    def _value_changed(self, change: dict[str, Any]) -> None:
        if self.on_change is not None:
            self.on_change()

    # ------------------------------------------------------------------ values
    def values(self) -> dict[str, float]:
        """Current parameter values by name."""
        return {k: float(r.value.value) for k, r in self.rows.items()}

    def set_values(self, values: Mapping[str, float]) -> None:
        """Set the values of the parameters in ``values`` that the table has (others are ignored)."""
        for k, v in values.items():
            if k in self.rows:
                self.rows[k].value.value = float(v)

    def set_fixed(self, name: str, fixed: bool) -> None:
        """Fix or free one parameter."""
        self.rows[name].fix.value = bool(fixed)

    def is_fixed(self, name: str) -> bool:
        """Whether the user fixed a parameter (False for names the model does not have)."""
        return name in self.rows and bool(self.rows[name].fix.value)

    def fit_arguments(self) -> dict[str, Any]:
        """``initial``, ``fixed`` and ``bounds`` for :func:`gapscope.kernels.fitting.fit`."""
        initial, fixed, bounds = {}, {}, {}
        for k, r in self.rows.items():
            initial[k] = float(r.value.value)
            fixed[k] = bool(r.fix.value)
            bounds[k] = (float(r.lower.value), float(r.upper.value))
        return dict(initial=initial, fixed=fixed, bounds=bounds)

    # ------------------------------------------------------------------ results
    def show_result(self, r: FitResult) -> None:
        """Fill values and the ± column from a fit (with its 68 % interval when it has one).

        The values are set first, so ``on_change`` fires once per changed value; callers that
        redraw on change should group this in a batch.
        """
        self.set_values(r.values)
        for k, row in self.rows.items():
            if k not in r.values:
                row.error.value = NO_ERROR
                continue
            e = r.errors[k]
            text = "fixed" if r.fixed[k] else (f"{e:.2g}" if np.isfinite(e) else "n/a")
            if "68%" in r.intervals.get(k, {}):
                lo, hi = r.intervals[k]["68%"]
                text += f" [{lo:.4g}, {hi:.4g}]"
            row.error.value = text

    def clear_errors(self) -> None:
        """Reset the ± column (the shown uncertainties no longer describe the data)."""
        for row in self.rows.values():
            row.error.value = NO_ERROR


def stats_html(r: FitResult) -> str:
    """One line of fit statistics (CSS class ``gs-stats`` is on the widget showing it)."""
    return (f"<b>{html.escape(r.model)}</b>: χ²_red = {r.redchi:.4g}, AIC = {r.aic:.1f}, BIC = {r.bic:.1f}, "
            f"{r.ndata} points, {r.nvarys} free, {r.nfev} evaluations in {r.elapsed:.2f} s"
            + ("" if r.success else f" — <b>not converged</b>: {html.escape(r.message)}"))


def compare_html(ranked: Sequence[FitResult]) -> str:
    """The model comparison table: χ²_red, ΔAIC, ΔBIC and Δ of each model, best (lowest AIC) first."""
    best = ranked[0]
    rows = "".join(
        f"<tr><td>{html.escape(r.model)}</td><td>{r.redchi:.4g}</td><td>{r.aic - best.aic:+.1f}</td>"
        f"<td>{r.bic - best.bic:+.1f}</td><td>{r.values['delta']:.4f} ± {r.errors['delta']:.2g}</td></tr>"
        for r in ranked)
    return ("<table class='gs-compare' style='font-size:0.9em'><tr><th>model</th><th>χ²_red</th>"
            "<th>ΔAIC</th><th>ΔBIC</th><th>Δ (meV)</th></tr>" + rows + "</table>"
            f"<div style='font-size:0.85em'>Preferred: <b>{html.escape(best.model)}</b> (lowest AIC).</div>")
