"""Headless tests of the Shiba panel's lattice substrate (widgets/shiba_lattice.py).

The plotted spectrum and YSR energies are compared with an exact diagonalisation of the same
8×8 torus (the lattice T-matrix on an n×n k-mesh is exactly that torus), built here bond by bond;
on a converged mesh, with the lattice engine and the tunnelling chain called directly.
"""

import threading

import numpy as np
import pytest

from gapscope.kernels import tunneling
from gapscope.kernels.ysr import lattice
from gapscope.widgets import ShibaPanel, shiba_lattice
from gapscope.widgets.shiba_lattice import MAP_PIXELS, nearest_sites

SY = np.array([[0, -1j], [1j, 0]])
SZ = np.diag([1.0, -1.0]).astype(complex)


def ready(p):
    p.wait()
    return p


def torus_ed(L, *, t, mu, delta, exchange, potential):
    """BdG matrix of an L×L square torus with a spin ∥ z on site (0, 0); index 4·(n1·L + n2) + [e↑, e↓, h1, h2].

    Normal part −t on each nearest-neighbour bond and −μ on site; hole block −σ_y h* σ_y; pairing Δ on site;
    impurity potential·τ_z + exchange·σ_z.
    """
    N = L * L
    h = np.zeros((2 * N, 2 * N), complex)
    for n1 in range(L):
        for n2 in range(L):
            i = n1 * L + n2
            h[2 * i:2 * i + 2, 2 * i:2 * i + 2] -= mu * np.eye(2)
            for d1, d2 in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                j = ((n1 + d1) % L) * L + (n2 + d2) % L
                h[2 * j:2 * j + 2, 2 * i:2 * i + 2] -= t * np.eye(2)
    S = np.kron(np.eye(N), SY)
    hole = -(S @ h.conj() @ S)
    H = np.zeros((4 * N, 4 * N), complex)
    for i in range(N):
        for j in range(N):
            H[4 * i:4 * i + 2, 4 * j:4 * j + 2] = h[2 * i:2 * i + 2, 2 * j:2 * j + 2]
            H[4 * i + 2:4 * i + 4, 4 * j + 2:4 * j + 4] = hole[2 * i:2 * i + 2, 2 * j:2 * j + 2]
        H[4 * i:4 * i + 2, 4 * i + 2:4 * i + 4] = delta * np.eye(2)
        H[4 * i + 2:4 * i + 4, 4 * i:4 * i + 2] = delta * np.eye(2)
    H[0:4, 0:4] += potential * np.kron(SZ, np.eye(2)) + exchange * np.kron(np.eye(2), SZ)
    return H


ED = dict(t=1.0, mu=-0.65, delta=0.3, exchange=1.3, potential=0.4)


@pytest.fixture(scope="module")
def panel():
    return ready(ShibaPanel(tip="normal", temperature=0.0, vmod_rms=0.0, gamma=0.05))


