"""Proximity panel: self-consistent Usadel S/S′ junction — Δ(x), the dI/dV line scan, a spectrum at x."""

from __future__ import annotations

import html
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from gapscope.kernels import proximity, tunneling
from gapscope.kernels.proximity import ConvergenceError, Junction
from gapscope.kernels.references import cite
from gapscope.kernels.specs import Spec

from .colormap import to_png
from .panel import Panel, Task
from .params import param

__all__ = ["ProximityPanel", "PROXIMITY_PARAMS", "PROXIMITY_PRESETS", "INTERFACE_MODES"]

# panel-only quantities: what is shown, not what the kernels take
V_MAX = Spec("v_max", "V_max", "mV", 3.0, (0.5, 8.0), (0.1, 50.0), 0.1, "half-width of the bias range")
WINDOW = Spec("window", "x_win", "nm", 20.0, (5.0, 100.0), (1.0, 1000.0), 1.0,
              "half-width of the x range shown and scanned (clipped to L_S, L_S′)")
X_TIP = Spec("x_tip", "x_tip", "nm", 2.0, (-20.0, 20.0), (-2000.0, 2000.0), 0.1,
             "tip position of the spectrum (or click the line scan)")

PROXIMITY_PARAMS = (
    param(proximity.DELTA_S, live=False),
    param(proximity.DELTA_N, live=False),
    param(proximity.XI_S, live=False),
    param(proximity.XI_N, live=False, default=2.64),
    param(proximity.GAMMA, live=False),
    param(proximity.GAMMA_B, live=False),
    param(proximity.REFLECTIVITY, live=False),
    param(proximity.TEMPERATURE, live=False),
    param(proximity.OMEGA_C, live=False),
    param(proximity.DYNES_GAMMA, live=False),
    param(proximity.LENGTH_S, live=False),
    param(proximity.LENGTH_N, live=False),
    param(tunneling.TIP_DELTA, live=False, doc="gap of a superconducting tip"),
    param(tunneling.TIP_GAMMA, live=False),
    param(tunneling.VMOD_RMS, live=False, soft=(0.0, 0.3)),
    param(V_MAX, live=False),
    param(WINDOW, live=False),
    param(X_TIP),
)

#: interface input: the KL resistance itself, or Lin et al.'s r through the assumed mapping
INTERFACE_MODES = {"γ_B": "gamma_b", "r (γ_B = r/(1−r), assumed)": "r"}
N_ENERGIES = 600           # energies E ≥ 0 of the DOS table
N_BIAS = 401
GREY = "#bbbbbb"
SPEC_TITLE = "dI/dV at x_tip (dashed: N(x_tip, E))"
SCAN_TITLE = "Line scan dI/dV(x, V): click a position"


@dataclass(frozen=True)
class ProximityPreset:
    """A named parameter set: which numbers are a paper's, which are assumed and which are chosen."""

    label: str
    reference: str | None         # key in gapscope.kernels.references
    note: str
    tip: str
    interface: str
    values: dict[str, float] = field(default_factory=dict)

    def html(self) -> str:
        ref = cite(self.reference).html() + "<br>" if self.reference else ""
        return f'<div style="font-size:0.85em;max-width:26em">{ref}{html.escape(self.note)}</div>'


_PB = dict(delta_s=1.3, delta_n=1.0, xi_s=6.0, xi_n=2.64, gamma=1.0, r=0.02, gamma_b=0.0204, temperature=0.32,
           omega_c=30.0, dynes_gamma=0.01, length_s=120.0, length_n=60.0, tip_delta=1.31, tip_gamma=0.01,
           vmod_rms=0.02, v_max=3.0, window=20.0, x_tip=2.0)

