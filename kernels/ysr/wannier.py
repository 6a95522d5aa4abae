"""Reader for Wannier90 ``seedname_hr.dat`` files: real-space hoppings → a vectorised Bloch H(k).

File format (Wannier90 User Guide, "seedname_hr.dat"): line 1 a comment (date); line 2
num_wann; line 3 nrpts; then nrpts integer degeneracies N_R, 15 per line; then
num_wann²·nrpts lines ``R1 R2 R3 m n Re Im`` with ⟨0 m|H|R n⟩ in eV.  The Bloch matrix is

    H_mn(k) = Σ_R e^{i k·R} ⟨0 m|H|R n⟩ / N_R,

with k·R = k₁R₁ + k₂R₂ + k₃R₃, k_i the phase per primitive vector (radians, reduced
coordinates).  Energies are returned in meV (eV × 1000) by :meth:`HoppingModel.hk`.

Bad files (wrong counts, a missing or repeated (R, m, n) block, non-integer indices) raise
``ValueError`` naming the line or block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["HoppingModel", "read_hr", "write_hr"]

EV_TO_MEV = 1000.0


@dataclass(frozen=True, eq=False)
class HoppingModel:
    """Real-space hoppings ⟨0 m|H|R n⟩ of a tight-binding model.

    Attributes
    ----------
    vectors : ndarray (nR, 3) int
        Lattice vectors R in reduced coordinates.
    hoppings : ndarray (nR, num_wann, num_wann) complex
        ⟨0 m|H|R n⟩ / N_R (degeneracy already divided out), eV.
    comment : str
        The file's first line.
    """

    vectors: np.ndarray
    hoppings: np.ndarray
    comment: str = ""

    @property
    def num_wann(self) -> int:
        """Number of Wannier functions (orbitals)."""
        return int(self.hoppings.shape[1])

    @property
    def dim(self) -> int:
        """3 if any R has R₃ ≠ 0, else 2 (a layer: H(k) depends on k₁, k₂ only)."""
        return 3 if np.any(self.vectors[:, 2] != 0) else 2

    def hk(self, *k: np.ndarray, shift: float = 0.0) -> np.ndarray:
        """H(k) in meV, shape k.shape + (num_wann, num_wann); ``shift`` (meV) is subtracted on the diagonal.

        Give ``dim`` arrays k₁, k₂[, k₃] (radians, broadcast together); for a 2D model a k₃ is
        not needed (R₃ = 0 throughout).
        """
        if len(k) not in (2, 3):
            raise ValueError(f"hk needs k1, k2 (and k3 for a 3D model), got {len(k)} arrays")
        if len(k) == 2 and self.dim == 3:
            raise ValueError("this hr.dat model is 3D (some R3 ≠ 0): give k1, k2, k3")
        ks = np.broadcast_arrays(*[np.asarray(x, dtype=float) for x in k])
        phase = sum(ks[i][..., None] * self.vectors[None, :, i] for i in range(len(ks)))     # (..., nR)
        flat = np.exp(1j * phase.reshape(-1, self.vectors.shape[0]))
        out = (flat @ self.hoppings.reshape(self.vectors.shape[0], -1)) * EV_TO_MEV
        out = out.reshape(ks[0].shape + (self.num_wann, self.num_wann))
        if shift:
            out = out - shift * np.eye(self.num_wann)
        return out


def read_hr(path: str | os.PathLike[str]) -> HoppingModel:
    """Parse a Wannier90 ``_hr.dat`` file.

    Raises
    ------
    ValueError
        A malformed header, a degeneracy list of the wrong length or with entries < 1, a
        hopping line that is not ``R1 R2 R3 m n Re Im``, orbital indices outside 1…num_wann,
        or a missing / repeated (R, m, n) entry.
    """
    name = os.fspath(path)
    with open(name, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if len(lines) < 4:
        raise ValueError(f"{name}: too short for a Wannier90 hr.dat file (comment, num_wann, nrpts, ...)")
    try:
        nw = int(lines[1].split()[0])
        nr = int(lines[2].split()[0])
    except (ValueError, IndexError):
        raise ValueError(f"{name}: lines 2 and 3 must hold num_wann and nrpts") from None
    if nw < 1 or nr < 1:
        raise ValueError(f"{name}: num_wann = {nw} and nrpts = {nr} must be ≥ 1")
    deg: list[int] = []
    row = 3
    while len(deg) < nr and row < len(lines):
        try:
            deg.extend(int(x) for x in lines[row].split())
        except ValueError:
            raise ValueError(f"{name}: line {row + 1}: expected integer degeneracies") from None
        row += 1
    if len(deg) != nr:
        raise ValueError(f"{name}: expected {nr} degeneracies, found {len(deg)}")
    if min(deg) < 1:
        raise ValueError(f"{name}: degeneracies must be ≥ 1")
    body = [ln for ln in lines[row:] if ln.strip()]
    if len(body) != nr * nw * nw:
        raise ValueError(f"{name}: expected nrpts·num_wann² = {nr}·{nw}² = {nr * nw * nw} hopping lines, "
                         f"found {len(body)} (missing or extra blocks)")
    try:
        data = np.array([ln.split() for ln in body], dtype=float)
    except ValueError:
        raise ValueError(f"{name}: every hopping line must be 'R1 R2 R3 m n Re Im'") from None
    if data.ndim != 2 or data.shape[1] != 7:
        raise ValueError(f"{name}: every hopping line must have 7 columns 'R1 R2 R3 m n Re Im'")
    ints = data[:, :5]
    if np.any(ints != np.round(ints)):
        raise ValueError(f"{name}: R and orbital indices must be integers")
    ints = ints.astype(np.int64)
    mn = ints[:, 3:5]
    if mn.min() < 1 or mn.max() > nw:
        raise ValueError(f"{name}: orbital indices must lie in 1…{nw}")
    vecs, inverse = np.unique(ints[:, :3], axis=0, return_inverse=True)
    inverse = inverse.ravel()
    if vecs.shape[0] != nr:
        raise ValueError(f"{name}: {vecs.shape[0]} distinct R vectors, nrpts says {nr}")
    count = np.zeros((nr, nw, nw), dtype=np.int64)
    np.add.at(count, (inverse, mn[:, 0] - 1, mn[:, 1] - 1), 1)
    if np.any(count != 1):
        bad = np.argwhere(count != 1)[0]
        raise ValueError(f"{name}: the block R = {tuple(vecs[bad[0]])}, (m, n) = ({bad[1] + 1}, {bad[2] + 1}) "
                         f"occurs {count[tuple(bad)]} times (each must occur once)")
    # degeneracy belongs to the R in order of first appearance
    first = np.full(nr, -1)
    order = []
    for i, r in enumerate(inverse):
        if first[r] < 0:
            first[r] = i
            order.append(r)
    deg_of = np.empty(nr)
    deg_of[np.array(order)] = np.array(deg, dtype=float)
    hop = np.zeros((nr, nw, nw), dtype=complex)
    hop[inverse, mn[:, 0] - 1, mn[:, 1] - 1] = data[:, 5] + 1j * data[:, 6]
    hop /= deg_of[:, None, None]
    return HoppingModel(vecs, hop, lines[0].strip())


def write_hr(path: str | os.PathLike[str], vectors: np.ndarray, hoppings: np.ndarray, *,
             degeneracies: np.ndarray | None = None, comment: str = "written by gapscope") -> None:
    """Write ⟨0 m|H|R n⟩ (eV, before division by N_R) in the Wannier90 ``_hr.dat`` layout."""
    vec = np.asarray(vectors, dtype=np.int64)
    hop = np.asarray(hoppings, dtype=complex)
    nr, nw = hop.shape[0], hop.shape[1]
    deg = np.ones(nr, dtype=np.int64) if degeneracies is None else np.asarray(degeneracies, dtype=np.int64)
    out = [comment, f"{nw:12d}", f"{nr:12d}"]
    for lo in range(0, nr, 15):
        out.append("".join(f"{d:5d}" for d in deg[lo:lo + 15]))
    for r in range(nr):
        for n in range(nw):
            for m in range(nw):
                h = hop[r, m, n]
                out.append(f"{vec[r, 0]:5d}{vec[r, 1]:5d}{vec[r, 2]:5d}{m + 1:5d}{n + 1:5d}"
                           f"{h.real:12.6f}{h.imag:12.6f}")
    with open(os.fspath(path), "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")
