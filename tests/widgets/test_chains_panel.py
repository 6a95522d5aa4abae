"""Headless tests of the chains panel: set controls in Python, compare the plotted data with independent computations.

The panel computes in the background: every action is followed by ``wait()``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from gapscope.kernels import dos, tunneling
from gapscope.kernels.sampling import PointDOS
from gapscope.widgets.chains_panel import RASHBA_NOTE, ChainsPanel


def ready(p):
    p.wait(timeout=300)
    return p


@pytest.fixture
def panel():
    return ready(ChainsPanel())


def tight_binding(N, e0, ks):
    """H_ii = E₀, H_{i,i±m} = k_m, built element by element."""
    H = np.full((N, N), 0.0)
    for i in range(N):
        H[i, i] = e0
        for m, k in enumerate(ks, start=1):
            if i + m < N:
                H[i, i + m] = H[i + m, i] = k
    return H


def eig_with_parity(H):
    w, U = np.linalg.eigh(H)
    R = np.eye(len(H))[::-1]
    return w, np.rint(np.einsum("in,ij,jn->n", U, R, U)).astype(int), U


def fan_from_plot(p):
    c = p.curves
    return np.asarray(c["fan_x"]), np.asarray(c["fan_even"]), np.asarray(c["fan_odd"])


def check_fan(p, N, e0, k2=0.0, k3=0.0):
    ks, even, odd = fan_from_plot(p)
    assert even.shape == ((N + 1) // 2, ks.size) and odd.shape == (N // 2, ks.size)
    for j in range(0, ks.size, 6):
        w, par, _ = eig_with_parity(tight_binding(N, e0, (ks[j], k2, k3)))
        np.testing.assert_allclose(np.sort(np.concatenate([even[:, j], odd[:, j]])), w, atol=1e-12)
        if np.min(np.diff(w), initial=1.0) > 1e-9:             # parity from ⟨ψ|R|ψ⟩ where levels are distinct
            np.testing.assert_allclose(np.sort(even[:, j]), np.sort(w[par == 1]), atol=1e-12)
            np.testing.assert_allclose(np.sort(odd[:, j]), np.sort(w[par == -1]), atol=1e-12)
    # the marks show the same data
    np.testing.assert_allclose(np.atleast_2d(p.fan_even.y), even)
    if odd.size:
        np.testing.assert_allclose(np.atleast_2d(p.fan_odd.y), odd)


def test_default_lcao_dimer_states_and_fan_match_the_tight_binding_matrix(panel):
    v = panel.values
    assert v["model"] == "LCAO" and v["n"] == 2
    w, par, _ = eig_with_parity(tight_binding(2, v["e0"], (v["k1"], v["k2"], v["k3"])))
    np.testing.assert_allclose(panel.curves["energies"], w, atol=1e-13)
    np.testing.assert_array_equal(panel.curves["parities"], par)
    check_fan(panel, 2, v["e0"])
    assert "even" in panel.readout.value and "odd" in panel.readout.value


def test_moving_k1_fans_the_chain_states(panel):
    panel.set(n=4, e0=0.7, k1=0.2)
    ready(panel)
    spread_small = np.ptp(panel.curves["energies"])
    rule_small = list(panel.fan_rule.x)
    panel.controls["k1"].slider.value = 0.6
    ready(panel)
    assert panel.values["k1"] == pytest.approx(0.6)
    spread_big = np.ptp(panel.curves["energies"])
    assert spread_big == pytest.approx(3 * spread_small, rel=1e-9)       # nearest neighbours: E − E₀ ∝ k₁
    assert list(panel.fan_rule.x) == [pytest.approx(0.6)] * 2 and rule_small != list(panel.fan_rule.x)
    w, par, _ = eig_with_parity(tight_binding(4, 0.7, (0.6,)))
    np.testing.assert_allclose(panel.curves["energies"], w, atol=1e-13)
    np.testing.assert_array_equal(panel.curves["parities"], par)
    check_fan(panel, 4, 0.7)
    ks, even, odd = fan_from_plot(panel)
    assert ks[-1] >= 0.75 and np.all(np.diff(np.ptp(np.vstack([even, odd]), axis=0)) > 0)   # the fan opens


def test_longer_range_hoppings_and_parities(panel):
    panel.set(n=5, e0=0.3, k1=0.35, k2=0.12, k3=-0.07)
    ready(panel)
    w, par, _ = eig_with_parity(tight_binding(5, 0.3, (0.35, 0.12, -0.07)))
    np.testing.assert_allclose(panel.curves["energies"], w, atol=1e-13)
    np.testing.assert_array_equal(panel.curves["parities"], par)
    check_fan(panel, 5, 0.3, 0.12, -0.07)


def model_spectrum(V, x, v, energies, vectors, sites):
    """The spectrum the panel's note describes, built here: Dynes + Lorentzians weighted by the envelope."""
    g = np.exp(-0.5 * ((x - sites) / v["width"]) ** 2)
    W = (g @ vectors) ** 2
    Gy, u2 = v["gamma_ysr"], v["electron_fraction"]
    L = lambda E, e: Gy / np.pi / ((E - e) ** 2 + Gy ** 2)

    def rho(E):
        E = np.asarray(E, dtype=float)
        out = dos.dynes(E, delta=v["delta"], gamma=v["gamma"])
        for wn, en in zip(W, energies, strict=True):
            out = out + v["weight"] * wn * (u2 * L(E, en) + (1 - u2) * L(E, -en))
        return out
    return tunneling.didv(V, sample_dos=PointDOS(rho, width=min(Gy, v["gamma"])), temperature=v["temperature"],
                          tip_delta=v["tip_delta"], tip_gamma=v["tip_gamma"], vmod_rms=v["vmod_rms"]), rho(V)


