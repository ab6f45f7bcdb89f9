"""The kubernetes-service target: a Service looked up live, one column per way of reaching it.

cluster-ip   spec.clusterIP (all clusterIPs when dual-stack) on the Service port
node-port    every node's InternalIP and ExternalIP on the nodePort: one column, each address
             connected to and recorded
dns          <service>.<namespace>.svc.<cluster domain>, resolved by the source
dns-short    <service> alone, resolved by the source through its search list: it works only
             from pods of the same namespace, which is exactly what users type and get wrong
endpoints    every ready address of the Service's EndpointSlices on the targetPort
port-forward a tunnel through the API server to one ready pod, on 127.0.0.1 for the run

The facts behind the columns (ports, selector, ready and not-ready endpoints, nodes, the
NetworkPolicies selecting the pods and whether they let the port in) go into every column's
facts for the diagnosis. Nothing here raises for a cluster's state or an API failure: the
affected columns get an error instead, and the rest of the matrix runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from ..agent.address import hostport
from ..agent.plans import Plan
from ..kube import CHANNEL_PROTOCOL, KubeApiError, KubeClient, KubeError, explain
from ..model import Column, RunContext
from ..spec.targets import KubernetesServiceSpec, Via
from ..status import Status
from .portforward import PortForward

LISTED_ADDRESSES = 50  # addresses named in facts; counts are always complete
TUNNELLED = ("port-forward",)


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int | None
    ready: bool
    serving: bool | None = None
    terminating: bool | None = None
    pod: str | None = None
    node: str | None = None

    def fact(self) -> dict[str, Any]:
        found: dict[str, Any] = {"ip": self.ip, "port": self.port}
        for key in ("pod", "node", "serving", "terminating"):
            value = getattr(self, key)
            if value is not None:
                found[key] = value
        return found


def _describe_port(port: Mapping[str, Any]) -> str:
    name = port.get("name")
    text = f"{name} {port.get('port')}" if name else str(port.get("port"))
    text += f"->{port.get('targetPort', port.get('port'))}/{port.get('protocol', 'TCP')}"
    if port.get("nodePort"):
        text += f" nodePort {port['nodePort']}"
    return text


def choose_port(
    ports: Sequence[Mapping[str, Any]], wanted: int | str | None, service: str
) -> tuple[Mapping[str, Any] | None, str | None]:
    """The Service port a target means: (port, None), or (None, why not)."""
    listing = ", ".join(_describe_port(p) for p in ports) or "none"
    if not ports:
        return None, f"Service {service} declares no port"
    if wanted is None:
        chosen: Mapping[str, Any] | None = ports[0]
    elif isinstance(wanted, int):
        chosen = next((p for p in ports if p.get("port") == wanted), None)
        if chosen is None:
            hint = ""
            if any(p.get("nodePort") == wanted for p in ports):
                hint = f"; {wanted} is a nodePort: name the Service port (via node-port uses it)"
            elif any(p.get("targetPort") == wanted for p in ports):
                hint = f"; {wanted} is a targetPort (the pods' port): name the Service port"
            return None, f"Service {service} has no port {wanted} (its ports: {listing}){hint}"
    else:
        chosen = next((p for p in ports if p.get("name") == wanted), None)
        if chosen is None:
            return None, f"Service {service} has no port named {wanted!r} (its ports: {listing})"
    if chosen is not None and str(chosen.get("protocol", "TCP")).upper() != "TCP":
        return None, (
            f"Service {service} port {_describe_port(chosen)} is not TCP: probe-engine probes "
            "TCP (and HTTP over it)"
        )
    return chosen, None


def _selector_text(selector: Mapping[str, Any] | None) -> str | None:
    if not selector:
        return None
    return ",".join(f"{key}={value}" for key, value in selector.items())


def endpoints_from_slices(
    slices: Sequence[Mapping[str, Any]], port_name: str | None
) -> list[Endpoint]:
    """Every address of the Service's EndpointSlices, with the port of the named Service port
    (a named targetPort may resolve to different numbers per pod, so per slice)."""
    # The same endpoint may sit in two slices for a moment (while they are rebalanced).
    found: dict[tuple[str, int | None, str | None], Endpoint] = {}
    for item in slices:
        if item.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
            continue  # FQDN slices name hosts, not addresses
        port = next(
            (
                p.get("port")
                for p in item.get("ports") or []
                if (p.get("name") or "") == (port_name or "")
            ),
            None,
        )
        for entry in item.get("endpoints") or []:
            conditions = entry.get("conditions") or {}
            ref = entry.get("targetRef") or {}
            for address in entry.get("addresses") or []:
                endpoint = Endpoint(
                    ip=str(address),
                    port=int(port) if isinstance(port, int) else None,
                    # "nil should be interpreted as ready" (EndpointConditions)
                    ready=conditions.get("ready") is not False,
                    serving=conditions.get("serving"),
                    terminating=conditions.get("terminating"),
                    pod=ref.get("name") if ref.get("kind") == "Pod" else None,
                    node=entry.get("nodeName"),
                )
                found.setdefault((endpoint.ip, endpoint.port, endpoint.pod), endpoint)
    return list(found.values())


def endpoints_from_v1(endpoints: Mapping[str, Any], port_name: str | None) -> list[Endpoint]:
    """The same from a core v1 Endpoints object (clusters without discovery.k8s.io/v1)."""
    found: list[Endpoint] = []
    for subset in endpoints.get("subsets") or []:
        port = next(
            (
                p.get("port")
                for p in subset.get("ports") or []
                if (p.get("name") or "") == (port_name or "")
            ),
            None,
        )
        for key, ready in (("addresses", True), ("notReadyAddresses", False)):
            for address in subset.get(key) or []:
                ref = address.get("targetRef") or {}
                found.append(
                    Endpoint(
                        ip=str(address.get("ip")),
                        port=int(port) if isinstance(port, int) else None,
                        ready=ready,
                        pod=ref.get("name") if ref.get("kind") == "Pod" else None,
                        node=address.get("nodeName"),
                    )
                )
    return found


# --- NetworkPolicies ------------------------------------------------------------------------


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector ({matchLabels, matchExpressions}); an empty one matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _rule_allows_port(rule: Mapping[str, Any], port: int | None, names: set[str]) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True  # no ports: every port
    for item in ports:
        if str(item.get("protocol", "TCP")).upper() != "TCP":
            continue
        value = item.get("port")
        if value is None:
            return True
        if isinstance(value, str) and not value.isdigit():
            if value in names:
                return True
            continue
        low = int(value)
        high = int(item.get("endPort") or low)
        if port is not None and low <= port <= high:
            return True
    return False


def _describe_peer(peer: Mapping[str, Any]) -> str:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        text = f"ipBlock {block.get('cidr')}"
        if block.get("except"):
            text += f" except {', '.join(block['except'])}"
        return text
    parts = []
    if "podSelector" in peer:
        parts.append(f"pods {_describe_selector(peer['podSelector'])}")
    if "namespaceSelector" in peer:
        parts.append(f"namespaces {_describe_selector(peer['namespaceSelector'])}")
    else:
        parts.append("in the policy's namespace")
    return " ".join(parts)


def _describe_selector(selector: Mapping[str, Any] | None) -> str:
    if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
        return "(all)"
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        values = ",".join(expression.get("values") or [])
        terms.append(f"{expression.get('key')} {expression.get('operator')} ({values})".strip())
    return ",".join(terms)


def policy_facts(
    policies: Sequence[Mapping[str, Any]],
    pod_labels: Sequence[Mapping[str, str]],
    port: int | None,
    port_names: set[str],
) -> list[dict[str, Any]]:
    """The NetworkPolicies that select at least one backing pod, and whether they let the
    probed port in (from some peer; which peers is in `allowed_from`)."""
    found = []
    for policy in policies:
        spec = policy.get("spec") or {}
        selected = sum(
            1 for labels in pod_labels if label_selector_matches(spec.get("podSelector"), labels)
        )
        if not selected:
            continue
        rules = spec.get("ingress") or []
        types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))
        fact: dict[str, Any] = {
            "name": (policy.get("metadata") or {}).get("name"),
            "policy_types": types,
            "selects_pods": selected,
            "pod_selector": _describe_selector(spec.get("podSelector")),
        }
        if "Ingress" not in types:
            fact.update(allows_port=True, note="restricts egress only")
        else:
            allowing = [r for r in rules if _rule_allows_port(r, port, port_names)]
            peers = sorted(
                {_describe_peer(p) for r in allowing for p in r.get("from") or []}
                | ({"anywhere"} if any(not r.get("from") for r in allowing) else set())
            )
            fact.update(allows_port=bool(allowing), ingress_rules=len(rules), allowed_from=peers)
        found.append(fact)
    return found


# --- lookups --------------------------------------------------------------------------------


@dataclass
class _Lookups:
    """What the API server said about the Service's surroundings; errors per lookup."""

    endpoints: list[Endpoint] | None = None
    endpoints_source: str | None = None
    nodes: list[dict[str, Any]] | None = None
    pods: list[Mapping[str, Any]] | None = None
    policies: list[Mapping[str, Any]] | None = None
    errors: dict[str, str] | None = None

    def fail(self, what: str, message: str) -> None:
        self.errors = {**(self.errors or {}), what: message}


