"""WHAT TO: turning declared targets into columns; one resolver per target kind."""

from __future__ import annotations

from typing import Any, Protocol

from ..model import Column, RunContext
from .static import resolve_dns, resolve_http, resolve_icmp, resolve_tcp, resolve_udp


class TargetResolver(Protocol):
    async def __call__(self, name: str, spec: Any, context: RunContext) -> list[Column]: ...


async def resolve_kubernetes_service(name: str, spec: Any, context: RunContext) -> list[Column]:
    """Imported when a matrix has such a target: a run without one never loads the Kubernetes
    machinery (a seventh of a one-cell run's imports)."""
    from .kubernetes import resolve_kubernetes_service as resolve

    return await resolve(name, spec, context)


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
