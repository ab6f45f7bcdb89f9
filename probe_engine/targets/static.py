"""Targets written out in the matrix (tcp, http, dns, icmp, udp): one column each, or one per
tcp or udp port."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..agent.address import hostport
from ..agent.plans import Plan
from ..agent.proxy import redact, strip_credentials
from ..model import Column, RunContext
from ..spec.targets import (
    DnsTargetSpec,
    HttpTargetSpec,
    IcmpTargetSpec,
    TcpTargetSpec,
    UdpTargetSpec,
)


async def resolve_tcp(name: str, spec: TcpTargetSpec, context: RunContext) -> list[Column]:
    ports = spec.port_list()
    return [
        Column(
            name=name if spec.port is not None else f"{name}:{port}",
            target_name=name,
            kind="tcp",
            endpoint=hostport(spec.host, port),
            plan=Plan(
                kind="tcp",
                host=spec.host,
                port=port,
                family=spec.family,
                bind=spec.bind.plan() if spec.bind else None,
            ),
            timeout=spec.timeout,
        )
        for port in ports
    ]


async def resolve_http(name: str, spec: HttpTargetSpec, context: RunContext) -> list[Column]:
    parts = urlsplit(spec.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    plan = Plan(
        kind="http",
        url=spec.url,
        host=parts.hostname or "",  # the spec checked that the URL names a host
        port=port,
        method=spec.method,
        expect_status=spec.expect_status,
        headers=dict(spec.headers),
        verify=spec.verify_tls,
        family=spec.family,
        bind=spec.bind.plan() if spec.bind else None,
    )
    return [Column(name, name, "http", redact(strip_credentials(spec.url)), plan, spec.timeout)]


async def resolve_dns(name: str, spec: DnsTargetSpec, context: RunContext) -> list[Column]:
    plan = Plan(
        kind="dns",
        host=spec.name,
        family=spec.family,
        expect_addresses=spec.expect_addresses,
        nameserver=spec.nameserver,
        search=spec.search,
        ndots=spec.ndots,
    )
    endpoint = spec.name + (f" @{spec.nameserver}" if spec.nameserver else "")
    return [Column(name, name, "dns", endpoint, plan, spec.timeout)]


async def resolve_icmp(name: str, spec: IcmpTargetSpec, context: RunContext) -> list[Column]:
    plan = Plan(
        kind="icmp",
        host=spec.host,
        family=spec.family,
        count=spec.count,
        interval=spec.interval,
        bind=spec.bind.plan() if spec.bind else None,
    )
    return [Column(name, name, "icmp", spec.host, plan, spec.timeout)]


async def resolve_udp(name: str, spec: UdpTargetSpec, context: RunContext) -> list[Column]:
    payload = spec.payload_bytes().hex()
    return [
        Column(
            name=name if spec.port is not None else f"{name}:{port}",
            target_name=name,
            kind="udp",
            endpoint=f"{hostport(spec.host, port)}/udp",
            plan=Plan(
                kind="udp",
                host=spec.host,
                port=port,
                family=spec.family,
                payload=payload,
                expect_response=spec.expect_response,
                bind=spec.bind.plan() if spec.bind else None,
            ),
            timeout=spec.timeout,
        )
        for port in spec.port_list()
    ]
