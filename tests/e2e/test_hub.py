"""JupyterHub on loopback with serve/jupyterhub_config.py: a student logs in and their own server opens the
gallery in Voilà, whose cards open the dashboards; the hub's idle culler then stops the idle server.

The hub runs with the test-only switches of that file (DummyAuthenticator with a password, the "simple"
local spawner: every server as this user) in a temporary folder; everything it started is stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gapscope.widgets import PANELS

pytestmark = [pytest.mark.browser, pytest.mark.hub]

ROOT = Path(__file__).resolve().parents[2]
CHP = ROOT / ".venv" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
CULL = 20          # seconds idle before the hub's culler stops the student's server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hub(tmp_path):
    pytest.importorskip("jupyterhub", reason="pip install -e '.[hub]'")
    if not (CHP.exists() or shutil.which("configurable-http-proxy")):
        if os.environ.get("GAPSCOPE_REQUIRE_BROWSER") == "1":
            pytest.fail("configurable-http-proxy is missing (make install runs npm for it)")
        pytest.skip("configurable-http-proxy is missing (make install runs npm for it)")
    import psutil
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(nb, notebooks / nb.name)
    port = _free_port()
    env = dict(os.environ, GAPSCOPE_HUB_PORT=str(port), GAPSCOPE_HUB_API_PORT=str(_free_port()),
               GAPSCOPE_HUB_PROXY_API_PORT=str(_free_port()), GAPSCOPE_HUB_STATE=str(tmp_path / "state"),
               GAPSCOPE_HUB_NOTEBOOKS=str(notebooks), GAPSCOPE_HUB_AUTH="dummy", GAPSCOPE_HUB_PASSWORD="class-pw",
               GAPSCOPE_HUB_SPAWNER="simple", GAPSCOPE_HUB_CULL=str(CULL), GAPSCOPE_DATA_ROOT=str(tmp_path / "data"),
               # the simple spawner runs the one test student's server as this process's user (root in CI):
               # accepted for this throw-away hub on loopback
               GAPSCOPE_ALLOW_ROOT="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f",
                             str(ROOT / "serve" / "jupyterhub_config.py")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    cond = threading.Condition()

    def reader() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            with cond:
                lines.append(line)
                cond.notify_all()
        with cond:
            cond.notify_all()
    threading.Thread(target=reader, daemon=True).start()

    def wait_for(text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with cond:
            while not any(text in line for line in lines):
                if time.monotonic() > deadline or proc.poll() is not None:
                    return False
                cond.wait(max(0.0, deadline - time.monotonic()))
        return True

    started: set[int] = set()

    def remember() -> None:        # the user servers run in sessions of their own: keep their pids
        with contextlib.suppress(psutil.Error):
            started.update(p.pid for p in psutil.Process(proc.pid).children(recursive=True))
    try:
        if not wait_for("JupyterHub is now running", 90):
            pytest.fail("JupyterHub did not start:\n" + "".join(lines[-40:]))
        yield {"url": f"http://127.0.0.1:{port}", "wait_for": wait_for, "lines": lines, "remember": remember}
    finally:
        remember()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)        # cleanup_servers: the hub stops the users' servers
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        for pid in started:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def _assert_limits_enforced(hub, name: str) -> None:
    """alice's server and her dashboard's kernel run in her control group with the configured limits
    (serve/hublimits.py), or the hub said why it cannot enforce them on this machine."""
    import psutil
    if os.geteuid() != 0:
        assert hub["wait_for"](f"limits for {name} NOT enforced", 5)
        return
    assert hub["wait_for"](f"limits for {name} enforced by control groups", 5), "".join(hub["lines"][-30:])
    hub["remember"]()
    server = next(p for p in psutil.process_iter(["cmdline"])
                  if any("jupyterhub-singleuser" in a for a in (p.info["cmdline"] or []))
                  and p.environ().get("JUPYTERHUB_USER") == name)
    kernels = server.children(recursive=True)
    assert kernels, "the dashboard's kernel runs under alice's server"
    for proc in [server, *kernels]:
        with open(f"/proc/{proc.pid}/cgroup") as f:
            lines = [ln.strip().split(":", 2) for ln in f]
        memory = next((path for _, names, path in lines if "memory" in names.split(",")), None)
        unified = next(path for num, _, path in lines if num == "0")
        path = memory if memory is not None and memory.endswith(f"gapscope-hub/{name}") else unified
        assert path.endswith(f"gapscope-hub/{name}"), (proc.pid, lines)
        candidates = [Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.limit_in_bytes",
                      Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.max",
                      Path("/sys/fs/cgroup/unified") / path.lstrip("/") / "memory.max"]
        limit = next(c for c in candidates if c.exists())
        assert int(limit.read_text()) == 2**30          # GAPSCOPE_HUB_MEM's default, 1G


def test_a_student_logs_in_and_gets_the_gallery_in_voila_then_the_idle_server_is_culled(hub, browser_context):
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{hub['url']}/hub/login", timeout=60_000)
        page.fill("input[name=username]", "mallory")          # a wrong password is refused
        page.fill("input[name=password]", "wrong")
        page.click("[type=submit]")
        page.wait_for_selector("text=Invalid username or password", timeout=30_000)
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "class-pw")
        page.click("[type=submit]")
        # the hub spawns alice's server and sends her to its default URL: the gallery, served by Voilà
        page.wait_for_selector("a.gs-card", timeout=120_000)
        assert "/user/alice/voila/files/gallery.html" in page.url
        hub["remember"]()
        hrefs = page.eval_on_selector_all("a.gs-card", "els => els.map(e => e.getAttribute('href'))")
        assert hrefs == [f"../render/{e.notebook}" for e in PANELS.values()]
        page.click("a.gs-card >> nth=0")
        page.wait_for_selector(".gs-panel", timeout=120_000)
        assert page.url.endswith(f"/user/alice/voila/render/{next(iter(PANELS.values())).notebook}")
        assert "Traceback" not in page.content()
        assert errors == []
        _assert_limits_enforced(hub, "alice")
    finally:
        page.close()
        browser_context.clear_cookies()               # the hub's login cookies must not reach other tests
    # the hub's idle culler stops alice's server once it has been idle for CULL seconds
    assert hub["wait_for"]("Culling server alice", CULL + 60) or hub["wait_for"]("Culling server", 5), \
        "".join(hub["lines"][-30:])
