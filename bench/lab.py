"""The bench's loopback lab: a port range with a few listeners of our own, a full-backlog port,
and the matrix files every measurement reads. Nothing here leaves 127.0.0.1 or resolves a name.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from probe_engine.demo.fixtures import FullBacklog

LOOPBACK = "127.0.0.1"


class Listeners:
    """Accept-and-close listeners on a few ports of the range, so some cells are `ok`.

    One thread accepts for all of them (bounded by `stop`), so repeated scans never fill an
    accept queue and curl's HTTP attempt ends at once (an empty reply) instead of hanging.
    """

    def __init__(self, low: int, high: int, count: int) -> None:
        self.socks: list[socket.socket] = []
        span = high - low + 1
        for index in range(1, count + 1):
            wanted = low + index * span // (count + 1)
            for port in range(wanted, min(wanted + 50, high + 1)):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((LOOPBACK, port))
                except OSError as exc:  # in use by someone else, or a privileged port
                    sock.close()
                    if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                        continue
                    raise
                sock.listen(1024)
                sock.setblocking(False)
                self.socks.append(sock)
                break
        self.ports = sorted(int(s.getsockname()[1]) for s in self.socks)
        self.stop = threading.Event()
        self.selector = selectors.DefaultSelector()
        for sock in self.socks:
            self.selector.register(sock, selectors.EVENT_READ)
        self.thread = threading.Thread(target=self._loop, name="bench-accept", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            for key, _mask in self.selector.select(0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                with contextlib.suppress(OSError):
                    while True:
                        conn, _peer = sock.accept()
                        conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.selector.close()
        for sock in self.socks:
            sock.close()


def write_scan(path: Path, low: int, high: int, sources: int = 1) -> Path:
    """One tcp target with `ports: ["LOW-HIGH"]` (one cell per port), from `sources` local
    sources; the engine's defaults otherwise."""
    lines = ["version: 1", "sources:"]
    lines += [f"  here{i}: {{kind: local}}" for i in range(1, sources + 1)]
    lines += ["targets:", f'  scan: {{kind: tcp, host: {LOOPBACK}, ports: ["{low}-{high}"]}}']
    path.write_text("\n".join(lines) + "\n")
    return path


def write_targets(path: Path, ports: list[int]) -> Path:
    """One `{kind: tcp, host, port}` target per port: the large-matrix loading case."""
    lines = ["version: 1", "sources:", "  here: {kind: local}", "targets:"]
    lines += [f"  t{port}: {{kind: tcp, host: {LOOPBACK}, port: {port}}}" for port in ports]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_timeouts(path: Path, port: int, cells: int, timeout: str, concurrency: int) -> Path:
    """`cells` targets on one full-backlog port: every SYN is dropped, every cell times out."""
    lines = [
        "version: 1",
        f"defaults: {{timeout: {timeout}, concurrency: {concurrency}}}",
        "sources:",
        "  here: {kind: local}",
        "targets:",
    ]
    lines += [f"  slow{i}: {{kind: tcp, host: {LOOPBACK}, port: {port}}}" for i in range(cells)]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def full_backlog() -> Iterator[FullBacklog]:
    backlog = FullBacklog()
    try:
        yield backlog
    finally:
        backlog.close()
