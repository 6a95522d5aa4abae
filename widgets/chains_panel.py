"""YSR chains panel: LCAO, extended and T-matrix models of adatom chains — spectrum, line profile, fan diagram."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from gapscope.kernels import chains, tunneling, ysr
from gapscope.kernels.references import cite
from gapscope.kernels.sampling import UnresolvedDOSError
from gapscope.kernels.specs import Spec
from gapscope.kernels.ysr import geometry

from . import chains_lattice as cl
from . import chains_tmatrix as tm
from .chains_extended import EXTENDED_FANS
from .chains_lattice import SITE_STEP  # noqa: F401 (panel-only specs: declared here for the architecture test)
from .chains_tmatrix import BIAS, TIP_Y  # noqa: F401
from .chains_tmatrix_view import (  # noqa: F401 (the T-matrix half's limits, re-exported)
    CUSTOM_BOND,
    FAN_BUDGET,
    LDOS_BUDGET,
    MAX_TMATRIX_SITES,
    MIN_FAN_TR,
    N_FAN_TR,
    TMatrixPanelMixin,
)
from .colormap import clicked_at, colorbar_html, to_png
from .panel import Panel, PanelInputError, Task
from .params import param
from .shiba_lattice import NK  # noqa: F401

__all__ = ["ChainsPanel", "CHAINS_PARAMS", "CHAINS_PRESETS", "ChainsPreset", "MODELS", "TEXTURES", "BONDS",
           "CUSTOM_BOND", "PROFILE_NOTE", "RASHBA_NOTE",
           "LATTICE_NOTE"]

# panel-only quantities: what is shown, not what the kernels take
TIP_X = Spec("x_tip", "x_tip", "nm", 0.0, (-1.5, 1.5), (-50.0, 50.0), 0.01,
             "tip position along the chain (0: the chain's centre)")
V_MAX = Spec("v_max", "V_max", "mV", 3.5, (0.5, 8.0), (0.1, 50.0), 0.1, "half-width of the bias range shown")
PITCH = Spec("pitch", "p", "nm", 1.0, (0.1, 5.0), (0.0, 1e3), 0.01,
             "spiral pitch: chain length of one full turn of the spins (T-matrix)", open_low=True)

CHAINS_PARAMS = (
    param(chains.N_SITES),
    param(chains.E0),
    param(chains.K1),
    param(chains.K2),
    param(chains.K3),
    param(chains.SPACING, live=False),
    param(chains.LAMBDA_F),
    param(chains.XI_J),
    param(chains.J0),
    param(geometry.T_R, live=False),
    param(ysr.ALPHA, live=False),
    param(ysr.BETA, live=False),
    param(ysr.KF, live=False),
    param(ysr.HBAR_VF, live=False),
    param(PITCH, live=False),
    param(chains.DELTA),
    param(chains.GAMMA),
    param(chains.GAMMA_YSR),
    param(chains.WEIGHT),
    param(chains.ELECTRON_FRACTION),
    param(chains.WIDTH),
    param(tunneling.TEMPERATURE, default=1.4, soft=(0.0, 5.0), doc="temperature of tip and sample"),
    param(tunneling.TIP_DELTA, default=1.33, doc="gap of the superconducting tip (0: normal tip)"),
    param(tunneling.TIP_GAMMA),
    param(tunneling.VMOD_RMS, default=0.1, soft=(0.0, 0.3)),
    param(TIP_X),
    param(tm.TIP_Y),
    param(tm.BIAS, live=False),
    param(V_MAX),
    *cl.CHAIN_LATTICE_PARAMS,            # the lattice substrates of the T-matrix model (widgets/chains_lattice.py)
    param(cl.SITE_STEP, live=False),
)

MODELS = ("LCAO", "extended", "T-matrix")
TEXTURES = ("fm", "afm", "spiral")
BONDS = (CUSTOM_BOND, *geometry.NB110_BONDS)
#: controls each model uses (the others are disabled)
_USES = {
    "LCAO": {"n", "e0", "k1", "k2", "k3", "spacing", "gamma_ysr", "weight", "electron_fraction", "width"},
    "extended": {"n", "e0", "spacing", "lambda_f", "xi_j", "j0", "gamma_ysr", "weight", "electron_fraction",
                 "width"},
    "T-matrix": {"n", "spacing", "t_r", "alpha", "beta", "kf", "hbar_vf", "pitch", "y_tip", "bias",
                 *cl.LATTICE_NAMES},
}
_COMMON = {"delta", "gamma", "temperature", "tip_delta", "tip_gamma", "vmod_rms", "x_tip", "v_max"}
MAX_EXTENDED_SITES = 24
MAX_LCAO_SITES = 100
N_BIAS = 401
N_X = 81
N_FAN = 121
EVEN, ODD, NEUTRAL = "#1f4e9c", "#c0392b", "#2a7a2a"

#: how the spatial profile is modelled (always shown)
PROFILE_NOTE = ("LCAO and extended model: each state n is a Lorentzian (half-width Γ_YSR) at ±E_n (electron part u², "
                "hole part 1 − u²) added to the Dynes DOS of the substrate, with weight a_YSR·[Σ_j C_jn g(x − x_j)]² "
                "at the tip position x: the eigenvector's coefficients C_jn on the sites times a Gaussian envelope "
                "g of width w at each atom (coefficients normalised, Σ_j C_jn² = 1). T-matrix: the LDOS of classical "
                "spins with an s channel on a 2D band (no envelope model). All spectra go through the tunnelling "
                "chain (superconducting tip, T, lock-in V_mod as rms).")
LATTICE_NOTE = ("Lattice substrate: a tight-binding band (t, μ) with s-wave Δ and nearest-neighbour Rashba hopping t_R "
                "(exact, no small-k mapping); each atom one on-site channel, exchange J·n̂·σ and potential K·τ_z in "
                "meV; the atoms on lattice sites along a₁; positions, the line profile and the spiral pitch in "
                "units of the lattice constant a.")
RASHBA_NOTE = ("t_R enters the continuum Rashba band as α_R = 2 t_R a (a = 0.3294 nm, Nb): the small-k mapping of a "
               "nearest-neighbour tight-binding Rashba hopping, not exact at k_F a ≈ 3.")


@dataclass(frozen=True)
class ChainsPreset:
    """A named parameter set: which numbers are the paper's (``paper``) and which are chosen (``chosen``)."""

    label: str
    reference: str            # key in gapscope.kernels.references
    paper: str
    chosen: str
    values: dict[str, Any] = field(default_factory=dict)

    def html(self) -> str:
        return (f'<div style="font-size:0.85em;max-width:27em">{cite(self.reference).html()}<br>'
                f"<b>Paper:</b> {html.escape(self.paper)}<br><b>Chosen:</b> {html.escape(self.chosen)}</div>")


