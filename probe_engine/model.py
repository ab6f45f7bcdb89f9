"""The run model: what a run is made of between the spec and the results.

A target becomes one or more Columns (one per port, per Kubernetes `via`), each with the plan
the agent runs; a CellRequest is one source x column to run; the RunContext is what target
resolvers and sources share while a run lasts (the matrix, the Kubernetes client, resources
closed when the run ends).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .agent.plans import Plan
from .docker_host import DockerOverrides
from .kube import KubeHandle, KubeOverrides
from .spec import Matrix
from .status import Status


@dataclass(frozen=True)
class Column:
    """One column of the matrix: a target (or one port / one `via` of it) made concrete.

    `plan` is what the agent runs (agent.plans.Plan). A target that could not be made concrete
    has no plan and an `error` instead. `local_only`: the plan names this machine's loopback
    (a port-forward tunnel), which only sources probing from here can reach.
    """

    name: str
    target_name: str
    kind: str
    endpoint: str
    plan: Plan | None
    timeout: float | None = None
    via: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    error: tuple[Status, str] | None = None
    local_only: bool = False


@dataclass(frozen=True)
class CellRequest:
    """One cell to run: a source (by name) and a column, with its timeout."""

    id: int
    source: str
    column: Column
    timeout: float

    @property
    def plan(self) -> Plan:
        """The column's plan. Every cell a source runs has one: the engine answers the cells
        of columns that could not be made concrete itself."""
        if self.column.plan is None:
            raise ValueError(f"column {self.column.name} has no plan: {self.column.error}")
        return self.column.plan


@dataclass
class RunContext:
    """What target resolvers and sources share during a run: the matrix, the run's Kubernetes
    client (opened on first use), resources that must live until the run ends (`resources`
    closes them) and services that run until then (port-forward tunnels: `services`).

    Use as an async context manager around the run: leaving it stops the services, then
    closes the resources."""

    matrix: Matrix
    kube_overrides: KubeOverrides = field(default_factory=KubeOverrides)
    docker: DockerOverrides = field(default_factory=DockerOverrides)
    resources: AsyncExitStack = field(default_factory=AsyncExitStack)
    kube: KubeHandle = field(init=False)
    _services: TaskGroup | None = field(default=None, init=False, repr=False)
    _stack: AsyncExitStack | None = field(default=None, init=False, repr=False)
    # Labels what the run makes elsewhere (probe pods, sidecars): found, and removed, by it.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        self.kube = KubeHandle(self.matrix.kubernetes, self.kube_overrides, self.resources)

    @property
    def services(self) -> TaskGroup:
        """The task group of the run's services: `await context.services.start(serve)`."""
        if self._services is None:
            raise RuntimeError("the run's context is not entered (async with context: ...)")
        return self._services

    async def __aenter__(self) -> RunContext:
        stack = AsyncExitStack()
        await stack.enter_async_context(self.resources)
        self._services = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(self._services.cancel_scope.cancel)  # first out: services end first
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        stack, self._stack, self._services = self._stack, None, None
        return await stack.__aexit__(exc_type, exc, traceback) if stack else None
