"""Fixtures for the end-to-end tier: a Voilà server and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GAPSCOPE_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("GAPSCOPE_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"browser tests are required (GAPSCOPE_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def voila_url(tmp_path_factory):
    """The dashboards as ``make dashboards`` serves them (serve/run with serve/voila.py), on a free port;
    ready when the server prints its URL (no polling sleeps)."""
    port = _free_port()
    data_root = tmp_path_factory.mktemp("data-root")
    env = dict(os.environ, PORT=str(port), BIN=str(Path(sys.executable).parent), GAPSCOPE_DATA_ROOT=str(data_root))
    proc = subprocess.Popen([str(ROOT / "serve" / "run")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=ROOT, start_new_session=True)
    ready = threading.Event()
    lines: list[str] = []

    def reader() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "is running at" in line:
                ready.set()
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    if not ready.wait(60) or proc.poll() is not None:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("Voilà did not start:\n" + "".join(lines[-30:]))
    yield f"http://127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def browser_context():
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed")
    profile = tempfile.mkdtemp(prefix="gapscope-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS, viewport={"width": 1500, "height": 1000})
        # hermetic: only loopback traffic
        ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            ("http://127.0.0.1", "http://localhost", "data:", "blob:")) else route.abort())
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context):
    pg = browser_context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    yield pg
    pg.close()
