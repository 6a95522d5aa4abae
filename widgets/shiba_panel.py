"""Shiba panel: YSR spectrum at the tip, dI/dV map at a bias, E₀(α) diagram."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from gapscope.kernels import tunneling, ysr
from gapscope.kernels.references import cite
from gapscope.kernels.specs import Spec

from .colormap import clicked_at, colorbar_html, ticks, to_png
from .panel import Panel, PanelInputError, Task
from .params import format_value, param, parse_value
from .shiba_lattice import LATTICE_PARAMS, MAP_SITES, NK, SUBSTRATES, LatticeView, map_weights  # noqa: F401

__all__ = ["ShibaPanel", "SHIBA_PARAMS", "SHIBA_PRESETS", "VIEWS", "MAP_STATES", "map_bias", "ShibaPreset"]

# panel-only quantities: what is shown, not what the kernels take
BIAS = Spec("bias", "V_map", "mV", 2.02, (-4.0, 4.0), (-50.0, 50.0), 0.01,
            "bias of the dI/dV map (when 'Map at' is the bias control)")
V_MAX = Spec("v_max", "V_max", "mV", 3.5, (0.5, 8.0), (0.1, 50.0), 0.1, "half-width of the spectrum's bias range")
MAP_SIZE = Spec("map_size", "L", "nm", 2.5, (0.5, 10.0), (0.1, 50.0), 0.1, "half-width of the map")

SHIBA_PARAMS = (
    param(ysr.DELTA, live=False),
    param(ysr.GAMMA, live=False),
    param(ysr.ALPHA),
    param(ysr.BETA),
    param(ysr.KF, live=False),
    param(ysr.HBAR_VF, live=False),
    param(tunneling.TEMPERATURE, soft=(0.0, 5.0), live=False),
    param(tunneling.TIP_DELTA, default=1.43, live=False, doc="gap of a superconducting tip"),
    param(tunneling.TIP_GAMMA, default=0.0259, soft=(0.001, 0.2), live=False),
    param(tunneling.VMOD_RMS, soft=(0.0, 0.3), live=False),
    param(BIAS, live=False),
    param(V_MAX, live=False),
    param(MAP_SIZE, live=False),
    param(ysr.ORBITAL_RADIUS, live=False),
    param(ysr.TIP_HEIGHT, live=False, doc="3D band: height of the tip above the adatom plane (physical)"),
    *LATTICE_PARAMS,                     # the "lattice" substrates (widgets/shiba_lattice.py)
)

#: view label → (part, spin axis)
VIEWS: dict[str, tuple[str, tuple[float, float, float] | None]] = {
    "electron (normal tip)": ("electron", None),
    "hole": ("hole", None),
    "spin ↑ (z)": ("electron", (0.0, 0.0, 1.0)),
    "spin ↓ (z)": ("electron", (0.0, 0.0, -1.0)),
    "electron + hole": ("total", None),
}
SHAPE_OPTIONS = ("s", "dz2", "dxz", "dyz", "dx2-y2", "dxy", "px", "py")
#: "Map at" choices: 0 = the bias control; ±n = the n-th YSR state (ascending |E|) at positive or negative bias
MAP_STATES: tuple[tuple[str, int], ...] = (("the bias control V_map", 0),) + tuple(
    (f"state {n} ({'+' if sign > 0 else '−'}V)", sign * n) for n in range(1, 9) for sign in (1, -1))
#: what the spectra and maps are: exact where it is, a model where it is one
MODEL_NOTE = ("s channels: the exact parabolic-band propagator. Channels with m ≠ 0 (dxz, dxy, …): its "
              "Fermi-surface part, a model that grows as (k_F d)^−|m| near the adatom; maps use "
              "√(d² + r_o²) with the orbital radius r_o, so within ~r_o of the adatom their intensity and lobe "
              "radius are set by r_o (further out they converge as r_o → 0). In 3D the tip height h is physical.")


def map_pixels(n_channels: int) -> int:
    """Wanted map resolution: 128² for any number of channels; the panel coarsens it (halving) when
    ``Engine.map_cost`` of the map's kept energies exceeds the budgets (cost and cache grow as channels²)."""
    return 128


#: largest working set of one map (bytes) and largest number of propagator evaluations (~1 µs each)
MAP_BUDGET = 1.5 * 2 ** 30
MAP_EVALUATIONS = 5e6
#: smallest map worth drawing
MIN_PIXELS = 24
#: largest number of tunnelling-weight evaluations for the map's bias (tunneling.didv_weights_cost; ~30 ns each)
WEIGHTS_BUDGET = 5e7
#: most energies a map sums over (each costs interpolation and correction work that map_cost does not count:
#: ~0.15 ms per energy; at T = 300 K the tunnelling chain spans ~1e5 energies, at 10 K ~3500)
MAP_MAX_ENERGIES = 40_000


