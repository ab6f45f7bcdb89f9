"""The run model: what a run is made of between the spec and the results.

A target becomes one or more Columns (one per port, per Kubernetes `via`), each with the plan
the agent runs; a CellRequest is one source x column to run; the RunContext is what target
resolvers and sources share while a run lasts (the matrix, the Kubernetes client, resources
closed when the run ends).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True, slots=True)
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
    client (opened on first use), and resources (tunnels, API clients) that must live until
    the run ends: `resources` closes them."""

    matrix: Matrix
    kube_overrides: KubeOverrides = field(default_factory=KubeOverrides)
    docker: DockerOverrides = field(default_factory=DockerOverrides)
    resources: AsyncExitStack = field(default_factory=AsyncExitStack)
    kube: KubeHandle = field(init=False)

    def __post_init__(self) -> None:
        self.kube = KubeHandle(self.matrix.kubernetes, self.kube_overrides, self.resources)
