"""The scan lane: tcp cells that connect to address literals, started (and, when the kernel
answers at once, finished) with a few lines of work per cell instead of the runner's phases.

A port scan is thousands of such cells, most answered inside connect() (a closed port on
loopback or a local bridge is refused before connect() returns; an open one is connected).
Those need no Cell, no timer and no selector: their outcome is built here, from per-errno
facts computed once per batch. A connect still in progress is handed back to the runner,
which carries it on as an ordinary cell (selector, deadline, cut-short), so the records are
exactly those of the runner's own path (tcp.Connector); only the time spent differs.

Standard library only and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from _socket import socket as RawSocket
from typing import Dict, Optional, Tuple

from .classify import errno_name, status_for_errno
from .dns import family_name, literal_family
from .plans import CellOrder, Plan
from .records import CellOutcome, Check, RunStats
from .tcp import IN_PROGRESS, NONBLOCK, SELF_CONNECT

Target = Tuple[int, str]  # (family, address) as connect() takes it
# What a failed connect says, by errno: status, errno_name, strerror (the same for every cell).
ErrnoFacts = Tuple[str, Optional[str], str]

# Lane sockets are the C type under socket.socket: the module's class adds half a microsecond
# of Python at each creation and close (for makefile(), which the lane never calls), a sixth
# of a closed port's whole cost. The few the runner carries on are wrapped (_wrapped).
_STREAM = socket.SOCK_STREAM | NONBLOCK
# Module constants, not socket's attributes: two lookups fewer each, per connect.
_AF_INET6, _SOL_SOCKET, _SO_ERROR = socket.AF_INET6, socket.SOL_SOCKET, socket.SO_ERROR
_FAMILY_NAMES: dict[int, str] = {
    family: family_name(family) for family in (socket.AF_INET, socket.AF_INET6)
}
# A literal host of the batch: its family and address, and the record of each errno its
# connects got so far (the next cells' with that errno are copies, with their port and time).
Host = Tuple[int, str, Dict[int, Check]]
_NOT_LITERAL: Host = (0, "", {})  # a host the lane does not take (a name to look up)


def lane_targets(plan: Plan) -> list[Target] | None:
    """Where a cell of the lane connects, in order; None for a cell the lane does not take (not
    tcp, a chosen source, a name to look up)."""
    if plan["kind"] != "tcp" or plan.get("bind"):
        return None
    addresses = plan.get("addresses")
    if addresses:
        targets = []
        for address in addresses:
            family = literal_family(address)
            if family is None or address.startswith("["):
                return None  # the runner's path says what such an address does
            targets.append((family, address))
        return targets
    family = literal_family(plan["host"])
    if family is None:
        return None
    return [(family, plan["host"].strip("[]"))]


class Pending:
    """A lane cell with a connect still in progress: what it has so far, for the runner to
    carry on as an ordinary cell. Per address index, its record or its socket and start."""

    __slots__ = ("inflight", "port", "records", "spec", "started", "started_at", "targets")

    def __init__(
        self, spec: CellOrder, targets: list[Target], port: int, started: float, at: float
    ) -> None:
        self.spec = spec
        self.targets = targets
        self.port = port
        self.started = started
        self.started_at = at
        self.records: dict[int, Check] = {}
        self.inflight: dict[int, tuple[socket.socket, float]] = {}


class ScanLane:
    """Starts lane cells; keeps the per-errno facts and the literal hosts of one batch."""

    def __init__(self, stats: RunStats) -> None:
        self.stats = stats
        self.errno_facts: dict[int, ErrnoFacts] = {}
        self.hosts: dict[str, Host] = {}  # or _NOT_LITERAL
        self.cells = 0  # cells taken by the lane (answered here or handed back)

    def take(self, waiting: list[CellOrder], out: list[CellOutcome], room: int) -> Pending | None:
        """Start the lane's cells off the top of `waiting` (the runner's stack, next cell last)
        while the kernel answers them at once, their outcomes into `out`. Stop at a cell still
        connecting (returned, for the runner to carry on), at a cell the lane does not take,
        or when `room` outcomes are out. A port scan's inner loop: names are local, the one
        target of a plain cell is inline, a record is a copy of the first one its host got
        with that errno, its port and time its own (a dict copy is half the cost of a new
        one), and a start's wall time comes from its monotonic time (one clock read, not
        two)."""
        monotonic, hosts = time.monotonic, self.hosts
        wall = time.time() - monotonic()
        taken = 0
        try:
            while waiting and taken < room:
                spec = waiting[-1]
                plan = spec["plan"]
                if plan["kind"] != "tcp" or plan.get("addresses") or plan.get("bind"):
                    targets = lane_targets(plan)
                    if targets is None:
                        return None
                    waiting.pop()
                    taken += 1
                    outcome = self.start(spec, targets)
                    if isinstance(outcome, Pending):
                        return outcome
                    out.append(outcome)
                    continue
                host = plan["host"]
                entry = hosts.get(host)
                if entry is None:
                    found = lane_targets(plan)
                    entry = hosts[host] = (*found[0], {}) if found else _NOT_LITERAL
                if entry is _NOT_LITERAL:
                    return None
                waiting.pop()
                taken += 1
                family, address, seen = entry
                port = int(plan.get("port") or 0)
                started = monotonic()
                sock, number = _connect(family, address, port)
                if number is None:
                    pending = Pending(spec, [(family, address)], port, started, wall + started)
                    pending.inflight[0] = (_wrapped(sock, family), started)
                    return pending
                known = seen.get(number) if number else None
                if known is None:  # connected, or an errno not seen yet for this host
                    check = self.record(number, sock, (family, address), port, started)
                    if number:
                        seen[number] = check.copy()
                else:
                    if sock is not None:
                        sock.close()
                    check = known.copy()
                    check["port"] = port
                    check["duration_ms"] = (monotonic() - started) * 1000.0
                out.append(
                    {
                        "id": spec["id"],
                        "status": check["status"],
                        "started_at": wall + started,
                        "duration_ms": check["duration_ms"],
                        "checks": [check],
                    }
                )
            return None
        finally:
            self.cells += taken
            self.stats["connects"] += taken

    def start(self, spec: CellOrder, targets: list[Target]) -> CellOutcome | Pending:
        """Connect to every target of a cell with several (or one given as `addresses`): the
        cell's outcome when the kernel answered them all at once, else what it has so far.
        (take() counts one connect per cell; the others are counted here.)"""
        port = int(spec["plan"].get("port") or 0)
        started = time.monotonic()
        started_at = time.time()
        self.stats["connects"] += len(targets) - 1
        records: dict[int, Check] = {}
        inflight: dict[int, tuple[socket.socket, float]] = {}
        for index, (family, address) in enumerate(targets):
            begun = time.monotonic()
            sock, number = _connect(family, address, port)
            if number is None:
                inflight[index] = (_wrapped(sock, family), begun)
            else:
                records[index] = self.record(number, sock, (family, address), port, begun)
        if inflight:
            pending = Pending(spec, targets, port, started, started_at)
            pending.records, pending.inflight = records, inflight
            return pending
        checks = [records[i] for i in range(len(targets))]
        return {
            "id": spec["id"],
            "status": next((c["status"] for c in checks if c["status"] != "ok"), "ok"),
            "started_at": started_at,
            "duration_ms": (time.monotonic() - started) * 1000.0,
            "checks": checks,
        }

    def record(
        self,
        number: int,
        sock: RawSocket | None,
        target: Target,
        port: int,
        begun: float,
    ) -> Check:
        """The tcp record of a connect the kernel answered (0: connected), as tcp.Connector
        makes it; the socket, if any, is closed."""
        family, address = target
        if number:
            facts = self.errno_facts.get(number)
            if facts is None:
                facts = (status_for_errno(number), errno_name(number), os.strerror(number))
                self.errno_facts[number] = facts
            if sock is not None:
                sock.close()
            return {
                "name": "tcp",
                "status": facts[0],
                "errno": number,
                "errno_name": facts[1],
                "message": facts[2],
                "address": address,
                "family": _FAMILY_NAMES.get(family, "ipv4"),
                "port": port,
                "duration_ms": (time.monotonic() - begun) * 1000.0,
            }
        assert sock is not None  # a connect answered 0 had a socket
        try:
            local, peer = sock.getsockname(), sock.getpeername()
        except OSError:
            local = peer = None
        if local is not None and peer is not None and local[:2] == peer[:2]:
            # TCP simultaneous open (see tcp.SELF_CONNECT): the port is closed.
            sock.close()
            refused = self.record(errno.ECONNREFUSED, None, target, port, begun)
            refused["message"] = SELF_CONNECT
            refused["source_address"] = address
            return refused
        check: Check = {
            "name": "tcp",
            "status": "ok",
            "errno": None,
            "errno_name": None,
            "message": "connected",
            "address": address,
            "family": _FAMILY_NAMES.get(family, "ipv4"),
            "port": port,
            "duration_ms": (time.monotonic() - begun) * 1000.0,
        }
        if local is None:
            with contextlib.suppress(OSError):
                local = sock.getsockname()
        if local is not None:
            check["source_address"] = str(local[0])
        sock.close()
        return check


def _connect(family: int, address: str, port: int) -> tuple[RawSocket | None, int | None]:
    """A non-blocking connect: its socket (None if none could be made) and the errno the
    kernel answered at once (0: connected), or None while it is in progress."""
    try:
        sock = RawSocket(family, _STREAM)
    except OSError as exc:
        return None, exc.errno or errno.EINVAL
    if not NONBLOCK:
        sock.setblocking(False)
    target = (address, port, 0, 0) if family == _AF_INET6 else (address, port)
    try:
        number: int = sock.connect_ex(target)
    except OSError as exc:  # e.g. an address of the wrong family
        number = exc.errno or errno.EINVAL
    if number in IN_PROGRESS:
        number = sock.getsockopt(_SOL_SOCKET, _SO_ERROR)
        if number == 0:
            # Refused, it would say so already; connected, it has a peer (on loopback the
            # handshake is done inside connect()); else the answer is still on its way.
            try:
                sock.getpeername()
            except OSError:
                return sock, None
    return sock, number


def _wrapped(sock: RawSocket | None, family: int) -> socket.socket:
    """The socket module's own object for a connect the runner carries on."""
    assert sock is not None  # a connect in progress has its socket
    return socket.socket(family, _STREAM, 0, sock.detach())
