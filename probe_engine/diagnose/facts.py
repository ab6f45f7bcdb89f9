"""Reading the facts behind rows and columns (SourceInfo.facts, TargetInfo.facts) for the
rules, in the shapes their producers write (probe_engine.facts): a row's routes, resolver,
addresses, networks and proxy variables; a Kubernetes Service's name, ports, endpoints,
selector and NetworkPolicies.

The one tolerant boundary: a fact whose value does not have its shape (an older or newer
writer, another source kind) is left out, exactly as a fact never reported. Rules read typed
values and never guess: a missing fact is not a cause.
"""

from __future__ import annotations

import functools
import ipaddress
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..compat import UNION_ORIGINS, is_typeddict, type_hints
from ..facts import PolicyFact, Route, RowFacts, ServiceFacts, ServicePortFact
from ..results import SourceInfo, TargetInfo


@functools.cache
def _hints(shape: type) -> dict[str, Any]:
    return type_hints(shape)


def _fits(value: object, hint: Any) -> bool:
    """Whether `value` (plain JSON data) has the shape the type `hint` names."""
    origin = typing.get_origin(hint)
    if origin in UNION_ORIGINS:
        return any(_fits(value, h) for h in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict:
        _key, item = typing.get_args(hint)
        return isinstance(value, dict) and all(
            isinstance(k, str) and _fits(v, item) for k, v in value.items()
        )
    if is_typeddict(hint):
        return isinstance(value, dict) and _conforms(value, hint)
    if hint is type(None):
        return value is None
    if hint in (int, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _conforms(value: Mapping[str, object], shape: Any) -> bool:
    hints = _hints(shape)
    required: frozenset[str] = shape.__required_keys__
    return all(k in value for k in required) and all(
        _fits(v, hints[k]) for k, v in value.items() if k in hints
    )


def _kept(facts: Mapping[str, Any], shape: type) -> dict[str, Any]:
    """The facts that have the shape `shape` gives them; unknown keys are not read."""
    hints = _hints(shape)
    return {k: v for k, v in facts.items() if k in hints and _fits(v, hints[k])}


# --- rows -----------------------------------------------------------------------------------


def row_facts(info: SourceInfo | None) -> RowFacts:
    """A row's facts, each in its producer's shape (or left out)."""
    return typing.cast(RowFacts, _kept(info.facts, RowFacts)) if info else RowFacts()


def network_names(facts: RowFacts) -> set[str] | None:
    """The Docker networks a container row is attached to; None when not reported."""
    networks = facts.get("networks")
    return None if networks is None else set(networks)


def container_name(info: SourceInfo) -> str:
    """A docker row's container, by name (the row's own name if not reported)."""
    container = row_facts(info).get("container")
    if isinstance(container, dict) and container.get("name"):
        return str(container["name"])
    return info.name


def route_for(address: str, routes: list[Route] | None) -> Route | None:
    """The IPv4 route the kernel would pick (longest prefix) among a source's routes; None
    when no route covers the address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    best: tuple[int, Route] | None = None
    for route in routes or []:
        try:
            network = ipaddress.ip_network(route["destination"], strict=False)
        except ValueError:
            continue
        if (
            network.version == ip.version
            and ip in network
            and (best is None or network.prefixlen > best[0])
        ):
            best = (network.prefixlen, route)
    return best[1] if best else None


# --- columns: a Kubernetes Service ----------------------------------------------------------


def service_facts_of(info: TargetInfo | None) -> ServiceFacts:
    """A column's Service facts, each in its producer's shape (or left out)."""
    return typing.cast(ServiceFacts, _kept(info.facts, ServiceFacts)) if info else ServiceFacts()


def is_service(info: TargetInfo) -> bool:
    return info.kind == "kubernetes-service"


def selector_text(facts: ServiceFacts) -> str | None:
    """'app=api,tier=web', or None for a Service without a selector."""
    selector = facts.get("selector")
    if not selector:
        return None
    return ",".join(f"{k}={v}" for k, v in selector.items())


def service_name(info: TargetInfo) -> str:
    """namespace/name of the column's Service."""
    facts = service_facts_of(info)
    name = facts.get("service") or info.target_name
    namespace = facts.get("namespace")
    return f"{namespace}/{name}" if namespace else name


def service_ports(facts: ServiceFacts) -> list[ServicePortFact]:
    return facts.get("ports") or []


@dataclass(frozen=True)
class Policy:
    name: str
    allows_port: bool
    allowed_from: list[str] | None = None

    @property
    def open(self) -> bool:
        """Lets the port in from anywhere: not a cause."""
        return self.allows_port and (self.allowed_from is None or "anywhere" in self.allowed_from)


def policies(facts: ServiceFacts) -> list[Policy]:
    """The NetworkPolicies selecting the Service's pods."""
    found: list[PolicyFact] = facts.get("network_policies") or []
    return [
        Policy(str(p.get("name") or "?"), p["allows_port"], p.get("allowed_from")) for p in found
    ]
