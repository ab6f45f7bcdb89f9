"""What the API server says about a Service's surroundings: its endpoints, the nodes, the pods
its selector matches, the NetworkPolicies of its namespace; looked up side by side, each
failure kept as that lookup's error (the columns that needed it say so)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from ...facts import NodeFact
from ...kube import KubeApiError, KubeClient, explain
from ...spec.targets import Via
from .endpoints import Endpoint, endpoints_from_slices, endpoints_from_v1


@dataclass(frozen=True)
class ServiceRef:
    """Which Service: its namespace, its name and its selector as `k=v,...` text."""

    namespace: str
    name: str
    selector: str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Lookups:
    """What the API server said about the Service's surroundings; errors per lookup."""

    endpoints: list[Endpoint] | None = None
    endpoints_source: str | None = None
    nodes: list[NodeFact] | None = None
    pods: list[Mapping[str, Any]] | None = None
    policies: list[Mapping[str, Any]] | None = None
    errors: dict[str, str] | None = None

    def fail(self, what: str, message: str) -> None:
        self.errors = {**(self.errors or {}), what: message}

    @property
    def ready(self) -> list[Endpoint]:
        """The endpoints traffic goes to: ready, with the port of the Service port."""
        return [e for e in self.endpoints or [] if e.ready and e.port is not None]

    @property
    def not_ready(self) -> list[Endpoint]:
        return [e for e in self.endpoints or [] if not e.ready or e.port is None]

    def no_ready_message(self, service: ServiceRef) -> str:
        """Why there is no ready endpoint to probe."""
        if self.endpoints is None:
            return (self.errors or {}).get("endpoints", "the endpoints could not be read")
        not_ready = self.not_ready
        if not_ready:
            listing = ", ".join(e.ip + (f" ({e.pod})" if e.pod else "") for e in not_ready[:5]) + (
                ", ..." if len(not_ready) > 5 else ""
            )
            return (
                f"Service {service} has no ready endpoint ({len(not_ready)} not ready: {listing})"
            )
        return f"Service {service} has no endpoint at all (its selector matches no running pod)"


async def lookup(
    kube: KubeClient, ref: ServiceRef, port_name: str | None, vias: Sequence[Via]
) -> Lookups:
    """Every look-up the columns of `ref` may need, side by side."""
    asking = _Asking(kube, ref, port_name)
    async with anyio.create_task_group() as group:
        group.start_soon(asking.endpoints)
        group.start_soon(asking.policies)
        if "node-port" in vias:
            group.start_soon(asking.nodes)
        if ref.selector:
            group.start_soon(asking.pods)
    return asking.found


@dataclass
class _Asking:
    """The look-ups of one Service, each filling `found` (or its error) on its own."""

    kube: KubeClient
    ref: ServiceRef
    port_name: str | None
    found: Lookups = field(default_factory=Lookups)

    async def endpoints(self) -> None:
        kube, found, port_name = self.kube, self.found, self.port_name
        namespace, service = self.ref.namespace, self.ref.name
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

    async def nodes(self) -> None:
        kube = self.kube
        try:
            data = await kube.get(kube.core.list_node)
        except Exception as exc:
            self.found.fail("nodes", explain(exc, kube, "listing the nodes"))
            return
        self.found.nodes = [node_fact(item) for item in data.get("items") or []]

    async def pods(self) -> None:
        kube, selector = self.kube, self.ref.selector
        try:
            data = await kube.get(
                kube.core.list_namespaced_pod, self.ref.namespace, label_selector=selector
            )
        except Exception as exc:
            self.found.fail("pods", explain(exc, kube, f"listing the pods matching {selector}"))
            return
        self.found.pods = list(data.get("items") or [])

    async def policies(self) -> None:
        kube = self.kube
        try:
            data = await kube.get(
                kube.networking.list_namespaced_network_policy, self.ref.namespace
            )
        except Exception as exc:
            self.found.fail("network_policies", explain(exc, kube, "listing the NetworkPolicies"))
            return
        self.found.policies = list(data.get("items") or [])


def node_fact(node: Mapping[str, Any]) -> NodeFact:
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
    return NodeFact(
        name=(node.get("metadata") or {}).get("name"),
        internal_ips=[a["address"] for a in addresses if a.get("type") == "InternalIP"],
        external_ips=[a["address"] for a in addresses if a.get("type") == "ExternalIP"],
        ready=ready,
    )


async def not_found(kube: KubeClient, ref: ServiceRef) -> str:
    """A 404's words, with the Services the namespace does have (a typo is the usual cause)."""
    service, namespace = ref.name, ref.namespace
    message = f"Service {namespace}/{service} not found (`kubectl get svc -n {namespace}`)"
    try:
        data = await kube.get(kube.core.list_namespaced_service, namespace, limit=50)
    except Exception as exc:  # the 404 stands; why no names follow it is said too (RBAC)
        return f"{message}; {explain(exc, kube, f'listing the Services in {namespace}')}"
    items = data.get("items") or []
    names = [str(n) for n in ((i.get("metadata") or {}).get("name") for i in items) if n]
    return message + (
        f"; Services in {namespace}: {', '.join(names)}"
        if names
        else f"; namespace {namespace} has no Service"
    )
