"""Rule "via-differs": one source, several ways to one Kubernetes Service (columns of one
target whose TargetInfo.via is cluster-ip, node-port, dns, endpoints or port-forward), and
not all of them work. What each difference implies:

- port-forward works, the rest fails: the pod is healthy; the path is the problem.
- endpoints work, node-port is refused: the node does not forward that nodePort (kube-proxy),
  or the probed port is the targetPort, not the nodePort.
- cluster-ip fails from a source outside the cluster network: ClusterIPs are virtual, only
  pods and nodes (or hosts routing the service CIDR to a node) reach them.
- dns fails to resolve: the source's resolver is not the cluster DNS; dns-short fails while
  dns works: the short name only resolves from pods of the Service's namespace (search list).
- endpoints refused while port-forward works: the app listens on the pod's loopback only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..agent.address import hostport
from ..facts import ServicePortFact
from ..results import CellResult, Finding, MatrixResult, SourceInfo, TargetInfo
from ..status import FAILED
from .cells import by_target, evidence, first_failure, hops, source_info
from .facts import route_for, row_facts, service_facts_of, service_name, service_ports
from .phrasing import dns_meaning, listing, meaning
from .service_causes import causes
from .severity import severity

# Closest to the pod first: the order in which a reader narrows the problem down.
VIA_ORDER = ("port-forward", "endpoints", "cluster-ip", "dns", "dns-short", "node-port")


@dataclass
class _Row:
    """One row's outcome per via for one Service."""

    ok: dict[str, list[CellResult]] = field(default_factory=dict)
    failing: dict[str, list[CellResult]] = field(default_factory=dict)


def _order(via: str) -> int:
    return VIA_ORDER.index(via) if via in VIA_ORDER else len(VIA_ORDER)


def via_differs(result: MatrixResult) -> list[Finding]:
    """One finding per Service and outcome pattern (rows with the same pattern together)."""
    columns: dict[str, list[TargetInfo]] = {}
    for info in result.targets:
        if info.via:
            columns.setdefault(info.target_name, []).append(info)
    cells_by_column = by_target(result)
    findings = []
    for target_name, infos in columns.items():
        if len({i.via for i in infos}) < 2:
            continue
        via_of = {i.name: str(i.via) for i in infos}
        rows: dict[str, _Row] = {}
        for info in infos:
            for cell in cells_by_column.get(info.name, []):
                row = rows.setdefault(cell.source, _Row())
                if cell.status == "ok":
                    row.ok.setdefault(via_of[cell.target], []).append(cell)
                elif cell.status in FAILED:
                    row.failing.setdefault(via_of[cell.target], []).append(cell)
        patterns: dict[tuple[Any, ...], list[str]] = {}
        for name, row in rows.items():
            if not row.ok or not row.failing:
                continue
            signature = (
                tuple(sorted(row.ok)),
                tuple(sorted((v, cells[0].status) for v, cells in row.failing.items())),
            )
            patterns.setdefault(signature, []).append(name)
        by_via = {str(i.via): i for i in infos}
        for names in patterns.values():
            findings.append(_finding(result, target_name, by_via, names, rows))
    return findings


def _finding(
    result: MatrixResult,
    target_name: str,
    by_via: Mapping[str, TargetInfo],
    names: list[str],
    rows: Mapping[str, _Row],
) -> Finding:
    row = rows[names[0]]
    source = source_info(result, names[0])
    ok = sorted(row.ok, key=_order)
    failing = sorted(row.failing, key=_order)
    who = listing(names)
    lines = [
        _implication(_Failure(via, row.failing[via][0], row, by_via.get(via), source, names[0]))
        for via in failing
    ]
    facts_info = next(iter(by_via.values()))
    service_causes = causes(facts_info)
    headline = _headline(ok, failing, who)
    detail = (
        f"From {who}: {listing(ok)} {'works' if len(ok) == 1 else 'work'}, "
        f"{listing([f'{v} ({row.failing[v][0].status})' for v in failing])} "
        f"{'fails' if len(failing) == 1 else 'fail'}. "
        + (headline + ". " if headline else "")
        + " ".join(f"{via}: {text}." for via, (text, _) in zip(failing, lines, strict=True))
    )
    timeouts = any(row.failing[v][0].status == "timeout" for v in failing)
    relevant = [c for c in service_causes if "network_policies" in c.facts and timeouts]
    # Only facts that can explain a failure: a few not-ready pods do not.
    relevant += [c for c in service_causes if "network_policies" not in c.facts and c.rank < 5]
    if relevant:
        detail += " Service facts: " + "; ".join(c.text for c in relevant) + "."
    next_step = next((step for _, step in lines if step), None) or (
        relevant[0].next_step if relevant else "Compare the failing path with the working one."
    )
    if ok == ["port-forward"]:
        facts = service_facts_of(facts_info)
        ns = f" -n {facts['namespace']}" if facts.get("namespace") else ""
        service = facts.get("service") or target_name
        port = facts.get("service_port") or "PORT"
        next_step = (
            f"For now reach it through `kubectl port-forward{ns} svc/{service} 8080:{port}`; "
            f"to fix the path: {next_step}"
        )
    cited = [c for n in names for v in failing for c in rows[n].failing[v]]
    contrast = [c for n in names for v in ok for c in rows[n].ok[v]]
    return Finding(
        rule="via-differs",
        severity=severity(cited, contradiction=True),
        title=f"{target_name}: {listing(ok)} {'works' if len(ok) == 1 else 'work'} from {who} "
        f"but {listing(failing)} {'fails' if len(failing) == 1 else 'fail'}",
        detail=detail,
        evidence=evidence(cited + contrast),
        next_step=next_step,
        facts={
            "service": service_name(facts_info),
            "sources": names,
            "ok": ok,
            "failing": {v: row.failing[v][0].status for v in failing},
            "endpoints": {v: by_via[v].endpoint for v in by_via},
        },
    )


