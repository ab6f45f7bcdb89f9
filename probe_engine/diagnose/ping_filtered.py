"""Rule "ping-filtered": ping gets no reply where a port of the same address answers.

An echo request without a reply says little: hosts and firewalls drop ICMP, and a Kubernetes
ClusterIP never answers ping (kube-proxy forwards only the Service's ports). When the same
source reaches a tcp or udp port of that very address, the host is up: the cause says so, and
"target-down" leaves these cells alone, so nobody calls a Service down on the strength of a
ping."""

from __future__ import annotations

from ..results import CellResult, MatrixResult
from .cause import Cause, cause
from .cells import first_failure, index
from .facts import is_service, service_facts_of, service_name

RULE = "ping-filtered"


def ping_filtered(result: MatrixResult) -> list[Cause]:
    """One cause per address whose pings time out while its ports answer the same sources."""
    by_address: dict[str, list[tuple[CellResult, list[str]]]] = {}
    for cell, address, ports in _silent_pings(result):
        by_address.setdefault(address, []).append((cell, ports))
    found = []
    for address, items in by_address.items():
        cells = [cell for cell, _ports in items]
        services = [
            service_name(t)
            for t in result.targets
            if is_service(t) and service_facts_of(t).get("cluster_ip") == address
        ]
        facts = {
            "address": address,
            "sources": list(dict.fromkeys(c.source for c in cells)),
            "answered": list(dict.fromkeys(p for _cell, ports in items for p in ports)),
            "services": services,
        }
        found.append(cause(RULE, address, cells, facts=facts))
    return found


def filtered_pings(result: MatrixResult) -> set[tuple[str, str]]:
    """(source, column) of the icmp cells this rule explains: their host is up."""
    return {(cell.source, cell.target) for cell, _address, _ports in _silent_pings(result)}


def _silent_pings(result: MatrixResult) -> list[tuple[CellResult, str, list[str]]]:
    """Timed-out icmp cells whose address answered on a port to the same source."""
    if "icmp" not in index(result).kinds:
        return []  # no ping column: no pass over every cell's checks (10,000s in a scan)
    kinds = {t.name: t.kind for t in result.targets}
    answered = _answered_ports(result)
    found = []
    for cell in result.cells:
        failed = first_failure(cell)
        if kinds.get(cell.target) != "icmp" or cell.status != "timeout" or failed is None:
            continue
        if failed.name != "icmp" or not failed.address:
            continue
        ports = answered.get((cell.source, failed.address))
        if ports:
            found.append((cell, failed.address, ports))
    return found


def _answered_ports(result: MatrixResult) -> dict[tuple[str, str], list[str]]:
    """(source, address) -> 'tcp port 80 (column)' for every port that answered there."""
    answered: dict[tuple[str, str], list[str]] = {}
    for cell in result.cells:
        for check in cell.checks:
            if check.name not in ("tcp", "udp") or check.status != "ok" or not check.address:
                continue
            if check.role == "proxy":
                continue
            words = f"{check.name} port {check.port} ({cell.target})"
            kept = answered.setdefault((cell.source, check.address), [])
            if words not in kept:
                kept.append(words)
    return answered
