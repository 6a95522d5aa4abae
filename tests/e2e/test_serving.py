"""How ``make dashboards`` serves: what it prints, what it refuses, and that a page loads nothing from elsewhere."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path: Path, **env: str) -> subprocess.Popen:
    full = dict(os.environ, BIN=str(Path(sys.executable).parent), GAPSCOPE_DATA_ROOT=str(tmp_path), **env)
    full.pop("GAPSCOPE_ALLOW_ROOT", None)
    return subprocess.Popen([str(ROOT / "serve" / "run")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=full, cwd=ROOT, start_new_session=True)


def test_the_gallery_url_is_the_last_thing_printed(tmp_path):
    """A user looks at the end of the output: the gallery's address comes after Voilà's own lines."""
    port = _free_port()
    proc = _serve(tmp_path, PORT=str(port))
    lines: list[str] = []
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip("\n"))
            if "Ctrl-C stops the server" in line:
                break
        else:
            pytest.fail("serve/run ended before printing the gallery:\n" + "\n".join(lines[-20:]))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    text = [x for x in lines if x.strip()]
    running = max(i for i, x in enumerate(text) if "is running at" in x)
    tail = text[running + 1:]
    assert any(f"gapscope: open http://127.0.0.1:{port}/voila/files/gallery.html" in x for x in tail), tail
    assert "Ctrl-C stops the server" in text[-1]


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal concerns root; this run is not root")
def test_root_may_not_serve_a_network_unless_told(tmp_path):
    proc = _serve(tmp_path, IP="0.0.0.0", PORT=str(_free_port()))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "refusing to serve a network (0.0.0.0) as root" in out and "GAPSCOPE_ALLOW_ROOT=1" in out
    assert "is running at" not in out


def test_a_dashboard_page_requests_nothing_from_another_host(browser_context, voila_url):
    """A classroom without internet loses nothing: no font, stylesheet or script from a CDN."""
    page = browser_context.new_page()
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(
        ("http://127.0.0.1", "http://localhost", "data:", "blob:")) else elsewhere.append(r.url))
    try:
        page.goto(f"{voila_url}/voila/render/gap.ipynb")
        page.wait_for_selector(".gs-panel", timeout=90_000)
        page.wait_for_load_state("networkidle", timeout=60_000)
    finally:
        page.close()
    assert elsewhere == []
