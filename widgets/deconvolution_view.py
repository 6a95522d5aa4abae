"""The fit panel's deconvolution view: the sample DOS recovered from the data shown and a known tip.

:class:`DeconvolutionView` runs :func:`gapscope.kernels.fitting.deconvolve` (Tikhonov-regularised
inversion of the measurement chain, λ by generalised cross-validation or the L-curve) on the data
the panel shows, with the tip and chain the panel's table holds — temperature, tip gap Δ_t and
broadening Γ_t, lock-in V_rms — in the background (progress, Cancel).  It shows the recovered DOS
with its ±1σ band (the regularised posterior covariance; a band of the regularised estimate, not
of the true DOS: it does not include the smoothing bias), beside the data with the forward check —
the chain applied to the recovered DOS — and its residual.  No physics here.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from gapscope.kernels import fitting

__all__ = ["DeconvolutionView", "METHODS"]

#: how λ is chosen
METHODS = (("generalised cross-validation", "gcv"), ("L-curve", "lcurve"))
CHAIN = ("temperature", "tip_delta", "tip_gamma", "vmod_rms")


class DeconvolutionView:
    """Deconvolve button, method, the DOS with its band, data with forward check, residual.

    Parameters
    ----------
    owner : FitPanel
        Gives the data shown, the table's chain values, ``submit`` and ``show_message``.
    """

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.result: Any = None
        self.method = w.Dropdown(options=list(METHODS), value="gcv", description="λ by",
                                 style={"description_width": "4em"}, layout=w.Layout(width="20em"))
        self.button = w.Button(description="Deconvolve", icon="magic", button_style="primary",
                               tooltip="recover the sample DOS from the data shown, with the table's tip and chain")
        self.button.add_class("gs-deconvolve")
        ex, ey = bq.LinearScale(), bq.LinearScale()
        self.band = bq.Lines(x=[0.0], y=[[0.0], [0.0]], scales={"x": ex, "y": ey}, colors=["#9bb7e0", "#9bb7e0"],
                             fill="between", fill_colors=["#9bb7e0"], fill_opacities=[0.5], stroke_width=0.5,
                             labels=["±1σ"], display_legend=True)
        self.line_dos = bq.Lines(x=[0.0], y=[0.0], scales={"x": ex, "y": ey}, colors=["#1f4e9c"], stroke_width=2.2,
                                 labels=["recovered N(E)"], display_legend=True)
        self.fig_dos = bq.Figure(marks=[self.band, self.line_dos], title="Recovered sample DOS",
                                 legend_location="top-left",
                                 axes=[bq.Axis(scale=ex, label="energy E (meV)"),
                                       bq.Axis(scale=ey, side="left", label="N(E)/N₀")],
                                 layout=w.Layout(width="50%", height="320px"),
                                 fig_margin=dict(top=40, bottom=50, left=60, right=15))
        self.fig_dos.add_class("gs-deconv-dos")
        dx, dy = bq.LinearScale(), bq.LinearScale()
        self.line_data = bq.Scatter(x=[0.0], y=[0.0], scales={"x": dx, "y": dy}, colors=["#333333"], default_size=6,
                                    labels=["data"], display_legend=True)
        self.line_forward = bq.Lines(x=[0.0], y=[0.0], scales={"x": dx, "y": dy}, colors=["#c0392b"],
                                     stroke_width=2, labels=["chain ∘ recovered DOS"], display_legend=True)
        self.fig_data = bq.Figure(marks=[self.line_data, self.line_forward], title="Data and forward check",
                                  legend_location="top-left",
                                  axes=[bq.Axis(scale=dx, label="bias V (mV)"), bq.Axis(scale=dy, side="left",
                                                                                       label="dI/dV")],
                                  layout=w.Layout(width="50%", height="320px"),
                                  fig_margin=dict(top=40, bottom=50, left=65, right=15))
        rx, ry = bq.LinearScale(), bq.LinearScale()
        self.line_res = bq.Lines(x=[0.0], y=[0.0], scales={"x": rx, "y": ry}, colors=["#1f4e9c"])
        self.fig_res = bq.Figure(marks=[self.line_res], title="Forward-check residual (data − chain ∘ DOS)",
                                 axes=[bq.Axis(scale=rx, label="bias V (mV)"), bq.Axis(scale=ry, side="left")],
                                 layout=w.Layout(width="100%", height="190px"),
                                 fig_margin=dict(top=35, bottom=45, left=65, right=15))
        self.fig_res.add_class("gs-deconv-residual")
        self.readout = w.HTML()
        self.readout.add_class("gs-deconv-readout")
        self.widget = w.VBox([
            w.HTML("<div style='font-size:0.85em;max-width:46em'>The tip and chain are the table's values "
                   "(temperature, tip_delta, tip_gamma, vmod_rms): set them to the known tip first. The band is "
                   "±1σ of the regularised estimate; it does not include the smoothing that regularisation "
                   "imposes.</div>"),
            w.HBox([self.method, self.button]), w.HBox([self.fig_dos, self.fig_data]), self.fig_res, self.readout])

    def observers(self) -> list[tuple[w.Widget, str | None, Callable]]:
        return [(self.button, None, lambda _: self.run(wait=False))]

    def chain(self) -> dict[str, float]:
        """The tip and chain the deconvolution assumes: the panel's table values."""
        vals = self.owner.table.values()
        return {k: float(vals[k]) for k in CHAIN}

    def run(self, *, wait: bool = True) -> Any:
        """Deconvolve the data shown in the background; returns the result with ``wait=True``."""
        data = self.owner.data
        if data is None:
            self.owner.show_message("Load data first: the deconvolution recovers the DOS of the data shown.",
                                    level="warning")
            return None
        chain, method = self.chain(), self.method.value
        lo, hi = self.owner.window.value
        keep = (data.bias >= lo) & (data.bias <= hi)
        bias, didv = data.bias[keep], data.didv[keep]

        def job(task: Any) -> Any:
            task.progress(0.05, "deconvolving …")
            try:
                return fitting.deconvolve(bias, didv, method=method, **chain)
            except (ValueError, np.linalg.LinAlgError) as exc:
                raise ValueError(f"Deconvolution failed: {exc}") from exc

        def done(r: Any) -> None:
            if data is not self.owner.data:
                self.owner.show_message("The data changed during the deconvolution; its result was dropped.",
                                        level="warning")
                return
            self.show(r, chain)

        future = self.owner.submit(job, done, label="deconvolving …")
        if not wait:
            return None
        r = future.result()
        return r if r is not None and self.result is r else None

    def reset(self) -> None:
        """New data: the shown DOS no longer belongs to them."""
        self.result = None
        self.readout.value = ""
        for m in (self.line_dos, self.line_data, self.line_forward, self.line_res):
            m.x, m.y = [0.0], [0.0]
        self.band.x, self.band.y = [0.0], [[0.0], [0.0]]

    def show(self, r: Any, chain: dict[str, float] | None = None) -> None:
        """Draw a deconvolution result."""
        with self.band.hold_sync(), self.line_dos.hold_sync():
            self.band.x, self.band.y = r.energies, np.vstack([r.dos_low, r.dos_high])
            self.line_dos.x, self.line_dos.y = r.energies, r.dos
        ok = np.isfinite(r.data)
        self.line_data.x, self.line_data.y = r.bias[ok], r.data[ok]
        self.line_forward.x, self.line_forward.y = r.bias, r.forward
        self.line_res.x, self.line_res.y = r.bias[ok], r.residual[ok]
        self.result = r
        c = chain or self.chain()
        self.readout.value = (
            f"<div style='font-size:0.9em'>λ = {r.lam:.3g} ({html.escape(r.method)}), effective parameters "
            f"tr H = {r.dof:.1f} of {r.energies.size}, noise σ̂ = {r.noise:.3g}, scale = {r.scale:.4g} (data units), "
            f"{r.elapsed:.2f} s. Tip: Δ_t = {c['tip_delta']:g} meV, Γ_t = {c['tip_gamma']:g} meV; "
            f"T = {c['temperature']:g} K; V_rms = {c['vmod_rms']:g} mV.</div>")

    # ------------------------------------------------------------------ sessions
    def state(self) -> dict[str, Any]:
        from . import session

        r = self.result
        res = None
        if r is not None:
            res = {k: session.pack_array(getattr(r, k)) for k in ("energies", "dos", "dos_low", "dos_high",
                                                                  "dos_error", "forward", "residual", "bias", "data")}
            res.update(lam=float(r.lam), method=r.method, noise=float(r.noise), scale=float(r.scale),
                       dof=float(r.dof), elapsed=float(r.elapsed), chain=self.chain())
        return session.jsonable({"method": self.method.value, "result": res})

    def check_state(self, obj: Any, c: Any, data: Any) -> dict[str, Any]:
        from gapscope.kernels import tunneling
        from gapscope.kernels.deconvolution import Deconvolution

        from . import session

        c.keys(obj, ("method", "result"))
        method = session.check_widget(self.method, obj["method"], c.at("method"))
        r = obj["result"]
        if r is None:
            return {"method": method, "result": None, "chain": None}
        if data is None:
            raise c.at("result").fail("a deconvolution without data")
        cr = c.at("result")
        arrays = ("energies", "dos", "dos_low", "dos_high", "dos_error", "forward", "residual", "bias", "data")
        cr.keys(r, (*arrays, "lam", "method", "noise", "scale", "dof", "elapsed", "chain"))
        ne = cr.at("energies").keys(r["energies"], ("shape", "data"))["shape"]
        nb = cr.at("bias").keys(r["bias"], ("shape", "data"))["shape"]
        if not (isinstance(ne, list) and len(ne) == 1 and isinstance(nb, list) and len(nb) == 1):
            raise cr.fail("energies and bias must be one-dimensional")
        ne_, nb_ = cr.at("energies").integer(ne[0], 3, 10 ** 5), cr.at("bias").integer(nb[0], 3, 10 ** 7)
        if nb_ > data.bias.size:
            raise cr.at("bias").fail("more points than the data have")
        a = {k: session.unpack_array(r[k], (ne_,) if k.startswith(("energ", "dos")) else (nb_,), f"{cr.where}.{k}")
             for k in arrays}
        chain = {}
        specs = {"temperature": tunneling.TEMPERATURE, "tip_delta": tunneling.TIP_DELTA,
                 "tip_gamma": tunneling.TIP_GAMMA, "vmod_rms": tunneling.VMOD_RMS}
        for k, v in cr.at("chain").keys(r["chain"], CHAIN).items():
            try:
                chain[k] = specs[k].check(cr.at("chain").at(k).number(v))
            except ValueError as exc:
                raise cr.at("chain").at(k).fail(str(exc)) from None
        res = Deconvolution(energies=a["energies"], dos=a["dos"], dos_low=a["dos_low"], dos_high=a["dos_high"],
                            dos_error=a["dos_error"], lam=cr.at("lam").number(r["lam"], 0.0),
                            method=cr.at("method").choice(r["method"], ["gcv", "lcurve", "given"]),
                            noise=cr.at("noise").number(r["noise"], 0.0), scale=cr.at("scale").number(r["scale"], 0.0),
                            dof=cr.at("dof").number(r["dof"], 0.0), forward=a["forward"], residual=a["residual"],
                            bias=a["bias"], data=a["data"], elapsed=cr.at("elapsed").number(r["elapsed"], 0.0))
        return {"method": method, "result": res, "chain": chain}

    def restore_state(self, s: dict[str, Any]) -> None:
        self.method.value = s["method"]
        if s["result"] is None:
            self.reset()
        else:
            self.show(s["result"], s["chain"])