def test_lattice_spectrum_and_ysr_energy_equal_torus_ed(panel):
    """nk = 8: the panel's energies and plotted spectrum are those of the 8×8 torus, to machine precision."""
    L, gamma = 8, 0.05
    panel.set(substrate="square", nk=L, rashba=0.0, map_sites=3.0, v_max=0.6, view="electron (normal tip)",
              map_state=0, bias=0.1, tip="normal", temperature=0.0, vmod_rms=0.0, gamma=gamma, **ED)
    panel.move_tip(1.2, -0.1)                                   # nearest site (1, 0)
    ready(panel)
    r = panel.result
    assert r["lattice"] and tuple(r["tip_site"]) == (1, 0)
    assert "too coarse" in panel.message.value and "gs-warning" in panel.message.value   # the k-mesh warning
    H = torus_ed(L, **ED)
    ev, U = np.linalg.eigh(H)
    ingap = np.sort(ev[(ev > 0) & (ev < ED["delta"])])
    np.testing.assert_allclose(r["states"], ingap, atol=1e-10)
    assert f"{ingap[0]:.4f}" in panel.readout.value
    # electron LDOS at site (1, 0) from the eigenvectors: −Im Σ_{e↑,e↓} G_aa(ω + iΓ)/(2π N₀)
    i = 1 * L + 0
    amp = np.abs(U[4 * i:4 * i + 2, :]) ** 2                    # (2, 4N)
    V = np.linspace(-0.6, 0.6, 600)
    G = (amp.sum(axis=0)[None, :] / (V[:, None] + 1j * gamma - ev[None, :])).sum(axis=1)
    ref = -np.imag(G) / (2 * np.pi * r["sub"].n0)
    np.testing.assert_allclose(panel.line_ldos.y, ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(panel.line_didv.y, ref, rtol=1e-6, atol=1e-8)   # normal tip, T = 0: dI/dV = ρ(V)
    # the map at V_map = 0.1 mV: every pixel shows the ED LDOS of its nearest site
    n = MAP_PIXELS
    x = np.linspace(-3.0, 3.0, n)
    X, Y = np.meshgrid(x, x[::-1])
    sites = nearest_sites(np.eye(2), np.c_[X.ravel(), Y.ravel()])
    rows = 4 * ((sites[:, 0] % L) * L + sites[:, 1] % L)
    weight = np.abs(U[rows, :]) ** 2 + np.abs(U[rows + 1, :]) ** 2
    expect = -np.imag((weight / (0.1 + 1j * gamma - ev[None, :])).sum(axis=1)) / (2 * np.pi * r["sub"].n0)
    np.testing.assert_allclose(panel.map_data, expect.reshape(n, n), rtol=1e-6, atol=1e-9)
    assert len(np.unique(np.round(panel.map_data, 12))) >= 8          # the C4v-distinct sites within ±3


def test_plotted_spectrum_equals_engine_through_the_tunnelling_chain(panel, monkeypatch):
    """The criterion's mesh above the server's cap, superconducting tip at finite T: the spectrum at the impurity
    is the converged one (on-site triangle route), equal through the same chain to the direct binned k-sum on
    the criterion's own mesh (an independent route) to 2e-3 of its maximum; the map is that of the capped torus."""
    panel.set(substrate="square", nk=0, t=3.0, mu=-3.0, delta=1.5, rashba=0.0, exchange=4.5, potential=0.0,
              gamma=0.05, tip="superconducting", tip_delta=1.43, tip_gamma=0.0259, temperature=0.3, vmod_rms=0.0,
              v_max=3.5, map_sites=4.0, map_state=0, bias=0.1, view="electron (normal tip)")   # all it depends on
    panel.move_tip(0.0, 0.0)
    ready(panel)
    assert "gs-error" not in panel.message.value, panel.message.value
    # the criterion asks for more than the server builds: the mesh is capped, and the panel says so
    need = max(lattice.required_nk(lattice.Substrate("square", t=3.0, mu=-3.0, delta=1.5, gamma=0.05, nk=8)
                                   .velocity.tolist(), 0.05, 1.5))
    assert need > shiba_lattice.MESH_CAP
    msg = panel.message.value
    assert f"k-mesh capped at {shiba_lattice.MESH_CAP}×{shiba_lattice.MESH_CAP}" in msg
    assert "spectrum at the impurity and the YSR energies are converged" in msg
    assert "the map is converged too" in msg          # its energies (V − E through the tip's gap) are in the gap
    r = panel.result
    assert r["sub"].triangles and r["map_sub"].nk == (shiba_lattice.MESH_CAP,) * 2
    assert r["map_sub"].n0 == r["sub"].n0
    ref = lattice.Substrate("square", t=3.0, mu=-3.0, delta=1.5, rashba=0.0, gamma=0.05, method="binned")
    assert ref.nk[0] >= need and not ref.triangles
    imps = [lattice.Impurity(site=(0, 0), spin=(0, 0, 1), channels=[lattice.Channel(0, exchange=4.5)])]
    rho = lattice.Engine(ref, imps).sample_dos((0, 0))
    V = np.linspace(-3.5, 3.5, 600)
    G = tunneling.didv(V, sample_dos=rho, temperature=0.3, tip_delta=1.43, tip_gamma=0.0259, vmod_rms=0.0)
    assert np.max(np.abs(np.asarray(panel.line_didv.y) - G)) < 2e-3 * np.max(G)
    np.testing.assert_allclose(r["states"], lattice.energies(ref, imps), rtol=1e-4)
    # a superconducting tip at finite T needs ~300 map energies: drawn within the budget on the capped mesh,
    # refused before it is computed when the budget is smaller
    assert panel.map_data is not None and np.all(np.isfinite(panel.map_data))
    monkeypatch.setattr(shiba_lattice, "MAP_FFT_BUDGET", 1e6)
    panel.set(map_sites=4.5)
    ready(panel)
    assert panel.map_data is None and "map is not drawn" in panel.message.value
    monkeypatch.undo()
    panel.set(tip="normal", temperature=0.0)
    ready(panel)
    assert panel.map_data is not None and np.all(np.isfinite(panel.map_data))
    assert "x (a)" == panel.map_axes[0].label and "gs-colorbar" in panel.colorbar.value


def _peak(p):
    V, G = np.asarray(p.line_didv.x), np.asarray(p.line_didv.y)
    pos = (V > 0.05) & (V < p.values["delta"] - 0.1)
    return V[pos][np.argmax(G[pos])]


def test_moving_j_moves_the_plotted_ysr_peak(panel):
    panel.set(substrate="square", nk=0, t=3.0, mu=-3.0, delta=1.5, rashba=0.0, exchange=4.5, potential=0.0,
              gamma=0.05, tip="normal", temperature=0.0, vmod_rms=0.0, v_max=2.0, map_sites=4.0, map_state=0)
    panel.move_tip(0.0, 0.0)
    ready(panel)
    e1, p1 = panel.result["states"][0], _peak(panel)
    step = 4.0 / 599
    engine = panel.lattice_view.engine
    panel.controls["exchange"].slider.value = 3.0
    ready(panel)
    assert panel.lattice_view.engine is engine              # J changes go through Engine.update (caches kept)
    e2, p2 = panel.result["states"][0], _peak(panel)
    assert abs(p1 - e1) < 2 * step and abs(p2 - e2) < 2 * step   # the peak sits at the YSR energy
    assert p2 - p1 > 0.3                                        # weaker exchange: the state moves to the gap edge
    assert panel.last_compute_s < 1.0, panel.last_compute_s


def test_switching_back_to_continuum_restores_the_old_plot():
    p = ready(ShibaPanel(tip="normal", temperature=0.0, vmod_rms=0.0, gamma=0.05, map_size=1.0))
    G0, M0, ro = np.array(p.line_didv.y), np.array(p.map_data), p.readout.value
    p.set(substrate="triangular", map_sites=3.0)
    ready(p)
    assert p.result["lattice"] and not np.allclose(np.asarray(p.line_didv.y), G0)
    assert p.controls["kf"].disabled and not p.controls["t"].disabled
    csv = p.map_csv()
    assert "y_a \\ x_a" in csv and len(csv.strip().splitlines()[-1].split(",")) == p.map_data.shape[1] + 1
    p.set(substrate="continuum")
    ready(p)
    np.testing.assert_array_equal(p.line_didv.y, G0)
    np.testing.assert_array_equal(p.map_data, M0)
    assert p.readout.value == ro and p.map_axes[0].label == "x (nm)" and p.qpt_rule.visible
    assert not p.controls["kf"].disabled and p.controls["t"].disabled


@pytest.mark.parametrize("kind", ["triangular", "bcc110"])
def test_tip_goes_to_the_nearest_site(kind):
    sub = lattice.Substrate(kind, gamma=0.05)
    rng = np.random.default_rng(1)
    pts = rng.uniform(-3, 3, size=(200, 2))
    got = sub.cartesian(nearest_sites(sub.vectors, pts))
    n = np.arange(-10, 11)
    grid = np.array([(a, b) for a in n for b in n])
    cart = sub.cartesian(grid)
    d = np.linalg.norm(cart[None] - pts[:, None], axis=-1)     # brute force over all sites
    np.testing.assert_allclose(np.linalg.norm(got - pts, axis=1), d.min(axis=1), atol=1e-12)


def test_bad_input_gives_messages_not_tracebacks(panel):
    panel.set(substrate="square", nk=0, t=3.0, mu=-3.0, delta=1.5, exchange=4.5, potential=0.0, gamma=0.05,
              tip="normal", temperature=0.0, vmod_rms=0.0, map_sites=4.0, map_state=0)
    ready(panel)
    G = np.array(panel.line_didv.y)
    panel.set(mu=-20.0)                                          # below the band bottom −4t = −12 meV
    ready(panel)
    assert "gs-error" in panel.message.value and "no Fermi surface" in panel.message.value
    np.testing.assert_array_equal(panel.line_didv.y, G)         # the last valid plot stays
    panel.set(mu=-3.0, nk=8, map_sites=6.0)                     # map sites beyond half the 8×8 torus
    ready(panel)
    assert "gs-error" in panel.message.value and "half the k-mesh" in panel.message.value
    panel.set(map_state=3, map_sites=3.0)                         # one state only: 'Map at' state 3 is refused
    ready(panel)
    assert "gs-error" in panel.message.value and "state 3" in panel.message.value


@pytest.mark.parametrize("kw", [dict(temperature=300.0), dict(delta=1e-12), dict(gamma=0.0, v_max=50.0)])
def test_a_lattice_spectrum_too_costly_is_refused_before_it_is_computed(kw):
    """These asked for 12–90 GiB (and 2 PiB of bin indices at Δ → 0) and ended as an internal MemoryError."""
    p = ready(ShibaPanel())
    p.set(substrate="triangular")
    ready(p)
    p.set(**kw)
    ready(p)
    assert "lattice spectrum is not computed" in p.message.value and "Internal error" not in p.message.value


@pytest.mark.filterwarnings("ignore:k-mesh nk")
def test_rashba_change_uses_the_fast_route_and_equals_the_exact_k_sum(panel, monkeypatch):
    """A t_R change on the capped Rashba mesh (256², above the exact-sum size): the panel's spectrum goes through
    the binned poles + FFT convolution (lattice._pole_sum_fft) and equals the exact k-sum of the same mesh
    (method="exact", no bins, no FFT) through the tunnelling chain to 3e-4 of its maximum (the binning error
    ≲ (h/Γ)²/4 with h = Γ/64), the YSR energies to 1e-4Δ."""
    used = []
    orig = lattice._pole_sum_fft
    monkeypatch.setattr(lattice, "_pole_sum_fft", lambda *a, **k: used.append(1) or orig(*a, **k))
    base = dict(substrate="square", nk=0, t=3.0, mu=-3.0, delta=1.5, exchange=4.5, potential=0.0, gamma=0.05,
                tip="normal", temperature=0.0, vmod_rms=0.0, v_max=2.5, map_sites=3.0, map_state=0)
    panel.set(rashba=0.6, **base)
    panel.move_tip(1.0, 0.0)
    ready(panel)
    used.clear()
    panel.set(rashba=0.8)
    ready(panel)
    r = panel.result
    assert used and r["sub"].nk == (shiba_lattice.MESH_CAP_RASHBA,) * 2
    assert r["sub"]._mesh().K > lattice.EXACT_MAX
    ex = lattice.Substrate("square", t=3.0, mu=-3.0, delta=1.5, rashba=0.8, gamma=0.05,
                           nk=shiba_lattice.MESH_CAP_RASHBA, method="exact")
    imps = [lattice.Impurity(site=(0, 0), spin=(0, 0, 1), channels=[lattice.Channel(0, exchange=4.5)])]
    V = np.linspace(-2.5, 2.5, 600)
    ref = tunneling.didv(V, sample_dos=lattice.Engine(ex, imps).sample_dos((1, 0)), temperature=0.0, tip_delta=0.0,
                         tip_gamma=0.0259, vmod_rms=0.0)
    G = np.asarray(panel.line_didv.y)
    assert np.max(np.abs(G - ref)) < 3e-4 * np.max(ref)
    np.testing.assert_allclose(r["states"], lattice.energies(ex, imps), atol=1e-4 * 1.5)


def test_uncapped_auto_mesh_draws_the_triangle_route_spectrum(panel):
    """nk = 0 with a criterion mesh within the server's cap: the substrate keeps nk=None, so the spectrum at the
    impurity goes through the on-site triangle route; the plotted dI/dV equals the direct binned k-sum on the
    criterion's mesh (method="binned", an independent route) through the same chain to 2e-3 of its maximum."""
    kw = dict(t=3.0, mu=-3.0, delta=1.5, rashba=0.0, gamma=0.15)
    panel.set(substrate="square", nk=0, exchange=4.5, potential=0.0, tip="normal", temperature=0.0, vmod_rms=0.0,
              v_max=2.5, map_sites=3.0, map_state=0, view="electron (normal tip)", **kw)
    panel.move_tip(0.0, 0.0)
    ready(panel)
    assert "gs-error" not in panel.message.value, panel.message.value
    sub = panel.result["sub"]
    assert sub.triangles and lattice.EXACT_MAX < sub.nk[0] ** 2 and sub.nk[0] <= shiba_lattice.MESH_CAP
    ref = lattice.Substrate("square", **kw, method="binned")
    assert ref.nk == sub.nk and not ref.triangles
    imps = [lattice.Impurity(site=(0, 0), spin=(0, 0, 1), channels=[lattice.Channel(0, exchange=4.5)])]
    V = np.linspace(-2.5, 2.5, 600)
    G = tunneling.didv(V, sample_dos=lattice.Engine(ref, imps).sample_dos((0, 0)), temperature=0.0, tip_delta=0.0,
                       tip_gamma=0.0259, vmod_rms=0.0)
    assert np.max(np.abs(np.asarray(panel.line_didv.y) - G)) < 2e-3 * np.max(G)
    np.testing.assert_allclose(panel.result["states"], lattice.energies(ref, imps), rtol=1e-4)


def test_a_mu_change_draws_the_spectrum_before_the_ysr_energies_and_the_map(monkeypatch):
    """Staged results (Task.publish): after a μ change the new spectrum at the impurity is drawn while the YSR
    energies and the map are still being computed — it equals the direct binned k-sum on the criterion's mesh
    (an independent route) to 2e-3 of its maximum, the map title and readout say what is pending — and the
    final result then completes it with the same spectrum.  No sleeps: the map's computation is held on an event
    until the staged draw has been seen."""
    p = ready(ShibaPanel(tip="normal", temperature=0.0, vmod_rms=0.0, gamma=0.15))
    kw = dict(t=3.0, delta=1.5, rashba=0.0, gamma=0.15)
    p.set(substrate="square", nk=0, mu=-3.0, exchange=4.5, potential=0.0, v_max=2.5, map_sites=3.0, map_state=0,
          view="electron (normal tip)", **kw)
    p.move_tip(0.0, 0.0)
    ready(p)
    release, drawn, seen = threading.Event(), threading.Event(), []
    orig_map, orig_draw = lattice.Engine.weighted_map, p.lattice_view.draw

    def held(self, *a, **k):
        assert release.wait(120)
        return orig_map(self, *a, **k)

    def spy(panel, r):
        orig_draw(panel, r)
        if r["pending"]:
            seen.append((np.asarray(panel.line_didv.y).copy(), panel.fig_map.title, panel.readout.value, r["states"]))
            drawn.set()

    monkeypatch.setattr(lattice.Engine, "weighted_map", held)
    monkeypatch.setattr(p.lattice_view, "draw", spy)
    p.set(mu=-2.8)
    try:
        assert drawn.wait(120) and p.busy
    finally:
        release.set()
    G_staged, title, readout, states = seen[0]
    assert states is None and "computing the map" in title and "computing …" in readout
    ref = lattice.Substrate("square", mu=-2.8, **kw, method="binned")
    imps = [lattice.Impurity(site=(0, 0), spin=(0, 0, 1), channels=[lattice.Channel(0, exchange=4.5)])]
    V = np.linspace(-2.5, 2.5, 600)
    G = tunneling.didv(V, sample_dos=lattice.Engine(ref, imps).sample_dos((0, 0)), temperature=0.0, tip_delta=0.0,
                       tip_gamma=0.0259, vmod_rms=0.0)
    assert np.max(np.abs(G_staged - G)) < 2e-3 * np.max(G)
    ready(p)
    r = p.result
    assert not r["pending"] and len(seen) == 1 and p.map_data is not None and "computing" not in p.fig_map.title
    np.testing.assert_allclose(r["states"], lattice.energies(ref, imps), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(p.line_didv.y), G_staged, rtol=0, atol=1e-12)
    assert 0 < p.last_partial_s < p.last_redraw_s


def test_a_capped_mesh_map_at_a_ysr_state_is_the_infinite_lattices():
    """Criterion mesh above the server's cap, normal tip at T = 0, map at the YSR state: its one energy lies in the
    gap, where G₀ decays within a few coherence lengths, so its own torus (Substrate.decay_nk) fits within the cap
    and the map is the infinite lattice's — equal to the same sites' LDOS on the criterion's full mesh (nk set,
    an independent FFT) to 1e-3 of its maximum (the on-site G₀ there is the binned k-sum, here the triangles)."""
    p = ready(ShibaPanel(tip="normal", temperature=0.0, vmod_rms=0.0))
    kw = dict(t=3.0, mu=-3.0, delta=1.5, rashba=0.0, gamma=0.05)
    p.set(substrate="square", nk=0, exchange=4.5, potential=0.0, v_max=2.5, map_sites=3.0, map_state=1,
          view="electron (normal tip)", **kw)
    p.move_tip(0.0, 0.0)
    ready(p)
    r = p.result
    assert r["map_converged"] and max(r["map_mesh"]) <= shiba_lattice.MESH_CAP < r["sub"].nk[0]
    assert "the map is converged too" in p.message.value and "gs-error" not in p.message.value
    ref = lattice.Substrate("square", **kw, nk=r["sub"].nk[0])          # the criterion's mesh, as a set torus
    imps = [lattice.Impurity(site=(0, 0), spin=(0, 0, 1), channels=[lattice.Channel(0, exchange=4.5)])]
    L = r["L"]
    x = np.linspace(-L, L, MAP_PIXELS)
    X, Y = np.meshgrid(x, x[::-1])
    pix = nearest_sites(ref.vectors, np.c_[X.ravel(), Y.ravel()])
    sites, inverse = np.unique(pix, axis=0, return_inverse=True)
    vals = lattice.Engine(ref, imps).ldos(sites, [r["bias"]], part="electron")[:, 0]
    M = vals[inverse.ravel()].reshape(MAP_PIXELS, MAP_PIXELS)
    assert np.max(np.abs(p.map_data - M)) < 1e-3 * np.max(np.abs(M))
    p.set(map_state=0, bias=2.0)             # above the gap G₀ decays over v/Γ: the capped torus, and the note says so
    ready(p)
    assert not p.result["map_converged"] and p.result["map_mesh"] == (shiba_lattice.MESH_CAP,) * 2
    assert f"the map is that of the {shiba_lattice.MESH_CAP}×{shiba_lattice.MESH_CAP} torus" in p.message.value


def test_a_failure_after_the_staged_spectrum_keeps_it_and_says_what_failed(monkeypatch):
    """The map fails (non-finite) after the spectrum was drawn: the spectrum stays on screen, the message says
    only the spectrum was computed and why, the map is blank, nothing is an internal error."""
    p = ready(ShibaPanel(tip="normal", temperature=0.0, vmod_rms=0.0, gamma=0.15))
    p.set(substrate="square", nk=0, t=3.0, mu=-3.0, delta=1.5, rashba=0.0, exchange=4.5, potential=0.0,
          v_max=2.5, map_sites=3.0, map_state=0, view="electron (normal tip)")
    p.move_tip(0.0, 0.0)
    ready(p)
    monkeypatch.setattr(lattice.Engine, "weighted_map", lambda self, pts, *a, **k: np.full(len(pts), np.nan))
    p.set(mu=-2.9)
    ready(p)
    r = p.result
    assert not r["pending"] and r["M"] is None and p.map_data is None
    msg = p.message.value
    assert "Only the spectrum was computed: the map is not finite" in msg and "Internal error" not in msg
    assert "gs-error" in msg and r["states"] is not None and len(r["states"]) == 1    # the states were computed
    G = np.asarray(p.line_didv.y)
    assert G.size == 600 and np.all(np.isfinite(G)) and r["values"]["mu"] == -2.9
