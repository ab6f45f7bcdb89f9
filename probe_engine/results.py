"""What a run observed: CheckRecord per phase, CellResult per cell, MatrixResult per run.

These models are the stable schema of report.json (schema_version 1): add fields freely,
never rename or remove one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .speedups import brief_repr
from .status import Status

SCHEMA_VERSION = 1
Severity = Literal["info", "warning", "error"]


class ResultModel(BaseModel):
    # Results are built by the engine and read back by `render`; unknown keys from a newer
    # writer are kept rather than refused.
    model_config = ConfigDict(frozen=True, extra="allow")


class CheckRecord(ResultModel):
    """One phase of one cell (dns, tcp, http, icmp, udp); tcp, icmp and udp checks have one
    record per address."""

    name: Literal["dns", "tcp", "http", "icmp", "udp"]
    status: Status
    errno: int | None = Field(None, description="errno, or a getaddrinfo code (negative)")
    errno_name: str | None = Field(None, description="ECONNREFUSED, EAI_NONAME, NXDOMAIN...")
    message: str | None = None
    address: str | None = None
    family: Literal["ipv4", "ipv6"] | None = None
    port: int | None = None
    duration_ms: float = 0.0
    http_status: int | None = None
    # dns: the name asked, what it resolved to, which resolver, why it failed
    host: str | None = None
    addresses: list[str] | None = None
    resolver: str | None = None
    reason: str | None = None
    # tcp: the local address the kernel chose; "proxy" when the connection went to the proxy
    source_address: str | None = None
    role: Literal["target", "proxy"] | None = None
    # http: client library, peer address, per-phase timings in ms
    url: str | None = None
    client: str | None = None
    peer: str | None = None
    timings: dict[str, float] | None = None
    user_agent: str | None = Field(
        None, description="http: the User-Agent sent (the run's marker, unless the target set one)"
    )
    # icmp: how the place pinged, echoes sent and answered, round trips; icmp and udp: the
    # ICMP error that answered (its name, type, code and sender)
    method: str | None = Field(
        None, description='icmp: "datagram socket", "raw socket" or the ping binary used'
    )
    reasons: list[str] | None = Field(
        None, description="icmp: why the agent could not ping by itself (it ran ping)"
    )
    sent: int | None = Field(None, description="icmp: echo requests; udp: datagrams sent")
    received: int | None = Field(None, description="icmp: echo replies")
    loss_percent: float | None = None
    rtt_ms: dict[str, float] | None = Field(None, description="icmp: min, avg and max")
    icmp: str | None = Field(
        None, description="The ICMP error: host-unreachable, port-unreachable, admin-prohibited..."
    )
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_from: str | None = Field(None, description="Who sent the ICMP error")
    sent_bytes: int | None = Field(None, description="udp: the payload's size")
    received_bytes: int | None = Field(None, description="udp: the answer's size")
    bind: str | None = Field(None, description="The chosen source: an address, or 'interface NAME'")


class ProxyInfo(ResultModel):
    """The proxy decision for an HTTP cell, as the source's client makes it."""

    client: str
    used: bool
    url: str | None = Field(None, description="Proxy URL, password replaced by ***")
    variable: str | None = None
    no_proxy_variable: str | None = None
    no_proxy_match: str | None = None
    ignored: list[str] | None = Field(None, description="Variables set but ignored by this client")
    rules: str | None = Field(
        None,
        description='Who decided: the client itself ("requests 2.34.2") or its re-implemented '
        'rules where it is absent ("requests rules (emulated)")',
    )
    error: str | None = Field(
        None, description="Why this client cannot send at all here (its own exception)"
    )


class TlsInfo(ResultModel):
    """For https cells: whom the client trusts, and what the server presented."""

    client: str
    ca: str = Field(
        description='Where the CAs came from: "REQUESTS_CA_BUNDLE=/path", "certifi 2025.x '
        '(/path)", "SSL_CERT_FILE=/path", "system (...)", or "not verified"'
    )
    verify: bool = True
    verify_error: str | None = Field(None, description="OpenSSL's reason the chain was refused")
    subject: str | None = None
    issuer: str | None = None
    sans: list[str] | None = None
    not_before: str | None = None
    not_after: str | None = None
    self_signed: bool | None = None


class ServerLog(ResultModel):
    """What the target's servers logged of this cell's request (kubernetes-service targets
    with evidence.pod_logs, http targets with evidence.container_logs): the lines carrying its
    User-Agent marker, or that none did."""

    marker: str = Field(description="What was searched for: run=RUN_ID cell=N")
    pods: list[str] = Field(
        description="The backend pods whose logs were read (none for containers)"
    )
    containers: list[str] | None = Field(
        None, description="The Docker containers whose logs were read (evidence.container_logs)"
    )
    lines: list[dict[str, str]] = Field(
        default_factory=list,
        description="The first few matching lines: {pod, line} or {container, line} (line as "
        "logged, with the kubelet's or Docker's timestamp; credentials redacted)",
    )
    matched: int = Field(0, description="How many lines matched in all")
    errors: dict[str, str] | None = Field(
        None, description="Pods (or containers) whose log could not be read"
    )
    summary: str = Field(description="In words: which pod logged the request, or that none did")