async def _lookup(
    kube: KubeClient,
    service: str,
    namespace: str,
    selector: str | None,
    port_name: str | None,
    vias: Sequence[Via],
) -> _Lookups:
    found = _Lookups()

    async def endpoints() -> None:
        doing = f"listing the EndpointSlices of Service {namespace}/{service}"
        try:
            data = await kube.get(
                kube.discovery.list_namespaced_endpoint_slice,
                namespace,
                label_selector=f"kubernetes.io/service-name={service}",
            )
            found.endpoints = endpoints_from_slices(data.get("items") or [], port_name)
            found.endpoints_source = "EndpointSlice"
            return
        except KubeApiError as exc:
            if exc.status != 404:  # 404: no discovery.k8s.io/v1 here; v1 Endpoints below
                found.fail("endpoints", explain(exc, kube, doing))
                return
        except Exception as exc:
            found.fail("endpoints", explain(exc, kube, doing))
            return
        doing = f"reading the Endpoints of Service {namespace}/{service}"
        try:
            data = await kube.get(kube.core.read_namespaced_endpoints, service, namespace)
            found.endpoints = endpoints_from_v1(data, port_name)
            found.endpoints_source = "Endpoints"
        except KubeApiError as exc:
            if exc.status == 404:
                found.endpoints, found.endpoints_source = [], "Endpoints"
            else:
                found.fail("endpoints", explain(exc, kube, doing))
        except Exception as exc:
            found.fail("endpoints", explain(exc, kube, doing))

    async def nodes() -> None:
        try:
            data = await kube.get(kube.core.list_node)
        except Exception as exc:
            found.fail("nodes", explain(exc, kube, "listing the nodes"))
            return
        found.nodes = [_node_fact(item) for item in data.get("items") or []]

    async def pods() -> None:
        try:
            data = await kube.get(kube.core.list_namespaced_pod, namespace, label_selector=selector)
        except Exception as exc:
            found.fail("pods", explain(exc, kube, f"listing the pods matching {selector}"))
            return
        found.pods = list(data.get("items") or [])

    async def policies() -> None:
        try:
            data = await kube.get(kube.networking.list_namespaced_network_policy, namespace)
        except Exception as exc:
            found.fail("network_policies", explain(exc, kube, "listing the NetworkPolicies"))
            return
        found.policies = list(data.get("items") or [])

    async with anyio.create_task_group() as group:
        group.start_soon(endpoints)
        group.start_soon(policies)
        if "node-port" in vias:
            group.start_soon(nodes)
        if selector:
            group.start_soon(pods)
    return found


