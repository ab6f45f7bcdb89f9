"""The statuses, and the one table from low-level failures (errno, getaddrinfo codes, curl exit
codes) to a status.

Standard library only and Python 3.8 compatible: this module is shipped inside the agent, and
the engine takes the status vocabulary from here (probe_engine.status re-exports it).
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import typing
from typing import Iterator, Literal

# The closed set of cell and check outcomes, in report order.
Status = Literal[
    "ok",
    "refused",
    "timeout",
    "unreachable",
    "dns-error",
    "reset",
    "http-error",
    "tls-error",
    "proxy-error",
    "source-error",
    "target-error",
    "cancelled",
]
STATUSES: tuple[Status, ...] = typing.get_args(Status)
# A network answer that says no: what a diagnosis explains. The rest are ok, or say that no
# probe ran (the source or the target could not be made to work, or the run was cut short).
FAILED: frozenset[Status] = frozenset(STATUSES) - {
    "ok",
    "source-error",
    "target-error",
    "cancelled",
}

# errno -> status. EAGAIN/EWOULDBLOCK is what a Python socket timeout leaves behind.
ERRNO_STATUS: dict[int, Status] = {
    errno.ECONNREFUSED: "refused",
    errno.ETIMEDOUT: "timeout",
    errno.EAGAIN: "timeout",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETUNREACH: "unreachable",
    errno.EHOSTDOWN: "unreachable",
    errno.ENETDOWN: "unreachable",
    errno.EADDRNOTAVAIL: "unreachable",
    # A local firewall rule (iptables OUTPUT -j REJECT/DROP) fails connect() with these.
    errno.EACCES: "unreachable",
    errno.EPERM: "unreachable",
    errno.ECONNRESET: "reset",
    errno.ECONNABORTED: "reset",
    errno.EPIPE: "reset",
    errno.EPROTO: "reset",
}

# getaddrinfo() error codes by name; looked up with getattr because not every platform has all.
GAI_NAMES = (
    "EAI_NONAME",
    "EAI_AGAIN",
    "EAI_FAIL",
    "EAI_NODATA",
    "EAI_ADDRFAMILY",
    "EAI_FAMILY",
    "EAI_SERVICE",
    "EAI_SYSTEM",
    "EAI_MEMORY",
)
GAI_CODE_NAME: dict[int, str] = {
    getattr(socket, name): name for name in GAI_NAMES if hasattr(socket, name)
}
# Linux glibc values for the two that Python does not always export.
GAI_CODE_NAME.setdefault(-5, "EAI_NODATA")
GAI_CODE_NAME.setdefault(-9, "EAI_ADDRFAMILY")

# What each getaddrinfo code means to a user, as the `reason` of a dns check.
GAI_REASON: dict[str, str] = {
    "EAI_NONAME": "nxdomain",
    "EAI_NODATA": "no-address",
    "EAI_ADDRFAMILY": "no-address-of-family",
    "EAI_AGAIN": "no-answer",
    "EAI_FAIL": "servfail",
}

# curl exit code -> status; 7 is refined from curl's message (refused, unreachable, timeout).
CURL_EXIT_STATUS: dict[int, Status] = {
    0: "ok",
    5: "proxy-error",  # could not resolve proxy
    6: "dns-error",  # could not resolve host
    7: "refused",  # could not connect (refined below)
    22: "http-error",  # HTTP status >= 400 with --fail
    28: "timeout",
    35: "tls-error",
    47: "http-error",  # too many redirects
    51: "tls-error",
    52: "reset",  # empty reply: the server closed the connection
    53: "tls-error",
    54: "tls-error",
    55: "reset",  # send failure
    56: "reset",  # receive failure
    58: "tls-error",
    59: "tls-error",
    60: "tls-error",
    64: "tls-error",
    66: "tls-error",
    77: "tls-error",
    80: "tls-error",
    82: "tls-error",
    83: "tls-error",
    90: "tls-error",
    91: "tls-error",
    97: "proxy-error",  # proxy handshake
}

# Exit codes that mean the tool was misused, not that the network answered: the probe never
# ran, so the cell is the source's failure, told in the tool's own words.
TOOL_MISUSE_EXIT_CODES: dict[str, frozenset[int]] = {
    # failed init, malformed URL, feature not built in, bad function argument, unknown option
    "curl": frozenset({2, 3, 4, 43, 48}),
    "wget": frozenset({2}),  # parse error: its command line or .wgetrc
}
CURL_EXIT_STATUS.update(dict.fromkeys(TOOL_MISUSE_EXIT_CODES["curl"], "source-error"))


# ICMP errors -> (name, status, words, the errno the kernel reports for it on a socket).
# Keyed by (IP version, type, code). A port unreachable answers a udp probe: the port is
# closed, as a refused tcp connect; every other error says the path or the host said no.
ICMP_ERRORS: dict[tuple[int, int, int], tuple[str, Status, str, int]] = {
    (4, 3, 0): ("net-unreachable", "unreachable", "network unreachable", errno.ENETUNREACH),
    (4, 3, 1): ("host-unreachable", "unreachable", "host unreachable", errno.EHOSTUNREACH),
    (4, 3, 2): (
        "protocol-unreachable",
        "unreachable",
        "protocol unreachable",
        errno.ENOPROTOOPT,
    ),
    (4, 3, 3): ("port-unreachable", "refused", "port unreachable", errno.ECONNREFUSED),
    (4, 3, 4): (
        "fragmentation-needed",
        "unreachable",
        "fragmentation needed (MTU)",
        errno.EMSGSIZE,
    ),
    (4, 3, 5): ("source-route-failed", "unreachable", "source route failed", errno.EOPNOTSUPP),
    (4, 3, 6): ("net-unknown", "unreachable", "destination network unknown", errno.ENETUNREACH),
    (4, 3, 7): ("host-unknown", "unreachable", "destination host unknown", errno.EHOSTDOWN),
    (4, 3, 9): (
        "net-prohibited",
        "unreachable",
        "network administratively prohibited",
        errno.ENETUNREACH,
    ),
    (4, 3, 10): (
        "host-prohibited",
        "unreachable",
        "host administratively prohibited",
        errno.EHOSTUNREACH,
    ),
    (4, 3, 13): (
        "admin-prohibited",
        "unreachable",
        "communication administratively prohibited (a firewall's REJECT)",
        errno.EHOSTUNREACH,
    ),
    (4, 11, 0): ("ttl-exceeded", "unreachable", "time to live exceeded in transit (a loop?)", 0),
    (6, 1, 0): ("net-unreachable", "unreachable", "no route to destination", errno.ENETUNREACH),
    (6, 1, 1): (
        "admin-prohibited",
        "unreachable",
        "communication administratively prohibited (a firewall's REJECT)",
        errno.EACCES,
    ),
    (6, 1, 2): ("beyond-scope", "unreachable", "beyond scope of source address", 0),
    (6, 1, 3): ("host-unreachable", "unreachable", "address unreachable", errno.EHOSTUNREACH),
    (6, 1, 4): ("port-unreachable", "refused", "port unreachable", errno.ECONNREFUSED),
    (6, 1, 5): ("source-policy-failed", "unreachable", "source address failed policy", 0),
    (6, 1, 6): ("reject-route", "unreachable", "reject route to destination", errno.EACCES),
    (6, 2, 0): ("packet-too-big", "unreachable", "packet too big (MTU)", errno.EMSGSIZE),
    (6, 3, 0): ("hop-limit-exceeded", "unreachable", "hop limit exceeded in transit", 0),
}


def icmp_error(version: int, kind: int, code: int) -> tuple[str, Status, str, int]:
    """(name, status, words, errno) of an ICMP error; unknown ones are named by number."""
    known = ICMP_ERRORS.get((version, kind, code))
    if known is not None:
        return known
    return (f"icmp{'v6' if version == 6 else ''}-{kind}-{code}", "unreachable", "ICMP error", 0)


def errno_name(number: int | None) -> str | None:
    """ECONNREFUSED for 111, EAI_NONAME for -2; None when unknown."""
    if number is None:
        return None
    if number < 0:
        return GAI_CODE_NAME.get(number)
    return errno.errorcode.get(number)


def status_for_errno(number: int | None, default: Status = "unreachable") -> Status:
    if number is None:
        return default
    if number in GAI_CODE_NAME:
        return "dns-error"
    return ERRNO_STATUS.get(number, default)


def _strerror_table() -> list[tuple[str, int]]:
    table = []
    for number in errno.errorcode:
        text = os.strerror(number)
        if text and not text.startswith("Unknown error"):
            table.append((text.lower(), number))
    # Longest first, so "Connection reset by peer" wins over shorter overlaps.
    table.sort(key=lambda item: -len(item[0]))
    return table


_STRERRORS = _strerror_table()
# "timed out: Operation now in progress" (nc -w): the tool gave up; the errno says nothing.
_NOT_FAILURES = (errno.EINPROGRESS, errno.EALREADY)
# Wordings of tools whose messages are not strerror() text.
_TOOL_PHRASES: list[tuple[str, int]] = [
    ("connection refused", errno.ECONNREFUSED),
    ("no route to host", errno.EHOSTUNREACH),
    ("host is unreachable", errno.EHOSTUNREACH),
    ("network is unreachable", errno.ENETUNREACH),
    ("connection timed out", errno.ETIMEDOUT),
    ("operation timed out", errno.ETIMEDOUT),
    ("connection reset", errno.ECONNRESET),
]


def errno_from_message(message: str) -> int | None:
    """Recover the errno from a tool's message (curl -v, bash /dev/tcp, nc, wget)."""
    text = message.lower()
    for phrase, number in _TOOL_PHRASES:
        if phrase in text:
            return number
    for phrase, number in _STRERRORS:
        if phrase in text and number not in _NOT_FAILURES:
            return number
    return None