def test_fe_dimer_preset_spectrum_and_line_profile(panel):
    panel.preset.value = "Fe dimer ⟨1-11⟩ — Friedrich et al."
    ready(panel)
    v = panel.values
    assert v["k1"] == pytest.approx(0.40) and v["e0"] == pytest.approx(0.6) and v["tip_delta"] == pytest.approx(1.31)
    html = panel.preset_info.value
    assert "Friedrich" in html and "DOI not found" in html and "Paper:" in html and "Chosen:" in html
    a = v["spacing"]
    sites = np.array([-a / 2, a / 2])
    vecs = np.array([[1.0, 1.0], [-1.0, 1.0]]) / math.sqrt(2)    # columns: odd (E₀ − k₁), even (E₀ + k₁)
    E = np.array([0.2, 1.0])
    V = panel.curves["bias_mV"]
    G, rho = model_spectrum(V, 0.0, v, E, vecs, sites)
    np.testing.assert_allclose(panel.curves["didv"], G, atol=1e-6 * np.abs(G).max())
    np.testing.assert_allclose(panel.curves["dos"], rho, atol=1e-12)
    # at the centre only the even state: through the preset's lock-in within the measured 2.3 ± 0.1 mV, and
    # without lock-in at Δ_t + E_even = 2.31 mV
    pos = (V > 1.8) & (V < 2.6)                                     # below the SIS coherence peak at Δ_t + Δ
    k = int(np.argmax(G[pos]))
    assert 0 < k < pos.sum() - 1 and V[pos][k] == pytest.approx(2.3, abs=0.1)
    panel.set(vmod_rms=0.0)
    ready(panel)
    G0 = panel.curves["didv"]
    k = int(np.argmax(G0[pos]))
    assert 0 < k < pos.sum() - 1 and V[pos][k] == pytest.approx(2.31, abs=0.03)
    panel.set(vmod_rms=v["vmod_rms"])
    ready(panel)
    # line profile column at an atom equals the model spectrum there
    x = panel.curves["profile_x_nm"]
    i = int(np.argmin(np.abs(x - a / 2)))
    Gi, _ = model_spectrum(V, x[i], v, E, vecs, sites)
    np.testing.assert_allclose(panel.curves["profile"][i], Gi, atol=1e-6 * np.abs(Gi).max())
    assert "gs-colorbar" in panel.colorbar.value


def test_presets_of_the_fe_chains_reproduce_the_papers_numbers(panel):
    want = {"Fe trimer ⟨1-11⟩ — Friedrich et al.": ([0.434, 1.0, 1.566], [1, -1, 1]),
            "Fe tetramer ⟨1-11⟩ — Friedrich et al.": ([0.053, 0.453, 0.947, 1.347], [-1, 1, -1, 1])}
    for label, (E, P) in want.items():
        panel.preset.value = label
        ready(panel)
        np.testing.assert_allclose(panel.curves["energies"], E, atol=5e-4)
        np.testing.assert_array_equal(panel.curves["parities"], P)


