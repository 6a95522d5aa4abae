"""Widget tests never touch the user's data folder: each test gets its own."""

import pytest


@pytest.fixture(autouse=True)
def _data_root(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GAPSCOPE_DATA_ROOT", str(tmp_path_factory.mktemp("data-root")))
