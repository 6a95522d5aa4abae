"""A guard in front of the kernel websockets: only the v1 wire protocol, and only well-formed v1 frames.

Why (measured with Voilà 0.5.13 / jupyter_server 2.21): a client that connects to
``/api/kernels/<id>/channels`` without offering the ``v1.kernel.websocket.jupyter.org`` subprotocol gets
the legacy protocol, in which a kernel message with binary buffers (every widget state of a bqplot figure)
is framed as 4-byte big-endian counts.  Voilà's ``VoilaKernelWebsocketHandler.write_message`` reads *every*
binary frame as v1 (``read_header_from_binary_message`` in ``voila/tornado/kernel_websocket_handler.py``):
it takes the first 8 bytes as a little-endian count of offsets — about 10¹⁸ for a legacy frame — and builds
that list in a loop on the event loop.  The server spins at 100 % CPU, grows by tens of MB/s and, with its
event loop blocked, no longer answers anyone (SIGTERM included) until it is killed.  jupyter_server's own
v1 reader (``deserialize_msg_from_ws_v1``) has the same loop on *incoming* frames, so a v1 client that sends
a frame claiming 2⁶⁰ offsets hangs the server the same way.  Setting ``kernel_ws_protocol`` does not help:
jupyter_server falls back to the legacy protocol whenever the client does not offer v1.

The guard is a kernel websocket connection class (the ``kernel_websocket_connection_class`` setting of
Voilà and of jupyter_server), so it needs no patch of either:

* the handshake is refused with HTTP 400 unless the client offers the v1 subprotocol (browsers running
  Voilà's or JupyterLab's front end always do);
* every incoming frame is checked before it is parsed: binary, an offset count that fits in the frame, and
  offsets in order within it; anything else closes the connection (code 1003) without parsing further.

serve/voila.py loads this file for ``make dashboards``; docs/class-server.md shows the same line for a
JupyterHub user server.
"""

from __future__ import annotations

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado import web

V1 = "v1.kernel.websocket.jupyter.org"


def offered_subprotocols(header: str | None) -> list[str]:
    """The subprotocols a client offers in its ``Sec-WebSocket-Protocol`` header."""
    return [p.strip() for p in (header or "").split(",") if p.strip()]


def v1_frame_problem(frame: bytes | str) -> str | None:
    """Why ``frame`` is not a well-formed v1 kernel message (None if it is).

    A v1 frame is ``n`` (8 bytes, little-endian), then ``n`` offsets (8 bytes each, little-endian): the
    first is where the channel name starts (just after the offsets, ``8 (n + 1)``), each later one where
    the next part starts; the parts are channel, header, parent header, metadata, content and any buffers,
    so ``n ≥ 6``.  Checked without any loop longer than the frame itself.
    """
    if not isinstance(frame, bytes | bytearray | memoryview):
        return "a text frame (the v1 protocol sends binary frames only)"
    frame = bytes(frame)
    if len(frame) < 8:
        return f"{len(frame)} bytes, shorter than the offset count"
    n = int.from_bytes(frame[:8], "little")
    if n < 6:
        return f"{n} offsets (a kernel message has at least 6)"
    if 8 * (n + 1) > len(frame):
        return f"{n} offsets announced, but the frame has only {len(frame)} bytes"
    offsets = [int.from_bytes(frame[8 * (i + 1):8 * (i + 2)], "little") for i in range(n)]
    if offsets[0] != 8 * (n + 1):
        return f"the channel starts at byte {offsets[0]}, not {8 * (n + 1)}"
    if any(b < a for a, b in zip(offsets, offsets[1:], strict=False)) or offsets[-1] > len(frame):
        return "offsets out of order or beyond the frame"
    return None


class GuardedKernelConnection(ZMQChannelsWebsocketConnection):
    """The v1 protocol only, with each incoming frame checked before jupyter_server parses it."""

    async def prepare(self) -> None:
        offered = offered_subprotocols(self.websocket_handler.request.headers.get("Sec-WebSocket-Protocol"))
        if V1 not in offered:
            self.log.warning("Refused a kernel websocket without the %s subprotocol (offered: %s) from %s",
                             V1, offered or "none", self.websocket_handler.request.remote_ip)
            raise web.HTTPError(400, f"kernel websockets must use the {V1} subprotocol")
        await super().prepare()

    def handle_incoming_message(self, incoming_msg) -> None:  # type: ignore[override]
        problem = v1_frame_problem(incoming_msg)
        if problem is not None:
            self.log.warning("Closed a kernel websocket after a malformed v1 frame: %s", problem)
            self.websocket_handler.close(1003, "malformed v1 kernel message")
            return
        super().handle_incoming_message(incoming_msg)