def test_extended_model_dimer_matches_its_closed_form(panel):
    panel.set(model="extended", n=2, e0=0.2, spacing=0.35, lambda_f=1.0, xi_j=0.4, j0=0.8)
    ready(panel)
    d, xi = 0.35, 0.4
    phi = lambda r: math.sqrt(2) * np.sinc(2 * r)
    J = lambda r: math.exp(-r ** 2 / xi ** 2) / (math.sqrt(math.pi) * xi)
    C = quad(lambda r: phi(r) ** 2 * J(r - d), d - 12 * xi, d + 12 * xi, limit=400)[0]
    D = quad(lambda r: phi(r) * J(r) * phi(r - d), -12 * xi, 12 * xi, limit=400)[0]
    S = float(np.sinc(2 * d))
    unit = 0.8 / 1.0
    even, odd = 0.2 + unit * (C + D) / (1 + S), 0.2 + unit * (C - D) / (1 - S)
    got = dict(zip(panel.curves["parities"], panel.curves["energies"], strict=True))
    assert got[1] == pytest.approx(even, abs=1e-9) and got[-1] == pytest.approx(odd, abs=1e-9)
    assert panel.fan_axis.label == "d/λ_F"
    assert list(panel.fan_rule.x) == [pytest.approx(0.35)] * 2
    assert panel.controls["k1"].disabled and not panel.controls["xi_j"].disabled


def test_tmatrix_afm_dimer_t_r_splits_the_plotted_levels(panel):
    panel.preset.value = "AFM Mn dimer √3a/2 [1-11] with Rashba — Beck et al."
    ready(panel)
    assert "10.1038/s41467-021-22261-6" in panel.preset_info.value
    assert "small-k" in panel.rashba_note.value and RASHBA_NOTE[:20] in panel.rashba_note.value
    with_soc = np.asarray(panel.curves["energies"])
    # physics notes (independent oracle, 2D s channel (0.7, 0.3), k_F = 10/nm, ħv_F = 179 meV nm, Δ = 1.5 meV)
    np.testing.assert_allclose(with_soc, [0.77335, 0.77538], atol=2e-5)
    assert panel.curves["splitting_meV"] == pytest.approx(2.02e-3, abs=1e-4)
    assert "μeV" in panel.splitting.value and "2.02" in panel.splitting.value
    panel.controls["t_r"].value = 0.0
    ready(panel)
    without = np.asarray(panel.curves["energies"])
    np.testing.assert_allclose(without, [0.77540, 0.77540], atol=2e-5)
    assert panel.curves["splitting_meV"] < 1e-9                          # AFM, no SOC: Kramers-degenerate
    # the fan over t_R: degenerate at 0, split at the largest t_R
    tr, E = np.asarray(panel.curves["fan_x"]), np.asarray(panel.curves["fan_points"])
    assert np.ptp(E[tr == 0.0]) < 1e-9 and np.ptp(E[tr == tr.max()]) > 1e-3
    assert panel.fan_points.visible and not panel.fan_even.visible
    assert "gs-error" not in panel.message.value


def test_bad_input_becomes_a_message(panel):
    panel.set(model="T-matrix", n=10)
    ready(panel)
    assert "up to 8 atoms" in panel.message.value
    panel.set(model="LCAO", n=1)
    ready(panel)
    assert not panel.fan_odd.visible and panel.fan_even.visible
    assert "Traceback" not in panel.message.value


def test_tmatrix_fm_dimer_splits_without_soc_via_the_bond_dropdown(panel):
    panel.set(model="T-matrix", n=2, texture="fm", t_r=0.0, alpha=0.7, beta=0.3, kf=10.0, hbar_vf=179.0, delta=1.5,
              gamma=0.0259, temperature=0.32, tip_delta=1.43, vmod_rms=0.0)
    panel.bond.value = "√2a [1-10]"
    ready(panel)
    assert panel.values["spacing"] == pytest.approx(math.sqrt(2) * 0.3294, abs=1e-4)
    assert panel.controls["spacing"].disabled
    # physics notes (independent oracle): FM √2a−[1-10] dimer, no SOC: 0.14953 and 1.00690 meV
    np.testing.assert_allclose(panel.curves["energies"], [0.14953, 1.00690], atol=2e-5)
    x = panel.curves["profile_x_nm"]
    assert x.min() < -0.2329 and x.max() > 0.2329 and np.all(np.isfinite(panel.curves["profile"]))


