"""Kubernetes paths: one via of a Service works and another does not, a raw target on a
cluster address, what a Service's own facts say."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ...agent.address import hostport
from ...facts import ServicePortFact
from ...results import CellResult, MatrixResult, SourceInfo, TargetInfo
from ..cause import Cause
from ..cells import first_failure, hops, source_info
from ..facts import route_for, row_facts, service_facts_of, service_ports
from ..grammar import listing, plural, scope, verb
from ..phrasing import (
    dns_meaning,
    meaning,
)
from ..service_causes import Cause as ServiceCause
from ..service_causes import causes as service_causes
from ..via_differs import Row
from .common import Words, outcomes, rows_total, sources_of

# --- via-differs ----------------------------------------------------------------------------


def via_differs(found: Cause, result: MatrixResult) -> Words:
    by_via: Mapping[str, TargetInfo] = found.context["by_via"]
    row: Row = found.context["row"]
    names = list(found.facts["sources"])
    ok, failing = list(found.facts["ok"]), list(found.facts["failing"])
    source = source_info(result, names[0])
    who = listing(names)
    lines = [
        _implication(_Failure(via, row.failing[via][0], row, by_via.get(via), source, names[0]))
        for via in failing
    ]
    info = next(iter(by_via.values()))
    known = service_causes(info)
    headline = _headline(ok, failing, who)
    detail = (
        f"From {who}: {listing(ok)} {verb(len(ok), 'works', 'work')}, "
        f"{listing([f'{v} ({row.failing[v][0].status})' for v in failing])} "
        f"{verb(len(failing), 'fails', 'fail')}. "
        + (headline + ". " if headline else "")
        + " ".join(f"{via}: {text}." for via, (text, _) in zip(failing, lines))
    )
    timeouts = any(row.failing[v][0].status == "timeout" for v in failing)
    relevant = [c for c in known if "network_policies" in c.facts and timeouts]
    # Only facts that can explain a failure: a few not-ready pods do not.
    relevant += [c for c in known if "network_policies" not in c.facts and c.rank < 5]
    if relevant:
        detail += " Service facts: " + "; ".join(c.text for c in relevant) + "."
    step = next((s for _, s in lines if s), None) or (
        relevant[0].next_step if relevant else "Compare the failing path with the working one."
    )
    if ok == ["port-forward"]:
        facts = service_facts_of(info)
        ns = f" -n {facts['namespace']}" if facts.get("namespace") else ""
        service = facts.get("service") or found.subject
        port = facts.get("service_port") or "PORT"
        step = (
            f"For now reach it through `kubectl port-forward{ns} svc/{service} 8080:{port}`; "
            f"to fix the path: {step}"
        )
    where = scope(names, found.context["probed"], rows_total(result))
    return Words(
        f"{found.subject}: {listing(failing)} {verb(len(failing), 'fails', 'fail')} {where} "
        f"while {listing(ok)} {verb(len(ok), 'works', 'work')}",
        detail,
        step,
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
    row: Row
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


# --- service-facts --------------------------------------------------------------------------


def service_facts(found: Cause, result: MatrixResult) -> Words:
    service: list[ServiceCause] = found.context["service"]
    top = service[0]
    detail = "; ".join(c.text for c in service) + "."
    failing = [c for c in found.failing if c.status != "ok"]
    if failing:
        ok = len(found.contrast)
        detail += (
            f" {len(failing)} of {plural(found.context['cells'], 'cell')} of {found.subject} "
            f"fail" + (f"; {ok} succeed" if ok else "") + "."
        )
    return Words(f"{found.subject}: {top.short}", detail, top.next_step)


# --- cluster-address ------------------------------------------------------------------------


def cluster_address(found: Cause, result: MatrixResult) -> Words:
    f = found.facts
    address, port, svc = f["address"], f["port"], f["service"]
    sp, tp, np, cip = f["service_port"], f["target_port"], f["node_port"], f["cluster_ip"]
    at = hostport(address, port)
    sources = sources_of(found.failing)
    where = scope(sources, found.context["probed"], rows_total(result))
    seen = "; ".join(
        f"{words} from {listing(names)}"
        for words, names in outcomes(found.failing, lambda c: c.source).items()
    )
    works = ""
    if f["use"] and found.contrast:
        works = f" ({f['use']} is ok from {listing(sources_of(found.contrast))})"
    mapping = f"Service {svc} maps port {sp} to targetPort {tp}" + (
        f", nodePort {np}" if np else ""
    )
    if found.variant == "node-target-port":
        which = "targetPort" if port == tp else "port"
        return Words(
            f"{found.subject} fails {where}: {at} is the {which} of Service {svc} on node "
            f"{f['node']}, not its nodePort {np}",
            f"{address} is the address of node {f['node']}; {mapping}. A node forwards only the "
            f"nodePort to the pods: nothing on it listens on {port} ({seen}). From outside the "
            f"cluster use the nodePort {np}{works}; inside it, the ClusterIP {cip}:{sp}.",
            f"Probe {hostport(address, np)} (the nodePort: `kubectl get svc` shows it as "
            f"{sp}:{np}/TCP).",
        )
    if found.variant == "cluster-ip-port":
        return Words(
            f"{found.subject} fails {where}: {at} is the ClusterIP of Service {svc} on port "
            f"{port}, but the ClusterIP answers on the Service's port {sp}",
            f"{address} is the ClusterIP of Service {svc}; {mapping}. kube-proxy forwards only "
            f"{address}:{sp} to the pods' targetPort ({seen}): use the Service's port on the "
            f"ClusterIP and the targetPort on the pods{works}.",
            f"Probe {hostport(address, sp)} (the Service's port; `kubectl get svc` shows it as "
            f"PORT).",
        )
    if found.variant == "cluster-ip-outside":
        outside = "; ".join(
            f"{c.source} has no route to {address}"
            for c in found.failing
            if "routes" in row_facts(source_info(result, c.source))
            and route_for(address, row_facts(source_info(result, c.source)).get("routes")) is None
        )
        return Words(
            f"{found.subject} fails {where}: {address} is the ClusterIP of Service {svc}, "
            "reachable only inside the cluster",
            f"{at} is the ClusterIP of Service {svc} ({seen}). ClusterIPs are virtual addresses "
            "that kube-proxy translates on the nodes: only pods and nodes (or hosts that route "
            "the service CIDR to a node) reach them"
            + (f"; {outside}" if outside else "")
            + "."
            + (f" From outside the cluster use the nodePort {np} on a node{works}." if np else ""),
            (f"Use the nodePort ({f['suggested'][0]})" if f["suggested"] else "Use a NodePort")
            + ", port-forward, or run the probe in a pod of the cluster.",
        )
    if found.variant == "pod-not-ready":
        ready = [s.split(":")[0] for s in f["suggested"]]
        return Words(
            f"{found.subject} fails {where}: {address} is pod {f['pod'] or address} of Service "
            f"{svc}, which is not ready",
            f"{address} is a not-ready endpoint of Service {svc} ({seen}): the Service sends it "
            "no traffic, and the pod may not serve yet (failing its readiness probe, or still "
            "starting)." + (f" Its ready endpoints: {listing(ready)}{works}." if ready else ""),
            f"`kubectl describe pod {f['pod'] or address}` (readiness probe, events); probe the "
            "Service or a ready endpoint instead.",
        )
    return Words(
        f"{found.subject} fails {where}: pod {address} of Service {svc} serves targetPort {tp}, "
        f"not {port}",
        f"{address} is a ready endpoint of Service {svc}; {mapping} ({seen}). The pod listens "
        f"on the targetPort{works}.",
        f"Probe {hostport(address, tp)} (the targetPort), or the Service's port {sp} on its "
        "ClusterIP.",
    )
