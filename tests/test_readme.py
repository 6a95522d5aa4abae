"""The README's Python examples run as written (on the project's own test data)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "nanonis"


@pytest.mark.slow
def test_readme_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    shutil.copy(DATA / "Bias-Spectroscopy002.dat", tmp_path / "Bias-Spectroscopy002.dat")
    from gapscope.kernels import readers
    real = readers.read_grid(DATA / "NanonisReader_STS_grid_lockin.3ds")   # a 5×4 crop of the real grid keeps it quick
    crop = readers.Grid(real.bias, real.x[:5], real.y[:4], {k: v[:5, :4] for k, v in real.data.items()},
                        dict(real.units), dict(real.header))
    readers.write_grid(tmp_path / "grid.3ds", crop)
    monkeypatch.chdir(tmp_path)
    from gapscope.kernels import gap
    T = np.linspace(0.5, 6.5, 13)
    ns = {"T_points": T, "delta_points": gap.bcs_gap(T, delta0=1.343, tc=7.1),   # what a user measured
          "points": np.array([[0.0, 0.0], [0.3, 0.1]]), "energies": np.linspace(-2, 2, 41)}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), ns)
    assert ns["delta0"] == pytest.approx(1.343, rel=1e-3) and ns["tc"] == pytest.approx(7.1, rel=1e-3)
    assert np.all(np.isfinite(ns["G"])) and (tmp_path / "fit.npz").exists()


def test_binder_instructions_have_no_placeholder_owner():
    """The repository has no public remote: no fake ``<owner>`` link, but the URL pattern for one's own copy."""
    pattern = "https://mybinder.org/v2/gh/USER/REPOSITORY/BRANCH?urlpath=voila%2Frender%2Fnotebooks%2Findex.ipynb"
    for path in (ROOT / "README.md", ROOT / "binder" / "README.md"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<\s*owner\s*>", text, re.IGNORECASE), f"{path.name}: a literal <owner> placeholder"
        assert pattern in text, f"{path.name}: the Binder URL pattern for one's own copy is missing"
    assert (ROOT / "notebooks" / "index.ipynb").exists()      # what the link opens
