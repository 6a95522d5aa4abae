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
from scipy.interpolate import CubicSpline

from gapscope.kernels import chains, tunneling, ysr
from gapscope.kernels.references import cite
from gapscope.kernels.sampling import UnresolvedDOSError
from gapscope.kernels.specs import Spec
from gapscope.kernels.ysr import geometry

from .colormap import colorbar_html, to_png
from .panel import Cancelled, Panel, PanelInputError, Task
from .params import param

__all__ = ["ChainsPanel", "CHAINS_PARAMS", "CHAINS_PRESETS", "ChainsPreset", "MODELS", "TEXTURES", "BONDS",
           "CUSTOM_BOND", "PROFILE_NOTE", "RASHBA_NOTE"]

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
    param(V_MAX),
)

MODELS = ("LCAO", "extended", "T-matrix")
TEXTURES = ("fm", "afm", "spiral")
CUSTOM_BOND = "custom (spacing slider)"
BONDS = (CUSTOM_BOND, *geometry.NB110_BONDS)
#: controls each model uses (the others are disabled)
_USES = {
    "LCAO": {"n", "e0", "k1", "k2", "k3", "spacing", "gamma_ysr", "weight", "electron_fraction", "width"},
    "extended": {"n", "e0", "spacing", "lambda_f", "xi_j", "j0", "gamma_ysr", "weight", "electron_fraction",
                 "width"},
    "T-matrix": {"n", "spacing", "t_r", "alpha", "beta", "kf", "hbar_vf", "pitch"},
}
_COMMON = {"delta", "gamma", "temperature", "tip_delta", "tip_gamma", "vmod_rms", "x_tip", "v_max"}
MAX_TMATRIX_SITES = 8
MAX_EXTENDED_SITES = 24
MAX_LCAO_SITES = 100
MIN_TMATRIX_GAMMA = 0.01          # meV
MAX_TMATRIX_ENERGIES = 20000
MAX_LDOS_ENERGIES = 3000
LDOS_CHUNK = 1.0                  # meV: the LDOS range is rounded out to multiples of it
N_BIAS = 401
N_X = 81
N_X_TM = 41
N_FAN = 121
N_FAN_TR = 13
MIN_FAN_TR = 5
#: fan points × N² of the T-matrix fan (each point a root search costing ~N²)
FAN_BUDGET = 360
#: LDOS energies × atoms of the T-matrix spectrum and line profile (t(z) per energy, map rows per atom)
LDOS_BUDGET = 10000
#: values the T-matrix energies do not depend on (besides t_R, the fan's variable)
_NOT_IN_ENERGIES = ("t_r", "x_tip", "v_max", "temperature", "tip_delta", "tip_gamma", "vmod_rms", "gamma")
EVEN, ODD, NEUTRAL = "#1f4e9c", "#c0392b", "#2a7a2a"

#: how the spatial profile is modelled (always shown)
PROFILE_NOTE = ("LCAO and extended model: each state n is a Lorentzian (half-width Γ_YSR) at ±E_n (electron part u², "
                "hole part 1 − u²) added to the Dynes DOS of the substrate, with weight a_YSR·[Σ_j C_jn g(x − x_j)]² "
                "at the tip position x: the eigenvector's coefficients C_jn on the sites times a Gaussian envelope "
                "g of width w at each atom (coefficients normalised, Σ_j C_jn² = 1). T-matrix: the LDOS of classical "
                "spins with an s channel on a 2D band (no envelope model). All spectra go through the tunnelling "
                "chain (superconducting tip, T, lock-in V_mod as rms).")
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
                      alpha=0.7, beta=0.3, t_r=7.5, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.0259,
                      temperature=0.32, tip_delta=1.43, tip_gamma=0.01, vmod_rms=0.0, x_tip=0.0, v_max=3.5)),
)}


