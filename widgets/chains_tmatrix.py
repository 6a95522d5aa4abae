"""The chains panel's T-matrix model: geometry, orbital channels, spin textures and the dI/dV map at a bias.

No physics here: the chain is built from :mod:`gapscope.kernels.ysr.geometry` (Nb(110) bonds or a
line, spin textures) and solved by :mod:`gapscope.kernels.ysr`; this module only chooses the
frame of the chain (its direction û and the in-plane normal n̂ = ẑ × û), the spin axis in that
frame, and the pixels of the map, within the Shiba panel's memory and time budgets (reused from
:mod:`.shiba_panel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gapscope.kernels import tunneling, ysr
from gapscope.kernels.specs import Spec
from gapscope.kernels.ysr import geometry

from .panel import PanelInputError, Task
from .shiba_panel import MIN_PIXELS, SHAPE_OPTIONS, WEIGHTS_BUDGET, affordable_pixels

__all__ = ["SPIN_AXES", "SpinAxis", "CHANNEL_SHAPES", "LOWER_VIEWS", "BIAS", "TIP_Y", "MAP_PIXELS", "MAP_MARGIN",
           "ORBITAL_RADIUS", "MAX_CHANNEL_SITES", "chain_frame", "build", "channel_list", "map_frame", "compute_map"]

#: the orbital channels a chain atom may carry (the Shiba panel's choices)
CHANNEL_SHAPES = SHAPE_OPTIONS
#: what the lower-left figure shows for the T-matrix model
LOWER_VIEWS = ("line profile", "map")
BIAS = Spec("bias", "V_map", "mV", 2.2, (-4.0, 4.0), (-50.0, 50.0), 0.01, "bias of the dI/dV map (T-matrix)")
TIP_Y = Spec("y_tip", "y_tip", "nm", 0.0, (-1.5, 1.5), (-50.0, 50.0), 0.01,
             "tip position across the chain (T-matrix map; 0: on the chain's axis)")
MAP_PIXELS = 64
MAP_MARGIN = 0.8                 # nm around the outermost atoms
#: atoms × orbital channels of the continuum T-matrix chain (a root search at 16 costs ≈ 3 s of processor time)
MAX_CHANNEL_SITES = 12
ORBITAL_RADIUS = 0.1             # nm: orbital radius of the map propagators (as the Shiba panel's presets)


@dataclass(frozen=True)
class SpinAxis:
    """A spin axis â in the chain's frame: â = a_u û + a_n n̂ + a_z ẑ; a spiral turns â about ``turn``."""

    along: float
    across: float
    up: float
    turn: tuple[float, float, float]     # (u, n, z) components of the spiral's rotation axis

    def vector(self, u: np.ndarray) -> np.ndarray:
        n = np.array([-u[1], u[0]])
        return np.array([self.along * u[0] + self.across * n[0], self.along * u[1] + self.across * n[1], self.up])

    def rotation(self, u: np.ndarray) -> np.ndarray:
        n = np.array([-u[1], u[0]])
        a, b, c = self.turn
        return np.array([a * u[0] + b * n[0], a * u[1] + b * n[1], c])


#: spin-axis choices: out of plane, in plane along the chain, in plane across it (P. Beck et al., "Spin-orbit
#: coupling induced splitting of Yu-Shiba-Rusinov states in antiferromagnetic dimers", Nat. Commun. 12, 2040
#: (2021), doi:10.1038/s41467-021-22261-6: AFM spins in plane ⊥ a mirror-symmetric bond stay degenerate with
#: SOC); a spiral turns in the plane of â and û
#: (cycloid) or, for â across the chain, about ẑ
SPIN_AXES: dict[str, SpinAxis] = {
    "out of plane (z)": SpinAxis(0.0, 0.0, 1.0, (0.0, 1.0, 0.0)),
    "in plane ∥ chain": SpinAxis(1.0, 0.0, 0.0, (0.0, 1.0, 0.0)),
    "in plane ⊥ chain": SpinAxis(0.0, 1.0, 0.0, (0.0, 0.0, 1.0)),
}


