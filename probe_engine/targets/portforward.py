"""Port-forward through the API server, as `kubectl port-forward` does, over WebSocket.

kubernetes-asyncio has no port-forward helper, so the kubelet's channel protocol is framed
here (subprotocol v4.channel.k8s.io, or its base64 variant): for the i-th port of a request,
data travels on channel 2i and errors on 2i+1; the first frame the server sends on each carries
the port as 2 little-endian bytes; what the client sends has no such prefix. Every connection
accepted on the local listener (127.0.0.1, an ephemeral port) gets a WebSocket of its own.

The protocol says nothing when the pod side connects, only when it fails (a text on the error
channel). So `check()` opens one tunnel at resolve time and waits briefly for such a text: a
pod that refuses the port makes the column `refused` with the kubelet's own words, instead of
a local listener that accepts everything. A failure later (the pod went away, the WebSocket
dropped) resets the local connection, so the probe sees a reset rather than a clean end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..agent.classify import errno_from_message, status_for_errno
from ..facts import PortForwardFact
from ..status import Status

if TYPE_CHECKING:  # aiohttp costs ~0.1 s to import: only runs that port-forward pay for it
    import aiohttp

__all__ = ["ForwardOutcome", "PortForward", "classify_error", "relay"]

# Opens the WebSocket: returns aiohttp's ws_connect context manager (not yet entered).
WsOpener = Callable[[], Awaitable[Any]]
READ_SIZE = 64 * 1024
CHECK_GRACE = 0.25  # how long the check waits for the kubelet to report a failed connect
MAX_CHECK_GRACE = 2.0
LINGER_AFTER_EOF = 2.0  # no half-close in the protocol: wait this long for the pod's answer
ABNORMAL_CLOSURE = 1006
KEPT_ERRORS = 20


@dataclass
class ForwardOutcome:
    """How one forwarded connection ended."""

    error: str | None = None  # what the kubelet sent on the error channel
    started: bool = False  # both port-prefix frames arrived
    bytes_to_pod: int = 0
    bytes_from_pod: int = 0
    close_code: int | None = None  # 1000 closed cleanly, 1006 dropped (no close frame)

    @property
    def dropped(self) -> bool:
        return self.close_code == ABNORMAL_CLOSURE


def _frame(message: aiohttp.WSMessage) -> bytes | None:
    from aiohttp import WSMsgType

    if message.type is WSMsgType.BINARY:
        data: bytes = message.data
        return data
    if message.type is WSMsgType.TEXT:  # base64 variant: '0'+channel, then base64
        text: str = message.data
        if not text:
            return b""
        return bytes((ord(text[0]) - ord("0"),)) + base64.b64decode(text[1:])
    return None  # CLOSE, CLOSED, ERROR: the stream is over


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, so the local client sees the failure (not a clean end of data)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def relay(
    ws: aiohttp.ClientWebSocketResponse,
    port: int,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    index: int = 0,
    base64_frames: bool = False,
    linger: float = LINGER_AFTER_EOF,
    outcome: ForwardOutcome | None = None,
) -> ForwardOutcome:
    """Relay one local TCP connection through a port-forward WebSocket, for the `index`-th
    port of the request. Closes the local connection: cleanly when the pod side ended, with a
    reset when the kubelet reported an error or the WebSocket dropped. `outcome` (filled as
    the relay goes) lets a caller see the counts even if the relay is cancelled."""
    data_ch, err_ch = 2 * index, 2 * index + 1
    prefix_seen = {data_ch: False, err_ch: False}
    outcome = outcome or ForwardOutcome()
    errors: list[bytes] = []

    async def send(payload: bytes) -> None:
        if base64_frames:
            await ws.send_str(chr(ord("0") + data_ch) + base64.b64encode(payload).decode())
        else:
            await ws.send_bytes(bytes((data_ch,)) + payload)

    async def pod_to_local() -> None:
        async for message in ws:
            frame = _frame(message)
            if frame is None:
                break
            if not frame or frame[0] not in prefix_seen:
                continue  # another port's channels
            channel, payload = frame[0], frame[1:]
            if not prefix_seen[channel]:
                if len(payload) < 2 or int.from_bytes(payload[:2], "little") != port:
                    raise ValueError(f"bad port prefix on channel {channel}: {payload[:2]!r}")
                prefix_seen[channel] = True
                outcome.started = all(prefix_seen.values())
                payload = payload[2:]
            if not payload:
                continue
            if channel == err_ch:
                errors.append(payload)
            else:
                outcome.bytes_from_pod += len(payload)
                writer.write(payload)
                await writer.drain()

    async def local_to_pod() -> None:
        while chunk := await reader.read(READ_SIZE):
            outcome.bytes_to_pod += len(chunk)
            await send(chunk)

    down = asyncio.create_task(pod_to_local())
    up = asyncio.create_task(local_to_pod())
    failed = cancelled = False
    try:
        await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
        if not down.done():  # the local side ended first: let the pod side finish
            await asyncio.wait({down}, timeout=linger)
        for task in (down, up):
            if task.done() and not task.cancelled():
                error = task.exception()
                if error is not None and not isinstance(error, ConnectionError):
                    failed = True
                    errors.append(f"{type(error).__name__}: {error}".encode())
    except asyncio.CancelledError:
        cancelled = True  # the tunnel is closing with the run: not the connection's fault
        raise
    finally:
        for task in (down, up):
            task.cancel()
        await asyncio.gather(down, up, return_exceptions=True)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()
        outcome.close_code = ws.close_code
        outcome.error = b"".join(errors).decode(errors="replace").strip() or None
        if outcome.dropped and outcome.error is None and not cancelled:
            outcome.error = "the WebSocket through the API server dropped (no close frame)"
        if cancelled:
            writer.transport.abort()
        elif failed or outcome.error is not None:
            _reset(writer)
        else:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
    return outcome


def classify_error(text: str) -> Status:
    """The kubelet's words ("... connect: connection refused") as a status."""
    number = errno_from_message(text)
    if number is not None:
        return status_for_errno(number)
    lowered = text.lower()
    if "timeout" in lowered or "timed out" in lowered:
        return "timeout"
    return "unreachable"