_NB111 = geometry.NB110_BONDS["√3a/2 [1-11]"][0]
_FE_CHOSEN = ("Δ = 1.52 meV (the paper's coherence peaks at ±2.85 mV minus its Δ_tip = 1.33 meV; its k₁ = 0.26 Δ_Nb "
              "implies 1.54), Dynes Γ = 0.02 meV, Γ_YSR = 0.03 meV, a_YSR = 0.25 meV, u² = 0.7 (the paper: "
              "electron-like states stronger), envelope w = 0.15 nm, k₂ = k₃ = 0 as the paper argues, V_mod "
              "0.1 mV taken as rms (the paper does not say), Γ_t = 0.01 meV, the tip at the chain's centre; spacing "
              "√3a/2 = 0.2853 nm with Nb's a = 0.3294 nm (the paper's a = 3.3 Å gives 0.286 nm).")
_FE = dict(model="LCAO", k1=0.40, k2=0.0, k3=0.0, spacing=round(_NB111, 4), bond=CUSTOM_BOND, delta=1.52,
           gamma=0.02, gamma_ysr=0.03, weight=0.25, electron_fraction=0.7, width=0.15, temperature=1.4,
           tip_gamma=0.01, vmod_rms=0.1, x_tip=0.0, v_max=3.5)
