"""The dns check: the system resolver (getaddrinfo, as the user's code sees it) or a nameserver.

Blocking calls: the runner runs them on its worker threads. Standard library only and Python
3.8 compatible; dnspython is used for direct nameserver queries when it is importable, and a
small standard-library query (A/AAAA over UDP) where it is not, as inside a container.
"""

from __future__ import annotations

import functools
import socket
import struct
import time
from typing import Callable, List, NamedTuple, Sequence, Tuple

from .address import ip_literal
from .classify import GAI_REASON, errno_name
from .records import Check

FAMILIES = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


def family_name(family: int) -> str:
    return "ipv6" if family == socket.AF_INET6 else "ipv4"


@functools.lru_cache(maxsize=4096)  # called per cell: thousands of cells share a few hosts
def literal_family(host: str) -> int | None:
    """AF_INET/AF_INET6 when host is an address literal (no lookup needed), else None."""
    address = ip_literal(host)
    if address is None:
        return None
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def system_lookup(host: str, family: str = "any") -> Check:
    """getaddrinfo with every address of the wanted families, in the order it returns them."""
    started = time.monotonic()
    record: Check = {"name": "dns", "host": host, "resolver": "system"}
    try:
        infos = socket.getaddrinfo(host, None, FAMILIES[family], socket.SOCK_STREAM)
    except socket.gaierror as exc:
        name = errno_name(exc.errno)
        record.update(
            {
                "status": "dns-error",
                "errno": exc.errno,
                "errno_name": name,
                "message": exc.strerror or str(exc),
                "reason": GAI_REASON.get(name or "", "error"),
            }
        )
    except UnicodeError as exc:
        record.update(
            {"status": "dns-error", "message": f"invalid name: {exc}", "reason": "invalid"}
        )
    else:
        pairs: list[tuple[int, str]] = []
        for info in infos:
            pair = (int(info[0]), str(info[4][0]))
            if pair not in pairs:
                pairs.append(pair)
        record.update({"status": "ok", "addresses": [a for _, a in pairs]})
    record["duration_ms"] = (time.monotonic() - started) * 1000.0
    return record


# --- direct queries to a nameserver -------------------------------------------------------

RCODE_NAMES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
RCODE_REASON = {"NXDOMAIN": "nxdomain", "SERVFAIL": "servfail", "REFUSED": "refused"}
QTYPES = {"ipv4": 1, "ipv6": 28}


def _candidates(name: str, search: Sequence[str], ndots: int) -> list[str]:
    """resolv.conf's algorithm: with fewer than ndots dots, the search list goes first."""
    if name.endswith(".") or not search:
        return [name.rstrip(".")]
    suffixed = ["{}.{}".format(name, domain.strip(".")) for domain in search]
    if name.count(".") >= ndots:
        return [name, *suffixed]
    return [*suffixed, name]


def _encode_query(qname: str, qtype: int) -> tuple[int, bytes]:
    import random  # here: only a nameserver query needs it, not every batch

    ident = random.randint(0, 0xFFFF)
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)  # recursion desired
    labels = b"".join(
        bytes([len(part)]) + part.encode("idna") for part in qname.strip(".").split(".") if part
    )
    return ident, header + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:  # compression pointer ends the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def _decode_answer(data: bytes, ident: int) -> tuple[int, list[str]]:
    got, flags, qdcount, ancount = struct.unpack("!HHHH", data[:8])
    if got != ident:
        raise ValueError("answer id mismatch")
    offset = 12
    for _ in range(qdcount):
        offset = _skip_name(data, offset) + 4
    addresses = []
    for _ in range(ancount):
        offset = _skip_name(data, offset)
        rtype, _cls, _ttl, length = struct.unpack("!HHIH", data[offset : offset + 10])
        offset += 10
        rdata = data[offset : offset + length]
        offset += length
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == 28 and length == 16:
            addresses.append(socket.inet_ntop(socket.AF_INET6, rdata))
    return flags & 0x000F, addresses


