"""Name-resolution rules.

- "address-family": a name resolves to ::1 (or any IPv6 address) and an IPv4 one, and on the
  same port the IPv6 address fails while the IPv4 one connects: the service listens on IPv4
  only, and clients that use the first address only (`socket.connect((name, port))`, Node.js
  17+) are refused. Seen within one cell (its dns record and per-address tcp records), or
  across one row's cells (a dns column's answer, and tcp columns on those addresses).
- "search-list": a short name fails while a longer name starting with it resolves: the search
  list (or ndots) does not complete the short name.
- "dns-failure": what a failed lookup means: NXDOMAIN (the name does not exist), no answer
  (EAI_AGAIN: the resolver is unreachable), or no address of the asked family. A fallback:
  the broader rules usually explain these cells first.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..results import CellResult, CheckRecord, Finding, MatrixResult
from .common import (
    Hop,
    by_source,
    by_target,
    evidence,
    failure_words,
    first_failure,
    hops,
    is_loopback,
    listing,
    severity,
    source_info,
)
from .explain import DNS_REASONS, dns_meaning, dns_next_step

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
                finding = _family_finding(row, port, bad, good, answers, bad_family, good_family)
                if finding is not None:
                    findings.append(finding)
    return findings


def _family_finding(
    row: str,
    port: int | None,
    bad: list[tuple[CellResult, Hop]],
    good: list[tuple[CellResult, Hop]],
    answers: list[tuple[CellResult, CheckRecord]],
    bad_family: str,
    good_family: str,
) -> Finding | None:
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


def _lookups(cells: Iterable[CellResult]) -> list[tuple[CellResult, CheckRecord]]:
    return [
        (cell, record)
        for cell in cells
        for record in cell.checks
        if record.name == "dns" and record.host and record.role != "proxy"
    ]


def search_list(result: MatrixResult) -> list[Finding]:
    findings = []
    for row, cells in by_source(result).items():
        lookups = _lookups(cells)
        oks = [(c, r) for c, r in lookups if r.status == "ok"]
        for cell, record in lookups:
            if record.status == "ok" or record.reason not in ("nxdomain", "no-address"):
                continue
            short = (record.host or "").rstrip(".")
            full = next(
                (
                    (c, r)
                    for c, r in oks
                    if (r.host or "").rstrip(".").startswith(short + ".") and c is not cell
                ),
                None,
            )
            if full is None or (record.host or "").endswith("."):
                continue
            findings.append(_search_finding(result, row, cell, record, *full))
    return findings


def _search_finding(
    result: MatrixResult,
    row: str,
    cell: CellResult,
    record: CheckRecord,
    ok_cell: CellResult,
    ok_record: CheckRecord,
) -> Finding:
    short = (record.host or "").rstrip(".")
    fqdn = (ok_record.host or "").rstrip(".")
    suffix = fqdn[len(short) + 1 :]
    tried = getattr(record, "tried", None)
    search: list[str] | None = None
    ndots = None
    info = source_info(result, row)
    resolv = info.facts.get("resolv_conf") if info else None
    if record.resolver == "system" and isinstance(resolv, dict):
        search = [str(s) for s in resolv.get("search") or []]
        ndots = next(
            (
                o.split(":", 1)[1]
                for o in resolv.get("options") or []
                if str(o).startswith("ndots:")
            ),
            None,
        )
    elif isinstance(tried, list):
        search = [t[len(short) + 1 :] for t in tried if str(t).startswith(short + ".")]
    if search is None:
        about = "the search list the resolver used is unknown"
    elif not search:
        about = f"there is no search list, so {short} is asked as is"
    elif suffix in search:
        about = (
            f"{suffix} is in the search list ({' '.join(search)}), yet {short} failed: check "
            "ndots and that this resolver applies the list"
        )
    else:
        about = f"none of the search domains ({' '.join(search)}) is {suffix}"
    asked = f" (asked as {', '.join(str(t) for t in tried)})" if isinstance(tried, list) else ""
    dots = f"; ndots:{ndots}" if ndots else ""
    detail = (
        f"From {row}: {short} {DNS_REASONS.get(record.reason or '', 'fails')} "
        f"({record.errno_name or record.reason}){asked}, while {fqdn} resolves to "
        f"{listing(ok_record.addresses or [])}. A short name only works when the resolver "
        f"appends the right domain from its search list: {about}{dots}."
    )
    return Finding(
        rule="search-list",
        severity=severity([cell], contradiction=True),
        title=f"{short} fails while {fqdn} resolves: the search list does not complete it",
        detail=detail,
        evidence=evidence([cell, ok_cell]),
        next_step=(
            f"Use the full name {fqdn}, or add {suffix} to the search list (resolv.conf `search`;"
            " in Kubernetes a pod's namespace decides it)."
        ),
        facts={
            "source": row,
            "short": short,
            "fqdn": fqdn,
            "search": search,
            "tried": tried,
            "ndots": ndots,
        },
    )


def dns_failure(result: MatrixResult) -> list[Finding]:
    """One finding per column and failure reason, for lookups no broader rule explained."""
    findings = []
    for column, cells in by_target(result).items():
        groups: dict[str, list[tuple[CellResult, CheckRecord]]] = {}
        for cell in cells:
            failed = first_failure(cell)
            if failed is not None and failed.name == "dns" and failed.role != "proxy":
                groups.setdefault(failed.reason or failed.status, []).append((cell, failed))
        for reason, items in groups.items():
            cell, record = items[0]
            sources = [c.source for c, _ in items]
            code = record.errno_name or reason
            findings.append(
                Finding(
                    rule="dns-failure",
                    severity=severity([c for c, _ in items], contradiction=False),
                    title=f"{column}: {record.host} {DNS_REASONS.get(reason, 'fails')} ({code})",
                    detail=f"From {listing(sources)}: {dns_meaning(record)}.",
                    evidence=evidence(c for c, _ in items),
                    next_step=dns_next_step(record),
                    facts={
                        "name": record.host,
                        "reason": reason,
                        "code": code,
                        "resolver": record.resolver,
                    },
                )
            )
    return findings
