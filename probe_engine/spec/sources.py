"""WHERE FROM: the kinds of source a matrix can declare, one model per kind.

A source knows how to get the probe running somewhere; what to probe comes from the targets.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import HttpClient, Name, SpecModel


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


ShellTool = Literal["curl", "wget", "bash", "nc"]


class ShellSource(SpecModel):
    """A command-line tool run as a user would run it: curl, wget, bash's /dev/tcp, nc."""

    kind: Literal["shell"]
    tool: ShellTool = "curl"
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: bool = True
    description: str | None = None


class NetnsSource(PythonSourceOptions):
    """A Linux network namespace (`ip netns`): the agent, or with `tool:` a shell tool, runs
    inside it as `ip netns exec NAME ...` does, so /etc/netns/NAME/resolv.conf, hosts and
    nsswitch.conf apply as they would to a container there. Needs root (CAP_SYS_ADMIN)."""

    kind: Literal["netns"]
    name: Name = Field(description="The namespace, as `ip netns list` shows it.")
    tool: ShellTool | None = Field(
        None, description="Run this tool through the shell prober instead of the Python agent."
    )
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: bool = Field(True, description="Start from this process's environment.")
    python: str | None = Field(None, description="Interpreter to run (default: this one).")

    @model_validator(mode="after")
    def _agent_options_need_the_agent(self) -> NetnsSource:
        agent_only = sorted({"python", "http_client", "trust_env"} & self.model_fields_set)
        if self.tool is not None and agent_only:
            raise ValueError(
                f"{', '.join(agent_only)} applies to the Python agent, not to tool: {self.tool}"
            )
        return self


SourceSpec = Annotated[
    LocalSource | ProcessSource | ShellSource | NetnsSource,
    Field(discriminator="kind"),
]