PROXIMITY_PRESETS: dict[str, ProximityPreset] = {p.label: p for p in (
    ProximityPreset(
        "Pb(111) / Ni–Pb alloy — Lin et al.", "lin2021_nipb",
        "Paper: Δ_Pb ≈ 1.3 meV (S), Δ_NiPb ≈ 1.0 meV (S′), STM at 0.32 K, reflectivity r = 0.02, decay length "
        "L_d ≈ 3.55 nm in the text but 2.75 nm in the Fig. 4(d) caption. Assumed: γ_B = r/(1−r) = 0.0204 (the "
        "paper does not define r), a normal tip. Chosen: ξ_S = 6 nm, γ = 1, ω_c = 30 meV, L_S = 120 nm, "
        "L_S′ = 60 nm, Γ_D = 0.01 meV, V_mod = 0.02 mV rms; ξ_S′ = 2.64 nm so that the model's 1/e length is "
        "the text's 3.55 nm (the caption's 2.75 nm needs ξ_S′ = 2.04 nm; with ω_c = 8.6 meV, about Pb's Debye energy, "
        "2.46 and 1.91 nm). The model has no coherence-peak enhancement and no Pb substrate under the alloy.",
        "normal", "r (γ_B = r/(1−r), assumed)", _PB),
    ProximityPreset(
        "S/N bilayer with a minigap", None,
        "All chosen (no paper): Δ_S = 1.3 meV on a 30 nm normal layer (Δ_S′ = 0), ξ_S = ξ_S′ = 6 nm, γ = 1, "
        "γ_B = 0.5, T = 0.1 K, ω_c = 10 meV, Γ_D = 0.005 meV. The free N surface shows an induced minigap "
        "(≈ 0.07 meV) far below Δ_S; the tip sits 1 nm from that surface.",
        "normal", "γ_B",
        dict(delta_s=1.3, delta_n=0.0, xi_s=6.0, xi_n=6.0, gamma=1.0, gamma_b=0.5, temperature=0.1, omega_c=10.0,
             dynes_gamma=0.005, length_s=120.0, length_n=30.0, vmod_rms=0.005, v_max=2.0, window=30.0, x_tip=29.0)),
)}

DECAY_TARGETS = {f"{v:g} nm ({k})": v for k, v in (("text", proximity.PAPER_DECAY_LENGTHS["text"]),
                                                      ("Fig. 4(d) caption", proximity.PAPER_DECAY_LENGTHS["caption"]))}


def _nm(x: float) -> str:
    return f"{x:.3f}" if np.isfinite(x) else "—"


