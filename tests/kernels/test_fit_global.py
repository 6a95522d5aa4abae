"""Global fits (fitting.fit_global): T-series with Δ(T) of BCS, a shared tip gap, coverage; fit any model.

Independent references: the truth of the synthetic data; Δ(T) from ``gap.solve_reduced_gap`` (direct
bisection of the BCS gap equation, not the spline the fit uses); a plain scipy ``least_squares``
over the stacked residuals with its own dense Jacobian; single-spectrum fits; the YSR Engine's
T-matrix LDOS for the closed-form on-site model.
"""

import numpy as np
import pytest
from scipy.optimize import least_squares

from gapscope.kernels import fitting, gap
from gapscope.kernels.fitting import Tie
from gapscope.kernels.ysr import fitmodels

V = np.linspace(-3.5, 3.5, 300)
T_SERIES = np.array([1.0, 2.5, 4.0, 5.5, 7.0, 8.0])
TRUTH = dict(delta0=1.30, tc=8.6, gamma=0.04)


def _t_series(seed, noise=0.01, scales=None):
    deltas = TRUTH["delta0"] * gap.solve_reduced_gap(T_SERIES / TRUTH["tc"])
    scales = np.ones(T_SERIES.size) if scales is None else scales
    return [(V, fitting.synthetic("dynes", V, noise=noise, seed=seed * 100 + i, temperature=t, delta=d,
                                  gamma=TRUTH["gamma"], scale=s))
            for i, (t, d, s) in enumerate(zip(T_SERIES, deltas, scales, strict=True))], deltas


def _bcs_fit(data, sigma=0.01, **kw):
    return fitting.fit_global(data, model="dynes", shared=["gamma"],
                              series={"temperature": T_SERIES,
                                      "delta": Tie(gap.bcs_gap, delta0=gap.DELTA0, tc=gap.TC)},
                              initial={"delta0": 1.2, "tc": 8.0, "gamma": 0.06}, sigma=sigma, **kw)


def test_t_series_recovers_delta0_and_tc_with_bcs_shape():
    scales = np.linspace(0.8, 1.3, T_SERIES.size)            # each spectrum its own normalisation
    data, deltas = _t_series(seed=1, scales=scales)
    r = _bcs_fit(data)
    assert r.success and r.n_datasets == 6
    for k in ("delta0", "tc", "gamma"):
        assert isinstance(r.values[k], float)
        assert abs(r.values[k] - TRUTH[k]) < 3 * r.errors[k], (k, r.values[k], r.errors[k])
    assert r.values["scale"].shape == (6,) and np.all(np.abs(r.values["scale"] - scales) < 3 * r.errors["scale"])
    np.testing.assert_array_equal(r.values["temperature"], T_SERIES)     # the series fixes T per dataset
    assert r.fixed["temperature"] and r.tied == {"delta": "temperature"}
    # tied values: Δ_i = Δ₀ δ(T_i/T_c), against the direct solution of the gap equation
    direct = r.values["delta0"] * gap.solve_reduced_gap(T_SERIES / r.values["tc"])
    np.testing.assert_allclose(r.values["delta"], direct, atol=2e-4)
    assert np.all(np.abs(r.values["delta"] - deltas) < 3 * r.errors["delta"] + 1e-4)
    assert r.redchi == pytest.approx(1.0, abs=0.15)
    assert len(r.best_fit) == 6 and all(b.shape == V.shape for b in r.best_fit)
    np.testing.assert_allclose(r.best_fit[2], fitting.evaluate("dynes", V, **r.dataset(2)), rtol=1e-12)
    assert ("delta0", "tc") in r.correlations or ("tc", "delta0") in r.correlations


