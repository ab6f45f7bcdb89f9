"""The matrix document: sources x targets, defaults, which cells to skip, what to expect."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ..status import Status
from .common import Duration, HttpClient, Name, SpecModel
from .sources import SourceSpec
from .targets import TargetSpec


class Defaults(SpecModel):
    timeout: Duration = Field(2.0, description="Per-cell timeout: every phase of a cell together.")
    concurrency: int = Field(256, ge=1, le=100_000, description="Cells in flight per source.")
    deadline: Duration | None = Field(None, description="Deadline of the whole run.")
    http_client: HttpClient = Field("requests", description="Proxy rules for Python sources.")


class CellPattern(SpecModel):
    """Source and target names or globs (`*`, `api-*`)."""

    source: str = "*"
    target: str = "*"


class Expectation(CellPattern):
    status: Status | list[Status]

    @field_validator("status")
    @classmethod
    def _not_empty(cls, value: Status | list[Status]) -> Status | list[Status]:
        if isinstance(value, list) and not value:
            raise ValueError("list at least one status")
        return value

    def statuses(self) -> tuple[Status, ...]:
        return tuple(self.status) if isinstance(self.status, list) else (self.status,)


class KubernetesSettings(SpecModel):
    """How to reach the Kubernetes API (kubernetes-service targets, kubernetes sources).

    The kubeconfig is --kubeconfig, else this `kubeconfig`, else $KUBECONFIG, else
    ~/.kube/config, else the in-cluster service account; --context overrides `context`."""

    kubeconfig: str | None = Field(None, description="Path(s) of kubeconfig files, ':'-separated.")
    context: str | None = Field(None, description="Default: the kubeconfig's current context.")
    namespace: str | None = Field(
        None, description="Default namespace of targets and sources (else the context's)."
    )
    cluster_domain: str = Field("cluster.local", description="Suffix of Service DNS names.")
    timeout: Duration = Field(10.0, description="Timeout of each API request.")


class Matrix(SpecModel):
    """A whole matrix file, validated. Build it with `probe_engine.load_matrix`."""

    version: Literal[1] = 1
    description: str | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    sources: dict[Name, SourceSpec] = Field(min_length=1)
    targets: dict[Name, TargetSpec] = Field(min_length=1)
    cells: list[CellPattern] | None = Field(
        None, description="Only these source/target pairs (default: every pair)."
    )
    exclude: list[CellPattern] = Field(default_factory=list)
    expect: list[Expectation] = Field(
        default_factory=list, description="Expected statuses; globs allowed; the last match wins."
    )
    kubernetes: KubernetesSettings | None = Field(
        None, description="The Kubernetes API to use (kubeconfig, context, namespace)."
    )
