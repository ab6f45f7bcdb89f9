"""The icmp check: echo requests and their replies, as ping sends them, from any kind of place.

The agent pings by itself, in the first way the place allows: an unprivileged ICMP datagram
socket (when net.ipv4.ping_group_range holds the process's group), a raw socket (root or
CAP_NET_RAW), else the place's own `ping` binary (ping_output.py reads it). Where none works,
the check is a source-error naming all three reasons. A reply is ok (rtt min/avg/max, loss);
an ICMP error is its status with the type and code named (host, net, port unreachable,
admin-prohibited: a firewall's REJECT); silence is a timeout. IPv4 and IPv6 (ICMPv6 echo).

Errors reach a datagram socket through its error queue (IP_RECVERR: the ICMP type, code and
sender); a raw socket sees every ICMP packet of the namespace and keeps those that quote our
echo (its identifier). Blocking, with its own deadline: the runner runs it on a worker thread.
Standard library only and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import struct
import time
from typing import Any, Sequence

from .bind import Bind, BindError, bind_socket, describe
from .classify import errno_name, status_for_errno
from .dns import family_name
from .ping_output import apply_icmp_error, finish_replies, parse
from .plans import Plan
from .records import Check

ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
ERROR_TYPES: dict[int, tuple[int, ...]] = {socket.AF_INET: (3, 11), socket.AF_INET6: (1, 2, 3)}
PROTOCOL: dict[int, int] = {
    socket.AF_INET: socket.IPPROTO_ICMP,
    socket.AF_INET6: socket.IPPROTO_ICMPV6,
}
# Linux's values (Python does not export them everywhere).
SOL_IP, IP_RECVERR = 0, 11
SOL_IPV6, IPV6_RECVERR = 41, 25
MSG_ERRQUEUE = 0x2000
SO_EE_ORIGIN_LOCAL, SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6 = 1, 2, 3
SOL_RAW, ICMP_FILTER = 255, 1
PAYLOAD = b"probe-engine echo".ljust(56, b".")  # ping's 56 data bytes
RANGE_FILE = "/proc/sys/net/ipv4/ping_group_range"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_packet(family: int, ident: int, seq: int) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST[family], 0, 0, ident, seq)
    if family == socket.AF_INET6:
        return header + PAYLOAD  # the kernel computes the ICMPv6 checksum
    return struct.pack("!BBHHH", 8, 0, checksum(header + PAYLOAD), ident, seq) + PAYLOAD


class NoSocket(Exception):
    """Neither kind of ICMP socket can be opened here; the reasons, for the message."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def _group_range() -> str:
    try:
        with open(RANGE_FILE) as handle:
            return " ".join(handle.read().split())
    except OSError:
        return "?"


def _why_not_datagram(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        groups = _group_range()
        return f"ping_group_range ({groups}) excludes gid {os.getgid()}"
    return f"no ICMP datagram socket ({exc.strerror or exc})"


def _why_not_raw(exc: OSError) -> str:
    if exc.errno in (errno.EPERM, errno.EACCES):
        return "not root (no CAP_NET_RAW for a raw socket)"
    return f"no raw socket ({exc.strerror or exc})"


def open_socket(family: int) -> tuple[socket.socket, str]:
    """An ICMP socket and its kind ('datagram socket' or 'raw socket'); NoSocket otherwise."""
    reasons = []
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM, PROTOCOL[family])
    except OSError as exc:
        reasons.append(_why_not_datagram(exc))
    else:
        level, option = (
            (SOL_IPV6, IPV6_RECVERR)
            if family == socket.AF_INET6
            else (
                SOL_IP,
                IP_RECVERR,
            )
        )
        sock.setsockopt(level, option, 1)
        return sock, "datagram socket"
    try:
        sock = socket.socket(family, socket.SOCK_RAW, PROTOCOL[family])
    except OSError as exc:
        reasons.append(_why_not_raw(exc))
    else:
        if family == socket.AF_INET:
            # Only echo replies and errors reach this socket, not every ICMP packet.
            wanted = (1 << 0) | (1 << 3) | (1 << 11)
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", ~wanted & 0xFFFFFFFF))
        return sock, "raw socket"
    raise NoSocket(reasons)


