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

Everything runs on anyio. The local side is a plain non-blocking socket awaited through anyio
(`wait_readable`/`wait_writable`): closing it lets the kernel deliver every byte already sent
before its FIN, and a reset is an explicit RST (SO_LINGER 0); an anyio stream's aclose() would
abort the connection and drop what its transport still buffers.
"""

from __future__ import annotations

import base64
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from ..agent.address import hostport
from ..agent.classify import errno_from_message, status_for_errno
from ..facts import PortForwardFact
from ..status import Status

if TYPE_CHECKING:  # aiohttp costs ~0.1 s to import: only runs that port-forward pay for it
    import aiohttp

__all__ = [
    "ForwardOutcome",
    "Framing",
    "LocalConnection",
    "PodPort",
    "PortForward",
    "classify_error",
    "relay",
    "serve_local",
]

# Opens the WebSocket: returns aiohttp's ws_connect context manager (not yet entered).
WsOpener = Callable[[], Awaitable[Any]]
READ_SIZE = 64 * 1024
CHECK_GRACE = 0.25  # how long the check waits for the kubelet to report a failed connect
MAX_CHECK_GRACE = 2.0
LINGER_AFTER_EOF = 2.0  # no half-close in the protocol: wait this long for the pod's answer
CLOSE_WITHIN = 2.0  # closing a WebSocket must not hold the end of a run
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


@dataclass(frozen=True)
class Framing:
    """How one port's frames travel: the port (announced in the first frame of each channel),
    its index among the request's ports, binary or base64 text frames."""

    port: int
    index: int = 0
    base64_frames: bool = False

    @property
    def data_channel(self) -> int:
        return 2 * self.index

    @property
    def error_channel(self) -> int:
        return 2 * self.index + 1


@dataclass(frozen=True)
class PodPort:
    """Where a tunnel leads: a pod's port."""

    namespace: str
    pod: str
    port: int

    def __str__(self) -> str:
        return f"pod {self.namespace}/{self.pod} port {self.port}"


