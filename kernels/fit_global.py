"""Global fits: one least-squares problem over several spectra with shared and tied parameters.

Every dataset i has its own model conductance (see :mod:`.fitting`)

    G_i(V) = scale_i · didv(V; sample_dos = model(**p_i), T_i, Δ_t,i, Γ_t,i, V_rms,i),

and the parameters p_i are of four kinds:

* **shared** (named in ``shared``): one value for all datasets (e.g. a tip gap Δ_t);
* **per dataset** (every other free parameter): one value per dataset (``delta__3`` internally);
* **series**: a model parameter listed in ``series`` with one value per dataset is held fixed
  at those values (e.g. the temperatures T_i of a temperature series);
* **tied**: ``series={"delta": Tie(f, delta0=..., tc=...)}`` makes Δ_i = f(x_i; Δ₀, T_c) a
  function of the series variable x_i (e.g. ``gap.bcs_gap`` of T_i) whose own parameters
  (Δ₀, T_c) are shared free parameters of the fit.

All residuals (data − model)/σ are stacked and minimised in **one** lmfit ``least_squares`` call.
Its Jacobian is computed by forward differences dataset by dataset: a per-dataset parameter
moves only its own dataset's residuals, so a Jacobian costs Σ_i (k_i + 1) single-spectrum
evaluations (k_i the free parameters that dataset i sees), not (Σ k + 1) evaluations of
all spectra.  Errors come from the covariance (JᵀJ)⁻¹ (times χ²_red when ``sigma`` is not
given); errors of tied parameters are propagated from it (delta method).  Units: mV, meV, K.

Progress and cancel: ``progress(fraction, text)`` is called after every Jacobian (the fraction
is an estimate: the number of iterations is not known in advance); a set ``cancel`` event stops
the fit within about a second — it is checked before every single-spectrum evaluation and, through
:func:`~gapscope.kernels.models.checkpoint`, inside slow model evaluations (the Usadel solves) —
by raising :class:`~gapscope.kernels.models.FitCancelled`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .models import FitCancelled, FitParam, checking, fit_param
from .specs import Spec

__all__ = ["Tie", "fit_global", "GlobalFitResult"]

_CHAIN = ("temperature", "tip_delta", "tip_gamma", "vmod_rms")
_EPS = float(np.sqrt(np.finfo(float).eps))


class Tie:
    """A rule making a model parameter a function of a series variable: p_i = func(x_i, **params).

    Parameters
    ----------
    func : callable
        ``func(x, **params)`` → value(s); called with the array of the series variable's values
        (one per dataset), so it must be vectorised over ``x`` (e.g. ``gap.bcs_gap(T, delta0=, tc=)``).
    on : str, optional
        The series variable (a key of ``series`` with one value per dataset); needed only when
        ``series`` has more than one.
    **params : float, Spec or FitParam
        The rule's own parameters, shared free parameters of the global fit: a start value
        (bounds (−∞, ∞)), a :class:`~gapscope.kernels.specs.Spec` (start at its default, fit
        range its hard bounds) or a :class:`~gapscope.kernels.models.FitParam`.  They can also
        be given values, bounds or be fixed through ``initial``/``bounds``/``fixed`` of
        :func:`fit_global`.

    Examples
    --------
    ``Tie(gap.bcs_gap, delta0=gap.DELTA0, tc=gap.TC)`` — Δ(T) of weak-coupling BCS with Δ₀ and
    T_c free.
    """

    def __init__(self, func: Callable[..., Any], *, on: str | None = None, **params: float | Spec | FitParam) -> None:
        if not callable(func):
            raise ValueError("Tie needs a callable func(x, **params)")
        if not params:
            raise ValueError("Tie needs at least one parameter (e.g. delta0=gap.DELTA0)")
        self.func = func
        self.on = on
        self.params: dict[str, FitParam | float] = {}
        for k, v in params.items():
            if isinstance(v, Spec):
                self.params[k] = fit_param(v)
            elif isinstance(v, FitParam):
                self.params[k] = v
            else:
                x = float(v)
                if not math.isfinite(x):
                    raise ValueError(f"start value of the Tie parameter {k} is not finite")
                self.params[k] = x

    def start(self, name: str) -> tuple[float, float, float, bool]:
        """(start, lower, upper, vary) of one of the rule's parameters."""
        p = self.params[name]
        if isinstance(p, FitParam):
            return p.default, p.lower, p.upper, p.vary
        return float(p), -np.inf, np.inf, True

    def __call__(self, x: np.ndarray, **params: float) -> np.ndarray:
        return np.asarray(self.func(np.asarray(x, dtype=float), **params), dtype=float)

    def __repr__(self) -> str:
        name = getattr(self.func, "__qualname__", repr(self.func))
        return f"Tie({name}, on={self.on!r}, params={sorted(self.params)})"


