"""The Shiba panel's lattice substrate: tight-binding lattices through :mod:`gapscope.kernels.ysr.lattice`.

A small view the :class:`~.shiba_panel.ShibaPanel` composes: its parameters (t, μ, t_R, the
impurity's exchange J and potential K in meV, the k-mesh, the map's half-width in lattice
constants), the pure ``compute`` of a lattice result (spectrum at the tip site through the
tunnelling chain, the map on lattice sites, the YSR energies and E(α) with α = πN₀J), and
``draw`` onto the panel's marks.  All physics is the kernels'; here are only geometry (which
site is nearest to a point) and caching of the slow k-mesh: a t, μ, Δ, t_R or Γ change builds a
new :class:`lattice.Substrate` (its k-mesh, about a second, in the background), a J or K change
reuses it through :meth:`lattice.Engine.update`.

Positions on a lattice are in units of the lattice constant a (the tip box and the map axes).
"""

from __future__ import annotations

import html
import warnings
from collections import OrderedDict
from typing import Any

import ipywidgets as w
import numpy as np

from gapscope.kernels import tunneling
from gapscope.kernels.specs import Spec
from gapscope.kernels.ysr import lattice

from .colormap import colorbar_html, ticks, to_png
from .panel import PanelInputError, Task
from .params import param

__all__ = ["LatticeView", "LATTICE_PARAMS", "SUBSTRATES", "NK", "MAP_SITES", "nearest_sites", "map_weights"]

#: largest k-mesh per direction built for a browser user (without / with Rashba): a 1458² mesh with t_R took
#: 33 s of processor time per change, past what one page may take of a shared server
MESH_CAP = 512
MESH_CAP_RASHBA = 256
#: largest binned k-sum of a lattice spectrum (energies × pole bins; the default 1225 × 5.9e4 takes seconds,
#: 24911 × 3.4e4 asked for 12.5 GiB) and largest number of pole bins
SPECTRUM_WORK = 2e8
MAX_BINS = 2e6

# panel-only quantities (what is shown or how finely, not a kernel keyword)
NK = Spec("nk", "n_k", "", 0, (0, 2048), (0, 2048), 2,
          "lattice k-mesh per direction (0: chosen from the criterion (2π/n)·v < Γ)", integer=True)
MAP_SITES = Spec("map_sites", "L_a", "", 8.0, (2.0, 20.0), (1.0, 40.0), 0.5,
                 "half-width of the lattice map, in lattice constants a")

LATTICE_PARAMS = (
    param(lattice.T_HOP, live=False, default=3.0, soft=(0.5, 20.0)),
    param(lattice.MU, live=False, default=-3.0, soft=(-20.0, 20.0)),
    param(lattice.T_RASHBA, live=False),
    param(lattice.EXCHANGE, default=4.5),
    param(lattice.POTENTIAL),
    param(NK, live=False),
    param(MAP_SITES, live=False),
)
LATTICE_NAMES = tuple(p.name for p in LATTICE_PARAMS)
#: the Shiba panel's parameters that mean nothing on a lattice (the continuum band, the orbital channels)
CONTINUUM_ONLY = ("alpha", "beta", "kf", "hbar_vf", "orbital_radius", "tip_height", "map_size")

#: "Substrate" choices: label → lattice kind (None: the continuum)
SUBSTRATES: tuple[tuple[str, str], ...] = (("continuum (parabolic band)", "continuum"),
                                           ("lattice: square", "square"),
                                           ("lattice: triangular", "triangular"),
                                           ("lattice: bcc(110)", "bcc110"))
#: pixels of the drawn map (each pixel shows its nearest lattice site)
MAP_PIXELS = 96
#: spin of the impurity
SPIN = (0.0, 0.0, 1.0)
#: points of the E(α) curve
CURVE_POINTS = 9
#: largest map work in k-points × FFTs of the k-mesh (lattice.Engine.map_cost; ~35 ns each on one core: ≈ 5 s)
MAP_FFT_BUDGET = 1.5e8