class PortForward:
    """A local listener on 127.0.0.1 whose every connection is tunnelled to `pod`'s `port`.

    Use as an async context manager (or `start()` / `aclose()`); `port` is the local port."""

    def __init__(
        self,
        open_ws: WsOpener,
        pod: str,
        namespace: str,
        port: int,
        *,
        host: str = "127.0.0.1",
        base64_frames: bool = False,
        handshake_timeout: float = 10.0,
    ) -> None:
        self.open_ws = open_ws
        self.pod = pod
        self.namespace = namespace
        self.pod_port = port
        self.host = host
        self.base64_frames = base64_frames
        self.handshake_timeout = handshake_timeout
        self.port = 0
        # What the tunnel did, live: the column's facts hold this very dict, so the report
        # shows the connections of the whole run and what the kubelet said about them.
        self.live = PortForwardFact(
            pod=pod,
            namespace=namespace,
            pod_port=port,
            local=None,
            connections=0,
            bytes_to_pod=0,
            bytes_from_pod=0,
            errors=[],
        )
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.live["local"] = f"{self.host}:{self.port}"
        return self.port

    def record(self, outcome: ForwardOutcome) -> None:
        live = self.live
        live["connections"] += 1
        live["bytes_to_pod"] += outcome.bytes_to_pod
        live["bytes_from_pod"] += outcome.bytes_from_pod
        if outcome.error and len(live["errors"]) < KEPT_ERRORS:
            live["errors"].append(outcome.error)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def __aenter__(self) -> PortForward:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @contextlib.asynccontextmanager
    async def websocket(self) -> Any:
        """One port-forward WebSocket for `pod_port`, entered within the handshake timeout."""
        manager = await asyncio.wait_for(self.open_ws(), self.handshake_timeout)
        ws = await asyncio.wait_for(manager.__aenter__(), self.handshake_timeout)
        try:
            yield ws
        finally:
            with contextlib.suppress(Exception):
                await manager.__aexit__(None, None, None)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import aiohttp

        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        outcome = ForwardOutcome()
        try:
            async with self.websocket() as ws:
                await relay(
                    ws,
                    self.pod_port,
                    reader,
                    writer,
                    base64_frames=self.base64_frames,
                    outcome=outcome,
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            outcome.error = f"opening the tunnel: {type(exc).__name__}: {exc}"
            _reset(writer)
        except asyncio.CancelledError:
            # The run is over (aclose): this task is ours and ends here; asyncio's stream
            # callback would log a cancelled handler as an error.
            writer.transport.abort()
        finally:
            self.record(outcome)
            if task is not None:
                self._handlers.discard(task)

    async def check(self, grace: float = CHECK_GRACE) -> tuple[Status, str] | None:
        """Open one tunnel and listen for the kubelet's verdict on the pod's port: None when
        it says nothing bad within `grace` after announcing the port, else (status, why).
        Raises what opening the WebSocket raises (refused upgrade, API server errors)."""
        where = f"pod {self.namespace}/{self.pod} port {self.pod_port}"
        loop = asyncio.get_running_loop()
        opened = loop.time()
        async with self.websocket() as ws:
            announced: set[int] = set()
            errors: list[bytes] = []
            deadline = loop.time() + self.handshake_timeout
            while True:
                wait = deadline - loop.time()
                if wait <= 0:
                    break
                try:
                    message = await asyncio.wait_for(ws.receive(), wait)
                except TimeoutError:
                    break
                frame = _frame(message)
                if frame is None:
                    if ws.close_code in (None, ABNORMAL_CLOSURE) and not errors:
                        when = "after" if announced == {0, 1} else "before"
                        return (
                            "target-error",
                            f"port-forward to {where}: the WebSocket through the API server "
                            f"dropped {when} the kubelet announced the port",
                        )
                    break
                if not frame or frame[0] not in (0, 1):
                    continue
                payload = frame[1:]
                if frame[0] not in announced:
                    announced.add(frame[0])
                    payload = payload[2:]
                    if announced == {0, 1}:
                        # A slow path to the kubelet (a loaded API server, a far cluster)
                        # is slow to report a failure too: wait twice what the answer took.
                        took = loop.time() - opened
                        window = min(max(grace, 2 * took), MAX_CHECK_GRACE)
                        deadline = min(deadline, loop.time() + window)
                if frame[0] == 1 and payload:
                    errors.append(payload)
                    deadline = min(deadline, loop.time() + 0.05)  # the rest of the message
            if errors:
                text = b"".join(errors).decode(errors="replace").strip()
                return classify_error(text), f"port-forward to {where}: the kubelet says: {text}"
            if announced != {0, 1}:
                return (
                    "target-error",
                    f"port-forward to {where}: the kubelet never announced the port "
                    f"(within {self.handshake_timeout:g}s)",
                )
        return None
