"""Regenerate the README screenshots: Voilà on a free port, Debian's Chromium via Playwright.

    .venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from gapscope.widgets import PANELS

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _fit_demo(page) -> None:
    """The fit dashboard with something to show: a demo, its fit and the model comparison."""
    page.select_option(".widget-dropdown:has-text('Demo') select", index=2)
    page.wait_for_selector("text=Synthetic data", timeout=60_000)
    page.click(".gs-fit")
    page.wait_for_function("() => /χ²_red/.test(document.querySelector('.gs-stats').innerText)", timeout=60_000)
    page.click(".gs-compare-button")
    page.wait_for_selector(".gs-compare", timeout=120_000)


#: the screens the pictures are taken on (the first visible screenful of each dashboard)
SIZES = ((1366, 768), (1920, 1080))

#: what to do on a dashboard before its picture is taken (by registry key; default: nothing)
STAGING = {"fit": _fit_demo}


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PORT=str(port), BIN=str(Path(sys.executable).parent))
    server = subprocess.Popen([str(ROOT / "serve" / "run")], cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)   # as `make dashboards`
    for line in server.stdout:                       # ready when Voilà prints its address
        if "is running at" in line:
            break
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(tempfile.mkdtemp(), executable_path="/usr/bin/chromium",
                                                       headless=True, args=ARGS,
                                                       viewport={"width": 1500, "height": 1050})
            page = ctx.new_page()
            for width, height in SIZES:                  # a laptop and a desktop screen
                page.set_viewport_size({"width": width, "height": height})
                for key, entry in PANELS.items():        # every registered dashboard
                    page.goto(f"http://127.0.0.1:{port}/voila/render/{entry.notebook}")
                    page.wait_for_selector(".gs-panel", timeout=120_000)
                    page.wait_for_function("() => !document.querySelector('.gs-computing')", timeout=120_000)
                    STAGING.get(key, lambda page: None)(page)
                    time.sleep(1.0)                  # let the last SVG transitions settle for the picture
                    page.screenshot(path=str(ROOT / "docs" / f"{key}-{width}x{height}.png"))
            ctx.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
