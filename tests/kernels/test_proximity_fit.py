"""The Usadel junction through the common fit interface: the ``usadel`` model of the registry.

Independent references: the junction's own line scan (``proximity.line_scan``, its DOS table built on the
chain's energy range, not the model's) and its local DOS (``Solution.ldos``); the topic's own fitter
``proximity.fit_line_scan`` (scipy ``least_squares`` on the whole scan, a different minimiser and
Jacobian); the truth of the synthetic data.
"""

import threading
import time

import numpy as np
import pytest

from gapscope.kernels import fitting, models, proximity
from gapscope.kernels.proximity import Junction

SMALL = dict(delta_s=1.3, delta_n=1.0, xi_s=6.0, xi_n=3.0, gamma=1.0, gamma_b=0.5, temperature=1.0, omega_c=15.0,
             length_s=60.0, length_n=40.0, dynes_gamma=0.02)
#: the model's names of the junction's parameters (its mismatch γ is "gamma_mismatch"; T is the chain's)
JUNCTION = {("gamma_mismatch" if k == "gamma" else k): v for k, v in SMALL.items() if k != "temperature"}
V = np.linspace(-2.5, 2.5, 81)
X = np.linspace(-6.0, 12.0, 19)
NOISE = 0.01


@pytest.fixture(scope="module")
def truth():
    return Junction(**SMALL).solve(tol=1e-10)


@pytest.fixture(scope="module")
def scan(truth):
    clean = 1.05 * proximity.line_scan(truth, V, X, n_energies=300).didv
    return clean + np.random.default_rng(3).normal(0.0, NOISE, clean.shape)


def test_the_model_is_registered_and_fitting_imports_no_topic():
    m = fitting.MODELS["usadel"]
    assert m.topic == "gapscope.kernels.proximity" and m.chain == ("temperature",)
    names = [p.name for p in m.all_params]
    assert "x" in names and names.count("temperature") == 1          # the junction's T is the chain's
    assert "gamma_mismatch" in names and "gamma" not in names        # not Dynes' Γ of the other models
    assert {p.name for p in m.params if p.vary} == {"xi_n", "gamma_b"}
    assert "usadel" in fitting.models_table()


def test_model_conductance_equals_the_junctions_line_scan(truth):
    for chain in (dict(), dict(vmod_rms=0.05)):
        ref = proximity.line_scan(truth, V, X, n_energies=300, **chain).didv
        got = np.array([fitting.evaluate("usadel", V, x=x, temperature=1.0, **JUNCTION, **chain) for x in X])
        np.testing.assert_allclose(got, ref, atol=2e-4)       # the two DOS tables span different ranges


def test_sample_dos_is_the_local_dos_of_the_solution(truth):
    E = np.linspace(-2.0, 2.0, 41)
    for x in (-3.0, 0.0, 0.7, 5.0):
        n = fitting.MODELS["usadel"].sample(x=x, temperature=1.0, **JUNCTION)
        np.testing.assert_allclose(n(E), truth.ldos([x], E)[0], atol=5e-3)   # table in E (300 energies)


def test_line_scan_through_fit_global_reproduces_fit_line_scan_and_the_truth(truth, scan, monkeypatch):
    start = dict(JUNCTION, xi_n=2.2, gamma_b=0.2)
    ref = proximity.fit_line_scan(X, V, scan, junction=Junction(**SMALL).replace(xi_n=2.2, gamma_b=0.2),
                                  free=("xi_n", "gamma_b", "scale"), sigma=NOISE)
    cache = fitting.MODELS["usadel"].sample.cache
    cache.clear()
    seen = set()
    real = proximity.UsadelDOS.__init__

    def spy(self, c, junction, x):
        seen.add(junction)
        real(self, c, junction, x)
    monkeypatch.setattr(proximity.UsadelDOS, "__init__", spy)
    before = cache.solves
    r = fitting.fit_global(proximity.line_scan_datasets(X, V, scan), model="usadel",
                           shared=["xi_n", "gamma_b", "scale"], series={"x": X},
                           initial={**start, "temperature": 1.0, "scale": 1.0}, sigma=NOISE)
    assert r.success and r.n_datasets == X.size
    # one Usadel solve per parameter set, not one per spectrum
    assert cache.solves - before == len(seen) and len(seen) < 40
    for k, true in (("xi_n", 3.0), ("gamma_b", 0.5), ("scale", 1.05)):
        assert isinstance(r.values[k], float)
        # the same best values as the topic's own fitter, to a small fraction of their errors
        assert abs(r.values[k] - ref.values[k]) < 0.05 * ref.errors[k], (k, r.values[k], ref.values[k])
        assert r.errors[k] == pytest.approx(ref.errors[k], rel=0.03), k
        assert abs(r.values[k] - true) < 3 * r.errors[k], (k, r.values[k], r.errors[k])
    np.testing.assert_array_equal(r.values["x"], X)
    assert r.redchi == pytest.approx(1.0, abs=0.15)
    np.testing.assert_allclose(r.best_fit[4], fitting.evaluate("usadel", V, **r.dataset(4)), rtol=1e-12)