def source_for(family: int, address: str, bind: Bind) -> str | None:
    """The source address the kernel would choose (a UDP connect sends nothing)."""
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        bind_socket(probe, family, bind)
        probe.connect((address, 9))
        return str(probe.getsockname()[0])
    except (OSError, BindError):
        return None
    finally:
        probe.close()


class Echoes:
    """The echoes to one address on one socket: sent, answered, refused."""

    def __init__(self, family: int, address: str, sock: socket.socket, method: str) -> None:
        self.family = family
        self.address = address
        self.sock = sock
        self.method = method
        self.raw = method == "raw socket"
        import random  # here: a batch without ping cells does not pay for the import

        self.ident = random.randint(1, 0xFFFF)
        self.sent: dict[int, float] = {}
        self.rtts: dict[int, float] = {}
        self.errors: dict[int, tuple[int, int, str | None]] = {}
        self.send_error: OSError | None = None
        self.local_error: int | None = None

    def settled(self) -> bool:
        return self.send_error is not None or all(
            seq in self.rtts or seq in self.errors for seq in self.sent
        )

    def send(self, seq: int) -> None:
        if self.send_error is not None:
            return
        target = (self.address, 0, 0, 0) if self.family == socket.AF_INET6 else (self.address, 0)
        try:
            self.sock.sendto(echo_packet(self.family, self.ident, seq), target)
        except OSError as exc:
            self.send_error = exc
            return
        self.sent[seq] = time.monotonic()

    def receive(self) -> None:
        """Read what is waiting: replies, and (datagram sockets) the error queue."""
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                if not self._read_errors():
                    break
                continue
            self._packet(data, str(peer[0]))
        if not self.raw:
            self._read_errors()

    def _packet(self, data: bytes, peer: str) -> None:
        if self.raw and self.family == socket.AF_INET:
            data = data[(data[0] & 0x0F) * 4 :] if data else data
        if len(data) < 8:
            return
        kind, _code, _sum, ident, seq = struct.unpack("!BBHHH", data[:8])
        if kind == ECHO_REPLY[self.family]:
            if (self.raw and ident != self.ident) or peer.split("%", maxsplit=1)[0] != self.address:
                return
            if seq in self.sent and seq not in self.rtts:
                self.rtts[seq] = (time.monotonic() - self.sent[seq]) * 1000.0
            return
        if self.raw and kind in ERROR_TYPES[self.family]:
            quoted = self._quoted_echo(data[8:])
            if quoted is not None and quoted[0] == self.ident and quoted[1] in self.sent:
                self.errors.setdefault(quoted[1], (kind, _code, peer))

    def _quoted_echo(self, inner: bytes) -> tuple[int, int] | None:
        """(identifier, sequence) of our echo quoted in an ICMP error, if it is ours."""
        if self.family == socket.AF_INET:
            if len(inner) < 20 or inner[9] != socket.IPPROTO_ICMP:
                return None
            if socket.inet_ntop(socket.AF_INET, inner[16:20]) != self.address:
                return None
            echo = inner[(inner[0] & 0x0F) * 4 :]
        else:
            if len(inner) < 48 or inner[6] != socket.IPPROTO_ICMPV6:
                return None
            if socket.inet_ntop(socket.AF_INET6, inner[24:40]) != self.address:
                return None
            echo = inner[40:]
        if len(echo) < 8 or echo[0] != ECHO_REQUEST[self.family]:
            return None
        _kind, _code, _sum, ident, seq = struct.unpack("!BBHHH", echo[:8])
        return ident, seq

    def _read_errors(self) -> bool:
        """Drain the error queue: ICMP errors with their type, code and sender."""
        got = False
        while True:
            try:
                data, ancillary, _flags, _peer = self.sock.recvmsg(512, 512, MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError, OSError):
                return got
            got = True
            error = read_extended_error(ancillary)
            if error is None:
                continue
            seq = struct.unpack("!H", data[6:8])[0] if len(data) >= 8 else None
            origin, number, kind, code, sender = error
            if origin in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6):
                if seq in self.sent:
                    self.errors.setdefault(seq, (kind, code, sender))
            elif origin == SO_EE_ORIGIN_LOCAL:
                self.local_error = number

    def record(self, started: float, bind: Bind) -> Check:
        record: Check = {
            "name": "icmp",
            "address": self.address,
            "family": family_name(self.family),
            "method": self.method,
            "sent": len(self.sent),
            "received": len(self.rtts),
            "duration_ms": (time.monotonic() - started) * 1000.0,
        }
        if bind:
            record["bind"] = describe(bind)
        source = source_for(self.family, self.address, bind)
        if source:
            record["source_address"] = source
        if self.rtts:
            finish_replies(record, [self.rtts[seq] for seq in sorted(self.rtts)])
            record["peer"] = self.address
        elif self.errors:
            kind, code, origin = self.errors[min(self.errors)]
            version = 6 if self.family == socket.AF_INET6 else 4
            apply_icmp_error(record, version, kind, code, origin)
        elif self.send_error is not None or (self.local_error and not self.sent):
            number = (
                self.send_error.errno if self.send_error is not None else self.local_error
            ) or errno.EHOSTUNREACH
            record.update(
                {
                    "status": status_for_errno(number),
                    "errno": number,
                    "errno_name": errno_name(number),
                    "message": f"{os.strerror(number)} (nothing was sent)",
                }
            )
        else:
            sent = len(self.sent)
            record.update(
                {
                    "status": "timeout",
                    "loss_percent": 100.0 if sent else None,
                    "message": "no echo reply to {} request{} (100% loss)".format(
                        sent, "" if sent == 1 else "s"
                    ),
                }
            )
        return record


