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

from collections.abc import Mapping
from typing import Any

from ...facts import ServiceFacts
from ...kube import KubeApiError, KubeError, explain
from ...model import Column, RunContext
from ...spec.targets import KubernetesServiceSpec
from .columns import ColumnBuilder, ServiceColumns
from .lookups import Lookups, ServiceRef, lookup, not_found
from .policies import policy_facts
from .ports import choose_port, container_port_names, port_facts, selector_text

__all__ = ["resolve_kubernetes_service"]

LISTED_ADDRESSES = 50  # addresses named in facts; counts are always complete


async def resolve_kubernetes_service(
    name: str, spec: KubernetesServiceSpec, context: RunContext
) -> list[Column]:
    """One column per `via`, each either probe-ready or carrying why it cannot be."""
    vias = spec.vias()
    facts = ServiceFacts(service=spec.service, namespace=spec.namespace)
    try:
        kube = await context.kube.client()
    except KubeError as exc:
        return [ColumnBuilder(name, spec, facts).failed(via, str(exc)) for via in vias]
    ref = ServiceRef(spec.namespace or kube.namespace, spec.service)
    facts.update(
        ServiceFacts(
            namespace=ref.namespace,
            api_server=kube.server,
            context=kube.context_name,
            config=kube.origin,
        )
    )
    builder = ColumnBuilder(name, spec, facts)
    try:
        service = await kube.get(kube.core.read_namespaced_service, ref.name, ref.namespace)
    except KubeApiError as exc:
        if exc.status == 404:
            message = await not_found(kube, ref)
        else:
            message = explain(exc, kube, f"reading Service {ref}")
        return [builder.failed(via, message) for via in vias]
    except Exception as exc:
        return [builder.failed(via, explain(exc, kube, f"reading Service {ref}")) for via in vias]

    svc = service.get("spec") or {}
    ports = list(svc.get("ports") or [])
    selector = svc.get("selector") or None
    ref = ServiceRef(ref.namespace, ref.name, selector_text(selector))
    facts.update(
        ServiceFacts(
            type=svc.get("type", "ClusterIP"),
            cluster_ip=svc.get("clusterIP"),
            selector=dict(selector) if selector else None,
            ports=port_facts(ports),
        )
    )
    if svc.get("type") == "ExternalName":
        facts["external_name"] = svc.get("externalName")
    chosen, problem = choose_port(ports, spec.port, str(ref))
    if chosen is None:
        return [builder.failed(via, problem or "no port") for via in vias]
    port_name = chosen.get("name") or None
    facts.update(ServiceFacts(service_port=int(chosen["port"]), port_name=port_name))
    found = await lookup(kube, ref, port_name, vias)
    facts.update(_lookup_facts(found, chosen, selector))
    service_columns = ServiceColumns(builder, kube, context, ref, svc, chosen, found)
    return [await service_columns.column(via) for via in vias]


def _lookup_facts(
    found: Lookups, chosen: Mapping[str, Any], selector: Mapping[str, str] | None
) -> ServiceFacts:
    """What the look-ups add to the Service's facts: endpoints, pods, nodes, policies."""
    ready, not_ready = found.ready, found.not_ready
    target_port: int | str | None = next((e.port for e in ready), None)
    if target_port is None:
        target_port = chosen.get("targetPort", int(chosen["port"]))
    facts = ServiceFacts(
        target_port=target_port,
        node_port=chosen.get("nodePort"),
        endpoints_from=found.endpoints_source,
    )
    if found.endpoints is not None:
        facts.update(
            ServiceFacts(
                ready=len(ready),
                not_ready=len(not_ready),
                ready_addresses=[e.ip for e in ready[:LISTED_ADDRESSES]],
                not_ready_addresses=[e.fact() for e in not_ready[:LISTED_ADDRESSES]],
                backend_pods=sorted({e.pod for e in [*ready, *not_ready] if e.pod}),
            )
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
        names |= container_port_names(found.pods or [], target_port)
        number = target_port if isinstance(target_port, int) else None
        facts["network_policies"] = policy_facts(found.policies, pod_labels, number, names)
    if found.errors:
        facts["errors"] = found.errors
    return facts
