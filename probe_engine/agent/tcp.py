"""The tcp check: many non-blocking connects in flight on one selector, the errno kept.

A connect is answered by the kernel (connected, ECONNREFUSED, EHOSTUNREACH, its own ETIMEDOUT)
or by our deadline, which the runner enforces and reports apart from the kernel's ETIMEDOUT.
Standard library only and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import time
from typing import Callable

from .bind import Bind, BindError, bind_socket, describe
from .classify import errno_name, status_for_errno
from .dns import family_name
from .records import Check

TcpCallback = Callable[[Check], None]

IN_PROGRESS = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)
# Linux creates the socket non-blocking in the same syscall; elsewhere setblocking() does it.
NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)


def raise_fd_limit() -> None:
    """Thousands of connects in flight need more than the usual 1024 descriptors."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 16
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Attempt:
    """One connect to one address, reported once through its callback."""

    __slots__ = ("address", "callback", "done", "family", "port", "sock", "started")

    def __init__(self, family: int, address: str, port: int, callback: TcpCallback) -> None:
        self.family = family
        self.address = address
        self.port = port
        self.callback = callback
        self.started = time.monotonic()
        self.sock: socket.socket | None = None
        self.done = False

    def record(self, number: int | None, message: str | None = None) -> Check:
        status = "ok" if number == 0 else status_for_errno(number)
        return {
            "name": "tcp",
            "status": status,
            "errno": None if number == 0 else number,
            "errno_name": None if number == 0 else errno_name(number),
            "message": message or ("connected" if number == 0 else os.strerror(number or 0)),
            "address": self.address,
            "family": family_name(self.family),
            "port": self.port,
            "duration_ms": (time.monotonic() - self.started) * 1000.0,
        }


SELF_CONNECT = (
    "connected to itself (TCP simultaneous open: the kernel picked this very port as the "
    "source): nothing listens on this port"
)


def _self_connected(sock: socket.socket) -> bool:
    """A connection whose local address and port are its peer's: a connect to a closed port
    in the ephemeral range that the kernel answered with its own SYN."""
    try:
        local, peer = sock.getsockname(), sock.getpeername()
    except OSError:
        return False
    return bool(local[:2] == peer[:2])


def _refused_already(sock: socket.socket) -> int | None:
    """The errno of a connect "in progress" that the kernel has already failed, else None.

    On loopback (and local bridges) a RST is usually processed before connect() returns: a
    port scan's closed ports then cost no selector registration and no wake-up. (A success
    still goes through the selector: telling it from "pending" costs a syscall per cell.)
    """
    number = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return int(number) if number else None


class Connector:
    """Starts connects and finishes them when the selector reports their socket writable."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector

    def start(
        self, family: int, address: str, port: int, callback: TcpCallback, bind: Bind = None
    ) -> Attempt:
        """Connect to address:port (from the chosen source `bind`, if any); `callback` gets
        the record once."""
        attempt = Attempt(family, address, port, callback)
        try:
            sock = socket.socket(family, socket.SOCK_STREAM | NONBLOCK)
        except OSError as exc:
            self._finish(attempt, exc.errno or errno.EINVAL, None)
            return attempt
        if not NONBLOCK:
            sock.setblocking(False)
        if bind:
            try:
                bind_socket(sock, family, bind)
            except BindError as exc:  # nothing was sent: the place lacks the chosen source
                sock.close()
                attempt.done = True
                record = exc.record("tcp", address, family_name(family), port)
                record["bind"] = describe(bind)
                callback(record)
                return attempt
        attempt.sock = sock
        target = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
        try:
            result: int | None = sock.connect_ex(target)
        except OSError as exc:  # e.g. an address of the wrong family
            result = exc.errno or errno.EINVAL
        if result in IN_PROGRESS:
            result = _refused_already(sock)
        if result is None:
            self.selector.register(sock, selectors.EVENT_WRITE, (self._writable, attempt))
        else:
            self._finish(attempt, result, sock)
        return attempt

    def watch(self, attempt: Attempt) -> None:
        """Wait for a connect started elsewhere (the scan lane) that is still in progress."""
        assert attempt.sock is not None
        self.selector.register(attempt.sock, selectors.EVENT_WRITE, (self._writable, attempt))

    def _writable(self, attempt: Attempt) -> None:
        sock = attempt.sock
        if sock is None or attempt.done:
            return
        self.selector.unregister(sock)
        self._finish(attempt, sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), sock)

    def _finish(self, attempt: Attempt, number: int, sock: socket.socket | None) -> None:
        attempt.done = True
        if number == 0 and sock is not None and _self_connected(sock):
            # TCP simultaneous open: nothing listens on this port, the kernel picked it as the
            # source port and the SYN answered itself. The port is closed.
            record = attempt.record(errno.ECONNREFUSED, SELF_CONNECT)
            record["source_address"] = attempt.address
        else:
            record = attempt.record(number)
        if number == 0 and sock is not None and "source_address" not in record:
            with contextlib.suppress(OSError):
                record["source_address"] = str(sock.getsockname()[0])
        if sock is not None:
            sock.close()
        attempt.sock = None
        attempt.callback(record)

    def abort(self, attempt: Attempt) -> None:
        """Stop waiting (the deadline passed): close the socket, report nothing."""
        if attempt.done:
            return
        attempt.done = True
        if attempt.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(attempt.sock)
            attempt.sock.close()
            attempt.sock = None