def test_rashba_refused_by_the_engine_becomes_a_message(panel, monkeypatch):
    """An engine without Rashba (Substrate(rashba ≠ 0) raises ValueError): the panel says so, no traceback."""
    from gapscope.kernels import ysr
    real = ysr.Substrate

    def no_rashba(*args, **kw):
        if kw.get("rashba", 0.0) != 0.0:
            raise ValueError("rashba ≠ 0 is not supported yet: the Rashba (spin-orbit) engine comes with a later "
                             "release; use rashba=0.0")
        return real(*args, **kw)
    monkeypatch.setattr(ysr, "Substrate", no_rashba)
    panel.set(model="T-matrix", n=2, texture="afm", t_r=7.5, gamma=0.0259)
    ready(panel)
    assert "Rashba SOC is not available" in panel.message.value and "not supported yet" in panel.message.value
    panel.set(t_r=0.0)
    ready(panel)
    assert "gs-error" not in panel.message.value
    assert "only the t_R values that could be solved" in panel.message.value      # the fan: t_R = 0 only
    assert set(np.asarray(panel.curves["fan_x"])) == {0.0}


# ---------------------------------------------------------------------------- T-matrix cost guards
def test_tmatrix_fan_at_the_largest_t_r_stays_within_the_t_r_bound(panel):
    """t_R at its upper bound: the fan ends at the bound (it used to run to 1.3 t_R and be refused after computing)."""
    from gapscope.kernels.ysr import geometry
    top = geometry.T_R.bounds[1]
    panel.set(model="T-matrix", t_r=top)
    ready(panel)
    assert "gs-error" not in panel.message.value
    tr = np.asarray(panel.curves["fan_x"])
    assert tr.max() == pytest.approx(top) and tr.min() == 0.0
    assert np.all(np.isfinite(panel.curves["fan_points"]))


def test_tmatrix_fan_is_coarsened_for_long_chains_with_a_note(panel, monkeypatch):
    """At most FAN_BUDGET / N² fan points (each a root search costing ~N²), said in the message."""
    from gapscope.widgets import chains_tmatrix_view
    monkeypatch.setattr(chains_tmatrix_view, "FAN_BUDGET", 45)       # N = 3: 45 // 9 = 5 points instead of 13
    panel.set(model="T-matrix", n=3)
    ready(panel)
    tr = np.unique(np.asarray(panel.curves["fan_x"]))
    assert tr.size == 5
    assert "coarsened to 5 points (not 13) for N = 3" in panel.message.value
    panel.set(n=2)                                                  # 45 // 4 = 11 points
    ready(panel)
    assert np.unique(np.asarray(panel.curves["fan_x"])).size == 11


def test_tmatrix_ldos_energies_are_capped_per_atom_with_a_note(panel, monkeypatch):
    """At most LDOS_BUDGET / N LDOS energies, said in the message; the coarse spectrum still matches the LDOS."""
    from gapscope.kernels import ysr
    from gapscope.widgets import chains_tmatrix_view
    monkeypatch.setattr(chains_tmatrix_view, "LDOS_BUDGET", 600)     # N = 3: 200 energies
    panel.set(model="T-matrix", n=3, gamma=0.2, v_max=3.5, vmod_rms=0.0)
    ready(panel)
    assert "at most 200 energies for N = 3" in panel.message.value
    v = panel.values
    sub, imps, _ = ChainsPanel.tmatrix_model(v)
    V = np.asarray(panel.curves["bias_mV"])
    # independent of the panel's grid and spline: the LDOS at the biases themselves, at the tip (x = 0 nm)
    direct = ysr.ldos(sub, imps, np.array([[0.0, 0.0]]), V, orbital_radius=0.1)[0]
    np.testing.assert_allclose(panel.curves["dos"], direct, rtol=2e-2, atol=2e-3)


