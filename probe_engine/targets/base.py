"""What a target becomes before probing: columns with a concrete plan, and the cells to run."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..spec import Matrix
from ..status import Status


def hostport(host: str, port: int) -> str:
    """'10.0.0.1:80', or '[::1]:80': an IPv6 address is bracketed before its port."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Column:
    """One column of the matrix: a target (or one port / one `via` of it) made concrete.

    `plan` is what the agent runs: {"kind": "tcp"|"http"|"dns", host, port, url, addresses...}.
    A target that could not be made concrete has no plan and an `error` instead.
    """

    name: str
    target_name: str
    kind: str
    endpoint: str
    plan: Mapping[str, Any] | None
    timeout: float | None = None
    via: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    error: tuple[Status, str] | None = None


@dataclass(frozen=True, slots=True)
class CellRequest:
    """One cell to run: a source (by name) and a column, with its timeout."""

    id: int
    source: str
    column: Column
    timeout: float


@dataclass
class ResolveContext:
    """What target resolvers share during a run: the matrix, options, and resources
    (tunnels, API clients) that must live until the run ends (closed by `resources`)."""

    matrix: Matrix
    options: Mapping[str, Any] = field(default_factory=dict)
    resources: AsyncExitStack = field(default_factory=AsyncExitStack)
    shared: dict[str, Any] = field(default_factory=dict)


class TargetResolver(Protocol):
    async def __call__(self, name: str, spec: Any, context: ResolveContext) -> list[Column]: ...