def chain_frame(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors û (first to last atom; x̂ for one atom) and n̂ = ẑ × û of the chain, 2D."""
    d = pos[-1] - pos[0] if len(pos) > 1 else np.array([1.0, 0.0])
    u = d / np.linalg.norm(d)
    return u, np.array([-u[1], u[0]])


def channel_list(channels: dict[str, tuple[float, float]]) -> list[ysr.Channel]:
    """The channels with a coupling (α or β ≠ 0), an s channel (0, 0) if none."""
    out = [ysr.Channel(shape, float(a), float(b)) for shape, (a, b) in channels.items() if a or b]
    return out or [ysr.Channel("s", 0.0, 0.0)]


def build(v: dict[str, Any], *, t_r: float, max_sites: int, custom_bond: str
          ) -> tuple[ysr.Substrate, list[ysr.Impurity], np.ndarray]:
    """Substrate, impurities and 2D positions of the T-matrix chain at Rashba t_R (meV).

    Continuum: positions in nm (a Nb(110) bond or the spacing slider), α_R = 2 t_R a.  Lattice
    (``v["substrate"]`` a lattice kind): sites along a₁ (:mod:`.chains_lattice`), positions in units of a,
    t_R the lattice's nearest-neighbour Rashba hopping.
    """
    n = int(v["n"])
    if v["substrate"] != "continuum":          # a lattice: the atoms on sites along a₁ (units of a)
        from . import chains_lattice
        sub_l, imps_l, pos_l, _ = chains_lattice.build(v, t_r=t_r, spin_axis=SPIN_AXES[v["axis"]])
        return sub_l, imps_l, pos_l  # type: ignore[return-value]
    if n > max_sites:
        raise PanelInputError(f"The T-matrix model takes up to {max_sites} atoms here (N = {n}); use "
                              "the LCAO or extended model for longer chains.")
    if v["bond"] != custom_bond:
        pos = geometry.nb110_chain(n, bond=v["bond"])
    else:
        pos = geometry.line(n, spacing=v["spacing"])
    u, _ = chain_frame(pos)
    ax = SPIN_AXES[v["axis"]]
    spiral = v["texture"] == "spiral"
    spins = geometry.spin_texture(pos, texture=v["texture"], axis=ax.vector(u),
                                  pitch=v["pitch"] if spiral else None, rotation_axis=ax.rotation(u))
    chans = channel_list(v["channels"])
    if n * len(chans) > MAX_CHANNEL_SITES:
        raise PanelInputError(f"{n} atoms × {len(chans)} orbital channels = {n * len(chans)} channel sites: the "
                              f"T-matrix chain takes up to {MAX_CHANNEL_SITES} here (each YSR root search grows as "
                              "their square); take fewer atoms or channels.")
    imps = geometry.impurities(pos, spins, chans)
    alpha_r = geometry.alpha_r_from_t_r(t_r)
    try:
        sub = ysr.Substrate(dim=2, kf=v["kf"], hbar_vf=v["hbar_vf"], delta=v["delta"], gamma=v["gamma"],
                            rashba=alpha_r)
    except ValueError as exc:
        if alpha_r == 0.0 or "rashba" not in str(exc).lower():
            raise
        raise PanelInputError(f"Rashba SOC is not available for t_R = {t_r:g} meV: {exc}") from None
    return sub, imps, pos


def map_frame(pos: np.ndarray) -> tuple[float, float]:
    """Centre (along û, nm) and half-width L (nm) of the square map around the chain."""
    u, _ = chain_frame(pos)
    s = pos @ u
    return float(0.5 * (s.min() + s.max())), float(max(0.5 * (s.max() - s.min()) + MAP_MARGIN, 1.0))


def compute_map(eng: ysr.Engine, v: dict[str, Any], pos: np.ndarray, chain: dict[str, float],
                memo: dict[str, Any], task: Task | None = None) -> dict[str, Any]:
    """The dI/dV map at the bias V_map around the chain, in the chain's frame (rows from the top: +n̂).

    Σ_j w_j ρ(r, E_j) with the tunnelling chain's weights w_j at V_map (:func:`tunneling.didv_weights`),
    through :meth:`ysr.Engine.weighted_map`; the pixels are halved from :data:`MAP_PIXELS` until the
    engine's estimate (:meth:`ysr.Engine.map_cost`) fits the Shiba panel's budgets, or the map is refused
    with a note.  ``memo`` keeps the last map (a tip move reuses it).  Returns M (or None), L, the
    centre, the pixels and a note.
    """
    sub = eng.substrate
    bias = float(v["bias"])
    u, nrm = chain_frame(pos)
    cs, L = map_frame(pos)
    note = ""
    E = tunneling.energy_grid(np.array([bias]), sample_gamma=sub.gamma, **chain)
    work = tunneling.didv_weights_cost(np.array([bias]), E, tip_delta=chain["tip_delta"],
                                       vmod_rms=chain["vmod_rms"])
    out: dict[str, Any] = {"map": None, "map_L": L, "map_centre": cs, "map_pixels": 0, "map_bias": bias}
    if work > WEIGHTS_BUDGET:
        out["map_note"] = (f"The map is not drawn: its tunnelling weights alone would take {work:.2g} evaluations "
                           f"({E.size} energies). Raise Γ or Γ_t, lower V_mod or |V_map|.")
        return out
    Wt = tunneling.didv_weights(np.array([bias]), E, **chain)[0]
    if not np.any(Wt):
        out["map_note"] = "The map is not drawn: the tunnelling chain gives no weight at this bias."
        return out
    keep = tunneling.significant_weights(Wt)
    kept = E[keep]
    extent = float(np.sqrt(2.0) * L + np.ptp(pos @ u))

    def cost(npx: int) -> tuple[float, float]:
        return eng.map_cost(npx * npx, int(keep.sum()), extent=extent, energies=kept, orbital_radius=ORBITAL_RADIUS)

    npx = affordable_pixels(cost, MAP_PIXELS)
    if npx is None:
        mem, evals = cost(MIN_PIXELS)
        out["map_note"] = (f"The map is not drawn: even at {MIN_PIXELS}² pixels it would need {mem / 2 ** 30:.1f} GB "
                           f"and {evals:.2g} propagator evaluations ({int(keep.sum())} energies). Raise Γ or T, lower "
                           "k_F or take fewer channels.")
        return out
    if npx < MAP_PIXELS:
        note = f"The map is drawn at {npx}² pixels instead of {MAP_PIXELS}² to stay within memory and time."
    key = repr((sub, eng.impurities, E.tobytes(), Wt.tobytes(), npx, L, cs))
    if memo.get("key") == key:
        M = memo["map"]
    else:
        if task is not None:
            task.progress(0.6, f"map {npx}² at {bias:+.3g} mV …")
        a = np.linspace(-L, L, npx)
        A, B = np.meshgrid(cs + a, a[::-1])                   # row 0: the top (+n̂)
        pts = A.ravel()[:, None] * u[None, :] + B.ravel()[:, None] * nrm[None, :]
        M = eng.weighted_map(pts, E[keep], Wt[keep], orbital_radius=ORBITAL_RADIUS, prune=0.0).reshape(npx, npx)
        if not np.all(np.isfinite(M)):
            raise PanelInputError("the map is not finite for these parameters; the plots were not updated")
        memo.clear()
        memo.update(key=key, map=M)
    out.update(map=M, map_pixels=npx, map_note=note)
    return out
