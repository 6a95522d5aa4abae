"""Architecture tests driven by the registries: they tell a topic's author what is missing.

A topic is its own files (a kernels module with specs and fit models, a panel, a notebook,
tests) plus one line in ``widgets/registry.py``.  These tests check the joints.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gapscope.kernels as kernels
from gapscope.kernels import dos, fitting, gap, models, ysr
from gapscope.kernels.specs import Spec
from gapscope.widgets import PANELS, markdown_table

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def kernel_modules():
    out = []
    for info in pkgutil.walk_packages(kernels.__path__, prefix="gapscope.kernels."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        out.append(importlib.import_module(info.name))
    return out


def kernel_specs() -> dict[int, tuple[str, Spec]]:
    """Every Spec declared at module level in gapscope.kernels, by identity."""
    found = {}
    for mod in kernel_modules():
        for name, obj in vars(mod).items():
            if isinstance(obj, Spec) and not name.startswith("_"):
                found.setdefault(id(obj), (f"{mod.__name__}.{name}", obj))
    return found


def test_importing_kernels_loads_no_ui():
    code = ("import sys, gapscope.kernels, gapscope.kernels.fitting; "
            "bad = [m for m in ('ipywidgets', 'bqplot', 'traitlets', 'IPython', 'voila') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing gapscope.kernels loaded UI packages: {out}"


def test_every_kernel_module_is_imported_by_the_package():
    names = {m.__name__.split(".")[2] for m in kernel_modules()}
    missing = names - set(kernels.__all__) - set(kernels.OPTIONAL)
    assert not missing, f"kernels modules not imported by gapscope.kernels: {sorted(missing)}"


def test_fitting_imports_no_topic():
    src = (ROOT / "kernels" / "fitting.py").read_text(encoding="utf-8")
    for topic in ("dos", "ysr", "gap", "proximity", "ising", "chains", "lattice"):
        assert f"import {topic}" not in src and f"from .{topic} " not in src, f"fitting imports the topic {topic}"


@pytest.mark.parametrize("key", list(PANELS))
def test_every_panel_has_a_notebook_that_shows_it(key):
    entry = PANELS[key]
    nb = NOTEBOOKS / entry.notebook
    assert nb.exists(), f"panel {key!r} names notebook {entry.notebook}, which does not exist"
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert entry.factory.__name__ in code, f"{entry.notebook} does not show {entry.factory.__name__}"
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")


def test_every_notebook_has_a_panel():
    listed = {e.notebook for e in PANELS.values()} | {"index.ipynb"}
    extra = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if p.name not in listed)
    assert not extra, f"notebooks without a registered panel: {extra} (add a PanelEntry in widgets/registry.py)"


@pytest.mark.parametrize("key", list(PANELS))
def test_panel_params_render_kernel_specs(key):
    """A panel's parameters are the kernels' specs (same hard bounds), or panel-only specs it declares."""
    cls = PANELS[key].factory
    by_name = {}
    for label, spec in kernel_specs().values():
        by_name.setdefault(spec.name, []).append((label, spec))
    panel_module = sys.modules[cls.__module__]
    own = {id(v) for v in vars(panel_module).values() if isinstance(v, Spec)}
    for p in cls.PARAMS:
        if id(p.spec) in own:
            continue
        matches = [lbl for lbl, s in by_name.get(p.name, []) if s.bounds == p.spec.bounds and s.unit == p.spec.unit]
        assert matches, (f"{cls.__name__} parameter {p.name!r} matches no kernel spec (name, unit and bounds); "
                         "render a spec from gapscope.kernels, or declare a panel-only Spec in the panel module")


def _probe_fit(model: str, name: str, value: float) -> None:
    fitting.evaluate(model, np.array([-2.0, 0.3, 2.0]), **{name: value})


#: probes for specs that are not parameters of a fit model: spec label → callable(value)
_SUB = dict(dim=2, kf=10.0, hbar_vf=179.0, delta=1.5, gamma=0.02)
PROBES = {
    "gapscope.kernels.dos.HARMONIC": lambda x: dos.anisotropic_s(0.5, delta=1.0, anisotropy=0.3, gamma=0.02, n=x),
    "gapscope.kernels.gap.DELTA0": lambda x: gap.bcs_gap(1.0, delta0=x, tc=7.0),
    "gapscope.kernels.gap.TC": lambda x: gap.bcs_gap(1.0, delta0=1.0, tc=x),
    "gapscope.kernels.ysr.TIP_HEIGHT": lambda x: ysr.ldos(ysr.Substrate(**{**_SUB, "dim": 3}), [ysr.Impurity()],
                                                          [[0.3, 0.0]], [0.5], tip_height=x),
    "gapscope.kernels.ysr.ORBITAL_RADIUS": lambda x: ysr.ldos(ysr.Substrate(**_SUB), [ysr.Impurity()], [[0.3, 0.0]],
                                                              [0.5], orbital_radius=x),
    "gapscope.kernels.proximity.DELTA_S": lambda x: kernels.proximity.Junction(delta_s=x),
    "gapscope.kernels.proximity.DELTA_N": lambda x: kernels.proximity.Junction(delta_n=x),
    "gapscope.kernels.proximity.XI_S": lambda x: kernels.proximity.Junction(xi_s=x, length_s=max(x, 0.5)),
    "gapscope.kernels.proximity.XI_N": lambda x: kernels.proximity.Junction(xi_n=x, length_n=max(x, 0.5)),
    "gapscope.kernels.proximity.GAMMA": lambda x: kernels.proximity.Junction(gamma=x),
    "gapscope.kernels.proximity.GAMMA_B": lambda x: kernels.proximity.Junction(gamma_b=x),
    "gapscope.kernels.proximity.REFLECTIVITY": lambda x: kernels.proximity.gamma_b_from_r(x),
    "gapscope.kernels.proximity.TEMPERATURE": lambda x: kernels.proximity.Junction(temperature=x,
                                                                                   omega_c=max(30.0, 1.1 * x)),
    "gapscope.kernels.proximity.OMEGA_C": lambda x: kernels.proximity.Junction(omega_c=x, delta_s=0.1, delta_n=0.0),
    "gapscope.kernels.proximity.DYNES_GAMMA": lambda x: kernels.proximity.Junction(dynes_gamma=x),
    "gapscope.kernels.proximity.LENGTH_S": lambda x: kernels.proximity.Junction(length_s=x, xi_s=min(x, 6.0)),
    "gapscope.kernels.proximity.LENGTH_N": lambda x: kernels.proximity.Junction(length_n=x, xi_n=min(x, 6.0)),
    "gapscope.kernels.ising.RASHBA": lambda x: kernels.ising.hc2_inplane(1.0, tc=3.0, beta_so=1.0, rashba=x),
    "gapscope.kernels.ising.PAIR_BREAKING": lambda x: kernels.ising.critical_temperature(tc=3.0, pair_breaking=x),
    "gapscope.kernels.chains.E0": lambda x: kernels.chains.lcao(2, e0=x, hoppings=(0.4,)),
    "gapscope.kernels.chains.K1": lambda x: kernels.chains.lcao(2, e0=0.0, hoppings=(x,)),
    "gapscope.kernels.chains.K2": lambda x: kernels.chains.lcao(3, e0=0.0, hoppings=(0.4, x)),
    "gapscope.kernels.chains.K3": lambda x: kernels.chains.lcao(4, e0=0.0, hoppings=(0.4, 0.0, x)),
    "gapscope.kernels.chains.N_SITES": lambda x: kernels.chains.lcao(int(x), e0=0.0, hoppings=(0.4,)),
    # the extended model's lengths are probed with λ_F scaled along (the model needs d ≥ 0.02 λ_F, ξ_J ≤ 2 λ_F)
    "gapscope.kernels.chains.D": lambda x: kernels.chains.extended(
        2, d=x, xi_j=0.4 * min(max(x, 1e-15) / 0.35, 1e3), j0=1.0, lambda_f=min(max(x, 1e-15) / 0.35, 1e3)),
    "gapscope.kernels.chains.XI_J": lambda x: kernels.chains.extended(
        2, d=0.35 * min(max(x, 1e-15) / 0.4, 1e3), xi_j=x, j0=1.0, lambda_f=min(max(x, 1e-15) / 0.4, 1e3)),
    "gapscope.kernels.chains.J0": lambda x: kernels.chains.extended(2, d=0.35, xi_j=0.4, j0=x, lambda_f=1.0),
    "gapscope.kernels.chains.LAMBDA_F": lambda x: kernels.chains.extended(2, d=0.35 * max(x, 1e-15),
                                                                          xi_j=0.4 * max(x, 1e-15), j0=1.0, lambda_f=x),
    "gapscope.kernels.chains.SPACING": lambda x: kernels.chains.site_positions(3, spacing=x),
    "gapscope.kernels.chains.WIDTH": lambda x: kernels.chains.profile_weights(0.0, np.eye(2), positions=[0.0, 0.3],
                                                                              width=x),
    "gapscope.kernels.chains.DELTA": lambda x: kernels.chains.chain_dos([0.5], [1.0], delta=x, gamma=0.02,
                                                                        gamma_ysr=0.03, weight=0.1,
                                                                        electron_fraction=0.7),
    "gapscope.kernels.chains.GAMMA": lambda x: kernels.chains.chain_dos([0.5], [1.0], delta=1.5, gamma=x,
                                                                        gamma_ysr=0.03, weight=0.1,
                                                                        electron_fraction=0.7),
    "gapscope.kernels.chains.GAMMA_YSR": lambda x: kernels.chains.chain_dos([0.5], [1.0], delta=1.5, gamma=0.02,
                                                                            gamma_ysr=x, weight=0.1,
                                                                            electron_fraction=0.7),
    "gapscope.kernels.chains.WEIGHT": lambda x: kernels.chains.chain_dos([0.5], [1.0], delta=1.5, gamma=0.02,
                                                                         gamma_ysr=0.03, weight=x,
                                                                         electron_fraction=0.7),
    "gapscope.kernels.chains.ELECTRON_FRACTION": lambda x: kernels.chains.chain_dos([0.5], [1.0], delta=1.5,
                                                                                    gamma=0.02, gamma_ysr=0.03,
                                                                                    weight=0.1, electron_fraction=x),
    "gapscope.kernels.ysr.geometry.T_R": lambda x: ysr.geometry.alpha_r_from_t_r(x),
    "gapscope.kernels.ysr.lattice.T_HOP": lambda x: ysr.lattice.Substrate("square", t=x, mu=0.0, gamma=0.05, nk=16),
    "gapscope.kernels.ysr.lattice.MU": lambda x: ysr.lattice.Substrate("square", mu=x, gamma=0.05, nk=16),
    "gapscope.kernels.ysr.lattice.T_RASHBA": lambda x: ysr.lattice.Substrate("square", rashba=x, gamma=0.05, nk=16),
    "gapscope.kernels.ysr.lattice.EXCHANGE": lambda x: ysr.lattice.Channel(0, exchange=x),
    "gapscope.kernels.ysr.lattice.POTENTIAL": lambda x: ysr.lattice.Channel(0, potential=x),
}


def _ysr_probe(name):
    def probe(x):
        if name in ("alpha", "beta"):
            ysr.Channel("s", **{name: x})
        elif name == "tip_radius":
            ysr.ldos(ysr.Substrate(**_SUB), [ysr.Impurity()], [[0.3, 0.0]], [0.5], tip_radius=x)
        else:
            sub = dict(_SUB)
            if name == "kf":          # keep Δ ≪ E_F and the lattice inside the allowed range
                sub["hbar_vf"] = 1e3
            sub[name] = x
            ysr.Substrate(**sub)
    return probe


def spec_probes():
    """(label, spec, probe) for every kernel spec; a spec without a probe is reported."""
    fit_of = {}
    for m in fitting.MODELS.values():
        for p in m.all_params:
            fit_of.setdefault(id(p.spec), (m.name, p.name))
    out, missing = [], []
    for key, (label, spec) in kernel_specs().items():
        if key in fit_of:
            model, name = fit_of[key]
            out.append((label, spec, lambda x, m=model, n=name: _probe_fit(m, n, x)))
        elif label in PROBES:
            out.append((label, spec, PROBES[label]))
        elif label.startswith("gapscope.kernels.ysr."):
            out.append((label, spec, _ysr_probe(spec.name)))
        else:
            missing.append(label)
    return out, missing


def test_every_kernel_spec_has_a_probe():
    _, missing = spec_probes()
    assert not missing, (f"specs without a kernel probe: {missing}; register a fit model that uses them, "
                         "or add a probe to tests/test_architecture.py::PROBES")


@pytest.mark.parametrize("label,spec,probe", spec_probes()[0], ids=lambda x: x if isinstance(x, str) else "")
def test_every_spec_bound_is_accepted_and_beyond_rejected(label, spec, probe):
    for x in spec.inside():
        probe(x)
    for x in spec.outside():
        with pytest.raises(ValueError, match=spec.name.split("[")[0]):
            probe(x)


def test_fit_models_come_from_topics_and_have_specs():
    assert fitting.MODELS is models.FIT_MODELS
    for m in fitting.MODELS.values():
        assert m.topic.startswith("gapscope.kernels."), f"fit model {m.name} names no topic"
        names = [p.name for p in m.all_params]
        assert len(names) == len(set(names))
        for p in m.all_params:
            assert p.spec.bounds[0] <= p.lower < p.upper <= p.spec.bounds[1]


def test_readme_tables_are_generated_from_the_specs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key, entry in PANELS.items():
        params = entry.factory.PARAMS
        if params:
            assert markdown_table(params) in readme, f"README's {key} panel table is stale: regenerate it"
    assert fitting.models_table() in readme, "README's fit-model table is stale: regenerate it"


def test_panels_split_compute_from_draw():
    from gapscope.widgets.panel import Panel
    for entry in PANELS.values():
        cls = entry.factory
        for hook in ("build", "compute", "draw"):
            assert getattr(cls, hook) is not getattr(Panel, hook), f"{cls.__name__} does not implement {hook}()"
        for name in ("_wire", "layout", "refresh"):
            assert getattr(cls, name) is getattr(Panel, name), f"{cls.__name__} overrides {name}(): use the hooks"
        assert len(inspect.signature(cls.compute).parameters) >= 3, "compute(self, values, task)"
