"""The continuum YSR engine (gapscope.kernels.ysr) against green-ysr 0.0.8, a pure-Python continuum T-matrix.

green-ysr (PyPI, MIT) solves the same problem — classical spins on a 2D parabolic-band s-wave
superconductor, G = G₀ + G₀V(1 − G₀V)⁻¹G₀ — in Hartree atomic units (m, p_F, positions in Bohr
radii a₀, energies in Hartree; exchange ``alpha`` and potential ``U`` in Hartree·a₀²).  It is a
required test peer: a missing package fails this module, it is not skipped.

The dictionary between the two, checked here:

* parameters: k_F = p_F/a₀, ħv_F = (p_F/m)·E_h·a₀, πN₀ = m/2 (ħ = 1), so gapscope's dimensionless
  couplings are α = (m/2)·alpha, β = (m/2)·U; spin n̂ = (sin θ, 0, cos θ) for green-ysr's angle θ
  (its exchange term is alpha(cos θ σ_z + sin θ σ_x));
* propagator: green-ysr's ``mode=0`` G₀(r ≠ 0) = (m/2)[Re h·(E + Δτ_x)/w + Im h·τ_z] with
  h = J₀(u) + iH₀(u), **H₀ the Struve function**, u = r(p_F + i m w/p_F), w = √(Δ² − E²).  The
  parabolic band's exact propagator has the Neumann function Y₀ in place of H₀ (H₀ − Y₀ ≈ 2/(πu)
  is not small at k_F r ~ 1–10) and, for complex E = ω + iΓ, needs the analytic continuation
  Re h → ½[H⁽¹⁾₀(q₊r) + H⁽²⁾₀(q₋r)], Im h → [H⁽¹⁾₀(q₊r) − H⁽²⁾₀(q₋r)]/2i with the exact
  q± = √(p_F² ± 2imw) (gapscope's :mod:`~gapscope.kernels.ysr.propagators` formula).  With that
  propagator swapped in (by subclassing here, site-packages untouched) the two codes agree to
  machine precision (1e-12 of the peak; measured ≤ 3.3e-15, all four cases).  Keeping
  green-ysr's linearised u (q± ≈ p_F ± imw/p_F, an O((Δ/E_F)²) approximation) they agree to
  5e-3 of the peak (measured 1.8e-4 single, 2.1e-3 FM dimer, 1.8e-4 AFM dimer, 4.5e-4 chain);
  the plain swap H₀ → Y₀ inside its Re/Im form (not analytic in E at Γ > 0) to 5e-2 (measured
  5.2e-3, 1.0e-2, 3.2e-3, 2.7e-2, largest above the gap) — the 8e-4 quoted in the issue is met
  only by the analytic form; the unmodified Struve form differs at order one (> 0.1);
* electron and hole: green-ysr's ``ElecDOS`` (the trace over its first two Nambu rows) equals
  m × gapscope's **hole** LDOS (and ``HoleDOS`` gapscope's electron LDOS): its G is −τ_x G_gapscope τ_x.
  Which block is the electron is decided independently below: in the normal-state limit
  (|ω| ≫ Δ) gapscope's first block equals the textbook retarded free-electron propagator of 2D,
  G_e(r, ω) = −(im/2) H⁽¹⁾₀(k_e r) with the electron wave number k_e = √(p_F² + 2mω) (the
  oscillation speeds up with ω), while green-ysr's first block carries the hole wave number
  √(p_F² − 2mω).  The lattice torus diagonalisation in tests/kernels/test_ysr_lattice.py (the
  electron LDOS from the e↑, e↓ components of the eigenvectors) fixes the same convention.
"""

from __future__ import annotations

import green_ysr
import numpy as np
import pytest
from scipy import constants as const
from scipy import special

from gapscope.kernels import ysr
from gapscope.kernels.ysr.propagators import make_propagators

A0 = const.physical_constants["Bohr radius"][0] * 1e9                 # nm
HA = const.physical_constants["Hartree energy in eV"][0] * 1e3        # meV
M, PF = 18.7, 0.21                                                   # green-ysr's defaults (a.u.)
DELTA, GAMMA = 1.0, 0.05                                             # meV
ALPHA, U = 0.09, 0.02                                                # Hartree·a₀² → α = 0.84, β = 0.19

