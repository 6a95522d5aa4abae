"""Nothing a browser user types can read or write outside the data folder (the attempts that worked before)."""

import datetime
import os
from pathlib import Path

import numpy as np
import pytest

from gapscope.kernels import fitting, readers
from gapscope.widgets import FitPanel
from gapscope.widgets.dataroot import DataRoot, PathRefused


@pytest.fixture
def world(tmp_path):
    """A data folder with a real-looking CSV, and a secret beside it that must stay unreadable."""
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    V = np.linspace(-3, 3, 200)
    y = fitting.synthetic("dynes", V, noise=0.01, seed=2, temperature=0.5)
    table = "bias (mV),dIdV\n" + "\n".join(f"{a},{b}" for a, b in zip(V, y, strict=True))
    (root / "sub" / "spec.csv").write_text(table)
    secret = tmp_path / "secret.csv"
    secret.write_text(table + "\nroot:$6$hash-of-a-password:19000:0:99999:7:::\n")
    (root / "link.csv").symlink_to(secret)                      # a symlink out of the folder
    (root / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    return root, secret


@pytest.mark.parametrize("attempt", [
    "/etc/passwd", "/etc/shadow", "../secret.csv", "sub/../../secret.csv", "link.csv", "linkdir/secret.csv",
    "~/secret.csv", "sub/spec.csv\0.txt", "", "sub", "nonexistent.csv", "{secret}"])
def test_reads_outside_the_folder_are_refused_and_leak_nothing(world, attempt):
    root, secret = world
    attempt = attempt.replace("{secret}", str(secret))          # the absolute path of a real file
    p = FitPanel(data_root=root)
    p.load_path("sub/spec.csv")
    before = p.spectrum.label
    assert not p.load_path(attempt)
    msg = p.message.value
    assert "gs-error" in msg and p.spectrum.label == before
    assert "hash-of-a-password" not in msg and str(secret.parent) not in msg and "/etc" not in msg
    # a missing file and a file outside give the same words: nothing tells which paths exist
    if attempt in ("../secret.csv", "nonexistent.csv", "link.csv"):
        assert "no such file in the data folder" in msg or "inside the data folder" in msg


def test_a_file_inside_loads(world):
    root, _ = world
    p = FitPanel(data_root=root)
    assert p.load_path("sub/spec.csv") and "spec.csv" in p.spectrum.label


@pytest.mark.parametrize("attempt", ["../out", "/tmp/out", "linkdir/out", "nodir/out", "sub/../../out"])
def test_writes_outside_the_folder_are_refused(world, attempt, tmp_path):
    root, _ = world
    dr = DataRoot(root)
    with pytest.raises(PathRefused):
        dr.resolve_write(attempt, suffix=".npz")
    assert not (tmp_path / "out.npz").exists() and not Path("/tmp/out.npz").exists()


def test_grid_fit_save_file_is_confined(world, tmp_path):
    root, _ = world
    bias = np.linspace(-3, 3, 60)
    data = np.array([[fitting.synthetic("dynes", bias, noise=0.003, seed=i, temperature=0.5)] for i in range(2)])
    readers.write_grid(root / "g.3ds", readers.Grid(bias=bias, x=np.linspace(0, 1, 2), y=np.zeros(1),
                                                   data={"LockinX": data}, units={"LockinX": "V"}, header={}))
    p = FitPanel(data_root=root)
    assert p.load_path("g.3ds")
    p.start_grid_fit(wait=True, resume="../escape")
    assert "Save/resume file" in p.message.value and not (tmp_path / "escape.npz").exists()
    p.start_grid_fit(wait=True, resume="sub/run1")
    assert (root / "sub" / "run1.npz").exists()


def test_uploads_over_the_limit_are_refused(world):
    root, _ = world
    p = FitPanel(data_root=DataRoot(root, max_bytes=1000))
    p.upload.value = ({"name": "big.csv", "type": "", "size": 5000, "content": memoryview(b"0" * 5000),
                       "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    assert "upload limit" in p.message.value and p.spectrum is None


def test_default_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPSCOPE_DATA_ROOT", str(tmp_path / "x"))
    assert DataRoot().root == (tmp_path / "x").resolve() and (tmp_path / "x").is_dir()
    assert os.environ["GAPSCOPE_DATA_ROOT"] == str(tmp_path / "x")