def test_global_fit_is_one_minimisation_equal_to_plain_scipy_on_stacked_residuals():
    data, _ = _t_series(seed=2)
    r = _bcs_fit(data)

    def resid(p):   # p = (delta0, tc, gamma, scale_0..5): the same problem written out by hand
        d = p[0] * gap.solve_reduced_gap(T_SERIES / p[1])
        return np.concatenate([(fitting.evaluate("dynes", V, temperature=t, delta=di, gamma=p[2], scale=s) - y)
                               / 0.01 for (_, y), t, di, s in zip(data, T_SERIES, d, p[3:], strict=True)])

    p0 = np.r_[1.2, 8.0, 0.06, [fitting.guess_scale(V, y) for _, y in data]]
    ref = least_squares(resid, p0, x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12)
    cov = np.linalg.inv(ref.jac.T @ ref.jac)
    got = np.r_[r.values["delta0"], r.values["tc"], r.values["gamma"], r.values["scale"]]
    err = np.r_[r.errors["delta0"], r.errors["tc"], r.errors["gamma"], r.errors["scale"]]
    assert np.all(np.abs(got - ref.x) < 0.02 * np.sqrt(np.diag(cov))), (got, ref.x)
    np.testing.assert_allclose(err, np.sqrt(np.diag(cov)), rtol=0.02)
    assert r.chisqr == pytest.approx(float(ref.fun @ ref.fun), rel=1e-6)
    assert r.nvarys == 9 and r.ndata == 6 * V.size


@pytest.mark.slow
def test_t_series_error_coverage_over_noise_draws():
    n, hits = 30, {"delta0": 0, "tc": 0}
    for seed in range(n):
        data, _ = _t_series(seed=10 + seed, noise=0.02)
        r = _bcs_fit(data, sigma=0.02)
        for k in hits:
            hits[k] += abs(r.values[k] - TRUTH[k]) <= r.errors[k]
    for k, h in hits.items():      # 1σ covers 68.3 %: binomial(30, 0.683) has mean 20.5, sd 2.5
        assert 13 <= h <= 28, (k, h)


def test_shared_tip_gap_across_sis_spectra():
    Vs = np.linspace(-4, 4, 400)
    chain = dict(temperature=1.2, vmod_rms=0.03)
    deltas = [1.20, 1.45, 1.60]
    tip = dict(tip_delta=1.31, tip_gamma=0.02)
    data = [(Vs, fitting.synthetic("dynes", Vs, noise=0.01, seed=40 + i, delta=d, gamma=0.03, **tip, **chain))
            for i, d in enumerate(deltas)]
    start = dict(tip_delta=1.25, tip_gamma=0.03, **chain)
    r = fitting.fit_global(data, model="dynes", shared=["tip_delta", "tip_gamma"],
                           initial={**start, "delta": [1.15, 1.5, 1.55], "gamma": 0.04},
                           fixed={"tip_delta": False, "tip_gamma": False}, sigma=0.01)
    assert isinstance(r.values["tip_delta"], float) and r.values["delta"].shape == (3,)
    assert abs(r.values["tip_delta"] - tip["tip_delta"]) < 3 * r.errors["tip_delta"]
    assert np.all(np.abs(r.values["delta"] - deltas) < 3 * r.errors["delta"])
    assert r.fixed["temperature"] and not r.fixed["tip_delta"]
    # pooling: the shared tip gap is better determined than from any single spectrum
    single = [fitting.fit(V_, y, model="dynes", initial={**start, "delta": 1.4, "gamma": 0.04},
                          fixed={"tip_delta": False, "tip_gamma": False}, sigma=0.01) for V_, y in data]
    assert r.errors["tip_delta"] < min(s.errors["tip_delta"] for s in single)


def test_spectrum_objects_window_and_report():
    class Spec:
        def __init__(self, bias, didv):
            self.bias, self.didv = bias, didv

    data, _ = _t_series(seed=3)
    r = fitting.fit_global([Spec(*d) for d in data[:3]], model="dynes", series={"temperature": T_SERIES[:3]},
                           window=(-3.0, 3.0))
    assert r.values["delta"].shape == (3,) and r.ndata == 3 * int(np.sum(np.abs(V) <= 3.0))
    rep = r.report(source="synthetic")
    assert rep["parameters"]["delta"]["shared"] is False and len(rep["parameters"]["delta"]["value"]) == 3
    assert rep["series"]["temperature"] == list(T_SERIES[:3])


