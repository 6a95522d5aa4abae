"""Adatom geometries on Nb(110), spin textures, and the Rashba-hopping ↔ α_R mapping.

Units: nm, rad; Rashba α_R in meV·nm, the hopping t_R in meV.

Nb(110) surface
    Nb is bcc with lattice constant a = :data:`NB110_A` = 0.3294 nm.  In-plane axes of the
    (110) surface: **x ∥ [001], y ∥ [1-10]** (z ∥ [110], the surface normal).  The surface
    lattice vectors are a[001] = (a, 0) and (a/2)[1-11] = (a/2, a/√2); the bonds used for
    dimers and chains (:data:`NB110_BONDS`) are

    ============== ============ ========================
    name           length (nm)  direction (from x)
    ============== ============ ========================
    "√2a [1-10]"   √2·a         π/2
    "√3a/2 [1-11]" (√3/2)·a     atan(√2) ≈ 54.74°
    "2a [001]"     2a           0
    "a [001]"      a            0
    ============== ============ ========================

    (the geometries of Beck et al., Nat. Commun. 12, 2040 (2021)).

Spin textures
    :func:`spin_texture` returns unit vectors n̂_k for the sites in chain order: ferromagnetic,
    antiferromagnetic (alternating), a spiral with pitch p (n̂ rotated by 2π s/p about an axis,
    s the arc length along the chain), or an explicit array.

Rashba
    :func:`alpha_r_from_t_r` is the small-k mapping α_R = 2 t_R a of a nearest-neighbour Rashba
    hopping t_R (the tight-binding parameter of Beck et al., Nat. Commun. 12, 2040 (2021)) onto
    the continuum α_R used by :class:`~gapscope.kernels.ysr.rashba.RashbaPropagators`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validate as _v
from ..specs import Spec
from .model import Channel, Impurity

__all__ = ["NB110_A", "NB110_BONDS", "T_R", "line", "nb110_chain", "nb110_dimer", "spin_texture",
           "impurities", "alpha_r_from_t_r", "t_r_from_alpha_r"]

#: Nb bcc lattice constant a, nm.
NB110_A = 0.3294

#: Rashba hopping t_R of a nearest-neighbour tight-binding model, meV (α_R = 2 t_R a).
T_R = Spec("t_r", "t_R", "meV", 0.0, (0.0, 20.0), (0.0, 50.0), 0.1,
           "Rashba hopping of the tight-binding model of Beck et al. (2021); α_R = 2 t_R a (small-k mapping)")


def _bonds(a: float) -> dict[str, tuple[float, float]]:
    """Bond name → (length nm, angle rad from x ∥ [001]) from the bcc lattice vectors projected on (110)."""
    ex = np.array([0.0, 0.0, 1.0])                       # [001]
    ey = np.array([1.0, -1.0, 0.0]) / math.sqrt(2.0)     # [1-10]
    vecs = {"√2a [1-10]": a * np.array([1.0, -1.0, 0.0]),
            "√3a/2 [1-11]": 0.5 * a * np.array([1.0, -1.0, 1.0]),
            "2a [001]": 2.0 * a * np.array([0.0, 0.0, 1.0]),
            "a [001]": a * np.array([0.0, 0.0, 1.0])}
    out = {}
    for name, v in vecs.items():
        x, y = float(v @ ex), float(v @ ey)
        out[name] = (math.hypot(x, y), math.atan2(y, x))
    return out


#: Nb(110) bonds: name → (length nm, angle rad from x ∥ [001]); computed from :data:`NB110_A`.
NB110_BONDS: dict[str, tuple[float, float]] = _bonds(NB110_A)


def line(n: int, *, spacing: float, angle: float = 0.0) -> np.ndarray:
    """``n`` equally spaced sites on a line through the origin, centred on it: (n, 2) nm.

    r_k = (k − (n − 1)/2) · spacing · (cos angle, sin angle),  k = 0 … n − 1.

    Parameters
    ----------
    n : int
        Number of sites ≥ 1.
    spacing : float
        Distance between neighbours, nm (> 0).
    angle : float
        Direction of the line, rad from x.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer number of sites, got {n!r}")
    d = _v.scalar("spacing", spacing, "nm")
    if not d > 0.0:
        raise ValueError(f"spacing must be > 0 nm, got {d:g} nm")
    th = _v.scalar("angle", angle, "rad")
    k = np.arange(int(n)) - 0.5 * (int(n) - 1)
    return np.c_[k * d * math.cos(th), k * d * math.sin(th)]


