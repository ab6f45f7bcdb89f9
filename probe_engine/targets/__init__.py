"""WHAT TO: turning declared targets into columns; one resolver per target kind."""

from __future__ import annotations

from typing import Any, Protocol

from ..model import Column, RunContext
from .kubernetes import resolve_kubernetes_service
from .static import resolve_dns, resolve_http, resolve_icmp, resolve_tcp, resolve_udp


class TargetResolver(Protocol):
    async def __call__(self, name: str, spec: Any, context: RunContext) -> list[Column]: ...


# One entry per target kind; a test checks these keys equal the spec's `kind` values.
RESOLVERS: dict[str, TargetResolver] = {
    "tcp": resolve_tcp,
    "http": resolve_http,
    "dns": resolve_dns,
    "icmp": resolve_icmp,
    "udp": resolve_udp,
    "kubernetes-service": resolve_kubernetes_service,
}

__all__ = ["RESOLVERS", "TargetResolver"]
