"""Fitting: recovery of known parameters, error coverage, model comparison, SC tips, grids."""

import json
import threading

import numpy as np
import pytest

from gapscope.kernels import fitting

V = np.linspace(-4, 4, 400)


def test_recovers_known_parameters_within_errors():
    truth = dict(delta=1.3, gamma=0.04, scale=2.5)
    y = fitting.synthetic("dynes", V, noise=0.01, seed=3, temperature=0.5, **truth)
    r = fitting.fit(V, y, model="dynes", initial=dict(delta=1.1, gamma=0.1, temperature=0.5), sigma=0.01)
    assert r.success
    for k, v in truth.items():
        assert abs(r.values[k] - v) < 3 * r.errors[k], (k, r.values[k], r.errors[k])
    assert r.redchi == pytest.approx(1.0, abs=0.2)
    np.testing.assert_allclose(r.best_fit, fitting.evaluate("dynes", V, **r.values), rtol=1e-12)
    assert r.fixed["temperature"] and np.isnan(r.errors["temperature"])


def test_error_coverage_over_noise_draws():
    truth = dict(delta=1.3, gamma=0.05)
    hits = {k: 0 for k in truth}
    n = 60
    for seed in range(n):
        y = fitting.synthetic("dynes", V, noise=0.02, seed=100 + seed, temperature=1.0, **truth)
        r = fitting.fit(V, y, model="dynes", initial=dict(temperature=1.0, delta=1.2, gamma=0.08), sigma=0.02)
        for k, v in truth.items():
            hits[k] += abs(r.values[k] - v) <= r.errors[k]
    for k in truth:
        assert 0.52 <= hits[k] / n <= 0.84, (k, hits[k] / n)     # 1σ coverage ≈ 68 %


@pytest.mark.parametrize("true_model,params", [
    ("dynes", dict(delta=1.3, gamma=0.03)),
    ("anisotropic_s", dict(delta=1.0, anisotropy=0.35, gamma=0.02)),
    ("dwave", dict(delta=1.0, gamma=0.02)),
])
@pytest.mark.slow
def test_model_comparison_prefers_the_true_model(true_model, params):
    y = fitting.synthetic(true_model, V, noise=0.01, seed=7, temperature=0.4, **params)
    ranked = fitting.compare(V, y, models=("dynes", "anisotropic_s", "dwave"),
                             initial=dict(temperature=0.4, delta=1.1, gamma=0.05, anisotropy=0.2))
    assert ranked[0].model == true_model, [(r.model, r.aic) for r in ranked]
    assert ranked[0].bic <= min(r.bic for r in ranked)


def test_superconducting_tip_recovers_sample_and_tip_gaps():
    truth = dict(delta=1.50, gamma=0.03, tip_delta=1.31, tip_gamma=0.015)
    Vs = np.linspace(-4, 4, 1000)
    y = fitting.synthetic("dynes", Vs, noise=0.02, seed=11, temperature=1.4, vmod_rms=0.05, scale=1.0, **truth)
    r = fitting.fit(Vs, y, model="dynes",
                    initial=dict(delta=1.45, gamma=0.05, tip_delta=1.35, tip_gamma=0.02, temperature=1.4,
                                 vmod_rms=0.05),
                    fixed=dict(tip_delta=False, tip_gamma=False), sigma=0.02)
    for k in ("delta", "tip_delta"):
        assert abs(r.values[k] - truth[k]) < max(3 * r.errors[k], 2e-3), (k, r.values[k], r.errors[k])
    assert r.elapsed < 10


def test_window_fixed_bounds_and_nan_points():
    y = fitting.synthetic("dynes", V, noise=0.005, seed=1, temperature=0.5, delta=1.3, gamma=0.03)
    y[::37] = np.nan
    r = fitting.fit(V, y, model="dynes", initial=dict(temperature=0.5), fixed=dict(gamma=0.03),
                    bounds=dict(delta=(1.0, 1.6)), window=(-2.5, 2.5))
    assert r.fixed["gamma"] and r.values["gamma"] == 0.03
    assert r.bounds["delta"] == (1.0, 1.6)
    assert r.ndata == int(np.sum(np.isfinite(y) & (np.abs(V) <= 2.5)))
    assert r.best_fit.shape == V.shape and np.all(np.isfinite(r.best_fit))


def test_profile_and_bootstrap_intervals():
    y = fitting.synthetic("dynes", V, noise=0.02, seed=5, temperature=1.0, delta=1.3, gamma=0.05)
    r = fitting.fit(V, y, model="dynes", initial=dict(temperature=1.0), sigma=0.02, intervals="profile")
    lo, hi = r.intervals["delta"]["68%"]
    assert lo < r.values["delta"] < hi
    assert (hi - lo) / 2 == pytest.approx(r.errors["delta"], rel=0.3)
    b = fitting.fit(V, y, model="dynes", initial=dict(temperature=1.0), sigma=0.02, intervals="bootstrap",
                    n_bootstrap=40)
    lo, hi = b.intervals["delta"]["68%"]
    assert (hi - lo) / 2 == pytest.approx(r.errors["delta"], rel=0.5)