def read_extended_error(ancillary: Sequence[tuple[int, int, bytes]]) -> tuple[Any, ...] | None:
    """(origin, errno, type, code, sender) from IP_RECVERR / IPV6_RECVERR ancillary data."""
    for level, kind, data in ancillary:
        if (level, kind) not in ((SOL_IP, IP_RECVERR), (SOL_IPV6, IPV6_RECVERR)):
            continue
        if len(data) < 16:
            continue
        number, origin, icmp_type, icmp_code, _pad, _info, _data = struct.unpack(
            "=IBBBBII", data[:16]
        )
        sender = None
        offender = data[16:]
        if len(offender) >= 8:
            family = struct.unpack("=H", offender[:2])[0]
            if family == socket.AF_INET:
                sender = socket.inet_ntop(socket.AF_INET, offender[4:8])
            elif family == socket.AF_INET6 and len(offender) >= 24:
                sender = socket.inet_ntop(socket.AF_INET6, offender[8:24])
        return origin, number, icmp_type, icmp_code, sender
    return None


def ping_binary() -> str | None:
    """The place's own ping, if it has one."""
    import shutil  # here, as subprocess below: a batch without ping cells does not import them

    return shutil.which("ping") or shutil.which("ping6")


_TOOLS: dict[str, str] = {}


def tool_name(path: str) -> str:
    """'busybox ping', 'ping (iputils 20221126)', 'ping (GNU inetutils 2.4)' or 'ping'."""
    if "busybox" in os.path.realpath(path):
        return "busybox ping"
    if path not in _TOOLS:
        import subprocess

        name = "ping"
        try:
            proc = subprocess.run(
                [path, "-V"],
                check=False,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=2,
            )
            first = proc.stdout.decode("utf-8", "replace").strip().splitlines()[:1]
        except (OSError, subprocess.TimeoutExpired):
            first = []
        if first and "iputils" in first[0]:
            name = f"ping (iputils {first[0].split()[-1]})"
        elif first and "inetutils" in first[0]:
            name = "ping ({})".format(first[0].replace("ping", "").strip(" ()"))
        _TOOLS[path] = name
    return _TOOLS[path]


class Ask:
    """What every address of a check is asked: `count` echoes `interval` seconds apart,
    answered before `deadline` (monotonic), from the chosen source `bind`."""

    __slots__ = ("bind", "count", "deadline", "interval")

    def __init__(self, count: int, interval: float, deadline: float, bind: Bind) -> None:
        self.count = count
        self.interval = interval
        self.deadline = deadline
        self.bind = bind

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.2)