@pytest.mark.parametrize("kw,match", [
    (dict(shared=["dleta"]), "not parameters"),
    (dict(series={"temperature": [1.0, 2.0]}), "one finite value per dataset"),
    (dict(series={"delta": Tie(gap.bcs_gap, delta0=1.3, tc=8.0)}), "must name its series variable"),
    (dict(series={"temperature": T_SERIES[:3], "delta": Tie(gap.bcs_gap, delta0=1.3, tc=8.0)}, shared=["delta"]),
     "cannot also be shared"),
    (dict(series={"field": [1.0, 2.0, 3.0]}), "neither model parameters"),
    (dict(initial={"delta": [1.0, 1.2]}), "2 entries for 3 datasets"),
    (dict(sigma=[0.01, 0.01]), "one entry per dataset"),
])
def test_bad_global_arguments(kw, match):
    data, _ = _t_series(seed=4)
    with pytest.raises(ValueError, match=match):
        fitting.fit_global(data[:3], model="dynes", **kw)


# ----------------------------------------------------------------- fit any registered model
def test_ysr_onsite_closed_form_equals_the_t_matrix_engine():
    E = np.linspace(-3, 3, 4001)
    for p in (dict(delta=1.5, gamma=0.02, alpha=0.7, beta=0.3), dict(delta=1.2, gamma=0.005, alpha=1.4, beta=-0.5),
              dict(delta=0.8, gamma=0.1, alpha=0.0, beta=1.0)):
        np.testing.assert_allclose(fitmodels.onsite_dos(**p)(E), fitmodels.onsite_dos_engine(**p)(E),
                                   rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("chain", [dict(temperature=0.4), dict(temperature=0.4, tip_delta=1.3, tip_gamma=0.02,
                                                                     vmod_rms=0.03)])
def test_ysr_onsite_fits_through_fitting_fit(chain):
    Vy = np.linspace(-3, 3, 1000)
    truth = dict(delta=1.5, gamma=0.02, alpha=0.7, beta=0.3)
    y = fitting.synthetic("ysr_onsite", Vy, noise=0.005, seed=2, **chain, **truth)
    r = fitting.fit(Vy, y, model="ysr_onsite", initial=dict(delta=1.45, gamma=0.03, alpha=0.6, beta=0.25, **chain),
                    sigma=0.005)
    assert r.success and r.redchi < 1.3
    for k in ("delta", "gamma"):
        assert abs(r.values[k] - truth[k]) < 4 * r.errors[k], (k, r.values[k], r.errors[k])
    assert r.elapsed < 10


def test_ising_model_fits_through_fitting_fit():
    y = fitting.synthetic("ising", V, noise=0.005, seed=5, temperature=0.3, delta=0.45, gamma=0.03)
    r = fitting.fit(V, y, model="ising", initial=dict(temperature=0.3, delta=0.4, gamma=0.05), sigma=0.005)
    assert r.success and abs(r.values["delta"] - 0.45) < 4 * r.errors["delta"]


def test_global_fit_of_a_topic_model_ysr_onsite_shared_substrate():
    Vy = np.linspace(-3, 3, 400)
    alphas = [0.6, 0.9]
    data = [(Vy, fitting.synthetic("ysr_onsite", Vy, noise=0.005, seed=60 + i, temperature=0.4, delta=1.5,
                                   gamma=0.02, alpha=a, beta=0.3)) for i, a in enumerate(alphas)]
    r = fitting.fit_global(data, model="ysr_onsite", shared=["delta", "gamma", "beta"],
                           initial=dict(temperature=0.4, delta=1.45, gamma=0.025, alpha=[0.55, 0.95], beta=0.25),
                           sigma=0.005)
    assert abs(r.values["delta"] - 1.5) < 4 * r.errors["delta"]
    assert np.all(np.abs(r.values["alpha"] - alphas) < 4 * r.errors["alpha"])


def test_custom_tie_on_a_second_series_variable():
    """Γ_i = g0 + g1·B_i (a rule of our own) on a field series, with the temperature series fixing T_i."""
    B = np.array([0.0, 1.0, 2.0, 3.0])
    T = np.array([0.5, 0.5, 1.0, 1.0])
    gammas = 0.02 + 0.015 * B
    data = [(V, fitting.synthetic("dynes", V, noise=0.005, seed=80 + i, temperature=t, delta=1.3, gamma=g))
            for i, (t, g) in enumerate(zip(T, gammas, strict=True))]
    r = fitting.fit_global(data, model="dynes", shared=["delta"],
                           series={"temperature": T, "field": B,
                                   "gamma": Tie(lambda b, g0, g1: g0 + g1 * b, on="field", g0=0.03, g1=0.01)},
                           bounds={"g0": (0.0, 1.0), "g1": (-0.1, 0.1)}, sigma=0.005)
    assert abs(r.values["g0"] - 0.02) < 4 * r.errors["g0"] and abs(r.values["g1"] - 0.015) < 4 * r.errors["g1"]
    np.testing.assert_allclose(r.values["gamma"], r.values["g0"] + r.values["g1"] * B, rtol=1e-12)
    # propagated errors of the tied Γ_i: √(σ₀² + 2B c₀₁ + B² σ₁²) from the covariance of (g0, g1)
    c01 = r.correlations.get(("g0", "g1"), r.correlations.get(("g1", "g0"))) * r.errors["g0"] * r.errors["g1"]
    expect = np.sqrt(r.errors["g0"] ** 2 + 2 * B * c01 + B ** 2 * r.errors["g1"] ** 2)
    np.testing.assert_allclose(r.errors["gamma"], expect, rtol=1e-4)
    np.testing.assert_array_equal(r.values["field"], B)


@pytest.mark.parametrize("unit", [1e-9, 1e-12])
def test_global_fit_in_instrument_units_equals_units_of_one(unit):
    """Without sigma, data in siemens (~1e-9) once left the global fit at its start values."""
    data, _ = _t_series(seed=3)
    ref = _bcs_fit(data, sigma=None)
    got = _bcs_fit([(v, y * unit) for v, y in data], sigma=None)
    assert abs(ref.values["tc"] - TRUTH["tc"]) < 3 * ref.errors["tc"]
    for k in ("delta0", "tc", "gamma"):
        assert got.values[k] == pytest.approx(ref.values[k], rel=1e-5), k
        assert got.errors[k] == pytest.approx(ref.errors[k], rel=1e-3), k
    np.testing.assert_allclose(got.values["scale"], ref.values["scale"] * unit, rtol=1e-5)
    assert got.redchi == pytest.approx(ref.redchi * unit ** 2, rel=1e-5)


# ----------------------------------------------------------------- progress and cancel
def test_progress_is_reported_and_ends_at_one():
    data, _ = _t_series(seed=4)
    seen = []
    r = _bcs_fit(data, progress=lambda f, t: seen.append((f, t)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert any("iteration 1," in t for _, t in seen) and "done" in seen[-1][1]
    ref = _bcs_fit(data)                       # progress changes nothing
    assert r.values["tc"] == ref.values["tc"] and r.nfev == ref.nfev


def test_cancel_stops_a_slow_global_fit_within_a_second():
    """12 spectra × 4000 points (about a second per Jacobian here): cancelled after the first Jacobian."""
    import threading
    import time

    Vb = np.linspace(-4, 4, 4000)
    data = [(Vb, fitting.synthetic("dynes", Vb, noise=0.01, seed=i, temperature=1.0, delta=1.2 + 0.01 * i,
                                   gamma=0.05, scale=1.0 + 0.02 * i)) for i in range(12)]
    cancel, out = threading.Event(), {}
    first = threading.Event()

    def run():
        try:
            fitting.fit_global(data, model="dynes", shared=["delta", "gamma"],
                               initial={"temperature": 1.0, "delta": 1.0, "gamma": 0.1},
                               sigma=0.01, cancel=cancel, progress=lambda f, t: "iteration" in t and first.set())
            out["finished"] = time.perf_counter()
        except fitting.FitCancelled as exc:
            out["exc"], out["t"] = exc, time.perf_counter()
    th = threading.Thread(target=run)
    th.start()
    assert first.wait(120), "no Jacobian was reported"
    t_set = time.perf_counter()
    cancel.set()
    th.join(60)
    assert not th.is_alive() and "exc" in out, out
    assert out["t"] - t_set < 1.0, out["t"] - t_set
    assert "cancelled after" in str(out["exc"]) and out["exc"].evaluations > 0
    assert "scale__0" in out["exc"].values and "delta" in out["exc"].values


def test_bad_progress_or_cancel():
    data, _ = _t_series(seed=5)
    with pytest.raises(ValueError, match="progress must be"):
        _bcs_fit(data, progress=3)
    with pytest.raises(ValueError, match="cancel must be"):
        _bcs_fit(data, cancel=True)