@dataclass
class GlobalFitResult:
    """Outcome of :func:`fit_global`.

    ``values``/``errors``: floats for shared parameters and for the parameters of the Ties;
    arrays (one entry per dataset) for per-dataset, series and tied parameters.  Errors are NaN
    where a parameter is fixed.  ``best_fit``/``residual``/``bias``/``data`` are lists, one
    array per dataset (``best_fit`` on the dataset's full bias range).
    """

    model: str
    n_datasets: int
    values: dict[str, Any]
    errors: dict[str, Any]
    fixed: dict[str, bool]
    shared: tuple[str, ...]
    tied: dict[str, str]
    series: dict[str, np.ndarray]
    redchi: float
    chisqr: float
    aic: float
    bic: float
    ndata: int
    nvarys: int
    best_fit: list[np.ndarray]
    residual: list[np.ndarray]
    bias: list[np.ndarray]
    data: list[np.ndarray]
    masks: list[np.ndarray]
    success: bool
    message: str
    nfev: int
    elapsed: float
    correlations: dict[tuple[str, str], float] = field(default_factory=dict)

    def dataset(self, i: int) -> dict[str, float]:
        """The model's parameter values for dataset ``i`` (shared ones included), e.g. for ``fitting.evaluate``."""
        from .models import FIT_MODELS

        if not -self.n_datasets <= i < self.n_datasets:
            raise ValueError(f"dataset index {i} out of range for {self.n_datasets} datasets")
        out = {}
        for k in (p.name for p in FIT_MODELS[self.model].all_params):
            v = self.values[k]
            out[k] = float(v[i]) if isinstance(v, np.ndarray) else float(v)
        return out

    def report(self, **provenance: Any) -> dict[str, Any]:
        """JSON-able report: parameters (lists for per-dataset ones), statistics, provenance, version."""
        from gapscope import __version__

        def js(x: Any) -> Any:
            if isinstance(x, np.ndarray):
                return [None if not np.isfinite(v) else float(v) for v in x]
            return None if not np.isfinite(x) else float(x)

        return {
            "software": {"name": "gapscope", "version": __version__},
            "provenance": provenance,
            "model": self.model,
            "n_datasets": self.n_datasets,
            "parameters": {k: {"value": js(self.values[k]), "stderr": js(self.errors[k]), "fixed": self.fixed[k],
                               "shared": k in self.shared or not isinstance(self.values[k], np.ndarray),
                               **({"tied_to": self.tied[k]} if k in self.tied else {})}
                           for k in self.values},
            "series": {k: [float(v) for v in a] for k, a in self.series.items()},
            "statistics": {"redchi": self.redchi, "chisqr": self.chisqr, "aic": self.aic, "bic": self.bic,
                           "ndata": self.ndata, "nvarys": self.nvarys, "nfev": self.nfev, "success": self.success,
                           "message": self.message},
            "correlations": {f"{a}~{b}": c for (a, b), c in self.correlations.items()},
        }

    def to_json(self, path: str | os.PathLike | None = None, **provenance: Any) -> str:
        from .fitting import write_json
        return write_json(self.report(**provenance), path)


