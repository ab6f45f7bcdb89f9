"""Names and addresses: the address family tried first, the search list, a name that does
not resolve, and a listener that came up late (readiness race)."""

from __future__ import annotations

from datetime import datetime

from ...results import CellResult, CheckRecord, MatrixResult
from ..cause import Cause
from ..grammar import listing, scope
from ..phrasing import (
    DNS_REASONS,
    dns_meaning,
    dns_next_step,
    failure_words,
)
from .common import Words, rows_total, sources_of

# --- address-family -------------------------------------------------------------------------

FIRST_ONLY = "socket.connect((name, port)), Node.js 17+ and some JDBC drivers"


def address_family(found: Cause, result: MatrixResult) -> Words:
    row, port = found.facts["source"], found.facts["port"]
    b_cell, b_hop = found.context["bad"]
    g_cell, g_hop = found.context["good"]
    only = found.context["only"]
    bad_addresses, good_addresses = found.context["bad_addresses"], found.context["good_addresses"]
    failed = f"{b_hop.status} ({b_hop.errno_name})" if b_hop.errno_name else failure_words(b_cell)
    link: tuple[CellResult, CheckRecord] | None = found.context["link"]
    if link is not None:
        d_cell, record = link
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
        if not bad_first and only == "IPv4":
            resolved += "; most resolvers put the IPv6 address first (RFC 6724)"
    else:
        name = "localhost"
        title = f"Port {port} listens on {only} only: {b_hop.address} fails, {g_hop.address} works"
        resolved = (
            f"{b_hop.address} and {g_hop.address} are both the loopback; `localhost` resolves to "
            "both on most systems, ::1 first"
        )
    return Words(
        title,
        f"From {row}: {resolved}. On port {port}, {b_hop.address} is {failed} "
        f"({b_cell.target}) while {g_hop.address} connects ({g_cell.target}). Clients that use "
        f"only the first address ({FIRST_ONLY}) fail; curl, requests and httpx fall back to "
        "the next address after a failed attempt.",
        f"Make the service listen on both families (bind '::' with IPV6_V6ONLY off, e.g. "
        f"uvicorn --host ::), or connect to {g_hop.address} instead of {name}.",
    )


# --- search-list ----------------------------------------------------------------------------


def search_list(found: Cause, result: MatrixResult) -> Words:
    facts = found.facts
    row, short, fqdn = facts["source"], str(facts["short"]), str(facts["fqdn"])
    record: CheckRecord = found.context["record"]
    ok_record: CheckRecord = found.context["ok_record"]
    suffix = fqdn[len(short) + 1 :]
    search, tried, ndots = facts["search"], facts["tried"], facts["ndots"]
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
    asked = f" (asked as {', '.join(tried)})" if tried is not None else ""
    dots = f"; ndots:{ndots}" if ndots else ""
    return Words(
        f"{short} fails while {fqdn} resolves: the search list does not complete it",
        f"From {row}: {short} {DNS_REASONS.get(record.reason or '', 'fails')} "
        f"({record.errno_name or record.reason}){asked}, while {fqdn} resolves to "
        f"{listing(ok_record.addresses or [])}. A short name only works when the resolver "
        f"appends the right domain from its search list: {about}{dots}.",
        f"Use the full name {fqdn}, or add {suffix} to the search list (resolv.conf `search`;"
        " in Kubernetes a pod's namespace decides it).",
    )


# --- readiness-race -------------------------------------------------------------------------

WAIT = (
    "Wait for readiness before the tests: `probe-engine wait TARGET --timeout 2m` (or the "
    "Airflow ProbeReadySensor) before running them."
)


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S.%f")[:-3]


def readiness_race(found: Cause, result: MatrixResult) -> Words:
    at, gap = found.subject, float(found.facts.get("gap_s", 0.0))
    if found.variant == "in-cell":
        cell = found.failing[0]
        return Words(
            f"{cell.target} from {cell.source} was refused before it answered: a readiness race",
            f"{cell.source} was refused (ECONNREFUSED) by {cell.endpoint} and succeeded 1 "
            "attempt later: the service was still starting when probing began.",
            WAIT,
        )
    bad, good = found.failing[0], found.contrast[0]
    if found.variant == "stopped":
        return Words(
            f"{at} accepted, then refused {gap:.2f} s later: it stopped",
            f"{good.target} connected to {at} from {good.source}, then {bad.target} was refused "
            f"(ECONNREFUSED) from {bad.source}: the service stopped, crashed or restarted "
            "during the run.",
            "Check the service's restarts and logs (`kubectl get pods`: RESTARTS).",
        )
    who = listing(sources_of([bad, good]))
    return Words(
        f"{at} refused, then accepted {gap:.2f} s later: a readiness race",
        f"From {who}: {bad.target} was refused (ECONNREFUSED) at "
        f"{_clock(found.context['refused_at'])} and {good.target} connected to the same {at} at "
        f"{_clock(found.context['ok_at'])}. Nothing listened at first, then something did: the "
        "service was still starting. Tests started right after a deploy hit the same race.",
        WAIT,
    )


# --- dns-failure ----------------------------------------------------------------------------


def dns_failure(found: Cause, result: MatrixResult) -> Words:
    record: CheckRecord = found.context["record"]
    reason = str(found.facts["reason"])
    sources = sources_of(found.failing)
    where = scope(sources, found.context["probed"], rows_total(result))
    return Words(
        f"{found.subject} fails {where}: {record.host} {DNS_REASONS.get(reason, 'fails')} "
        f"({found.facts['code']})",
        f"From {listing(sources)}: {dns_meaning(record)}.",
        dns_next_step(record),
    )
