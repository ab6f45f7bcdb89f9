"""WebSocket channel framing as the kubelet does it: subprotocols, channel bytes, drops."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

from aiohttp import WSMsgType, web

from .records import FAULT_KEY, RECORD_KEY, Fault

#: exec subprotocols the kubelet accepts; value: (base64 text frames, JSON status, close frames)
EXEC_PROTOCOLS: dict[str, tuple[bool, bool, bool]] = {
    "v5.channel.k8s.io": (False, True, True),
    "v4.channel.k8s.io": (False, True, False),
    "v4.base64.channel.k8s.io": (True, True, False),
    "v3.channel.k8s.io": (False, False, False),
    "v2.channel.k8s.io": (False, False, False),
    "channel.k8s.io": (False, False, False),
    "base64.channel.k8s.io": (True, False, False),
    "": (False, False, False),
}
PORTFORWARD_PROTOCOLS: dict[str, bool] = {
    "v4.channel.k8s.io": False,
    "v4.base64.channel.k8s.io": True,
    "": False,
}
STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255


class Dropped(Exception):
    """The fault injector cut the connection."""


class Channels:
    """Send and receive ``[channel byte] + payload`` messages (or base64 text frames)."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        base64_frames: bool,
        drop_after: int | None,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.on_drop = on_drop
        self.ws = ws
        self.request = request
        self.base64 = base64_frames
        self.drop_after = drop_after
        self.sent = 0
        self.dropped = False
        self._lock = asyncio.Lock()

    async def send(self, channel: int, payload: bytes, *, count: bool = True) -> None:
        async with self._lock:
            if self.dropped:
                raise Dropped
            if self.base64:
                await self.ws.send_str(chr(ord("0") + channel) + base64.b64encode(payload).decode())
            else:
                await self.ws.send_bytes(bytes((channel,)) + payload)
            if count:
                self.sent += len(payload)
            if self.drop_after is not None and self.sent >= self.drop_after:
                self.drop()
                raise Dropped

    def drop(self) -> None:
        self.dropped = True
        if self.on_drop is not None:
            self.on_drop()
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def receive(self) -> AsyncIterator[tuple[int, bytes]]:
        """Frames from the client until it closes; malformed frames are skipped."""
        async for msg in self.ws:
            if msg.type is WSMsgType.BINARY:
                data: bytes = msg.data
                if data:
                    yield data[0], data[1:]
            elif msg.type is WSMsgType.TEXT and self.base64:
                text: str = msg.data
                if not text:
                    continue
                with contextlib.suppress(binascii.Error, ValueError):
                    yield ord(text[0]) - ord("0"), base64.b64decode(text[1:])
            elif msg.type is WSMsgType.ERROR:
                return

    async def close(self) -> None:
        if not self.dropped:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.close()


def _offered_protocols(request: web.Request) -> list[str]:
    return [
        p.strip()
        for header in request.headers.getall("Sec-WebSocket-Protocol", [])
        for p in header.split(",")
        if p.strip()
    ]


def negotiate(request: web.Request, supported: Iterable[str]) -> str | None:
    offered = _offered_protocols(request) or [""]
    supported = list(supported)
    return next((p for p in offered if p in supported), None)


def refuse_protocol(request: web.Request, supported: Iterable[str]) -> web.Response:
    # What golang.org/x/net/websocket does when the kubelet's handshake rejects the protocol.
    return web.Response(
        status=403,
        text=(
            "unable to upgrade: requested protocol(s) are not supported: "
            f"{_offered_protocols(request)}; supports {[p for p in supported if p]}"
        ),
    )


def is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "false").strip().lower() in ("true", "1", "t", "yes")


def go_errno_text(exc: BaseException) -> str:
    """An OSError as Go's net package words it after ``connect: ``."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) and not getattr(exc, "errno", None):
        return "i/o timeout"
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code:
        text = os.strerror(code)
        return text[:1].lower() + text[1:]
    return str(exc) or type(exc).__name__


async def upgrade(
    request: web.Request,
    protocol: str,
    *,
    base64_frames: bool,
    on_drop: Callable[[], None] | None = None,
) -> tuple[web.WebSocketResponse, Channels]:
    """Accept the WebSocket upgrade on `protocol` and frame it as the kubelet does; a fault
    injected for this request drops it after its bytes."""
    ws = web.WebSocketResponse(
        protocols=(protocol,) if protocol else (),
        compress=False,  # a real apiserver negotiates no permessage-deflate
        max_msg_size=64 * 1024**2,
    )
    await ws.prepare(request)
    request[RECORD_KEY].status = 101
    fault: Fault | None = request.get(FAULT_KEY)
    drop_after = fault.drop_after_bytes if fault else None
    return ws, Channels(
        ws, request, base64_frames=base64_frames, drop_after=drop_after, on_drop=on_drop
    )