def _sectors(E: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return E[P == 1], E[P == -1]


class ChainsPanel(Panel):
    """Chains of magnetic adatoms: coupled YSR states in the LCAO, extended or T-matrix model.

    Outputs: the spectrum at the tip (x_tip along the chain), the line profile dI/dV(x, V) along the
    chain as an image, and a fan diagram of the states versus k₁ (LCAO), d/λ_F (extended) or t_R
    (T-matrix; in the background, with progress) with even/odd colours.  ``curves`` holds the
    last plotted data.
    """

    TITLE = "YSR chains"
    PARAMS = CHAINS_PARAMS
    BACKGROUND = True
    CACHE_SIZE = 16

    def __init__(self, **values: Any) -> None:
        style = {"description_width": "7em"}
        self.preset = w.Dropdown(options=["—"] + list(CHAINS_PRESETS), value="—", description="Preset", style=style,
                                 layout=w.Layout(width="20em"))
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
        }

    model = property(lambda self: self.extras["model"])
    bond = property(lambda self: self.extras["bond"])
    texture = property(lambda self: self.extras["texture"])

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
        self.fan_axis = bq.Axis(scale=fx, label="k₁ (meV)", num_ticks=6)
        self.fig_fan = bq.Figure(marks=[self.fan_even, self.fan_odd, self.fan_points, self.fan_rule],
                                 title="Fan diagram (blue even, red odd)", legend_location="top-left",
                                 axes=[self.fan_axis, bq.Axis(scale=fy, side="left", label="E (meV)")],
                                 layout=w.Layout(width="380px", height="340px"),
                                 fig_margin=dict(top=35, bottom=45, left=55, right=10))
        self.fig_fan.add_class("gs-fan")
        spec_row = w.HBox([self.fig_spec, w.VBox([self.splitting], layout=w.Layout(width="11em"))])
        lower = w.HBox([w.VBox([self.fig_profile, self.colorbar]), self.fig_fan])
        return w.VBox([spec_row, lower, self.readout, self.rashba_note, self.note],
                      layout=w.Layout(flex="1 1 auto", min_width="500px"))

    def marks(self) -> Iterable[w.Widget]:
        return (self.line_didv, self.line_dos, self.profile_image, self.atoms, self.tip_rule, self.fan_even,
                self.fan_odd, self.fan_points, self.fan_rule, *self.profile_scales, *self.fan_scales)

    def header(self) -> list[w.Widget]:
        return [w.HBox([self.preset, self.reset_button]), self.preset_info, *self.extras.values()]

    def observers(self):
        return [(self.preset, "value", self._apply_preset),
                (self.model, "value", self._enable_controls),
                (self.texture, "value", self._enable_controls),
                (self.bond, "value", self._bond_selected)]

    def _enable_controls(self, _: Any) -> None:
        model = self.model.value
        used = _USES[model] | _COMMON
        for name, c in self.controls.items():
            c.disabled = name not in used
        if model == "T-matrix":
            self.controls["pitch"].disabled = self.texture.value != "spiral"
            self.controls["spacing"].disabled = self.bond.value != CUSTOM_BOND
        self.bond.disabled = self.texture.disabled = model != "T-matrix"

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
        self.set(**p.values)
        self._enable_controls(None)

    # ------------------------------------------------------------------ physics (kernels only)
    @staticmethod
    def hoppings(v: dict[str, Any]) -> tuple[float, float, float]:
        return (v["k1"], v["k2"], v["k3"])

    @staticmethod
    def tmatrix_model(v: dict[str, Any], t_r: float | None = None) -> tuple[ysr.Substrate, list[ysr.Impurity],
                                                                             np.ndarray]:
        """Substrate, impurities and 2D positions (nm) of the T-matrix chain (t_R from ``v`` unless given)."""
        n = int(v["n"])
        if n > MAX_TMATRIX_SITES:
            raise PanelInputError(f"The T-matrix model takes up to {MAX_TMATRIX_SITES} atoms here (N = {n}); use "
                                  "the LCAO or extended model for longer chains.")
        if v["bond"] in geometry.NB110_BONDS:
            pos = geometry.nb110_chain(n, bond=v["bond"])
        else:
            pos = geometry.line(n, spacing=v["spacing"])
        spins = geometry.spin_texture(pos, texture=v["texture"], axis=(0.0, 0.0, 1.0),
                                      pitch=v["pitch"] if v["texture"] == "spiral" else None)
        imps = geometry.impurities(pos, spins, [ysr.Channel("s", v["alpha"], v["beta"])])
        alpha_r = geometry.alpha_r_from_t_r(v["t_r"] if t_r is None else t_r)
        try:
            sub = ysr.Substrate(dim=2, kf=v["kf"], hbar_vf=v["hbar_vf"], delta=v["delta"], gamma=v["gamma"],
                                rashba=alpha_r)
        except ValueError as exc:
            if alpha_r == 0.0 or "rashba" not in str(exc).lower():
                raise
            raise PanelInputError(f"Rashba SOC is not available for t_R = {v['t_r'] if t_r is None else t_r:g} meV: "
                                  f"{exc}") from None
        return sub, imps, pos

    @staticmethod
    def _tm_energies(sub: ysr.Substrate, imps: list[ysr.Impurity]) -> np.ndarray:
        try:
            return ysr.energies(sub, imps)
        except (NotImplementedError, ImportError) as exc:
            raise PanelInputError(f"The T-matrix engine cannot solve this substrate yet (Rashba α_R = "
                                  f"{sub.rashba:g} meV·nm): {exc}") from None

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
        out: dict[str, Any] = {"values": dict(v), "model": model, "V": V, "tip_delta": tip_delta, "notes": []}
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
            unit = v["j0"] / v["lambda_f"]
            E = v["e0"] + unit * s
            fan, kept = [], []
            for r in np.linspace(0.05, 1.5, N_FAN):
                try:
                    sr, pr = chains.extended(n, d=r * v["lambda_f"], xi_j=v["xi_j"], j0=v["j0"],
                                             lambda_f=v["lambda_f"])
                except ValueError:          # over-complete sinc states at small d (long chains): not drawn
                    continue
                fan.append((v["e0"] + unit * sr, pr))
                kept.append(r)
            if not kept:
                raise PanelInputError(f"The {n} sinc states are numerically linearly dependent at every d ≤ 1.5 λ_F "
                                      "of the fan; use fewer atoms.")
            if len(kept) < N_FAN:
                out["notes"].append(f"The fan starts at d = {kept[0]:.2f} λ_F: below it the {n} sinc states are "
                                    "numerically linearly dependent.")
            fan_x, fan_label, fan_now = np.array(kept), "d/λ_F", v["spacing"] / v["lambda_f"]
            fan_even = np.array([_sectors(e, p)[0] for e, p in fan])
            fan_odd = np.array([_sectors(e, p)[1] for e, p in fan])
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

    def _tm_engine(self, sub: ysr.Substrate, imps: list[ysr.Impurity]) -> ysr.Engine:
        """The panel's T-matrix engine, updated in place: its propagator caches survive coupling and spin changes."""
        if self._engine is None:
            self._engine = ysr.Engine(sub, imps, cache_mb=128.0)
        else:
            self._engine.update(sub, imps)
        return self._engine

    def _weights(self, V: np.ndarray, Eg: np.ndarray, bare: dict[str, float]) -> np.ndarray:
        """The tunnelling chain's weights on the energy grid (memoised: they depend on the tip and T only)."""
        key = (V.tobytes(), Eg.tobytes(), repr(sorted(bare.items())))
        if self._wt_memo.get("key") != key:
            self._wt_memo = {"key": key, "W": tunneling.didv_weights(V, Eg, **bare)}
        return self._wt_memo["W"]

    def _tm_key(self, v: dict[str, Any]) -> str:
        """What the T-matrix energies depend on, except t_R (the fan's variable)."""
        return repr({k: val for k, val in v.items() if k not in _NOT_IN_ENERGIES})

    def _tm_energies_at(self, v: dict[str, Any], t_r: float) -> np.ndarray:
        """YSR energies at t_R (memoised: the fan and the current point share them)."""
        mk = f"{self._tm_key(v)}|{float(t_r)!r}"
        e = self._tm_memo.get(mk)            # get: the fan job and the compute share the memo
        if e is None:
            if len(self._tm_memo) > 400:
                self._tm_memo.clear()
            s2, i2, _ = self.tmatrix_model(v, t_r=float(t_r))
            e = self._tm_energies(s2, i2)
            self._tm_memo[mk] = e
        return e

    @staticmethod
    def fan_plan(v: dict[str, Any]) -> tuple[np.ndarray, str]:
        """The t_R values of the T-matrix fan and a note when fewer than N_FAN_TR are taken.

        Each point is a root search whose cost grows as N² (channel matrices of 4N × 4N at ~20–90
        energies): at most ``FAN_BUDGET / N²`` points (≥ ``MIN_FAN_TR``).  The fan ends at the
        spec's upper bound of t_R.
        """
        n = int(v["n"])
        top = min(max(10.0, 1.3 * v["t_r"]), geometry.T_R.bounds[1])
        count = int(min(N_FAN_TR, max(MIN_FAN_TR, FAN_BUDGET // max(n * n, 1))))
        note = ""
        if count < N_FAN_TR:
            note = (f"The t_R fan is coarsened to {count} points (not {N_FAN_TR}) for N = {n} atoms: each point is a "
                    "root search whose cost grows as N².")
        return np.linspace(0.0, top, count), note

    def _compute_tmatrix(self, v: dict[str, Any], V: np.ndarray, chain: dict[str, float], out: dict[str, Any],
                         task: Task) -> dict[str, Any]:
        sub, imps, pos = self.tmatrix_model(v)
        n = int(v["n"])
        if sub.gamma < MIN_TMATRIX_GAMMA:
            raise PanelInputError(f"The T-matrix line profile needs Γ ≥ {MIN_TMATRIX_GAMMA:g} meV here (Γ = "
                                  f"{sub.gamma:g} meV): its LDOS is sampled every Γ/4.")
        # the chain without lock-in as weights on an energy grid; the lock-in is applied last, on the bias grid
        bare = {**chain, "vmod_rms": 0.0}
        Eg = tunneling.energy_grid(V, sample_gamma=sub.gamma, **bare)
        if Eg.size > MAX_TMATRIX_ENERGIES:
            raise PanelInputError(f"The tunnelling chain needs {Eg.size} energies here (a narrow tip Γ_t, low T or a "
                                  f"wide bias range); the T-matrix panel takes up to {MAX_TMATRIX_ENERGIES}: raise "
                                  "Γ_t or T, or lower V_max.")
        # the LDOS (at ω + iΓ) is smooth on the scale Γ: computed every Γ/4 on a range rounded out to LDOS_CHUNK (so
        # that a small change of T or of the tip keeps the grid, and the engine's cached maps) and interpolated onto
        # the tip's grid; its cost grows as energies × atoms (t(z) per energy, the map rows per atom): at most
        # LDOS_BUDGET of them
        lo = LDOS_CHUNK * np.floor(Eg[0] / LDOS_CHUNK)
        hi = LDOS_CHUNK * np.ceil(Eg[-1] / LDOS_CHUNK)
        n_c = max(16, int(np.ceil((hi - lo) / (0.25 * sub.gamma))) + 1)
        cap = min(MAX_LDOS_ENERGIES, max(16, LDOS_BUDGET // max(n, 1)))
        if n_c > cap:
            n_c = cap
            out["notes"].append(f"The LDOS is sampled every {(hi - lo) / (n_c - 1):.3g} meV, coarser than "
                                f"Γ/4 (at most {cap} energies for N = {n}): lower V_max, raise Γ or take fewer atoms "
                                "for an exact spectrum.")
        task.progress(0.05, "YSR energies …")
        E = self._tm_energies_at(v, v["t_r"])
        task.check()
        eng = self._tm_engine(sub, imps)
        angle = float(np.arctan2(pos[-1, 1] - pos[0, 1], pos[-1, 0] - pos[0, 0])) if len(pos) > 1 else 0.0
        u = np.array([np.cos(angle), np.sin(angle)])
        s_sites = pos @ u
        rc = 0.1                       # orbital radius of the map propagators, nm (as the Shiba panel)
        task.progress(0.15, "spectrum at the tip and line profile …")
        x = np.linspace(s_sites.min() - 0.5, s_sites.max() + 0.5, N_X_TM)
        Wt = self._weights(V, Eg, bare)
        Ec = np.linspace(lo, hi, n_c)
        line = x[:, None] * u[None, :]          # the line profile's points: fixed while the tip moves (cached maps)
        Lc = np.vstack([eng.ldos(v["x_tip"] * u[None, :], Ec, orbital_radius=rc),
                        eng.ldos(line, Ec, orbital_radius=rc)])
        task.check()
        spline = CubicSpline(Ec, Lc, axis=1)
        G_all = spline(Eg) @ Wt.T
        if chain["vmod_rms"] > 0.0:
            G_all = np.array([tunneling.lockin(V, g, vmod_rms=chain["vmod_rms"]) for g in G_all])
        G, G_line = G_all[0], G_all[1:]
        rho = spline(V)[0]
        self.finite("dI/dV", G, G_line, rho)
        # the fan over t_R: what is memoised now, the rest in the background after the first draw (after_draw)
        trs, fan_note = self.fan_plan(v)
        if fan_note:
            out["notes"].append(fan_note)
        fx, fy, missing, _ = self._fan_points(v, trs, only_memo=True)
        split = float(E[1] - E[0]) if E.size >= 2 else None
        out.update(E=E, P=np.zeros(E.size, dtype=int), G=G, rho=rho, x=x, profile=G_line, sites=s_sites,
                   fan_x=np.array(fx), fan_even=None, fan_odd=None, fan_points=np.array(fy), fan_label="t_R (meV)",
                   fan_now=v["t_r"], splitting=split, fan_todo=trs if missing else None)
        return out

    def _fan_points(self, v: dict[str, Any], trs: np.ndarray, *, only_memo: bool = False,
                    task: Task | None = None, gen: int | None = None
                    ) -> tuple[list[float], list[float], bool, str]:
        """Fan points (t_R, |E|) at ``trs``: (x, y, whether some were not memoised, the message of a refused t_R,
        where the fan stops)."""
        fx: list[float] = []
        fy: list[float] = []
        key = self._tm_key(v)
        for i, t in enumerate(trs):
            e = self._tm_memo.get(f"{key}|{float(t)!r}")
            if e is None:
                if only_memo:
                    return fx, fy, True, ""
                if task is not None:
                    if gen is not None and gen != self._fan_gen:
                        raise Cancelled()
                    task.progress(i / len(trs), f"fan diagram: t_R = {t:.3g} meV …")
                try:
                    e = self._tm_energies_at(v, float(t))
                except PanelInputError as exc:
                    return fx, fy, False, str(exc)
            fx.extend([float(t)] * len(e))
            fy.extend(e.tolist())
        return fx, fy, False, ""

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
        x, M = r["x"], r["profile"]
        lo, hi = float(M.min()), float(M.max())
        old = self.profile_image.image
        self.profile_image.image = w.Image(value=to_png(M.T[::-1], lo, hi), format="png")   # row 0: top (+V_max)
        old.close()
        self.profile_image.x, self.profile_image.y = [float(x[0]), float(x[-1])], [float(V[0]), float(V[-1])]
        px, py = self.profile_scales
        px.min, px.max = float(x[0]), float(x[-1])
        py.min, py.max = float(V[0]), float(V[-1])
        self.atoms.x, self.atoms.y = r["sites"], np.zeros(len(r["sites"]))
        self.tip_rule.x, self.tip_rule.y = [v["x_tip"]] * 2, [float(V[0]), float(V[-1])]
        self.colorbar.value = colorbar_html(lo, hi, "dI/dV (normalised)")
        self._draw_fan(r)
        self.curves = {"bias_mV": V, "didv": r["G"], "dos": r["rho"], "profile_x_nm": x, "profile": M,
                       "energies": r["E"], "parities": r["P"], "fan_x": r["fan_x"], "fan_even": r["fan_even"],
                       "fan_odd": r["fan_odd"], "fan_points": r["fan_points"], "splitting_meV": r["splitting"]}
        self._readout(r)

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
        if r["model"] == "T-matrix":
            rows.append(("α_R", f"{geometry.alpha_r_from_t_r(v['t_r']):.4g} meV·nm = 2 t_R a (small-k mapping)"))
        self.readout.value = ("<table style='font-size:0.9em'>" + "".join(
            f"<tr><td>{html.escape(a)}</td><td class='gs-ro-{i}'>{html.escape(b)}</td></tr>"
            for i, (a, b) in enumerate(rows)) + "</table>")
        if r["splitting"] is not None:
            self.splitting.value = (f"<div style='margin-top:3em'>lowest pair split by<br><b class='gs-split-value' "
                                    f"style='font-size:1.4em'>{1e3 * r['splitting']:.2f} μeV</b></div>")
        else:
            self.splitting.value = ""
        self.rashba_note.value = (f'<div style="font-size:0.8em;color:#555;max-width:34em">{html.escape(RASHBA_NOTE)}'
                                  "</div>" if r["model"] == "T-matrix" else "")
        if r["notes"]:
            self.show_message(" ".join(r["notes"]), level="warning")
