"""Gap spectroscopy panel: sample DOS, simulated dI/dV, Δ(φ) and Δ(T)."""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from gapscope.kernels import dos, gap, tunneling
from gapscope.kernels.constants import KB
from gapscope.kernels.references import cite
from gapscope.kernels.specs import Spec

from .colormap import ticks
from .panel import Panel, Task
from .params import param

__all__ = ["GapPanel", "GAP_PARAMS", "PRESETS", "Preset", "SYMMETRIES", "V_MAX", "TIP_TC", "preset_html"]

#: half-width of the plotted bias range (panel-only: the kernels take any biases)
V_MAX = Spec("v_max", "V_max", "mV", 4.0, (0.5, 15.0), (0.05, 200.0), 0.1, "half-width of the bias range shown")
#: critical temperature of the tip, for a tip gap that follows T (panel-only: gap.bcs_gap takes it as tc)
TIP_TC = gap.TC.replace(name="tip_tc", symbol="T_c,t", default=9.2,
                        doc="critical temperature of the tip (when its gap follows T; Δ_t is then its T = 0 gap)")

GAP_PARAMS = (
    param(dos.DELTA, doc="sample gap at T = 0 (Fermi-surface average for anisotropic s; maximum for d)",
          symbol="Δ₀"),
    param(dos.GAMMA),
    param(dos.ANISOTROPY),
    param(dos.HARMONIC),
    param(tunneling.TEMPERATURE),
    param(gap.TC, doc="critical temperature for Δ(T)"),
    param(tunneling.TIP_DELTA, doc="gap of a superconducting tip"),
    param(tunneling.TIP_GAMMA),
    param(tunneling.VMOD_RMS),
    param(V_MAX),
    param(TIP_TC),
)

#: gap symmetry label → (DOS model name, the model's parameters): every DOS model with a Δ(φ)
SYMMETRIES: dict[str, tuple[str, tuple[str, ...]]] = {
    m.label: (m.name, m.param_names) for m in dos.MODELS.values() if m.gap is not None}

N_POINTS = 1000
KB_300MK = KB * 0.300         # k_B·300 mK, meV


def preset_html(reference: str, paper: str, chosen: str, extra: str = "") -> str:
    """A preset's source block: full citation (authors, title, journal, year, DOI or "DOI not found"), then
    one line of the paper's numbers and one of the chosen ones."""
    more = f"<br>{extra}" if extra else ""
    return (f'<div style="font-size:0.85em;max-width:26em">{cite(reference).html()}<br>'
            f"<b>Paper:</b> {html.escape(paper)}<br><b>Chosen:</b> {html.escape(chosen)}{more}</div>")


@dataclass(frozen=True)
class Preset:
    """A named parameter set: which numbers are the paper's (``paper``) and which are chosen (``chosen``).

    ``compare`` names another preset whose coherence-peak asymmetry A the panel sets beside this
    one's, with the paper's difference ``paper_delta_asymmetry`` (and ``why`` the model can or cannot
    give it).
    """

    label: str
    reference: str            # key in gapscope.kernels.references
    paper: str
    chosen: str
    symmetry: str
    tip: str
    values: dict[str, float] = field(default_factory=dict)
    compare: str | None = None
    paper_delta_asymmetry: float | None = None
    why: str = ""

    @property
    def note(self) -> str:
        return f"Paper: {self.paper} Chosen: {self.chosen}"

    def html(self, extra: str = "") -> str:
        return preset_html(self.reference, self.paper, self.chosen, extra)


