"""Checks on the repository itself: clean notebooks, no reads outside the checkout, one version, test data."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from pathlib import Path

import pytest

import gapscope

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()

# Code that runs in tests, dashboards, docs or CI.  src/gapscope/kernels and src/gapscope/widgets are
# symlinks to kernels/ and widgets/, which are scanned under their real names.
CODE_DIRS = ["kernels", "widgets", "src", "tests", "notebooks", "docs", "benchmarks", "binder", ".ci"]
CODE_FILES = ["Makefile", "pyproject.toml"]
CODE_SUFFIXES = {".py", ".ipynb", ".toml", ".cfg", ".txt", ".sh", ".json", ""}


def code_files() -> list[Path]:
    seen: dict[Path, Path] = {}
    candidates = [ROOT / f for f in CODE_FILES]
    for d in CODE_DIRS:
        candidates += [p for p in (ROOT / d).rglob("*") if p.is_file()]
    for p in candidates:
        real = p.resolve()
        rel = real.relative_to(ROOT)
        junk = any(part in {"__pycache__", ".ipynb_checkpoints"} or part.endswith(".egg-info") for part in rel.parts)
        if junk or rel.parts[:2] == ("tests", "data") or real.suffix not in CODE_SUFFIXES or real == THIS:
            continue
        seen.setdefault(real, p)
    return sorted(seen)


def notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_there_is_something_to_check():
    files = {p.relative_to(ROOT).as_posix() for p in code_files()}
    assert {"kernels/dos.py", "widgets/panel.py", "src/gapscope/__init__.py", "Makefile"} <= files
    assert len(notebooks()) >= 4


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs: clear them before committing"
        assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name} stores widget state in its metadata"


OUTSIDE = re.compile(r"\.\.[/\\]+shared|/work/shared|shared[/\\]+data")
PARENTS = re.compile(r"parents\[(\d+)\]")
PARENT_CHAIN = re.compile(r"__file__\)?(?:\.resolve\(\))?((?:\.parent)+)")


def test_nothing_reads_outside_the_repository():
    problems = []
    for path in code_files():
        rel = path.relative_to(ROOT)
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                problems.append(f"{rel}:{n}: path outside the checkout: {line.strip()}")
            # Path(__file__).resolve().parents[k] stays in the checkout only for k < depth of the file
            for m in PARENTS.finditer(line):
                if "__file__" in line and int(m.group(1)) > len(rel.parts) - 1:
                    problems.append(f"{rel}:{n}: parents[{m.group(1)}] leaves the checkout: {line.strip()}")
            for m in PARENT_CHAIN.finditer(line):
                if m.group(1).count(".parent") > len(rel.parts) - 1:
                    problems.append(f"{rel}:{n}: .parent chain leaves the checkout: {line.strip()}")
    assert not problems, "\n".join(problems)


def test_version_is_single_sourced_and_installed():
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[.-]?(?:a|b|rc|dev|post)\d*)?", gapscope.__version__)
    assert importlib.metadata.version("gapscope") == gapscope.__version__, (
        "installed metadata is stale: reinstall (make install, or pip install -e .)")
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "gapscope.__version__"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_real_instrument_files_match_their_sources():
    """tests/data/real: unchanged copies (sha256, size) with SOURCES.tsv, README and every licence."""
    d = ROOT / "tests" / "data" / "real"
    rows = [line.split("\t") for line in (d / "SOURCES.tsv").read_text(encoding="utf-8").splitlines()[1:] if line]
    assert len(rows) == 12 and (d / "README.md").is_file()
    for name, _repo, _path, _commit, licence, digest, size in rows:
        f = d / name
        assert f.stat().st_size == int(size), f"{name}: size changed (line-end conversion?)"
        assert sha256(f) == digest, f"{name}: content differs from its source"
        assert any(licence in p.name for p in d.glob("LICENSE-*")), f"{name}: no {licence} licence text"


def test_nanonis_files_match_their_readme():
    """tests/data/nanonis: each file's sha256 is in the README table, beside a licence file that exists."""
    d = ROOT / "tests" / "data" / "nanonis"
    readme = (d / "README.md").read_text(encoding="utf-8")
    data = sorted(p for p in d.iterdir() if p.suffix in {".dat", ".3ds"})
    assert len(data) == 4
    for f in data:
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{f.name}`")), None)
        assert row is not None, f"{f.name} is not in {d.name}/README.md"
        assert sha256(f) in row, f"{f.name}: content differs from the README's sha256"
        licence = re.search(r"`(LICENSE-[^`]+)`", row)
        assert licence and (d / licence.group(1)).is_file(), f"{f.name}: licence file missing"
