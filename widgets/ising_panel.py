"""Ising panel: in-plane H_c2(T) with the Pauli line, Δ(T, B), and the DOS and dI/dV at the (T, B) point."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from gapscope.kernels import gap, ising, tunneling
from gapscope.kernels.constants import KB
from gapscope.kernels.references import cite
from gapscope.kernels.specs import Spec

from .panel import Panel, PanelInputError, Task, reference_html
from .params import param

__all__ = ["IsingPanel", "ISING_PARAMS", "ISING_PRESETS", "IsingPreset", "parse_points", "DFT_NOTE"]

#: half-width of the plotted bias range (panel-only: the kernels take any biases)
V_MAX = Spec("v_max", "V_max", "mV", 1.5, (0.3, 6.0), (0.05, 50.0), 0.05, "half-width of the bias range shown")

ISING_PARAMS = (
    param(gap.TC, default=3.0, soft=(0.3, 10.0),
          doc="clean zero-field critical temperature (weak coupling: Δ₀ = 1.764 k_BT_c)"),
    param(ising.BETA_SO),
    param(ising.RASHBA, live=False, doc="Rashba spin-orbit energy (substrate); slow: computed in the background"),
    param(ising.B_FIELD, doc="magnetic field in tesla (Zeeman energy h = gμ_B B/2; no orbital effect)"),
    param(ising.FIELD_ANGLE),
    param(tunneling.TEMPERATURE, default=0.5, soft=(0.0, 10.0), doc="temperature of sample and tip"),
    param(ising.GAMMA, default=0.02),
    param(ising.PAIR_BREAKING),
    param(ising.G_FACTOR),
    param(tunneling.TIP_DELTA, doc="gap of a superconducting tip"),
    param(tunneling.TIP_GAMMA),
    param(tunneling.VMOD_RMS, default=0.01, soft=(0.0, 0.2)),
    param(V_MAX),
)

#: shown in the panel, always: the paper's numbers and what the model makes of them
DFT_NOTE = (
    "β_so is half the spin-orbit band splitting at K. The DFT splittings of Wickramaratne & Mazin (150, 115, "
    "280 meV for monolayer NbSe₂, NbS₂, TaS₂) give β_so = 75, 57.5, 140 meV — and, in this clean model, an "
    "in-plane H_c2 of hundreds of tesla (445.9 T at T = T_c/2 for T_c = 3 K and β_so = 75 meV), while "
    "monolayer NbSe₂ is measured at ~30–35 T (over six times its Pauli limit; Xi et al., Nat. Phys. 12, 139 "
    "(2016)). The effective β_so is a fit parameter: fit it to measured H_c2(T) points below.")

N_T = 80          # temperatures of the H_c2 line
N_BIAS = 601
#: work of one update, estimated before computing (ising.hc2_cost, ising.sample_dos_cost): each budget is
#: ~10–20 s on one core.  Past it the H_c2 line is drawn at fewer temperatures (down to MIN_T), and the
#: spectrum is not computed, with a message naming what to change.
HC2_BUDGET = 3e5            # pole terms per root-finding step of the H_c2 line
DOS_BUDGET = 8e5            # 4×4 BdG matrix signs of the Rashba DOS (an upper bound: ≈ half are done)
MIN_T = 12


@dataclass(frozen=True)
class IsingPreset:
    """A named parameter set: which numbers are the paper's and which are chosen."""

    label: str
    reference: str            # key in gapscope.kernels.references
    note: str
    values: dict[str, float] = field(default_factory=dict)

    def html(self) -> str:
        ref = cite(self.reference)
        return reference_html(ref.short() + f", “{ref.title}”", ref.doi, self.note)