CHAINS_PRESETS: dict[str, ChainsPreset] = {p.label: p for p in (
    ChainsPreset("Fe atom on Nb(110) — Friedrich et al.", "friedrich2023_fe_chains",
                 "a single Fe atom's YSR state lies close to the gap edge, E_YSR ≈ Δ_Nb; T = 1.4 K; Δ_tip = 1.31 meV "
                 "(Fig. 2).",
                 "E₀ = 1.45 meV (just inside the gap). " + _FE_CHOSEN,
                 {**_FE, "n": 1, "e0": 1.45, "tip_delta": 1.31}),
    ChainsPreset("Fe dimer ⟨1-11⟩ — Friedrich et al.", "friedrich2023_fe_chains",
                 "k₁ = 0.40 meV (from the dimer), centre energy E₀′ = 0.6 meV, so even 1.0 and odd 0.2 meV; "
                 "measured even peak 2.3 ± 0.1 mV; spacing √3a/2 along ⟨1-11⟩ (a = 3.3 Å); T = 1.4 K; Δ_tip "
                 "1.31 meV for the dimer maps (Fig. S1; Fig. 3's caption says 1.33).",
                 _FE_CHOSEN, {**_FE, "n": 2, "e0": 0.6, "tip_delta": 1.31}),
    ChainsPreset("Fe trimer ⟨1-11⟩ — Friedrich et al.", "friedrich2023_fe_chains",
                 "k₁ = 0.40 meV, centre energy E₀′ = 1.0 meV (the odd state), so 0.434 (even), 1.0 (odd), 1.566 meV "
                 "(even, not resolved next to the coherence peaks); T = 1.4 K; Δ_tip = 1.33 meV.",
                 _FE_CHOSEN, {**_FE, "n": 3, "e0": 1.0, "tip_delta": 1.33}),
    ChainsPreset("Fe tetramer ⟨1-11⟩ — Friedrich et al.", "friedrich2023_fe_chains",
                 "k₁ = 0.40 meV, centre energy E₀′ = 0.7 meV, so 0.053 (odd), 0.453 (even), 0.947 (odd), 1.347 meV "
                 "(even); T = 1.4 K; Δ_tip = 1.33 meV.",
                 _FE_CHOSEN, {**_FE, "n": 4, "e0": 0.7, "tip_delta": 1.33}),
    ChainsPreset("Extended model, Fig. S5 (d = 0.7 λ_F) — Friedrich et al.", "friedrich2023_fe_chains",
                 "sinc YSR states and a Gaussian exchange potential; d = 0.7 λ_F, ξ_J = 0.4 λ_F, J₀ = Δ in units of "
                 "λ_F: the trimer's two highest states are both even (its Fig. S5). The exchange potential is "
                 "normalised here to ∫J dr = J₀ (the supplement's printed 1/√(πξ_J) is dimensionally inconsistent; "
                 "it rescales all shifts by √(ξ_J/λ_F), the orderings stay).",
                 "λ_F = 1 nm (so d = 0.7 nm, ξ_J = 0.4 nm, J₀ = 1.52 meV·nm), E₀ = 0.3 meV, N = 3; the spectra as "
                 "for the Fe chains. " + _FE_CHOSEN,
                 {**_FE, "model": "extended", "n": 3, "e0": 0.3, "spacing": 0.7, "lambda_f": 1.0, "xi_j": 0.4,
                  "j0": 1.52, "tip_delta": 1.33}),
    ChainsPreset("AFM Mn dimer √3a/2 [1-11] with Rashba — Beck et al.", "beck2021_mn_dimers",
                 "the √3a/2 [1-11] Mn dimer is antiferromagnetic with out-of-plane spins; Rashba t_R = 7.5 meV; "
                 "Δ = 1.5 meV; tip Δ_t = 1.43 meV; broadening k_B·300 mK = 0.0259 meV; without SOC the AFM pair is "
                 "degenerate, with SOC it splits.",
                 "one s channel (α, β) = (0.7, 0.3) instead of the paper's five d orbitals; a 2D Nb-like band "
                 "k_F = 10 nm⁻¹, ħv_F = 179 meV·nm; α_R = 2 t_R a (small-k mapping); T = 0.32 K (the paper's "
                 "measurement temperature), no lock-in; Γ_t = 0.01 meV; the tip on the dimer's centre.",
                 dict(model="T-matrix", n=2, bond="√3a/2 [1-11]", spacing=round(_NB111, 4), texture="afm",
                      channels={"s": (0.7, 0.3)}, t_r=7.5, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.0259,
                      temperature=0.32, tip_delta=1.43, tip_gamma=0.01, vmod_rms=0.0, x_tip=0.0, v_max=3.5)),
)}


