"""What a container looks like from the Docker API, and which network holds each target.

Pure functions over `docker inspect` / `docker network ls` documents, so they are tested
without an engine. The docker source puts their output in the row's facts; the diagnosis rule
"container-network" reads `target_networks`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from ..agent.address import ip_literal
from ..facts import NetworkAttachment, RowFacts, TargetNetworkFact

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class DaemonNetwork:
    """One network of the daemon (`docker network ls`): its name, driver and subnets."""

    name: str
    driver: str
    subnets: tuple[IPNetwork, ...]
    internal: bool = False


@dataclass(frozen=True)
class NamedEndpoint:
    """A name Docker's embedded DNS answers on one network: a container's name or alias."""

    network: str
    address: str
    container: str


def daemon_networks(listing: Iterable[Mapping[str, Any]]) -> list[DaemonNetwork]:
    """`GET /networks` into DaemonNetwork (subnets from IPAM; unparsable ones skipped)."""
    found = []
    for network in listing:
        subnets: list[IPNetwork] = []
        for config in (network.get("IPAM") or {}).get("Config") or []:
            try:
                subnets.append(ipaddress.ip_network(str(config.get("Subnet")), strict=False))
            except ValueError:
                continue
        found.append(
            DaemonNetwork(
                name=str(network.get("Name")),
                driver=str(network.get("Driver") or ""),
                subnets=tuple(subnets),
                internal=bool(network.get("Internal")),
            )
        )
    return found


def container_name(info: Mapping[str, Any]) -> str:
    return str(info.get("Name") or info.get("Id", "")[:12]).lstrip("/")


def container_facts(info: Mapping[str, Any]) -> RowFacts:
    """The facts of `docker inspect CONTAINER` a diagnosis uses: identity, state, compose
    labels, networks (address, prefix, gateway, aliases), configured DNS and extra hosts."""
    config = info.get("Config") or {}
    host = info.get("HostConfig") or {}
    state = info.get("State") or {}
    labels = config.get("Labels") or {}
    short_id = str(info.get("Id", ""))[:12]
    networks: dict[str, NetworkAttachment] = {}
    for name, attached in ((info.get("NetworkSettings") or {}).get("Networks") or {}).items():
        if name == "none":
            continue  # network mode none: no network at all
        endpoint = attached or {}
        networks[name] = {
            "ip": endpoint.get("IPAddress") or None,
            "prefix": endpoint.get("IPPrefixLen") or None,
            "gateway": endpoint.get("Gateway") or None,
            "ipv6": endpoint.get("GlobalIPv6Address") or None,
            # Docker adds the short id as an alias of every container: not the user's.
            "aliases": [a for a in endpoint.get("Aliases") or [] if a != short_id],
        }
    facts: RowFacts = {
        "container": {
            "id": short_id,
            "name": container_name(info),
            "image": config.get("Image"),
            "status": state.get("Status"),
            "started_at": state.get("StartedAt"),
        },
        "network_mode": host.get("NetworkMode"),
        "networks": networks,
        "dns": {
            "servers": list(host.get("Dns") or []),
            "search": list(host.get("DnsSearch") or []),
            "options": list(host.get("DnsOptions") or []),
        },
        "extra_hosts": list(host.get("ExtraHosts") or []),
    }
    if COMPOSE_PROJECT in labels:
        facts["compose"] = {
            "project": labels.get(COMPOSE_PROJECT),
            "service": labels.get(COMPOSE_SERVICE),
            "number": labels.get(COMPOSE_NUMBER),
        }
    return facts


def container_environment(info: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment an exec sees: the container's Config.Env, then `docker exec -e`."""
    env: dict[str, str] = {}
    for item in (info.get("Config") or {}).get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    env.update(extra)
    return env