def test_tmatrix_fan_runs_in_the_background_after_the_first_draw_and_cancel_stops_it(panel, monkeypatch):
    """The spectrum is drawn before the fan; the fan job reports progress and Cancel stops it."""
    import threading
    import time

    from gapscope.widgets.panel import Panel
    real = ChainsPanel._tm_energies
    gate = threading.Event()
    calls = []

    def slow(sub, imps):
        calls.append(sub.rashba)
        if len(calls) > 1:                      # the first call: the current point; the others: the fan
            gate.wait(10.0)
        return real(sub, imps)
    monkeypatch.setattr(ChainsPanel, "_tm_energies", staticmethod(slow))
    panel.set(model="T-matrix", alpha=0.65)
    Panel.wait(panel, 60)                       # the compute and its draw only
    deadline = time.time() + 10
    while len(calls) < 2 and time.time() < deadline:
        time.sleep(0.01)
    assert panel.curves["energies"].size == 2 and panel.busy          # drawn, the fan still running
    assert "computing" in panel.fig_fan.title
    panel.cancel()
    gate.set()
    ready(panel)
    assert "cancelled" in panel.fig_fan.title
    assert len(calls) <= 3                      # stopped at the next point
    panel.set(alpha=0.66)                       # a change: the fan is computed again, in full
    ready(panel)
    assert np.unique(np.asarray(panel.curves["fan_x"])).size == 13 and "computing" not in panel.fig_fan.title


