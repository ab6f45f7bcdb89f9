"""The udp check: one datagram to host:port on a connected socket, and what came back.

A response is ok. ICMP port unreachable (the kernel's own for a closed port, or a firewall's
REJECT) is `refused`, as a closed tcp port; other ICMP errors are `unreachable` with their type
and code (read from the error queue, IP_RECVERR). Silence is a `timeout` worded as nmap's
open|filtered: nothing said the port is closed, nothing answered. Never `ok`: a UDP service
that does not answer cannot be told from a firewall that drops. The datagram is sent again at
half the time, once, if nothing came back (a lost datagram, or a rate-limited ICMP error).
Blocking, with its own deadline: the runner runs it on a worker thread. Standard library only
and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import time
from typing import Sequence

from .bind import Bind, BindError, bind_socket, describe
from .classify import errno_name, status_for_errno
from .dns import family_name
from .icmp import IP_RECVERR, IPV6_RECVERR, MSG_ERRQUEUE, SOL_IP, SOL_IPV6, read_extended_error
from .ping_output import apply_icmp_error
from .plans import Plan
from .records import Check

RESPONSE_LIMIT = 65535


class Datagram:
    """One address: its connected socket, what was sent, and the answer if any."""

    def __init__(
        self, family: int, address: str, port: int, selector: selectors.BaseSelector
    ) -> None:
        self.selector = selector
        self.family = family
        self.address = address
        self.port = port
        self.sock: socket.socket | None = None
        self.record: Check = {
            "name": "udp",
            "address": address,
            "family": family_name(family),
            "port": port,
            "sent": 0,
        }
        self.done = False
        self.started = time.monotonic()

    def open(self, bind: Bind) -> None:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        self.sock = sock
        sock.setblocking(False)
        level, option = (
            (SOL_IPV6, IPV6_RECVERR) if self.family == socket.AF_INET6 else (SOL_IP, IP_RECVERR)
        )
        sock.setsockopt(level, option, 1)
        bind_socket(sock, self.family, bind)
        target = (
            (self.address, self.port, 0, 0)
            if self.family == socket.AF_INET6
            else (self.address, self.port)
        )
        sock.connect(target)  # no packet: it picks the route and the source address
        self.record["source_address"] = str(sock.getsockname()[0])
        self.selector.register(sock, selectors.EVENT_READ, self)

    def send(self, payload: bytes) -> None:
        if self.done or self.sock is None:
            return
        try:
            self.sock.send(payload)
        except OSError as exc:
            if not self._read_errors():
                self.fail(exc.errno or errno.EIO, f"{exc.strerror or exc} (when sending)")
            return
        self.record["sent"] += 1
        self.record["sent_bytes"] = len(payload)

    def receive(self) -> None:
        if self.done or self.sock is None:
            return
        try:
            data, peer = self.sock.recvfrom(RESPONSE_LIMIT)
        except (BlockingIOError, InterruptedError):
            self._read_errors()
            return
        except OSError as exc:
            if not self._read_errors():
                self.fail(exc.errno or errno.EIO, exc.strerror or str(exc))
            return
        self.done = True
        self.record.update(
            {
                "status": "ok",
                "received_bytes": len(data),
                "peer": _hostport(str(peer[0]), int(peer[1])),
                "message": "answered with {} byte{} from {}".format(
                    len(data), "" if len(data) == 1 else "s", _hostport(str(peer[0]), int(peer[1]))
                ),
            }
        )
        self.close()

    def _read_errors(self) -> bool:
        """An ICMP error waiting in the socket's error queue ends the check with its words."""
        if self.sock is None:
            return False
        try:
            _data, ancillary, _flags, _peer = self.sock.recvmsg(512, 512, MSG_ERRQUEUE)
        except OSError:
            return False
        error = read_extended_error(ancillary)
        if error is None:
            return False
        origin, number, kind, code, sender = error
        self.done = True
        if origin in (2, 3):  # SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6
            version = 6 if self.family == socket.AF_INET6 else 4
            apply_icmp_error(self.record, version, kind, code, sender)
            self.record.pop("loss_percent", None)
            if self.record["status"] == "refused":
                said = self.record["message"]
                self.record["message"] = f"{said}: nothing listens on udp port {self.port}"
        else:
            self.fail(number or errno.EIO, os.strerror(number or errno.EIO))
        self.close()
        return True

    def fail(self, number: int, message: str) -> None:
        self.done = True
        self.record.update(
            {
                "status": status_for_errno(number),
                "errno": number,
                "errno_name": errno_name(number),
                "message": message,
            }
        )
        self.close()

    def silence(self, waited: float, expect_response: bool) -> None:
        """Nothing came back: open or filtered, never ok."""
        self.done = True
        sent = self.record.get("sent", 0)
        if expect_response:
            why = f"no response and no ICMP error within {waited:g}s"
        else:
            why = f"no response expected; no ICMP error within {waited:g}s said it is closed"
        self.record.update(
            {
                "status": "timeout",
                "errno": None,
                "errno_name": None,
                "message": "no answer: open or filtered ({}; {} datagram{} sent)".format(
                    why, sent, "" if sent == 1 else "s"
                ),
            }
        )
        self.close()

    def close(self) -> None:
        self.record.setdefault("duration_ms", (time.monotonic() - self.started) * 1000.0)
        if self.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.sock)
            self.sock.close()
            self.sock = None


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def udp_check(
    addresses: Sequence[tuple[int, str]], plan: Plan, timeout: float = 2.0
) -> list[Check]:
    """Send the plan's payload to every address at its port, from its chosen source (bind);
    one record per address, in order."""
    port = int(plan.get("port") or 0)
    payload = bytes.fromhex(plan.get("payload") or "")
    expect_response = bool(plan.get("expect_response", True))
    bind = plan.get("bind")
    started = time.monotonic()
    deadline = started + timeout
    selector = selectors.DefaultSelector()
    datagrams = [Datagram(family, address, port, selector) for family, address in addresses]
    try:
        for datagram in datagrams:
            try:
                datagram.open(bind)
            except BindError as exc:
                datagram.done = True
                datagram.close()
                family = datagram.record["family"]
                datagram.record = exc.record("udp", datagram.address, family, port)
                datagram.record["bind"] = describe(bind)
                continue
            except OSError as exc:  # connect: no route (ENETUNREACH) and the like
                datagram.fail(exc.errno or errno.EIO, exc.strerror or str(exc))
                continue
            if bind:
                datagram.record["bind"] = describe(bind)
            datagram.send(payload)
        resend_at = started + timeout / 2.0
        resent = False
        while any(not d.done for d in datagrams):
            now = time.monotonic()
            if now >= deadline:
                break
            if not resent and now >= resend_at:
                resent = True
                for datagram in datagrams:
                    datagram.send(payload)
                continue
            until = deadline if resent else resend_at
            for key, _events in selector.select(max(0.0, until - time.monotonic())):
                key.data.receive()
        for datagram in datagrams:
            if not datagram.done:
                datagram.silence(timeout, expect_response)
    finally:
        for datagram in datagrams:
            datagram.close()
        selector.close()
    return [d.record for d in datagrams]
