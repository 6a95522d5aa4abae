"""Registry of panels: what the gallery lists, what the tests and the benchmark sweep.

One line per topic: a :class:`PanelEntry` naming the panel class by import path, so the
gallery needs no panel imported (a page that shows three links starts no topic's kernels).
"""

from __future__ import annotations

import html
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ipywidgets as w

if TYPE_CHECKING:
    from .panel import Panel

__all__ = ["PanelEntry", "PANELS", "gallery"]


@dataclass(frozen=True)
class PanelEntry:
    """A dashboard: key, title and summary for the gallery, its notebook, and its panel class.

    ``target`` is ``"module:Class"`` inside ``gapscope.widgets`` (imported on first use).
    """

    key: str
    title: str
    summary: str
    notebook: str
    target: str

    @property
    def factory(self) -> Callable[..., Panel]:
        """The panel class (imported now)."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)


PANELS: dict[str, PanelEntry] = {e.key: e for e in (
    PanelEntry("gap", "Gap spectroscopy",
               "Dynes, anisotropic-s and d-wave gaps; normal or superconducting tip; temperature and lock-in; "
               "Δ(φ) and BCS Δ(T). Presets: Pb(111), Ni–Pb alloy, Nb(110) with a Nb tip.",
               "gap.ipynb", "gap_panel:GapPanel"),
    PanelEntry("shiba", "Yu-Shiba-Rusinov states",
               "A magnetic adatom with orbital channels: turn the exchange α and watch the in-gap peak move and "
               "cross zero; dI/dV map at any bias (click it to move the tip); normal or superconducting tip. "
               "Presets: Mn on Nb(110), Cr on β-Bi₂Pd.",
               "shiba.ipynb", "shiba_panel:ShibaPanel"),
    PanelEntry("fit", "Fit measured spectra",
               "Drop a Nanonis .dat/.3ds or CSV file: see it over the model, fit Δ, Γ, T_eff and the tip gap with "
               "error bars, compare s-wave, anisotropic and d-wave gaps, and fit a whole grid into maps of Δ. "
               "Synthetic demos for each paper.",
               "fit.ipynb", "fit_panel:FitPanel"),
)}


def gallery() -> w.HTML:
    """Cards linking to every registered dashboard (relative links work under Voilà)."""
    cards = "".join(
        f'<a class="gs-card" href="{html.escape(e.notebook)}" style="display:block;border:1px solid #ccd;'
        f'border-radius:8px;padding:12px 16px;margin:8px 0;text-decoration:none;color:inherit;max-width:46em">'
        f'<b style="font-size:1.15em;color:#1f4e9c">{html.escape(e.title)}</b><br>'
        f'<span style="color:#444">{html.escape(e.summary)}</span></a>'
        for e in PANELS.values())
    return w.HTML(cards)
