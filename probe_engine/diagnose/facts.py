"""Reading the facts behind rows and columns (SourceInfo.facts, TargetInfo.facts) for the
rules: a Kubernetes Service's name, ports, endpoints, selector and NetworkPolicies; a row's
routes and proxy variables. Every fact is optional: a missing fact is not a cause."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..results import SourceInfo, TargetInfo

SERVICE_KINDS = ("kubernetes-service", "kubernetes")


def is_service(info: TargetInfo) -> bool:
    return info.kind in SERVICE_KINDS or info.via is not None or "service" in info.facts


def count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple):
        return len(value)
    return None


def ready_counts(facts: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(ready, not ready) endpoint counts, whichever spelling the facts use."""
    nested = facts.get("endpoints")
    nested = nested if isinstance(nested, Mapping) else {}
    ready = next(
        (
            c
            for c in (
                count(facts.get("ready")),
                count(facts.get("ready_endpoints")),
                count(nested.get("ready")),
            )
            if c is not None
        ),
        None,
    )
    not_ready = next(
        (
            c
            for c in (
                count(facts.get("not_ready")),
                count(facts.get("not_ready_endpoints")),
                count(nested.get("not_ready")),
            )
            if c is not None
        ),
        None,
    )
    return ready, not_ready


def selector_text(facts: Mapping[str, Any]) -> str | None:
    value = facts.get("selector")
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items()) or None
    return str(value) if value else None


def service_name(info: TargetInfo) -> str:
    name = info.facts.get("service") or info.target_name
    namespace = info.facts.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def service_ports(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Service ports with snake_case or camelCase keys normalised to port/target_port/node_port."""
    found = []
    for item in facts.get("ports") or []:
        if not isinstance(item, Mapping):
            continue
        found.append(
            {
                "name": item.get("name"),
                "port": item.get("port"),
                "target_port": item.get("targetPort", item.get("target_port")),
                "node_port": item.get("nodePort", item.get("node_port")),
            }
        )
    return found


@dataclass(frozen=True)
class Policy:
    name: str
    allows_port: bool | None
    allowed_from: list[str] | None = None

    @property
    def open(self) -> bool:
        """Lets the port in from anywhere: not a cause."""
        return self.allows_port is True and (
            self.allowed_from is None or "anywhere" in self.allowed_from
        )


def policies(facts: Mapping[str, Any]) -> list[Policy]:
    found = []
    for item in facts.get("network_policies") or []:
        if isinstance(item, Mapping):
            allows = item.get("allows_port", item.get("allows", item.get("allowed")))
            peers = item.get("allowed_from")
            found.append(
                Policy(
                    str(item.get("name", "?")),
                    allows if isinstance(allows, bool) else None,
                    [str(p) for p in peers] if isinstance(peers, list) else None,
                )
            )
        elif item:
            found.append(Policy(str(item), None))
    return found


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


def proxy_env(info: SourceInfo | None) -> dict[str, str] | None:
    env = info.facts.get("proxy_env") if info else None
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else None