def map_weights(bias: float, chain: dict[str, float], sample_gamma: float, budget: float
                ) -> tuple[np.ndarray, np.ndarray, str]:
    """A map's energies and tunnelling weights at ``bias`` (the measurement chain's, or the identity when the
    chain is: T = 0, no lock-in, a normal tip), or no weight and a note when they alone would cost more than
    ``budget`` evaluations (estimated before computing: a fine energy step over a wide range)."""
    if chain["temperature"] == 0.0 and chain["vmod_rms"] == 0.0 and chain["tip_delta"] == 0.0:
        return np.array([bias]), np.ones(1), ""                  # G(V) = ρ(V)
    E = tunneling.energy_grid(np.array([bias]), sample_gamma=sample_gamma, **chain)
    work = tunneling.didv_weights_cost(np.array([bias]), E, tip_delta=chain["tip_delta"], vmod_rms=chain["vmod_rms"])
    if work > budget:
        return np.array([bias]), np.zeros(1), (
            f"The map is not drawn: its tunnelling weights alone would take {work:.2g} evaluations ({E.size} energies "
            f"of step {E[1] - E[0]:.2g} meV, set by Γ = {sample_gamma:.2g} meV and the tip, over V_map = {bias:+g} mV "
            f"± V_mod = {chain['vmod_rms']:g} mV and T). Raise Γ, lower V_mod or |V_map|; the spectrum is exact.")
    return E, tunneling.didv_weights(np.array([bias]), E, **chain)[0], ""