class ProximityPanel(Panel):
    """S/S′ proximity junction: self-consistent Δ(x), the simulated line scan G(x, V), a spectrum at x_tip.

    Solves in the background (≈ 0.2–0.5 s per state); the line-scan DOS of the last states is kept, so a
    tip move (click on the line scan or the x_tip slider) only re-runs one spectrum through the chain.
    A bad or non-converged state greys every curve and says why.
    """

    TITLE = "Proximity junction (Usadel)"
    PARAMS = PROXIMITY_PARAMS
    BACKGROUND = True
    CACHE_SIZE = 16
    _MEMO_SIZE = 4

    def __init__(self, **values: Any) -> None:
        self.preset = w.Dropdown(options=["—"] + list(PROXIMITY_PRESETS), value="—", description="Preset",
                                 style={"description_width": "7em"})
        self.preset_info = w.HTML()
        self.readout = w.HTML()
        self.readout.add_class("gs-readout")
        self.target = w.Dropdown(options=list(DECAY_TARGETS), description="L_d of paper",
                                 style={"description_width": "7em"}, layout=w.Layout(width="19em"))
        self.match_button = w.Button(description="find ξ_S′", icon="search", layout=w.Layout(width="7em"),
                                     tooltip="Solve for the ξ_S′ at which the model's 1/e decay length equals the "
                                             "paper's value (a few solves, in the background)")
        self.match_note = ""
        self.valid = False
        self.curves: dict[str, np.ndarray] = {}
        self._memo: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        super().__init__(**values)
        self._enable_controls(None)

    def make_extras(self) -> dict[str, w.Widget]:
        style = {"description_width": "7em"}
        return {
            "tip": w.ToggleButtons(options=["normal", "superconducting"], value="normal", description="Tip",
                                   style={**style, "button_width": "9.5em"}),
            "interface": w.ToggleButtons(options=list(INTERFACE_MODES), value="r (γ_B = r/(1−r), assumed)",
                                         description="Interface",
                                         style={"description_width": "5em", "button_width": "auto"}),
        }

    tip = property(lambda self: self.extras["tip"])
    interface = property(lambda self: self.extras["interface"])

    # ------------------------------------------------------------------ figures
    def build(self) -> w.Widget:
        dx, dy = bq.LinearScale(), bq.LinearScale()
        self.line_delta = bq.Lines(x=[0.0], y=[1.0], scales={"x": dx, "y": dy}, colors=["#1f4e9c"], stroke_width=2.2,
                                   labels=["Δ(x)"])
        self.line_bulk = bq.Lines(x=[[0.0, 1.0]] * 2, y=[[1.0, 1.0]] * 2, scales={"x": dx, "y": dy},
                                  colors=["#999999", "#999999"], line_style="dashed", labels=["bulk Δ(T)"])
        self.dot_decay = bq.Scatter(x=[0.0], y=[1.0], scales={"x": dx, "y": dy}, colors=["#c0392b"], default_size=50,
                                    marker="diamond")
        self.rule_delta = bq.Lines(x=[0.0, 0.0], y=[0.0, 1.0], scales={"x": dx, "y": dy}, colors=["#c0392b"],
                                   line_style="dotted")
        self.delta_scales = (dx, dy)
        self.fig_delta = bq.Figure(marks=[self.line_bulk, self.line_delta, self.dot_decay, self.rule_delta],
                                   title="Δ(x) (◆: 1/e points)",
                                   axes=[bq.Axis(scale=dx, label="x (nm): S < 0 < S′"),
                                         bq.Axis(scale=dy, side="left", label="Δ (meV)")],
                                   layout=w.Layout(width="420px", height="300px"),
                                   fig_margin=dict(top=35, bottom=45, left=72, right=10))
        self.fig_delta.add_class("gs-profile")

        sx, sy = bq.LinearScale(), bq.LinearScale(min=0.0)
        self.spec_scales = (sx, sy)
        self.line_didv = bq.Lines(x=[0.0], y=[1.0], scales={"x": sx, "y": sy}, colors=["#1f4e9c"], stroke_width=2.2,
                                  labels=["dI/dV at x_tip"])
        self.line_ldos = bq.Lines(x=[0.0], y=[1.0], scales={"x": sx, "y": sy}, colors=["#999999"],
                                  line_style="dashed", labels=["N(x_tip, E)"])
        self.fig_spec = bq.Figure(marks=[self.line_ldos, self.line_didv], title=SPEC_TITLE,
                                  axes=[bq.Axis(scale=sx, label="bias V (mV) · energy E (meV)"),
                                        bq.Axis(scale=sy, side="left", label="normalised dI/dV, N")],
                                  layout=w.Layout(width="420px", height="300px"),
                                  fig_margin=dict(top=35, bottom=45, left=72, right=10))
        self.fig_spec.add_class("gs-spectrum")

        mx, my = bq.LinearScale(), bq.LinearScale()
        self.scan_scales = (mx, my)
        self.scan_image = bq.Image(image=w.Image(value=to_png(np.zeros((2, 2))), format="png"),
                                   scales={"x": mx, "y": my}, x=[-1.0, 1.0], y=[-1.0, 1.0])
        self.scan_image.on_element_click(self._scan_clicked)
        self.rule_scan = bq.Lines(x=[0.0, 0.0], y=[-1.0, 1.0], scales={"x": mx, "y": my}, colors=["#ff4136"],
                                  stroke_width=1.5)
        self.rule_interface = bq.Lines(x=[0.0, 0.0], y=[-1.0, 1.0], scales={"x": mx, "y": my}, colors=["white"],
                                       line_style="dashed", opacities=[0.7])
        self.fig_scan = bq.Figure(marks=[self.scan_image, self.rule_interface, self.rule_scan],
                                  title=SCAN_TITLE,
                                  axes=[bq.Axis(scale=mx, label="x (nm)", num_ticks=7),
                                        bq.Axis(scale=my, side="left", label="bias V (mV)", num_ticks=7)],
                                  layout=w.Layout(width="420px", height="340px"),
                                  fig_margin=dict(top=35, bottom=45, left=72, right=10))
        self.fig_scan.add_class("gs-map")

        ax, ay = bq.LinearScale(), bq.LinearScale()
        self.asym_scales = (ax, ay)
        self.line_asym = bq.Lines(x=[0.0], y=[0.0], scales={"x": ax, "y": ay}, colors=["#1f4e9c"])
        self.dot_asym = bq.Scatter(x=[0.0], y=[0.0], scales={"x": ax, "y": ay}, colors=["#c0392b"], default_size=40)
        self.fig_asym = bq.Figure(marks=[self.line_asym, self.dot_asym], title="Coherence-peak asymmetry A(x)",
                                  axes=[bq.Axis(scale=ax, label="x (nm)", num_ticks=5),
                                        bq.Axis(scale=ay, side="left", label="A", num_ticks=4)],
                                  layout=w.Layout(width="420px", height="220px"),
                                  fig_margin=dict(top=35, bottom=45, left=72, right=10))
        top = w.HBox([self.fig_delta, self.fig_spec], layout=w.Layout(flex_flow="row wrap"))
        bottom = w.HBox([self.fig_scan, w.VBox([self.fig_asym, self.readout])], layout=w.Layout(flex_flow="row wrap"))
        return w.VBox([top, bottom], layout=w.Layout(flex="1 1 auto", min_width="500px"))

    def marks(self) -> Iterable[w.Widget]:
        return (self.line_delta, self.line_bulk, self.dot_decay, self.rule_delta, self.line_didv, self.line_ldos,
                self.scan_image, self.rule_scan, self.rule_interface, self.line_asym, self.dot_asym,
                *self.delta_scales, *self.scan_scales, *self.spec_scales, *self.asym_scales)

    def header(self) -> list[w.Widget]:
        return [self.preset, self.preset_info, *self.extras.values(), w.HBox([self.target, self.match_button])]

    # ------------------------------------------------------------------ observers
    def observers(self):
        return [(self.preset, "value", self._apply_preset),
                (self.tip, "value", self._enable_controls),
                (self.interface, "value", self._enable_controls),
                (self.match_button, None, lambda _: self.match_decay_length())]

    def _enable_controls(self, _: Any) -> None:
        sc = self.tip.value == "superconducting"
        self.controls["tip_delta"].disabled = not sc
        self.controls["tip_gamma"].disabled = not sc
        by_r = INTERFACE_MODES[self.interface.value] == "r"
        self.controls["gamma_b"].disabled = by_r
        self.controls["r"].disabled = not by_r

    def _apply_preset(self, change: dict) -> None:
        p = PROXIMITY_PRESETS.get(change["new"])
        if p is None:
            self.preset_info.value = ""
            return
        self.preset_info.value = p.html()
        self.match_note = ""
        self.set(tip=p.tip, interface=p.interface, **p.values)

    def _scan_clicked(self, _mark: Any, content: dict) -> None:
        data = content.get("data", {})
        try:
            x = float(data["click_x"])
        except (KeyError, TypeError, ValueError):
            return
        self.move_tip(x)

    def move_tip(self, x: float) -> None:
        """Put the tip at x (nm) and show the spectrum there."""
        self.controls["x_tip"].value = float(x)

    def match_decay_length(self) -> None:
        """Set ξ_S′ so that the model's 1/e length equals the chosen paper value (runs in the background)."""
        target = DECAY_TARGETS[self.target.value]
        try:
            j = self.junction(self.values)
        except ValueError as exc:
            self.show_message(str(exc), level="error")
            return

        def job(task: Task) -> float:
            task.progress(0.1, f"ξ_S′ for L = {target:g} nm …")
            return proximity.match_decay_length(target, junction=j)

        def done(xi: float) -> None:
            self.match_note = f"ξ_S′ = {xi:.3f} nm gives L_1/e(S′) = {target:g} nm ({self.target.value})"
            with self.batch():
                self.controls["xi_n"].value = round(xi, 4)
                if self.controls["length_n"].value < xi:
                    self.controls["length_n"].value = 20 * xi

        self.submit(job, done, label=f"finding ξ_S′ for {target:g} nm …")

    # ------------------------------------------------------------------ physics (kernels only, no widgets)
    @staticmethod
    def junction(v: dict[str, Any]) -> Junction:
        """The junction of a set of panel values (γ_B directly or from r, as the interface mode says)."""
        gb = v["gamma_b"] if INTERFACE_MODES[v["interface"]] == "gamma_b" else proximity.gamma_b_from_r(v["r"])
        return Junction(delta_s=v["delta_s"], delta_n=v["delta_n"], xi_s=v["xi_s"], xi_n=v["xi_n"], gamma=v["gamma"],
                        gamma_b=gb, temperature=v["temperature"], omega_c=v["omega_c"], length_s=v["length_s"],
                        length_n=v["length_n"], dynes_gamma=v["dynes_gamma"])

    @staticmethod
    def chain(v: dict[str, Any]) -> dict[str, float]:
        td = v["tip_delta"] if v["tip"] == "superconducting" else 0.0
        return dict(temperature=v["temperature"], tip_delta=td, tip_gamma=v["tip_gamma"], vmod_rms=v["vmod_rms"])

    @staticmethod
    def positions(j: Junction, window: float) -> np.ndarray:
        """Tip positions of the line scan: 0.4 nm apart (Lin et al.'s spacing), at most 201, in the window."""
        lo, hi = -min(window, j.length_s), min(window, j.length_n)
        n = int(min(201, max(21, round((hi - lo) / 0.4) + 1)))
        return np.linspace(lo, hi, n)

    def compute(self, v: dict[str, Any], task: Task) -> dict[str, Any]:
        try:
            j = self.junction(v)
            chain = self.chain(v)
            key = (j, tuple(sorted(chain.items())), v["v_max"], v["window"])
            heavy = self._memo.get(key)
            if heavy is None:
                heavy = self._heavy(j, chain, v, task)
                self._memo[key] = heavy
                while len(self._memo) > self._MEMO_SIZE:
                    self._memo.popitem(last=False)
            else:
                self._memo.move_to_end(key)
            sol, (E, N), V = heavy["solution"], heavy["table"], heavy["bias"]
            x_tip = float(np.clip(v["x_tip"], -j.length_s, j.length_n))
            n_tip = sol.ldos([x_tip], E, table=N)
            G_tip = proximity.didv_at((E, n_tip), V, **chain)[0]
            self.finite("dI/dV", G_tip)
        except ConvergenceError as exc:
            return {"values": dict(v), "error": f"The solve did not converge: {exc}. The curves are greyed out."}
        except ValueError as exc:
            return {"values": dict(v), "error": f"{exc}. The curves are greyed out."}
        shown = np.abs(E) <= v["v_max"]
        return {**{k: heavy[k] for k in ("solution", "bias", "scan", "window")}, "values": dict(v), "chain": chain,
                "x_tip": x_tip, "didv": G_tip, "E": E[shown], "ldos": n_tip[0][shown]}

    @staticmethod
    def _reporter(task: Task, lo: float, span: float):
        """Progress for a kernel: checks for Cancel on every call, updates the bar at most every 0.1 s."""
        last = [0.0]

        def report(f: float, text: str) -> None:
            task.check()
            now = time.perf_counter()
            if now - last[0] >= 0.1:
                last[0] = now
                task.progress(lo + span * f, text)
        return report

    def _heavy(self, j: Junction, chain: dict[str, float], v: dict[str, Any], task: Task) -> dict[str, Any]:
        sol = j.solve(progress=self._reporter(task, 0.0, 0.4))
        V = np.linspace(-v["v_max"], v["v_max"], N_BIAS)
        e_max = proximity.chain_energy(V, temperature=chain["temperature"], vmod_rms=chain["vmod_rms"])
        table = proximity.dos_table(sol, e_max, N_ENERGIES, progress=self._reporter(task, 0.4, 0.3))
        X = self.positions(j, v["window"])
        scan = proximity.line_scan(sol, V, X, table=table, **chain, progress=self._reporter(task, 0.7, 0.3))
        self.finite("the line scan", scan.didv)
        # the cache keeps many states: drop what drawing does not need (θ_n(x), the per-position DOS)
        light = replace(sol, theta_matsubara=np.zeros((0, sol.x.size)))
        return {"solution": light, "table": table, "bias": V, "scan": replace(scan, ldos=np.zeros((0, 0))),
                "window": (float(X[0]), float(X[-1]))}

    # ------------------------------------------------------------------ drawing
    def draw(self, r: dict[str, Any]) -> None:
        if "error" in r:
            self._invalidate(r["error"])
            return
        sol, scan, V = r["solution"], r["scan"], r["bias"]
        lo, hi = r["window"]
        x = sol.x
        inside = (x >= lo) & (x <= hi)
        self._set_colours(valid=True)
        self.line_delta.x, self.line_delta.y = x[inside], sol.delta[inside]
        bs, bn = sol.junction.bulk_gaps
        self.line_bulk.x = [[lo, 0.0], [0.0, hi]]
        self.line_bulk.y = [[bs, bs], [bn, bn]]
        pts = [(-sol.decay_length_s, float(sol.at(-sol.decay_length_s))) if np.isfinite(sol.decay_length_s) else None,
               (sol.decay_length_n, float(sol.at(sol.decay_length_n))) if np.isfinite(sol.decay_length_n) else None]
        pts = [p for p in pts if p is not None and lo <= p[0] <= hi] or [(0.0, float(sol.delta[sol.n_s]))]
        self.dot_decay.x, self.dot_decay.y = [p[0] for p in pts], [p[1] for p in pts]
        top = float(max(sol.delta[inside].max(), bs, bn))
        dx, dy = self.delta_scales
        dx.min, dx.max = lo, hi
        dy.min, dy.max = 0.0, max(1.1 * top, 0.05)
        self.rule_delta.x, self.rule_delta.y = [r["x_tip"]] * 2, [0.0, max(1.1 * top, 0.05)]

        self.line_didv.x, self.line_didv.y = V, r["didv"]
        self.line_ldos.x, self.line_ldos.y = r["E"], r["ldos"]
        g_top = float(r["didv"].max())        # the DOS peaks (~√(Δ/2Γ_D)) may leave the frame; dI/dV never does
        self.spec_scales[1].max = 1.12 * max(g_top, min(float(r["ldos"].max()), 2.0 * g_top), 1.0)

        G = scan.didv
        old = self.scan_image.image
        vmax = float(np.percentile(G, 99.5))
        self.scan_image.image = w.Image(value=to_png(G.T[::-1], 0.0, vmax), format="png")   # bqplot 0.13: new widget
        old.close()
        vm = float(V[-1])
        self.scan_image.x, self.scan_image.y = [lo, hi], [-vm, vm]
        mx, my = self.scan_scales
        mx.min, mx.max, my.min, my.max = lo, hi, -vm, vm
        self.rule_scan.x, self.rule_scan.y = [r["x_tip"]] * 2, [-vm, vm]
        self.rule_interface.x, self.rule_interface.y = [0.0, 0.0], [-vm, vm]

        A = scan.asymmetry
        ok = np.isfinite(A)
        self.line_asym.x, self.line_asym.y = scan.positions[ok], A[ok]
        a_tip = np.interp(r["x_tip"], scan.positions[ok], A[ok]) if np.any(ok) else 0.0
        self.dot_asym.x, self.dot_asym.y = [r["x_tip"]], [float(a_tip)]
        ax, ay = self.asym_scales
        a_lo, a_hi = (float(A[ok].min()), float(A[ok].max())) if np.any(ok) else (0.0, 1.0)
        pad = max(0.1 * (a_hi - a_lo), 1e-3)
        ax.min, ax.max, ay.min, ay.max = lo, hi, a_lo - pad, a_hi + pad

        self.valid = True
        self.curves = {"x_nm": x[inside], "delta_meV": sol.delta[inside], "bias_mV": V, "didv": r["didv"],
                       "energy_meV": r["E"], "ldos": r["ldos"], "scan_positions_nm": scan.positions,
                       "scan_didv": G, "asymmetry": A}
        self._readout(r)

    def _set_colours(self, *, valid: bool) -> None:
        blue, grey_dash = ("#1f4e9c", "#999999") if valid else (GREY, GREY)
        self.line_delta.colors = [blue]
        self.line_didv.colors = [blue]
        self.line_asym.colors = [blue]
        self.line_ldos.colors = [grey_dash]
        self.line_bulk.colors = [grey_dash, grey_dash]
        self.dot_decay.colors = ["#c0392b" if valid else GREY]
        suffix = "" if valid else " — no valid result"
        self.fig_delta.title = "Δ(x) (◆: 1/e points)" + suffix
        self.fig_spec.title = SPEC_TITLE + suffix
        self.fig_scan.title = SCAN_TITLE + suffix
        self.fig_asym.title = "Coherence-peak asymmetry A(x)" + suffix

    def _invalidate(self, text: str) -> None:
        """A failed state: grey every curve, blank the image, say why (nothing stale looks valid)."""
        self._set_colours(valid=False)
        old = self.scan_image.image
        self.scan_image.image = w.Image(value=to_png(np.full((2, 2), 0.5), 0.0, 1.0), format="png")
        old.close()
        self.valid = False
        self.curves = {}
        self.readout.value = "<i>no valid result for these parameters</i>"
        self.show_message(text, level="error")

    def _readout(self, r: dict[str, Any]) -> None:
        sol, v = r["solution"], r["values"]
        j = sol.junction
        a, b = sol.delta_interface
        lam_s, lam_n = j.couplings
        ds, dn = j.hbar_d
        paper = proximity.PAPER_DECAY_LENGTHS
        rows = [("Δ(0⁻), Δ(0⁺)", f"{a:.4f}, {b:.4f} meV (jump {a - b:.4f} meV)"),
                ("L_1/e in S, S′", f"{_nm(sol.decay_length_s)}, {_nm(sol.decay_length_n)} nm"),
                ("Lin et al. L_d", f"{paper['text']:g} nm (text), {paper['caption']:g} nm (Fig. 4(d) caption)"),
                ("far field", f"{sol.delta_far[0]:.4f}, {sol.delta_far[1]:.4f} meV "
                              f"(bulk Δ(T): {j.bulk_gaps[0]:.4f}, {j.bulk_gaps[1]:.4f})"),
                ("γ_B used", f"{j.gamma_b:.4g}" + (f" (from r = {v['r']:g}, assumed γ_B = r/(1−r))"
                                                     if INTERFACE_MODES[v["interface"]] == "r" else "")),
                ("λ_S, λ_S′; N_w", f"{lam_s:.5f}, {lam_n:.5f}; {j.n_frequencies}"),
                ("ħD_S, ħD_S′", f"{ds:.1f}, {dn:.1f} meV·nm²"),
                ("tip at", f"x = {r['x_tip']:.2f} nm; A = {self.dot_asym.y[0]:.4f}"),
                ("solve", f"{sol.iterations} iterations, max|δΔ| = {sol.residual:.1e} meV")]
        if self.match_note:
            rows.append(("matched", self.match_note))
        self.readout.value = ("<table style='font-size:0.9em'>" + "".join(
            f"<tr><td>{html.escape(k)}</td><td class='gs-ro-{i}'>{html.escape(t)}</td></tr>"
            for i, (k, t) in enumerate(rows)) + "</table>")
        notes = list(sol.warnings)
        if v["x_tip"] != r["x_tip"]:
            notes.append(f"x_tip = {v['x_tip']:g} nm lies outside the junction; the spectrum is at {r['x_tip']:g} nm.")
        if notes:
            self.show_message(" ".join(notes), level="warning")