def _headline(ok: list[str], failing: list[str], who: str) -> str:
    if ok == ["port-forward"]:
        return (
            "The pod is healthy (port-forward through the API server reaches it): the path from "
            f"{who} is the problem, not the application"
        )
    if "endpoints" in ok and {"cluster-ip", "node-port", "dns"} & set(failing):
        return (
            "The pods answer on their own addresses, so the Service layer in between "
            "(kube-proxy's rules, the Service's ports) is where it breaks"
        )
    return ""


@dataclass(frozen=True)
class _Failure:
    """One way to the Service failing from one row (named `name`), with what else that row
    sees: which ways work (`row`), the column's facts (`info`), the row's facts (`source`)."""

    via: str
    cell: CellResult
    row: _Row
    info: TargetInfo | None
    source: SourceInfo | None
    name: str

    @property
    def address(self) -> str | None:
        tried = hops(self.cell)
        return tried[0].address if tried else None

    @property
    def port(self) -> int | None:
        tried = hops(self.cell)
        return tried[0].port if tried else None

    @property
    def ports(self) -> list[ServicePortFact]:
        return service_ports(service_facts_of(self.info))


def _implication(failure: _Failure) -> tuple[str, str | None]:
    """What this via failing means, given which vias work; and what to try next."""
    via, cell, row = failure.via, failure.cell, failure.row
    if via == "node-port":
        return _node_port(failure)
    if via == "cluster-ip":
        return _cluster_ip(failure)
    if via == "dns-short" and "dns" in row.ok:
        return _dns_short(failure)
    if via in ("dns", "dns-short"):
        return _dns(failure)
    if via == "endpoints":
        return _endpoints(failure)
    if via == "port-forward":
        return (
            f"port-forward failed ({meaning(cell)}) although the other paths reach the pods: "
            "the API server or kubelet side of the tunnel is the problem",
            "Check the right to port-forward (RBAC pods/portforward) and the kubelet's logs.",
        )
    return f"{via}: {meaning(cell)}", None


def _node_port(f: _Failure) -> tuple[str, str | None]:
    cell, row, ports, address, port, name = f.cell, f.row, f.ports, f.address, f.port, f.name
    node_ports = [p["nodePort"] for p in ports if p.get("nodePort")]
    others = [p["targetPort"] for p in ports] + [p["port"] for p in ports]
    failed_hop = next((h for h in hops(cell) if h.status != "ok"), None)
    if failed_hop is not None:
        address = failed_hop.address
    at = hostport(address, port) if address else cell.endpoint
    if port and node_ports and port not in node_ports and port in others:
        return (
            f"the node-port path probes port {port}, which is the Service's port or targetPort, "
            f"not its nodePort {listing([str(p) for p in node_ports])}: nothing on the node "
            f"listens on {port}",
            f"Probe the nodePort ({address or 'NODE_IP'}:{node_ports[0]}); `kubectl get svc` "
            "shows it as PORT:NODEPORT.",
        )
    working = [h.address for c in row.ok.get("node-port", []) for h in hops(c)]
    working += [h.address for h in hops(cell) if h.status == "ok"]
    if working:
        failing = [h.address for h in hops(cell) if h.status != "ok"]
        at = f"{listing(failing)}:{port}" if failing else at
        good = listing(working)
        return (
            f"the nodePort works through {good} but not through {at} ({cell.status}): that "
            "node does not forward it (kube-proxy down there), or a firewall guards that node",
            f"Check kube-proxy and the firewall on the node {address or at}.",
        )
    works = "the pods answer directly" if "endpoints" in row.ok else "other paths work"
    if cell.status == "refused":
        return (
            f"the node {at} answers ECONNREFUSED while {works}: the node does not forward "
            f"nodePort {port} to the pods (kube-proxy not running or its rules missing), or "
            f"{port} is not this Service's nodePort (it changes when the Service is recreated)",
            "Check kube-proxy on the node (`kubectl -n kube-system get pods -l "
            "k8s-app=kube-proxy`) and the Service's current nodePort (`kubectl get svc`).",
        )
    if cell.status == "timeout":
        return (
            f"nodePort traffic to {at} gets no answer while {works}: a firewall or security "
            "group drops the nodePort range (30000-32767), or externalTrafficPolicy: Local "
            "leaves no ready pod on that node",
            f"Allow TCP {port} to the node from {name}; check the Service's externalTrafficPolicy.",
        )
    return (
        f"the node address {at} fails from {name}: {meaning(cell)}",
        f"Attach {name} to the node's network, or give it a route to {address or 'the node'}.",
    )