def test_tmatrix_updates_reuse_the_engine_and_match_a_fresh_computation(panel):
    """A coupling or tip change keeps the engine (its propagator caches); the spectra equal a fresh engine's."""
    from gapscope.kernels import ysr
    panel.set(model="T-matrix", gamma=0.05, vmod_rms=0.0)
    ready(panel)
    engine = panel._engine
    panel.set(alpha=0.8, x_tip=0.1)
    ready(panel)
    assert panel._engine is engine
    sub, imps, _ = ChainsPanel.tmatrix_model(panel.values)
    V = np.asarray(panel.curves["bias_mV"])
    fresh = ysr.Engine(sub, imps).ldos(np.array([[0.1, 0.0]]), V, orbital_radius=0.1)[0]
    np.testing.assert_allclose(panel.curves["dos"], fresh, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------------------- extended model: fan against ξ_J, J₀
def parity_pattern(even_col, odd_col):
    E = np.concatenate([even_col, odd_col])
    P = np.concatenate([np.ones(even_col.size), -np.ones(odd_col.size)])
    return "".join("e" if p > 0 else "o" for p in P[np.argsort(E, kind="stable")])


def test_extended_fan_against_xi_j_matches_chains_extended_and_the_fig_s5_orderings(panel):
    from gapscope.kernels import chains
    panel.set(model="extended", n=3, e0=0.3, spacing=0.7, lambda_f=1.0, xi_j=0.4, j0=1.52, fan="ξ_J/λ_F")
    ready(panel)
    assert panel.fan_axis.label == "ξ_J/λ_F" and list(panel.fan_rule.x) == [pytest.approx(0.4)] * 2
    assert not panel.extras["fan"].disabled
    xs, even, odd = fan_from_plot(panel)
    assert xs[0] == pytest.approx(0.05) and xs[-1] == pytest.approx(1.5)
    for j in range(0, xs.size, 10):                       # each column against the kernel called on its own
        s, p = chains.extended(3, d=0.7, xi_j=float(xs[j]), j0=1.52, lambda_f=1.0)
        np.testing.assert_allclose(even[:, j], 0.3 + 1.52 * s[p == 1], atol=1e-12)
        np.testing.assert_allclose(odd[:, j], 0.3 + 1.52 * s[p == -1], atol=1e-12)
    # Fig. S5 (physics notes): the trimer at d = 0.7 λ_F is e o e below ξ_J ≈ 0.37 λ_F and o e e above
    pats = [parity_pattern(even[:, j], odd[:, j]) for j in range(xs.size)]
    assert all(pt == "eoe" for x, pt in zip(xs, pats, strict=True) if x < 0.36)
    assert all(pt == "oee" for x, pt in zip(xs, pats, strict=True) if 0.38 < x < 0.6)
    np.testing.assert_allclose(np.atleast_2d(panel.fan_even.y), even)


def test_extended_fan_against_j0_is_linear_with_the_dimer_closed_form(panel):
    panel.set(model="extended", n=2, e0=0.2, spacing=0.35, lambda_f=1.0, xi_j=0.4, j0=0.8, fan="J₀")
    ready(panel)
    assert panel.fan_axis.label == "J₀ (meV·nm)" and list(panel.fan_rule.x) == [pytest.approx(0.8)] * 2
    d, xi = 0.35, 0.4
    phi = lambda r: math.sqrt(2) * np.sinc(2 * r)
    J = lambda r: math.exp(-r ** 2 / xi ** 2) / (math.sqrt(math.pi) * xi)
    C = quad(lambda r: phi(r) ** 2 * J(r - d), d - 12 * xi, d + 12 * xi, limit=400)[0]
    D = quad(lambda r: phi(r) * J(r) * phi(r - d), -12 * xi, 12 * xi, limit=400)[0]
    S = float(np.sinc(2 * d))
    j0, even, odd = fan_from_plot(panel)
    assert j0.max() == pytest.approx(1.6)                   # up to 2 J₀ (at least 1 meV·nm)
    np.testing.assert_allclose(even[0], 0.2 + j0 * (C + D) / (1 + S), atol=1e-9)
    np.testing.assert_allclose(odd[0], 0.2 + j0 * (C - D) / (1 - S), atol=1e-9)
    panel.set(model="LCAO")
    ready(panel)
    assert panel.extras["fan"].disabled and panel.fan_axis.label == "k₁ (meV)"


# ---------------------------------------------------------------------------- T-matrix: channels, spin axes, map
CUSTOM = "custom (spacing slider)"


def tm_dimer(**kw):
    return {**dict(model="T-matrix", n=2, texture="afm", t_r=7.5, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.0259,
                   temperature=0.32, tip_delta=1.43, tip_gamma=0.01, vmod_rms=0.0, x_tip=0.0), **kw}


def test_tmatrix_orbital_channels_are_chosen_as_in_the_shiba_panel(panel):
    from gapscope.kernels import ysr
    panel.set(**tm_dimer(bond="√3a/2 [1-11]", spacing=0.2853), channels={"s": (0.7, 0.3)})
    ready(panel)
    panel.channel.value = "dxz"                     # the sliders now edit d_xz: starts uncoupled
    assert panel.controls["alpha"].value == 0.0
    panel.set(alpha=0.6, beta=0.1)
    ready(panel)
    assert panel.values["channels"] == {"s": (0.7, 0.3), "dxz": (0.6, 0.1)}
    E = np.asarray(panel.curves["energies"])
    # independent assembly: the √3a/2 [1-11] bond from its length and angle, AFM spins ±z, both channels
    from gapscope.kernels.ysr import geometry
    a = 0.3294
    length, angle = geometry.NB110_BONDS["√3a/2 [1-11]"]
    assert length == pytest.approx(math.sqrt(3) * a / 2, abs=1e-4)
    r = 0.5 * length * np.array([math.cos(angle), math.sin(angle)])
    chans = [ysr.Channel("s", 0.7, 0.3), ysr.Channel("dxz", 0.6, 0.1)]
    imps = [ysr.Impurity(position=tuple(-r), spin=(0, 0, 1), channels=chans),
            ysr.Impurity(position=tuple(r), spin=(0, 0, -1), channels=chans)]
    sub = ysr.Substrate(dim=2, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.0259, rashba=2 * 7.5 * a)
    want = ysr.energies(sub, imps)
    assert E.size == 4
    np.testing.assert_allclose(E, want, atol=1e-9)
    panel.channel.value = "s"                        # back to s: the sliders show its coupling again
    assert (panel.controls["alpha"].value, panel.controls["beta"].value) == (0.7, 0.3)
    assert "fewer" not in panel.message.value


def test_tmatrix_afm_in_plane_perpendicular_spins_stay_degenerate_with_soc(panel):
    """Paper 002 (Beck et al.): with Rashba SOC an AFM dimer splits for out-of-plane and in-plane ∥ bond spins,
    but stays degenerate for in-plane spins ⊥ the mirror-symmetric bond."""
    split = {}
    for axis in ("out of plane (z)", "in plane ∥ chain", "in plane ⊥ chain"):
        panel.set(**tm_dimer(bond="√3a/2 [1-11]", spacing=0.2853), channels={"s": (0.7, 0.3)}, axis=axis)
        ready(panel)
        split[axis] = panel.curves["splitting_meV"]
    assert split["out of plane (z)"] == pytest.approx(2.02e-3, abs=1e-4)
    assert split["in plane ∥ chain"] > 1e-3
    assert split["in plane ⊥ chain"] < 1e-9
    assert "μeV" in panel.splitting.value


def test_tmatrix_spiral_spins_follow_the_pitch(panel):
    """A spiral of pitch p = 2 × spacing: neighbours antiparallel, the AFM energies; pitch → a multiple of the chain:
    all parallel, the FM energies."""
    base = tm_dimer(bond=CUSTOM, spacing=0.5, t_r=0.0)
    panel.set(**base, channels={"s": (0.7, 0.3)})
    ready(panel)
    afm = np.asarray(panel.curves["energies"])
    panel.set(texture="fm")
    ready(panel)
    fm = np.asarray(panel.curves["energies"])
    panel.set(texture="spiral", pitch=1.0)
    ready(panel)
    np.testing.assert_allclose(panel.curves["energies"], afm, atol=1e-9)
    panel.set(pitch=0.5)
    ready(panel)
    np.testing.assert_allclose(panel.curves["energies"], fm, atol=1e-9)
    assert CUSTOM == panel.bond.value


def test_tmatrix_map_at_a_bias_matches_the_ldos_through_the_tip_and_a_click_moves_the_tip(panel):
    from gapscope.kernels import ysr
    panel.set(**tm_dimer(bond=CUSTOM, spacing=0.5, gamma=0.05), channels={"s": (0.7, 0.3)}, view="map", bias=2.2)
    ready(panel)
    assert panel.map_box.layout.display != "none" and panel.profile_box.layout.display == "none"
    M = np.asarray(panel.curves["map"])
    L, cs = panel.curves["map_half_width_nm"], panel.curves["map_centre_nm"]
    assert M.shape == (64, 64) and L == pytest.approx(0.25 + 0.8) and cs == pytest.approx(0.0)
    assert "dI/dV (normalised" in panel.map_colorbar.value and "gs-colorbar" in panel.map_colorbar.value
    # independent: the atoms at (±0.25, 0) nm, the sample DOS at a pixel through the tunnelling chain at V_map
    chans = [ysr.Channel("s", 0.7, 0.3)]
    imps = [ysr.Impurity(position=(-0.25, 0.0), spin=(0, 0, 1), channels=chans),
            ysr.Impurity(position=(0.25, 0.0), spin=(0, 0, -1), channels=chans)]
    sub = ysr.Substrate(dim=2, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.05, rashba=2 * 7.5 * 0.3294)
    eng = ysr.Engine(sub, imps)
    a = np.linspace(-L, L, 64)
    chain = dict(temperature=0.32, tip_delta=1.43, tip_gamma=0.01, vmod_rms=0.0)
    for i, j in ((20, 40), (32, 10), (5, 50)):
        pt = (cs + a[j], a[::-1][i])
        g = tunneling.didv(np.array([2.2]), sample_dos=eng.sample_dos(pt, orbital_radius=0.1), **chain)
        assert M[i, j] == pytest.approx(float(np.ravel(g)[0]), rel=3e-3)
    # a click on the map moves the tip there; the spectrum is then the LDOS at that point
    panel._map_clicked(None, {"data": {"click_x": 0.31, "click_y": -0.2}})
    ready(panel)
    assert (panel.values["x_tip"], panel.values["y_tip"]) == (pytest.approx(0.31), pytest.approx(-0.2))
    assert list(panel.map_tip.x) == [pytest.approx(0.31)] and list(panel.map_tip.y) == [pytest.approx(-0.2)]
    V = np.asarray(panel.curves["bias_mV"])
    direct = ysr.ldos(sub, imps, np.array([[0.31, -0.2]]), V, orbital_radius=0.1)[0]
    np.testing.assert_allclose(panel.curves["dos"], direct, rtol=2e-3, atol=2e-4)
    np.testing.assert_array_equal(panel.curves["map"], M)          # the map itself is reused (a tip move)


def test_tmatrix_map_too_costly_is_refused_with_a_message(panel, monkeypatch):
    from gapscope.widgets import chains_tmatrix
    monkeypatch.setattr(chains_tmatrix, "affordable_pixels", lambda cost, npx: None)
    panel.set(**tm_dimer(bond=CUSTOM, spacing=0.5), view="map")
    ready(panel)
    assert "The map is not drawn" in panel.message.value and panel.curves["map"] is None
    assert "Traceback" not in panel.message.value


# ---------------------------------------------------------------------------- T-matrix on a lattice substrate
def _torus_helpers():
    """The torus exact diagonalisation of tests/kernels/test_ysr_lattice.py (bond by bond in real space), loaded
    from that file rather than copied."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "kernels" / "test_ysr_lattice.py"
    spec = importlib.util.spec_from_file_location("_torus_ed_of_test_ysr_lattice", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.torus_bdg, mod.add_impurity


def test_tmatrix_chain_on_a_lattice_equals_torus_exact_diagonalisation(panel):
    """nk = 10: the chain's G₀ is the 10×10 torus's k-sum, so its YSR energies and LDOS are those of the torus's BdG
    matrix with the two atoms on sites (0, 0) and (2, 0) (AFM ±z), with nearest-neighbour Rashba t_R."""
    torus_bdg, add_impurity = _torus_helpers()
    L, t, mu, delta, gamma, t_r, J, K = 10, 1.0, -0.65, 0.3, 0.05, 0.3, 1.3, 0.4
    panel.set(model="T-matrix", substrate="square", nk=L, n=2, site_step=2, texture="afm", axis="out of plane (z)",
              t=t, mu=mu, delta=delta, gamma=gamma, t_r=t_r, exchange=J, potential=K, x_tip=1.2, y_tip=-0.1,
              v_max=0.6, temperature=0.0, tip_delta=0.0, vmod_rms=0.0)
    ready(panel)
    assert "gs-error" not in panel.message.value, panel.message.value
    assert "lattice" in panel.readout.value and "(1, 0)" in panel.readout.value          # the tip's nearest site
    assert panel.controls["kf"].disabled and not panel.controls["mu"].disabled
    H = torus_bdg(L, t=t, mu=mu, delta=delta, rashba=t_r)
    for site, sz in (((0, 0), 1.0), ((2, 0), -1.0)):
        H = add_impurity(H, L, site, exchange=J, potential=K, spin=(0.0, 0.0, sz))
    ev, U = np.linalg.eigh(H)
    ingap = np.sort(ev[(ev > 0) & (ev < delta)])
    np.testing.assert_allclose(panel.curves["energies"], ingap, atol=1e-10)
    assert ingap[1] - ingap[0] > 1e-4                                  # Rashba splits the AFM pair
    # electron LDOS at site (1, 0) from the eigenvectors (the panel samples it every Γ/4 and interpolates)
    i = 1 * L + 0
    amp = (np.abs(U[4 * i:4 * i + 2, :]) ** 2).sum(axis=0)
    V = np.asarray(panel.curves["bias_mV"])
    n0 = panel.result["sub"].n0
    ref = -np.imag((amp[None, :] / (V[:, None] + 1j * gamma - ev[None, :])).sum(axis=1)) / (2 * np.pi * n0)
    np.testing.assert_allclose(panel.curves["dos"], ref, rtol=2e-3, atol=1e-4)
    # the t_R fan on the lattice: AFM degenerate at t_R = 0 (the torus at t_R = 0 too), split above
    tr, E = np.asarray(panel.curves["fan_x"]), np.asarray(panel.curves["fan_points"])
    H0 = torus_bdg(L, t=t, mu=mu, delta=delta, rashba=0.0)
    for site, sz in (((0, 0), 1.0), ((2, 0), -1.0)):
        H0 = add_impurity(H0, L, site, exchange=J, potential=K, spin=(0.0, 0.0, sz))
    e0 = np.linalg.eigvalsh(H0)
    np.testing.assert_allclose(np.sort(E[tr == 0.0]), np.sort(e0[(e0 > 0) & (e0 < delta)]), atol=1e-10)
    assert np.unique(tr).size == 5 and np.ptp(E[tr == 0.0]) < 1e-9


def test_tmatrix_too_many_channel_sites_is_a_message(panel):
    from gapscope.widgets.chains_tmatrix import MAX_CHANNEL_SITES
    chans = {"s": (0.7, 0.3), "dxz": (0.6, 0.1), "dyz": (0.5, 0.1), "dxy": (0.4, 0.0)}
    panel.set(**tm_dimer(bond=CUSTOM, spacing=0.5, n=4), channels=chans)
    ready(panel)
    assert MAX_CHANNEL_SITES < 16 and f"up to {MAX_CHANNEL_SITES}" in panel.message.value
    assert "Traceback" not in panel.message.value
    panel.set(n=3)                                    # 3 × 4 = 12: solved
    ready(panel)
    assert "gs-error" not in panel.message.value and np.asarray(panel.curves["energies"]).size == 12
