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
               "cross zero; dI/dV map at any bias or on a chosen state (click it to move the tip); normal or "
               "superconducting tip. "
               "Presets: Mn on Nb(110), Cr on β-Bi₂Pd.",
               "shiba.ipynb", "shiba_panel:ShibaPanel"),
    PanelEntry("fit", "Fit measured spectra",
               "Drop a Nanonis .dat/.3ds or CSV file: see it over the model, fit Δ, Γ, T_eff and the tip gap with "
               "error bars, compare s-wave, anisotropic and d-wave gaps, and fit a whole grid into maps of Δ. "
               "Synthetic demos for each paper.",
               "fit.ipynb", "fit_panel:FitPanel"),
    PanelEntry("proximity", "Proximity junction (Usadel)",
               "Self-consistent 1D Usadel model of an S/S′ or S/N junction: Δ(x), its decay length on each side and "
               "the interface jump; the dI/dV line scan a tip would record (click it for the spectrum at x); "
               "coherence-peak asymmetry. Presets: Pb(111)/Ni–Pb alloy, an S/N bilayer with a minigap.",
               "proximity.ipynb", "proximity_panel:ProximityPanel"),
    PanelEntry("ising", "Ising superconductivity",
               "Monolayer NbSe₂ and kin in a magnetic field: the in-plane H_c2(T) far above the Pauli limit, eroded by "
               "Rashba and pair breaking; Δ(T, B) with first-order transitions; DOS and dI/dV at the (T, B) point; "
               "fit β_so to measured H_c2 points. Presets: NbSe₂, NbS₂, TaS₂ (DFT β_so), a film without SOC.",
               "ising.ipynb", "ising_panel:IsingPanel"),
    PanelEntry("chains", "YSR chains",
               "Coupled Yu-Shiba-Rusinov states in adatom chains: LCAO (k₁, k₂, k₃), the extended sinc model and the "
               "T-matrix engine with Rashba; even/odd fan diagrams, the spectrum at the tip and the line profile along "
               "the chain. Presets: Fe chains on Nb(110), the AFM Mn dimer.",
               "chains.ipynb", "chains_panel:ChainsPanel"),
)}


def _cards(prefix: str = "") -> str:
    return "".join(
        f'<a class="gs-card" href="{html.escape(e.notebook)}" style="display:block;border:1px solid #ccd;'
        f'border-radius:8px;padding:12px 16px;margin:8px 0;text-decoration:none;color:inherit;max-width:46em">'
        f'<b style="font-size:1.15em;color:#1f4e9c">{html.escape(e.title)}</b><br>'
        f'<span style="color:#444">{html.escape(e.summary)}</span></a>'
        for e in PANELS.values()).replace('href="', f'href="{html.escape(prefix)}')


def gallery() -> w.HTML:
    """Cards linking to every registered dashboard (relative links work under Voilà)."""
    return w.HTML(_cards())


def static_gallery() -> str:
    """The gallery as a self-contained HTML page: opening it starts no kernel (a class arriving at once pays
    for the dashboards it opens, not for a page of links)."""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>gapscope</title>"
            "<style>body{font-family:sans-serif;margin:2em auto;max-width:50em;padding:0 1em}</style></head><body>"
            "<h1>gapscope</h1><p>Interactive superconducting tunnelling spectra. Pick a dashboard; every slider "
            "recomputes the physics live. Units: meV, mV, K.</p>"
            + _cards("../render/") + "</body></html>")


if __name__ == "__main__":   # python -m gapscope.widgets.registry PATH: write the static gallery
    import sys
    from pathlib import Path
    Path(sys.argv[1]).write_text(static_gallery(), encoding="utf-8")
