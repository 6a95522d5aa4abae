"""The chains panel's lattice substrates: the T-matrix chain on a tight-binding lattice (square, triangular, bcc(110)).

The atoms sit on lattice sites j·m·a₁ (integer site indices along the first primitive vector, m
sites apart), the substrate is :class:`gapscope.kernels.ysr.lattice.Substrate` with the chain
panel's Δ and Γ and its t_R as the nearest-neighbour Rashba hopping (exactly the tight-binding t_R,
no small-k mapping), and each atom carries one on-site channel (exchange J, potential K in meV).
The k-mesh, its convergence criterion, its server cap and the spectrum's cost guard are the Shiba
panel's lattice view's (:class:`.shiba_lattice.LatticeView`, reused, not copied).  Lengths on a
lattice are in units of the lattice constant a (tip position, line profile, spiral pitch).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from gapscope.kernels.specs import Spec
from gapscope.kernels.ysr import geometry, lattice

from .panel import PanelInputError
from .shiba_lattice import LATTICE_PARAMS, SUBSTRATES, LatticeView, nearest_sites

__all__ = ["CHAIN_LATTICE_PARAMS", "SUBSTRATE_CHOICES", "SITE_STEP", "LATTICE_NAMES", "MAX_LATTICE_SITES",
           "LATTICE_FAN_POINTS", "build", "substrate_notes", "to_sites", "line_sites"]

SITE_STEP = Spec("site_step", "m", "", 1, (1, 6), (1, 20), 1,
                 "lattice substrate: sites between neighbouring atoms along a₁", integer=True)
#: the Shiba panel's lattice controls the chain uses (t, μ, J, K, k-mesh); t_R is the chain's own slider
CHAIN_LATTICE_PARAMS = tuple(p for p in LATTICE_PARAMS if p.name in ("t", "mu", "exchange", "potential", "nk"))
LATTICE_NAMES = (*(p.name for p in CHAIN_LATTICE_PARAMS), "site_step")
SUBSTRATE_CHOICES = SUBSTRATES
#: atoms on a lattice (each t(z) is 4N × 4N; each fan point builds a k-mesh)
MAX_LATTICE_SITES = 6
#: t_R points of a lattice fan: each builds a new k-mesh (≈ 0.5 s of processor time at 256² with Rashba)
LATTICE_FAN_POINTS = 5

#: substrates kept (their k-meshes are the slow part): the t_R fan's points and the current one, shared under a lock
_CACHE_SIZE = LATTICE_FAN_POINTS + 2
_SUBS: OrderedDict[tuple, tuple[lattice.Substrate, list[str]]] = OrderedDict()
_LOCK = threading.Lock()


def _substrate(v: dict[str, Any], t_r: float) -> tuple[lattice.Substrate, list[str]]:
    """The substrate and its notes as the Shiba panel's lattice view builds them (mesh criterion and server cap)."""
    key = {"substrate": v["substrate"], "t": v["t"], "mu": v["mu"], "delta": v["delta"], "rashba": float(t_r),
           "gamma": v["gamma"], "nk": v["nk"]}
    k = tuple(key.values())
    with _LOCK:
        if k in _SUBS:
            _SUBS.move_to_end(k)
            return _SUBS[k]
    try:
        sub, _, notes = LatticeView().substrate(key, onsite=False)     # several impurities: one torus for all
        built = (sub, notes)
    except ValueError as exc:
        raise PanelInputError(f"The lattice substrate is refused: {exc}") from None
    with _LOCK:
        _SUBS[k] = built
        while len(_SUBS) > _CACHE_SIZE:
            _SUBS.popitem(last=False)
    return built


def substrate_notes(v: dict[str, Any], t_r: float) -> list[str]:
    """The k-mesh notes of the substrate at t_R (cached: no new mesh after :func:`build`)."""
    return _substrate(v, t_r)[1]


def build(v: dict[str, Any], *, t_r: float, spin_axis: Any
          ) -> tuple[lattice.Substrate, list[lattice.Impurity], np.ndarray, list[str]]:
    """Lattice substrate, impurities, Cartesian positions (units of a) and the substrate's notes.

    ``spin_axis``: a :class:`.chains_tmatrix.SpinAxis` (its frame: û = a₁/|a₁|).
    """
    n = int(v["n"])
    if n > MAX_LATTICE_SITES:
        raise PanelInputError(f"On a lattice substrate the chain takes up to {MAX_LATTICE_SITES} atoms here "
                              f"(N = {n}).")
    m = int(v["site_step"])
    sub, notes = _substrate(v, t_r)
    sites = np.array([[(j - (n - 1) // 2) * m, 0] for j in range(n)], dtype=np.int64)
    pos = sub.cartesian(sites)
    u = sub.vectors[0] / np.linalg.norm(sub.vectors[0])          # the chain's direction (a₁)
    spiral = v["texture"] == "spiral"
    spins = geometry.spin_texture(pos, texture=v["texture"], axis=spin_axis.vector(u),
                                  pitch=v["pitch"] if spiral else None, rotation_axis=spin_axis.rotation(u))
    imps = [lattice.Impurity(site=tuple(int(c) for c in s), spin=tuple(float(c) for c in sp),
                             channels=[lattice.Channel(0, exchange=v["exchange"], potential=v["potential"])])
            for s, sp in zip(sites, spins, strict=True)]
    return sub, imps, pos, notes


def to_sites(sub: lattice.Substrate, points: np.ndarray) -> np.ndarray:
    """The lattice sites nearest to Cartesian points (units of a)."""
    return nearest_sites(sub.vectors, np.atleast_2d(points))


def line_sites(sub: lattice.Substrate, pos: np.ndarray, margin: int = 3) -> np.ndarray:
    """Every site on the chain's line a₁ from up to ``margin`` sites before the first atom to after the last: (P, 2).

    The margin shrinks so that every site stays within half the k-mesh torus of every atom (the
    kernel's G₀ would wrap around it otherwise).
    """
    first = to_sites(sub, pos[:1])[0]
    last = to_sites(sub, pos[-1:])[0]
    span = int(last[0] - first[0])
    margin = int(np.clip(min(sub.nk) // 2 - 1 - span, 0, margin))       # the kernel needs |d| < nk/2
    return np.array([[j, first[1]] for j in range(int(first[0]) - margin, int(last[0]) + margin + 1)],
                    dtype=np.int64)
