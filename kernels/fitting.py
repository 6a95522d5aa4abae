"""Fits of measured dI/dV through the full measurement chain, with lmfit.

Every registered spectral model (:mod:`.models`; each topic registers its own) is a DOS
model plus the chain (temperature, tip gap and broadening, lock-in) and a conductance ``scale``:

    G_model(V) = scale · didv(V; sample_dos = model(**params), T, Δ_t, Γ_t, V_rms).

Parameters can be free, fixed, bounded, or shared between models (same name); lmfit does the
bookkeeping and the covariance.  Units: mV, meV, K.

Also here (implemented in their own modules, re-exported):

* :func:`fit_global` / :class:`Tie` (:mod:`.fit_global`): one fit over several spectra with
  shared parameters and parameters tied to a series variable (e.g. Δ(T) of BCS over a
  temperature series);
* :func:`deconvolve` (:mod:`.deconvolution`): the sample DOS from an SIS spectrum and a known tip
  (Tikhonov regularisation, λ by GCV or L-curve, posterior band);
* :func:`fit_grid` on a process pool or a dask cluster (``client=``; docs/grid-fits-on-dask.md).

Line scans across a proximity junction fit through the same interface: the proximity topic
registers the ``usadel`` model (the Usadel DOS at a tip position ``x``, its junction solved once
per parameter set), and a line scan is a :func:`fit_global` with ``x`` per spectrum (see
``gapscope.kernels.proximity``).  :func:`fit_global` reports progress and stops within about a
second of a cancel event (``progress=``, ``cancel=``; it raises :class:`FitCancelled`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event
from typing import Any

import numpy as np

from . import _validate as _v
from . import tunneling
from .models import CHAIN_PARAMS, FIT_MODELS, FitCancelled, FitModel, FitParam, models_table

__all__ = ["ParamSpec", "SpectralModel", "MODELS", "fit", "compare", "FitResult", "evaluate", "synthetic",
           "fit_grid", "GridFitResult", "CHAIN", "models_table", "guess_scale", "plausibility",
           "fit_global", "Tie", "GlobalFitResult", "deconvolve", "Deconvolution", "start_scale", "FitCancelled"]

#: the registered models (collected from the topics by :mod:`.models`; this module imports none)
MODELS: dict[str, FitModel] = FIT_MODELS
#: measurement-chain parameters and ``scale``, shared by every model
CHAIN: tuple[FitParam, ...] = CHAIN_PARAMS
#: former names of the model and parameter records
SpectralModel = FitModel
ParamSpec = FitParam


def evaluate(model: str, bias: np.ndarray, **params: float) -> np.ndarray:
    """The model conductance at ``bias`` (mV) for the given parameters (defaults for the rest)."""
    m = _model(model)
    values = {p.name: p.default for p in m.all_params}
    unknown = set(params) - set(values)
    if unknown:
        raise ValueError(f"model {model!r} has no parameters {sorted(unknown)}")
    specs = {p.name: p.spec for p in m.all_params}
    values.update({k: specs[k].check(v) for k, v in params.items()})
    return _forward(m, np.asarray(bias, dtype=float), values)


def _model(name: str) -> FitModel:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    return MODELS[name]


def _forward(m: FitModel, bias: np.ndarray, values: Mapping[str, float]) -> np.ndarray:
    sample = m.sample(**{p.name: values[p.name] for p in m.params}, **{k: values[k] for k in m.chain})
    g = tunneling.didv(bias, sample_dos=sample, temperature=values["temperature"], tip_delta=values["tip_delta"],
                       tip_gamma=values["tip_gamma"], vmod_rms=values["vmod_rms"])
    return values["scale"] * g


# ----------------------------------------------------------------------------- results
@dataclass
class FitResult:
    """Outcome of :func:`fit`; ``values``/``errors`` by parameter name (errors NaN when fixed)."""

    model: str
    values: dict[str, float]
    errors: dict[str, float]
    fixed: dict[str, bool]
    bounds: dict[str, tuple[float, float]]
    redchi: float
    chisqr: float
    aic: float
    bic: float
    ndata: int
    nvarys: int
    best_fit: np.ndarray
    residual: np.ndarray
    bias: np.ndarray
    data: np.ndarray
    mask: np.ndarray
    success: bool
    message: str
    nfev: int
    elapsed: float
    correlations: dict[tuple[str, str], float] = field(default_factory=dict)
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def report(self, **provenance: Any) -> dict[str, Any]:
        """JSON-able report: model, parameters with uncertainties, statistics, provenance, version."""
        from gapscope import __version__
        return {
            "software": {"name": "gapscope", "version": __version__},
            "provenance": provenance,
            "model": self.model,
            "model_doc": MODELS[self.model].doc,
            "parameters": {k: {"value": self.values[k], "stderr": _nan_to_none(self.errors[k]),
                               "fixed": self.fixed[k], "bounds": list(self.bounds[k]),
                               "unit": next(p.unit for p in MODELS[self.model].all_params if p.name == k),
                               **({"intervals": {lvl: list(v) for lvl, v in self.intervals[k].items()}}
                                  if k in self.intervals else {})}
                           for k in self.values},
            "statistics": {"redchi": self.redchi, "chisqr": self.chisqr, "aic": self.aic, "bic": self.bic,
                           "ndata": self.ndata, "nvarys": self.nvarys, "nfev": self.nfev, "success": self.success,
                           "message": self.message},
            "window_mV": [float(self.bias[self.mask].min()), float(self.bias[self.mask].max())],
            "correlations": {f"{a}~{b}": c for (a, b), c in self.correlations.items()},
        }

    def to_json(self, path: str | os.PathLike | None = None, **provenance: Any) -> str:
        return write_json(self.report(**provenance), path)


def write_json(report: Mapping[str, Any], path: str | os.PathLike | None = None) -> str:
    """``report`` as indented JSON text, also written to ``path`` if given."""
    text = json.dumps(report, indent=2)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def _nan_to_none(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


# ----------------------------------------------------------------------------- fitting
def _parameters(m: FitModel, initial: Mapping[str, float], fixed: Mapping[str, float | bool],
                bounds: Mapping[str, tuple[float, float]]):
    import lmfit

    names = {p.name for p in m.all_params}
    for label, d in (("initial", initial), ("fixed", fixed), ("bounds", bounds)):
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"{label} names {sorted(unknown)} are not parameters of model {m.name!r} "
                             f"({sorted(names)})")
    pars = lmfit.Parameters()
    for p in m.all_params:
        lo, hi = bounds.get(p.name, (p.lower, p.upper))
        lo = p.lower if lo is None else float(lo)
        hi = p.upper if hi is None else float(hi)
        if not lo < hi:
            raise ValueError(f"bounds of {p.name} must satisfy lower < upper, got ({lo}, {hi})")
        vary = p.vary
        value = float(initial.get(p.name, p.default))
        if p.name in fixed:
            fv = fixed[p.name]
            if isinstance(fv, bool):
                vary = not fv
            else:
                value, vary = float(fv), False
        elif p.name in initial and p.name in ("temperature", "tip_delta", "tip_gamma", "vmod_rms"):
            vary = p.name in bounds   # chain values given as initial stay fixed unless bounded
        if not math.isfinite(value):
            raise ValueError(f"initial value of {p.name} is not finite")
        if vary and not lo <= value <= hi:
            raise ValueError(f"initial {p.name} = {value:g} lies outside its bounds ({lo:g}, {hi:g})")
        pars.add(p.name, value=value, min=lo, max=hi, vary=vary)
    return pars


def fit(bias: np.ndarray, didv: np.ndarray, *, model: str = "dynes", initial: Mapping[str, float] | None = None,
        fixed: Mapping[str, float | bool] | None = None, bounds: Mapping[str, tuple[float, float]] | None = None,
        window: tuple[float, float] | None = None, sigma: np.ndarray | float | None = None,
        intervals: str | None = None, n_bootstrap: int = 200, seed: int = 0) -> FitResult:
    """Least-squares fit of a registered spectral model to measured dI/dV.

    Parameters
    ----------
    bias, didv : array_like
        Biases (mV) and conductance (any units; ``scale`` absorbs them).  NaN points are dropped.
    model : str
        One of :data:`MODELS`.
    initial : dict
        Starting values by name.  Chain parameters given here (temperature, tip_delta,
        tip_gamma, vmod_rms) are held fixed unless they also get ``bounds``.
    fixed : dict
        ``name: value`` fixes at that value; ``name: True/False`` fixes at / frees from the initial.
    bounds : dict
        ``name: (lower, upper)`` (``None`` keeps the default side).
    window : (float, float)
        Bias range (mV) used in the fit; ``best_fit`` covers all biases.
    sigma : array or float
        Measurement errors; if omitted the errors are scaled by √χ²_red (lmfit's default).
    intervals : {None, "profile", "bootstrap"}
        Also compute 1σ/2σ intervals by profiling χ² (lmfit ``conf_interval``) or by a
        residual bootstrap with ``n_bootstrap`` refits.

    Returns
    -------
    FitResult
    """
    import lmfit

    m = _model(model)
    V = _v.array("bias", bias).ravel() if np.all(np.isfinite(np.asarray(bias, float))) else None
    if V is None:
        raise ValueError("bias contains NaN or inf")
    y = np.asarray(didv, dtype=float).ravel()
    if V.shape != y.shape:
        raise ValueError(f"bias and didv have different lengths ({V.size} and {y.size})")
    mask = np.isfinite(y)
    if window is not None:
        lo, hi = sorted(float(w) for w in window)
        mask &= (V >= lo) & (V <= hi)
    if mask.sum() < 5:
        raise ValueError("fewer than 5 finite data points inside the fit window")
    # The minimiser's stopping tests are absolute: conductance in instrument units (~1e-9 S) would stop it
    # at the start.  It works in units of the data's magnitude (data and sigma divided by `unit`, `scale`
    # with them); results are converted back.  Without sigma the residuals are (model − data)/unit.
    unit = data_unit(y[mask])
    s = np.full(int(mask.sum()), unit) if sigma is None else np.broadcast_to(np.asarray(sigma, float), V.shape)[mask]
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("sigma must be finite and > 0")
    pars = _parameters(m, initial or {}, fixed or {}, bounds or {})
    if "scale" not in (initial or {}) and "scale" not in (fixed or {}):
        pars["scale"].value = start_scale(m, V[mask], y[mask], pars.valuesdict())
    rescale(pars, ["scale"], 1.0 / unit, cap=SCALE_CAP)
    order = np.argsort(V[mask])
    Vf, yf, sf = V[mask][order], y[mask][order] / unit, s[order] / unit

    def residual(p: lmfit.Parameters) -> np.ndarray:
        return (_forward(m, Vf, p.valuesdict()) - yf) / sf

    t0 = time.perf_counter()
    mini = lmfit.Minimizer(residual, pars, nan_policy="raise")
    out = mini.minimize(method="least_squares", x_scale="jac",
                        **({"diff_step": m.diff_step} if m.diff_step is not None else {}),
                        **({"max_nfev": m.max_nfev} if m.max_nfev is not None else {}))
    elapsed = time.perf_counter() - t0
    intervals_out: dict[str, dict[str, tuple[float, float]]] | None = None
    message = str(out.message)
    if intervals == "profile":
        try:
            ci = lmfit.conf_interval(mini, out, sigmas=[1, 2])
            intervals_out = {k: {f"{int(round(lvl_hi[0] * 100))}%": (lvl_lo[1], lvl_hi[1])
                                 for lvl_lo, lvl_hi in zip(v[:len(v) // 2][::-1], v[len(v) // 2 + 1:], strict=True)}
                             for k, v in ci.items()}
        except Exception as exc:  # conf_interval fails when a parameter sits on a bound
            message += f"; profile intervals failed: {exc}"
    elif intervals == "bootstrap":
        intervals_out = _bootstrap(m, Vf, yf, sf, out.params, out.params.valuesdict(), n_bootstrap, seed)
    elif intervals is not None:
        raise ValueError("intervals must be None, 'profile' or 'bootstrap'")
    if intervals_out is not None and "scale" in intervals_out:
        intervals_out["scale"] = {k: (lo * unit, hi * unit) for k, (lo, hi) in intervals_out["scale"].items()}
    rescale(out.params, ["scale"], unit)
    vals = out.params.valuesdict()
    best = _forward(m, V, vals)
    errors = {k: (float(out.params[k].stderr) if out.params[k].stderr is not None else math.nan)
              if out.params[k].vary else math.nan for k in vals}
    corr = {}
    for a in out.params.values():
        for b, c in (a.correl or {}).items():
            if (b, a.name) not in corr:
                corr[(a.name, b)] = float(c)
    stats = unit_statistics(out, unit if sigma is None else 1.0)
    res = FitResult(model=model, values={k: float(v) for k, v in vals.items()}, errors=errors,
                    fixed={k: not out.params[k].vary for k in vals},
                    bounds={k: (float(out.params[k].min), float(out.params[k].max)) for k in vals},
                    redchi=stats["redchi"], chisqr=stats["chisqr"], aic=stats["aic"], bic=stats["bic"],
                    ndata=int(out.ndata), nvarys=int(out.nvarys), best_fit=best, residual=y - best, bias=V, data=y,
                    mask=mask, success=bool(out.success), message=message, nfev=int(out.nfev),
                    elapsed=elapsed, correlations=corr)
    if intervals_out is not None:
        res.intervals = intervals_out
    return res


#: upper bound of ``scale`` in units of the data's RMS while fitting: a model 10⁴ times above the data is
#: no fit, and a far bound (10¹² in siemens is 10²¹ data units) stalls the bounded trust-region steps
SCALE_CAP = 1e4


def data_unit(y: np.ndarray) -> float:
    """The unit a fit works in: the RMS of the data (1 if it is 0 or not finite)."""
    u = float(np.sqrt(np.mean(np.square(y)))) if np.size(y) else 0.0
    return u if math.isfinite(u) and u > 0 else 1.0


def rescale(params: Any, names: Sequence[str], factor: float, *, cap: float = math.inf) -> None:
    """Multiply the value, bounds and error of the lmfit parameters ``names`` by ``factor`` > 0; the upper
    bound is then at most ``cap``."""
    for k in names:
        if k not in params:
            continue
        p = params[k]
        lo, hi, v, err = p.min * factor, min(p.max * factor, cap), p.value * factor, p.stderr
        p.min, p.max = -math.inf, math.inf
        p.value = v
        p.min, p.max = lo, hi
        if err is not None:
            p.stderr = err * factor


def unit_statistics(out: Any, unit: float) -> dict[str, float]:
    """χ², χ²_red, AIC and BIC of an lmfit result whose residuals were divided by ``unit``, in data units
    (AIC and BIC shift by n·ln(unit²); the errors need nothing, lmfit scales them by χ²_red)."""
    shift = out.ndata * math.log(unit ** 2)
    return {"redchi": float(out.redchi) * unit ** 2, "chisqr": float(out.chisqr) * unit ** 2,
            "aic": float(out.aic) + shift, "bic": float(out.bic) + shift}


def guess_scale(bias: np.ndarray, didv: np.ndarray) -> float:
    """A start value for ``scale``: the median conductance at the outer 20 % of |V| (data units).

    Measured conductance comes in instrument units (S, A/V, V of a lock-in, often ~1e-12): a fit
    started at scale = 1 would then sit orders of magnitude away from the data.
    """
    V = np.asarray(bias, dtype=float)
    y = np.asarray(didv, dtype=float)
    keep = np.isfinite(V) & np.isfinite(y)
    V, y = V[keep], y[keep]
    if y.size == 0:
        return 1.0
    outer = np.abs(V) >= np.percentile(np.abs(V), 80)
    g = float(np.median(y[outer]))
    return g if g > 0 else float(np.max(np.abs(y))) or 1.0


_guess_scale = guess_scale


def start_scale(m: FitModel, bias: np.ndarray, didv: np.ndarray, values: Mapping[str, float]) -> float:
    """Start value of ``scale``: the least-squares factor Σ g y / Σ g² between the data y and the
    model g at the start values (scale 1) — robust where the outer biases are no normal state
    (an SIS spectrum whose coherence peaks reach the end of the sweep); :func:`guess_scale` if that
    is not positive or the model cannot be evaluated there."""
    try:
        g = _forward(m, bias, {**values, "scale": 1.0})
    except (ValueError, RuntimeError):
        return guess_scale(bias, didv)
    gg = float(g @ g)
    s = float(g @ didv) / gg if gg > 0 else 0.0
    return s if np.isfinite(s) and s > 0 else guess_scale(bias, didv)


def plausibility(result: FitResult) -> list[str]:
    """Warnings about a fit that converged but does not describe its data (empty if none).

    * the model's level differs from the data's by more than a factor 3 (a scale started far off);
    * the residuals are larger than the data's own spread (the model misses the shape);
    * a free parameter ended on a bound.
    """
    out = []
    m = result.mask
    y, best = result.data[m], result.best_fit[m]
    ly, lm = np.median(np.abs(y)), np.median(np.abs(best))
    if ly > 0 and lm > 0 and not (1 / 3 <= lm / ly <= 3):
        out.append(f"the model's level is {lm / ly:.3g}× the data's: start 'scale' from the data (or normalise)")
    spread = float(np.std(y))
    if spread > 0 and float(np.std(y - best)) > spread:
        out.append("the residuals are larger than the data's own spread: this model does not describe the data")
    for k, v in result.values.items():
        lo, hi = result.bounds[k]
        if not result.fixed[k] and (np.isclose(v, lo, rtol=1e-6, atol=1e-12) or np.isclose(v, hi, rtol=1e-6)):
            out.append(f"{k} = {v:.4g} ended on its bound")
    return out


def _bootstrap(m: FitModel, V: np.ndarray, y: np.ndarray, s: np.ndarray, params, vals, n: int, seed: int):
    import lmfit

    best = _forward(m, V, vals)
    resid = (y - best) / s
    rng = np.random.default_rng(seed)
    free = [k for k in vals if params[k].vary]
    draws: dict[str, list[float]] = {k: [] for k in free}
    for _ in range(n):
        yb = best + s * rng.choice(resid, size=resid.size, replace=True)
        p = params.copy()

        def r(pp, yb=yb):
            return (_forward(m, V, pp.valuesdict()) - yb) / s
        o = lmfit.minimize(r, p, method="least_squares")
        for k in free:
            draws[k].append(o.params[k].value)
    return {k: {"68%": tuple(np.percentile(v, [15.87, 84.13])), "95%": tuple(np.percentile(v, [2.5, 97.5]))}
            for k, v in draws.items()}


def compare(bias: np.ndarray, didv: np.ndarray, *, models: Sequence[str] = ("dynes", "anisotropic_s", "dwave"),
            initial: Mapping[str, float] | None = None, fixed: Mapping[str, float | bool] | None = None,
            window: tuple[float, float] | None = None, sigma: np.ndarray | float | None = None
            ) -> list[FitResult]:
    """Fit several models to the same data; results sorted by AIC (best first).

    ``initial``/``fixed`` entries that a model does not have are ignored for that model,
    so shared parameters (Δ, Γ, the chain) start from the same values.
    """
    out = []
    for name in models:
        names = {p.name for p in _model(name).all_params}
        out.append(fit(bias, didv, model=name,
                       initial={k: v for k, v in (initial or {}).items() if k in names},
                       fixed={k: v for k, v in (fixed or {}).items() if k in names}, window=window, sigma=sigma))
    return sorted(out, key=lambda r: r.aic)


def synthetic(model: str, bias: np.ndarray, *, noise: float = 0.01, seed: int = 0, **params: float) -> np.ndarray:
    """The model's conductance plus Gaussian noise of standard deviation ``noise`` (labelled synthetic)."""
    g = evaluate(model, bias, **params)
    return g + np.random.default_rng(seed).normal(0.0, noise, g.shape)


# ----------------------------------------------------------------------------- grid fits
@dataclass
class GridFitResult:
    """Maps (nx, ny) of fitted values, errors and χ²_red; ``done`` marks fitted pixels."""

    model: str
    values: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    redchi: np.ndarray
    done: np.ndarray
    elapsed: float = 0.0
    cancelled: bool = False

    def save(self, path: str | os.PathLike) -> None:
        arrays = {f"value:{k}": v for k, v in self.values.items()}
        arrays.update({f"error:{k}": v for k, v in self.errors.items()})
        arrays.update(model=np.array(self.model), redchi=self.redchi, done=self.done)
        np.savez(path, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | os.PathLike) -> GridFitResult:
        with np.load(path, allow_pickle=False) as z:
            values = {k.split(":", 1)[1]: z[k] for k in z.files if k.startswith("value:")}
            errors = {k.split(":", 1)[1]: z[k] for k in z.files if k.startswith("error:")}
            return cls(str(z["model"]), values, errors, z["redchi"], z["done"])


def _fit_rows(args: tuple) -> list[tuple[int, int, dict[str, float], dict[str, float], float]]:
    bias, block, coords, model, initial, fixed, bounds, window = args
    out = []
    for (i, j), y in zip(coords, block, strict=True):
        if not np.isfinite(y).sum() >= 5:
            continue
        try:
            r = fit(bias, y, model=model, initial=initial, fixed=fixed, bounds=bounds, window=window)
            out.append((i, j, r.values, r.errors, r.redchi))
        except (ValueError, RuntimeError):
            continue
    return out


def fit_grid(bias: np.ndarray, data: np.ndarray, *, model: str = "dynes", initial: Mapping[str, float] | None = None,
             fixed: Mapping[str, float | bool] | None = None, bounds: Mapping[str, tuple[float, float]] | None = None,
             window: tuple[float, float] | None = None, n_jobs: int | None = None,
             progress: Callable[[int, int], None] | None = None, cancel: Event | None = None,
             resume: str | os.PathLike | None = None, chunk: int = 32, client: Any = None) -> GridFitResult:
    """Fit every pixel of a grid ``data`` (nx, ny, nbias) — or a line scan (n, nbias).

    Pixels go, in chunks of ``chunk`` consecutive pixels (row-major), to ``n_jobs`` worker
    processes (default: all cores) — or to a dask cluster with ``client``:

    * ``client="local"`` (or ``True``): a ``distributed.LocalCluster`` of ``n_jobs`` (default 2)
      single-threaded worker processes, started here and closed at the end;
    * ``client="tcp://host:8786"``: the scheduler at that address (see docs/grid-fits-on-dask.md);
    * a ``distributed.Client``: used as is (not closed).

    dask is imported only then (``pip install "gapscope[fit]"``).  Both paths run the same
    per-chunk fit, so their results agree to numerical precision.  ``progress(done, total)``
    is called as chunks finish; setting ``cancel`` stops after the running chunks (queued dask
    tasks are cancelled); with ``resume`` a previous result file is loaded (its fitted pixels
    are skipped) and the result is saved there after every chunk.
    """
    d = np.asarray(data, dtype=float)
    if d.ndim == 2:
        d = d[:, None, :]
    if d.ndim != 3 or d.shape[2] != np.size(bias):
        raise ValueError(f"data must be (nx, ny, nbias) with nbias = len(bias) = {np.size(bias)}, got {d.shape}")
    nx, ny, _ = d.shape
    m = _model(model)
    names = [p.name for p in m.all_params]
    if resume is not None and Path(resume).exists():
        res = GridFitResult.load(resume)
        if res.model != model or res.done.shape != (nx, ny):
            raise ValueError(f"{resume}: saved result is for model {res.model!r} on a {res.done.shape} grid")
    else:
        res = GridFitResult(model, {k: np.full((nx, ny), np.nan) for k in names},
                            {k: np.full((nx, ny), np.nan) for k in names}, np.full((nx, ny), np.nan),
                            np.zeros((nx, ny), bool))
    todo = [(i, j) for i in range(nx) for j in range(ny) if not res.done[i, j]]
    total = nx * ny
    t0 = time.perf_counter()
    jobs = [(np.asarray(bias, float), np.array([d[i, j] for i, j in todo[k:k + chunk]]), todo[k:k + chunk], model,
             dict(initial or {}), dict(fixed or {}), dict(bounds or {}), window) for k in range(0, len(todo), chunk)]
    workers = n_jobs or os.cpu_count() or 1

    def absorb(rows, coords) -> None:
        for i, j, vals, errs, rc in rows:
            for k in names:
                res.values[k][i, j] = vals[k]
                res.errors[k][i, j] = errs[k]
            res.redchi[i, j] = rc
        for i, j in coords:
            res.done[i, j] = True
        if resume is not None:
            res.save(resume)
        if progress is not None:
            progress(int(res.done.sum()), total)

    if client is not None and client is not False:
        _run_dask(client, jobs, absorb, cancel, res, n_jobs)
    elif workers <= 1:
        for job in jobs:
            if cancel is not None and cancel.is_set():
                res.cancelled = True
                break
            absorb(_fit_rows(job), job[2])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending = {pool.submit(_fit_rows, job): job[2] for job in jobs}
            for fut in as_completed(pending):
                absorb(fut.result(), pending[fut])
                if cancel is not None and cancel.is_set():
                    res.cancelled = True
                    for f in pending:
                        f.cancel()
                    break
    res.elapsed = time.perf_counter() - t0
    return res


def _dask_client(client: Any, n_workers: int | None) -> tuple[Any, list[Any]]:
    """(client, things to close): a LocalCluster for "local"/True, a scheduler address, or a Client."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:      # pragma: no cover - dask is in the "fit" extra
        raise ImportError('grid fits on dask need dask.distributed: pip install "gapscope[fit]"') from exc
    if client is True or client == "local":
        cluster = LocalCluster(n_workers=n_workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None, worker_dashboard_address=None)
        c = Client(cluster)
        return c, [c, cluster]
    if isinstance(client, str):
        c = Client(client)
        return c, [c]
    if not callable(getattr(client, "submit", None)):
        raise ValueError(f"client must be 'local', a scheduler address or a distributed.Client, got {client!r}")
    return client, []


def _run_dask(client: Any, jobs: list[tuple], absorb: Callable, cancel: Event | None, res: GridFitResult,
              n_workers: int | None) -> None:
    from distributed import as_completed as dask_completed

    c, owned = _dask_client(client, n_workers)
    try:
        futures = [c.submit(_fit_rows, job, pure=False) for job in jobs]
        coords = {f.key: job[2] for f, job in zip(futures, jobs, strict=True)}
        done = dask_completed(futures)
        for fut in done:
            absorb(fut.result(), coords[fut.key])
            if cancel is not None and cancel.is_set():
                res.cancelled = True
                c.cancel([f for f in futures if not f.done()])
                break
    finally:
        for thing in owned:
            thing.close()


# re-exports (at the end: those modules use this one's helpers at call time)
from .deconvolution import Deconvolution, deconvolve  # noqa: E402
from .fit_global import GlobalFitResult, Tie, fit_global  # noqa: E402
