"""What the agent answers: a record per check, the proxy and TLS facts of an HTTP cell, and the
outcome of each cell. The engine reads them into results.CellResult (their keys are that
model's fields; a key it does not know is kept in report.json as is).

plans.py names what the agent is asked; these TypedDicts name what it says, for the agent,
the shell prober's parser and the sources that read both. Standard library only and Python
3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

from typing import TypedDict


class Check(TypedDict, total=False):
    """One phase of one cell: dns, tcp (one record per address) or http."""

    name: str  # dns | tcp | http
    status: str  # one of status.STATUSES
    errno: int | None  # errno, or a getaddrinfo code (negative)
    errno_name: str | None  # ECONNREFUSED, EAI_NONAME, NXDOMAIN...
    message: str | None
    duration_ms: float
    # tcp: where it connected, from where; "proxy" when the connection went to the proxy
    address: str | None
    family: str | None  # ipv4 | ipv6
    port: int | None
    source_address: str | None
    role: str | None
    # dns: the name asked, what it resolved to, which resolver, why it failed
    host: str | None
    addresses: list[str] | None
    resolver: str | None
    reason: str | None
    qname: str  # a nameserver's answer: the search-list candidate that answered
    tried: list[str]  # ... and every candidate asked
    # http: the request, its client, the peer, the answer
    url: str | None
    client: str | None
    peer: str | None
    http_status: int | None
    bytes: int
    timings: dict[str, float] | None
    user_agent: str  # the User-Agent the request carried (it names the run and the cell)
    tls: TlsFacts  # an https exchange's facts, moved to the cell by the runner
    # icmp and udp: how it was sent, what came back, from which source
    method: str  # icmp: datagram socket, raw socket, or the place's ping
    reasons: list[str]  # icmp by the place's ping: why the agent could not ping itself
    bind: str | None  # the source it was sent from, as the plan chose it
    sent: int
    sent_bytes: int  # udp: the datagram's size, and the answer's
    received_bytes: int
    received: int
    loss_percent: float | None
    rtt_ms: dict[str, float]  # min, avg, max
    icmp: str  # an ICMP error by name (host-unreachable...), its type, code and sender
    icmp_type: int
    icmp_code: int
    icmp_from: str | None


class ProxyFacts(TypedDict, total=False):
    """Which proxy an HTTP cell's client takes, as the client decides (or its rules)."""

    client: str
    used: bool
    url: str | None  # password replaced by ***
    variable: str | None
    no_proxy_variable: str | None
    no_proxy_match: str | None
    ignored: list[str]
    rules: str
    error: str | None  # why this client cannot send at all here


class TlsFacts(TypedDict, total=False):
    """For https cells: whom the client trusts, and what the server presented."""

    client: str
    ca: str
    verify: bool
    verify_error: str | None
    subject: str | None
    issuer: str | None
    sans: list[str]
    not_before: str | None
    not_after: str | None
    self_signed: bool


class CellOutcome(TypedDict, total=False):
    """One cell's answer: its id (the order's), its status and checks, the facts of HTTP."""

    id: int
    status: str
    started_at: float  # seconds since the epoch
    duration_ms: float | None
    checks: list[Check]
    proxy: ProxyFacts
    tls: TlsFacts
    message: str | None  # why, when no check says it (a cut-short cell: how far it got)
    tool: str | None  # what ran it, where not the agent (curl, wget, nc...)


class RunStats(TypedDict, total=False):
    """What the agent says when a batch is done: the work it did, and whether it was stopped."""

    cells: int
    lookups: int
    connects: int
    requests: int
    pings: int
    datagrams: int
    wall_s: float
    stopped: bool
