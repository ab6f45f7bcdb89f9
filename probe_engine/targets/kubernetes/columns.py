"""The columns of one kubernetes-service target: one per `via`, each probe-ready or carrying
why it cannot be."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...agent.address import hostport
from ...agent.plans import Plan
from ...facts import ServiceFacts
from ...kube import CHANNEL_PROTOCOL, KubeClient, explain
from ...model import Column, RunContext
from ...spec.targets import KubernetesServiceSpec, Via
from ...status import Status
from ..portforward import PodPort, PortForward
from .lookups import Lookups, ServiceRef

TUNNELLED = ("port-forward",)


@dataclass(frozen=True)
class ColumnBuilder:
    """Makes the columns of one target, all sharing its facts."""

    name: str
    spec: KubernetesServiceSpec
    facts: ServiceFacts

    def failed(
        self,
        via: Via,
        message: str,
        status: Status = "target-error",
        extra: ServiceFacts | None = None,
    ) -> Column:
        return Column(
            name=f"{self.name}/{via}",
            target_name=self.name,
            kind="kubernetes-service",
            endpoint=f"{self.spec.service} via {via}",
            plan=None,
            timeout=self.spec.timeout,
            via=via,
            facts=ServiceFacts(**self.facts, via=via, **(extra or {})),
            error=(status, message),
        )

    def probe(
        self,
        via: Via,
        host: str,
        port: int,
        addresses: Sequence[str] = (),
        extra: ServiceFacts | None = None,
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
            facts=ServiceFacts(**self.facts, via=via, probed_port=port, **(extra or {})),
            # Only the machine running the engine can reach its loopback: remote sources
            # (pods, containers, namespaces) must not probe this address in their own.
            local_only=via in TUNNELLED,
        )


@dataclass(frozen=True)
class ServiceColumns:
    """A Service as the API server described it, and how to make each way to it a column."""

    builder: ColumnBuilder
    kube: KubeClient
    context: RunContext
    ref: ServiceRef
    spec: Mapping[str, Any]  # the Service's spec, as the API returned it
    port: Mapping[str, Any]  # the Service port the target means
    found: Lookups

    @property
    def headless(self) -> bool:
        return self.spec.get("clusterIP") in (None, "", "None")

    async def column(self, via: Via) -> Column:
        kind = self.spec.get("type", "ClusterIP")
        if kind == "ExternalName" and via != "dns":
            return self.builder.failed(
                via,
                f"Service {self.ref} is an ExternalName Service ({self.spec.get('externalName')}):"
                " only via dns applies",
            )
        if via == "cluster-ip":
            return self.cluster_ip()
        if via == "node-port":
            return self.node_port(kind)
        if via in ("dns", "dns-short"):
            return self.dns(via)
        if via == "endpoints":
            return self.endpoints()
        return await self.port_forward()

    def cluster_ip(self) -> Column:
        via: Via = "cluster-ip"
        if self.headless:
            return self.builder.failed(
                via, f"Service {self.ref} is headless (clusterIP: None): use dns or endpoints"
            )
        addresses = [a for a in self.spec.get("clusterIPs") or [] if a and a != "None"]
        extra = addresses if len(addresses) > 1 else ()
        return self.builder.probe(
            via, str(self.spec.get("clusterIP")), int(self.port["port"]), extra
        )

    def node_port(self, kind: str) -> Column:
        via: Via = "node-port"
        node_port = self.port.get("nodePort")
        found = self.found
        if not node_port:
            return self.builder.failed(
                via,
                f"Service {self.ref} is of type {kind}: its port {int(self.port['port'])} has "
                "no nodePort",
            )
        if found.nodes is None:
            return self.builder.failed(via, (found.errors or {}).get("nodes", "no nodes"))
        addresses = list(
            dict.fromkeys(
                [ip for n in found.nodes for ip in n["internal_ips"]]
                + [ip for n in found.nodes for ip in n["external_ips"]]
            )
        )
        if not addresses:
            return self.builder.failed(via, "no node has an InternalIP or ExternalIP address")
        return self.builder.probe(via, addresses[0], int(node_port), addresses)

    def dns(self, via: Via) -> Column:
        name = self.ref.name
        if via == "dns":
            name += f".{self.ref.namespace}.svc.{self.kube.settings.cluster_domain}"
        # A headless Service's name resolves to the pods themselves: probe their port.
        ready = self.found.ready
        first = ready[0].port if self.headless and ready else None
        port = first or int(self.port["port"])
        return self.builder.probe(via, name, port, extra=ServiceFacts(dns_name=name))

    def endpoints(self) -> Column:
        via: Via = "endpoints"
        ready = self.found.ready
        if not ready:
            return self.builder.failed(via, self.found.no_ready_message(self.ref))
        port = int(ready[0].port or 0)  # `ready` holds endpoints with a port only
        same = [e.ip for e in ready if e.port == port]
        others = sorted({e.port for e in ready if e.port != port and e.port is not None})
        more = ServiceFacts(other_target_ports=others) if others else None
        return self.builder.probe(via, same[0], port, same, more)

    async def port_forward(self) -> Column:
        via: Via = "port-forward"
        ready, kube = self.found.ready, self.kube
        target = next((e for e in ready if e.pod and e.port is not None), None)
        if target is None:
            if ready:
                return self.builder.failed(
                    via, f"no ready endpoint of Service {self.ref} names its pod"
                )
            return self.builder.failed(via, self.found.no_ready_message(self.ref))
        pod, port = str(target.pod), int(target.port or 0)
        namespace = self.ref.namespace

        async def open_ws() -> Any:
            return await kube.ws_core.connect_get_namespaced_pod_portforward(
                pod,
                namespace,
                ports=str(port),
                _preload_content=False,
                _headers={"sec-websocket-protocol": CHANNEL_PROTOCOL},
            )

        tunnel = PortForward(open_ws, PodPort(namespace, pod, port), handshake_timeout=kube.timeout)
        await self.context.services.start(tunnel.serve)
        live = ServiceFacts(port_forward=tunnel.live)
        try:
            verdict = await tunnel.check()
        except Exception as exc:
            message = explain(exc, kube, f"port-forward to pod {namespace}/{pod} port {port}")
            return self.builder.failed(via, message, extra=live)
        if verdict is not None:
            status, message = verdict
            return self.builder.failed(via, message, status=status, extra=live)
        return self.builder.probe(via, tunnel.host, tunnel.port, extra=live)