#: name → (positions in a₀, green-ysr angles θ, tip positions in a₀)
CASES = {
    "single": ([[0.0, 0.0]], [0.0], [[3.0, 2.0], [-7.5, 4.0]]),
    "FM dimer": ([[0.0, 0.0], [10.0, 0.0]], [0.0, 0.0], [[3.0, 2.0], [14.0, -3.0]]),
    "AFM dimer": ([[0.0, 0.0], [10.0, 0.0]], [0.0, np.pi], [[3.0, 2.0], [5.0, 0.5]]),
    "5-atom chain": ([[9.0 * i, 0.0] for i in range(5)], [i * np.pi / 3 for i in range(5)],
                     [[4.0, 1.5], [20.0, -2.0]]),
}


class ExactGreen(green_ysr.green):
    """green-ysr with the parabolic band's exact propagator (analytic in E, exact q±); r = 0 unchanged."""

    linear_q = False

    def G0(self, r1, r2, E):
        x = float(np.hypot(r1[0] - r2[0], r1[1] - r2[1]))
        if x < 1e-5:
            return super().G0(r1, r2, E)
        w = np.sqrt(self.delta ** 2 - E ** 2)
        if self.linear_q:
            qp, qm = self.pf + 1j * self.m * w / self.pf, self.pf - 1j * self.m * w / self.pf
        else:
            qp, qm = np.sqrt(self.pf ** 2 + 2j * self.m * w), np.sqrt(self.pf ** 2 - 2j * self.m * w)
        h1, h2 = special.hankel1(0, qp * x), special.hankel2(0, qm * x)
        bcs = E / w * np.kron(self.s0, self.s0) + self.delta / w * np.kron(self.s1, self.s0)
        return self.m / 2 * (h1 + h2) / 2 * bcs + self.m / 2 * (h1 - h2) / 2j * np.kron(self.s3, self.s0)


class LinearQGreen(ExactGreen):
    """The analytic Hankel form with green-ysr's linearised wave number u = r(p_F ± imw/p_F)."""

    linear_q = True


class NeumannGreen(green_ysr.green):
    """green-ysr's own Re/Im form with the Struve function H₀ replaced by the Neumann function Y₀ (r ≠ 0)."""

    def G0(self, r1, r2, E):
        x = float(np.hypot(r1[0] - r2[0], r1[1] - r2[1]))
        if x < 1e-5:
            return super().G0(r1, r2, E)
        w = np.sqrt(self.delta ** 2 - E ** 2)
        h = special.jv(0, complex(x * self.pf, x * self.m * w / self.pf))
        h = h + 1j * special.yv(0, complex(x * self.pf, x * self.m * w / self.pf))
        bcs = E / w * np.kron(self.s0, self.s0) + self.delta / w * np.kron(self.s1, self.s0)
        return self.m / 2 * h.real * bcs + self.m / 2 * h.imag * np.kron(self.s3, self.s0)


def peer(cls, case, energies):
    """green-ysr's (ElecDOS, HoleDOS) at the case's tips and energies (meV, Dynes Γ): (tips, E, 2)."""
    pos, th, tips = CASES[case]
    n = len(pos)
    g = cls(n, np.full(n, ALPHA), np.array(th, float), pos, U=np.full(n, U), m=M, pf=PF, delta=DELTA / HA, mode=0)
    zs = (np.asarray(energies) + 1j * GAMMA) / HA
    return np.array([[[g.ElecDOS(tp, z), g.HoleDOS(tp, z)] for z in zs] for tp in tips])


def substrate():
    return ysr.Substrate(dim=2, kf=PF / A0, hbar_vf=PF / M * HA * A0, delta=DELTA, gamma=GAMMA)


def ours(case, energies, part):
    pos, th, tips = CASES[case]
    imps = [ysr.Impurity(position=tuple(np.asarray(p) * A0), spin=(float(np.sin(t)), 0.0, float(np.cos(t))),
                         channels=[ysr.Channel("s", M / 2 * ALPHA, M / 2 * U)]) for p, t in zip(pos, th, strict=True)]
    return ysr.ldos(substrate(), imps, np.asarray(tips) * A0, energies, part=part, tip_radius=0.0)


E_FINE = np.linspace(-1.6, 1.6, 41)                    # meV: in the gap, the coherence peaks and above


