"""The facts behind rows and columns, as their producers write them and the diagnosis reads them.

A row's facts (SourceInfo.facts) say where its probes ran: the agent's view from inside
(agent.facts.PlaceFacts: network namespace, addresses, routes, resolv.conf, proxy variables)
plus what the place's API says (a container's networks, a pod's node). A column's facts
(TargetInfo.facts) say what stands behind it: for a kubernetes-service target, the Service,
its ports, endpoints, nodes and NetworkPolicies. Every key is optional (total=False): a source
or target kind reports what it can see, and a missing fact is never a cause.

These are TypedDicts, not models: report.json keeps them as plain JSON objects (its schema
only gains fields), and diagnose/facts.py reads them back tolerantly.
"""

from __future__ import annotations

from typing import TypedDict

from .agent.facts import PlaceFacts, ResolvConf, Route

__all__ = [
    "ColumnFacts",
    "ComposeFact",
    "ContainerFact",
    "DockerDnsFact",
    "EndpointFact",
    "NetworkAttachment",
    "NodeFact",
    "PlaceFacts",
    "PolicyFact",
    "PortForwardFact",
    "ResolvConf",
    "Route",
    "RowFacts",
    "ServiceFacts",
    "ServicePortFact",
    "TargetNetworkFact",
]

# --- rows -----------------------------------------------------------------------------------


class ContainerFact(TypedDict, total=False):
    """A docker row's container, from `docker inspect`."""

    id: str
    name: str
    image: str | None
    status: str | None
    started_at: str | None


class NetworkAttachment(TypedDict, total=False):
    """A docker row's container on one of its networks."""

    ip: str | None
    prefix: int | None
    gateway: str | None
    ipv6: str | None
    aliases: list[str]
    # from the daemon's own description of the network
    subnets: list[str]
    driver: str
    internal: bool


class DockerDnsFact(TypedDict, total=False):
    """A docker row's configured DNS (`--dns`, `--dns-search`, `--dns-option`)."""

    servers: list[str]
    search: list[str]
    options: list[str]


class ComposeFact(TypedDict, total=False):
    """A docker row's Compose labels: its project, service and replica number."""

    project: str | None
    service: str | None
    number: str | None


class TargetNetworkFact(TypedDict, total=False):
    """Which Docker network holds a target address or container name (docker rows), and
    whether the row's container is attached to it."""

    network: str
    networks: list[str]  # every network that holds it; `network` is the one to look at
    attached: bool | None  # None: no answer (the container shares another network stack)
    how: str  # "subnet": the address is in the network's subnet; "name": a container's name
    subnet: str
    container: str
    address: str
    note: str


class RowFacts(PlaceFacts, total=False):
    """A row's facts: the place seen from inside (PlaceFacts), plus what its kind knows from
    outside. Kinds report what they can: docker rows their container and networks, kubernetes
    rows their pod, shell and netns rows the tool that runs."""

    tool: str | None
    tool_path: str | None
    # docker
    container: ContainerFact | str | None  # kubernetes rows: the container's name
    network_mode: str | None
    networks: dict[str, NetworkAttachment]
    dns: DockerDnsFact
    extra_hosts: list[str]
    compose: ComposeFact
    target_networks: dict[str, TargetNetworkFact]
    # kubernetes
    pod: str | None
    namespace: str | None
    node: str | None


# --- columns --------------------------------------------------------------------------------


class ServicePortFact(TypedDict):
    """One port of a Service, in the API's own (camelCase) words."""

    name: str | None
    port: int | None  # the API requires it; a malformed object may still lack it
    targetPort: int | str
    nodePort: int | None
    protocol: str


class _EndpointAddress(TypedDict):
    ip: str
    port: int | None


class EndpointFact(_EndpointAddress, total=False):
    """A not-ready address of a Service (ready ones are listed by address only)."""

    pod: str
    node: str
    serving: bool
    terminating: bool


class NodeFact(TypedDict):
    name: str | None
    internal_ips: list[str]
    external_ips: list[str]
    ready: bool | None


class _PolicyVerdict(TypedDict):
    name: str | None
    allows_port: bool


class PolicyFact(_PolicyVerdict, total=False):
    """A NetworkPolicy selecting at least one of the Service's pods, and whether it lets the
    probed port in (`allowed_from`: from which peers; "anywhere" for a rule without `from`).
    The target writes every key; the diagnosis needs only the name and the verdict."""

    policy_types: list[str]
    selects_pods: int
    pod_selector: str
    note: str
    ingress_rules: int
    allowed_from: list[str]


class PortForwardFact(TypedDict):
    """What a port-forward tunnel did, live for the whole run."""

    pod: str
    namespace: str
    pod_port: int
    local: str | None
    connections: int
    bytes_to_pod: int
    bytes_from_pod: int
    errors: list[str]


class ServiceFacts(TypedDict, total=False):
    """A kubernetes-service column's facts: shared by the target's columns, plus the column's
    own `via`, `probed_port` and what that way needed (a DNS name, a tunnel)."""

    service: str
    namespace: str | None
    api_server: str
    context: str | None
    config: str
    type: str
    cluster_ip: str | None
    selector: dict[str, str] | None
    ports: list[ServicePortFact]
    external_name: str | None
    service_port: int
    port_name: str | None
    target_port: int | str | None
    node_port: int | None
    endpoints_from: str | None
    ready: int
    not_ready: int
    ready_addresses: list[str]
    not_ready_addresses: list[EndpointFact]
    backend_pods: list[str]  # the endpoints' targetRef pods, ready or not (whose logs to read)
    pods: int
    nodes: list[NodeFact]
    network_policies: list[PolicyFact]
    errors: dict[str, str]
    via: str
    probed_port: int
    dns_name: str
    other_target_ports: list[int]
    port_forward: PortForwardFact


# The only column facts today: a kubernetes-service target's (static targets have none).
ColumnFacts = ServiceFacts
