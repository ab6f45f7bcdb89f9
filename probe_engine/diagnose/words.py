"""Every finding's words, in one place: one phrase per rule id, all with one signature
`(cause, result) -> Words`, registered in PHRASES.

Rules find (cause.py: subject, failing and contrasting cells, facts); this module says. The
shared grammar (grammar.py) counts sources the same way everywhere ("from 2 of 4 sources that
probed it"), and the clause readers (phrasing.py: what an errno means; differences.py and
service_causes.py: what two rows' or a Service's facts mean) give every rule the same
sentence for the same fact. A title states what fails and from where; the detail names each
source once and never contradicts the title.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from ..agent.address import hostport
from ..facts import ServicePortFact
from ..results import CellResult, CheckRecord, MatrixResult, SourceInfo, TargetInfo
from .cause import Cause
from .cells import first_failure, hops, host_of, source_info, target_info
from .differences import Difference
from .facts import route_for, row_facts, service_facts_of, service_ports
from .grammar import capitalised, listing, plural, port_ranges, scope, verb
from .no_proxy import NoProxyFix
from .phrasing import (
    CLIENT_RULES,
    DNS_REASONS,
    column_words,
    dns_meaning,
    dns_next_step,
    failure_words,
    meaning,
    next_step,
    route,
    why_direct,
)
from .service_causes import Cause as ServiceCause
from .service_causes import causes as service_causes
from .via_differs import Row


class Words(NamedTuple):
    title: str
    detail: str
    next_step: str


Phrase = Callable[[Cause, MatrixResult], Words]


def rows_total(result: MatrixResult) -> int:
    """How many rows the matrix has (the denominator of 'from all 4 sources')."""
    return len(result.sources) or len({c.source for c in result.cells})


def _sources(cells: Sequence[CellResult]) -> list[str]:
    return list(dict.fromkeys(c.source for c in cells))


def _outcomes(
    cells: Sequence[CellResult], key: Callable[[CellResult], str]
) -> dict[str, list[str]]:
    """words -> the sources (or targets) that saw them, each once."""
    groups: dict[str, dict[str, None]] = {}
    for cell in cells:
        groups.setdefault(column_words(cell), {})[key(cell)] = None
    return {words: list(names) for words, names in groups.items()}


# --- cut-short ------------------------------------------------------------------------------

DOING = {
    "dns": "resolving their names",
    "tcp": "connecting (no answer to the SYN yet)",
    "http": "waiting for the HTTP answer",
}
CUT_STEPS = {
    "dns": "The resolver did not answer in time: check the nameservers these sources use "
    "(/etc/resolv.conf), or give the run a longer --deadline.",
    "tcp": "Nothing answered the connects: a host that is down or a firewall dropping them, "
    "or a run whose --deadline is shorter than the cells' timeout.",
    "http": "These servers accepted the connection but did not answer: look at the service "
    "(a blocked worker, a full queue), or give the run a longer --deadline.",
}


def cut_short(found: Cause, result: MatrixResult) -> Words:
    phase = str(found.facts["phase"])
    cells = found.failing
    longest: CellResult = found.context["longest"]
    by = "an interrupt" if found.facts["cut_by"] == "interrupt" else "the run's deadline"
    doing = DOING.get(phase, phase)
    pairs = [f"{c.source} -> {c.target}" for c in cells]
    said = longest.message.split(": ", 1)[-1] if longest.message else phase
    return Words(
        f"{plural(len(cells), 'cell')} {verb(len(cells), 'was', 'were')} cut while {doing}: "
        f"{listing([c.target for c in cells])}",
        f"{capitalised(by)} cut {listing(pairs)} while {doing}; {longest.source} -> "
        f"{longest.target} had been at it {found.facts['longest_ms']:.0f} ms ({said}).",
        CUT_STEPS.get(phase, "Give the run a longer --deadline."),
    )


# --- container-network ----------------------------------------------------------------------


def container_network(found: Cause, result: MatrixResult) -> Words:
    facts = found.facts
    row, container, network = str(facts["row"]), str(facts["container"]), str(facts["network"])
    # A fanned-out row (SOURCE/CONTAINER) already names its container.
    named = row == container or row.endswith(f"/{container}")
    who = row if named else f"{row} (container {container})"
    attached = list(facts["attached_networks"])
    if attached:
        on = f"{who} is attached to {listing(attached)} only"
    elif found.context["network_mode"] == "none":
        on = f"{who} has no network at all (network mode none)"
    else:
        on = f"{who} is attached to no network"
    where: list[str] = []
    by_subnet: dict[str, list[str]] = {}
    for _cell, key, entry in found.context["items"]:
        if entry.get("how") == "name":
            text = (
                f"the name {key} belongs to container {entry.get('container') or key} "
                f"({entry.get('address')}) on {network}, and Docker's embedded DNS answers it "
                "only on networks both containers share"
            )
            if text not in where:
                where.append(text)
        elif key not in by_subnet.setdefault(str(entry.get("subnet") or ""), []):
            by_subnet[str(entry.get("subnet") or "")].append(key)
    for subnet, keys in by_subnet.items():
        where.insert(
            0,
            f"{listing(keys)} {verb(len(keys), 'is', 'are')} on {network}"
            + (f" ({subnet})" if subnet else ""),
        )
    fails = "; ".join(
        f"{listing(targets)}: {words}"
        for words, targets in _outcomes(found.failing, lambda c: c.target).items()
    )
    detail = f"{on}; {'; '.join(where)}. From {row}: {fails}."
    if found.contrast:
        reached = _sources([*found.contrast])
        targets = list(dict.fromkeys(c.target for c in found.contrast))
        detail += (
            f" From {listing(reached, 3)}, {listing(targets)} "
            f"{verb(len(targets), 'works', 'work')}."
        )
    return Words(
        f"{who} is not attached to network {network}",
        detail,
        f"Attach it: `docker network connect {network} {container}`; with Compose, list "
        f"{network} under the service's `networks:` (declared `external: true` at the top "
        "level) and recreate the container.",
    )


# --- source-down ----------------------------------------------------------------------------

KIND_HINTS = {
    "process": "Check that the interpreter starts with that environment (`python3 -c pass`).",
    "shell": "Install the tool there, or fix PATH in the source's env.",
    "docker": "Check that the container exists and runs (`docker ps -a`), and that it has a shell.",
    "kubernetes": "Check that the pods exist and run, and that exec is allowed (RBAC pods/exec).",
    "netns": "Check that the namespace exists (`ip netns list`) and that the run has root.",
}


def source_down(found: Cause, result: MatrixResult) -> Words:
    if found.variant == "could-not-run":
        rows = list(found.facts["rows"])
        message = str(found.facts["message"])
        return Words(
            f"{listing(rows)} could not run {verb(len(rows), 'its', 'their')} probes: {message}",
            f"All {plural(len(found.failing), 'cell')} of {listing(rows)} are source-error: "
            f"{message}. Nothing is known about the network from there until the probe can run.",
            KIND_HINTS.get(str(found.facts["kind"]), "Fix what the message says, then run again."),
        )
    row = found.subject
    pairs: list[tuple[CellResult, CellResult]] = found.context["pairs"]
    goods: list[str] = found.context["goods"]
    differences: list[Difference] = found.context["differences"]
    proxied: CellResult | None = found.context["proxied"]
    causes: list[str] = []
    step = None
    if proxied is not None:
        proxy = proxied.proxy
        assert proxy is not None
        failed = first_failure(proxied)
        causes.append(
            f"every HTTP request from {row} goes through {proxy.variable}={proxy.url} "
            f"({CLIENT_RULES.get(proxy.client, proxy.client)}) and that proxy fails"
            + (f" ({failed.errno_name})" if failed and failed.errno_name else "")
        )
        if found.context["proxy_note"]:
            causes.append(found.context["proxy_note"])
        step = (
            f"Fix or unset {proxy.variable} in {proxied.source_name}'s environment, or exempt "
            "the targets in NO_PROXY."
        )
    causes += [d.text for d in differences]
    step = step or next((d.next_step for d in differences if d.next_step), None)
    failures = "; ".join(
        f"{listing(targets)}: {words}"
        for words, targets in _outcomes(found.failing, lambda c: c.target).items()
    )
    reached = "; ".join(
        f"{good} reaches {listing([o.target for _, o in pairs if o.source == good])}"
        for good in goods
    )
    detail = (
        f"From {row}: {failures}. Yet {reached}: the cause lies with {row} (where or how it "
        "runs), not with the targets."
    )
    if causes:
        detail += " What differs: " + "; ".join(causes) + "."
    else:
        detail += (
            " The engine sees no difference in network namespace, routes or proxy settings "
            f"between {row} and {listing(goods)}: {meaning(found.failing[0])}."
        )
    return Words(
        f"Everything from {row} fails ({plural(len(found.failing), 'cell')}) while "
        f"{listing(goods)} {verb(len(goods), 'reaches', 'reach')} the same targets",
        detail,
        step or next_step(found.failing[0]),
    )


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
        + " ".join(f"{via}: {text}." for via, (text, _) in zip(failing, lines, strict=True))
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
    who = listing(_sources([bad, good]))
    return Words(
        f"{at} refused, then accepted {gap:.2f} s later: a readiness race",
        f"From {who}: {bad.target} was refused (ECONNREFUSED) at "
        f"{_clock(found.context['refused_at'])} and {good.target} connected to the same {at} at "
        f"{_clock(found.context['ok_at'])}. Nothing listened at first, then something did: the "
        "service was still starting. Tests started right after a deploy hit the same race.",
        WAIT,
    )


# --- target-down ----------------------------------------------------------------------------

# What a port scan calls a port in each state (nmap's words where they fit).
PORT_STATE = {
    "refused": "closed",
    "timeout": "filtered (no answer)",
    "unreachable": "unreachable",
    "reset": "reset",
}


def target_down(found: Cause, result: MatrixResult) -> Words:
    probed = [c for c in found.failing if c.status != "target-error"]
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
        names = _sources(stopped)
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


# --- proxy-differs --------------------------------------------------------------------------

# Where a row's environment is set, by source kind: the place the variable must go.
WHERE = {
    "local": "this process's environment (in Airflow: the task's env)",
    "process": "{row}'s environment (the task's env)",
    "shell": "{row}'s environment (the shell's env)",
    "netns": "{row}'s environment (the process in the namespace)",
    "docker": "the container's environment ({row}: docker run -e, or environment: in Compose; "
    "recreate the container)",
    "kubernetes": "the pod's environment ({row}: env: of its container in the pod spec; "
    "restart the pods)",
}
# How each client is told to ignore every proxy variable.
NO_PROXIES = {
    "requests": "Session.trust_env = False",
    "httpx": "httpx.Client(trust_env=False)",
    "urllib": "urllib.request.build_opener(urllib.request.ProxyHandler({}))",
    "curl": "curl --noproxy '*'",
}


def where_set(kind: str, row: str) -> str:
    return WHERE.get(kind, "{row}'s environment").format(row=row)


def no_proxy_advice(fix: NoProxyFix, row: str, proxy_variable: str | None) -> str:
    """'Set NO_PROXY=127.0.0.1 in ... (requests also reads a range such as 127.0.0.0/8), or
    ...': only spellings the client's own rules accept."""
    place = where_set(fix.kind, row)
    client = fix.client
    notes = []
    if fix.cidr and client in fix.cidr_clients:
        notes.append(f"{client} also reads a range such as {fix.cidr}")
    elif fix.cidr:
        readers = [c for c in fix.cidr_clients if c != client]
        notes.append(
            f"{client} ignores CIDR ranges in {fix.variable}: list the exact addresses"
            + (f" ({listing(readers)} read ranges)" if readers else "")
        )
    if fix.suffix and client in fix.suffix_clients:
        notes.append(f"or the suffix {fix.suffix} for every name under it")
    note = f"; {'; '.join(notes)}" if notes else ""
    unset = f"Or unset {proxy_variable} there" if proxy_variable else ""
    disable = NO_PROXIES.get(client)
    also = f"disable proxies for {client} ({disable})" if disable else ""
    others = " or ".join(part for part in (unset, also) if part)
    others = capitalised(others) + "." if others else ""
    if fix.value is None:
        return f"No {fix.variable} entry exempts these hosts for {client}. {others}".strip()
    return f"Set {fix.variable}={fix.value} in {place}{note}. {others}".strip()


def proxy_differs(found: Cause, result: MatrixResult) -> Words:
    failed = found.failing[0]
    proxy = failed.proxy
    assert proxy is not None
    source = found.subject
    targets = [c.target for c in found.failing]
    detail = (
        f"{source} {route(failed)} ({CLIENT_RULES.get(proxy.client, proxy.client)}) for "
        f"{listing(targets)}, and is {failure_words(failed)}."
    )
    if found.context["note"]:
        detail += f" Why: {found.context['note']}."
    if found.contrast:
        good = found.contrast[0]
        title = f"{source} fails through a proxy where {good.source} connects directly and succeeds"
        detail += f" {good.source} {route(good)}{why_direct(good.proxy)} and reaches {good.target}."
    else:
        title = f"{source} reaches {listing(targets)} only through a proxy, and that fails"
    return Words(
        title, detail, no_proxy_advice(found.context["fix"], failed.source_name, proxy.variable)
    )


# --- tls-trust ------------------------------------------------------------------------------

# Whom each client trusts, and what it ignores (requests never reads SSL_CERT_FILE; urllib and
# httpx never read REQUESTS_CA_BUNDLE).
CA_RULES = {
    "requests": "requests trusts certifi's bundle unless REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) "
    "names a file or directory; it ignores SSL_CERT_FILE and SSL_CERT_DIR",
    "httpx": "httpx trusts certifi's bundle unless SSL_CERT_FILE (or SSL_CERT_DIR) is set; it "
    "ignores REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE",
    "urllib": "urllib trusts OpenSSL's default store, which SSL_CERT_FILE or SSL_CERT_DIR replace",
    "curl": "curl reads CURL_CA_BUNDLE, else SSL_CERT_DIR, else SSL_CERT_FILE, else its built-in "
    "bundle; it ignores REQUESTS_CA_BUNDLE",
}


def tls_trust(found: Cause, result: MatrixResult) -> Words:
    failed, good = found.failing[0], found.contrast[0]
    assert failed.tls is not None
    assert good.tls is not None
    source, client = found.subject, failed.tls.client
    variable, bundle = found.facts["fix_variable"], found.facts["bundle"]
    targets = listing([c.target for c in found.failing])
    error = failed.tls.verify_error or "the certificate chain was refused"
    detail = (
        f"{source} ({client}) refuses the certificate of {targets}: {error}. It verifies with "
        f"{failed.tls.ca}. {good.source} ({good.tls.client}) verifies the same certificate "
        f"with {good.tls.ca}. {CA_RULES.get(client, f'{client} loads its own CA store')}."
    )
    if failed.tls.issuer:
        detail += f" The server's certificate was issued by {failed.tls.issuer}."
    step = (
        f"Set {variable}={bundle} in {failed.source_name}'s environment"
        if bundle
        else f"Set {variable} in {failed.source_name}'s environment to the CA bundle that "
        f"{good.source} trusts"
    )
    step += f" ({client} reads it), or add that CA to the store {client} uses."
    return Words(
        f"{source} does not trust the certificate {good.source} trusts: {targets}", detail, step
    )


# --- source-differs -------------------------------------------------------------------------


def source_differs(found: Cause, result: MatrixResult) -> Words:
    bad, good = found.subject, found.context["good"]
    differences: list[Difference] = found.context["differences"]
    targets = [c.target for c in found.failing]
    outcome = "; ".join(
        f"{listing(t)}: {w}" for w, t in _outcomes(found.failing, lambda c: c.target).items()
    )
    detail = (
        f"From {bad}: {outcome} ({meaning(found.failing[0])}). From {good} the same "
        f"{verb(len(targets), 'target works', 'targets work')}."
    )
    if found.variant == "tool-only":
        said = next(
            (c.message for f in found.failing for c in f.checks if c.status != "ok" and c.message),
            found.failing[0].message,
        )
        detail += (
            " Both run in the same network namespace and took the same path (addresses, "
            "routes, resolver, proxy decision): the only difference is the tool. "
            f"{differences[0].text}."
        )
        if said:
            detail += f" It said: {said}"
        return Words(
            f"{bad} fails where {good} succeeds on the same path: only the tool differs",
            detail,
            f"The network is not the cause: run {bad}'s tool by hand with its verbose option "
            f"and compare its options (timeouts, retries, proxy, CA) with {good}'s.",
        )
    if differences:
        detail += " What differs: " + "; ".join(d.text for d in differences) + "."
    else:
        detail += (
            f" Nothing {bad} and {good} report differs (network namespace, addresses, routes, "
            "resolver, proxy decision): the failure may depend on timing (a service still "
            "starting, a flapping backend) or on rules the probe cannot see (a firewall "
            "matching the process's user or cgroup)."
        )
    step = next((d.next_step for d in differences if d.next_step), None)
    return Words(
        f"{bad} fails where {good} succeeds: {listing(targets)}",
        detail,
        step or next_step(found.failing[0]),
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


# --- dns-failure ----------------------------------------------------------------------------


def dns_failure(found: Cause, result: MatrixResult) -> Words:
    record: CheckRecord = found.context["record"]
    reason = str(found.facts["reason"])
    sources = _sources(found.failing)
    where = scope(sources, found.context["probed"], rows_total(result))
    return Words(
        f"{found.subject} fails {where}: {record.host} {DNS_REASONS.get(reason, 'fails')} "
        f"({found.facts['code']})",
        f"From {listing(sources)}: {dns_meaning(record)}.",
        dns_next_step(record),
    )


# --- cluster-address ------------------------------------------------------------------------


def cluster_address(found: Cause, result: MatrixResult) -> Words:
    f = found.facts
    address, port, svc = f["address"], f["port"], f["service"]
    sp, tp, np, cip = f["service_port"], f["target_port"], f["node_port"], f["cluster_ip"]
    at = hostport(address, port)
    sources = _sources(found.failing)
    where = scope(sources, found.context["probed"], rows_total(result))
    seen = "; ".join(
        f"{words} from {listing(names)}"
        for words, names in _outcomes(found.failing, lambda c: c.source).items()
    )
    works = ""
    if f["use"] and found.contrast:
        works = f" ({f['use']} is ok from {listing(_sources(found.contrast))})"
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


# --- the registry ---------------------------------------------------------------------------

# --- ping-filtered --------------------------------------------------------------------------


def ping_filtered(found: Cause, result: MatrixResult) -> Words:
    f = found.facts
    address, services = f["address"], f["services"]
    sources = _sources(found.failing)
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


PHRASES: dict[str, Phrase] = {
    "cut-short": cut_short,
    "container-network": container_network,
    "source-down": source_down,
    "via-differs": via_differs,
    "cluster-address": cluster_address,
    "address-family": address_family,
    "search-list": search_list,
    "readiness-race": readiness_race,
    "proxy-differs": proxy_differs,
    "tls-trust": tls_trust,
    "source-differs": source_differs,
    "target-down": target_down,
    "service-facts": service_facts,
    "dns-failure": dns_failure,
    "ping-filtered": ping_filtered,
}


def phrase(found: Cause, result: MatrixResult) -> Words:
    """The words of a cause, by its rule id."""
    return PHRASES[found.rule](found, result)
