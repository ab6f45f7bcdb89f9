"""Helpers the diagnosis rules share: grouping cells, reading addresses, naming evidence, and
the one severity policy every rule follows."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..agent.address import family_of, ip_literal
from ..results import (
    CellResult,
    CheckRecord,
    Evidence,
    Finding,
    MatrixResult,
    Severity,
    SourceInfo,
    TargetInfo,
)


def by_target(result: MatrixResult) -> dict[str, list[CellResult]]:
    groups: dict[str, list[CellResult]] = defaultdict(list)
    for cell in result.cells:
        groups[cell.target].append(cell)
    return groups


def by_source(result: MatrixResult) -> dict[str, list[CellResult]]:
    groups: dict[str, list[CellResult]] = defaultdict(list)
    for cell in result.cells:
        groups[cell.source].append(cell)
    return groups


def evidence(cells: Iterable[CellResult]) -> list[Evidence]:
    """Evidence in the order given, each cell once."""
    seen: set[tuple[str, str]] = set()
    out = []
    for c in cells:
        if (c.source, c.target) not in seen:
            seen.add((c.source, c.target))
            out.append(Evidence(source=c.source, target=c.target, status=c.status))
    return out


def source_info(result: MatrixResult, row: str) -> SourceInfo | None:
    return next((s for s in result.sources if s.name == row), None)


def target_info(result: MatrixResult, column: str) -> TargetInfo | None:
    return next((t for t in result.targets if t.name == column), None)


def first_failure(cell: CellResult) -> CheckRecord | None:
    """The check that decided the cell's status (the first one that is not ok)."""
    return next((c for c in cell.checks if c.status != "ok"), None)


def failure_words(cell: CellResult) -> str:
    """'refused (ECONNREFUSED)' from the first failed check."""
    failed = first_failure(cell)
    if failed is None:
        return cell.status
    if failed.errno_name:
        return f"{cell.status} ({failed.errno_name})"
    if failed.http_status:
        return f"{cell.status} (HTTP {failed.http_status})"
    return cell.status


def listing(names: Sequence[str], limit: int = 4) -> str:
    """'a, b, c and 2 more': a readable list that stays one line."""
    names = list(dict.fromkeys(names))
    if len(names) <= 1:
        return "".join(names)
    if len(names) <= limit:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def severity(cells: Iterable[CellResult], contradiction: bool) -> Severity:
    """How loud a finding is, from the failing cells it rests on.

    An unmet expectation is an error. Where the user declared every failure (all met), the
    finding only explains: info, or a warning when sources contradict each other (one path
    works, another does not). Failures nobody declared are errors when another path works
    (something is wrong, and fixable) and warnings otherwise (maybe down on purpose).
    A healthy matrix (all ok, or all met with no contradiction) therefore raises no alarm.
    """
    failing = [c for c in cells if c.status != "ok"]
    if any(c.met is False for c in failing):
        return "error"
    if failing and all(c.met is True for c in failing):
        return "warning" if contradiction else "info"
    return "error" if contradiction else "warning"


@dataclass(frozen=True)
class Hop:
    """One address a cell connected to (or tried), from its tcp records."""

    address: str
    port: int | None
    family: str | None
    status: str
    errno_name: str | None
    source_address: str | None


def hops(cell: CellResult) -> list[Hop]:
    """The target addresses a cell tried (not the proxy's), in the order it tried them."""
    found = [
        Hop(
            r.address,
            r.port,
            r.family or family_of(r.address),
            r.status,
            r.errno_name,
            r.source_address,
        )
        for r in cell.checks
        if r.name == "tcp" and r.address and r.role != "proxy"
    ]
    if found:
        return found
    host, port = endpoint_host_port(cell.endpoint)
    if host and family_of(host) and not (cell.proxy and cell.proxy.used):
        return [Hop(host, port, family_of(host), cell.status, None, None)]
    return []


def endpoint_host_port(endpoint: str) -> tuple[str, int | None]:
    """('10.96.0.10', 80) from '10.96.0.10:80', '[::1]:80', a URL, or ('name', None) from a
    dns column's 'name @nameserver'."""
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        try:
            port = parts.port
        except ValueError:
            port = None
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or "", port or default
    text = endpoint.split(" @", 1)[0].strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest[1:].isdigit() else None
    if text.count(":") == 1:
        host, _, digits = text.partition(":")
        return host, int(digits) if digits.isdigit() else None
    return text, None


def is_loopback(address: str | None) -> bool:
    found = ip_literal(address)
    return found is not None and found.is_loopback


def route_for(address: str, routes: object) -> dict[str, str] | None:
    """The IPv4 route the kernel would pick (longest prefix) among a source's `routes` fact;
    None when no route covers the address. Malformed entries are skipped, not trusted."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    best: tuple[int, dict[str, str]] | None = None
    for route in routes if isinstance(routes, list) else []:
        if not isinstance(route, dict):
            continue
        try:
            network = ipaddress.ip_network(str(route.get("destination")), strict=False)
        except ValueError:
            continue
        if (
            network.version == ip.version
            and ip in network
            and (best is None or network.prefixlen > best[0])
        ):
            best = (network.prefixlen, route)
    return best[1] if best else None


def describe_route(route: dict[str, str]) -> str:
    """'10.96.0.0/12 via 192.168.49.2 dev eth0' as `ip route` prints it."""
    text = str(route.get("destination"))
    gateway = route.get("gateway")
    if gateway and gateway != "0.0.0.0":
        text += f" via {gateway}"
    if route.get("device"):
        text += f" dev {route['device']}"
    return text


Rule = Callable[[MatrixResult], list[Finding]]
