"""WHERE FROM: the kinds of source a matrix can declare, one model per kind.

A source knows how to get the probe running somewhere; what to probe comes from the targets.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import HttpClient, SpecModel


class PythonSourceOptions(SpecModel):
    http_client: HttpClient | None = Field(
        None,
        description="Whose proxy rules to follow for HTTP (default: defaults.http_client).",
    )
    trust_env: bool = Field(
        True, description="Honour proxy variables at all (requests' Session.trust_env)."
    )
    description: str | None = None


class LocalSource(PythonSourceOptions):
    """This process: embedded in an Airflow task, the PythonOperator's own view."""

    kind: Literal["local"]


class ProcessSource(PythonSourceOptions):
    """A child Python process with its own environment (e.g. a task's proxy variables)."""

    kind: Literal["process"]
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: bool = Field(True, description="Start from this process's environment.")
    python: str | None = Field(None, description="Interpreter to run (default: this one).")


class ShellSource(SpecModel):
    """A command-line tool run as a user would run it: curl, wget, bash's /dev/tcp, nc."""

    kind: Literal["shell"]
    tool: Literal["curl", "wget", "bash", "nc"] = "curl"
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: bool = True
    description: str | None = None


SourceSpec = Annotated[
    LocalSource | ProcessSource | ShellSource,
    Field(discriminator="kind"),
]