@pytest.mark.parametrize("case", list(CASES))
def test_exact_propagator_swap_agrees_to_machine_precision(case):
    hole, elec = ours(case, E_FINE, "hole"), ours(case, E_FINE, "electron")
    ref = peer(ExactGreen, case, E_FINE) / M
    peak = np.max(np.abs(ref))
    assert np.max(np.abs(hole - ref[..., 0])) < 1e-12 * peak        # green-ysr "electron" = gapscope hole
    assert np.max(np.abs(elec - ref[..., 1])) < 1e-12 * peak
    assert np.max(np.abs(elec - ref[..., 0])) > 1e-2 * peak         # …and not gapscope's electron LDOS
    lin = peer(LinearQGreen, case, E_FINE) / M
    assert np.max(np.abs(hole - lin[..., 0])) < 5e-3 * peak


@pytest.mark.parametrize("case", ["AFM dimer", "5-atom chain"])
def test_neumann_swap_and_struve_original(case):
    """The plain H₀ → Y₀ swap: within 5e-2 of the peak; the unmodified Struve form: off at order one."""
    hole = ours(case, E_FINE, "hole")
    neu = peer(NeumannGreen, case, E_FINE)[..., 0] / M
    peak = np.max(np.abs(neu))
    assert np.max(np.abs(hole - neu)) < 5e-2 * peak
    few = E_FINE[::5]
    struve = peer(green_ysr.green, case, few)[..., 0] / M
    assert np.max(np.abs(ours(case, few, "hole") - struve)) > 0.1 * peak


def test_electron_block_is_the_free_electron_propagator():
    """Normal-state limit |ω| = 400Δ: gapscope's e-block is −i H⁽¹⁾₀(k_e r) (g = G/πN₀), green-ysr's first block
    is not (it carries the hole wave number); its last two rows are gapscope's electron block."""
    sub = ysr.Substrate(dim=2, kf=PF / A0, hbar_vf=PF / M * HA * A0, delta=1e-3, gamma=0.0)
    r_a0 = 12.0
    imps = [ysr.Impurity(position=(0.0, 0.0), channels=[ysr.Channel("s", 0.5, 0.0)]),
            ysr.Impurity(position=(r_a0 * A0, 0.0), channels=[ysr.Channel("s", 0.5, 0.0)])]
    prop = make_propagators(sub, imps)
    for w in (0.4, -0.4):                                                   # meV
        z = np.array([w + 1e-9j])
        g = prop.channel_matrix(z)[0, 0:4, 4:8]                            # g₀(r₁ − r₂), [e↑, e↓, h1, h2]
        k_e, k_h = np.sqrt(PF ** 2 + 2 * M * w / HA), np.sqrt(PF ** 2 - 2 * M * w / HA)
        free_e = -1j * special.hankel1(0, k_e * r_a0)
        free_h = -1j * special.hankel2(0, k_h * r_a0)                      # retarded hole 1/(ω + ξ): −G_e(−ω)*
        np.testing.assert_allclose(g[0, 0], free_e, rtol=1e-4)
        np.testing.assert_allclose(g[2, 2], free_h, rtol=1e-4)
        theirs = ExactGreen(2, np.zeros(2), np.zeros(2), [[0, 0], [r_a0, 0]], U=np.zeros(2), m=M, pf=PF,
                            delta=1e-3 / HA, mode=0).G0([0, 0], [r_a0, 0], complex(w, 1e-9) / HA) / (M / 2)
        np.testing.assert_allclose(-theirs[2, 2], g[0, 0], rtol=1e-4)       # G_theirs = −τ_x G τ_x
        np.testing.assert_allclose(-theirs[0, 0], g[2, 2], rtol=1e-4)
        assert abs(-theirs[0, 0] - free_e) > 0.05 * abs(free_e)


def test_total_dos_normalisation():
    """green-ysr's DOS (the full trace) is m·(ρ_e + ρ_h) of gapscope: the normalisation πN₀ = m/2, 2 per trace."""
    e = E_FINE[::4]
    ref = peer(ExactGreen, "FM dimer", e)
    tot = ours("FM dimer", e, "total")
    np.testing.assert_allclose(tot, (ref[..., 0] + ref[..., 1]) / M, rtol=1e-11, atol=1e-12)