def test_report_is_json_with_provenance_and_version():
    y = fitting.synthetic("anisotropic_s", V, noise=0.01, seed=1, temperature=0.5)
    r = fitting.fit(V, y, model="anisotropic_s", initial=dict(temperature=0.5))
    rep = json.loads(r.to_json(file="demo.dat", synthetic=True))
    assert rep["software"]["name"] == "gapscope" and rep["model"] == "anisotropic_s"
    assert rep["provenance"] == {"file": "demo.dat", "synthetic": True}
    assert rep["parameters"]["delta"]["unit"] == "meV" and rep["parameters"]["temperature"]["fixed"] is True


@pytest.mark.parametrize("kw,match", [
    (dict(model="nonsense"), "unknown model"), (dict(initial=dict(dleta=1)), "not parameters"),
    (dict(bounds=dict(delta=(2, 1))), "lower < upper"), (dict(initial=dict(delta=60.0)), "outside its bounds"),
    (dict(window=(10, 20)), "fewer than 5")])
def test_bad_fit_arguments(kw, match):
    y = fitting.synthetic("dynes", V, noise=0.01)
    with pytest.raises(ValueError, match=match):
        fitting.fit(V, y, **kw)


@pytest.mark.slow
def test_every_registered_model_fits_its_own_synthetic_data():
    for name in fitting.MODELS:
        y = fitting.synthetic(name, V, noise=0.005, seed=2, temperature=0.5)
        r = fitting.fit(V, y, model=name, initial=dict(temperature=0.5))
        assert r.success and r.redchi < 2 * 0.005 ** 2, name


def test_grid_fit_parallel_cancel_and_resume(tmp_path):
    nx, ny = 4, 3
    Vg = np.linspace(-3, 3, 120)
    deltas = np.linspace(1.0, 1.4, nx)[:, None] + 0.05 * np.arange(ny)[None, :]
    data = np.array([[fitting.synthetic("dynes", Vg, noise=0.005, seed=i * 10 + j, temperature=0.5,
                                        delta=deltas[i, j], gamma=0.04) for j in range(ny)] for i in range(nx)])
    seen = []
    res = fitting.fit_grid(Vg, data, model="dynes", initial=dict(temperature=0.5), n_jobs=2, chunk=3,
                           progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_allclose(res.values["delta"], deltas, atol=0.01)
    assert res.done.all() and seen[-1] == (nx * ny, nx * ny)
    # cancel after the first chunk, then resume from the saved file
    stop = threading.Event()
    path = tmp_path / "fit.npz"
    part = fitting.fit_grid(Vg, data, model="dynes", initial=dict(temperature=0.5), n_jobs=1, chunk=3,
                            progress=lambda d, t: stop.set(), cancel=stop, resume=path)
    assert part.cancelled and 0 < part.done.sum() < nx * ny
    rest = fitting.fit_grid(Vg, data, model="dynes", initial=dict(temperature=0.5), n_jobs=1, chunk=3, resume=path)
    assert rest.done.all()
    np.testing.assert_allclose(rest.values["delta"], res.values["delta"], atol=1e-6)


@pytest.mark.parametrize("unit", [1e-9, 1e-12, 1e6])
def test_fit_in_instrument_units_equals_fit_in_units_of_one(unit):
    """Conductance in siemens (~1e-9) once stopped the fit at its start values (the minimiser's stopping
    tests are absolute): Δ, its error and χ²_red/unit² must not depend on the data's units."""
    V = np.linspace(-4, 4, 400)
    y = fitting.synthetic("dynes", V, noise=0.01, seed=1, delta=1.35, gamma=0.05, temperature=1.2)
    ref = fitting.fit(V, y, model="dynes", initial={"delta": 1.0, "gamma": 0.1})
    got = fitting.fit(V, y * unit, model="dynes", initial={"delta": 1.0, "gamma": 0.1})
    assert abs(ref.values["delta"] - 1.35) < 0.01
    assert got.values["delta"] == pytest.approx(ref.values["delta"], rel=1e-6)
    assert got.errors["delta"] == pytest.approx(ref.errors["delta"], rel=1e-3)
    assert got.values["scale"] == pytest.approx(ref.values["scale"] * unit, rel=1e-6)
    assert got.redchi == pytest.approx(ref.redchi * unit ** 2, rel=1e-6)
    assert got.aic - ref.aic == pytest.approx(V.size * np.log(unit ** 2), rel=1e-9)
