"""A class arriving at once: N simulated students against a freshly started ``serve/run`` (loopback only).

Each student is a browser-free client that speaks Voilà's kernel websocket wire protocol (the
``v1.kernel.websocket.jupyter.org`` subprotocol, as the browser does): it requests the dashboard page,
connects to its kernel, asks for the widget state (``jupyter.widget.control`` / ``request_states``, what the
page's widget manager does), checks that the dashboard is complete (the panel, its spectrum curves with
data, no error message, the slider), then moves one slider with the same comm message a browser sends and
times the reply up to the redrawn curve.  Server-side numbers: no browser renders anything here.

    python benchmarks/class_load.py --students 30 --dashboard gap --arrival 10
    python benchmarks/class_load.py --count-messages          # widget messages per dashboard page

Prints the table for the README (page-ready times, slider round trips, kernels alive, Voilà + kernel memory)
with the machine's load average, which matters on a shared machine.  The e2e test
``tests/e2e/test_load.py`` runs the same client for a 10-student class.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

ROOT = Path(__file__).resolve().parents[1]
V1 = "v1.kernel.websocket.jupyter.org"
#: dashboard → (notebook, slider moved, values it is moved to in turn)
DASHBOARDS = {"gap": ("gap.ipynb", "delta", (1.2, 1.25, 1.15, 1.3)),
              "shiba": ("shiba.ipynb", "alpha", (0.75, 0.72, 0.78, 0.7))}
TOGETHER_MOVES, TOGETHER_WINDOW = 3, 2.0
MARKS = {"LinesModel", "ImageModel", "ScatterModel"}
PLOTTED = {"x", "y", "image", "color"}


# ---------------------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``serve/run`` started in its own process group; its output is kept and can be waited on."""

    def __init__(self, env: dict[str, str], timeout: float = 90.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self._cond = threading.Condition()
        full = dict(os.environ, PORT=str(self.port), BIN=str(Path(sys.executable).parent), **env)
        self.proc = subprocess.Popen([str(ROOT / "serve" / "run")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=full, cwd=ROOT, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        if not self.wait_for("is running at", timeout):
            self.stop()
            raise RuntimeError("Voilà did not start:\n" + "".join(self.lines[-30:]))

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float, count: int = 1) -> bool:
        """Wait until ``text`` has appeared in ``count`` output lines (False on timeout or exit)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(text in line for line in self.lines) < count:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return False
                self._cond.wait(left)
        return True

    def voila(self) -> psutil.Process:
        for p in psutil.Process(self.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any("voila" in part for part in p.cmdline()[:2]):
                    return p
        raise RuntimeError("no Voilà process")

    def kernels(self) -> list[psutil.Process]:
        out = []
        for p in self.voila().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "ipykernel_launcher" in " ".join(p.cmdline()):
                    out.append(p)
        return out

    def memory_mib(self) -> tuple[float, float]:
        """RSS of the Voilà process and the sum over its kernels, MiB."""
        kernels = 0.0
        for k in self.kernels():
            with contextlib.suppress(psutil.Error):
                kernels += k.memory_info().rss
        return self.voila().memory_info().rss / 2 ** 20, kernels / 2 ** 20

    def wait_quiet(self, timeout: float, cpu: float = 0.15, hold: float = 3.0) -> bool:
        """Wait until Voilà and its kernels together use less than ``cpu`` cores for ``hold`` seconds
        (a preheated pool has finished running its notebooks)."""
        deadline, quiet_since = time.monotonic() + timeout, None
        procs: dict[int, psutil.Process] = {}
        while time.monotonic() < deadline:
            for p in [self.voila(), *self.kernels()]:
                if p.pid not in procs:
                    procs[p.pid] = p
                    p.cpu_percent()
            time.sleep(0.5)                      # sampling CPU use needs an interval
            use = 0.0
            for p in list(procs.values()):
                try:
                    use += p.cpu_percent() / 100
                except psutil.Error:
                    procs.pop(p.pid)
            quiet_since = (quiet_since or time.monotonic()) if use < cpu else None
            if quiet_since is not None and time.monotonic() - quiet_since >= hold:
                return True
        return False

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@contextlib.contextmanager
def served(pool: str = "0", timeout: float = 90.0, **env: str) -> Iterator[Server]:
    """A fresh server for one run (its own data folder and state), stopped afterwards."""
    data = tempfile.mkdtemp(prefix="gapscope-load-data-")
    server = Server({"GAPSCOPE_POOL": pool, "GAPSCOPE_DATA_ROOT": data, **env}, timeout)
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            os.rmdir(data)


# ---------------------------------------------------------------------------------------------- wire
def pack(channel: str, msg_type: str, content: dict, session: str, metadata: dict | None = None) -> tuple[str, bytes]:
    """A kernel message framed for the v1 websocket protocol; returns (msg_id, frame)."""
    header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session, "username": "student",
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "version": "5.3"}
    parts = [json.dumps(x).encode() for x in (header, {}, metadata or {}, content)]
    return header["msg_id"], serialize_msg_to_ws_v1(parts, channel)


def unpack(frame: bytes) -> dict[str, Any]:
    channel, parts = deserialize_msg_from_ws_v1(frame)
    header, parent, metadata, content = (json.loads(p) for p in parts[:4])
    return {"channel": channel, "header": header, "parent_header": parent, "metadata": metadata,
            "content": content, "buffers": parts[4:]}


@dataclass
class Student:
    """One simulated student; times in seconds from the student's arrival."""

    arrival: float
    html_s: float | None = None          # page HTML complete (Voilà has run the notebook)
    ready_s: float | None = None         # widget state received: the browser can draw the dashboard
    round_trips: list[float] = field(default_factory=list)   # slider moved → curve redrawn
    load_messages: collections.Counter = field(default_factory=collections.Counter)
    models: int = 0
    complete: bool = False
    error: str | None = None
    kernel_id: str | None = None
    arrived: bool = False


class Connection:
    def __init__(self, ws, session: str) -> None:
        self.ws, self.session = ws, session

    async def send(self, channel: str, msg_type: str, content: dict, metadata: dict | None = None) -> str:
        msg_id, frame = pack(channel, msg_type, content, self.session, metadata)
        await self.ws.write_message(frame, binary=True)
        return msg_id

    async def recv(self, timeout: float) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.ws.read_message(), timeout)
        if frame is None:
            raise ConnectionError("the kernel websocket closed")
        return unpack(frame)


def check_complete(states: dict[str, Any], slider_name: str) -> tuple[bool, str | None, str]:
    """(complete, slider model id, why not): the panel, curves with data, no error, the slider."""
    def has(st, cls):
        return cls in st["state"].get("_dom_classes", [])
    panel = any(has(st, "gs-panel") for st in states.values())
    curves = [st for st in states.values() if st["model_name"] == "LinesModel"
              and max((st["state"].get("y") or {}).get("shape", [0]) or [0]) > 50]
    errors = [st for st in states.values() if st["model_name"] == "HTMLModel" and "gs-error" in
              str(st["state"].get("value", ""))]
    slider = [mid for mid, st in states.items() if st["model_name"] in ("FloatSliderModel", "IntSliderModel")
              and has(st, f"gs-param-{slider_name}")]
    why = ", ".join(w for w, bad in (("no panel", not panel), ("no curve with data", not curves),
                                     ("an error message", bool(errors)), ("no slider", not slider)) if bad)
    return not why, (slider[0] if slider else None), why


class Barrier:
    """Released when every student has finished arriving (loaded and moved once, or failed)."""

    def __init__(self, n: int) -> None:
        self.left, self.event = n, asyncio.Event()

    def arrived(self, s: Student) -> None:
        if s.arrived:
            return
        s.arrived = True
        self.left -= 1
        if self.left <= 0:
            self.event.set()


async def student(base: str, dashboard: str, s: Student, t0: float, *, moves: int = 1,
                  barrier: Barrier | None = None, timeout: float = 120.0) -> Connection | None:
    """Arrive at ``t0 + s.arrival``, load the dashboard, move the slider ``moves`` times; with a ``barrier``,
    then wait until everyone has and move it again a few times (everyone moving).  Returns the open connection."""
    try:
        return await _student(base, dashboard, s, t0, moves=moves, barrier=barrier, timeout=timeout)
    except Exception as exc:  # reported per student, never a traceback in the table
        s.error = f"{type(exc).__name__}: {exc}"
        return None
    finally:
        if barrier is not None:
            barrier.arrived(s)     # a failed student must not hold the others back


async def _student(base, dashboard, s, t0, *, moves, barrier, timeout):
    notebook, slider_name, values = DASHBOARDS[dashboard]
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 + s.arrival - loop.time()))        # the arrival schedule, not a wait
    start = loop.time()
    resp = await AsyncHTTPClient().fetch(f"{base}/voila/render/{notebook}", request_timeout=timeout)
    page = resp.body.decode()
    s.html_s = loop.time() - start
    found = re.search(r'"kernelId": "([0-9a-f-]+)"', page)
    if not found:
        raise RuntimeError("no kernel id in the page")
    s.kernel_id = found.group(1)
    session = uuid.uuid4().hex
    ws_url = base.replace("http", "ws", 1) + f"/api/kernels/{s.kernel_id}/channels?session_id={session}"
    ws = await websocket_connect(HTTPRequest(ws_url, request_timeout=timeout), subprotocols=[V1],
                                 max_message_size=256 * 2 ** 20)
    conn = Connection(ws, session)
    control = uuid.uuid4().hex
    await conn.send("shell", "comm_open", {"comm_id": control, "target_name": "jupyter.widget.control",
                                           "data": {}}, metadata={"version": "1.0.0"})
    await conn.send("shell", "comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
    while True:
        msg = await conn.recv(timeout)
        kind = msg["header"]["msg_type"]
        if kind.startswith("comm_"):
            s.load_messages[kind] += 1
        if kind == "comm_msg" and msg["content"]["comm_id"] == control:
            data = msg["content"]["data"]
            if data.get("method") == "update_states":
                states = data["states"]
                break
    s.ready_s = loop.time() - start
    s.models = len(states)
    s.complete, slider, why = check_complete(states, slider_name)
    if not s.complete:
        raise RuntimeError(f"incomplete dashboard: {why}")
    names = {mid: st["model_name"] for mid, st in states.items()}

    async def move(value: float) -> None:
        t1 = loop.time()
        msg_id = await conn.send("shell", "comm_msg", {"comm_id": slider, "data": {
            "method": "update", "state": {"value": value}, "buffer_paths": []}})
        idle = plotted = False
        while not (idle and plotted):
            msg = await conn.recv(timeout)
            kind, content = msg["header"]["msg_type"], msg["content"]
            if (kind == "status" and content.get("execution_state") == "idle"
                    and msg["parent_header"].get("msg_id") == msg_id):
                idle = True
            elif (kind == "comm_msg" and names.get(content.get("comm_id")) in MARKS
                    and content["data"].get("method") == "update" and PLOTTED & set(content["data"]["state"])):
                plotted = True
        s.round_trips.append(loop.time() - t1)

    for i in range(moves):
        await move(values[i % len(values)])
    if barrier is not None:
        barrier.arrived(s)
        await barrier.event.wait()
        rng = random.Random(s.arrival)
        for i in range(TOGETHER_MOVES):       # everyone moving: each a move at a random moment of every 2 s
            await asyncio.sleep(rng.uniform(0.0, TOGETHER_WINDOW))
            await move(values[(moves + i) % len(values)])
    return conn


async def shutdown(base: str, kernel_id: str) -> None:
    """What the page does when its tab closes (Voilà's shutdown request)."""
    with contextlib.suppress(Exception):
        await AsyncHTTPClient().fetch(HTTPRequest(f"{base}/voila/api/shutdown/{kernel_id}", method="POST",
                                                  body=b"", request_timeout=30))


async def run_class(base: str, dashboard: str, n: int, arrival: float, *, together: bool = True,
                    seed: int = 1, on_ready=None, timeout: float = 120.0) -> list[Student]:
    """N students arriving uniformly at random within ``arrival`` seconds; each loads and moves the slider
    once; with ``together``, once everyone is in, all move it again at the same moment.  ``on_ready()`` is
    called (in the loop) when everyone is in, before the kernels are closed."""
    AsyncHTTPClient.configure(None, max_clients=max(n, 10))
    rng = random.Random(seed)
    students = [Student(arrival=rng.uniform(0.0, arrival)) for _ in range(n)]
    barrier = Barrier(n) if together else None
    t0 = asyncio.get_running_loop().time()
    conns = await asyncio.gather(*(student(base, dashboard, s, t0, barrier=barrier, timeout=timeout)
                                   for s in students))
    if on_ready is not None:
        on_ready()
    for conn in conns:
        if conn is not None:
            conn.ws.close()
    await asyncio.gather(*(shutdown(base, s.kernel_id) for s in students if s.kernel_id))
    return students


# ---------------------------------------------------------------------------------------------- report
def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))] if v else float("nan")


