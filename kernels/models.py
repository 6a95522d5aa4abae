"""Registry of fittable spectral models, contributed by the topic modules.

A topic (``dos``, ``ysr``, …) declares each of its fit models next to its kernels as a
:class:`FitModel` — its parameters (:class:`~gapscope.kernels.specs.Spec` records, each with
a fit default: free or fixed, start value, fit range) and a factory ``sample(**params)``
that returns a sample DOS obeying the contract of :mod:`.sampling` — and calls
:func:`register`.  :mod:`.fitting` collects :data:`FIT_MODELS` and imports no topic, so a new
topic adds fit models without touching the fitter.  Every model gets the measurement chain
(:data:`CHAIN_PARAMS`: temperature, tip gap and broadening, lock-in) and a conductance
``scale``:

    G_model(V) = scale · didv(V; sample_dos = model.sample(**params), T, Δ_t, Γ_t, V_rms).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from . import tunneling
from .sampling import SampleDOSLike
from .specs import Spec

__all__ = ["FitParam", "FitModel", "fit_param", "register", "models_table", "FIT_MODELS", "CHAIN_PARAMS", "SCALE",
           "FitCancelled", "checkpoint", "checking"]


@dataclass(frozen=True)
class FitParam:
    """A parameter of a fit model: its :class:`Spec` plus fit defaults.

    ``default`` is the start value, ``lower``/``upper`` the default fit range (within the
    spec's hard bounds), ``vary`` whether it is free by default.
    """

    spec: Spec
    vary: bool = True
    start: float | None = None
    fit_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        lo, hi = self.bounds_for_fit
        self.spec.check(lo)
        self.spec.check(hi)
        if not lo < hi:
            raise ValueError(f"{self.name}: fit range must satisfy lower < upper, got ({lo}, {hi})")
        self.spec.check(self.default)

    name = property(lambda self: self.spec.name)
    unit = property(lambda self: self.spec.unit)
    doc = property(lambda self: self.spec.doc)
    symbol = property(lambda self: self.spec.symbol)

    @property
    def default(self) -> float:
        return self.spec.default if self.start is None else float(self.start)

    @property
    def bounds_for_fit(self) -> tuple[float, float]:
        if self.fit_range is not None:
            return self.fit_range
        lo, hi = self.spec.bounds
        if self.spec.open_low:
            lo = lo + max(abs(lo) * 1e-9, 1e-12)
        return lo, hi

    lower = property(lambda self: self.bounds_for_fit[0])
    upper = property(lambda self: self.bounds_for_fit[1])


def fit_param(spec: Spec, *, vary: bool = True, start: float | None = None,
              fit_range: tuple[float, float] | None = None) -> FitParam:
    """A :class:`FitParam` for ``spec`` (free by default, starting at the spec's default)."""
    return FitParam(spec, vary, start, fit_range)


#: conductance scale of measured data (data units per normalised unit)
SCALE = Spec("scale", "s", "", 1.0, (0.0, 2.0), (0.0, 1e12), 0.01,
             "normal-state conductance (data units)")

#: the measurement chain every model shares (fixed by default: known from the experiment)
CHAIN_PARAMS: tuple[FitParam, ...] = (
    fit_param(tunneling.TEMPERATURE, vary=False, start=1.0, fit_range=(0.0, 50.0)),
    fit_param(tunneling.TIP_DELTA, vary=False, start=0.0, fit_range=(0.0, 10.0)),
    fit_param(tunneling.TIP_GAMMA, vary=False, start=0.01, fit_range=(1e-4, 2.0)),
    fit_param(tunneling.VMOD_RMS, vary=False, start=0.0, fit_range=(0.0, 5.0)),
    fit_param(SCALE, vary=True),
)


@dataclass(frozen=True)
class FitModel:
    """A fittable spectral model.

    Attributes
    ----------
    name : str
        Registry key (``fitting.fit(..., model=name)``).
    params : tuple of FitParam
        The model's own parameters (the chain and scale are added by :attr:`all_params`).
    sample : callable
        ``sample(**params) → sample DOS`` (see :mod:`.sampling`).
    doc : str
        One line: what the model is.
    topic : str
        The topic module that registered it.
    chain : tuple of str
        Chain parameters (names in :data:`CHAIN_PARAMS`) the sample DOS depends on as well; they are
        passed to ``sample`` beside the model's own (e.g. the temperature of a self-consistent gap).
    diff_step : float, optional
        Relative finite-difference step of the fitters' Jacobians, for a model evaluated by an
        iterative solver whose tolerance makes the default step (√ε ≈ 1.5e-8) too small.
    max_nfev : int, optional
        Most residual evaluations of one fit (scipy's ``max_nfev``), for a model whose evaluation
        costs a solve (default: lmfit's 2000·(free + 1)).
    """

    name: str
    params: tuple[FitParam, ...]
    sample: Callable[..., SampleDOSLike]
    doc: str = ""
    topic: str = ""
    chain: tuple[str, ...] = ()
    diff_step: float | None = None
    max_nfev: int | None = None

    @property
    def all_params(self) -> tuple[FitParam, ...]:
        return self.params + CHAIN_PARAMS


#: every registered fit model, by name
FIT_MODELS: dict[str, FitModel] = {}


def register(model: FitModel) -> FitModel:
    """Add a fit model to :data:`FIT_MODELS`; a name can be registered once."""
    if model.name in FIT_MODELS and FIT_MODELS[model.name] is not model:
        raise ValueError(f"a fit model named {model.name!r} is already registered "
                         f"(by {FIT_MODELS[model.name].topic or 'another topic'})")
    names = [p.name for p in model.all_params]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"fit model {model.name!r} declares {sorted(dup)} twice (the chain and scale are added)")
    chain = {p.name for p in CHAIN_PARAMS} - {"scale"}
    if not set(model.chain) <= chain:
        raise ValueError(f"fit model {model.name!r}: chain names {sorted(set(model.chain) - chain)} are not chain "
                         f"parameters ({sorted(chain)})")
    if model.diff_step is not None and not (math.isfinite(model.diff_step) and 0.0 < model.diff_step < 0.1):
        raise ValueError(f"fit model {model.name!r}: diff_step must lie in (0, 0.1), got {model.diff_step!r}")
    if model.max_nfev is not None and not (isinstance(model.max_nfev, int) and model.max_nfev >= 10):
        raise ValueError(f"fit model {model.name!r}: max_nfev must be an integer ≥ 10, got {model.max_nfev!r}")
    FIT_MODELS[model.name] = model
    return model


def models_table() -> str:
    """Markdown table of the registered fit models: name, what it is, its parameters (free ones bold)."""
    rows = ["| model | what | parameters (free by default in bold; all models add the chain and `scale`) |",
            "|---|---|---|"]
    for m in FIT_MODELS.values():
        params = ", ".join((f"**`{p.name}`**" if p.vary else f"`{p.name}`") + (f" ({p.unit})" if p.unit else "")
                           for p in m.params)
        rows.append(f"| `{m.name}` | {m.doc} | {params} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- cancelling a fit
class FitCancelled(Exception):
    """A fit stopped because its ``cancel`` event was set (see :func:`gapscope.kernels.fitting.fit_global`).

    ``values`` holds the last parameter values the fitter tried (there is no fit result: the minimisation
    was interrupted), ``evaluations`` the number of model evaluations until then.
    """

    def __init__(self, message: str, values: Mapping[str, Any] | None = None, evaluations: int = 0) -> None:
        super().__init__(message)
        self.values = dict(values or {})
        self.evaluations = int(evaluations)


_CHECK: ContextVar[Callable[[], None] | None] = ContextVar("gapscope_fit_check", default=None)


def checkpoint() -> None:
    """Called by slow model evaluations between the steps of their solvers: inside a cancellable fit
    (:func:`checking`) it raises :class:`FitCancelled` once the fit was cancelled; elsewhere it does nothing."""
    check = _CHECK.get()
    if check is not None:
        check()


@contextlib.contextmanager
def checking(check: Callable[[], None]) -> Iterator[None]:
    """Within the block (in this thread), :func:`checkpoint` calls ``check`` (which raises to cancel)."""
    token = _CHECK.set(check)
    try:
        yield
    finally:
        _CHECK.reset(token)