class ChainsPanel(TMatrixPanelMixin, Panel):
    """Chains of magnetic adatoms: coupled YSR states in the LCAO, extended or T-matrix model.

    Outputs: the spectrum at the tip (x_tip along the chain; y_tip across it in the T-matrix model), the
    line profile dI/dV(x, V) along the chain as an image or, for the T-matrix model on the continuum
    band, the dI/dV map at V_map around the chain (click: move the tip), and a fan diagram of the states
    versus k₁ (LCAO), d/λ_F, ξ_J/λ_F or J₀ (extended, "Fan against") or t_R (T-matrix; in the background,
    with progress; the states at the current t_R as diamonds) with even/odd colours.  The T-matrix atoms
    carry the orbital channels chosen as in the Shiba panel (the "Channel" dropdown picks which one the
    α, β sliders edit), spins along a chosen axis, on the continuum Rashba band or a lattice substrate
    (:mod:`.chains_lattice`).  ``curves`` holds the last plotted data.
    """

    TITLE = "YSR chains"
    PARAMS = CHAINS_PARAMS
    BACKGROUND = True
    CACHE_SIZE = 16

    def __init__(self, **values: Any) -> None:
        style = {"description_width": "7em"}
        self.preset = w.Dropdown(options=["—"] + list(CHAINS_PRESETS), value="—", description="Preset", style=style,
                                 layout=w.Layout(width="20em"))
        self.preset.add_class("gs-chains-preset")
        self.preset_info = w.HTML()
        self.readout = w.HTML()
        self.readout.add_class("gs-readout")
        self.splitting = w.HTML()
        self.splitting.add_class("gs-splitting")
        self.note = w.HTML(f'<div style="font-size:0.8em;color:#555;max-width:34em">{html.escape(PROFILE_NOTE)}</div>')
        self.rashba_note = w.HTML()
        self.curves: dict[str, Any] = {}
        self._tm_memo: dict[str, Any] = {}
        self._engine: ysr.Engine | None = None
        self._fan_gen = 0
        self._wt_memo: dict[str, Any] = {}
        self._map_memo: dict[str, Any] = {}
        # the T-matrix atoms' orbital channels: which one the α, β sliders edit is the "channel" dropdown
        self.channels: dict[str, tuple[float, float]] = {"s": (values.get("alpha", ysr.ALPHA.default),
                                                               values.get("beta", ysr.BETA.default))}
        super().__init__(**values)
        self._enable_controls(None)

    def make_extras(self) -> dict[str, w.Widget]:
        style = {"description_width": "7em"}
        model = w.ToggleButtons(options=list(MODELS), value="LCAO", description="Model",
                                style={**style, "button_width": "6.5em"})
        model.add_class("gs-model")
        return {
            "model": model,
            "bond": w.Dropdown(options=list(BONDS), value=CUSTOM_BOND, description="Bond", style=style,
                               tooltip="T-matrix: a Nb(110) bond or the spacing slider"),
            "texture": w.Dropdown(options=list(TEXTURES), value="afm", description="Spins", style=style,
                                  tooltip="T-matrix: spin texture (fm, afm, spiral)"),
            "axis": w.Dropdown(options=list(tm.SPIN_AXES), value="out of plane (z)", description="Spin axis",
                               style=style, tooltip="T-matrix: the axis of the first spin (a spiral turns from it)"),
            "channel": w.Dropdown(options=list(tm.CHANNEL_SHAPES), value="s", description="Channel", style=style,
                                  tooltip="T-matrix: the orbital channel the α, β sliders edit (each atom carries "
                                          "every channel with α or β ≠ 0)"),
            "view": w.ToggleButtons(options=list(tm.LOWER_VIEWS), value="line profile", description="Show",
                                    style={**style, "button_width": "7em"},
                                    tooltip="T-matrix: the line profile along the chain or the map at V_map"),
            "substrate": w.Dropdown(options=list(cl.SUBSTRATE_CHOICES), value="continuum", description="Substrate",
                                    style=style, tooltip="T-matrix: the continuum Rashba band or a tight-binding "
                                                         "lattice (sites along a₁; lengths in units of a)"),
            "fan": w.Dropdown(options=list(EXTENDED_FANS), value="d/λ_F", description="Fan against", style=style,
                              tooltip="extended model: the fan diagram's variable"),
        }

    model = property(lambda self: self.extras["model"])
    bond = property(lambda self: self.extras["bond"])
    texture = property(lambda self: self.extras["texture"])
    channel = property(lambda self: self.extras["channel"])

    # ------------------------------------------------------------------ figures
    def build(self) -> w.Widget:
        xs, ys = bq.LinearScale(), bq.LinearScale()
        self.line_didv = bq.Lines(x=[0.0], y=[1.0], scales={"x": xs, "y": ys}, colors=[EVEN], stroke_width=2.2,
                                  labels=["dI/dV at the tip"], display_legend=True)
        self.line_dos = bq.Lines(x=[0.0], y=[1.0], scales={"x": xs, "y": ys}, colors=["#999999"], line_style="dashed",
                                 labels=["sample DOS ρ(E)"], display_legend=True)
        self.fig_spec = bq.Figure(marks=[self.line_dos, self.line_didv], title="Spectrum at the tip",
                                  axes=[bq.Axis(scale=xs, label="bias V (mV) · energy E (meV)"),
                                        bq.Axis(scale=ys, side="left", label="normalised dI/dV, ρ")],
                                  legend_location="top-left", layout=w.Layout(width="100%", height="330px"),
                                  fig_margin=dict(top=40, bottom=50, left=72, right=20))
        self.fig_spec.add_class("gs-spectrum")

        px, py = bq.LinearScale(), bq.LinearScale()
        self.profile_scales = (px, py)
        self.profile_image = bq.Image(image=w.Image(value=to_png(np.zeros((2, 2))), format="png"),
                                      scales={"x": px, "y": py}, x=[-1.0, 1.0], y=[-1.0, 1.0])
        self.atoms = bq.Scatter(x=[0.0], y=[0.0], scales={"x": px, "y": py}, colors=["white"], stroke="black",
                                default_size=30)
        self.tip_rule = bq.Lines(x=[0.0, 0.0], y=[-1.0, 1.0], scales={"x": px, "y": py}, colors=["#ff4136"],
                                 line_style="dashed")
        self.fig_profile = bq.Figure(marks=[self.profile_image, self.atoms, self.tip_rule],
                                     title="Line profile dI/dV(x, V) along the chain",
                                     axes=[bq.Axis(scale=px, label="x along the chain (nm)", tick_format=".2f"),
                                           bq.Axis(scale=py, side="left", label="bias V (mV)", tick_format=".2f")],
                                     layout=w.Layout(width="400px", height="340px"),
                                     fig_margin=dict(top=35, bottom=45, left=55, right=15))
        self.fig_profile.add_class("gs-profile")
        self.colorbar = w.HTML()

        mx, my = bq.LinearScale(), bq.LinearScale()
        self.map_scales = (mx, my)
        self.map_image = bq.Image(image=w.Image(value=to_png(np.zeros((2, 2))), format="png"),
                                  scales={"x": mx, "y": my}, x=[-1.0, 1.0], y=[-1.0, 1.0])
        self.map_image.on_element_click(self._map_clicked)
        self.map_atoms = bq.Scatter(x=[0.0], y=[0.0], scales={"x": mx, "y": my}, colors=["white"], stroke="black",
                                    default_size=30)
        self.map_tip = bq.Scatter(x=[0.0], y=[0.0], scales={"x": mx, "y": my}, colors=["#ff4136"], marker="cross",
                                  default_size=90)
        self.map_axes = (bq.Axis(scale=mx, label="x along the chain (nm)", tick_format=".3g"),
                         bq.Axis(scale=my, side="left", label="y across the chain (nm)", tick_format=".3g"))
        self.fig_map = bq.Figure(marks=[self.map_image, self.map_atoms, self.map_tip], axes=list(self.map_axes),
                                 title="dI/dV map (click: move tip)", min_aspect_ratio=1, max_aspect_ratio=1,
                                 layout=w.Layout(width="380px", height="380px"),
                                 fig_margin=dict(top=35, bottom=45, left=50, right=15))
        self.fig_map.add_class("gs-map")
        self.map_colorbar = w.HTML()
        self.profile_box = w.VBox([self.fig_profile, self.colorbar])
        self.map_box = w.VBox([self.fig_map, self.map_colorbar], layout=w.Layout(display="none"))

        fx, fy = bq.LinearScale(), bq.LinearScale()
        self.fan_scales = (fx, fy)
        sc = {"x": fx, "y": fy}
        self.fan_even = bq.Lines(x=[0.0, 1.0], y=[[0.0, 0.0]], scales=sc, colors=[EVEN], stroke_width=2,
                                 labels=["even"], display_legend=True)
        self.fan_odd = bq.Lines(x=[0.0, 1.0], y=[[0.0, 0.0]], scales=sc, colors=[ODD], stroke_width=2,
                                labels=["odd"], display_legend=True)
        self.fan_points = bq.Scatter(x=[0.0], y=[0.0], scales=sc, colors=[NEUTRAL], default_size=16,
                                     labels=["T-matrix |E|"], display_legend=True, visible=False)
        self.fan_rule = bq.Lines(x=[0.0, 0.0], y=[0.0, 1.0], scales=sc, colors=["#555555"], line_style="dotted")
        # the states at the current value (T-matrix: at the current t_R), drawn over the fan
        self.fan_now_points = bq.Scatter(x=[0.0], y=[0.0], scales=sc, colors=["#000000"], marker="diamond",
                                         default_size=40, visible=False)
        self.fan_axis = bq.Axis(scale=fx, label="k₁ (meV)", num_ticks=6)
        self.fig_fan = bq.Figure(marks=[self.fan_even, self.fan_odd, self.fan_points, self.fan_rule,
                                        self.fan_now_points],
                                 title="Fan diagram (blue even, red odd)", legend_location="top-left",
                                 axes=[self.fan_axis, bq.Axis(scale=fy, side="left", label="E (meV)")],
                                 layout=w.Layout(width="380px", height="340px"),
                                 fig_margin=dict(top=35, bottom=45, left=55, right=10))
        self.fig_fan.add_class("gs-fan")
        spec_row = w.HBox([self.fig_spec, w.VBox([self.splitting], layout=w.Layout(width="11em"))])
        lower = w.HBox([self.profile_box, self.map_box, self.fig_fan])
        return w.VBox([spec_row, lower, self.readout, self.rashba_note, self.note],
                      layout=w.Layout(flex="1 1 auto", min_width="500px"))

    def marks(self) -> Iterable[w.Widget]:
        return (self.line_didv, self.line_dos, self.profile_image, self.atoms, self.tip_rule, self.fan_even,
                self.fan_odd, self.fan_points, self.fan_rule, self.fan_now_points, self.map_image, self.map_atoms,
                self.map_tip, *self.profile_scales, *self.fan_scales, *self.map_scales)

    def header(self) -> list[w.Widget]:
        return [w.HBox([self.preset, self.reset_button]), self.preset_info, *self.extras.values()]

    def observers(self):
        return [(self.preset, "value", self._apply_preset),
                (self.model, "value", self._enable_controls),
                (self.texture, "value", self._enable_controls),
                (self.extras["view"], "value", self._enable_controls),
                (self.extras["substrate"], "value", self._enable_controls),
                (self.controls["alpha"], "value", self._coupling_changed),
                (self.controls["beta"], "value", self._coupling_changed),
                (self.channel, "value", self._channel_selected),
                (self.bond, "value", self._bond_selected)]

    def _enable_controls(self, _: Any) -> None:
        model = self.model.value
        used = _USES[model] | _COMMON
        for name, c in self.controls.items():
            c.disabled = name not in used
        tmat = model == "T-matrix"
        if tmat:
            self.controls["pitch"].disabled = self.texture.value != "spiral"
            self.controls["spacing"].disabled = self.bond.value != CUSTOM_BOND
            self.controls["bias"].disabled = self.extras["view"].value != "map"
        for name in ("bond", "texture", "axis", "channel", "view", "substrate"):
            self.extras[name].disabled = not tmat
        on_lattice = tmat and self.extras["substrate"].value != "continuum"
        for name in cl.LATTICE_NAMES:
            self.controls[name].disabled = not on_lattice
        if on_lattice:
            for name in ("alpha", "beta", "kf", "hbar_vf", "spacing"):
                self.controls[name].disabled = True
            self.bond.disabled = self.channel.disabled = True
        self.extras["fan"].disabled = model != "extended"

    def _bond_selected(self, change: dict) -> None:
        if change["new"] in geometry.NB110_BONDS:
            with self.batch():
                self.controls["spacing"].value = round(geometry.NB110_BONDS[change["new"]][0], 4)
        self._enable_controls(None)

    def reset(self) -> None:
        """Back to the chosen preset — choosing it again in the dropdown changes nothing — or the defaults."""
        if self.preset.value in CHAINS_PRESETS:
            self._apply_preset({"new": self.preset.value})
        else:
            super().reset()

    def _apply_preset(self, change: dict) -> None:
        p = CHAINS_PRESETS.get(change["new"])
        if p is None:
            self.preset_info.value = ""
            return
        self.preset_info.value = p.html()
        values = dict(p.values)
        if "channels" not in values:          # the α, β sliders then edit an s channel alone
            values = {"channels": {"s": (values.pop("alpha", ysr.ALPHA.default), values.pop("beta", ysr.BETA.default))},
                      **values}
        self.set(**{"axis": "out of plane (z)", "view": "line profile", "y_tip": 0.0, "substrate": "continuum",
                    **values})
        self._enable_controls(None)

    # ------------------------------------------------------------------ physics (kernels only)
    @staticmethod
    def hoppings(v: dict[str, Any]) -> tuple[float, float, float]:
        return (v["k1"], v["k2"], v["k3"])

    def compute(self, v: dict[str, Any], task: Task) -> dict[str, Any]:
        try:
            return self._compute(v, task)
        except UnresolvedDOSError as exc:
            raise PanelInputError(f"The spectrum cannot be resolved for these broadenings (Γ = {v['gamma']:g}, "
                                  f"Γ_YSR = {v['gamma_ysr']:g}, Γ_t = {v['tip_gamma']:g} meV, T = "
                                  f"{v['temperature']:g} K): {exc}") from None

    def _compute(self, v: dict[str, Any], task: Task) -> dict[str, Any]:
        model = v["model"]
        V = np.linspace(-v["v_max"], v["v_max"], N_BIAS)
        tip_delta = v["tip_delta"]
        chain = dict(temperature=v["temperature"], tip_delta=tip_delta, tip_gamma=v["tip_gamma"],
                     vmod_rms=v["vmod_rms"])
        n = int(v["n"])
        out: dict[str, Any] = {"values": dict(v), "model": model, "V": V, "tip_delta": tip_delta, "notes": [],
                               "map": None, "map_note": ""}
        if model == "T-matrix":
            return self._compute_tmatrix(v, V, chain, out, task)
        if model == "LCAO":
            if n > MAX_LCAO_SITES:
                raise PanelInputError(f"The panel draws LCAO chains of up to {MAX_LCAO_SITES} atoms (N = {n}); the "
                                      f"kernel chains.lcao takes up to {int(chains.N_SITES.bounds[1])}.")
            E, P, C = chains.lcao_states(n, e0=v["e0"], hoppings=self.hoppings(v))
            k1 = v["k1"]
            top = min(max(0.8, 1.25 * abs(k1)), chains.K1.bounds[1])
            ks = np.linspace(0.0, top, N_FAN) if k1 >= 0 else np.linspace(-top, 0.0, N_FAN)
            fan_even, fan_odd = chains.lcao_fan(n, e0=v["e0"], hoppings=self.hoppings(v), k1=ks)
            fan_x, fan_label, fan_now = ks, "k₁ (meV)", k1
        else:
            if n > MAX_EXTENDED_SITES:
                raise PanelInputError(f"The extended model takes up to {MAX_EXTENDED_SITES} atoms here (N = {n}); "
                                      "use the LCAO model for longer chains.")
            s, P, C = chains.extended_states(n, d=v["spacing"], xi_j=v["xi_j"], j0=v["j0"], lambda_f=v["lambda_f"])
            E = v["e0"] + v["j0"] / v["lambda_f"] * s
            fan = EXTENDED_FANS[v["fan"]]
            fan_x, fan_even, fan_odd = fan.compute(v)
            if not fan_x.size:
                raise PanelInputError(f"The {n} sinc states are numerically linearly dependent at every point of the "
                                      f"fan against {fan.label}; use fewer atoms.")
            if fan_x.size < len(fan.span(v)):
                out["notes"].append(f"The fan against {fan.label} starts at {fan_x[0]:.2f}: below it the {n} sinc "
                                    "states are numerically linearly dependent.")
            fan_label, fan_now = fan.label, fan.now(v)
            fan_even, fan_odd = fan_even.T, fan_odd.T
        even, odd = fan_even.T, fan_odd.T
        task.progress(0.3, "spectra along the chain …")
        pos = chains.site_positions(n, spacing=v["spacing"])
        margin = 3.0 * v["width"] + 0.3
        x = np.linspace(pos[0] - margin, pos[-1] + margin, N_X)
        prof = dict(delta=v["delta"], gamma=v["gamma"], gamma_ysr=v["gamma_ysr"], weight=v["weight"],
                    electron_fraction=v["electron_fraction"])
        G_line = chains.line_spectra(V, x, E, C, positions=pos, width=v["width"], **prof, **chain)
        G_tip = chains.line_spectra(V, [v["x_tip"]], E, C, positions=pos, width=v["width"], **prof, **chain)[0]
        W_tip = chains.profile_weights(v["x_tip"], C, positions=pos, width=v["width"])[0]
        rho = chains.chain_dos(E, W_tip, **prof)(V)
        self.finite("dI/dV", G_tip, G_line, rho)
        self.finite("fan diagram", even, odd)
        out.update(E=E, P=P, G=G_tip, rho=rho, x=x, profile=G_line, sites=pos, fan_x=fan_x, fan_even=even,
                   fan_odd=odd, fan_label=fan_label, fan_now=fan_now, fan_points=None, splitting=None)
        if np.any(np.abs(E) >= v["delta"]):
            out["notes"].append("Some states lie at or beyond the substrate gap (|E| ≥ Δ): the model still draws "
                                "them as Lorentzians.")
        return out

    def after_draw(self, r: dict[str, Any]) -> None:
        """The T-matrix fan points not yet memoised: a background job (progress, Cancel), drawn when done."""
        self._fan_gen += 1
        if r.get("fan_todo") is None:
            return
        gen, v, trs = self._fan_gen, r["values"], r["fan_todo"]

        def job(task: Task) -> tuple[list[float], list[float], str]:
            fx, fy, _, message = self._fan_points(v, trs, task=task, gen=gen)
            return fx, fy, message

        def done(res: tuple[list[float], list[float], str]) -> None:
            if gen != self._fan_gen or self.result is not r:
                return                          # superseded by a newer draw
            fx, fy, message = res
            r.update(fan_x=np.array(fx), fan_points=np.array(fy), fan_todo=None)
            if message:
                r["notes"].append(message + " The fan shows only the t_R values that could be solved.")
            with contextlib.ExitStack() as stack:
                for m in self.marks():
                    stack.enter_context(m.hold_sync())
                self._draw_fan(r)
            self.curves.update(fan_x=r["fan_x"], fan_points=r["fan_points"])
            if r["notes"]:
                self.show_message(" ".join(r["notes"]), level="warning")

        self.submit(job, done, label="fan diagram …")

    def cancel(self) -> None:
        """Cancel the compute or the fan job; a fan left unfinished says so in its title."""
        self._fan_gen += 1
        super().cancel()
        r = self.result
        if isinstance(r, dict) and r.get("fan_todo") is not None:
            self.fig_fan.title = "T-matrix states |E| vs t_R — fan cancelled (change a value to compute it)"

    def wait(self, timeout: float | None = 60.0) -> None:
        """Block until the compute and the fan job it starts after drawing have finished."""
        super().wait(timeout)
        super().wait(timeout)

    # ------------------------------------------------------------------ drawing
    def draw(self, r: dict[str, Any]) -> None:
        v, V = r["values"], r["V"]
        self.line_didv.x, self.line_didv.y = V, r["G"]
        self.line_dos.x, self.line_dos.y = V, r["rho"]
        as_map = r.get("map_L") is not None
        self.profile_box.layout.display = "none" if as_map else None
        self.map_box.layout.display = None if as_map else "none"
        x, M = r["x"], r["profile"]
        if M is not None:
            lo, hi = float(M.min()), float(M.max())
            old = self.profile_image.image
            self.profile_image.image = w.Image(value=to_png(M.T[::-1], lo, hi), format="png")  # row 0: top (+V_max)
            old.close()
            self.profile_image.x, self.profile_image.y = [float(x[0]), float(x[-1])], [float(V[0]), float(V[-1])]
            px, py = self.profile_scales
            px.min, px.max = float(x[0]), float(x[-1])
            py.min, py.max = float(V[0]), float(V[-1])
            self.atoms.x, self.atoms.y = r["sites"], np.zeros(len(r["sites"]))
            self.tip_rule.x, self.tip_rule.y = [v["x_tip"]] * 2, [float(V[0]), float(V[-1])]
            self.colorbar.value = colorbar_html(lo, hi, "dI/dV (normalised)")
        if as_map:
            self._draw_map(r)
        self._draw_fan(r)
        self.curves = {"bias_mV": V, "didv": r["G"], "dos": r["rho"], "profile_x_nm": x, "profile": M,
                       "energies": r["E"], "parities": r["P"], "fan_x": r["fan_x"], "fan_even": r["fan_even"],
                       "fan_odd": r["fan_odd"], "fan_points": r["fan_points"], "splitting_meV": r["splitting"],
                       "map": r["map"], "map_half_width_nm": r.get("map_L"), "map_centre_nm": r.get("map_centre"),
                       "map_bias_mV": r.get("map_bias")}
        self._readout(r)

    def _map_clicked(self, _mark: Any, content: dict) -> None:
        at = clicked_at(content)
        if at is not None:
            self.move_tip(*at)

    def move_tip(self, x: float, y: float) -> None:
        """Put the tip at (x along, y across the chain) nm, within the controls' bounds, and update."""
        lo, hi = TIP_X.bounds
        ylo, yhi = tm.TIP_Y.bounds
        self.set(x_tip=float(np.clip(x, lo, hi)), y_tip=float(np.clip(y, ylo, yhi)))

    def _draw_fan(self, r: dict[str, Any]) -> None:
        fx, fy = self.fan_scales
        self.fan_axis.label = r["fan_label"]
        if r["fan_points"] is None:
            ys = [a for a in (r["fan_even"], r["fan_odd"]) if a is not None and a.size]
            allv = np.concatenate([a.ravel() for a in ys])
            for mark, data, colour in ((self.fan_even, r["fan_even"], EVEN), (self.fan_odd, r["fan_odd"], ODD)):
                if data.size:
                    mark.x, mark.y = r["fan_x"], data
                    mark.colors = [colour] * data.shape[0]
                    mark.visible = True
                else:
                    mark.visible = False
            self.fan_points.visible = False
            self.fig_fan.title = "Fan diagram (blue even, red odd)"
        else:
            pts = r["fan_points"]
            allv = pts if pts.size else (np.asarray(r["E"]) if np.size(r["E"]) else np.zeros(1))
            self.fan_points.x, self.fan_points.y = r["fan_x"], r["fan_points"]
            self.fan_points.visible = True
            self.fan_even.visible = self.fan_odd.visible = False
            self.fig_fan.title = ("T-matrix states |E| vs t_R (spins break the mirror: no parity)"
                                  + (" — computing …" if r.get("fan_todo") is not None else ""))
        E_now = np.asarray(r["E"], dtype=float)
        if r["fan_points"] is not None and E_now.size:
            self.fan_now_points.x, self.fan_now_points.y = [float(r["fan_now"])] * E_now.size, E_now
            self.fan_now_points.visible = True
        else:
            self.fan_now_points.visible = False
        ylo, yhi = float(allv.min()), float(allv.max())
        pad = 0.05 * max(yhi - ylo, 0.1)
        fy.min, fy.max = ylo - pad, yhi + pad
        todo = r.get("fan_todo")               # a T-matrix fan still computing: its axis is the whole fan's
        fan_x = np.concatenate([np.asarray(r["fan_x"], dtype=float), [] if todo is None else todo])
        if not fan_x.size:
            fan_x = np.array([0.0, 1.0])
        fx.min, fx.max = float(np.min(fan_x)), float(max(np.max(fan_x), np.min(fan_x) + 1e-3))
        self.fan_rule.x, self.fan_rule.y = [r["fan_now"]] * 2, [ylo - pad, yhi + pad]

    def _readout(self, r: dict[str, Any]) -> None:
        v, E, P, td = r["values"], r["E"], r["P"], r["tip_delta"]
        name = {1: "even", -1: "odd", 0: ""}
        states = ", ".join(f"{e:.3f}{' (' + name[int(p)] + ')' if p else ''}" for e, p in zip(E, P, strict=True))
        biases = ", ".join(f"{td + abs(e):.3f}" for e in E)
        rows = [("model", r["model"]),
                ("states E_n (meV)", states or "none in the gap"),
                ("peaks at V = Δ_t + |E_n| (mV)", biases or "—")]
        if r["model"] == "extended":
            rows.append(("units", f"J₀/λ_F = {v['j0'] / v['lambda_f']:.4g} meV; d/λ_F = "
                                  f"{v['spacing'] / v['lambda_f']:.3f}, ξ_J/λ_F = {v['xi_j'] / v['lambda_f']:.3f}"))
        on_lattice = r["model"] == "T-matrix" and v["substrate"] != "continuum"
        if on_lattice:
            sub = r["sub"]
            rows.append(("lattice", f"{sub.kind}, t = {v['t']:g} meV, μ = {v['mu']:g} meV, t_R = {v['t_r']:g} meV "
                                    f"(nearest-neighbour Rashba hopping), k-mesh {sub.nk[0]}×{sub.nk[1]}; atoms "
                                    f"{int(v['site_step'])} sites apart along a₁, J = {v['exchange']:g} meV, "
                                    f"K = {v['potential']:g} meV; lengths in units of a"))
            if "tip_site" in r:
                rows.append(("tip at site", f"({int(r['tip_site'][0])}, {int(r['tip_site'][1])})"))
        elif r["model"] == "T-matrix":
            rows.append(("α_R", f"{geometry.alpha_r_from_t_r(v['t_r']):.4g} meV·nm = 2 t_R a (small-k mapping)"))
            chans = ", ".join(f"{k} ({a:g}, {b:g})" for k, (a, b) in v["channels"].items() if a or b) or "none"
            rows.append(("channels (α, β)", f"{chans}; spins {v['texture']}, axis {v['axis']}"))
        self.readout.value = ("<table style='font-size:0.9em'>" + "".join(
            f"<tr><td>{html.escape(a)}</td><td class='gs-ro-{i}'>{html.escape(b)}</td></tr>"
            for i, (a, b) in enumerate(rows)) + "</table>")
        if r["splitting"] is not None:
            self.splitting.value = (f"<div style='margin-top:3em'>lowest pair split by<br><b class='gs-split-value' "
                                    f"style='font-size:1.4em'>{1e3 * r['splitting']:.2f} μeV</b></div>")
        else:
            self.splitting.value = ""
        note = LATTICE_NOTE if on_lattice else RASHBA_NOTE
        self.rashba_note.value = (f'<div style="font-size:0.8em;color:#555;max-width:34em">{html.escape(note)}'
                                  "</div>" if r["model"] == "T-matrix" else "")
        if r["notes"]:
            self.show_message(" ".join(r["notes"]), level="warning")