class CellResult(ResultModel):
    source: str = Field(description="Row: the source, or source/instance for fanned-out sources")
    source_name: str = Field(description="The source as declared in the matrix")
    target: str = Field(description="Column: the target, target:port or target/via")
    target_name: str = Field(description="The target as declared in the matrix")
    endpoint: str = Field(description="What was probed, e.g. 127.0.0.1:8000 or a URL")
    status: Status
    expected: list[Status] | None = None
    met: bool | None = None
    duration_ms: float = 0.0
    started_at: datetime | None = None
    proxy: ProxyInfo | None = None
    tls: TlsInfo | None = None
    checks: list[CheckRecord] = Field(default_factory=list)
    message: str | None = Field(None, description="Why, when no check says it (source-error...)")
    tool: str | None = Field(None, description="What ran the probe: agent, curl, wget, nc...")
    server_log: ServerLog | None = Field(
        None, description="The server's side: what the backend pods logged of this request"
    )


class Evidence(ResultModel):
    source: str
    target: str
    status: Status


class Finding(ResultModel):
    """A diagnosis: a sentence with the cells it rests on and what to try next."""

    rule: str
    severity: Severity
    title: str
    detail: str
    evidence: list[Evidence] = Field(
        default_factory=list,
        description="The cells the finding rests on: the first 8 failing ones, then the first "
        "4 contrasting (working) ones; evidence_total counts them all",
    )
    next_step: str
    facts: dict[str, Any] = Field(default_factory=dict)
    evidence_total: int | None = Field(
        None,
        description="How many cells the finding rests on in all (evidence lists the first "
        "few); absent in reports written before it was counted",
    )
    failing_total: int | None = Field(
        None, description="How many of those cells fail (the rest are contrasting, working)"
    )


class SourceInfo(ResultModel):
    """A row: where probes ran, and the facts seen there (proxy variables, netns, routes)."""

    name: str
    source_name: str
    kind: str
    status: Literal["ok", "error"] = "ok"
    message: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)


class TargetInfo(ResultModel):
    """A column: what was probed and the facts behind it (Service ports, endpoints...)."""

    name: str
    target_name: str
    kind: str
    endpoint: str = Field(description="What is probed, in words (for people, not parsing)")
    via: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)
    # Where the column's probes go, as data: none for a column that could not be resolved.
    host: str | None = Field(None, description="The name or address probed (for dns: resolved)")
    port: int | None = Field(None, description="The port connected to (none for dns)")
    addresses: list[str] | None = Field(
        None, description="Addresses connected to instead of resolving host (a Service's)"
    )
    url: str | None = Field(None, description="The URL requested (http), password hidden")


class Expectations(ResultModel):
    met: int = 0
    unmet: int = 0
    none: int = Field(0, description="Cells without an expectation")


class Summary(ResultModel):
    total: int
    by_status: dict[str, int]
    expectations: Expectations
    incomplete: int = Field(
        0, description="Cells cut short (cancelled) by the run's deadline or an interrupt"
    )
    cut_by: Literal["deadline", "interrupt"] | None = Field(
        None, description="What cut the run short, when cells were"
    )

    def incomplete_words(self) -> str | None:
        """'incomplete: 3 cells cut by the deadline', or None for a complete run."""
        if not self.incomplete:
            return None
        cells = "cell" if self.incomplete == 1 else "cells"
        by = "an interrupt" if self.cut_by == "interrupt" else "the deadline"
        return f"incomplete: {self.incomplete} {cells} cut by {by}"


class MatrixRef(ResultModel):
    path: str
    sha256: str


class MatrixResult(ResultModel):
    schema_version: int = SCHEMA_VERSION
    tool_version: str
    run_id: str | None = Field(
        None,
        description="Names this run in its http probes' User-Agent: "
        "probe-engine/VERSION run=RUN_ID cell=N",
    )
    started_at: datetime
    finished_at: datetime
    duration_s: float
    matrix: MatrixRef
    interrupted: bool = False
    exit_status: int = 0
    fail_on: str = "unmet"
    summary: Summary
    findings: list[Finding] = Field(default_factory=list)
    sources: list[SourceInfo] = Field(default_factory=list)
    targets: list[TargetInfo] = Field(default_factory=list)
    cells: list[CellResult] = Field(default_factory=list)

    __repr__ = brief_repr  # see speedups.brief_repr: asyncio formats it at every run's end

    def rows(self) -> list[str]:
        """Row names in matrix order."""
        return [s.name for s in self.sources] or list(dict.fromkeys(c.source for c in self.cells))

    def columns(self) -> list[str]:
        """Column names in matrix order."""
        return [t.name for t in self.targets] or list(dict.fromkeys(c.target for c in self.cells))

    def grid(self) -> dict[tuple[str, str], CellResult]:
        return {(c.source, c.target): c for c in self.cells}
