"""gapscope.widgets: ipywidgets/bqplot panels over gapscope.kernels (no physics here).

>>> from gapscope.widgets import GapPanel
>>> GapPanel()          # in a notebook: the interactive panel

Panels are listed in :data:`PANELS` (``registry.py``); their classes are imported on first
use, so ``import gapscope.widgets`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from .panel import Cancelled, Panel, PanelInputError, Task
from .params import Param, ParamControl, check_against, markdown_table, param
from .registry import PANELS, PanelEntry, gallery

#: public names provided by the panel modules, imported lazily
_LAZY = {
    "GapPanel": "gap_panel", "GAP_PARAMS": "gap_panel", "PRESETS": "gap_panel",
    "ShibaPanel": "shiba_panel", "SHIBA_PARAMS": "shiba_panel", "SHIBA_PRESETS": "shiba_panel",
    "FitPanel": "fit_panel", "DEMOS": "fit_panel",
    "ProximityPanel": "proximity_panel", "IsingPanel": "ising_panel",
}

__all__ = ["Panel", "PanelInputError", "Task", "Cancelled", "Param", "ParamControl", "param", "check_against",
           "markdown_table", "PANELS", "PanelEntry", "gallery", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