# ----------------------------------------------------------------------------- input
def _datasets(datasets: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(datasets, (str, bytes)) or not isinstance(datasets, Sequence) or len(datasets) == 0:
        raise ValueError("datasets must be a non-empty list of (bias, didv) pairs or spectra")
    out = []
    for i, d in enumerate(datasets):
        if hasattr(d, "bias") and (hasattr(d, "didv") or callable(getattr(d, "conductance", None))):
            problem = d.tunnelling_problem() if callable(getattr(d, "tunnelling_problem", None)) else None
            if problem:
                raise ValueError(f"dataset {i} is not a tunnelling spectrum: {problem}")
            V, y = d.bias, (d.didv if hasattr(d, "didv") else d.conductance())
        else:
            try:
                V, y = d
            except (TypeError, ValueError):
                raise ValueError(f"dataset {i} is neither a (bias, didv) pair nor a spectrum with .bias") from None
        V = np.asarray(V, dtype=float).ravel()
        y = np.asarray(y, dtype=float).ravel()
        if V.shape != y.shape:
            raise ValueError(f"dataset {i}: bias and didv have different lengths ({V.size} and {y.size})")
        if not np.all(np.isfinite(V)):
            raise ValueError(f"dataset {i}: bias contains NaN or inf")
        out.append((V, y))
    return out


def _per_dataset(name: str, value: Any, n: int, what: str) -> list[Any]:
    """A scalar (or bool) for all datasets, or one entry per dataset."""
    if isinstance(value, (bool, np.bool_)) or np.ndim(value) == 0:
        return [value] * n
    vals = list(value.ravel()) if isinstance(value, np.ndarray) else list(value)
    if len(vals) != n:
        raise ValueError(f"{what} of {name} has {len(vals)} entries for {n} datasets")
    return vals


# ----------------------------------------------------------------------------- the fit
def fit_global(datasets: Sequence[Any], *, model: str = "dynes", shared: Sequence[str] = (),
               series: Mapping[str, Any] | None = None, initial: Mapping[str, Any] | None = None,
               fixed: Mapping[str, Any] | None = None, bounds: Mapping[str, tuple[float, float]] | None = None,
               window: tuple[float, float] | None = None, sigma: Any = None,
               progress: Callable[[float, str], None] | None = None, cancel: Any = None) -> GlobalFitResult:
    """Fit one registered model to several spectra at once, with shared and tied parameters.

    Parameters
    ----------
    datasets : list
        ``(bias, didv)`` pairs (mV, any conductance unit), reader spectra
        (:class:`~gapscope.kernels.readers.Spectrum`: ``.bias`` and ``.conductance()``), or
        objects with ``.bias`` and ``.didv``.  NaN conductances are dropped.
    model : str
        A registered fit model (:data:`gapscope.kernels.fitting.MODELS`).
    shared : sequence of str
        Parameters that take one value for all datasets; all other free ones are per dataset.
    series : dict, optional
        ``name: values`` (one per dataset) declares a series variable; if ``name`` is a model
        parameter (e.g. ``"temperature"``) it is fixed per dataset at those values.
        ``name: Tie(...)`` makes the model parameter ``name`` a function of a series variable
        (see :class:`Tie`); the Tie's parameters become shared free parameters.
    initial, fixed, bounds : dict, optional
        As in :func:`gapscope.kernels.fitting.fit` (chain parameters given in ``initial`` stay
        fixed unless bounded; ``fixed={"tip_delta": False}`` frees one).  Values of ``initial``
        and ``fixed`` may be a scalar or one entry per dataset (per-dataset parameters).  Names
        may be model parameters or parameters of a Tie.
    window : (float, float), optional
        Bias range (mV) used for every dataset.
    sigma : float, array or list, optional
        Measurement errors: one value for all, or a list with a float/array per dataset.  If
        omitted, errors are scaled by √χ²_red.
    progress : callable, optional
        ``progress(fraction, text)``, called at the start, after every Jacobian and at the end (it
        may raise to stop the fit; the exception propagates).
    cancel : threading.Event, optional
        Once set, the fit stops within about a second and raises
        :class:`~gapscope.kernels.models.FitCancelled` (anything with ``is_set()`` will do).

    Returns
    -------
    GlobalFitResult

    Raises
    ------
    FitCancelled
        ``cancel`` was set (its ``values`` are the last parameters tried).

    Examples
    --------
    Δ(T) of BCS with Δ₀, T_c free and a Γ shared by six spectra at temperatures ``T``::

        fit_global(spectra, model="dynes", shared=["gamma"],
                   series={"temperature": T, "delta": Tie(gap.bcs_gap, delta0=gap.DELTA0, tc=gap.TC)},
                   initial={"delta0": 1.4, "tc": 8.0})
    """
    if progress is not None and not callable(progress):
        raise ValueError("progress must be a callable progress(fraction, text)")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise ValueError("cancel must be a threading.Event (or have is_set())")
    monitor = _Monitor(progress, cancel)
    with checking(monitor.check):
        return _fit_global(monitor, datasets, model=model, shared=shared, series=series, initial=initial,
                           fixed=fixed, bounds=bounds, window=window, sigma=sigma)


class _Monitor:
    """Progress reports and the cancel check of one global fit."""

    def __init__(self, progress: Callable[[float, str], None] | None, cancel: Any) -> None:
        self.progress = progress
        self.cancel = cancel
        self.nfev = 0
        self.njev = 0
        self.last: dict[str, float] = {}

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise FitCancelled(f"global fit cancelled after {self.nfev} spectrum evaluations ({self.njev} "
                               "Jacobians); no result", self.last, self.nfev)

    def report(self, fraction: float, text: str) -> None:
        self.check()
        if self.progress is not None:
            self.progress(float(min(max(fraction, 0.0), 1.0)), text)


def _fit_global(monitor: _Monitor, datasets: Sequence[Any], *, model: str, shared: Sequence[str],
                series: Mapping[str, Any] | None, initial: Mapping[str, Any] | None, fixed: Mapping[str, Any] | None,
                bounds: Mapping[str, tuple[float, float]] | None, window: tuple[float, float] | None,
                sigma: Any) -> GlobalFitResult:
    import lmfit

    from .fitting import SCALE_CAP, _forward, _model, data_unit, rescale, unit_statistics

    m = _model(model)
    data = _datasets(datasets)
    n = len(data)
    names = [p.name for p in m.all_params]
    specs = {p.name: p for p in m.all_params}
    monitor.report(0.0, f"global fit of {n} spectra: starting")
    shared = tuple(shared)
    series = dict(series or {})
    initial = dict(initial or {})
    fixed = dict(fixed or {})
    bounds = dict(bounds or {})

    # --- series variables and ties
    variables: dict[str, np.ndarray] = {}
    ties: dict[str, Tie] = {}
    for k, v in series.items():
        if isinstance(v, Tie):
            ties[k] = v
        else:
            a = np.asarray(v, dtype=float).ravel()
            if a.size != n or not np.all(np.isfinite(a)):
                raise ValueError(f"series {k!r} must have one finite value per dataset ({n}), got {np.size(v)}")
            if k in specs:
                a = np.array([specs[k].spec.check(float(x)) for x in a])
            variables[k] = a
    on: dict[str, str] = {}            # tied parameter → its series variable
    for k, t in ties.items():
        if k not in specs:
            raise ValueError(f"series ties {k!r}, which is not a parameter of model {model!r} ({sorted(names)})")
        if k in shared or k in fixed or k in variables:
            raise ValueError(f"{k} is tied by a Tie and cannot also be shared, fixed or a series variable")
        var = t.on
        if var is None:
            if len(variables) != 1:
                raise ValueError(f"the Tie of {k} must name its series variable (on=...): series has "
                                 f"{sorted(variables) or 'no'} variables")
            var = next(iter(variables))
        if var not in variables:
            raise ValueError(f"the Tie of {k} is on {var!r}, which is not a series variable ({sorted(variables)})")
        on[k] = var
    tie_params: dict[str, tuple[float, float, float, bool]] = {}
    for t in ties.values():
        for tp in t.params:
            if tp in specs:
                raise ValueError(f"Tie parameter {tp!r} clashes with a parameter of model {model!r}")
            tie_params.setdefault(tp, t.start(tp))
    unused = [k for k in variables if k not in specs and k not in on.values()]
    if unused:
        raise ValueError(f"series variables {unused} are neither model parameters nor used by a Tie")
    allowed = set(names) | set(tie_params)
    for label, d in (("initial", initial), ("fixed", fixed), ("bounds", bounds), ("shared", dict.fromkeys(shared))):
        bad = set(d) - allowed
        if bad:
            raise ValueError(f"{label} names {sorted(bad)} are not parameters of model {model!r} "
                             f"({sorted(names)}) or of a Tie ({sorted(tie_params)})")
    clash = [k for k in shared if k in variables or k in tie_params]
    if clash:
        raise ValueError(f"{clash} cannot be shared: series variables are per dataset, Tie parameters are "
                         "always shared")

    # --- windows, sigma
    if sigma is None or np.ndim(sigma) == 0 and not isinstance(sigma, (list, tuple)):
        sig_list = [sigma] * n
    else:
        sig_list = list(sigma)
        if len(sig_list) != n:
            raise ValueError(f"sigma must be one value or a list with one entry per dataset ({n})")
    Vf, yf, sf, masks = [], [], [], []
    for i, ((V, y), s) in enumerate(zip(data, sig_list, strict=True)):
        mask = np.isfinite(y)
        if window is not None:
            lo, hi = sorted(float(w) for w in window)
            mask &= (V >= lo) & (V <= hi)
        if mask.sum() < 5:
            raise ValueError(f"dataset {i}: fewer than 5 finite data points inside the fit window")
        si = np.ones(int(mask.sum())) if s is None else np.broadcast_to(np.asarray(s, float), V.shape)[mask]
        if np.any(~np.isfinite(si)) or np.any(si <= 0):
            raise ValueError(f"dataset {i}: sigma must be finite and > 0")
        order = np.argsort(V[mask])
        Vf.append(V[mask][order])
        yf.append(y[mask][order])
        sf.append(np.array(si)[order])
        masks.append(mask)
    # the minimisation works in units of the data's magnitude (absolute stopping tests; see fitting.fit):
    # data, sigma and scale divided by `unit`; without sigma the residuals are (model − data)/unit
    unit = data_unit(np.concatenate(yf))
    sf = [si if s is not None else si * unit for si, s in zip(sf, sig_list, strict=True)]
    yf = [v / unit for v in yf]
    sf = [v / unit for v in sf]

    # --- parameters
    pars = lmfit.Parameters()
    where: dict[str, list[str]] = {}      # model parameter → lmfit names per dataset (or one shared)
    per = [k for k in names if k not in variables and k not in ties]
    for k in per:
        p = specs[k]
        blo, bhi = bounds.get(k, (p.lower, p.upper))
        lo = p.lower if blo is None else float(blo)
        hi = p.upper if bhi is None else float(bhi)
        if not lo < hi:
            raise ValueError(f"bounds of {k} must satisfy lower < upper, got ({lo}, {hi})")
        if k in initial:
            starts = _per_dataset(k, initial[k], n, "initial")
        elif k == "scale":
            starts = _scale_starts(m, data, masks, pars, where, per, variables, ties, on, initial, specs, n)
            starts = [float(np.median(starts))] * n if k in shared else starts
        else:
            starts = [p.default] * n
        vary = [p.vary] * n
        if k in fixed:
            fv = _per_dataset(k, fixed[k], n, "fixed")
            for i, f in enumerate(fv):
                if isinstance(f, (bool, np.bool_)):
                    vary[i] = not f
                else:
                    starts[i], vary[i] = float(f), False
        elif k in initial and k in _CHAIN:
            vary = [k in bounds] * n
        if k in shared:
            if len({float(s) for s in starts}) > 1 or len(set(vary)) > 1:
                raise ValueError(f"{k} is shared: give it one initial value and one fixed state")
            starts, vary = starts[:1], vary[:1]
        labels = [k] if k in shared else [f"{k}__{i}" for i in range(n)]
        for lab, start, v in zip(labels, starts, vary, strict=True):
            x0 = float(start)
            if not math.isfinite(x0):
                raise ValueError(f"initial value of {k} is not finite")
            if v and not lo <= x0 <= hi:
                raise ValueError(f"initial {k} = {x0:g} lies outside its bounds ({lo:g}, {hi:g})")
            if not v:
                p.spec.check(x0)
            pars.add(lab, value=x0, min=lo, max=hi, vary=bool(v))
        where[k] = labels
    for k, (s0, lo0, hi0, v0) in tie_params.items():
        blo, bhi = bounds.get(k, (lo0, hi0))
        lo = lo0 if blo is None else float(blo)
        hi = hi0 if bhi is None else float(bhi)
        x0 = float(initial.get(k, s0))
        free = v0
        if k in fixed:
            if isinstance(fixed[k], (bool, np.bool_)):
                free = not fixed[k]
            else:
                x0, free = float(fixed[k]), False
        if not lo < hi:
            raise ValueError(f"bounds of {k} must satisfy lower < upper, got ({lo}, {hi})")
        if free and not lo <= x0 <= hi:
            raise ValueError(f"initial {k} = {x0:g} lies outside its bounds ({lo:g}, {hi:g})")
        pars.add(k, value=x0, min=lo, max=hi, vary=bool(free))

    scale_labels = list(where["scale"]) if "scale" in where else []
    scale_set = set(scale_labels)
    rescale(pars, scale_labels, 1.0 / unit, cap=SCALE_CAP)
    var_names = [k for k, p in pars.items() if p.vary]
    col = {k: j for j, k in enumerate(var_names)}
    tie_cols = [col[k] for k in tie_params if k in col]
    sees = []              # per dataset: the free parameters (column indices) its residuals depend on
    for i in range(n):
        cols = [col[where[k][0 if len(where[k]) == 1 else i]] for k in per
                if where[k][0 if len(where[k]) == 1 else i] in col]
        sees.append(sorted(set(cols + tie_cols)))
    rows = np.cumsum([0] + [v.size for v in Vf])

    def values_of(pv: Mapping[str, float]) -> list[dict[str, float]]:
        tied = {k: t(variables[on[k]], **{p: pv[p] for p in t.params}) for k, t in ties.items()}
        out = []
        for i in range(n):
            d = {k: pv[where[k][0 if len(where[k]) == 1 else i]] for k in per}
            d.update({k: float(a[i]) for k, a in variables.items() if k in specs})
            for k, a in tied.items():
                vi = float(np.broadcast_to(a, (n,))[i])
                if not math.isfinite(vi):
                    raise ValueError(f"the Tie of {k} returned a non-finite value for dataset {i}")
                d[k] = vi
            out.append(d)
        return out

    def one(i: int, vals: Mapping[str, float]) -> np.ndarray:
        monitor.check()
        monitor.nfev += 1
        return (_forward(m, Vf[i], vals) - yf[i]) / sf[i]

    cache: dict[str, Any] = {"key": None, "res": None}

    def residual(p: lmfit.Parameters, **_: Any) -> np.ndarray:
        pv = p.valuesdict()
        key = tuple(pv[k] for k in var_names)
        if cache["key"] == key:
            return np.concatenate(cache["res"])
        monitor.last = {k: v * unit if k in scale_set else v for k, v in pv.items()}
        vals = values_of(pv)
        res = [one(i, vals[i]) for i in range(n)]
        cache["key"], cache["res"] = key, res
        return np.concatenate(res)

    upper = np.array([pars[k].max for k in var_names])
    typical = np.array([abs(pars[k].value) or 1.0 for k in var_names])
    step = max(_EPS, m.diff_step or 0.0)       # relative; a model of an iterative solver declares a larger one

    def jacobian(p: lmfit.Parameters, **_: Any) -> np.ndarray:
        pv = p.valuesdict()
        residual(p)
        base = cache["res"]
        x = np.array([pv[k] for k in var_names])
        J = np.zeros((int(rows[-1]), len(var_names)))
        for j in range(len(var_names)):
            h = step * max(abs(x[j]), 1e-3 * typical[j])
            if x[j] + h > upper[j]:
                h = -h
            q = dict(pv)
            q[var_names[j]] = x[j] + h
            affected = [i for i in range(n) if j in sees[i]]
            if not affected:
                continue
            vals = values_of(q)
            for i in affected:
                J[rows[i]:rows[i + 1], j] = (one(i, vals[i]) - base[i]) / h
        monitor.njev += 1
        chi2 = float(sum(float(b @ b) for b in base))
        monitor.report(0.05 + 0.9 * monitor.njev / (monitor.njev + 8.0),
                       f"global fit of {n} spectra: iteration {monitor.njev}, χ² = {chi2:.5g}, "
                       f"{monitor.nfev} spectrum evaluations")
        return J

    t0 = time.perf_counter()
    mini = lmfit.Minimizer(residual, pars, nan_policy="raise", scale_covar=sigma is None)
    out = mini.minimize(method="least_squares", jac=jacobian, x_scale="jac",
                        **({"max_nfev": m.max_nfev} if m.max_nfev is not None else {}))
    elapsed = time.perf_counter() - t0

    monitor.check()
    # --- results
    rescale(out.params, scale_labels, unit)
    pv = out.params.valuesdict()
    final = values_of(pv)
    best = [_forward(m, V, final[i]) for i, (V, _) in enumerate(data)]

    def err(lab: str) -> float:
        q = out.params[lab]
        return float(q.stderr) if q.vary and q.stderr is not None else math.nan

    values: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    fixed_out: dict[str, bool] = {}
    for k in names:
        if k in per:
            labs = where[k]
            if len(labs) == 1:
                values[k], errors[k] = float(pv[labs[0]]), err(labs[0])
            else:
                values[k] = np.array([pv[lab] for lab in labs])
                errors[k] = np.array([err(lab) for lab in labs])
            fixed_out[k] = not any(out.params[lab].vary for lab in labs)
        elif k in variables:
            values[k], errors[k], fixed_out[k] = variables[k].copy(), np.full(n, math.nan), True
        else:
            values[k] = np.array([final[i][k] for i in range(n)])
            errors[k] = _tied_errors(ties[k], variables[on[k]], pv, out, var_names)
            fixed_out[k] = False
    for k in tie_params:
        values[k], errors[k], fixed_out[k] = float(pv[k]), err(k), not out.params[k].vary
    for k, a in variables.items():
        if k not in specs:
            values.setdefault(k, a.copy())
            errors.setdefault(k, np.full(n, math.nan))
            fixed_out.setdefault(k, True)
    glob = set(shared) | set(tie_params)
    corr: dict[tuple[str, str], float] = {}
    for a in out.params.values():
        if a.name not in glob:
            continue
        for b, c in (a.correl or {}).items():
            if b in glob and (b, a.name) not in corr:
                corr[(a.name, b)] = float(c)
    resid = [y - b for (_, y), b in zip(data, best, strict=True)]
    stats = unit_statistics(out, unit if sigma is None else 1.0)
    monitor.report(1.0, f"global fit of {n} spectra: done ({monitor.njev} iterations)")
    return GlobalFitResult(
        model=model, n_datasets=n, values=values, errors=errors, fixed=fixed_out, shared=shared,
        tied=dict(on), series={k: a.copy() for k, a in variables.items()},
        redchi=stats["redchi"], chisqr=stats["chisqr"], aic=stats["aic"], bic=stats["bic"],
        ndata=int(out.ndata), nvarys=int(out.nvarys), best_fit=best, residual=resid,
        bias=[V for V, _ in data], data=[y for _, y in data], masks=masks, success=bool(out.success),
        message=str(out.message), nfev=int(out.nfev), elapsed=elapsed, correlations=corr)


def _tied_errors(tie: Tie, x: np.ndarray, pv: Mapping[str, float], out: Any, var_names: list[str]) -> np.ndarray:
    """1σ errors of a tied parameter f(x_i; θ) from the covariance of θ: √(g C gᵀ), g = ∂f/∂θ (central differences)."""
    free = [p for p in tie.params if p in var_names]
    n = x.size
    if not free or out.covar is None:
        return np.full(n, math.nan)
    idx = [var_names.index(p) for p in free]
    C = np.asarray(out.covar)[np.ix_(idx, idx)]
    base = {p: pv[p] for p in tie.params}
    g = np.zeros((n, len(free)))
    for j, p in enumerate(free):
        h = 1e-6 * max(abs(base[p]), 1e-6)
        up, dn = dict(base), dict(base)
        up[p] += h
        dn[p] -= h
        try:
            g[:, j] = (np.broadcast_to(tie(x, **up), (n,)) - np.broadcast_to(tie(x, **dn), (n,))) / (2 * h)
        except ValueError:        # the lower step leaves the rule's domain (e.g. T_c → 0): one-sided
            g[:, j] = (np.broadcast_to(tie(x, **up), (n,)) - np.broadcast_to(tie(x, **base), (n,))) / h
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", g, C, g), 0.0))


def _scale_starts(m: Any, data: list[tuple[np.ndarray, np.ndarray]], masks: list[np.ndarray], pars: Any,
                  where: Mapping[str, list[str]], per: list[str], variables: Mapping[str, np.ndarray],
                  ties: Mapping[str, Tie], on: Mapping[str, str], initial: Mapping[str, Any],
                  specs: Mapping[str, Any], n: int) -> list[float]:
    """Per-dataset start of ``scale``: :func:`~.fitting.start_scale` at the other start values
    (those not built yet at their defaults or ``initial``); tied parameters at their Tie's start."""
    from .fitting import guess_scale, start_scale

    out = []
    for i, ((V, y), mask) in enumerate(zip(data, masks, strict=True)):
        vals: dict[str, float] = {}
        for k in per:
            if k in where:
                vals[k] = float(pars[where[k][0 if len(where[k]) == 1 else i]].value)
            elif k in initial and np.ndim(initial[k]) == 0:
                vals[k] = float(initial[k])
            elif k in initial:
                vals[k] = float(np.asarray(initial[k], dtype=float).ravel()[i])
            else:
                vals[k] = specs[k].default
        vals.update({k: float(a[i]) for k, a in variables.items() if k in specs})
        try:
            for k, t in ties.items():
                tp = {p: float(initial.get(p, t.start(p)[0])) for p in t.params}
                vals[k] = float(np.broadcast_to(t(variables[on[k]], **tp), (n,))[i])
            out.append(start_scale(m, V[mask], y[mask], vals))
        except (ValueError, RuntimeError):
            out.append(guess_scale(V[mask], y[mask]))
    return out