PRESETS: dict[str, Preset] = {p.label: p for p in (
    Preset("Pb(111) — Lin et al.", "lin2021_nipb",
           "BCS fit Δ_Pb ≈ 1.3 meV, T_c ≈ 7.1 K, STM at T ≈ 0.32 K with a normal tip; its 2Δ/k_BT_c = 4.39 "
           "implies Δ(0) = 1.343 meV (1.3 meV gives 4.25, strong coupling next to the weak-coupling 3.528).",
           "Γ = 0.02 meV and V_mod = 0.02 mV, taken as rms (the paper gives neither: its modulation is 'small').",
           "s-wave (Dynes)", "normal",
           dict(delta=1.3, gamma=0.02, temperature=0.32, tc=7.1, vmod_rms=0.02, v_max=4.0)),
    Preset("Ni–Pb alloy — Lin et al.", "lin2021_nipb",
           "anisotropic s-wave gap Δ_NiPb ≈ 1.0 meV, T_c ≈ 7.1 K, 0.32 K, normal tip; 2Δ/k_BT_c = 3.37 "
           "(Δ(0) = 1.031 meV) — close to the weak-coupling 3.31 of anisotropic s with a = 0.3 (readout); coherence "
           "peaks ≈ 4 % more asymmetric than on Pb(111).",
           "a = 0.3, n = 6 (the DOS does not depend on n), Γ = 0.02 meV, V_mod = 0.02 mV taken as rms; Δ₀ = 1.0 meV "
           "read as the Fermi-surface average.",
           "anisotropic s", "normal",
           dict(delta=1.0, anisotropy=0.3, n=6, gamma=0.02, temperature=0.32, tc=7.1, vmod_rms=0.02, v_max=4.0),
           compare="Pb(111) — Lin et al.", paper_delta_asymmetry=0.04,
           why="This normalised single-band model cannot give the paper's enhancement: N(E)/N₀ is the same for any "
               "normal-state D(E_F), and a smaller, anisotropic gap only lowers and spreads the coherence peaks "
               "(their weight is fixed by ∫(N − 1)dE = 0). The paper's BdG picture needs a higher normal-state DOS "
               "near E_F than at the bias where the spectrum is normalised, i.e. an energy-dependent band."),
    Preset("Nb(110), Nb tip — Friedrich et al.", "friedrich2023_fe_chains",
           "Δ_tip = 1.31 meV, T = 1.4 K, V_mod = 0.1 mV (rms or peak not said), coherence peaks at ±2.85 mV; "
           "k₁ ≈ 0.40 meV ≈ 0.26 Δ_Nb implies Δ_Nb ≈ 1.54 meV (used; 1.50 is Beck et al.'s value).",
           "V_mod taken as rms (0.1 mV rms = 0.141 mV peak); Γ = Γ_t = 0.01 meV (not given); T_c = 9.2 K is "
           "bulk Nb (not from the paper).",
           "s-wave (Dynes)", "superconducting",
           dict(delta=1.54, gamma=0.01, tip_delta=1.31, tip_gamma=0.01, temperature=1.4, tc=9.2,
                vmod_rms=0.1, v_max=4.5)),
    Preset("Nb(110), Nb tip — Beck et al.", "beck2021_mn_dimers",
           "Δ = 1.5 meV, tip Δ_t = 1.43 meV, bare coherence peaks at Δ + Δ_t = 2.93 mV; its calculated spectra "
           "have one broadening, k_B·300 mK = 0.0259 meV (Γ here), and the tip's BCS DOS (Γ_t = 0).",
           "T = 0 and no lock-in, so that the one broadening is the whole resolution (it measured at 320 mK with "
           "V_mod = 20 µV, rms or peak not said); T_c = 9.2 K is bulk Nb (not from the paper).",
           "s-wave (Dynes)", "superconducting",
           dict(delta=1.5, gamma=KB_300MK, tip_delta=1.43, tip_gamma=0.0, temperature=0.0, tc=9.2,
                vmod_rms=0.0, v_max=4.5)),
)}