def _cluster_ip(f: _Failure) -> tuple[str, str | None]:
    cell, row, ports, address, port, name = f.cell, f.row, f.ports, f.address, f.port, f.name
    source = f.source
    facts = row_facts(source)
    at = hostport(address, port) if address else cell.endpoint
    outside = (
        "routes" in facts
        and address is not None
        and (route_for(address, facts.get("routes")) is None)
    )
    virtual = (
        "ClusterIPs are virtual addresses that kube-proxy translates on the nodes: only pods "
        "and nodes (or hosts that route the service CIDR to a node) can reach them"
    )
    via_out = (
        "From outside the cluster use the NodePort or port-forward, or run the probe in a pod."
    )
    if outside:
        return (
            f"{name} has no route to the ClusterIP {address}"
            + (" (and no default route)" if facts.get("default_route") is False else "")
            + f"; {virtual}",
            via_out,
        )
    if cell.status in ("timeout", "unreachable"):
        return f"the ClusterIP {at} does not answer from {name} ({cell.status}); {virtual}", via_out
    if cell.status == "refused":
        service_ports_text = listing(
            [f"{p['port']}->{p['targetPort']}" for p in ports if p.get("port")]
        )
        return (
            f"the ClusterIP {at} refuses (ECONNREFUSED)"
            + (" although the pods answer" if "endpoints" in row.ok else "")
            + ": port "
            + str(port)
            + " is not one of the Service's ports"
            + (f" ({service_ports_text})" if service_ports_text else "")
            + ", or kube-proxy has no endpoint behind it",
            "Compare the probed port with `kubectl get svc` (PORT) and `kubectl get endpoints`.",
        )
    return f"the ClusterIP {at} fails: {meaning(cell)}", None


def _dns(f: _Failure) -> tuple[str, str | None]:
    cell, source, name = f.cell, f.source, f.name
    failed = first_failure(cell)
    if failed is not None and failed.name == "dns":
        resolv = row_facts(source).get("resolv_conf")
        servers = ""
        if resolv and resolv["nameservers"]:
            servers = f" (nameservers {listing(resolv['nameservers'])})"
        return (
            f"{name} cannot resolve the Service's name: {dns_meaning(failed)}; its resolver"
            f"{servers} is not the cluster DNS, and *.svc.cluster.local names resolve only "
            "through it (in pods)",
            "From outside the cluster use the ClusterIP/NodePort, or point the source's resolver "
            "at the cluster DNS (the kube-dns Service).",
        )
    return (
        f"the Service's name resolves, but connecting fails: {meaning(cell)}",
        None,
    )


def _dns_short(f: _Failure) -> tuple[str, str | None]:
    cell, info, name = f.cell, f.info, f.name
    facts = service_facts_of(info)
    namespace = facts.get("namespace") or "its namespace"
    service = facts.get("service") or cell.target_name
    failed = first_failure(cell)
    why = dns_meaning(failed) if failed is not None and failed.name == "dns" else meaning(cell)
    return (
        f"the short name {service} fails ({why}) while the full name resolves: a short name "
        f"resolves only through a search list that holds {namespace}.svc.<cluster domain>, "
        f"which pods of namespace {namespace} have and {name} does not",
        f"Use the full name {service}.{namespace}.svc.cluster.local (or the ClusterIP).",
    )


def _endpoints(f: _Failure) -> tuple[str, str | None]:
    cell, row, address, port, name = f.cell, f.row, f.address, f.port, f.name
    at = hostport(address, port) if address else cell.endpoint
    if cell.status == "refused" and "port-forward" in row.ok:
        return (
            f"the pod refuses {at} (ECONNREFUSED) while port-forward, which connects to the "
            "pod's own loopback, works: the application listens on 127.0.0.1 inside the pod",
            "Make the application listen on 0.0.0.0 (e.g. uvicorn --host 0.0.0.0).",
        )
    if cell.status == "refused":
        return (
            f"the pod refuses {at} (ECONNREFUSED): the container does not listen on that "
            "targetPort",
            "Compare the Service's targetPort with the port the container listens on.",
        )
    return (
        f"the pod address {at} is not reachable from {name} ({cell.status}): pod IPs live on "
        "the cluster's pod network, routable only from nodes and pods (or a NetworkPolicy "
        "drops the traffic)",
        "Probe the pods from a node or a pod, or use port-forward from outside.",
    )