def _stdlib_query(
    qname: str, qtype: int, server: tuple[str, int], timeout: float
) -> tuple[str, list[str]]:
    """(rcode name or "NOERROR"/"TIMEOUT", addresses) for one question over UDP."""
    ident, packet = _encode_query(qname, qtype)
    family = literal_family(server[0]) or socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(max(timeout, 0.001))
        try:
            sock.sendto(packet, server)
            while True:
                data, _peer = sock.recvfrom(4096)
                try:
                    rcode, addresses = _decode_answer(data, ident)
                except ValueError:
                    continue
                return RCODE_NAMES.get(
                    rcode, "NOERROR" if rcode == 0 else f"RCODE{rcode}"
                ), addresses
        except TimeoutError:
            return "TIMEOUT", []


def _dnspython_query(
    qname: str, qtype: int, server: tuple[str, int], timeout: float
) -> tuple[str, list[str]]:
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    query = dns.message.make_query(qname, dns.rdatatype.RdataType.make(qtype))
    try:
        answer = dns.query.udp(query, server[0], port=server[1], timeout=timeout)
    except dns.exception.Timeout:
        return "TIMEOUT", []
    rcode = answer.rcode()
    addresses = [
        item.to_text() for rrset in answer.answer if rrset.rdtype == qtype for item in rrset
    ]
    return ("NOERROR" if rcode == 0 else dns.rcode.to_text(rcode)), addresses


# One question to a nameserver: (qname, qtype, server, timeout) -> (rcode, addresses).
Query = Callable[[str, int, Tuple[str, int], float], Tuple[str, List[str]]]


def _query_function() -> tuple[Query, str]:
    try:
        import dns.query  # noqa: F401
    except ImportError:
        return _stdlib_query, "stdlib"
    return _dnspython_query, "dnspython"


class Question(NamedTuple):
    """What one lookup asks: a name and the families wanted; for a nameserver asked directly,
    the server (host:port), the search list and ndots, as resolv.conf would give them."""

    host: str
    family: str = "any"
    nameserver: str | None = None
    search: tuple[str, ...] = ()
    ndots: int = 1


def nameserver_lookup(question: Question, timeout: float = 2.0) -> Check:
    """Ask `question.nameserver` directly, applying the search list as resolv.conf would."""
    host, family, search, ndots = question.host, question.family, question.search, question.ndots
    nameserver = question.nameserver or ""
    started = time.monotonic()
    deadline = started + timeout
    server_host, _, server_port = nameserver.rpartition(":")
    server = (server_host.strip("[]") or nameserver, int(server_port or 53))
    query, library = _query_function()
    record: Check = {
        "name": "dns",
        "host": host,
        "resolver": f"{server[0]}:{server[1]}",
        "client": library,
    }
    families = ["ipv4", "ipv6"] if family == "any" else [family]
    outcome = "NXDOMAIN"
    found: list[str] = []
    tried: list[str] = []
    for candidate in _candidates(host, search, ndots):
        tried.append(candidate)
        rcodes = []
        for fam in families:
            rcode, addresses = query(
                candidate, QTYPES[fam], server, max(deadline - time.monotonic(), 0.001)
            )
            rcodes.append(rcode)
            found.extend(a for a in addresses if a not in found)
        if found:
            record["qname"] = candidate
            outcome = "NOERROR"
            break
        # NXDOMAIN on every family: try the next candidate; anything else is the answer.
        outcome = next((r for r in rcodes if r != "NXDOMAIN"), "NXDOMAIN")
        if outcome == "NOERROR":
            outcome = "NODATA"
        if outcome not in ("NXDOMAIN", "NODATA"):
            break
    record["tried"] = tried
    if found:
        record.update({"status": "ok", "addresses": found})
    else:
        reason = {"TIMEOUT": "no-answer", "NODATA": "no-address"}.get(outcome) or RCODE_REASON.get(
            outcome, "error"
        )
        record.update(
            {
                "status": "dns-error",
                "errno_name": outcome,
                "reason": reason,
                "message": f"{outcome} from {server[0]}:{server[1]} for {', '.join(tried)}",
            }
        )
    record["duration_ms"] = (time.monotonic() - started) * 1000.0
    return record


def expect_addresses(record: Check, expected: Sequence[str] | None) -> None:
    """A dns cell that names the addresses it expects: an answer lacking one is a dns-error."""
    if record.get("status") != "ok" or not expected:
        return
    found = record.get("addresses") or []
    missing = [a for a in expected if a not in found]
    if missing:
        record.update(
            {
                "status": "dns-error",
                "reason": "unexpected-address",
                "message": "resolved {}; expected {}".format(
                    ", ".join(found) or "nothing", ", ".join(expected)
                ),
            }
        )