def why_not_running(info: Mapping[str, Any]) -> str | None:
    """Why an exec cannot run in this container now, or None when it can."""
    state = info.get("State") or {}
    name = container_name(info)
    if state.get("Paused"):
        return f"container {name} is paused (`docker unpause {name}`)"
    if state.get("Restarting"):
        return f"container {name} is restarting (exit code {state.get('ExitCode')})"
    if not state.get("Running"):
        status = state.get("Status") or "not running"
        detail = f"status {status}"
        if status == "exited":
            detail += f", exit code {state.get('ExitCode')}"
            if state.get("OOMKilled"):
                detail += ", killed for lack of memory"
        return f"container {name} is not running ({detail})"
    return None


def names_on_networks(summaries: Iterable[Mapping[str, Any]]) -> dict[str, list[NamedEndpoint]]:
    """Names Docker's embedded DNS answers, from `GET /containers/json`: each container's
    name and its compose service name, on each of its user-defined networks."""
    names: dict[str, list[NamedEndpoint]] = {}
    for summary in summaries:
        labels = summary.get("Labels") or {}
        own = [str(n).lstrip("/") for n in summary.get("Names") or []]
        if not own:
            continue
        aliases = own + ([labels[COMPOSE_SERVICE]] if labels.get(COMPOSE_SERVICE) else [])
        networks = (summary.get("NetworkSettings") or {}).get("Networks") or {}
        for network, endpoint in networks.items():
            address = (endpoint or {}).get("IPAddress")
            if network in ("bridge", "host", "none") or not address:
                continue  # the default bridge has no embedded DNS
            for alias in aliases:
                names.setdefault(alias.lower(), []).append(
                    NamedEndpoint(network, str(address), own[0])
                )
    return names


def target_networks(
    hosts: Sequence[str],
    facts: Mapping[str, Any],
    networks: Sequence[DaemonNetwork],
    names: Mapping[str, list[NamedEndpoint]],
) -> dict[str, TargetNetworkFact]:
    """For each target host (an address, or a container name Docker's DNS answers), the
    network that holds it and whether this container is attached to it.

    `attached` is None where the question has no answer: the address is on no Docker network,
    or the container shares another network stack (network mode host, container:...)."""
    own: Mapping[str, NetworkAttachment] = facts.get("networks") or {}
    mode = str(facts.get("network_mode") or "")
    shared = mode == "host" or mode.startswith("container:")
    result: dict[str, TargetNetworkFact] = {}
    for host in dict.fromkeys(hosts):
        address = ip_literal(host)
        entry: TargetNetworkFact
        candidates: list[tuple[str, str | None]]
        if address is not None:
            holders = [n for n in networks if any(address in s for s in n.subnets)]
            if not holders:
                continue
            entry = {"address": str(address), "how": "subnet"}
            candidates = [
                (n.name, next(str(s) for s in n.subnets if address in s)) for n in holders
            ]
        else:
            endpoints = names.get(host.lower())
            if not endpoints:
                continue
            entry = {
                "address": endpoints[0].address,
                "how": "name",
                "container": endpoints[0].container,
            }
            candidates = [(e.network, None) for e in endpoints]
        on = [c for c in candidates if c[0] in own]
        network, subnet = (on or candidates)[0]
        entry["network"] = network
        entry["networks"] = list(dict.fromkeys(c[0] for c in candidates))
        if subnet is not None:
            entry["subnet"] = subnet
        if shared:
            entry["attached"] = None
            entry["note"] = f"network mode {mode}: the container shares that network stack"
        else:
            entry["attached"] = bool(on)
        result[host] = entry
    return result


def subnets_of(facts: Mapping[str, Any], networks: Sequence[DaemonNetwork]) -> None:
    """Add each attached network's subnets (from the daemon) to facts["networks"]."""
    by_name = {n.name: n for n in networks}
    for name, endpoint in (facts.get("networks") or {}).items():
        network = by_name.get(name)
        if network is not None and isinstance(endpoint, dict):
            endpoint["subnets"] = [str(s) for s in network.subnets]
            endpoint["driver"] = network.driver
            if network.internal:
                endpoint["internal"] = True
