"""Loopback fixtures for the demo and the tests: every failure a single host can produce.

Each fixture binds 127.0.0.1 on a port the kernel picks, runs in daemon threads and is closed
by `LoopbackLab.close()` (or the context manager). Nothing here leaves the loopback interface.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import dns.message
import dns.rcode
import dns.rrset

LOOPBACK = "127.0.0.1"


class _Handler(BaseHTTPRequestHandler):
    server_version = "probe-engine-demo/1"

    def do_GET(self) -> None:
        if self.path.startswith("/health"):
            self._send(200, {"status": "ok"})
        elif self.path.startswith("/needs-header"):
            # Answers only a client that sends X-Probe (a token-protected health check).
            ok = self.headers.get("X-Probe") is not None
            self._send(200 if ok else 401, {"status": "ok" if ok else "X-Probe missing"})
        elif self.path.startswith("/error"):
            self._send(500, {"status": "broken"})
        elif self.path.startswith("/big"):
            size = int(self.path.rpartition("/")[2] or 0)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"x" * 65536
            for start in range(0, size, len(chunk)):
                self.wfile.write(chunk[: min(len(chunk), size - start)])
        else:
            self._send(404, {"status": "not found"})

    do_HEAD = do_GET

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _close_listening(sock: socket.socket) -> None:
    """Close a socket a thread blocks on: on Linux a bare close() leaves that accept() or
    recvfrom() waiting, and a listener keeps accepting one more connection; shutdown() wakes
    it first (a UDP socket says ENOTCONN, and wakes it all the same)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _held_port() -> socket.socket:
    """A port this process holds without listening: every connect to it is refused."""
    sock = socket.socket()
    sock.bind((LOOPBACK, 0))
    return sock


class _Acceptor:
    """A listener whose accepted connections are handled by `on_accept` in a thread."""

    def __init__(self, on_accept: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.on_accept = on_accept
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.on_accept(self, conn)

    def close(self) -> None:
        _close_listening(self.sock)
        for conn in self.held:
            conn.close()


def _hang(acceptor: _Acceptor, conn: socket.socket) -> None:
    acceptor.held.append(conn)  # accept and never answer: a read timeout


def _close(acceptor: _Acceptor, conn: socket.socket) -> None:
    conn.close()  # accept, then close at once: a service that hangs up on every client


def _banner(acceptor: _Acceptor, conn: socket.socket) -> None:
    # Speak first, then hold the line (an SSH or SMTP server waiting for the client).
    with contextlib.suppress(OSError):
        conn.sendall(b"SSH-2.0-probe-engine-demo\r\n")
    acceptor.held.append(conn)


def _reset(acceptor: _Acceptor, conn: socket.socket) -> None:
    # SO_LINGER 0 turns close() into a RST: the client sees ECONNRESET. The whole request is
    # read first (to the blank line ending its headers, or to the client's EOF): a client that
    # writes in pieces would otherwise see EPIPE or ECONNRESET depending on timing.
    received = b""
    conn.settimeout(2.0)
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in received and len(received) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                break
            received += chunk
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class FullBacklog:
    """A listener that never accepts, its queue filled: further connects get no SYN-ACK."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(0)
        self.port = int(self.sock.getsockname()[1])
        self.fillers: list[socket.socket] = []
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((LOOPBACK, self.port))
            self.fillers.append(filler)
            time.sleep(0.01)
            if not self._completes():
                break

    def _completes(self) -> bool:
        probe = socket.socket()
        probe.settimeout(0.2)
        try:
            probe.connect((LOOPBACK, self.port))
            self.fillers.append(probe)
            return True
        except OSError:
            probe.close()
            return False

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.sock.close()


class DnsServer:
    """A tiny authoritative server on loopback UDP: known names answer, others are NXDOMAIN.

    A name maps to one address or a list of them (A and AAAA records alike); a name with no
    address of the asked family gets an empty NOERROR answer (NODATA), as real servers do.
    """

    def __init__(self, records: Mapping[str, str | Sequence[str]]) -> None:
        self.records: dict[str, list[str]] = {
            k.rstrip(".").lower(): [v] if isinstance(v, str) else list(v)
            for k, v in records.items()
        }
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:  # not DNS: ignore, as a real server would
                continue
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            addresses = self.records.get(name)
            wanted = [a for a in addresses or [] if (":" in a) == (question.rdtype == 28)]
            if addresses is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif wanted:
                rdtype = "AAAA" if question.rdtype == 28 else "A"
                response.answer.append(
                    dns.rrset.from_text(question.name, 30, "IN", rdtype, *wanted)
                )
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        _close_listening(self.sock)


class LoopbackLab:
    """Every loopback fixture at once; `ports` names them for a matrix's ${...} variables."""

    def __init__(self) -> None:
        self.http = _Server((LOOPBACK, 0), _Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.http_port = int(self.http.server_address[1])
        # Bound and never listening: connects are refused, and no other program on this
        # machine can start listening there while the lab is up (a released port can be
        # taken by the next one to ask for any port).
        self._held = [_held_port(), _held_port()]
        self.closed_port = int(self._held[0].getsockname()[1])
        self.dead_proxy_port = int(self._held[1].getsockname()[1])
        self.hanging = _Acceptor(_hang)
        self.resetting = _Acceptor(_reset)
        self.closing = _Acceptor(_close)
        self.banner = _Acceptor(_banner)
        self.backlog = FullBacklog()
        self.dns = DnsServer({"api.demo.internal": LOOPBACK})

    def variables(self) -> dict[str, str]:
        return {
            "PE_DEMO_HTTP_PORT": str(self.http_port),
            "PE_DEMO_CLOSED_PORT": str(self.closed_port),
            "PE_DEMO_PROXY_PORT": str(self.dead_proxy_port),
            "PE_DEMO_HANG_PORT": str(self.hanging.port),
            "PE_DEMO_RESET_PORT": str(self.resetting.port),
            "PE_DEMO_CLOSING_PORT": str(self.closing.port),
            "PE_DEMO_BANNER_PORT": str(self.banner.port),
            "PE_DEMO_BACKLOG_PORT": str(self.backlog.port),
            "PE_DEMO_DNS": f"{LOOPBACK}:{self.dns.port}",
        }

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.hanging.close()
        for sock in self._held:
            sock.close()
        self.resetting.close()
        self.closing.close()
        self.banner.close()
        self.backlog.close()
        self.dns.close()

    def __enter__(self) -> LoopbackLab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