def _node_fact(node: Mapping[str, Any]) -> dict[str, Any]:
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    ready = next(
        (
            c.get("status") == "True"
            for c in status.get("conditions") or []
            if c.get("type") == "Ready"
        ),
        None,
    )
    return {
        "name": (node.get("metadata") or {}).get("name"),
        "internal_ips": [a["address"] for a in addresses if a.get("type") == "InternalIP"],
        "external_ips": [a["address"] for a in addresses if a.get("type") == "ExternalIP"],
        "ready": ready,
    }


# --- columns --------------------------------------------------------------------------------


class _Builder:
    """Makes the columns of one target, all sharing its facts."""

    def __init__(self, name: str, spec: KubernetesServiceSpec, facts: dict[str, Any]) -> None:
        self.name = name
        self.spec = spec
        self.facts = facts

    def failed(
        self, via: Via, message: str, status: Status = "target-error", **extra: Any
    ) -> Column:
        return Column(
            name=f"{self.name}/{via}",
            target_name=self.name,
            kind="kubernetes-service",
            endpoint=f"{self.spec.service} via {via}",
            plan=None,
            timeout=self.spec.timeout,
            via=via,
            facts={**self.facts, "via": via, **extra},
            error=(status, message),
        )

    def probe(
        self, via: Via, host: str, port: int, addresses: Sequence[str] = (), **extra: Any
    ) -> Column:
        spec = self.spec
        plan = Plan(kind="tcp", host=host, port=port, family="any")
        shown = list(addresses) or [host]
        endpoint = ", ".join(hostport(a, port) for a in shown[:4])
        if len(shown) > 4:
            endpoint += f" (+{len(shown) - 4} more)"
        if spec.path is not None:
            url = f"{spec.scheme}://{hostport(host, port)}{spec.path}"
            plan = Plan(
                kind="http",
                host=host,
                port=port,
                family="any",
                url=url,
                method=spec.method,
                expect_status=spec.expect_status,
                headers=dict(spec.headers),
                verify=spec.verify_tls,
            )
            endpoint = url if len(shown) == 1 else f"{url} ({len(shown)} addresses)"
        if addresses:
            plan["addresses"] = list(addresses)
        return Column(
            name=f"{self.name}/{via}",
            target_name=self.name,
            kind="kubernetes-service",
            endpoint=endpoint,
            plan=plan,
            timeout=spec.timeout,
            via=via,
            facts={**self.facts, "via": via, "probed_port": port, **extra},
            # Only the machine running the engine can reach its loopback: remote sources
            # (pods, containers, namespaces) must not probe this address in their own.
            local_only=via in TUNNELLED,
        )