def test_interface_offset_tied_to_the_positions_is_recovered(truth):
    shift = 0.6                                   # the data's frame: the interface at position 0.6 nm
    positions = X + shift
    clean = proximity.line_scan(truth, V, X, n_energies=300).didv
    data = clean + np.random.default_rng(9).normal(0.0, NOISE, clean.shape)
    r = fitting.fit_global(proximity.line_scan_datasets(positions, V, data), model="usadel",
                           shared=["xi_n", "scale"],
                           series={"position": positions, "x": proximity.position_tie()},
                           initial={**JUNCTION, "xi_n": 2.5, "temperature": 1.0, "scale": 1.0},
                           fixed={"gamma_b": True}, sigma=NOISE)
    assert abs(r.values["x_offset"] - shift) < 3 * r.errors["x_offset"] and r.errors["x_offset"] < 0.3
    assert abs(r.values["xi_n"] - 3.0) < 3 * r.errors["xi_n"]
    np.testing.assert_allclose(r.values["x"], positions - r.values["x_offset"], rtol=1e-12)
    assert r.tied == {"x": "position"}


def test_one_proximity_spectrum_through_fitting_fit(truth):
    y = 0.9 * proximity.line_scan(truth, V, [1.5], n_energies=300).didv[0]
    y = y + np.random.default_rng(4).normal(0.0, NOISE, y.shape)
    r = fitting.fit(V, y, model="usadel", initial={**JUNCTION, "xi_n": 2.4, "x": 1.5, "temperature": 1.0},
                    fixed={"gamma_b": True}, sigma=NOISE)
    assert r.success
    for k, true in (("xi_n", 3.0), ("scale", 0.9)):
        assert abs(r.values[k] - true) < 3 * r.errors[k], (k, r.values[k], r.errors[k])
    assert r.fixed["x"] and r.values["x"] == 1.5


def test_bad_junctions_are_clear_value_errors():
    with pytest.raises(ValueError, match="shorter than the coherence length"):
        fitting.evaluate("usadel", V, **dict(JUNCTION, length_n=2.0), temperature=1.0)
    with pytest.raises(ValueError, match="temperature"):
        fitting.evaluate("usadel", V, **JUNCTION, temperature=0.0)
    with pytest.raises(ValueError, match="chain names"):
        models.register(models.FitModel("bad_chain", (), lambda: None, chain=("delta",)))
    with pytest.raises(ValueError, match="diff_step"):
        models.register(models.FitModel("bad_step", (), lambda: None, diff_step=0.5))
    with pytest.raises(ValueError, match="max_nfev"):
        models.register(models.FitModel("bad_nfev", (), lambda: None, max_nfev=2))
    assert not {"bad_chain", "bad_step", "bad_nfev"} & set(fitting.MODELS)
    assert fitting.MODELS["usadel"].max_nfev == proximity.FIT_MAX_NFEV       # a fit's cost is bounded


def test_cancel_stops_a_line_scan_fit_inside_a_solve_within_a_second(monkeypatch):
    """A slow junction (Lin et al.'s lengths: about a second per solve here): a cancel set while a Usadel
    solve runs (at its second solver step: deterministic, not a race against the machine's speed) stops the
    fit inside that solve, which never finishes, and the steps between checks are well under a second."""
    j = dict(proximity.Junction().values())
    T = j.pop("temperature")
    j["gamma_mismatch"] = j.pop("gamma")
    data = [(V, np.ones(V.size)) for _ in range(4)]
    cache = fitting.MODELS["usadel"].sample.cache
    cache.clear()
    solves = cache.solves
    cancel, reports, steps = threading.Event(), [], []
    real = models.checkpoint

    def checkpoint() -> None:                 # the solver's own checks, timed; the cancel set at the second
        steps.append(time.perf_counter())
        if len(steps) == 2:
            cancel.set()
        real()
    monkeypatch.setattr(proximity._models, "checkpoint", checkpoint)
    with pytest.raises(models.FitCancelled, match="cancelled"):
        fitting.fit_global(data, model="usadel", shared=["xi_n", "gamma_b", "scale"], series={"x": [0, 1, 2, 3]},
                           initial={**j, "temperature": T}, cancel=cancel,
                           progress=lambda f, t: reports.append((time.perf_counter(), f, t)))
    assert reports, "the fit reported no progress"
    assert len(steps) == 2                    # it stopped at the first check after the cancel
    assert cache.solves == solves             # inside the first solve, which never finished
    assert steps[1] - steps[0] < 1.0          # the solver checks at least once a second