def table(students: list[Student], extra: dict[str, str]) -> str:
    ready = [s.ready_s for s in students if s.ready_s is not None]
    arrive = [s.round_trips[0] for s in students if s.round_trips]
    together = [rt for s in students for rt in s.round_trips[1:]]
    ms = lambda v: f"{1000 * v:.0f} ms"
    html = [s.html_s for s in students if s.html_s is not None]
    rows = [("students with a complete dashboard", f"{sum(s.complete for s in students)} / {len(students)}"),
            ("page HTML complete (Voilà ran the notebook), median / max",
             f"{statistics.median(html):.1f} s / {max(html):.1f} s" if html else "–"),
            ("page ready (HTML + widget state), median / max",
             f"{statistics.median(ready):.1f} s / {max(ready):.1f} s" if ready else "–"),
            ("slider round trip on arrival, median / p95 / max",
             f"{ms(statistics.median(arrive))} / {ms(pct(arrive, 0.95))} / {ms(max(arrive))}" if arrive else "–"),
            (f"slider round trip, everyone moving ({TOGETHER_MOVES} moves each, one per {TOGETHER_WINDOW:g} s), "
             "median / p95 / max",
             f"{ms(statistics.median(together))} / {ms(pct(together, 0.95))} / {ms(max(together))}"
             if together else "–"),
            *extra.items()]
    errors = [s.error for s in students if s.error]
    width = max(len(k) for k, _ in rows)
    out = [f"| {'':{width}} | measured |", f"|{'-' * (width + 2)}|----------|"]
    out += [f"| {k:{width}} | {v} |" for k, v in rows]
    if errors:
        out.append("errors: " + "; ".join(sorted(set(errors))))
    return "\n".join(out)