async def resolve_kubernetes_service(
    name: str, spec: KubernetesServiceSpec, context: RunContext
) -> list[Column]:
    """One column per `via`, each either probe-ready or carrying why it cannot be."""
    vias = spec.vias()
    facts: dict[str, Any] = {"service": spec.service, "namespace": spec.namespace}
    try:
        kube = await context.kube.client()
    except KubeError as exc:
        builder = _Builder(name, spec, facts)
        return [builder.failed(via, str(exc)) for via in vias]
    namespace = spec.namespace or kube.namespace
    facts.update(namespace=namespace, **kube.describe())
    builder = _Builder(name, spec, facts)
    where = f"{namespace}/{spec.service}"
    try:
        service = await kube.get(kube.core.read_namespaced_service, spec.service, namespace)
    except KubeApiError as exc:
        if exc.status == 404:
            message = await _not_found(kube, spec.service, namespace)
        else:
            message = explain(exc, kube, f"reading Service {where}")
        return [builder.failed(via, message) for via in vias]
    except Exception as exc:
        return [builder.failed(via, explain(exc, kube, f"reading Service {where}")) for via in vias]

    svc = service.get("spec") or {}
    ports = list(svc.get("ports") or [])
    selector = svc.get("selector") or None
    selector_text = _selector_text(selector)
    facts.update(
        type=svc.get("type", "ClusterIP"),
        cluster_ip=svc.get("clusterIP"),
        selector=dict(selector) if selector else None,
        ports=[
            {
                "name": p.get("name"),
                "port": p.get("port"),
                "targetPort": p.get("targetPort", p.get("port")),
                "nodePort": p.get("nodePort"),
                "protocol": p.get("protocol", "TCP"),
            }
            for p in ports
        ],
    )
    if svc.get("type") == "ExternalName":
        facts["external_name"] = svc.get("externalName")
    chosen, problem = choose_port(ports, spec.port, where)
    if chosen is None:
        return [builder.failed(via, problem or "no port") for via in vias]
    port_name = chosen.get("name") or None
    service_port = int(chosen["port"])
    facts.update(service_port=service_port, port_name=port_name)

    found = await _lookup(kube, spec.service, namespace, selector_text, port_name, vias)
    endpoints = found.endpoints or []
    ready = [e for e in endpoints if e.ready and e.port is not None]
    not_ready = [e for e in endpoints if not e.ready or e.port is None]
    target_port: int | str | None = next((e.port for e in ready), None)
    if target_port is None:
        target_port = chosen.get("targetPort", service_port)
    facts.update(
        target_port=target_port,
        node_port=chosen.get("nodePort"),
        endpoints_from=found.endpoints_source,
    )
    if found.endpoints is not None:
        facts.update(
            ready=len(ready),
            not_ready=len(not_ready),
            ready_addresses=[e.ip for e in ready[:LISTED_ADDRESSES]],
            not_ready_addresses=[e.fact() for e in not_ready[:LISTED_ADDRESSES]],
        )
    if found.pods is not None:
        facts["pods"] = len(found.pods)
    if found.nodes is not None:
        facts["nodes"] = found.nodes
    if found.policies is not None:
        pod_labels = (
            [(p.get("metadata") or {}).get("labels") or {} for p in found.pods]
            if found.pods is not None
            else ([dict(selector)] if selector else [])
        )
        names = {str(chosen["targetPort"])} if isinstance(chosen.get("targetPort"), str) else set()
        names |= _container_port_names(found.pods or [], target_port)
        number = target_port if isinstance(target_port, int) else None
        facts["network_policies"] = policy_facts(found.policies, pod_labels, number, names)
    if found.errors:
        facts["errors"] = found.errors

    columns = []
    for via in vias:
        columns.append(
            await _column(via, builder, kube, context, svc, chosen, found, ready, not_ready)
        )
    return columns


