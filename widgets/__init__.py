"""gapscope.widgets: ipywidgets/bqplot panels over gapscope.kernels (no physics here).

>>> from gapscope.widgets import GapPanel
>>> GapPanel()          # in a notebook: the interactive panel
"""

from .fit_panel import DEMOS, FitPanel
from .gap_panel import GAP_PARAMS, PRESETS, GapPanel
from .panel import Panel, PanelInputError
from .params import Param, ParamControl, check_against, markdown_table
from .registry import PANELS, PanelEntry, gallery
from .shiba_panel import SHIBA_PARAMS, SHIBA_PRESETS, ShibaPanel

__all__ = ["FitPanel", "DEMOS", "ShibaPanel", "SHIBA_PARAMS", "SHIBA_PRESETS", "GapPanel", "GAP_PARAMS", "PRESETS", "Panel", "PanelInputError", "Param", "ParamControl",
           "check_against", "markdown_table", "PANELS", "PanelEntry", "gallery"]
