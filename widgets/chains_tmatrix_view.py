"""The chains panel's T-matrix half (a mixin of :class:`~.chains_panel.ChainsPanel`): orbital channels, the YSR
energies and their t_R fan, the spectrum at the tip, the line profile or the map, on the continuum band or a lattice.

Compute only through the kernels (:mod:`gapscope.kernels.ysr`, :mod:`gapscope.kernels.tunneling`); the model is
built by :mod:`.chains_tmatrix` (continuum) and :mod:`.chains_lattice` (lattice substrates).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
from scipy.interpolate import CubicSpline

from gapscope.kernels import tunneling, ysr
from gapscope.kernels.ysr import geometry

from . import chains_lattice as cl
from . import chains_tmatrix as tm
from .colormap import colorbar_html, ticks, to_png
from .panel import Cancelled, PanelInputError, Task

__all__ = ["TMatrixPanelMixin", "MAX_TMATRIX_SITES", "FAN_BUDGET", "LDOS_BUDGET", "N_FAN_TR", "MIN_FAN_TR"]

CUSTOM_BOND = "custom (spacing slider)"


MAX_TMATRIX_SITES = 8
MIN_TMATRIX_GAMMA = 0.01          # meV
MAX_TMATRIX_ENERGIES = 20000
MAX_LDOS_ENERGIES = 3000
LDOS_CHUNK = 1.0                  # meV: the LDOS range is rounded out to multiples of it
N_X_TM = 41
N_FAN_TR = 13
MIN_FAN_TR = 5
#: fan points × N² of the T-matrix fan (each point a root search costing ~N²)
FAN_BUDGET = 360
#: LDOS energies × atoms of the T-matrix spectrum and line profile (t(z) per energy, map rows per atom)
LDOS_BUDGET = 10000
#: values the T-matrix energies do not depend on (besides t_R, the fan's variable)
_NOT_IN_ENERGIES = ("t_r", "x_tip", "y_tip", "bias", "v_max", "temperature", "tip_delta", "tip_gamma", "vmod_rms",
                    "gamma", "view", "fan", "channel", "alpha", "beta")


class TMatrixPanelMixin:
    """The T-matrix methods of the chains panel (its widgets, controls and caches are the panel's)."""

    def extra_values(self) -> dict[str, Any]:
        channels = dict(self.channels)        # the selected channel carries the sliders' α, β
        channels[self.channel.value] = (self.controls["alpha"].value, self.controls["beta"].value)
        return {"channels": channels}

    def set_extra(self, name: str, value: Any) -> None:
        if name != "channels":
            super().set_extra(name, value)
        chans = {str(k): (float(a), float(b)) for k, (a, b) in dict(value).items()}
        bad = [k for k in chans if k not in tm.CHANNEL_SHAPES]
        if bad or not chans:
            raise ValueError(f"channels must be a non-empty dict of {tm.CHANNEL_SHAPES} → (α, β), got {value!r}")
        with self.batch():
            self.channels = chans
            first = next(iter(chans))
            self._selecting = True
            try:
                self.channel.value = first
                self.controls["alpha"].value, self.controls["beta"].value = chans[first]
            finally:
                self._selecting = False

    def _coupling_changed(self, _: Any) -> None:
        if not getattr(self, "_selecting", False):
            self.channels[self.channel.value] = (self.controls["alpha"].value, self.controls["beta"].value)

    def _channel_selected(self, change: dict) -> None:
        if getattr(self, "_selecting", False):
            return
        self.channels[change["old"]] = (self.controls["alpha"].value, self.controls["beta"].value)
        a, b = self.channels.setdefault(change["new"], (0.0, 0.0))
        with self.batch():
            self._selecting = True
            try:
                self.controls["alpha"].value, self.controls["beta"].value = a, b
            finally:
                self._selecting = False

    @staticmethod
    def tmatrix_model(v: dict[str, Any], t_r: float | None = None) -> tuple[ysr.Substrate, list[ysr.Impurity],
                                                                             np.ndarray]:
        """Substrate, impurities and 2D positions (nm) of the T-matrix chain (t_R from ``v`` unless given)."""
        return tm.build(v, t_r=v["t_r"] if t_r is None else t_r, max_sites=MAX_TMATRIX_SITES,
                        custom_bond=CUSTOM_BOND)

    @staticmethod
    def _tm_energies(sub: ysr.Substrate, imps: list[ysr.Impurity]) -> np.ndarray:
        try:
            return ysr.energies(sub, imps)
        except (NotImplementedError, ImportError) as exc:
            raise PanelInputError(f"The T-matrix engine cannot solve this substrate yet (Rashba α_R = "
                                  f"{sub.rashba:g} meV·nm): {exc}") from None

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

        Each point is a root search whose cost grows as (N·c)² for c channels per atom (channel matrices of
        4Nc × 4Nc at ~20–90 energies): at most ``FAN_BUDGET / (N·c)²`` points (≥ ``MIN_FAN_TR``).  The fan ends at the
        spec's upper bound of t_R.
        """
        n = int(v["n"])
        c = len(tm.channel_list(v["channels"]))
        top = min(max(10.0, 1.3 * v["t_r"]), geometry.T_R.bounds[1])
        count = int(min(N_FAN_TR, max(MIN_FAN_TR, FAN_BUDGET // max((n * c) ** 2, 1))))
        note = ""
        if v["substrate"] != "continuum":
            top = min(max(1.0, 1.3 * v["t_r"]), geometry.T_R.bounds[1])
            count = cl.LATTICE_FAN_POINTS
            note = (f"On a lattice the t_R fan has {count} points: each builds a new k-mesh.")
        elif count < N_FAN_TR:
            what = f"N = {n} atoms" + (f" with {c} channels each" if c > 1 else "")
            note = (f"The t_R fan is coarsened to {count} points (not {N_FAN_TR}) for {what}: each point is a "
                    "root search whose cost grows as (N × channels)².")
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
        u, nrm = tm.chain_frame(pos)
        s_sites = pos @ u
        rc = tm.ORBITAL_RADIUS
        on_lattice = v["substrate"] != "continuum"
        as_map = v["view"] == "map" and not on_lattice
        task.progress(0.15, "spectrum at the tip" + ("" if as_map else " and line profile") + " …")
        Wt = self._weights(V, Eg, bare)
        Ec = np.linspace(lo, hi, n_c)
        tip = v["x_tip"] * u + v["y_tip"] * nrm
        if on_lattice:                          # sites: the tip's nearest, and every site of the chain's line
            out["notes"].extend(n if n.endswith(".") else n + "." for n in cl.substrate_notes(v, v["t_r"]))
            if v["view"] == "map":
                out["notes"].append("On a lattice substrate the chains panel draws the line profile along the chain "
                                    "(the lattice map is in the YSR dashboard).")
            tip_pt, line = cl.to_sites(sub, tip[None, :]), cl.line_sites(sub, pos)
            x = sub.cartesian(line) @ u
            out["tip_site"] = tip_pt[0]
            if hasattr(sub, "bandwidth"):
                cl.LatticeView.check_spectrum_cost(sub, Ec.size)
        else:
            x = np.linspace(s_sites.min() - 0.5, s_sites.max() + 0.5, N_X_TM)
            tip_pt = tip[None, :]
            line = x[:, None] * u[None, :]      # the line profile's points: fixed while the tip moves (cached maps)
        Lc = eng.ldos(np.vstack([tip_pt] + ([] if as_map else [line])), Ec, orbital_radius=rc)
        task.check()
        spline = CubicSpline(Ec, Lc, axis=1)
        G_all = spline(Eg) @ Wt.T
        if chain["vmod_rms"] > 0.0:
            G_all = np.array([tunneling.lockin(V, g, vmod_rms=chain["vmod_rms"]) for g in G_all])
        G, G_line = G_all[0], (None if as_map else G_all[1:])
        rho = spline(V)[0]
        self.finite("dI/dV", G, rho, *([] if as_map else [G_line]))
        if as_map:
            out.update(tm.compute_map(eng, v, pos, chain, self._map_memo, task))
            if out["map_note"]:
                out["notes"].append(out["map_note"])
        # the fan over t_R: what is memoised now, the rest in the background after the first draw (after_draw)
        trs, fan_note = self.fan_plan(v)
        if fan_note:
            out["notes"].append(fan_note)
        fx, fy, missing, _ = self._fan_points(v, trs, only_memo=True)
        split = float(E[1] - E[0]) if E.size >= 2 else None
        out.update(sub=sub, E=E, P=np.zeros(E.size, dtype=int), G=G, rho=rho, x=x, profile=G_line, sites=s_sites,
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


    def _draw_map(self, r: dict[str, Any]) -> None:
        """The T-matrix map in the chain's frame (x along, y across the chain), the atoms and the tip."""
        v, M, L, cs = r["values"], r["map"], r["map_L"], r["map_centre"]
        old = self.map_image.image
        if M is None:
            self.map_image.image = w.Image(value=to_png(np.zeros((2, 2))), format="png")
            self.map_colorbar.value = ""
        else:
            lo, hi = np.percentile(M, [1.0, 99.0])     # robust colours: the on-site peaks do not wash out the rest
            self.map_image.image = w.Image(value=to_png(M, lo, hi), format="png")
            self.map_colorbar.value = colorbar_html(float(lo), float(hi),
                                                    "dI/dV (normalised; 1st–99th percentile)")
        old.close()
        mx, my = self.map_scales
        self.map_image.x, self.map_image.y = [cs - L, cs + L], [-L, L]
        mx.min, mx.max = cs - L, cs + L
        my.min, my.max = -L, L
        self.map_axes[0].tick_values = np.array(ticks(cs - L, cs + L))
        self.map_axes[1].tick_values = np.array(ticks(-L, L))
        self.map_atoms.x, self.map_atoms.y = r["sites"], np.zeros(len(r["sites"]))
        self.map_tip.x, self.map_tip.y = [v["x_tip"]], [v["y_tip"]]
        self.fig_map.title = f"dI/dV map at {r['map_bias']:+.3f} mV (click: move tip)"