def _container_port_names(pods: Sequence[Mapping[str, Any]], number: Any) -> set[str]:
    names = set()
    for pod in pods:
        for container in (pod.get("spec") or {}).get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("containerPort") == number and port.get("name"):
                    names.add(str(port["name"]))
    return names


async def _not_found(kube: KubeClient, service: str, namespace: str) -> str:
    message = f"Service {namespace}/{service} not found (`kubectl get svc -n {namespace}`)"
    try:
        data = await kube.get(kube.core.list_namespaced_service, namespace, limit=50)
    except Exception:
        return message
    items = data.get("items") or []
    names = [str(n) for n in ((i.get("metadata") or {}).get("name") for i in items) if n]
    return message + (
        f"; Services in {namespace}: {', '.join(names)}"
        if names
        else f"; namespace {namespace} has no Service"
    )


def _no_ready_message(
    service: str, ready: Sequence[Endpoint], not_ready: Sequence[Endpoint], found: _Lookups
) -> str:
    if found.endpoints is None:
        return (found.errors or {}).get("endpoints", "the endpoints could not be read")
    if not_ready:
        listing = ", ".join(e.ip + (f" ({e.pod})" if e.pod else "") for e in not_ready[:5]) + (
            ", ..." if len(not_ready) > 5 else ""
        )
        return f"Service {service} has no ready endpoint ({len(not_ready)} not ready: {listing})"
    return f"Service {service} has no endpoint at all (its selector matches no running pod)"