_CHOSEN = "Chosen (not from the paper): B in-plane, T = 0.5 K, Γ = 0.02 meV, no Rashba, no pair breaking"
ISING_PRESETS: dict[str, IsingPreset] = {p.label: p for p in (
    IsingPreset("NbSe₂ monolayer — DFT β_so", "wickramaratne2023_ising",
                "Paper: DFT spin-orbit splitting at K of 150 meV, so β_so = 75 meV (half of it); monolayer NbSe₂ "
                f"T_c 'widely reported' as 3–4 K (3 K taken). {_CHOSEN}, B = 30 T. The resulting H_c2 is hundreds "
                "of tesla, far above the measured ~30–35 T.",
                dict(tc=3.0, beta_so=75.0, rashba=0.0, b=30.0, angle=0.0, temperature=0.5, gamma=0.02,
                     pair_breaking=0.0, g=2.0)),
    IsingPreset("NbS₂ monolayer — DFT β_so", "wickramaratne2023_ising",
                "Paper: DFT spin-orbit splitting at K of 115 meV, so β_so = 57.5 meV (half of it). "
                f"{_CHOSEN}, T_c = 3 K, B = 30 T.",
                dict(tc=3.0, beta_so=57.5, rashba=0.0, b=30.0, angle=0.0, temperature=0.5, gamma=0.02,
                     pair_breaking=0.0, g=2.0)),
    IsingPreset("TaS₂ monolayer — DFT β_so", "wickramaratne2023_ising",
                "Paper: DFT spin-orbit splitting at K of 280 meV, so β_so = 140 meV (half of it). "
                f"{_CHOSEN}, T_c = 3 K, B = 30 T.",
                dict(tc=3.0, beta_so=140.0, rashba=0.0, b=30.0, angle=0.0, temperature=0.5, gamma=0.02,
                     pair_breaking=0.0, g=2.0)),
    IsingPreset("Conventional film (no SOC)", "bardeen1957_bcs",
                "BCS with β_so = 0: Pauli limited, B_P = √2Δ₀/(gμ_B) = 1.857 T/K × T_c (5.57 T at 3 K); the "
                "second-order line ends at Δ₀/2 at T = 0 and the transition is first order at low T. Chosen: "
                "T_c = 3 K, B = 4 T in-plane, T = 0.5 K, Γ = 0.02 meV.",
                dict(tc=3.0, beta_so=0.0, rashba=0.0, b=4.0, angle=0.0, temperature=0.5, gamma=0.02,
                     pair_breaking=0.0, g=2.0)),
)}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_LINE = re.compile(rf"^\s*({_NUMBER})\s*[,;\s]\s*({_NUMBER})\s*$")


