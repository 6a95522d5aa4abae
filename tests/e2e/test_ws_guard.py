"""The kernel websocket guard (serve/wsguard.py) in front of Voilà.

Without it, a client connecting to a kernel's channels without the v1 subprotocol made Voilà 0.5 spin at
100 % CPU and grow by tens of MB/s until killed (Voilà reads every binary frame as v1: a legacy frame's
first 8 bytes give ~10¹⁸ offsets); a v1 frame announcing 2⁶⁰ offsets did the same through jupyter_server's
reader.  The server tests run against a server of their own, so a failing guard cannot hang the others.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from jupyter_server.services.kernels.connection.base import serialize_binary_message, serialize_msg_to_ws_v1

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


guard = _load("gapscope_wsguard", ROOT / "serve" / "wsguard.py")


def _parts(**extra):
    header = {"msg_id": uuid.uuid4().hex, "msg_type": "kernel_info_request", "session": "s", "username": "",
              "date": "", "version": "5.3"}
    return [json.dumps(x).encode() for x in (header, {}, {}, {})] + list(extra.get("buffers", []))


# ------------------------------------------------------------------ the frame check, against jupyter_server's framing
def test_well_formed_v1_frames_pass():
    assert guard.v1_frame_problem(serialize_msg_to_ws_v1(_parts(), "shell")) is None
    assert guard.v1_frame_problem(serialize_msg_to_ws_v1(_parts(buffers=[b"\x00" * 1000, b"ab"]), "iopub")) is None


def test_a_legacy_binary_frame_is_not_v1():
    """The frame whose misreading hung Voilà: 4-byte big-endian counts read as an 8-byte little-endian one."""
    frame = serialize_binary_message({"header": {}, "parent_header": {}, "metadata": {}, "content": {},
                                      "buffers": [b"x" * 100, b"y" * 50]})
    assert int.from_bytes(frame[:8], "little") > 10 ** 17          # what Voilà would loop over
    assert "offsets announced" in guard.v1_frame_problem(frame)


@pytest.mark.parametrize("frame, why", [
    ("{}", "text frame"),
    (b"\x01\x02", "shorter"),
    ((2 ** 60).to_bytes(8, "little") + b"\x00" * 64, "offsets announced"),
    ((3).to_bytes(8, "little") + b"\x00" * 64, "at least 6"),
])
def test_malformed_frames_are_named(frame, why):
    t0 = time.perf_counter()
    assert why in guard.v1_frame_problem(frame)
    assert time.perf_counter() - t0 < 0.01


def test_offsets_out_of_order_or_past_the_end():
    good = bytearray(serialize_msg_to_ws_v1(_parts(), "shell"))
    bad = bytearray(good)
    bad[16:24] = (len(good) + 10).to_bytes(8, "little")           # channel end beyond the frame
    assert "out of order" in guard.v1_frame_problem(bytes(bad))
    bad = bytearray(good)
    bad[8:16] = (0).to_bytes(8, "little")                          # channel start inside the offset table
    assert "channel starts" in guard.v1_frame_problem(bytes(bad))


def test_offered_subprotocols():
    assert guard.offered_subprotocols("v1.kernel.websocket.jupyter.org, other") == [guard.V1, "other"]
    assert guard.offered_subprotocols(None) == []


# ------------------------------------------------------------------ against a served Voilà
@pytest.fixture(scope="module")
def server():
    bench = _load("gapscope_class_load", ROOT / "benchmarks" / "class_load.py")
    with bench.served() as srv:
        yield srv


def _kernel_of(url: str, notebook: str = "gap.ipynb") -> str:
    page = urllib.request.urlopen(f"{url}/voila/render/{notebook}", timeout=120).read().decode()
    return re.search(r'"kernelId": "([0-9a-f-]+)"', page).group(1)


def _responsive(url: str) -> float:
    t0 = time.perf_counter()
    assert urllib.request.urlopen(f"{url}/voila/files/gallery.html", timeout=10).status == 200
    return time.perf_counter() - t0


def _bounded(server, action, seconds: float = 3.0):
    """Run ``action``, then watch Voilà for ``seconds``: CPU time and memory growth stay small."""
    voila = server.voila()
    cpu0, rss0 = sum(voila.cpu_times()[:2]), voila.memory_info().rss
    action()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:           # the measurement: the server answers, at a paced 10 requests/s
        assert _responsive(server.url) < 2.0     # (an unpaced loop's own requests cost Voilà CPU on a slow machine)
        time.sleep(0.1)
    cpu, grown = sum(voila.cpu_times()[:2]) - cpu0, (voila.memory_info().rss - rss0) / 2 ** 20
    assert cpu < 0.5 * seconds, f"Voilà used {cpu:.1f} s of CPU in {seconds} s"
    assert grown < 30, f"Voilà grew by {grown:.0f} MiB"


def _request_states(ws, session, framing):
    control = uuid.uuid4().hex
    for msg_type, content, metadata in (
            ("comm_open", {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
             {"version": "1.0.0"}),
            ("comm_msg", {"comm_id": control, "data": {"method": "request_states"}}, {})):
        header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session, "username": "",
                  "date": "", "version": "5.3"}
        framing(ws, header, metadata, content)


@pytest.mark.browser
@pytest.mark.parametrize("subprotocols", [None, ["something.else"]], ids=["no-subprotocol", "other-subprotocol"])
def test_a_kernel_websocket_without_v1_is_refused_and_the_server_stays_responsive(server, subprotocols):
    import websocket  # websocket-client: a plain client that does not offer v1 by itself

    kid = _kernel_of(server.url)
    url = server.url.replace("http", "ws", 1) + f"/api/kernels/{kid}/channels?session_id={uuid.uuid4().hex}"

    def attempt():
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            ws = websocket.create_connection(url, timeout=10, subprotocols=subprotocols)
            # had it been accepted: ask for the widget state, whose reply has binary buffers (the hang)
            _request_states(ws, "s", lambda w, h, m, c: w.send(json.dumps(
                {"header": h, "parent_header": {}, "metadata": m, "content": c, "channel": "shell"})))
        assert refused.value.status_code == 400
    _bounded(server, attempt)
    assert server.wait_for("Refused a kernel websocket without the", 5)


@pytest.mark.browser
def test_v1_works_and_a_malformed_v1_frame_closes_only_that_connection(server):
    import websocket

    kid = _kernel_of(server.url)
    url = server.url.replace("http", "ws", 1) + f"/api/kernels/{kid}/channels?session_id={uuid.uuid4().hex}"
    ws = websocket.create_connection(url, timeout=30, subprotocols=[guard.V1])
    assert ws.getsubprotocol() == guard.V1

    def send_v1(w, header, metadata, content):
        parts = [json.dumps(x).encode() for x in (header, {}, metadata, content)]
        w.send_binary(serialize_msg_to_ws_v1(parts, "shell"))
    _request_states(ws, "s", send_v1)
    deadline = time.monotonic() + 60
    got_states = False
    while not got_states and time.monotonic() < deadline:     # reads messages; each recv blocks until one comes
        frame = ws.recv()
        got_states = isinstance(frame, bytes) and b"update_states" in frame
    assert got_states, "no widget state over the v1 protocol"

    other = websocket.create_connection(url.replace("session_id=", "session_id=x"), timeout=30,
                                        subprotocols=[guard.V1])
    _bounded(server, lambda: ws.send_binary((2 ** 60).to_bytes(8, "little") + b"\x00" * 64))
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            ws.recv()                               # ends with the server's close (1003)
    assert server.wait_for("Closed a kernel websocket after a malformed v1 frame", 5)
    _request_states(other, "t", send_v1)            # the kernel and other connections carry on
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        frame = other.recv()
        if isinstance(frame, bytes) and b"update_states" in frame:
            break
    else:
        pytest.fail("the other connection stopped working")
    other.close()