def iter_causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its __cause__/__context__ chain and the members of exception groups.

    anyio and httpx wrap the OSError that carries the errno; walking is the only way to it.
    """
    seen = set()
    stack = [exc]
    while stack:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        members = getattr(current, "exceptions", None)
        if isinstance(members, (list, tuple)):
            stack.extend(m for m in members if isinstance(m, BaseException))
        if current.__cause__ is not None:
            stack.append(current.__cause__)
        if current.__context__ is not None and not current.__suppress_context__:
            stack.append(current.__context__)


def classify_exception(exc: BaseException) -> tuple[Status, int | None, str]:
    """(status, errno or getaddrinfo code, message) for a failure raised by a probe."""
    causes = list(iter_causes(exc))
    # The most specific fact wins: a resolver code, a TLS failure, an errno, then a bare timeout.
    for cause in causes:
        if isinstance(cause, socket.gaierror) and cause.errno is not None:
            return "dns-error", cause.errno, str(cause)
    # ssl is imported by whatever raised an SSLError: never here, for tcp-only agents.
    ssl = sys.modules.get("ssl")
    if ssl is not None:
        for cause in causes:
            if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLZeroReturnError):
                return "tls-error", None, str(cause)
    for cause in causes:
        if isinstance(cause, OSError) and cause.errno:
            return status_for_errno(cause.errno), cause.errno, cause.strerror or str(cause)
    for cause in causes:
        if isinstance(cause, socket.timeout):
            return "timeout", None, "timed out"
    # No errno anywhere: fall back on the words, as for a tool's message.
    message = str(exc) or type(exc).__name__
    number = errno_from_message(message)
    if number is not None:
        return status_for_errno(number), number, message
    lowered = message.lower()
    if "timed out" in lowered or "timeout" in lowered:
        return "timeout", None, message
    if "ssl" in lowered or "certificate" in lowered:
        return "tls-error", None, message
    if "disconnected" in lowered or "closed" in lowered:
        return "reset", None, message
    return "unreachable", None, message


def classify_curl(exit_code: int, message: str) -> tuple[Status, int | None]:
    """(status, errno) from curl's exit code and its error text (-sS or -v)."""
    status = CURL_EXIT_STATUS.get(exit_code, "unreachable")
    if exit_code == 28:
        return status, None  # curl's own timeout expired: not the kernel's ETIMEDOUT
    number = errno_from_message(message)
    if exit_code == 7 and number is not None:
        status = status_for_errno(number, default="refused")
    elif exit_code == 7 and "timed out" in message.lower():
        status = "timeout"
    return status, number