def _bond(bond: str) -> tuple[float, float]:
    try:
        return NB110_BONDS[bond]
    except (KeyError, TypeError):
        raise ValueError(f"unknown Nb(110) bond {bond!r}; use one of {list(NB110_BONDS)}") from None


def nb110_chain(n: int, *, bond: str = "√3a/2 [1-11]") -> np.ndarray:
    """A straight chain of ``n`` adatoms on Nb(110) along ``bond`` (a :data:`NB110_BONDS` key), centred: (n, 2) nm."""
    length, angle = _bond(bond)
    return line(n, spacing=length, angle=angle)


def nb110_dimer(bond: str) -> np.ndarray:
    """Two adatoms on Nb(110) separated by ``bond`` (a key of :data:`NB110_BONDS`), centred: (2, 2) nm."""
    return nb110_chain(2, bond=bond)


def _positions(positions: np.ndarray) -> np.ndarray:
    p = _v.array("positions", positions)
    if p.ndim != 2 or p.shape[1] not in (2, 3) or p.shape[0] < 1:
        raise ValueError(f"positions must be (n, 2) or (n, 3) in nm with n ≥ 1, got shape {p.shape}")
    return p


def _unit(v: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(v, dtype=float)
    if m.shape != (3,) or not np.all(np.isfinite(m)) or np.linalg.norm(m) == 0:
        raise ValueError(f"{name} must be a non-zero finite 3-vector, got {v!r}")
    return m / np.linalg.norm(m)


def spin_texture(positions: np.ndarray, *, texture: str | np.ndarray = "fm",
                 axis: Sequence[float] = (0.0, 0.0, 1.0), pitch: float | None = None,
                 rotation_axis: Sequence[float] = (0.0, 1.0, 0.0)) -> np.ndarray:
    """Unit spin directions n̂_k for the sites ``positions`` (in chain order): (n, 3).

    Parameters
    ----------
    positions : array_like (n, 2) or (n, 3)
        Sites, nm, in chain order.
    texture : {"fm", "afm", "spiral"} or array_like (n, 3)
        "fm": n̂_k = â; "afm": n̂_k = (−1)^k â; "spiral": n̂_k = R(û, 2π s_k/p) â, the rotation of
        â about û by the angle 2π s_k/p, with s_k = Σ_{j<k} |r_{j+1} − r_j| the arc length (nm)
        and p = ``pitch``; an array gives the directions explicitly (validated and normalised).
    axis : array_like (3,)
        â, the direction of site 0 (normalised).
    pitch : float, optional
        Spiral pitch p > 0, nm (required for "spiral"; a full turn every p nm of chain).
    rotation_axis : array_like (3,)
        û, the spiral's rotation axis (normalised).

    Raises
    ------
    ValueError
        Unknown texture, missing or non-positive pitch, a zero or non-finite vector, or an
        explicit array of the wrong shape.
    """
    p = _positions(positions)
    n = p.shape[0]
    if not isinstance(texture, str):
        s = np.asarray(texture, dtype=float)
        if s.shape != (n, 3) or not np.all(np.isfinite(s)):
            raise ValueError(f"an explicit spin texture must be a finite ({n}, 3) array, got shape {s.shape}")
        norms = np.linalg.norm(s, axis=1)
        if np.any(norms == 0.0):
            raise ValueError(f"spin {int(np.flatnonzero(norms == 0.0)[0])} of the texture is the zero vector")
        return s / norms[:, None]
    a = _unit(axis, "axis")
    if texture == "fm":
        return np.tile(a, (n, 1))
    if texture == "afm":
        return np.where((np.arange(n) % 2 == 0)[:, None], a, -a)
    if texture == "spiral":
        if pitch is None:
            raise ValueError("a spiral texture needs pitch (nm, > 0): the chain length of one full turn")
        pt = _v.scalar("pitch", pitch, "nm")
        if not pt > 0.0:
            raise ValueError(f"pitch must be > 0 nm, got {pt:g} nm")
        u = _unit(rotation_axis, "rotation_axis")
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
        th = 2.0 * math.pi * arc / pt
        # Rodrigues: a cosθ + (u×a) sinθ + u (u·a)(1 − cosθ)
        out = (np.cos(th)[:, None] * a + np.sin(th)[:, None] * np.cross(u, a)
               + (1.0 - np.cos(th))[:, None] * (u @ a) * u)
        return out / np.linalg.norm(out, axis=1)[:, None]
    raise ValueError(f"unknown spin texture {texture!r}; use 'fm', 'afm', 'spiral' or an (n, 3) array")


def impurities(positions: np.ndarray, spins: np.ndarray, channels: Sequence[Channel] | Sequence[Sequence[Channel]],
               *, min_distance: float = 0.05) -> list[Impurity]:
    """Impurities at ``positions`` with directions ``spins`` and scattering ``channels``.

    Parameters
    ----------
    positions : array_like (n, 2) or (n, 3)
        Sites, nm.
    spins : array_like (n, 3)
        Spin directions (e.g. from :func:`spin_texture`).
    channels : sequence of Channel, or a sequence of n such sequences
        The same channels for every site, or one list per site.
    min_distance : float
        Smallest allowed distance between two sites, nm (≥ 0).

    Raises
    ------
    ValueError
        Two sites closer than ``min_distance`` ("atoms 1 and 2 overlap: 0.000 nm apart; …",
        atoms numbered from 1 in the order of ``positions``), or mismatched shapes.
    """
    p = _positions(positions)
    n = p.shape[0]
    s = np.asarray(spins, dtype=float)
    if s.shape != (n, 3) or not np.all(np.isfinite(s)):
        raise ValueError(f"spins must be a finite ({n}, 3) array for {n} positions, got shape {s.shape}")
    dmin = _v.scalar("min_distance", min_distance, "nm")
    if dmin < 0.0:
        raise ValueError(f"min_distance must be ≥ 0 nm, got {dmin:g} nm")
    chans: list[Any] = list(channels)
    per_site: list[tuple[Channel, ...]]
    if all(isinstance(c, Channel) for c in chans):
        per_site = [tuple(chans)] * n
    else:
        if len(chans) != n:
            raise ValueError(f"channels must be one list of Channel for all sites or {n} lists (one per site), "
                             f"got {len(chans)} entries")
        per_site = []
        for k, cs in enumerate(chans):
            group = [cs] if isinstance(cs, Channel) else list(cs)
            if not all(isinstance(c, Channel) for c in group):
                raise ValueError(f"channels of atom {k + 1} must be Channel objects")
            per_site.append(tuple(group))
    for i in range(n):
        for j in range(i + 1, n):
            d = float(np.linalg.norm(p[i] - p[j]))
            if d < dmin:
                raise ValueError(f"atoms {i + 1} and {j + 1} overlap: {d:.3f} nm apart; sites must be at least "
                                 f"min_distance = {dmin:g} nm apart (rows {i} and {j} of positions)")
    return [Impurity(position=tuple(float(x) for x in p[k]), spin=(float(s[k, 0]), float(s[k, 1]), float(s[k, 2])),
                     channels=per_site[k]) for k in range(n)]


def alpha_r_from_t_r(t_r: float, *, a: float = NB110_A) -> float:
    """Continuum Rashba coefficient α_R = 2 t_R a, meV·nm, of a nearest-neighbour Rashba hopping t_R (meV).

    The tight-binding Rashba term 2t_R (sin k_y a σ_x − sin k_x a σ_y) of a square lattice with
    spacing a expands as 2t_R a (k_y σ_x − k_x σ_y) for k a ≪ 1: this **small-k mapping** is what
    we use to put the t_R of Beck et al., Nat. Commun. 12, 2040 (2021) (t_R = 7.5 meV)
    into the continuum model, α_R = 2·7.5·0.3294 = 4.941 meV·nm.  It is not exact: at k_F a ≈ 3
    the lattice term is far from linear (it overestimates the SOC at the Fermi surface).

    Parameters
    ----------
    t_r : float
        Rashba hopping t_R, meV (checked by :data:`T_R`).
    a : float
        Lattice spacing, nm (> 0); Nb's a by default.
    """
    t = T_R.check(t_r)
    aa = _v.scalar("a", a, "nm")
    if not aa > 0.0:
        raise ValueError(f"a must be > 0 nm, got {aa:g} nm")
    return 2.0 * t * aa


def t_r_from_alpha_r(alpha_r: float, *, a: float = NB110_A) -> float:
    """The inverse of :func:`alpha_r_from_t_r`: t_R = α_R/(2a), meV, from α_R in meV·nm (same small-k mapping)."""
    al = _v.scalar("alpha_r", alpha_r, "meV nm")
    aa = _v.scalar("a", a, "nm")
    if not aa > 0.0:
        raise ValueError(f"a must be > 0 nm, got {aa:g} nm")
    return al / (2.0 * aa)
