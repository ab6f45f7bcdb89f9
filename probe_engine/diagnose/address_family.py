"""Rule "address-family": a name resolves to ::1 (or any IPv6 address) and an IPv4 one, and on
the same port the IPv6 address fails while the IPv4 one connects: the service listens on IPv4
only, and clients that use the first address only (`socket.connect((name, port))`, Node.js
17+) are refused. Seen within one cell (its dns record and per-address tcp records), or
across one row's cells (a dns column's answer, and tcp columns on those addresses)."""

from __future__ import annotations

from collections.abc import Iterable

from ..agent.address import is_loopback
from ..results import CellResult, CheckRecord, Finding, MatrixResult
from .cells import Hop, by_source, evidence, hops
from .phrasing import failure_words, listing
from .severity import severity

FIRST_ONLY = "socket.connect((name, port)), Node.js 17+ and some JDBC drivers"


def _answers(cells: Iterable[CellResult]) -> list[tuple[CellResult, CheckRecord]]:
    """Successful lookups (not of a proxy) with the cell that made them."""
    return [
        (cell, record)
        for cell in cells
        for record in cell.checks
        if record.name == "dns" and record.status == "ok" and record.addresses
        if record.role != "proxy"
    ]


def address_family(result: MatrixResult) -> list[Finding]:
    findings = []
    for row, cells in by_source(result).items():
        answers = _answers(cells)
        tried: dict[int | None, list[tuple[CellResult, Hop]]] = {}
        for cell in cells:
            for hop in hops(cell):
                if hop.family in ("ipv4", "ipv6"):
                    tried.setdefault(hop.port, []).append((cell, hop))
        for port, entries in tried.items():
            for bad_family, good_family in (("ipv6", "ipv4"), ("ipv4", "ipv6")):
                bad = [(c, h) for c, h in entries if h.family == bad_family and h.status != "ok"]
                good = [(c, h) for c, h in entries if h.family == good_family and h.status == "ok"]
                if not bad or not good:
                    continue
                finding = _family_finding(row, port, bad, good, answers)
                if finding is not None:
                    findings.append(finding)
    return findings


def _family_finding(
    row: str,
    port: int | None,
    bad: list[tuple[CellResult, Hop]],
    good: list[tuple[CellResult, Hop]],
    answers: list[tuple[CellResult, CheckRecord]],
) -> Finding | None:
    """`bad` hops of one family fail where `good` ones of the other connect on one port."""
    bad_family, good_family = bad[0][1].family, good[0][1].family
    bad_addresses = {h.address for _, h in bad}
    good_addresses = {h.address for _, h in good}
    link = next(
        (
            (cell, record)
            for cell, record in answers
            if bad_addresses & set(record.addresses or [])
            and good_addresses & set(record.addresses or [])
        ),
        None,
    )
    loopback = all(is_loopback(a) for a in bad_addresses | good_addresses)
    if link is None and not loopback:
        return None  # unrelated addresses: two hosts, not two families of one
    b_cell, b_hop = bad[0]
    g_cell, g_hop = good[0]
    only = "IPv4" if good_family == "ipv4" else "IPv6"
    failed = failure_words(b_cell) if b_cell.status != "ok" else b_hop.status
    if b_hop.errno_name:
        failed = f"{b_hop.status} ({b_hop.errno_name})"
    cited = [b_cell, g_cell]
    if link is not None:
        d_cell, record = link
        cited.append(d_cell)
        name = record.host or d_cell.target
        addresses = record.addresses or []
        first = next((a for a in addresses if a in bad_addresses | good_addresses), None)
        bad_first = first in bad_addresses
        title = (
            f"{name} resolves to {b_hop.address} first but only {only} listens on port {port}"
            if bad_first
            else f"{name} resolves to {b_hop.address} and {g_hop.address}, and only {only} "
            f"listens on port {port}"
        )
        resolved = f"{name} resolves to {listing(addresses)} (from {record.resolver or 'dns'})"
        if not bad_first and bad_family == "ipv6":
            resolved += "; most resolvers put the IPv6 address first (RFC 6724)"
        target = name
    else:
        title = f"Port {port} listens on {only} only: {b_hop.address} fails, {g_hop.address} works"
        resolved = (
            f"{b_hop.address} and {g_hop.address} are both the loopback; `localhost` resolves to "
            "both on most systems, ::1 first"
        )
        target = "localhost"
    detail = (
        f"From {row}: {resolved}. On port {port}, {b_hop.address} is {failed} "
        f"({b_cell.target}) while {g_hop.address} connects ({g_cell.target}). Clients that use "
        f"only the first address ({FIRST_ONLY}) fail; curl, requests and httpx fall back to "
        "the next address after a failed attempt."
    )
    return Finding(
        rule="address-family",
        severity=severity([c for c, _ in bad], contradiction=True),
        title=title,
        detail=detail,
        evidence=evidence(cited),
        next_step=(
            f"Make the service listen on both families (bind '::' with IPV6_V6ONLY off, e.g. "
            f"uvicorn --host ::), or connect to {g_hop.address} instead of {target}."
        ),
        facts={
            "source": row,
            "port": port,
            "failing": sorted(bad_addresses),
            "working": sorted(good_addresses),
            "name": target,
        },
    )
