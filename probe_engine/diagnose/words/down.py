"""A target that fails from everywhere it was probed, and a host that answers on its ports
but not to ping."""

from __future__ import annotations

from ...results import CellResult, MatrixResult
from ..cause import Cause
from ..cells import first_failure, host_of, index, target_info
from ..grammar import listing, plural, port_ranges, scope, verb
from ..phrasing import (
    failure_words,
    meaning,
    next_step,
)
from ..service_causes import Cause as ServiceCause
from .common import Words, rows_total, sources_of

# --- target-down ----------------------------------------------------------------------------

# What a port scan calls a port in each state (nmap's words where they fit).
PORT_STATE = {
    "refused": "closed",
    "timeout": "filtered (no answer)",
    "unreachable": "unreachable",
    "reset": "reset",
}


def target_down(found: Cause, result: MatrixResult) -> Words:
    probed = (
        [c for c in found.failing if c.status != "target-error"]
        if "target-error" in index(result).statuses
        else list(found.failing)
    )
    first = probed[0] if probed else found.failing[0]
    title, why = _down_title(found, result, probed)
    detail = f"{_down_seen(found)} Why: {why}.{_down_notes(found, first, bool(probed))}"
    return Words(title, detail, _down_step(found, first))


def _down_title(found: Cause, result: MatrixResult, probed: list[CellResult]) -> tuple[str, str]:
    """The title (what fails, from where, how) and the reason, for target-down."""
    facts = found.facts
    columns: list[str] = found.context["columns"]
    service: list[ServiceCause] = found.context["service"]
    target = str(facts["target"])
    where = scope(found.context["probed"], found.context["probed"], rows_total(result))
    if len(columns) == 1:
        named = columns[0]
    else:
        named = f"{target} ({listing(columns)})" if target else listing(columns)
    first = probed[0] if probed else found.failing[0]
    if service:
        return f"{named} fails {where}: {service[0].short}", service[0].text
    if not probed:
        why = first.message or "the target could not be resolved"
        return f"{named} could not be resolved: {why}", why
    if found.variant == "scan":
        scan = facts["scan"]
        state = PORT_STATE.get(first.status, failure_words(first))
        title = f"{plural(scan['failing_ports'], 'port')} {state} on {scan['host']} {where}"
        if scan["open_ports"]:
            title += f"; open: {port_ranges(scan['open_ports'])}"
        return title, meaning(first)
    endpoints = list(dict.fromkeys(c.endpoint for c in probed))
    at = first.endpoint
    if len(endpoints) > 1:
        hosts = list(dict.fromkeys(host_of(c, target_info(result, c.target)) for c in probed))
        at = f"{listing(hosts)} ({len(endpoints)} endpoints)"
    fails = "fail" if len(columns) > 1 and not target else "fails"
    return f"{named} {fails} {where}: {failure_words(first)} at {at}", meaning(first)


def _down_seen(found: Cause) -> str:
    """What each source saw, each named once."""
    columns: list[str] = found.context["columns"]
    by_source: dict[str, list[str]] = found.facts["statuses"]
    by_column: dict[str, list[str]] = found.context["by_column"]
    rows = list(found.context["probed"])
    if found.variant == "scan" and len(by_source) == 1:
        words = next(iter(by_source))
        return (
            f"From {listing(rows)}: {words} on ports {port_ranges(found.context['ports'])} of "
            f"{found.facts['scan']['host']}."
        )
    if len(columns) > 1 and len(by_column) > 1:
        how = "; ".join(f"{listing(t)}: {w}" for w, t in by_column.items())
        return f"From {listing(rows)}: {how}."
    if len(by_source) > 1:
        return "From " + "; from ".join(f"{listing(s)}: {w}" for w, s in by_source.items()) + "."
    return f"From {listing(rows)}: {next(iter(by_source))}."


def _down_notes(found: Cause, first: CellResult, probed: bool) -> str:
    """What else the detail says: the Service's other causes, rows stopped at their proxy,
    and what the rows that reach other targets prove."""
    service: list[ServiceCause] = found.context["service"]
    stopped: list[CellResult] = found.context["stopped"]
    notes = ""
    if len(service) > 1:
        notes += " Also: " + "; ".join(c.text for c in service[1:]) + "."
    if stopped:
        names = sources_of(stopped)
        notes += (
            f" {listing(names)} did not reach it: {verb(len(names), 'its', 'their')} proxy "
            "failed first (proxy-error)."
        )
    if probed and not service and set(found.context["probed"]) & found.context["working_rows"]:
        failed = first_failure(first)
        if failed is not None and failed.name == "dns":
            what = "the name (or its resolver)"
        elif (failed is not None and failed.name == "http") or first.status == "reset":
            what = "the service itself (it is reached, and fails)"
        else:
            what = "the target itself (or its port)"
        notes += f" The same sources reach other targets, so {what} is the likely cause."
    return notes


def _down_step(found: Cause, first: CellResult) -> str:
    service: list[ServiceCause] = found.context["service"]
    if service:
        return service[0].next_step
    if found.variant == "scan":
        return (
            f"If one of these ports should be open, check that its service runs and listens on "
            f"{found.facts['scan']['host']} (`ss -ltnp` there); the others are as expected for "
            "a scan."
        )
    return next_step(first)


# --- ping-filtered --------------------------------------------------------------------------


def ping_filtered(found: Cause, result: MatrixResult) -> Words:
    f = found.facts
    address, services = f["address"], f["services"]
    sources = sources_of(found.failing)
    if services:
        why = (
            f"{address} is the ClusterIP of {listing(services)}: a virtual address that "
            "kube-proxy forwards only for the Service's ports, so it never answers ping"
        )
    else:
        why = (
            f"echo requests to {address} are dropped (a firewall, a security group), or the "
            "address is virtual (a Kubernetes ClusterIP answers only the Service's ports)"
        )
    return Words(
        f"{address} does not answer ping, but its ports answer: the host is up",
        f"From {listing(sources)}: no echo reply from {address}, yet {listing(f['answered'])} "
        f"answered. Why: {why}. The failed ping is not a sign that it is down.",
        f"Judge {address} by its ports (tcp or http targets), not by ping; declare `timeout` "
        "for its icmp column if that is how it is meant to be.",
    )