def affordable_pixels(cost, npx: int) -> int | None:
    """The largest map size ≤ npx (halving) whose ``cost(npx) → (bytes, evaluations)`` fits the budgets,
    or None if not even MIN_PIXELS² does."""
    while npx >= MIN_PIXELS:
        mem, evals = cost(npx)
        if mem <= MAP_BUDGET and evals <= MAP_EVALUATIONS:
            return npx
        npx //= 2
    return None


def map_bias(map_state: int, states: np.ndarray, tip_delta: float) -> float:
    """Bias (mV) of the n-th YSR state through the tip: ±(|E_n| + Δ_t) (Δ_t = 0 for a normal tip).

    ``states`` are the ascending |E_n| (meV); ``map_state`` = ±n picks the sign of the bias.
    """
    n = abs(int(map_state))
    if n > len(states):
        raise PanelInputError(f"'Map at' asks for state {n}, but these couplings bind {len(states)} YSR "
                              f"state{'s' if len(states) != 1 else ''}; the map was not updated")
    return float(np.sign(map_state) * (states[n - 1] + tip_delta))


@dataclass(frozen=True)
class ShibaPreset:
    """A named parameter set: which numbers are the paper's (``paper``) and which are chosen (``chosen``)."""

    label: str
    reference: str            # key in gapscope.kernels.references
    paper: str
    chosen: str
    tip: str
    dim: int
    channels: dict[str, tuple[float, float]]
    values: dict[str, Any] = field(default_factory=dict)
    map_state: int = 0

    @property
    def note(self) -> str:
        return f"Paper: {self.paper} Chosen: {self.chosen}"

    def html(self) -> str:
        """The full citation (authors, title, journal, year, DOI or "DOI not found"), then what is the
        paper's and what is chosen."""
        return preset_html(self.reference, self.paper, self.chosen)


def preset_html(reference: str, paper: str, chosen: str) -> str:
    """A preset's source block: full citation, then one line of the paper's numbers and one of the chosen ones."""
    return (f'<div style="font-size:0.85em;max-width:26em">{cite(reference).html()}<br>'
            f"<b>Paper:</b> {html.escape(paper)}<br><b>Chosen:</b> {html.escape(chosen)}</div>")


KB_300MK = 0.08617333262 * 0.300      # k_B·300 mK, meV (paper: the one broadening of its calculated spectra)

SHIBA_PRESETS: dict[str, ShibaPreset] = {p.label: p for p in (
    ShibaPreset(
        "Mn on Nb(110) — Beck et al.", "beck2021_mn_dimers",
        "Δ = 1.5 meV, tip Δ_t = 1.43 mV; four YSR pairs — α the energetically highest and most intense "
        "(d_z²-like), β only a shoulder of α (d_xy), then γ (d_xz) and δ (d_yz); its calculated spectra have "
        "one broadening, k_B·300 mK = 0.0259 meV (the imaginary part of the energy, Γ here), convolved with the "
        "tip's BCS DOS; maps at the states' biases (negative side shown in its Fig. 1).",
        "the couplings (its K, JS/2 are in its Supplementary Table 1): |E_α| = 1.12, |E_β| = 1.075, "
        "|E_γ| = 0.72, |E_δ| = 0.45 meV in that order; a 2D Nb-like band (k_F, v_F); T = 0 and no lock-in "
        "(its one broadening stands for the whole resolution; it measured at 320 mK with V_mod = 20 µV, rms or "
        "peak not said); Γ_t = 0.01 meV only regularises the tip's BCS edge for the map (the paper names no tip "
        "broadening); the tip 0.14 nm from the adatom (the paper averages nine points within a = 0.33 nm); "
        "r_o = 0.1 nm.",
        "superconducting", 2,
        {"dz2": (0.4962, 0.6), "dxy": (0.4201, 0.2), "dxz": (0.5971, 0.1), "dyz": (0.7338, 0.0)},
        dict(delta=1.5, gamma=KB_300MK, kf=10.0, hbar_vf=179.0, temperature=0.0, tip_delta=1.43,
             tip_gamma=0.01, vmod_rms=0.0, v_max=3.5, map_size=1.5, orbital_radius=0.1,
             tip_position=(0.1, 0.1)),
        map_state=-4),
    ShibaPreset(
        "Cr on β-Bi₂Pd — Sink et al.", "sink2025_cr_bi2pd",
        "one particle–hole-asymmetric YSR pair at a Cr adatom, isotropic maps, a normal (PtIr) tip at mK "
        "temperature with negligible thermal smearing and a resolution of a few tens of µeV; its calculation "
        "uses one Dynes broadening; the sample's T_c = 5.2 K, so Δ = 1.764·k_B·5.2 K = 0.79 meV (weak coupling).",
        "α, β (β ≠ 0 makes the electron and hole peaks unequal; E₀ = 0.231 meV), k_F, v_F, and the one "
        "broadening Γ = 0.02 meV (its value is not in the text we have); T = 0 and no lock-in (not given); the map "
        "at the state's positive bias (the unoccupied state, larger at the Cr atom in the paper).",
        "normal", 2, {"s": (0.9, 0.6)},
        dict(delta=0.79, gamma=0.02, kf=8.0, hbar_vf=120.0, temperature=0.0, vmod_rms=0.0,
             v_max=1.5, map_size=3.0, orbital_radius=0.1, tip_position=(0.0, 0.0)),
        map_state=1),
)}