def nearest_sites(vectors: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Integer sites (P, 2) nearest to Cartesian ``points`` (P, 2) for primitive ``vectors`` (rows a₁, a₂).

    Geometry only: the nearest of the 5×5 sites around the rounded fractional coordinates.
    """
    A = np.asarray(vectors, dtype=float)
    p = np.atleast_2d(np.asarray(points, dtype=float))
    f = np.round(p @ np.linalg.inv(A))
    off = np.array([(i, j) for i in range(-2, 3) for j in range(-2, 3)], dtype=float)
    cand = f[:, None, :] + off[None, :, :]                          # (P, 25, 2)
    d2 = np.sum((cand @ A - p[:, None, :]) ** 2, axis=-1)
    best = cand[np.arange(p.shape[0]), np.argmin(d2, axis=1)]
    return best.astype(np.int64)


class LatticeView:
    """The lattice half of the Shiba panel: compute (pure, no widgets) and draw onto the panel's marks."""

    def __init__(self) -> None:
        self.engine: lattice.Engine | None = None
        self._subs: OrderedDict[tuple, tuple[lattice.Substrate, lattice.Substrate, list[str]]] = OrderedDict()
        self.map_engine: lattice.Engine | None = None
        self._curve_memo: tuple[tuple, tuple[np.ndarray, np.ndarray]] | None = None
        self._map_memo: tuple[tuple, np.ndarray] | None = None
        self._states_memo: tuple[tuple, np.ndarray] | None = None

    # ------------------------------------------------------------------ model
    @staticmethod
    def gamma(v: dict[str, Any]) -> float:
        """Γ of the lattice's G₀ (meV): the slider's, or 10⁻³Δ at Γ = 0 (as the continuum)."""
        return v["gamma"] if v["gamma"] > 0 else 1e-3 * v["delta"]

    def substrate(self, v: dict[str, Any], task: Task | None = None, *, onsite: bool = True
                  ) -> tuple[lattice.Substrate, lattice.Substrate, list[str]]:
        """The lattice substrates for the values and their warnings (cached: their k-meshes are the slow part).

        Two roles: the on-site substrate (spectrum at the impurity, YSR energies, E(α)) and the map's
        (k-mesh FFTs, spectra away from the impurity).  With n_k = 0 the on-site one is ``nk=None``,
        converged by the triangle route whatever the criterion asks for; the map's is the same object
        unless the criterion's mesh exceeds the server's cap, then a capped torus.  A set n_k is one
        torus for both, and so is ``onsite=False`` (several impurities: everything needs the mesh).
        """
        key = (v["substrate"], v["t"], v["mu"], v["delta"], v["rashba"], self.gamma(v), int(v["nk"]), onsite)
        if key in self._subs:
            self._subs.move_to_end(key)
            return self._subs[key]
        if task is not None:
            task.progress(0.05, "lattice substrate …")
        args = dict(t=v["t"], mu=v["mu"], delta=v["delta"], rashba=v["rashba"], gamma=self.gamma(v))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)     # a probe: its mesh is never built
            probe = lattice.Substrate(v["substrate"], **args, nk=8)
        wanted = int(v["nk"]) or max(lattice.required_nk(probe.velocity.tolist(), probe.gamma, probe.delta))
        wanted += wanted % 2
        cap = self.mesh_cap(v)
        capped = wanted > cap
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            torus = bool(int(v["nk"])) or (capped and not onsite)
            sub = lattice.Substrate(v["substrate"], **args, nk=min(wanted, cap) if torus else None)
            _ = sub.n0                                   # N₀ (ValueError if μ is outside the band)
            map_sub = sub.with_mesh(cap) if capped and not torus else sub
        notes = [str(c.message) for c in caught if issubclass(c.category, UserWarning) and not capped]
        if capped:                          # (with the on-site route: what is converged, LatticeView.route_note)
            notes = [f"k-mesh capped at {cap}×{cap} on this server ({wanted}×{wanted} asked for"
                     f"{'' if int(v['nk']) else ' by the convergence criterion'})"
                     + (f": results are those of a {cap}×{cap} torus; raise Γ (or lower t) for converged results."
                        if map_sub is sub else ".")]
        self._subs[key] = (sub, map_sub, notes)
        while len(self._subs) > 3:
            self._subs.popitem(last=False)
        return sub, map_sub, notes

    @staticmethod
    def route_note(sub: lattice.Substrate, map_sub: lattice.Substrate, *, off_site: bool, map_converged: bool | None
                   ) -> list[str]:
        """With a capped map torus beside the on-site route: what is the infinite lattice's and what the torus's
        (``map_converged`` None: the map is not known yet, or not drawn)."""
        if map_sub is sub:
            return []
        cap = f"{map_sub.nk[0]}×{map_sub.nk[1]}"
        parts = ["The spectrum at the impurity and the YSR energies are converged (linear triangles)"]
        if off_site:
            parts.append(f"the spectrum away from the impurity is that of the {cap} torus")
        if map_converged is not None:
            parts.append("the map is converged too (every map energy's own torus fits within the cap)"
                         if map_converged else
                         f"the map is that of the {cap} torus; raise Γ (or lower t) for a converged map")
        return ["; ".join(parts) + "."]

    @staticmethod
    def check_spectrum_cost(sub: lattice.Substrate, n_energies: int) -> None:
        """Refuse, before computing, a spectrum whose binned k-sum (energies × pole bins) exceeds
        :data:`SPECTRUM_WORK` or needs more than :data:`MAX_BINS` bins (the bin width follows Γ and Δ)."""
        bins = sub.bandwidth / sub.bin_width
        work = n_energies * min(bins, 2.0 * float(np.prod(sub.nk)))
        if not (bins <= MAX_BINS and work <= SPECTRUM_WORK):
            raise PanelInputError(
                f"The lattice spectrum is not computed: {n_energies} energies (set by V_max, T, V_mod and the tip) "
                f"× {bins:.3g} pole bins (bandwidth {sub.bandwidth:.3g} meV over bins of {sub.bin_width:.3g} meV, "
                f"set by Γ and Δ) is {work:.3g} terms, more than the server's {SPECTRUM_WORK:.0e}. "
                "Raise Γ or Δ, or lower T, V_max or V_mod.")

    @staticmethod
    def mesh_cap(v: dict[str, Any]) -> int:
        """Largest k-mesh per direction the server builds: its work grows as n² (and 4× with the spin-mixing
        Rashba term), so one change stays within seconds of processor time."""
        return MESH_CAP_RASHBA if v["rashba"] != 0 else MESH_CAP

    @staticmethod
    def impurities(v: dict[str, Any], exchange: float | None = None) -> list[lattice.Impurity]:
        ex = v["exchange"] if exchange is None else exchange
        return [lattice.Impurity(site=(0, 0), spin=SPIN,
                                 channels=[lattice.Channel(0, exchange=ex, potential=v["potential"])])]

    # ------------------------------------------------------------------ compute (pure: kernels only)
    def compute(self, v: dict[str, Any], task: Task | None, *, views: dict, map_bias: Any,
                weights_budget: float, map_budget: float) -> dict[str, Any]:
        """The lattice result, in two stages: the spectrum at the tip first (published to the panel through
        ``task.publish``, ``pending`` with ``states`` None, unless all the rest is cached), then the YSR
        energies, the map and the E(α) curve."""
        sub, map_sub, notes = self.substrate(v, task)
        imps = self.impurities(v)
        self.engine = lattice.Engine(sub, imps) if self.engine is None else self.engine.update(sub, imps)
        if map_sub is sub:
            self.map_engine = self.engine
        elif self.map_engine is None or self.map_engine is self.engine:
            self.map_engine = lattice.Engine(map_sub, imps)
        else:
            self.map_engine = self.map_engine.update(map_sub, imps)
        part, spin_axis = views[v["view"]]
        tip_delta = v["tip_delta"] if v["tip"] == "superconducting" else 0.0
        chain = dict(temperature=v["temperature"], tip_delta=tip_delta, tip_gamma=v["tip_gamma"],
                     vmod_rms=v["vmod_rms"])
        # spectrum at the tip site through the measurement chain (on-site: the triangle route; else the mesh)
        if task is not None:
            task.progress(0.2, "spectrum at the tip site …")
        tip_site = nearest_sites(sub.vectors, np.array([v["tip_position"]]))[0]
        spec_sub, spec_eng = (sub, self.engine) if not np.any(tip_site) else (map_sub, self.map_engine)
        V = np.linspace(-v["v_max"], v["v_max"], 600)
        self.check_spectrum_cost(spec_sub, tunneling.energy_grid(V, sample_gamma=spec_sub.gamma, **chain).size)
        rho = spec_eng.sample_dos(tuple(int(x) for x in tip_site), part=part, spin_axis=spin_axis)
        G = tunneling.didv(V, sample_dos=rho, **chain)
        R = rho(V)
        if not (np.all(np.isfinite(G)) and np.all(np.isfinite(R))):
            raise PanelInputError("dI/dV is not finite for these parameters; the plots were not updated")
        pi_n0 = float(np.pi * sub.n0)
        L = float(v["map_sites"])
        out = {"lattice": True, "values": dict(v), "sub": spec_sub, "map_sub": map_sub, "tip_delta": tip_delta,
               "V": V, "G": G, "R": R, "M": None, "L": L, "map_note": "", "bias": None,
               "notes": notes + self.route_note(sub, map_sub, off_site=bool(np.any(tip_site)), map_converged=None),
               "states": None, "tip_site": tip_site, "tip_xy": sub.cartesian(tip_site[None])[0], "pi_n0": pi_n0,
               "curve_alpha": np.zeros(0), "curve_e": np.zeros(0), "pending": False}

        # the YSR energies (and the map's bias when it follows a state)
        skey = (id(sub._shared), v["exchange"], v["potential"])
        mkey0 = (id(map_sub._shared), v["exchange"], v["potential"])
        ckey = (id(sub._shared), v["potential"])
        done = (self._states_memo is not None and self._states_memo[0] == skey
                and self._map_memo is not None and self._map_memo[0][1:3] == mkey0[1:]
                and self._map_memo[0][0] in (id(sub._shared), id(map_sub._shared))
                and self._curve_memo is not None and self._curve_memo[0] == ckey)
        published = task is not None and not done
        if published:
            assert task is not None
            task.publish(dict(out, pending=True, bias=None if v["map_state"] else float(v["bias"])))
            task.progress(0.35, "YSR energies …")

        def rest() -> dict[str, Any]:
            if self._states_memo is None or self._states_memo[0] != skey:
                self._states_memo = (skey, lattice.energies(sub, imps))
            states = out["states"] = self._states_memo[1]
            bias = out["bias"] = map_bias(v["map_state"], states, tip_delta) if v["map_state"] else float(v["bias"])

            # map on the sites nearest to each pixel of [−L, L]² (units of a)
            x = np.linspace(-L, L, MAP_PIXELS)
            X, Y = np.meshgrid(x, x[::-1])
            pix = nearest_sites(sub.vectors, np.c_[X.ravel(), Y.ravel()])
            sites, inverse = np.unique(pix, axis=0, return_inverse=True)
            E, Wt, map_note = map_weights(bias, chain, map_sub.gamma, weights_budget)
            # each lattice map energy costs FFTs of the k-mesh: a looser total (error ≤ 1e-6·Σ|w|·max ρ)
            keep = tunneling.significant_weights(Wt, tolerance=1e-6)
            # the map on the capped torus, unless every map energy's own torus (Substrate.decay_nk: in the gap G₀
            # decays within a few coherence lengths) fits within the cap: then the infinite lattice's map
            meng, map_mesh, map_converged = self.map_engine, map_sub.nk, map_sub is sub and sub.auto_mesh
            if map_sub is not sub and sub.auto_mesh and np.any(keep):
                zs = E[keep] + 1j * sub.gamma
                disp = np.unique(np.concatenate([sites, -sites]), axis=0)           # (the impurity at 0)
                need = sub.decay_nk(zs, disp)
                if int(need.max()) <= self.mesh_cap(v) and sub.fft_route(zs, disp):
                    meng, map_mesh, map_converged = self.engine, tuple(int(n) for n in need.max(axis=0)), True
            if not map_note:                  # estimated before computing: never let one map take the machine
                n_keep = int(keep.sum())
                mem, ffts = meng.map_cost(sites.shape[0], n_keep, part=part)
                work = ffts * float(np.prod(map_mesh))
                if mem > map_budget or work > MAP_FFT_BUDGET:
                    map_note = (f"The map is not drawn: its {n_keep} energies (set by Γ, T and the tip) would need "
                                f"{mem / 2 ** 30:.2g} GB and {ffts:.3g} FFTs of the {map_mesh[0]}×{map_mesh[1]} "
                                f"k-mesh (≈ {work * 3.5e-8:.0f} s). Use a normal tip, raise Γ or T, or set a smaller "
                                "k-mesh n_k; the spectrum is exact.")
            mkey = (id(meng.substrate._shared),) + mkey0[1:] + (E.tobytes(), Wt.tobytes(), part, spin_axis, L)
            out["map_mesh"], out["map_converged"] = map_mesh, map_converged
            out["notes"] = notes + self.route_note(sub, map_sub, off_site=bool(np.any(tip_site)),
                                                   map_converged=None if map_note else map_converged)
            if task is not None:
                task.progress(0.5, "map …")
            M: np.ndarray | None = None
            if not map_note:
                if self._map_memo is not None and self._map_memo[0] == mkey:
                    M = self._map_memo[1]
                else:
                    vals = meng.weighted_map(sites, E[keep], Wt[keep], part=part, spin_axis=spin_axis, prune=0.0)
                    M = np.asarray(vals, dtype=float)[inverse.ravel()].reshape(MAP_PIXELS, MAP_PIXELS)
                    if not np.all(np.isfinite(M)):
                        raise PanelInputError("the map is not finite for these parameters")
                    self._map_memo = (mkey, M)
            if task is not None:
                task.progress(0.7, "E(α) …")

            # |E| against α = πN₀J for this K (cached per substrate and K): the YSR energy as J moves
            if self._curve_memo is None or self._curve_memo[0] != ckey:
                js = np.linspace(0.0, max(2.0 / pi_n0, 1.5 * abs(v["exchange"])), CURVE_POINTS)
                xs, es = [], []
                for j in js:
                    if task is not None:
                        task.check()
                    e = lattice.energies(sub, self.impurities(v, exchange=float(j)))
                    if e.size:
                        xs.append(pi_n0 * j)
                        es.append(float(e[0]))
                self._curve_memo = (ckey, (np.array(xs), np.array(es)))
            assert self._curve_memo is not None
            ax, ae = self._curve_memo[1]
            return dict(out, M=M, map_note=map_note, curve_alpha=ax, curve_e=ae)

        if not published:
            return rest()
        try:
            return rest()
        except ValueError as exc:         # (PanelInputError too) the drawn spectrum stays, with what went wrong
            return dict(out, pending=False, M=None, bias=float(v["bias"]) if out["bias"] is None else out["bias"],
                        error=f"Only the spectrum was computed: {exc}")

    # ------------------------------------------------------------------ draw (onto the panel's marks)
    @staticmethod
    def restore(panel: Any) -> None:
        """Labels of the continuum (after a lattice draw)."""
        panel.map_axes[0].label, panel.map_axes[1].label = "x (nm)", "y (nm)"
        panel.fig_e0.title = "E₀(α): signed YSR energy"
        panel.qpt_rule.visible = True
        panel.tip_box.description = "Tip at (nm)"

    @staticmethod
    def draw(panel: Any, r: dict[str, Any]) -> None:
        V, G, R, M, L = r["V"], r["G"], r["R"], r["M"], r["L"]
        panel.line_didv.x, panel.line_didv.y = V, G
        panel.line_ldos.x, panel.line_ldos.y = V, R
        top, bottom = float(max(G.max(), R.max())), float(min(G.min(), R.min(), 0.0))
        if r["bias"] is not None:                     # (None while a staged result waits for its YSR states)
            panel.bias_rule.x, panel.bias_rule.y = [r["bias"], r["bias"]], [bottom, top]
        pending = r["pending"] and M is None and not r["map_note"]
        if not pending:                   # (a staged result keeps the last map on screen until its own arrives)
            old = panel.map_image.image
            if M is None:
                panel.map_image.image = w.Image(value=to_png(np.zeros((2, 2))), format="png")
            else:
                lo, hi = np.percentile(M, [1.0, 99.0])
                panel.map_image.image = w.Image(value=to_png(M, lo, hi), format="png")
                panel.colorbar.value = colorbar_html(float(lo), float(hi), "dI/dV (normalised; 1st–99th percentile)")
            old.close()
        panel.map_image.x, panel.map_image.y = [-L, L], [-L, L]
        for s in panel.map_scales:
            s.min, s.max = -L, L
        for a in panel.map_axes:
            a.tick_values = np.array(ticks(-L, L))
        panel.map_axes[0].label, panel.map_axes[1].label = "x (a)", "y (a)"
        panel.fig_map.title = ("dI/dV on lattice sites: computing the map for the new values …" if pending
                               else f"dI/dV on lattice sites at {r['bias']:+.3f} mV (click: move tip)")
        panel.imp_marks.x, panel.imp_marks.y = [0.0], [0.0]
        tx, ty = (float(c) for c in r["tip_xy"])
        panel.tip_mark.x, panel.tip_mark.y = [tx], [ty]
        panel.tip_box.description = "Tip at (a)"
        ax, ae = r["curve_alpha"], r["curve_e"]
        if ax.size:
            panel.line_e0.x, panel.line_e0.y = ax, np.vstack([ae, -ae])
        elif not r["pending"]:
            panel.line_e0.x, panel.line_e0.y = [0.0], np.zeros((2, 1))
        panel.qpt_rule.visible = False
        v = r["values"]
        if r["states"] is not None:
            e_now = float(r["states"][0]) if len(r["states"]) else float(v["delta"])
            panel.dot_e0.x, panel.dot_e0.y = [r["pi_n0"] * v["exchange"]], [e_now]
        panel.fig_e0.title = "lattice: |E| of the YSR state against α = πN₀J"
        panel.map_data = None if pending else M
        panel.curves = {"bias_mV": V, "didv": G, "ldos": R}
        LatticeView.readout(panel, r)

    @staticmethod
    def readout(panel: Any, r: dict[str, Any]) -> None:
        v, sub = r["values"], r["sub"]
        states = (("computing …" if r["pending"] else "not computed") if r["states"] is None
                  else ", ".join(f"{n}: {e:.4f}" for n, e in enumerate(r["states"], start=1)) or "none")
        n1, n2 = (int(c) for c in r["tip_site"])
        tx, ty = (float(c) for c in r["tip_xy"])
        rows = [("lattice", f"{sub.kind}, t = {v['t']:g} meV, μ = {v['mu']:g} meV, t_R = {v['rashba']:g} meV, "
                            f"Δ = {v['delta']:g} meV, Γ = {sub.gamma:g} meV; " + LatticeView.route(r)),
                ("N₀", f"{sub.n0:.4g} /meV per spin per site"),
                ("impurity", f"J = {v['exchange']:g} meV (α = πN₀J = {r['pi_n0'] * v['exchange']:.4g}), "
                             f"K = {v['potential']:g} meV (β = πN₀K = {r['pi_n0'] * v['potential']:.4g}), spin ∥ z"),
                ("YSR states |E_n| (meV)", states),
                ("map at", "computing …" if r["bias"] is None else
                 f"{r['bias']:+.3f} mV" + (f" (state {abs(v['map_state'])})" if v["map_state"] else "")),
                ("tip at", f"site ({n1}, {n2}) = ({tx:.3f}, {ty:.3f}) a"),
                ("map range", f"{r['M'].min():.3g} … {r['M'].max():.3g}" if r["M"] is not None
                 else "computing …" if r["pending"] and not r["map_note"] else "no map")]
        panel.readout.value = ("<table style='font-size:0.9em'>" + "".join(
            f"<tr><td>{a}</td><td class='gs-ro-{i}'>{html.escape(b)}</td></tr>" for i, (a, b) in enumerate(rows))
            + "</table>")
        notes = [n for n in [r.get("error", ""), r["map_note"], *r["notes"]] if n]
        if v["gamma"] == 0.0:
            notes.append(f"Γ = 0: drawn with Γ = {sub.gamma:.2g} meV.")
        if notes:                         # (an error: bad input for the map or the states, the spectrum is drawn)
            panel.show_message(" ".join(notes), level="error" if r.get("error") else "warning")

    @staticmethod
    def route(r: dict[str, Any]) -> str:
        """How the shown results were computed: the on-site triangle route and the map's k-mesh (a torus)."""
        sub, mm = r["sub"], r.get("map_mesh", r["map_sub"].nk)
        mesh = f"k-mesh {mm[0]}×{mm[1]}" + (" (converged)" if r.get("map_converged") else "")
        if sub.triangles:
            return f"spectrum by linear triangles ({sub.triangle_nk}² mesh), map on the {mesh}"
        return mesh

    @staticmethod
    def map_csv(panel: Any) -> str:
        """The drawn lattice map (rows from the top; each pixel its nearest site's value), x, y in units of a."""
        M, r = panel.map_data, panel.result
        L = r["L"]
        x = np.linspace(-L, L, M.shape[1])
        y = np.linspace(L, -L, M.shape[0])
        head = panel._parameters_text() + f"# bias_mV = {r['bias']}\n# lattice map: x, y in lattice constants a\n"
        lines = ["y_a \\ x_a," + ",".join(f"{v:.6g}" for v in x)]
        lines += [f"{yy:.6g}," + ",".join(f"{v:.6g}" for v in row) for yy, row in zip(y, M, strict=True)]
        return head + "\n".join(lines) + "\n"

    @staticmethod
    def enable(panel: Any) -> None:
        """Grey out what the chosen substrate does not use."""
        on_lattice = panel.extras["substrate"].value != "continuum"
        for name in LATTICE_NAMES:
            panel.controls[name].disabled = not on_lattice
        for name in CONTINUUM_ONLY:
            panel.controls[name].disabled = on_lattice or (name == "tip_height" and panel.dim.value != 3)
        panel.channel.disabled = on_lattice