class LocalConnection:
    """The local end of one tunnelled connection: a non-blocking socket driven through anyio."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.closed = False

    async def receive(self) -> bytes:
        """The next bytes the local client sent; b"" once it closed its side."""
        while True:
            try:
                return self.sock.recv(READ_SIZE)
            except BlockingIOError:
                await anyio.wait_readable(self.sock)

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                await anyio.wait_writable(self.sock)
                continue
            view = view[sent:]

    def close(self) -> None:
        """A clean end: the kernel delivers what was sent, then FIN."""
        if not self.closed:
            self.closed = True
            anyio.notify_closing(self.sock)
            self.sock.close()

    def reset(self) -> None:
        """A failed end: RST, so the local client sees the failure, not a clean end of data."""
        if not self.closed:
            with suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close()


async def serve_local(
    handle: Callable[[LocalConnection], Awaitable[None]],
    host: str = "127.0.0.1",
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on `host` (an ephemeral port, reported through `task_status`) and give every
    accepted connection to `handle` in a task of its own, until cancelled."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        listener.bind((host, 0))
        listener.listen(128)
        listener.setblocking(False)
        async with anyio.create_task_group() as group:
            task_status.started(int(listener.getsockname()[1]))
            while True:
                await anyio.wait_readable(listener)
                try:
                    sock, _peer = listener.accept()
                except (BlockingIOError, ConnectionAbortedError):
                    continue
                group.start_soon(_serve_one, handle, LocalConnection(sock))
    finally:
        anyio.notify_closing(listener)
        listener.close()


async def _serve_one(
    handle: Callable[[LocalConnection], Awaitable[None]], local: LocalConnection
) -> None:
    try:
        await handle(local)
    finally:
        local.close()  # whatever happened, the socket is not left open


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


async def _close_ws(ws: aiohttp.ClientWebSocketResponse) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_WITHIN), suppress(Exception):
        await ws.close()


class _Relay:
    """One local connection relayed through one port-forward WebSocket."""

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, local: LocalConnection, framing: Framing
    ) -> None:
        self.ws = ws
        self.local = local
        self.framing = framing
        self.outcome = ForwardOutcome()
        self.prefix_seen = {framing.data_channel: False, framing.error_channel: False}
        self.errors: list[bytes] = []
        self.crashed: list[BaseException] = []  # a side failed, not just ended

    async def send(self, payload: bytes) -> None:
        channel = self.framing.data_channel
        if self.framing.base64_frames:
            await self.ws.send_str(chr(ord("0") + channel) + base64.b64encode(payload).decode())
        else:
            await self.ws.send_bytes(bytes((channel,)) + payload)

    async def pod_to_local(self) -> None:
        outcome, port = self.outcome, self.framing.port
        async for message in self.ws:
            frame = _frame(message)
            if frame is None:
                break
            if not frame or frame[0] not in self.prefix_seen:
                continue  # another port's channels
            channel, payload = frame[0], frame[1:]
            if not self.prefix_seen[channel]:
                if len(payload) < 2 or int.from_bytes(payload[:2], "little") != port:
                    raise ValueError(f"bad port prefix on channel {channel}: {payload[:2]!r}")
                self.prefix_seen[channel] = True
                outcome.started = all(self.prefix_seen.values())
                payload = payload[2:]
            if not payload:
                continue
            if channel == self.framing.error_channel:
                self.errors.append(payload)
            else:
                outcome.bytes_from_pod += len(payload)
                await self.local.send(payload)

    async def local_to_pod(self) -> None:
        while chunk := await self.local.receive():
            self.outcome.bytes_to_pod += len(chunk)
            await self.send(chunk)

    async def side(
        self, work: Callable[[], Awaitable[None]], ended: anyio.Event, done: anyio.Event
    ) -> None:
        """Run one direction; a closed connection is an end, anything else a failure."""
        try:
            await work()
        except ConnectionError:
            pass
        except Exception as exc:
            self.crashed.append(exc)
        finally:
            ended.set()
            done.set()

    async def run(self, linger: float) -> None:
        down_ended, up_ended, first = anyio.Event(), anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(self.side, self.pod_to_local, down_ended, first)
            group.start_soon(self.side, self.local_to_pod, up_ended, first)
            await first.wait()
            if not down_ended.is_set():  # the local side ended first: let the pod side finish
                with anyio.move_on_after(linger):
                    await down_ended.wait()
            group.cancel_scope.cancel()

    async def finish(self, cancelled: bool) -> None:
        """Close both ends: cleanly when the pod side ended, with a reset when the kubelet
        reported an error or the WebSocket dropped."""
        outcome = self.outcome
        self.errors.extend(f"{type(e).__name__}: {e}".encode() for e in self.crashed)
        await _close_ws(self.ws)
        outcome.close_code = self.ws.close_code
        outcome.error = b"".join(self.errors).decode(errors="replace").strip() or None
        if outcome.dropped and outcome.error is None and not cancelled:
            outcome.error = "the WebSocket through the API server dropped (no close frame)"
        if cancelled:
            self.local.close()  # the tunnel is closing with the run: not the connection's fault
        elif self.crashed or outcome.error is not None:
            self.local.reset()
        else:
            self.local.close()


async def relay(
    ws: aiohttp.ClientWebSocketResponse,
    local: LocalConnection,
    framing: Framing,
    *,
    linger: float = LINGER_AFTER_EOF,
    outcome: ForwardOutcome | None = None,
) -> ForwardOutcome:
    """Relay one local connection through a port-forward WebSocket, for the port `framing`
    names. Closes the local connection: cleanly when the pod side ended, with a reset when the
    kubelet reported an error or the WebSocket dropped. `outcome` (filled as the relay goes)
    lets a caller see the counts even if the relay is cancelled."""
    work = _Relay(ws, local, framing)
    if outcome is not None:
        work.outcome = outcome
    cancelled = False
    try:
        await work.run(linger)
    except anyio.get_cancelled_exc_class():
        cancelled = True
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await work.finish(cancelled)
    return work.outcome


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
    """A local listener on 127.0.0.1 whose every connection is tunnelled to a pod's port.

    `serve` runs it in a task group of the caller's (the run's: a tunnel lives as long as
    the run); as an async context manager it runs in a task group of its own. `port` is the
    local port once it listens."""

    def __init__(
        self,
        open_ws: WsOpener,
        target: PodPort,
        *,
        host: str = "127.0.0.1",
        base64_frames: bool = False,
        handshake_timeout: float = 10.0,
    ) -> None:
        self.open_ws = open_ws
        self.target = target
        self.framing = Framing(target.port, base64_frames=base64_frames)
        self.host = host
        self.handshake_timeout = handshake_timeout
        self.port = 0
        # What the tunnel did, live: the column's facts hold this very dict, so the report
        # shows the connections of the whole run and what the kubelet said about them.
        self.live = PortForwardFact(
            pod=target.pod,
            namespace=target.namespace,
            pod_port=target.port,
            local=None,
            connections=0,
            bytes_to_pod=0,
            bytes_from_pod=0,
            errors=[],
        )
        self._stack: AsyncExitStack | None = None

    async def serve(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen, report the local port, and tunnel every connection until cancelled."""

        async def listening(*, task_status: TaskStatus[int]) -> None:
            await serve_local(self._handle, self.host, task_status=task_status)

        async with anyio.create_task_group() as group:
            self.port = await group.start(listening)
            self.live["local"] = hostport(self.host, self.port)
            task_status.started(self.port)

    def record(self, outcome: ForwardOutcome) -> None:
        live = self.live
        live["connections"] += 1
        live["bytes_to_pod"] += outcome.bytes_to_pod
        live["bytes_from_pod"] += outcome.bytes_from_pod
        if outcome.error and len(live["errors"]) < KEPT_ERRORS:
            live["errors"].append(outcome.error)

    async def __aenter__(self) -> PortForward:
        stack = AsyncExitStack()
        group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(group.cancel_scope.cancel)
        self._stack = stack
        await group.start(self.serve)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    @asynccontextmanager
    async def websocket(self) -> AsyncIterator[Any]:
        """One port-forward WebSocket for the pod's port, entered within the handshake
        timeout."""
        with anyio.fail_after(self.handshake_timeout):
            manager = await self.open_ws()
            ws = await manager.__aenter__()
        try:
            yield ws
        finally:
            with (
                anyio.CancelScope(shield=True),
                anyio.move_on_after(CLOSE_WITHIN),
                suppress(Exception),
            ):
                await manager.__aexit__(None, None, None)

    async def _handle(self, local: LocalConnection) -> None:
        import aiohttp

        outcome = ForwardOutcome()
        try:
            async with self.websocket() as ws:
                await relay(ws, local, self.framing, outcome=outcome)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            outcome.error = f"opening the tunnel: {type(exc).__name__}: {exc}"
            local.reset()
        finally:
            self.record(outcome)

    async def check(self, grace: float = CHECK_GRACE) -> tuple[Status, str] | None:
        """Open one tunnel and listen for the kubelet's verdict on the pod's port: None when
        it says nothing bad within `grace` after announcing the port, else (status, why).
        Raises what opening the WebSocket raises (refused upgrade, API server errors)."""
        where = str(self.target)
        opened = anyio.current_time()
        async with self.websocket() as ws:
            announced: set[int] = set()
            errors: list[bytes] = []
            deadline = anyio.current_time() + self.handshake_timeout
            while True:
                wait = deadline - anyio.current_time()
                if wait <= 0:
                    break
                with anyio.move_on_after(wait) as waited:
                    message = await ws.receive()
                if waited.cancelled_caught:
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
                        took = anyio.current_time() - opened
                        window = min(max(grace, 2 * took), MAX_CHECK_GRACE)
                        deadline = min(deadline, anyio.current_time() + window)
                if frame[0] == 1 and payload:
                    errors.append(payload)
                    deadline = min(deadline, anyio.current_time() + 0.05)  # the rest of it
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
