"""The matrix document: sources x targets, defaults, which cells to skip, what to expect."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from ..status import Status
from .common import Concurrency, Duration, HttpClient, Name, SpecModel
from .messages import describe
from .sources import SourceSpec
from .targets import TargetSpec


class Defaults(SpecModel):
    timeout: Duration = Field(2.0, description="Per-cell timeout: every phase of a cell together.")
    concurrency: Concurrency = Field(256, description="Cells in flight per source.")
    deadline: Duration | None = Field(None, description="Deadline of the whole run.")
    http_client: HttpClient = Field("requests", description="Proxy rules for Python sources.")


class CellPattern(SpecModel):
    """Source and target names or globs (`*`, `api-*`)."""

    source: str = Field(
        "*", description="A source's name or a glob (`*`, `api-*`); a row: source/instance."
    )
    target: str = Field("*", description="A target's name, a column's (`scan:443`), or a glob.")


class Expectation(CellPattern):
    status: Status | list[Status] = Field(
        description="The status the cells must have, or a list of statuses any of which will do.",
        json_schema_extra={"minItems": 1},
        examples=["ok", ["refused", "timeout"]],
    )

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


def _version(value: Any) -> Any:
    if value != 1 or value.__class__ not in (int, float):
        raise ValueError(f"{describe(value)} is not a version this probe-engine reads (write 1)")
    return value


class Matrix(SpecModel):
    """A whole matrix file, validated. Build it with `probe_engine.load_matrix`."""

    version: Annotated[Literal[1], BeforeValidator(_version)] = Field(
        1, description="The matrix format's version: 1."
    )
    description: str | None = Field(None, description="What this matrix checks, for the reports.")
    defaults: Defaults = Field(
        default_factory=Defaults, description="Timeout, concurrency and deadline of the run."
    )
    sources: dict[Name, SourceSpec] = Field(
        min_length=1, description="Where probes run from, by name: the rows."
    )
    targets: dict[Name, TargetSpec] = Field(
        min_length=1, description="What to reach, by name: the columns (a tcp target one per port)."
    )
    cells: list[CellPattern] | None = Field(
        None, description="Only these source/target pairs (default: every pair)."
    )
    exclude: list[CellPattern] = Field(
        default_factory=list, description="Source/target pairs not to probe; globs allowed."
    )
    expect: list[Expectation] = Field(
        default_factory=list, description="Expected statuses; globs allowed; the last match wins."
    )
    kubernetes: KubernetesSettings | None = Field(
        None, description="The Kubernetes API to use (kubeconfig, context, namespace)."
    )