def parse_points(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Measured points typed as "T, B" lines (K, tesla; comma, semicolon or blank; # comments).

    Raises
    ------
    PanelInputError
        Naming the first line that is not two numbers, or a negative value.
    """
    T, B = [], []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _LINE.match(line)
        if not m:
            raise PanelInputError(f"line {n} ({raw.strip()!r}) is not 'T, B': two numbers, K and tesla")
        t, b = float(m.group(1)), float(m.group(2))
        if t < 0 or b < 0:
            raise PanelInputError(f"line {n}: T and B must be ≥ 0 (got {t:g} K, {b:g} T)")
        T.append(t)
        B.append(b)
    return np.array(T), np.array(B)


class IsingPanel(Panel):
    """Ising superconductor in a Zeeman field: H_c2(T) diagram, Δ(T, B), DOS and dI/dV at the point.

    Computes in the background: without Rashba an update takes milliseconds; with Rashba the
    H_c2 line, the gap and the DOS need a Fermi-circle average (seconds), shown with a progress
    bar and Cancel while the other controls stay responsive; recent states come from a cache.
    ``curves`` holds the last plotted data.
    """

    TITLE = "Ising superconductivity"
    PARAMS = ISING_PARAMS
    BACKGROUND = True
    CACHE_SIZE = 16

    def __init__(self, **values: Any) -> None:
        style = {"description_width": "7em"}
        self.preset = w.Dropdown(options=["—"] + list(ISING_PRESETS), value="—", description="Preset", style=style)
        self.preset_info = w.HTML()
        self.dft_note = w.HTML(f'<div class="gs-dft-note" style="font-size:0.85em;line-height:1.35;max-width:26em;'
                               f'color:#444;margin:4px 0">{html.escape(DFT_NOTE)}</div>')
        self.readout = w.HTML()
        self.readout.add_class("gs-readout")
        self.points_text = w.Textarea(placeholder="measured H_c2 points, one 'T (K), B (T)' per line, e.g.\n"
                                                  "0.5, 31.5\n1.5, 24", layout=w.Layout(width="25em", height="7em"))
        self.points_text.add_class("gs-points")
        self.fit_tc = w.Checkbox(value=True, description="fit T_c too", indent=False)
        self.fit_button = w.Button(description="Fit β_so", icon="line-chart",
                                   tooltip="Least-squares fit of β_so (and T_c) to the points; sets the sliders")
        self.fit_button.add_class("gs-fit-hc2")
        self.fit_result = w.HTML()
        self.fit_result.add_class("gs-fit-result")
        self.points: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
        self.last_fit: ising.Hc2Fit | None = None
        self.curves: dict[str, np.ndarray] = {}
        super().__init__(**values)
        self._enable_controls(None)

    def make_extras(self) -> dict[str, w.Widget]:
        return {"tip": w.ToggleButtons(options=["normal", "superconducting"], value="normal", description="Tip",
                                       style={"description_width": "7em", "button_width": "9.5em"})}

    @property
    def tip(self) -> w.ToggleButtons:
        return self.extras["tip"]

    # ------------------------------------------------------------------ figures
    def build(self) -> w.Widget:
        ts, bs = bq.LinearScale(min=0.0), bq.LinearScale(min=0.0)
        self.hc2_scales = (ts, bs)
        sc = {"x": ts, "y": bs}
        self.line_hc2 = bq.Lines(x=[0.0], y=[0.0], scales=sc, colors=["#1f4e9c"], stroke_width=2.5,
                                 labels=["H_c2"], display_legend=True)
        self.line_pauli = bq.Lines(x=[0.0], y=[0.0], scales=sc, colors=["#888888"], line_style="dashed",
                                   labels=["β_so = 0"], display_legend=True)
        self.mark_bp = bq.Scatter(x=[0.0], y=[0.0], scales=sc, colors=["#888888"], marker="diamond", default_size=70,
                                  labels=["B_P"], display_legend=True)
        self.mark_data = bq.Scatter(x=[], y=[], scales=sc, colors=["#2ca02c"], marker="square", default_size=40,
                                    labels=["data"], display_legend=True)
        self.mark_point = bq.Scatter(x=[0.5], y=[10.0], scales=sc, colors=["#c0392b"], default_size=90,
                                     labels=["(T, B)"], display_legend=True)
        self.fig_hc2 = bq.Figure(marks=[self.line_pauli, self.line_hc2, self.mark_bp, self.mark_data, self.mark_point],
                                 title="H_c2(T): Zeeman only; grey: β_so = 0 (Pauli)", legend_location="top-right",
                                 axes=[bq.Axis(scale=ts, label="T (K)"),
                                       bq.Axis(scale=bs, side="left", label="B (T)")],
                                 layout=w.Layout(width="430px", height="360px"),
                                 fig_margin=dict(top=40, bottom=50, left=72, right=15))
        self.fig_hc2.add_class("gs-hc2")

        xs, ys = bq.LinearScale(), bq.LinearScale()
        self.line_didv = bq.Lines(x=[0.0], y=[1.0], scales={"x": xs, "y": ys}, colors=["#1f4e9c"], stroke_width=2.5,
                                  labels=["dI/dV"], display_legend=True)
        self.line_dos = bq.Lines(x=[0.0], y=[1.0], scales={"x": xs, "y": ys}, colors=["#888888"],
                                 line_style="dashed", labels=["sample DOS"], display_legend=True)
        self.fig_spec = bq.Figure(marks=[self.line_dos, self.line_didv], title="Spectrum at (T, B)",
                                  legend_location="top-left",
                                  axes=[bq.Axis(scale=xs, label="bias V (mV) · energy E (meV)"),
                                        bq.Axis(scale=ys, side="left", label="normalised dI/dV, N(E)/N₀")],
                                  layout=w.Layout(width="100%", height="380px"),
                                  fig_margin=dict(top=40, bottom=50, left=72, right=20))
        self.fig_spec.add_class("gs-spectrum")
        lower = w.HBox([self.fig_hc2, self.readout])
        return w.VBox([self.fig_spec, lower], layout=w.Layout(flex="1 1 auto", min_width="500px"))

    def marks(self) -> Iterable[w.Widget]:
        return (self.line_hc2, self.line_pauli, self.mark_bp, self.mark_point, self.line_didv, self.line_dos,
                *self.hc2_scales)

    def header(self) -> list[w.Widget]:
        return [self.preset, self.preset_info, self.dft_note, *self.extras.values()]

    def footer(self) -> list[w.Widget]:
        return [w.HTML("<b>Fit β_so to measured H_c2(T)</b> (in-plane; Rashba, g, Γ_AG as set)"), self.points_text,
                w.HBox([self.fit_button, self.fit_tc]), self.fit_result]

    def observers(self):
        return [(self.preset, "value", self._apply_preset),
                (self.tip, "value", self._enable_controls),
                (self.points_text, "value", self._points_changed),
                (self.fit_button, None, lambda _: self.run_fit(wait=False))]

    def _enable_controls(self, _: Any) -> None:
        sc = self.tip.value == "superconducting"
        self.controls["tip_delta"].disabled = not sc
        self.controls["tip_gamma"].disabled = not sc

    def _apply_preset(self, change: dict) -> None:
        p = ISING_PRESETS.get(change["new"])
        if p is None:
            self.preset_info.value = ""
            return
        self.preset_info.value = p.html()
        self.set(**p.values)

    # ------------------------------------------------------------------ measured points and the fit
    def _points_changed(self, change: dict) -> None:
        try:
            self.points = parse_points(change["new"])
        except PanelInputError as exc:
            self.show_message(str(exc), level="error")
            return
        self.show_message("")
        with self.mark_data.hold_sync():
            self.mark_data.x, self.mark_data.y = self.points
        self._rescale()

    def run_fit(self, *, wait: bool = True) -> ising.Hc2Fit | None:
        """Fit β_so (and T_c) to the typed points in the background; on success set the sliders to it.

        Returns the fit with ``wait=True`` (None if it failed or was cancelled).
        """
        try:
            T, B = parse_points(self.points_text.value)
        except PanelInputError as exc:
            self.show_message(str(exc), level="error")
            return None
        if T.size == 0:
            self.show_message("Type measured points first: one 'T, B' per line (K, tesla).", level="warning")
            return None
        v = self.values
        fit_tc = bool(self.fit_tc.value)
        kw = dict(tc=None if fit_tc else v["tc"], fit_tc=fit_tc, rashba=v["rashba"], g=v["g"],
                  pair_breaking=v["pair_breaking"])

        def job(task: Task) -> ising.Hc2Fit:
            task.progress(0.1, "fitting β_so …")
            return ising.fit_hc2(T, B, **kw)

        future = self.submit(job, self._show_fit, label="fitting β_so …")
        if not wait:
            return None
        return future.result()

    def _show_fit(self, r: ising.Hc2Fit) -> None:
        self.last_fit = r
        tc = (f"T_c = {r.tc:.4g} ± {r.tc_err:.2g} K" if np.isfinite(r.tc_err) else f"T_c = {r.tc:.4g} K (fixed)")
        self.fit_result.value = (f"<span class='gs-fit-values'>β_so = {r.beta_so:.4g} ± {r.beta_so_err:.2g} meV, "
                                 f"{tc}; χ²_red = {r.redchi:.3g} ({r.n} points; errors scaled by √χ²_red)</span>")
        self.set(beta_so=min(max(r.beta_so, 0.0), ising.BETA_SO.bounds[1]), tc=r.tc)

    # ------------------------------------------------------------------ physics (kernels only)
    def compute(self, v: dict[str, Any], task: Task) -> dict[str, Any]:
        hvec = ising.field_vector(b=v["b"], angle=v["angle"], g=v["g"])
        slow = ising.uses_bdg(field=hvec, rashba=v["rashba"])
        common = dict(tc=v["tc"], g=v["g"], pair_breaking=v["pair_breaking"])
        tc_star = ising.critical_temperature(tc=v["tc"], pair_breaking=v["pair_breaking"])
        if slow:
            task.progress(0.02, "H_c2(T): Fermi-circle average …")
        notes: list[str] = []
        T = max(tc_star, 1e-3 * v["tc"]) * np.linspace(0.01, 1.0, N_T)
        cost = ising.hc2_cost(T, rashba=v["rashba"])
        if cost > HC2_BUDGET:          # estimated before computing: fewer temperatures, same accuracy each
            n_t = max(MIN_T, int(N_T * HC2_BUDGET / cost))
            T = T[0] + (T[-1] - T[0]) * np.linspace(0.0, 1.0, n_t)
            notes.append(f"H_c2(T) is drawn at {n_t} temperatures instead of {N_T} to bound the time: with "
                         f"λ_R = {v['rashba']:g} meV down to T = {T[0]:.3g} K the Fermi-circle average needs "
                         f"{cost // (2 * N_T)} angles.")
        B_line = ising.hc2(T, beta_so=v["beta_so"], rashba=v["rashba"], angle=v["angle"], **common)
        B_pauli = ising.hc2(T, beta_so=0.0, **common)
        b_p = ising.pauli_limit(tc=v["tc"], g=v["g"])
        b_now = float(ising.hc2(v["temperature"], beta_so=v["beta_so"], rashba=v["rashba"], angle=v["angle"],
                                **common))
        self.finite("H_c2", B_line, B_pauli)
        task.progress(0.1, "Δ(T, B) …" if not slow else "Δ(T, B): Fermi-circle average …")
        sol = ising.gap_solution(v["temperature"], tc=v["tc"], beta_so=v["beta_so"], field=hvec,
                                 rashba=v["rashba"], pair_breaking=v["pair_breaking"],
                                 progress=(lambda f: task.progress(0.1 + 0.3 * f, "Δ(T, B): Fermi-circle average …"))
                                 if slow else None)
        tip_delta = v["tip_delta"] if v["tip"] == "superconducting" else 0.0
        kt = KB * v["temperature"]
        window = v["v_max"] + tip_delta + 25.0 * kt + 3.0 * v["vmod_rms"] + 0.5
        V = np.linspace(-v["v_max"], v["v_max"], N_BIAS)
        dos_cost = ising.sample_dos_cost(field=hvec, gamma=v["gamma"], rashba=v["rashba"],
                                         pair_breaking=v["pair_breaking"], window=window)
        if dos_cost > DOS_BUDGET:      # estimated before computing: no spectrum, and what to change
            notes.append(self.dos_refusal(v, hvec, window, dos_cost))
            V = G = N = np.zeros(0)
        else:
            sample = ising.sample_dos(delta=sol.delta, beta_so=v["beta_so"], field=hvec, gamma=v["gamma"],
                                      rashba=v["rashba"], pair_breaking=v["pair_breaking"], window=window,
                                      progress=lambda f: task.progress(0.4 + 0.55 * f, "Rashba DOS: Fermi-circle "
                                                                       f"average … {100 * f:.0f} %"))
            G = tunneling.didv(V, sample_dos=sample, temperature=v["temperature"], tip_delta=tip_delta,
                               tip_gamma=v["tip_gamma"], vmod_rms=v["vmod_rms"])
            N = sample(V)
            self.finite("dI/dV", G)
            self.finite("DOS", N)
        return {"notes": notes, "values": dict(v), "T": T, "B": B_line, "B_pauli": B_pauli, "b_p": b_p, "b_now": b_now,
                "tc_star": tc_star, "solution": sol, "h": float(np.linalg.norm(hvec)), "V": V, "G": G, "N": N,
                "tip_delta": tip_delta, "slow": slow}

    @staticmethod
    def dos_refusal(v: dict[str, Any], hvec: np.ndarray, window: float, cost: int) -> str:
        """Why the spectrum is not computed, and the Γ at which it would be (the cost falls as 1/Γ²)."""
        def over(gamma: float) -> bool:
            return ising.sample_dos_cost(field=hvec, gamma=gamma, rashba=v["rashba"], pair_breaking=v["pair_breaking"],
                                         window=window) > DOS_BUDGET
        gamma = v["gamma"]
        while over(gamma) and gamma < ising.GAMMA.bounds[1]:
            gamma = min(1.25 * gamma, ising.GAMMA.bounds[1])
        hint = (f"raise Γ to ≥ {float(f'{gamma:.2g}'):g} meV, or lower" if not over(gamma) else "lower")
        return (f"The spectrum is not computed: the Rashba DOS (λ_R = {v['rashba']:g} meV, |h| = "
                f"{float(np.linalg.norm(hvec)):.3g} meV, Γ + Γ_AG = {v['gamma'] + v['pair_breaking']:g} meV, over "
                f"±{window:.3g} meV for V_max, T and V_mod) needs {cost / 1e6:.1f} million BdG solutions, more than "
                f"the {DOS_BUDGET / 1e6:g} million one update may take (~10 s); {hint} λ_R, B, T or V_max.")

    def draw(self, r: dict[str, Any]) -> None:
        v = r["values"]
        finite = np.isfinite(r["B"])
        self.line_hc2.x, self.line_hc2.y = r["T"][finite], r["B"][finite]
        self.line_pauli.x, self.line_pauli.y = r["T"], r["B_pauli"]
        self.mark_bp.x, self.mark_bp.y = [0.0], [r["b_p"]]
        self.mark_point.x, self.mark_point.y = [v["temperature"]], [v["b"]]
        self.line_didv.x, self.line_didv.y = r["V"], r["G"]
        self.line_dos.x, self.line_dos.y = r["V"], r["N"]
        self.curves = {"T_K": r["T"], "hc2_T": r["B"], "pauli_T": r["B_pauli"], "bias_mV": r["V"], "didv": r["G"],
                       "dos": r["N"]}
        self._last = r
        self._rescale()
        self._readout(r)

    def _rescale(self) -> None:
        r = getattr(self, "_last", None)
        if r is None:
            return
        v = r["values"]
        tops = [1.2 * r["b_p"], 1.15 * v["b"], 1.0]
        finite = r["B"][np.isfinite(r["B"])]
        if finite.size:
            tops.append(1.1 * float(np.percentile(finite, 90)))
        if self.points[1].size:
            tops.append(1.15 * float(self.points[1].max()))
        ts, bs = self.hc2_scales
        ts.min, ts.max = 0.0, 1.08 * max(v["tc"], v["temperature"], *(self.points[0].tolist() or [0.0]))
        bs.min, bs.max = 0.0, float(max(tops))

    def _readout(self, r: dict[str, Any]) -> None:
        v, sol = r["values"], r["solution"]
        if sol.delta > 0:
            state = "superconducting" + (" (normal state metastable: first-order region)" if sol.metastable else "")
        else:
            state = "normal" + (" (superconducting state metastable: first-order region)" if sol.metastable else "")
        b_now = r["b_now"]
        hc2_text = "∞ (diverges as T → 0)" if not np.isfinite(b_now) else f"{b_now:.4g} T"
        rows = [("state", state),
                ("Δ(T, B)", f"{sol.delta:.4f} meV"),
                ("Zeeman h", f"{r['h']:.4f} meV = gμ_B B/2 ({v['b']:.4g} T, g = {v['g']:.3g})"),
                ("H_c2(T)", f"{hc2_text} at {v['temperature']:.3g} K"),
                ("B_P", f"{r['b_p']:.4g} T = √2Δ₀/gμ_B (clean, T = 0); B/B_P = {v['b'] / r['b_p']:.3g}"),
                ("T_c", f"{r['tc_star']:.4g} K" + (" (reduced by Γ_AG)" if v["pair_breaking"] > 0 else "")),
                ("2β_so", f"{2 * v['beta_so']:.4g} meV band splitting at K")]
        self.readout.value = ("<table style='font-size:0.9em'>" + "".join(
            f"<tr><td>{html.escape(a)}</td><td class='gs-ro-{i}'>{html.escape(b)}</td></tr>"
            for i, (a, b) in enumerate(rows)) + "</table>")
        notes = list(r.get("notes", ()))
        if v["angle"] > 0 and v["b"] > 0:
            notes.append("Tilted field: only the Zeeman effect is modelled; in a real film the out-of-plane "
                         "component's orbital depairing dominates.")
        if r["tip_delta"] + sol.delta > v["v_max"]:
            notes.append("The coherence peaks lie outside the bias range shown.")
        if r["tc_star"] == 0.0:
            notes.append("Γ_AG ≥ Δ₀/2: pair breaking destroys superconductivity at every T.")
        if notes:
            self.show_message(" ".join(notes), level="warning")