async def _column(
    via: Via,
    builder: _Builder,
    kube: KubeClient,
    context: RunContext,
    svc: Mapping[str, Any],
    chosen: Mapping[str, Any],
    found: _Lookups,
    ready: Sequence[Endpoint],
    not_ready: Sequence[Endpoint],
) -> Column:
    facts = builder.facts
    where = f"{facts['namespace']}/{facts['service']}"
    service_port = int(chosen["port"])
    kind = svc.get("type", "ClusterIP")
    cluster_ip = svc.get("clusterIP")
    headless = cluster_ip in (None, "", "None")
    if kind == "ExternalName" and via != "dns":
        return builder.failed(
            via,
            f"Service {where} is an ExternalName Service ({svc.get('externalName')}): only "
            "via dns applies",
        )
    if via == "cluster-ip":
        if headless:
            return builder.failed(
                via, f"Service {where} is headless (clusterIP: None): use dns or endpoints"
            )
        addresses = [a for a in svc.get("clusterIPs") or [] if a and a != "None"]
        extra = addresses if len(addresses) > 1 else ()
        return builder.probe(via, str(cluster_ip), service_port, extra)
    if via == "node-port":
        node_port = chosen.get("nodePort")
        if not node_port:
            return builder.failed(
                via, f"Service {where} is of type {kind}: its port {service_port} has no nodePort"
            )
        if found.nodes is None:
            return builder.failed(via, (found.errors or {}).get("nodes", "no nodes"))
        addresses = list(
            dict.fromkeys(
                [ip for n in found.nodes for ip in n["internal_ips"]]
                + [ip for n in found.nodes for ip in n["external_ips"]]
            )
        )
        if not addresses:
            return builder.failed(via, "no node has an InternalIP or ExternalIP address")
        return builder.probe(via, addresses[0], int(node_port), addresses)
    if via in ("dns", "dns-short"):
        name = str(facts["service"])
        if via == "dns":
            name += f".{facts['namespace']}.svc.{kube.settings.cluster_domain}"
        # A headless Service's name resolves to the pods themselves: probe their port.
        first = ready[0].port if headless and ready else None
        return builder.probe(via, name, first or service_port, dns_name=name)
    if via == "endpoints":
        if not ready:
            return builder.failed(via, _no_ready_message(where, ready, not_ready, found))
        port = int(ready[0].port or 0)  # `ready` holds endpoints with a port only
        same = [e.ip for e in ready if e.port == port]
        others = sorted({e.port for e in ready if e.port != port and e.port is not None})
        more: dict[str, Any] = {"other_target_ports": others} if others else {}
        return builder.probe(via, same[0], port, same, **more)
    return await _port_forward(builder, kube, context, where, ready, not_ready, found)


async def _port_forward(
    builder: _Builder,
    kube: KubeClient,
    context: RunContext,
    where: str,
    ready: Sequence[Endpoint],
    not_ready: Sequence[Endpoint],
    found: _Lookups,
) -> Column:
    via: Via = "port-forward"
    target = next((e for e in ready if e.pod and e.port is not None), None)
    if target is None:
        if ready:
            return builder.failed(via, f"no ready endpoint of Service {where} names its pod")
        return builder.failed(via, _no_ready_message(where, ready, not_ready, found))
    pod, port = str(target.pod), int(target.port or 0)
    namespace = str(builder.facts["namespace"])

    async def open_ws() -> Any:
        return await kube.ws_core.connect_get_namespaced_pod_portforward(
            pod,
            namespace,
            ports=str(port),
            _preload_content=False,
            _headers={"sec-websocket-protocol": CHANNEL_PROTOCOL},
        )

    tunnel = PortForward(open_ws, pod, namespace, port, handshake_timeout=kube.timeout)
    await context.resources.enter_async_context(tunnel)
    live = tunnel.live
    try:
        verdict = await tunnel.check()
    except Exception as exc:
        message = explain(exc, kube, f"port-forward to pod {namespace}/{pod} port {port}")
        return builder.failed(via, message, port_forward=live)
    if verdict is not None:
        status, message = verdict
        return builder.failed(via, message, status=status, port_forward=live)
    return builder.probe(via, tunnel.host, tunnel.port, port_forward=live)
