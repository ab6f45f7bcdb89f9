"""A Service's endpoints: every address of its EndpointSlices (or core v1 Endpoints), ready or
not, with the port of the Service port the target means."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...facts import EndpointFact


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int | None
    ready: bool
    serving: bool | None = None
    terminating: bool | None = None
    pod: str | None = None
    node: str | None = None

    def fact(self) -> EndpointFact:
        found = EndpointFact(ip=self.ip, port=self.port)
        if self.pod is not None:
            found["pod"] = self.pod
        if self.node is not None:
            found["node"] = self.node
        if self.serving is not None:
            found["serving"] = self.serving
        if self.terminating is not None:
            found["terminating"] = self.terminating
        return found


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
