"""Rule "cluster-address": a raw tcp or http target whose address belongs to the cluster, read
from the Services the same matrix already looked up (its kubernetes-service targets' facts):
a node's address (InternalIP or ExternalIP), a Service's ClusterIP, or a pod's address.

The classic mistakes it names: a node probed on the Service's targetPort instead of its
nodePort ("NODE_IP:8000 is the targetPort of Service api; from outside use the nodePort
30080"), the ClusterIP probed on the targetPort instead of the Service's port, a ClusterIP
probed from a place with no route to the cluster's service network, a pod address that is
not a ready endpoint, a pod probed on another port than the one it serves.

Only Services a kubernetes-service target named are known: the engine never lists a
cluster's Services on its own (a matrix-level `kubernetes:` section only says how to reach
the API server). Without such a target the rule says nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..agent.address import family_of
from ..facts import ServiceFacts
from ..results import CellResult, MatrixResult, TargetInfo
from ..status import FAILED
from .cause import Cause, cause
from .cells import by_target, hops, index, source_info
from .facts import route_for, row_facts, service_facts_of, service_name

RULE = "cluster-address"
RAW_KINDS = ("tcp", "http")


@dataclass(frozen=True)
class Role:
    """What an address is in the cluster, from one Service's facts."""

    service: str  # namespace/name
    what: str  # node, cluster-ip, pod, pod-not-ready
    name: str | None  # the node's or pod's name
    facts: ServiceFacts


def roles(result: MatrixResult) -> dict[str, list[Role]]:
    """Every cluster address the run's Services name, with what it is."""
    found: dict[str, list[Role]] = {}
    seen: set[tuple[str, str, str]] = set()

    def add(address: str | None, role: Role) -> None:
        key = (str(address), role.service, role.what)
        if address and key not in seen:
            seen.add(key)
            found.setdefault(address, []).append(role)

    for info in index(result).services():
        facts = service_facts_of(info)
        name = service_name(info)
        for node in facts.get("nodes") or []:
            for address in [*node["internal_ips"], *node["external_ips"]]:
                add(address, Role(name, "node", node["name"], facts))
        add(facts.get("cluster_ip"), Role(name, "cluster-ip", None, facts))
        for address in facts.get("ready_addresses") or []:
            add(address, Role(name, "pod", None, facts))
        for endpoint in facts.get("not_ready_addresses") or []:
            add(endpoint["ip"], Role(name, "pod-not-ready", endpoint.get("pod"), facts))
    return found


def _address_port(cell: CellResult, info: TargetInfo | None) -> tuple[str | None, int | None]:
    """The address a raw cell aimed at (its column's literal host, else the first address it
    tried), and the port."""
    host, port = (info.host, info.port) if info is not None else (None, None)
    if host and family_of(host):
        return host, port
    tried = hops(cell)
    return (tried[0].address, tried[0].port or port) if tried else (None, port)


def _ok_at(result: MatrixResult) -> dict[tuple[str, int], list[CellResult]]:
    """The cells that connected to each address:port (any column, any row)."""
    found: dict[tuple[str, int], list[CellResult]] = {}
    for cell in index(result).ok:
        for hop in hops(cell):
            if hop.status == "ok" and hop.port is not None:
                found.setdefault((hop.address, hop.port), []).append(cell)
    return found


def cluster_address(result: MatrixResult) -> list[Cause]:
    """One cause per raw column (and what its address is) that fails from some row."""
    known = roles(result)
    if not known:
        return []
    infos = index(result).targets
    working = _ok_at(result)
    found = []
    for column, cells in by_target(result).items():
        info = infos.get(column)
        if info is None or info.kind not in RAW_KINDS:
            continue
        failing = [c for c in cells if c.status in FAILED and not (c.proxy and c.proxy.used)]
        if not failing:
            continue
        address, port = _address_port(failing[0], info)
        if address is None or port is None or address not in known:
            continue
        for role in known[address]:
            probe = _Probe(column, cells, failing, address, port)
            seen = _cause(result, probe, role, working)
            if seen is not None:
                found.append(seen)
                break
    return found


@dataclass(frozen=True)
class _Probe:
    """A raw column (`column`) aimed at `address`:`port`, and its cells failing from some rows."""

    column: str
    cells: list[CellResult]
    failing: list[CellResult]
    address: str
    port: int


def _ports(facts: ServiceFacts) -> tuple[int | None, int | None, int | None]:
    """(port, targetPort as a number, nodePort) of the Service's probed port."""
    target = facts.get("target_port")
    return (
        facts.get("service_port"),
        target if isinstance(target, int) else None,
        facts.get("node_port"),
    )


def _first_ok(
    working: dict[tuple[str, int], list[CellResult]], at: Iterable[tuple[str, int]]
) -> tuple[tuple[str, int] | None, list[CellResult]]:
    for key in at:
        if key in working:
            return key, working[key]
    return None, []


def _cause(
    result: MatrixResult,
    probe: _Probe,
    role: Role,
    working: dict[tuple[str, int], list[CellResult]],
) -> Cause | None:
    """What the probed address is to `role`'s Service, and the address:port to use instead."""
    column, cells, failing = probe.column, probe.cells, probe.failing
    address, port = probe.address, probe.port
    service_port, target_port, node_port = _ports(role.facts)
    nodes = role.facts.get("nodes") or []
    node_addresses = [a for n in nodes for a in [*n["internal_ips"], *n["external_ips"]]]
    cluster_ip = role.facts.get("cluster_ip")
    variant = ""
    instead: list[tuple[str, int]] = []
    if (
        role.what == "node"
        and node_port
        and port != node_port
        and port in (target_port, service_port)
    ):
        variant = "node-target-port"
        instead = [(address, node_port)] + [(a, node_port) for a in node_addresses]
    elif (
        role.what == "cluster-ip"
        and service_port
        and port != service_port
        and port in (target_port, node_port)
    ):
        variant = "cluster-ip-port"
        instead = [(address, service_port)]
    elif role.what == "cluster-ip" and port == service_port and _outside(result, failing, address):
        variant = "cluster-ip-outside"
        if node_port:
            instead = [(a, node_port) for a in node_addresses]
    elif role.what == "pod-not-ready":
        variant = "pod-not-ready"
        ready = role.facts.get("ready_addresses") or []
        instead = [(a, target_port or port) for a in ready]
    elif role.what == "pod" and target_port and port != target_port:
        variant = "pod-port"
        instead = [(address, target_port)]
    if not variant:
        return None
    better, contrast = _first_ok(working, instead)
    return cause(
        RULE,
        column,
        failing,
        contrast,
        facts={
            "address": address,
            "port": port,
            "is": role.what,
            "service": role.service,
            "node": role.name if role.what == "node" else None,
            "pod": role.name if role.what.startswith("pod") else None,
            "service_port": service_port,
            "target_port": target_port,
            "node_port": node_port,
            "cluster_ip": cluster_ip,
            "use": f"{better[0]}:{better[1]}" if better else None,
            "suggested": [f"{a}:{p}" for a, p in instead[:4]],
        },
        variant=variant,
        probed=[c.source for c in cells if c.status not in ("source-error", "cancelled")],
    )


def _outside(result: MatrixResult, failing: list[CellResult], address: str) -> bool:
    """Every failing row is outside the cluster network: it has no route to the ClusterIP,
    or its connect got no answer or an unreachable."""
    for cell in failing:
        facts = row_facts(source_info(result, cell.source))
        unrouted = "routes" in facts and route_for(address, facts.get("routes")) is None
        if not unrouted and cell.status not in ("timeout", "unreachable"):
            return False
    return True
