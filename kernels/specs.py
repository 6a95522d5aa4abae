"""One declaration per physical quantity: name, symbol, unit, default, ranges, step, meaning.

A :class:`Spec` is UI-free.  Each topic module declares the specs of its parameters next to
its kernels, and the kernels validate their arguments *through* them (:meth:`Spec.check`),
so the hard bounds a panel offers, the bounds a fit may explore and the values a kernel
accepts are the same numbers by construction.  Panels render specs as controls
(``gapscope.widgets``), fit models list them (:mod:`gapscope.kernels.models`), and the README
tables are generated from them (:func:`markdown_table`).

Two ranges, in the manner of ``param``'s bounds and soft bounds:

* ``bounds`` — hard: a kernel raises ``ValueError`` outside (inclusive unless ``open_low``);
* ``soft`` — the range that is usually interesting: the slider's range, and the default
  range of a fit where a model does not say otherwise.

Units are declared, never guessed from names: meV, mV, K, T, nm, 1/nm, meV·nm, or "" for
dimensionless.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Spec", "markdown_table", "check_values"]


@dataclass(frozen=True)
class Spec:
    """Declaration of one physical parameter.

    Attributes
    ----------
    name : str
        Keyword of the kernel function(s) it feeds (e.g. ``"delta"``).
    symbol : str
        Symbol shown to users (e.g. ``"Δ"``).
    unit : str
        Unit ("meV", "K", "" for dimensionless).
    default : float
        Default value.
    soft : (float, float)
        Usual range: slider range, default fit range.
    bounds : (float, float)
        Hard bounds enforced by the kernels (may be ±inf).
    step : float
        Natural increment (slider step).
    doc : str
        One line: what the parameter means.
    integer : bool
        Integer-valued.
    open_low : bool
        The lower bound itself is excluded (e.g. a gap that must be > 0).
    """

    name: str
    symbol: str
    unit: str
    default: float
    soft: tuple[float, float]
    bounds: tuple[float, float]
    step: float
    doc: str = ""
    integer: bool = False
    open_low: bool = False

    def __post_init__(self) -> None:
        lo, hi = self.soft
        blo, bhi = self.bounds
        if not (blo <= lo < hi <= bhi):
            raise ValueError(f"{self.name}: soft range {self.soft} must lie inside bounds {self.bounds}")
        if not (lo <= self.default <= hi):
            raise ValueError(f"{self.name}: default {self.default} outside soft range {self.soft}")
        if not self.step > 0:
            raise ValueError(f"{self.name}: step must be > 0")
        if self.open_low and lo == blo:
            raise ValueError(f"{self.name}: an open lower bound must lie below the soft range")

    # ------------------------------------------------------------------ use
    @property
    def label(self) -> str:
        """Symbol with unit, e.g. "Δ (meV)"."""
        return f"{self.symbol} ({self.unit})" if self.unit else self.symbol

    def check(self, value: Any) -> float:
        """Return ``value`` as a float inside the hard bounds, or raise ``ValueError`` naming it."""
        unit = f" {self.unit}" if self.unit else ""
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name} must be a number{_in(self.unit)}, got {value!r}") from None
        if not math.isfinite(x):
            raise ValueError(f"{self.name} must be finite{_in(self.unit)}, got {x}")
        lo, hi = self.bounds
        if self.open_low and x <= lo:
            raise ValueError(f"{self.name} must be > {lo:g}{unit}, got {x:g}{unit}")
        if x < lo or x > hi:
            raise ValueError(f"{self.name} must lie in [{lo:g}, {hi:g}]{unit}, got {x:g}{unit}")
        if self.integer and x != int(x):
            raise ValueError(f"{self.name} must be an integer, got {value!r}")
        return x

    def outside(self) -> list[float]:
        """Values just outside the hard bounds (for tests): each must be rejected by the kernel."""
        lo, hi = self.bounds
        out = []
        if math.isfinite(lo):
            out.append(lo if self.open_low else lo - (1.0 if self.integer else _nudge(lo)))
        if math.isfinite(hi):
            out.append(hi + (1.0 if self.integer else _nudge(hi)))
        return out

    def inside(self) -> list[float]:
        """Values at (or, for an open bound, just inside) the hard bounds and the default (for tests)."""
        lo, hi = self.bounds
        vals = [self.default]
        if math.isfinite(lo):
            vals.append(lo + _nudge(lo) if self.open_low else lo)
        if math.isfinite(hi):
            vals.append(hi)
        return vals

    def replace(self, **changes: Any) -> Spec:
        """A copy with some fields changed (e.g. a topic's narrower bounds)."""
        return dataclasses.replace(self, **changes)


def _nudge(x: float) -> float:
    return max(abs(x) * 1e-9, 1e-12)


def _in(unit: str) -> str:
    return f" (in {unit})" if unit else ""


def check_values(specs: Iterable[Spec], values: Mapping[str, Any]) -> dict[str, float]:
    """Check every value that has a spec; return them as floats by name."""
    by_name = {s.name: s for s in specs}
    return {k: by_name[k].check(v) for k, v in values.items() if k in by_name}


def markdown_table(specs: Iterable[Spec]) -> str:
    """Markdown table of specs: name, symbol, unit, default, usual range, allowed range, meaning."""
    rows = ["| parameter | symbol | unit | default | slider | allowed | meaning |",
            "|---|---|---|---|---|---|---|"]
    for p in specs:
        lo, hi = p.bounds
        allowed = f"{'>' if p.open_low else ''}{lo:g} … {hi:g}"
        rows.append(f"| `{p.name}` | {p.symbol} | {p.unit or '—'} | {p.default:g} | "
                    f"{p.soft[0]:g} … {p.soft[1]:g} | {allowed} | {p.doc} |")
    return "\n".join(rows)