class ShibaPanel(Panel):
    """Single magnetic impurity with orbital channels: spectrum at the tip, map at a bias or a state, E₀(α).

    Computes in the background (a Δ or k_F change rebuilds the propagators of a map: up to a
    second with several channels); exchange and potential changes reuse the engine's caches.
    "Map at" puts the map on the n-th YSR state: its bias follows the state through the tip,
    ±(|E_n| + Δ_t) (Δ_t = 0 for a normal tip).
    """

    TITLE = "Yu-Shiba-Rusinov states"
    PARAMS = SHIBA_PARAMS
    BACKGROUND = True
    CACHE_SIZE = 8

    def __init__(self, **values: Any) -> None:
        self.channels: dict[str, tuple[float, float]] = {"s": (values.get("alpha", ysr.ALPHA.default),
                                                               values.get("beta", ysr.BETA.default))}
        self.preset = w.Dropdown(options=["—"] + list(SHIBA_PRESETS), value="—", description="Preset",
                                 style={"description_width": "7em"}, layout=w.Layout(width="20em"))
        # which channel the α, β sliders edit (not itself a parameter of the computation)
        self.channel = w.Dropdown(options=list(SHAPE_OPTIONS), value="s", description="Channel",
                                  style={"description_width": "7em"})
        self.map_at = w.Dropdown(options=list(MAP_STATES), value=0, description="Map at",
                                 style={"description_width": "7em"},
                                 tooltip="the bias control, or the n-th YSR state (ascending |E|) through the tip")
        self.map_at.add_class("gs-map-at")
        self.preset_info = w.HTML()
        self.readout = w.HTML()
        self.readout.add_class("gs-readout")
        self.model_note = w.HTML(f'<div style="font-size:0.8em;color:#555;max-width:30em">{html.escape(MODEL_NOTE)}'
                                 "</div>")
        self.tip_position = (0.15, 0.0)
        self.tip_box = w.Text(value="0.15, 0", description="Tip at (nm)", continuous_update=False,
                              style={"description_width": "7em"}, layout=w.Layout(width="17em"),
                              tooltip="x, y of the tip in nm (or click the map; click the adatom to sit on it)")
        self.tip_box.add_class("gs-tip-position")
        self.engine: ysr.Engine | None = None
        self._map_memo: tuple[tuple, np.ndarray] | None = None
        self._states_memo: tuple[str, tuple[np.ndarray, list[str]]] | None = None
        self.map_data: np.ndarray | None = None
        self.curves: dict[str, np.ndarray] = {}
        self.lattice_view = LatticeView()
        super().__init__(**values)
        self._enable_controls(None)

    def make_extras(self) -> dict[str, w.Widget]:
        style = {"description_width": "7em"}
        substrate = w.Dropdown(options=list(SUBSTRATES), value="continuum", description="Substrate", style=style)
        substrate.add_class("gs-substrate")
        return {
            "dim": w.ToggleButtons(options=[("2D", 2), ("3D", 3)], value=2, description="Band",
                                   style={**style, "button_width": "4em"}),
            "tip": w.ToggleButtons(options=["normal", "superconducting"], value="superconducting", description="Tip",
                                   style={**style, "button_width": "9.5em"}),
            "view": w.Dropdown(options=list(VIEWS), value="electron (normal tip)", description="View", style=style),
            "substrate": substrate,
        }

    dim = property(lambda self: self.extras["dim"])
    tip = property(lambda self: self.extras["tip"])
    view = property(lambda self: self.extras["view"])

    # ------------------------------------------------------------------ figures
    def build(self) -> w.Widget:
        xs, ys = bq.LinearScale(), bq.LinearScale()
        self.line_didv = bq.Lines(x=[0.0], y=[1.0], scales={"x": xs, "y": ys}, colors=["#1f4e9c"],
                                  stroke_width=2.2, labels=["dI/dV at tip"], display_legend=True)
        self.line_ldos = bq.Lines(x=[0.0], y=[1.0], scales={"x": xs, "y": ys}, colors=["#999999"],
                                  line_style="dashed", labels=["LDOS ρ(E)"], display_legend=True)
        self.bias_rule = bq.Lines(x=[0.0, 0.0], y=[0.0, 1.0], scales={"x": xs, "y": ys}, colors=["#c0392b"],
                                  line_style="dotted")
        self.fig_spec = bq.Figure(marks=[self.line_ldos, self.line_didv, self.bias_rule], title="Spectrum at the tip",
                                  axes=[bq.Axis(scale=xs, label="bias V (mV) · energy E (meV)"),
                                        bq.Axis(scale=ys, side="left", label="normalised dI/dV, ρ")],
                                  legend_location="top-left", layout=w.Layout(width="100%", height="360px"),
                                  fig_margin=dict(top=40, bottom=50, left=72, right=20))
        self.fig_spec.add_class("gs-spectrum")

        mx, my = bq.LinearScale(), bq.LinearScale()
        self.map_scales = (mx, my)
        self.map_image = bq.Image(image=w.Image(value=to_png(np.zeros((2, 2))), format="png"),
                                  scales={"x": mx, "y": my}, x=[-1.0, 1.0], y=[-1.0, 1.0])
        self.map_image.on_element_click(self._map_clicked)
        self.imp_marks = bq.Scatter(x=[0.0], y=[0.0], scales={"x": mx, "y": my}, colors=["white"], marker="circle",
                                    default_size=40, stroke="black")
        self.imp_marks.on_element_click(self._impurity_clicked)          # the tip can be put on the adatom
        self.map_axes = (bq.Axis(scale=mx, label="x (nm)", tick_format=".3g"),
                         bq.Axis(scale=my, side="left", label="y (nm)", tick_format=".3g"))
        self.colorbar = w.HTML()
        self.tip_mark = bq.Scatter(x=[0.15], y=[0.0], scales={"x": mx, "y": my}, colors=["#ff4136"], marker="cross",
                                   default_size=90)
        self.fig_map = bq.Figure(marks=[self.map_image, self.imp_marks, self.tip_mark],
                                 title="dI/dV map (click: move tip)",
                                 axes=list(self.map_axes),
                                 min_aspect_ratio=1, max_aspect_ratio=1, layout=w.Layout(width="380px", height="380px"),
                                 fig_margin=dict(top=35, bottom=45, left=50, right=15))
        self.fig_map.add_class("gs-map")

        ax, ey = bq.LinearScale(min=0.0), bq.LinearScale()
        self.line_e0 = bq.Lines(x=[0.0], y=[0.0], scales={"x": ax, "y": ey}, colors=["#1f4e9c", "#1f4e9c"],
                                line_style="solid")
        self.qpt_rule = bq.Lines(x=[1.0, 1.0], y=[-1.0, 1.0], scales={"x": ax, "y": ey}, colors=["#c0392b"],
                                 line_style="dashed")
        self.dot_e0 = bq.Scatter(x=[0.7], y=[0.5], scales={"x": ax, "y": ey}, colors=["#c0392b"], default_size=60)
        self.fig_e0 = bq.Figure(marks=[self.line_e0, self.qpt_rule, self.dot_e0], title="E₀(α): signed YSR energy",
                                axes=[bq.Axis(scale=ax, label="α = πN₀JS/2", num_ticks=6),
                                      bq.Axis(scale=ey, side="left", label="E₀ (meV)")],
                                layout=w.Layout(width="330px", height="300px"),
                                fig_margin=dict(top=35, bottom=45, left=55, right=10))
        lower = w.HBox([w.VBox([self.fig_map, self.colorbar]), w.VBox([self.fig_e0, self.readout, self.model_note])])
        return w.VBox([self.fig_spec, lower], layout=w.Layout(flex="1 1 auto", min_width="500px"))

    def marks(self) -> Iterable[w.Widget]:
        return (self.line_didv, self.line_ldos, self.bias_rule, self.map_image, self.imp_marks, self.tip_mark,
                self.line_e0, self.qpt_rule, self.dot_e0, *self.map_scales)

    def header(self) -> list[w.Widget]:
        return [w.HBox([self.preset, self.reset_button]), self.preset_info, *self.extras.values(), self.channel,
                self.map_at, self.tip_box]

    def footer(self) -> list[w.Widget]:
        self.export_spectrum = w.Button(description="Spectrum CSV", icon="download",
                                        tooltip="the spectrum at the tip and the LDOS, with the parameters")
        self.export_map = w.Button(description="Map CSV", icon="table", tooltip="the dI/dV map as numbers (x, y in nm)")
        self.export_png = w.Button(description="Map PNG", icon="image", tooltip="the map figure as PNG")
        self.download = w.HTML()
        return [w.HBox([self.export_spectrum, self.export_map, self.export_png], layout=w.Layout(flex_flow="row wrap")),
                self.download]

    def _parameters_text(self) -> str:
        return "".join(f"# {k} = {val}\n" for k, val in self.values.items())

    def spectrum_csv(self) -> str:
        """The plotted spectrum at the tip and the LDOS there, with every parameter, as CSV."""
        c = self.curves
        rows = "".join(f"{a:.8g},{b:.8g},{d:.8g}\n" for a, b, d in zip(c["bias_mV"], c["didv"], c["ldos"], strict=True))
        return self._parameters_text() + "bias_mV,didv_normalised,ldos_normalised\n" + rows

    def map_csv(self) -> str:
        """The plotted dI/dV map (rows from the top, as drawn) with its x, y axes in nm, as CSV."""
        M = self.map_data
        if M is None:
            pending = bool(self.result and self.result.get("pending"))
            raise ValueError("The map for these values is still being computed." if pending else "No map is shown.")
        if self.result and self.result.get("lattice"):
            return self.lattice_view.map_csv(self)
        L = self.values["map_size"]
        x = np.linspace(-L, L, M.shape[1])
        y = np.linspace(L, -L, M.shape[0])
        head = self._parameters_text() + f"# bias_mV = {self.result['bias'] if self.result else ''}\n"
        lines = ["y_nm \\ x_nm," + ",".join(f"{v:.6g}" for v in x)]
        lines += [f"{yy:.6g}," + ",".join(f"{v:.6g}" for v in row) for yy, row in zip(y, M, strict=True)]
        return head + "\n".join(lines) + "\n"

    def _offer(self, name: str, text: str) -> None:
        data = base64.b64encode(text.encode()).decode()
        self.download.value = (f'<a download="{name}" href="data:text/csv;base64,{data}" class="gs-download">'
                               f"⬇ {name}</a>")

    def extra_values(self) -> dict[str, Any]:
        channels = dict(self.channels)        # the selected channel carries the sliders' α, β
        channels[self.channel.value] = (self.controls["alpha"].value, self.controls["beta"].value)
        return {"channel": self.channel.value, "channels": channels, "tip_position": tuple(self.tip_position),
                "map_state": int(self.map_at.value)}

    def set_extra(self, name: str, value: Any) -> None:
        if name == "channels":
            self.channels = {k: (float(a), float(b)) for k, (a, b) in value.items()}
            first = next(iter(self.channels))
            self.channel.value = first
            self.controls["alpha"].value, self.controls["beta"].value = self.channels[first]
            return
        if name == "channel":
            self.channel.value = value
            return
        if name == "tip_position":
            self.tip_position = (float(value[0]), float(value[1]))
            return
        if name == "map_state":
            self.map_at.value = int(value)
            return
        super().set_extra(name, value)

    # ------------------------------------------------------------------ observers
    def _export(self, which: str) -> None:
        try:
            if which == "spectrum":
                self._offer("gapscope_shiba_spectrum.csv", self.spectrum_csv())
            else:
                self._offer("gapscope_shiba_map.csv", self.map_csv())
        except ValueError as exc:
            self.show_message(str(exc), level="warning")

    def observers(self):
        return [(self.export_spectrum, None, lambda _: self._export("spectrum")),
                (self.export_map, None, lambda _: self._export("map")),
                (self.export_png, None, lambda _: self.fig_map.save_png("gapscope_shiba_map.png")),
                (self.tip_box, "value", self._tip_typed),
                (self.controls["alpha"], "value", self._coupling_changed),
                (self.controls["beta"], "value", self._coupling_changed),
                (self.channel, "value", self._channel_selected),
                (self.map_at, "value", self._map_state_selected),
                (self.preset, "value", self._apply_preset),
                (self.tip, "value", self._enable_controls),
                (self.dim, "value", self._enable_controls),
                (self.extras["substrate"], "value", self._enable_controls)]

    def _enable_controls(self, _: Any) -> None:
        sc = self.tip.value == "superconducting"
        self.controls["tip_delta"].disabled = not sc
        self.controls["tip_gamma"].disabled = not sc
        self.controls["tip_height"].disabled = self.dim.value != 3
        self.controls["bias"].disabled = self.map_at.value != 0
        self.lattice_view.enable(self)

    def _map_state_selected(self, change: dict) -> None:
        with self.batch():                     # one update: the map follows the state (or the bias control)
            if change["new"] == 0 and self.result is not None and self.result.get("bias") is not None:
                # continue from where the map was — within the bias control's bounds: a state seen through a
                # large tip gap sits beyond them (|E_n| + Δ_t > 50 mV), and the control refuses such a value
                self.controls["bias"].value = float(np.clip(self.result["bias"], *BIAS.bounds))
            self._enable_controls(None)

    def _coupling_changed(self, change: dict) -> None:
        self.channels[self.channel.value] = (self.controls["alpha"].value, self.controls["beta"].value)

    def _channel_selected(self, change: dict) -> None:
        a, b = self.channels.get(change["new"], (0.0, 0.0))
        with self.batch():
            self.channels.setdefault(change["new"], (a, b))
            self.controls["alpha"].value, self.controls["beta"].value = a, b

    def reset(self) -> None:
        """Back to the chosen preset — choosing it again in the dropdown changes nothing — or the defaults."""
        if self.preset.value in SHIBA_PRESETS:
            self._apply_preset({"new": self.preset.value})
        else:
            super().reset()

    def _apply_preset(self, change: dict) -> None:
        p = SHIBA_PRESETS.get(change["new"])
        if p is None:
            self.preset_info.value = ""
            return
        self.preset_info.value = p.html()
        self.set(channels=p.channels, tip=p.tip, dim=p.dim, map_state=p.map_state, substrate="continuum", **p.values)

    def _impurity_clicked(self, _mark: Any, content: dict) -> None:
        data = content.get("data", {})
        try:
            i = int(data["index"])
            x, y = float(self.imp_marks.x[i]), float(self.imp_marks.y[i])
        except (KeyError, TypeError, ValueError, IndexError):
            return
        self.move_tip(x, y)

    def _map_clicked(self, _mark: Any, content: dict) -> None:
        at = clicked_at(content)
        if at is not None:
            self.move_tip(*at)

    def move_tip(self, x: float, y: float) -> None:
        """Put the tip at (x, y) nm and update the spectrum there."""
        self.tip_position = (float(x), float(y))
        text = f"{format_value(self.tip_position[0])}, {format_value(self.tip_position[1])}"
        if self.tip_box.value != text:
            self._tip_typing = True
            try:
                self.tip_box.value = text
            finally:
                self._tip_typing = False
        self.refresh()

    def _tip_typed(self, change: dict) -> None:
        if getattr(self, "_tip_typing", False):
            return
        parts = [p for p in str(change["new"]).replace(";", " ").replace(",", " ").split() if p]
        try:
            if len(parts) != 2:
                raise ValueError(f"“{change['new']}”: give the tip position as x, y in nm")
            x, y = (parse_value(p) for p in parts)
            limit = 50.0
            if abs(x) > limit or abs(y) > limit:
                raise ValueError(f"the tip must stay within ±{limit:g} nm of the adatom")
        except ValueError as exc:
            self._tip_typing = True
            try:                                   # show the position in force again; nothing to recompute
                self.tip_box.value = f"{format_value(self.tip_position[0])}, {format_value(self.tip_position[1])}"
            finally:
                self._tip_typing = False
            self.show_message(f"{exc}. The tip stays at ({format_value(self.tip_position[0])}, "
                              f"{format_value(self.tip_position[1])}) nm.", level="warning")
            return
        self.move_tip(x, y)

    # ------------------------------------------------------------------ physics (no widgets)
    @staticmethod
    def model(v: dict[str, Any]) -> tuple[ysr.Substrate, list[ysr.Impurity]]:
        gamma = v["gamma"]
        if gamma == 0.0:
            gamma = 1e-3 * v["delta"]
        sub = ysr.Substrate(dim=v["dim"], kf=v["kf"], hbar_vf=v["hbar_vf"], delta=v["delta"], gamma=gamma)
        chans = [ysr.Channel(shape, a, b) for shape, (a, b) in v["channels"].items() if a or b]
        if not chans:
            chans = [ysr.Channel("s", 0.0, 0.0)]
        return sub, [ysr.Impurity(position=(0.0, 0.0), spin=(0.0, 0.0, 1.0), channels=chans)]

    @staticmethod
    def geometry(v: dict[str, Any]) -> dict[str, float]:
        """The map geometry keywords of the kernels: the orbital radius, and in 3D the tip height."""
        geo = {"orbital_radius": v["orbital_radius"]}
        if v["dim"] == 3:
            geo["tip_height"] = v["tip_height"]
        return geo

    @staticmethod
    def states(sub: ysr.Substrate, imps: list[ysr.Impurity]) -> tuple[np.ndarray, list[str]]:
        """YSR energies |E_n| (ascending, meV) and, for one impurity, the channel each belongs to."""
        E = ysr.energies(sub, imps)
        # channels of one site are independent: each binds the state of its own (α, β); channels that
        # share a harmonic (2D: s and dz2) merge, and then carry the merged name
        mine = [(abs(ysr.single_energy(alpha=c.alpha, beta=c.beta, delta=sub.delta)), c.shape)
                for c in imps[0].channels if c.alpha or c.beta]
        merged = [(abs(ysr.single_energy(alpha=a, beta=b, delta=sub.delta)), k)
                  for k, a, b in ysr.model.resolve_sites(sub, imps)[0].channels if a or b]
        labels = []
        for e in E:
            exact = [k for x, k in mine if abs(x - e) < 1e-7 * sub.delta]
            near = min(merged, key=lambda t: abs(t[0] - e))[1] if merged else "?"
            labels.append("/".join(exact) if exact else near)
        return E, labels

    def compute(self, v: dict[str, Any], task: Task | None = None) -> dict[str, Any]:
        if v["substrate"] != "continuum":
            return self.lattice_view.compute(v, task, views=VIEWS, map_bias=map_bias, weights_budget=WEIGHTS_BUDGET,
                                             map_budget=MAP_BUDGET)
        sub, imps = self.model(v)
        self.engine = ysr.Engine(sub, imps) if self.engine is None else self.engine.update(sub, imps)
        eng = self.engine
        part, spin_axis = VIEWS[v["view"]]
        tip_delta = v["tip_delta"] if v["tip"] == "superconducting" else 0.0
        chain = dict(temperature=v["temperature"], tip_delta=tip_delta, tip_gamma=v["tip_gamma"],
                     vmod_rms=v["vmod_rms"])
        geo = self.geometry(v)
        skey = repr((sub.with_gamma(0.0), imps))              # a tip move or a chain change keeps the states
        if self._states_memo is None or self._states_memo[0] != skey:
            self._states_memo = (skey, self.states(sub, imps))
        E_states, state_channels = self._states_memo[1]
        bias = map_bias(v["map_state"], E_states, tip_delta) if v["map_state"] else float(v["bias"])

        # spectrum at the tip through the full measurement chain; the LDOS states its width Γ
        V = np.linspace(-v["v_max"], v["v_max"], 600)
        rho = eng.sample_dos(v["tip_position"], part=part, spin_axis=spin_axis, **geo)
        G = tunneling.didv(V, sample_dos=rho, **chain)
        R = rho(V)
        self.finite("dI/dV", G, R)
        if task is not None:
            task.progress(0.3, "map …")

        # map at the bias (memo: a tip move changes only the spectrum)
        L = v["map_size"]
        npx = map_pixels(len(imps[0].channels))
        E, Wt, weights_note = map_weights(bias, chain, sub.gamma, WEIGHTS_BUDGET)
        significant = tunneling.significant_weights(Wt)                         # as weighted_map prunes
        n_keep = int(significant.sum())
        wanted = npx

        kept = E[significant] if n_keep else None

        def cost(n: int) -> tuple[float, float]:    # exact for these energies (the fast path's node count)
            return eng.map_cost(n * n, n_keep, extent=float(np.sqrt(2.0) * L), part=part, energies=kept, **geo)
        if not weights_note and n_keep > MAP_MAX_ENERGIES:   # estimated before computing, like the others
            weights_note = (f"The map is not drawn: the tunnelling chain spreads V_map = {bias:+g} mV over {n_keep} "
                            f"energies (more than {MAP_MAX_ENERGIES}; set by T = {chain['temperature']:g} K and "
                            f"Γ = {sub.gamma:.2g} meV). Lower T or raise Γ; the spectrum is exact.")
        npx = affordable_pixels(cost, npx) if not weights_note else None
        key = (repr((sub, imps)), E.tobytes(), Wt.tobytes(), part, spin_axis, repr(geo), npx, L)
        map_note = weights_note
        if weights_note:
            M = None
        elif npx is None:         # estimated before computing: never let one map take the machine
            M = None
            mem, evals = cost(MIN_PIXELS)
            map_note = (f"The map is not drawn: even at {MIN_PIXELS}² pixels it would need {mem / 2 ** 30:.1f} GB "
                        f"and {evals:.2g} propagator evaluations ({n_keep} energies: a small Γ and a large k_F need "
                        "many). Raise Γ, T or V_mod, or lower k_F; the spectrum is exact.")
        elif self._map_memo is not None and self._map_memo[0] == key:
            M = self._map_memo[1]
        else:
            x = np.linspace(-L, L, npx)
            X, Y = np.meshgrid(x, x[::-1])
            pts = np.c_[X.ravel(), Y.ravel()]
            M = eng.weighted_map(pts, E, Wt, part=part, spin_axis=spin_axis, **geo).reshape(npx, npx)
            self.finite("map", M)
            self._map_memo = (key, M)
        if npx is not None and npx < wanted:
            map_note = f"The map is drawn at {npx}² pixels instead of {wanted}² to stay within memory and time."

        # E0(α) for the selected channel's β
        beta = v["beta"]
        alphas = np.linspace(0.0, max(3.0, 1.2 * v["alpha"]), 300)
        e0 = np.array([ysr.single_energy(alpha=a, beta=beta, delta=v["delta"]) for a in alphas])
        return {"values": dict(v), "sub": sub, "tip_delta": tip_delta, "V": V, "G": G, "R": R, "M": M, "L": L,
                "map_note": map_note,
                "bias": bias, "states": E_states, "state_channels": state_channels,
                "alphas": alphas, "e0": e0, "alpha_c": ysr.critical_alpha(beta=beta),
                "e0_now": ysr.single_energy(alpha=v["alpha"], beta=beta, delta=v["delta"])}

    def draw(self, r: dict[str, Any]) -> None:
        if r.get("lattice"):
            return self.lattice_view.draw(self, r)
        self.lattice_view.restore(self)
        v, V, G, R, M, L = r["values"], r["V"], r["G"], r["R"], r["M"], r["L"]
        self.line_didv.x, self.line_didv.y = V, G
        self.line_ldos.x, self.line_ldos.y = V, R
        top = float(max(G.max(), R.max()))
        bottom = float(min(G.min(), R.min(), 0.0))
        self.bias_rule.x, self.bias_rule.y = [r["bias"], r["bias"]], [bottom, top]
        if M is None:                            # refused within the memory budget: a blank map, and the reason
            old = self.map_image.image
            self.map_image.image = w.Image(value=to_png(np.zeros((2, 2))), format="png")
            old.close()
        elif self.map_data is None or M.shape != self.map_data.shape or not np.array_equal(M, self.map_data):
            old = self.map_image.image           # only a changed map is re-encoded and sent (not on tip moves)
            lo, hi = np.percentile(M, [1.0, 99.0])    # robust colours: the on-site peak does not wash out the rings
            self.map_image.image = w.Image(value=to_png(M, lo, hi), format="png")   # bqplot 0.13: new widget
            old.close()
        self.map_image.x, self.map_image.y = [-L, L], [-L, L]
        for s in self.map_scales:
            s.min, s.max = -L, L
        for a in self.map_axes:                  # tick labels equal tick positions (±L, ±L/2, 0)
            a.tick_values = np.array(ticks(-L, L))
        if M is not None:
            lo, hi = np.percentile(M, [1.0, 99.0])
            self.colorbar.value = colorbar_html(float(lo), float(hi), "dI/dV (normalised; 1st–99th percentile)")
        self.fig_map.title = f"dI/dV map at {r['bias']:+.3f} mV (click: move tip)"
        self.imp_marks.x, self.imp_marks.y = [0.0], [0.0]
        tx, ty = v["tip_position"]
        self.tip_mark.x, self.tip_mark.y = [tx], [ty]
        self.line_e0.x, self.line_e0.y = r["alphas"], np.vstack([r["e0"], -r["e0"]])
        self.qpt_rule.x, self.qpt_rule.y = [r["alpha_c"]] * 2, [-v["delta"], v["delta"]]
        self.dot_e0.x, self.dot_e0.y = [v["alpha"]], [r["e0_now"]]
        self.map_data = M
        self.curves = {"bias_mV": V, "didv": G, "ldos": R}
        self._readout(r)

    def _readout(self, r: dict[str, Any]) -> None:
        v, sub, M, tip_delta = r["values"], r["sub"], r["M"], r["tip_delta"]
        js, k = ysr.dimensionless_to_physical(sub, alpha=v["alpha"], beta=v["beta"])
        unit = "meV·nm²" if sub.dim == 2 else "meV·nm³"
        e0 = r["e0_now"]
        active = ", ".join(f"{s} ({a:g}, {b:g})" for s, (a, b) in v["channels"].items() if a or b) or "none"
        states = ", ".join(f"{n}: {e:.3f} ({c})" for n, (e, c) in enumerate(zip(r["states"], r["state_channels"],
                                                                                strict=True), start=1)) or "none"
        if v["map_state"]:
            n = abs(v["map_state"])
            where = (f"state {n}: {r['bias']:+.3f} mV = {'+' if v['map_state'] > 0 else '−'}(|E_{n}|"
                     f"{' + Δ_t' if tip_delta else ''})")
        else:
            where = f"{r['bias']:+.3f} mV (bias control)"
        geo = (f"orbital radius r_o = {v['orbital_radius']:.3f} nm" if sub.dim == 2 else
               f"tip height h = {v['tip_height']:.3f} nm, r_o = {v['orbital_radius']:.3f} nm")
        tx, ty = v["tip_position"]
        rows = [("channel", f"{v['channel']}: JS/2 = {js:.4g} {unit}, K = {k:.4g} {unit}"),
                ("E₀", f"{e0:+.4f} meV (|E₀| + Δ_t = {abs(e0) + tip_delta:.4f} mV)"),
                ("YSR states |E_n| (meV)", states),
                ("map at", where),
                ("QPT", f"α_c = {r['alpha_c']:.4f}"),
                ("lengths", f"YSR decay length ħv_F/Δ = {sub.coherence_length:.1f} nm (= πξ₀; BCS "
                            f"ξ₀ = ħv_F/πΔ = {sub.bcs_coherence_length:.1f} nm); map period π/k_F = λ_F/2 = "
                            f"{np.pi / sub.kf:.3f} nm"),
                ("channels (α, β)", active),
                ("geometry", geo),
                ("tip at", f"({tx:.3f}, {ty:.3f}) nm"),
                ("map range", f"{M.min():.3g} … {M.max():.3g} (colours: 1st–99th percentile)" if M is not None
                 else "no map (memory budget)")]
        self.readout.value = ("<table style='font-size:0.9em'>" + "".join(
            f"<tr><td>{a}</td><td class='gs-ro-{i}'>{html.escape(b)}</td></tr>" for i, (a, b) in enumerate(rows))
            + "</table>")
        notes = [r["map_note"]] if r.get("map_note") else []
        if v["gamma"] == 0.0:
            notes.append(f"Γ = 0: the in-gap LDOS would be δ peaks; drawn with Γ = {1e-3 * v['delta']:.2g} meV.")
        if abs(e0) < 1e-3 * v["delta"]:
            notes.append("At the quantum phase transition: the YSR state sits at zero energy.")
        if np.hypot(tx, ty) > v["map_size"] * 1.5:
            notes.append("The tip is outside the map.")
        if notes:
            self.show_message(" ".join(notes), level="warning")
