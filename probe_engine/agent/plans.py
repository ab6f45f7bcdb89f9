"""What the agent is asked to run: a batch of cells, each with the plan of its checks.

The batch travels as one JSON line (ship.agent_payload) or is handed over in-process (the local
source); these TypedDicts name its shape for both sides. Standard library only and Python 3.8
compatible: shipped inside the agent.
"""

from __future__ import annotations

from typing import Literal, TypedDict

# Annotations stay strings (`from __future__`), so `list[str] | None` is fine on Python 3.8 in
# the class bodies below; these two aliases are evaluated, so they use 3.8's own forms.
PlanKind = Literal["tcp", "http", "dns", "icmp", "udp"]
Family = Literal["any", "ipv4", "ipv6"]


class _PlanRequired(TypedDict):
    kind: PlanKind
    host: str  # tcp and http: the host to connect to; dns: the name to resolve


class Plan(_PlanRequired, total=False):
    """The checks of one cell: dns (resolve `host`), tcp (resolve, then connect to `port` on
    every address), http (tcp, then one request to `url`), icmp (resolve, then ping every
    address), udp (resolve, then one datagram to `port` on every address). Keys by kind:

    tcp:  port, family; `addresses` to connect to instead of resolving `host`; bind
    http: the tcp keys, url, method, expect_status, headers, verify (TLS certificates)
    dns:  family, expect_addresses; nameserver (host:port) asked directly, search, ndots
    icmp: family, addresses, count (echo requests), interval (seconds between them), bind
    udp:  port, family, addresses, payload (hex), expect_response, bind
    `bind` ({"address": ...} or {"interface": ...}) is the chosen source of the probe's socket.
    """

    port: int
    family: Family
    addresses: list[str]
    url: str
    method: str
    expect_status: list[int] | None
    headers: dict[str, str]
    verify: bool
    expect_addresses: list[str] | None
    nameserver: str | None
    search: list[str] | None
    ndots: int
    count: int
    interval: float
    payload: str
    expect_response: bool
    bind: dict[str, str] | None


class CellOrder(TypedDict):
    """One cell of a batch: its id (echoed in its result), its timeout and its plan."""

    id: int
    timeout: float
    plan: Plan


class Batch(TypedDict):
    """Everything one agent runs: the cells and how (concurrency, default timeout, whose
    proxy rules HTTP follows, whether proxy variables count at all)."""

    concurrency: int
    timeout: float
    http_client: str
    trust_env: bool
    cells: list[CellOrder]