def binary_argv(path: str, tool: str, family: int, address: str, ask: Ask) -> list[str]:
    """How to ask this ping for the echoes, answered within the time left.
    iputils ends at its first ICMP error when given a deadline (-w), so it gets a wait per
    reply (-W); busybox's -W only counts after the last echo, so it gets the deadline."""
    wait, interval = ask.remaining(), max(ask.interval, 0.2)
    argv = [path, "-6" if family == socket.AF_INET6 else "-4", "-c", str(ask.count)]
    argv += ["-i", f"{interval:g}"]
    if tool == "busybox ping":
        argv += ["-w", str(max(1, int(wait)))]
    else:
        argv += ["-n", "-W", str(max(1, int(wait - (ask.count - 1) * interval)))]
    if ask.bind:
        argv += ["-I", str(ask.bind.get("interface") or ask.bind.get("address"))]
    return [*argv, address]


def run_binary(path: str, family: int, address: str, ask: Ask, reasons: Sequence[str]) -> Check:
    """One address pinged by the place's own ping, read by ping_output."""
    import subprocess

    started = time.monotonic()
    tool = tool_name(path)
    argv = binary_argv(path, tool, family, address, ask)
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=max(ask.remaining() - 0.05, 0.1),
            env=dict(os.environ, LC_ALL="C"),
            check=False,
        )
        output, code = proc.stdout.decode("utf-8", "replace"), proc.returncode
    except subprocess.TimeoutExpired as exc:
        # Our deadline: what it printed so far still counts (replies, errors).
        output = (exc.output or b"").decode("utf-8", "replace")
        code = 124
    except OSError as exc:
        output, code = f"cannot run {path}: {exc}", 126
    told: Check = {
        "name": "icmp",
        "address": address,
        "family": family_name(family),
        "method": tool,
    }
    record = parse(output, code, told, ask.count)
    record["reasons"] = list(reasons)  # why the agent could not ping by itself here
    record["duration_ms"] = (time.monotonic() - started) * 1000.0
    if ask.bind:
        record["bind"] = describe(ask.bind)
    return record


def no_way(family: int, address: str, reasons: Sequence[str]) -> Check:
    return {
        "name": "icmp",
        "status": "source-error",
        "address": address,
        "family": family_name(family),
        "sent": 0,
        "message": "no way to ping here: {}, no ping binary".format(", ".join(reasons)),
        "duration_ms": 0.0,
    }


def echo_check(
    addresses: Sequence[tuple[int, str]], plan: Plan, timeout: float = 2.0
) -> list[Check]:
    """Ping every address (the plan's `count` echoes, `interval` seconds apart, from its chosen
    source) until each is answered or the time is up; one record per address, in order."""
    started = time.monotonic()
    deadline = started + timeout
    count, interval = int(plan.get("count", 3)), float(plan.get("interval", 0.2))
    bind = plan.get("bind")
    ask = Ask(count, interval, deadline, bind)
    records: dict[int, Check] = {}
    pending: dict[int, Echoes] = {}
    selector = selectors.DefaultSelector()
    try:
        for index, (family, address) in enumerate(addresses):
            try:
                sock, method = open_socket(family)
            except NoSocket as exc:
                path = ping_binary()
                if path is None:
                    records[index] = no_way(family, address, exc.reasons)
                else:
                    records[index] = run_binary(path, family, address, ask, exc.reasons)
                continue
            sock.setblocking(False)
            try:
                bind_socket(sock, family, bind)
            except BindError as exc:
                sock.close()
                records[index] = exc.record("icmp", address, family_name(family), None)
                records[index]["bind"] = describe(bind)
                continue
            echoes = Echoes(family, address, sock, method)
            pending[index] = echoes
            selector.register(sock, selectors.EVENT_READ, echoes)
        _exchange(selector, list(pending.values()), count, interval, deadline)
        for index, echoes in pending.items():
            records[index] = echoes.record(started, bind)
    finally:
        for echoes in pending.values():
            echoes.sock.close()
        selector.close()
    return [records[index] for index in range(len(addresses))]


def _exchange(
    selector: selectors.BaseSelector,
    targets: Sequence[Echoes],
    count: int,
    interval: float,
    deadline: float,
) -> None:
    if not targets:
        return
    seq = 0
    next_send = time.monotonic()
    while True:
        now = time.monotonic()
        if seq < count and now >= next_send:
            seq += 1
            for echoes in targets:
                echoes.send(seq)
            next_send += interval
        if seq >= count and all(t.settled() for t in targets):
            return
        if now >= deadline:
            return
        until = deadline if seq >= count else min(deadline, next_send)
        for key, _events in selector.select(max(0.0, until - time.monotonic())):
            key.data.receive()