def count_messages(notebook: str) -> dict[str, Any]:
    """Widget messages a dashboard page costs: what its kernel sends Voilà while running the notebook
    (comm_open per widget model, comm_msg per later change), run in a plain kernel."""
    from jupyter_client.manager import start_new_kernel
    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        msg_id = kc.execute(code)
        counts: collections.Counter = collections.Counter()
        size = 0
        while True:
            msg = kc.get_iopub_msg(timeout=180)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                break
            counts[kind] += 1
            size += len(json.dumps(msg["content"], default=str)) + sum(len(b) for b in msg.get("buffers", []))
        return {"comm_open": counts["comm_open"], "comm_msg": counts["comm_msg"], "KiB": size / 1024}
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def pool_size(pool: str, notebook: str) -> int:
    """The preheated pool of ``notebook`` under a GAPSCOPE_POOL setting ("2", "gap=30,shiba=4")."""
    if "=" not in pool:
        return max(int(pool or 0), 0)
    sizes = {k.strip().removesuffix(".ipynb"): int(v) for k, _, v in (i.partition("=") for i in pool.split(","))}
    return max(sizes.get(notebook.removesuffix(".ipynb"), 0), 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--dashboard", choices=sorted(DASHBOARDS), default="gap")
    ap.add_argument("--arrival", type=float, default=10.0, help="students arrive within this many seconds")
    ap.add_argument("--pool", default=None, help="GAPSCOPE_POOL for the server (default: <dashboard>=<students>)")
    ap.add_argument("--count-messages", action="store_true", help="only count widget messages per dashboard")
    args = ap.parse_args()
    if args.count_messages:
        from gapscope.widgets import PANELS
        print("| dashboard | comm_open (widget models) | comm_msg (later changes) | total | KiB |")
        print("|---|---|---|---|---|")
        for key, entry in PANELS.items():
            c = count_messages(entry.notebook)
            print(f"| {key} | {c['comm_open']} | {c['comm_msg']} | {c['comm_open'] + c['comm_msg']} | {c['KiB']:.0f} |")
        return
    pool = args.pool if args.pool is not None else f"{args.dashboard}={args.students}"
    notebook = DASHBOARDS[args.dashboard][0]
    with served(pool=pool, GAPSCOPE_ALLOW_ROOT=os.environ.get("GAPSCOPE_ALLOW_ROOT", "0")) as server:
        t_start = time.monotonic()
        size = pool_size(pool, notebook)
        if size:   # the lecturer starts the server before the class: wait until the pool is full
            if not (server.wait_for(f"Kernel pool of {notebook} is filled", 60 + 15 * size)
                    and server.wait_quiet(60 + 10 * size)):     # started, then each has run the notebook
                print("warning: the kernel pool did not fill in time", file=sys.stderr)
        preheat_s = time.monotonic() - t_start
        load0 = os.getloadavg()               # the machine as the class arrives (shared with others)
        v0, k0 = server.memory_mib()
        n0 = len(server.kernels())
        peak: dict[str, Any] = {}

        def at_peak() -> None:
            v, k = server.memory_mib()
            peak.update(kernels=len(server.kernels()), voila=v, kmem=k, load=os.getloadavg())

        students = asyncio.run(run_class(server.url, args.dashboard, args.students, args.arrival, on_ready=at_peak))
    la = lambda t: " / ".join(f"{x:.2f}" for x in t)
    extra = {
        "preheated kernels (GAPSCOPE_POOL)": f"{pool}; pool filled in {preheat_s:.0f} s" if size else pool,
        "kernels alive before the class / with everyone in": f"{n0} / {peak.get('kernels', '?')}",
        "Voilà RSS before / with everyone in": f"{v0:.0f} MiB / {peak.get('voila', float('nan')):.0f} MiB",
        "kernels' RSS before / with everyone in (sum)":
            f"{k0:.0f} MiB / {peak.get('kmem', float('nan')):.0f} MiB"
            f" ({peak.get('kmem', float('nan')) / max(peak.get('kernels', 1), 1):.0f} MiB per kernel)",
        "load average (1/5/15 min) as the class arrives / with everyone in":
            f"{la(load0)} / {la(peak.get('load', (0, 0, 0)))}",
        "machine": f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2 ** 30:.0f} GiB",
    }
    print(f"{args.students} students, {args.dashboard} dashboard, arriving within {args.arrival:g} s:")
    print(table(students, extra))


if __name__ == "__main__":
    main()