class GapPanel(Panel):
    """Gap spectroscopy: DOS and dI/dV for s, anisotropic-s and d-wave gaps, normal or SC tip.

    The sample gap follows the weak-coupling Δ(T) shape of its symmetry (α-model with the chosen
    Δ₀ and T_c) when "gap follows Δ(T)" is on; the tip gap follows its own BCS Δ(T) (its T_c)
    when "tip gap follows Δ(T)" is on.  The readout sets 2Δ₀/k_BT_c beside the weak-coupling
    value of the chosen symmetry.  ``curves`` holds the last plotted data.
    """

    TITLE = "Superconducting gap spectroscopy"
    PARAMS = GAP_PARAMS
    CACHE_SIZE = 32

    def __init__(self, **values: Any) -> None:
        self.preset = w.Dropdown(options=["—"] + list(PRESETS), value="—", description="Preset",
                                 style={"description_width": "7em"}, layout=w.Layout(width="20em"))
        self.preset_info = w.HTML()
        self.readout = w.HTML()
        self.readout.add_class("gs-readout")
        self.export_csv = w.Button(description="CSV", icon="download", tooltip="Export the curves as CSV")
        self.export_png = w.Button(description="PNG", icon="image", tooltip="Save the spectrum figure as PNG")
        self.export_svg = w.Button(description="SVG", icon="image", tooltip="Save the spectrum figure as SVG")
        self.download = w.HTML()
        self.curves: dict[str, np.ndarray] = {}
        super().__init__(**values)
        self._enable_controls(None)

    def make_extras(self) -> dict[str, w.Widget]:
        return {
            "symmetry": w.Dropdown(options=list(SYMMETRIES), value="s-wave (Dynes)", description="Gap",
                                   style={"description_width": "7em"}),
            "tip": w.ToggleButtons(options=["normal", "superconducting"], value="normal", description="Tip",
                                   style={"description_width": "7em", "button_width": "9.5em"}),
            "follow_bcs": w.Checkbox(value=True, description="gap follows Δ(T) of its symmetry", indent=False,
                                     tooltip="the weak-coupling Δ(T) shape of the chosen gap symmetry"),
            "tip_follows": w.Checkbox(value=False, description="tip gap follows Δ(T) (BCS, its own T_c)",
                                      indent=False),
        }

    @property
    def symmetry(self) -> w.Dropdown:
        return self.extras["symmetry"]

    @property
    def tip(self) -> w.ToggleButtons:
        return self.extras["tip"]

    @property
    def follow(self) -> w.Checkbox:
        return self.extras["follow_bcs"]

    @property
    def tip_follow(self) -> w.Checkbox:
        return self.extras["tip_follows"]

    # ------------------------------------------------------------------ figures
    def build(self) -> w.Widget:
        xs, ys = bq.LinearScale(), bq.LinearScale()
        self.line_didv = bq.Lines(x=[0.0], y=[1.0], scales={"x": xs, "y": ys}, colors=["#1f4e9c"],
                                  stroke_width=2.5, labels=["dI/dV"], display_legend=True)
        self.line_dos = bq.Lines(x=[0.0], y=[1.0], scales={"x": xs, "y": ys}, colors=["#888888"],
                                 line_style="dashed", labels=["sample DOS"], display_legend=True)
        self.fig_spec = bq.Figure(
            marks=[self.line_dos, self.line_didv], title="Spectrum", legend_location="top-left",
            axes=[bq.Axis(scale=xs, label="bias V (mV) · energy E (meV)"),
                  bq.Axis(scale=ys, side="left", label="normalised dI/dV, N(E)/N₀")],
            layout=w.Layout(width="100%", height="430px"), fig_margin=dict(top=40, bottom=50, left=72, right=20))
        self.fig_spec.add_class("gs-spectrum")

        ps_x, ps_y = bq.LinearScale(min=-2.0, max=2.0), bq.LinearScale(min=-2.0, max=2.0)
        self.line_polar = bq.Lines(x=[0.0], y=[0.0], scales={"x": ps_x, "y": ps_y}, colors=["#1f4e9c", "#c0392b"],
                                   fill="none")
        self.line_ref = bq.Lines(x=[0.0], y=[0.0], scales={"x": ps_x, "y": ps_y}, colors=["#bbbbbb"],
                                 line_style="dotted")
        self.polar_scales = (ps_x, ps_y)
        self.fig_polar = bq.Figure(marks=[self.line_ref, self.line_polar], title="Δ(φ): + blue, − red",
                                   axes=[bq.Axis(scale=ps_x, label="meV", tick_format=".2f"),
                                         bq.Axis(scale=ps_y, side="left", tick_format=".2f")],
                                   min_aspect_ratio=1, max_aspect_ratio=1,
                                   layout=w.Layout(width="290px", height="290px"),
                                   fig_margin=dict(top=45, bottom=45, left=45, right=45))   # a square plot area

        ts, ds = bq.LinearScale(min=0.0), bq.LinearScale(min=0.0)
        self.line_gapT = bq.Lines(x=[0.0], y=[0.0], scales={"x": ts, "y": ds}, colors=["#1f4e9c"],
                                  labels=["Δ(T), this Δ₀"], display_legend=True)
        self.line_gapT_ref = bq.Lines(x=[0.0], y=[0.0], scales={"x": ts, "y": ds}, colors=["#888888"],
                                      line_style="dashed", labels=["weak coupling"], display_legend=True)
        self.dot_gapT = bq.Scatter(x=[0.0], y=[0.0], scales={"x": ts, "y": ds}, colors=["#c0392b"],
                                   default_size=60)
        self.fig_gapT = bq.Figure(marks=[self.line_gapT_ref, self.line_gapT, self.dot_gapT], title="Δ(T)",
                                  legend_location="bottom-left",
                                  axes=[bq.Axis(scale=ts, label="T (K)"),
                                        bq.Axis(scale=ds, side="left", label="Δ (meV)")],
                                  layout=w.Layout(width="330px", height="280px"),
                                  fig_margin=dict(top=35, bottom=45, left=55, right=10))
        insets = w.HBox([self.fig_polar, self.fig_gapT, self.readout])
        return w.VBox([self.fig_spec, insets], layout=w.Layout(flex="1 1 auto", min_width="500px"))

    def marks(self) -> Iterable[w.Widget]:
        return (self.line_didv, self.line_dos, self.line_polar, self.line_ref, self.line_gapT, self.line_gapT_ref,
                self.dot_gapT, *self.polar_scales)

    def header(self) -> list[w.Widget]:
        return [w.HBox([self.preset, self.reset_button]), self.preset_info, *self.extras.values()]

    def footer(self) -> list[w.Widget]:
        exports = w.HBox([self.export_csv, self.export_png, self.export_svg], layout=w.Layout(flex_flow="row wrap"))
        return [exports, self.download]

    def observers(self):
        return [(self.symmetry, "value", self._enable_controls),
                (self.tip, "value", self._enable_controls),
                (self.tip_follow, "value", self._enable_controls),
                (self.preset, "value", self._apply_preset),
                (self.export_csv, None, lambda _: self.offer_csv()),
                (self.export_png, None, lambda _: self.fig_spec.save_png("gapscope_spectrum.png")),
                (self.export_svg, None, lambda _: self.fig_spec.save_svg("gapscope_spectrum.svg"))]

    def _enable_controls(self, _: Any) -> None:
        used = set(SYMMETRIES[self.symmetry.value][1])
        self.controls["anisotropy"].disabled = "anisotropy" not in used
        self.controls["n"].disabled = "n" not in used
        sc = self.tip.value == "superconducting"
        self.controls["tip_delta"].disabled = not sc
        self.controls["tip_gamma"].disabled = not sc
        self.controls["tip_tc"].disabled = not (sc and self.tip_follow.value)
        self.tip_follow.disabled = not sc

    def reset(self) -> None:
        """Back to the chosen preset — choosing it again in the dropdown changes nothing — or the defaults."""
        if self.preset.value in PRESETS:
            self._apply_preset({"new": self.preset.value})
        else:
            super().reset()

    def _apply_preset(self, change: dict) -> None:
        p = PRESETS.get(change["new"])
        if p is None:
            self.preset_info.value = ""
            return
        self.preset_info.value = p.html()
        self.set(symmetry=p.symmetry, tip=p.tip, follow_bcs=True, tip_follows=False, **p.values)
        if p.compare is not None and self.result is not None:
            self.preset_info.value = p.html(self.asymmetry_comparison(p))

    def preset_values(self, label: str) -> dict[str, Any]:
        """The panel's values as the preset ``label`` sets them (the other values at their defaults)."""
        p = PRESETS[label]
        v = {q.name: q.default for q in self.PARAMS}
        v.update(symmetry=p.symmetry, tip=p.tip, follow_bcs=True, tip_follows=False, **p.values)
        return v

    def asymmetry_comparison(self, p: Preset) -> str:
        """One line: this preset's coherence-peak asymmetry A, the compared preset's, the difference, the
        paper's difference, and why the model can or cannot give it (HTML)."""
        a_here = self.compute(self.preset_values(p.label))["asymmetry"]["mean"]
        a_ref = self.compute(self.preset_values(p.compare or p.label))["asymmetry"]["mean"]
        diff = a_here - a_ref
        paper = (f"; the paper: {p.paper_delta_asymmetry:+.2f}" if p.paper_delta_asymmetry is not None else "")
        return (f"<span class='gs-asymmetry'><b>Coherence peaks:</b> A = {a_here:.3f} here, {a_ref:.3f} for "
                f"{html.escape(p.compare or '')}: A − A_ref = <b>{diff:+.3f}</b> in this model{paper}. "
                f"{html.escape(p.why)}</span>")

    # ------------------------------------------------------------------ physics (pure)
    @staticmethod
    def shape(v: dict[str, Any]) -> dict[str, Any]:
        """The Δ(T) shape keywords of the chosen symmetry (gap.bcs_gap, gap.weak_coupling_ratio)."""
        model = SYMMETRIES[v["symmetry"]][0]
        return {"symmetry": model, "anisotropy": v["anisotropy"] if model == "anisotropic_s" else 0.0}

    @classmethod
    def sample_dos(cls, v: dict[str, Any]) -> tuple[dos.SampleDOS, float]:
        """The bound sample DOS for the values, and the gap Δ(T) it uses (meV)."""
        model, names = SYMMETRIES[v["symmetry"]]
        delta_T = v["delta"]
        if v["follow_bcs"]:
            delta_T = float(gap.bcs_gap(v["temperature"], delta0=v["delta"], tc=v["tc"], **cls.shape(v)))
        kw = {n: (delta_T if n == "delta" else v[n]) for n in names}
        return dos.bind(model, **kw), delta_T

    @staticmethod
    def tip_gap(v: dict[str, Any]) -> float:
        """Δ_t at the temperature (meV): 0 for a normal tip, the BCS Δ_t(T) with its T_c when it follows T."""
        if v["tip"] != "superconducting":
            return 0.0
        if v.get("tip_follows"):
            return float(gap.bcs_gap(v["temperature"], delta0=v["tip_delta"], tc=v["tip_tc"]))
        return float(v["tip_delta"])

    def compute(self, v: dict[str, Any], task: Task | None = None) -> dict[str, Any]:
        sample, delta_T = self.sample_dos(v)
        V = np.linspace(-v["v_max"], v["v_max"], N_POINTS)
        tip_delta = self.tip_gap(v)
        G = tunneling.didv(V, sample_dos=sample, temperature=v["temperature"], tip_delta=tip_delta,
                           tip_gamma=v["tip_gamma"], vmod_rms=v["vmod_rms"])
        N = sample.cell_average(V, float(V[1] - V[0]))
        self.finite("dI/dV", G)
        self.finite("DOS", N)

        phi = np.linspace(0.0, 2.0 * np.pi, 361)
        dphi = dos.gap_function(phi, delta=delta_T, anisotropy=v["anisotropy"], n=v["n"],
                                symmetry=SYMMETRIES[v["symmetry"]][0])
        r = np.abs(dphi)
        pos, neg = np.where(dphi >= 0, r, 0.0), np.where(dphi < 0, r, 0.0)   # sign lobes
        tmax = max(1.2 * v["tc"], 1.05 * v["temperature"])
        T = np.linspace(0.0, tmax, 241)
        shape = self.shape(v)
        ratio_wc = gap.weak_coupling_ratio(**shape)
        d0_wc = gap.delta0_from_ratio(tc=v["tc"], ratio=ratio_wc)
        if d0_wc <= gap.DELTA0.bounds[1]:
            T_ref, D_ref, ref_note = T, gap.bcs_gap(T, delta0=d0_wc, tc=v["tc"], **shape), ""
        else:                   # e.g. T_c = 300 K: the weak-coupling gap lies beyond any gap the kernels take
            T_ref, D_ref = np.zeros(0), np.zeros(0)
            ref_note = (f"The weak-coupling Δ(T) is not drawn: for T_c = {v['tc']:g} K its Δ₀ = {d0_wc:.1f} meV "
                        f"exceeds {gap.DELTA0.bounds[1]:g} meV.")
        return {
            "V": V, "G": G, "N": N, "delta_T": delta_T, "tip_delta": tip_delta, "values": dict(v),
            "polar_x": np.vstack([pos * np.cos(phi), neg * np.cos(phi)]),
            "polar_y": np.vstack([pos * np.sin(phi), neg * np.sin(phi)]),
            "ref_x": v["delta"] * np.cos(phi), "ref_y": v["delta"] * np.sin(phi),
            "rmax": max(float(r.max()), 1e-3) * 1.1,
            "T": T, "D": gap.bcs_gap(T, delta0=v["delta"], tc=v["tc"], **shape),
            "T_ref": T_ref, "D_ref": D_ref, "ref_note": ref_note,
            "dot": float(gap.bcs_gap(v["temperature"], delta0=v["delta"], tc=v["tc"], **shape)),
            "ratio_wc": ratio_wc,
            "asymmetry": tunneling.peak_asymmetry(V, G),
            "resolution": tunneling.resolution_fwhm(temperature=v["temperature"], vmod_rms=v["vmod_rms"]),
        }

    def draw(self, r: dict[str, Any]) -> None:
        v = r["values"]
        self.line_didv.x, self.line_didv.y = r["V"], r["G"]
        self.line_dos.x, self.line_dos.y = r["V"], r["N"]
        self.line_polar.x, self.line_polar.y = r["polar_x"], r["polar_y"]
        self.line_ref.x, self.line_ref.y = r["ref_x"], r["ref_y"]
        for s in self.polar_scales:
            s.min, s.max = -r["rmax"], r["rmax"]
        for a in self.fig_polar.axes:            # exact, symmetric ticks: no "−2.2e-16"
            a.tick_values = np.array(ticks(-r["rmax"], r["rmax"]))
        self.line_gapT.x, self.line_gapT.y = r["T"], r["D"]
        self.line_gapT_ref.x, self.line_gapT_ref.y = r["T_ref"], r["D_ref"]
        self.dot_gapT.x, self.dot_gapT.y = [v["temperature"]], [r["dot"]]
        self.curves = {"bias_mV": r["V"], "didv": r["G"], "energy_meV": r["V"], "dos": r["N"]}
        self._readout(r)

    def _readout(self, r: dict[str, Any]) -> None:
        v, delta_T, tip_delta, asym = r["values"], r["delta_T"], r["tip_delta"], r["asymmetry"]
        ratio = gap.ratio(delta0=v["delta"], tc=v["tc"])
        sym = v["symmetry"] + (f", a = {v['anisotropy']:g}" if SYMMETRIES[v["symmetry"]][0] == "anisotropic_s" else "")
        rows = [("Δ(T)", f"{delta_T:.4f} meV"), ("T_c", f"{v['tc']:.2f} K"),
                ("2Δ₀/k_BT_c", f"{ratio:.3f} (weak coupling, {sym}: {r['ratio_wc']:.3f})"),
                ("Δ_t(T)", f"{tip_delta:.4f} meV" + (" (follows T)" if v.get("tip_follows") and tip_delta else "")),
                ("peaks", f"{asym['v_negative']:.3f}, +{asym['v_positive']:.3f} mV"),
                ("asymmetry A", f"{asym['mean']:.4f}"),
                ("resolution", f"{r['resolution'] * 1e3:.1f} µeV FWHM (3.5 k_BT ⊕ √6 V_rms)")]
        self.readout.value = ("<table style='font-size:0.9em'>" +
                              "".join(f"<tr><td>{k}</td><td class='gs-{k[:4].strip()}'>{val}</td></tr>"
                                      for k, val in rows) + "</table>")
        notes = [r["ref_note"]] if r.get("ref_note") else []
        if tip_delta + delta_T > v["v_max"]:
            notes.append(f"Δ_t + Δ = {tip_delta + delta_T:.2f} meV lies outside the ±{v['v_max']:.2f} mV range: "
                         "the coherence peaks are not in view.")
        if v["temperature"] >= v["tc"] and v["follow_bcs"]:
            notes.append("T ≥ T_c: the sample is normal (Δ = 0).")
        if v["gamma"] == 0 and v["temperature"] == 0 and v["vmod_rms"] == 0 and tip_delta == 0:
            notes.append("No broadening at all: the BCS peaks are singular; curves show averages over one "
                         "bias step.")
        if notes:
            self.show_message(" ".join(notes), level="warning")

    # ------------------------------------------------------------------ export
    def csv_text(self) -> str:
        """The plotted curves and the parameters as CSV text."""
        buf = io.StringIO()
        buf.write("".join(f"# {k} = {val}\n" for k, val in self.values.items()))
        wr = csv.writer(buf)
        wr.writerow(["bias_mV", "didv_normalised", "energy_meV", "dos_normalised"])
        c = self.curves
        for row in zip(c["bias_mV"], c["didv"], c["energy_meV"], c["dos"], strict=True):
            wr.writerow([f"{x:.8g}" for x in row])
        return buf.getvalue()

    def offer_csv(self) -> None:
        data = base64.b64encode(self.csv_text().encode()).decode()
        self.download.value = (f'<a download="gapscope_gap.csv" href="data:text/csv;base64,{data}" '
                               'class="gs-download">⬇ gapscope_gap.csv</a>')
