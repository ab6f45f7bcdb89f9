"""WHERE FROM: the kinds of source a matrix can declare, one model per kind.

A source knows how to get the probe running somewhere; what to probe comes from the targets.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from .common import (
    BindSpec,
    Duration,
    EnvVars,
    Flag,
    HttpClient,
    Name,
    PositiveCount,
    SpecModel,
    exactly_one_of,
)

DEFAULT_PROBE_IMAGE = "python:3.12-slim"
BIND_DESCRIPTION = (
    "Probe tcp, http, icmp and udp targets from this address or interface of the place "
    "(a target's own bind: wins)."
)


class PythonSourceOptions(SpecModel):
    http_client: HttpClient | None = Field(
        None,
        description="Whose proxy rules to follow for HTTP (default: defaults.http_client).",
    )
    trust_env: Flag = Field(
        True, description="Honour proxy variables at all (requests' Session.trust_env)."
    )
    description: str | None = Field(None, description="What this source stands for.")
    bind: BindSpec | None = Field(None, description=BIND_DESCRIPTION)


def _check_agent_options(source: PythonSourceOptions, tool: str | None) -> None:
    """Options of the Python agent make no sense beside `tool:` (the agent does not run)."""
    agent_only = sorted({"python", "http_client", "trust_env"} & source.model_fields_set)
    if tool is not None and agent_only:
        raise ValueError(
            f"{', '.join(agent_only)} applies to the Python agent, not to tool: {tool}"
        )


class LocalSourceSpec(PythonSourceOptions):
    """This process: embedded in an Airflow task, the PythonOperator's own view."""

    kind: Literal["local"]


class ProcessSourceSpec(PythonSourceOptions):
    """A child Python process with its own environment (e.g. a task's proxy variables)."""

    kind: Literal["process"]
    env: EnvVars = Field(
        default_factory=dict,
        description="Environment variables of the child, e.g. HTTP_PROXY.",
        examples=[{"HTTP_PROXY": "http://127.0.0.1:3128", "NO_PROXY": "10.0.0.0/8"}],
    )
    inherit_env: Flag = Field(True, description="Start from this process's environment.")
    python: str | None = Field(None, description="Interpreter to run (default: this one).")


ShellTool = Literal["curl", "wget", "bash", "nc"]


class ShellSourceSpec(SpecModel):
    """A command-line tool run as a user would run it: curl, wget, bash's /dev/tcp, nc."""

    kind: Literal["shell"]
    tool: ShellTool = Field("curl", description="The tool that runs every probe.")
    env: EnvVars = Field(
        default_factory=dict, description="Environment variables of the tool, e.g. http_proxy."
    )
    inherit_env: Flag = Field(True, description="Start from this process's environment.")
    description: str | None = Field(None, description="What this source stands for.")
    bind: BindSpec | None = Field(None, description=BIND_DESCRIPTION)


# In the schema, what _check_agent_options says: with `tool:`, no option of the Python agent.
_NO_AGENT_OPTIONS_WITH_TOOL: JsonDict = {
    "if": {"required": ["tool"], "properties": {"tool": {"not": {"type": "null"}}}},
    "then": {"properties": {"python": False, "http_client": False, "trust_env": False}},
}


class NetnsSourceSpec(PythonSourceOptions):
    """A Linux network namespace (`ip netns`): the agent, or with `tool:` a shell tool, runs
    inside it as `ip netns exec NAME ...` does, so /etc/netns/NAME/resolv.conf, hosts and
    nsswitch.conf apply as they would to a container there. Needs root (CAP_SYS_ADMIN)."""

    model_config = ConfigDict(json_schema_extra=_NO_AGENT_OPTIONS_WITH_TOOL)

    kind: Literal["netns"]
    name: Name = Field(description="The namespace, as `ip netns list` shows it.")
    tool: ShellTool | None = Field(
        None, description="Run this tool through the shell prober instead of the Python agent."
    )
    env: EnvVars = Field(default_factory=dict, description="Environment variables to add.")
    inherit_env: Flag = Field(True, description="Start from this process's environment.")
    python: str | None = Field(None, description="Interpreter to run (default: this one).")

    @model_validator(mode="after")
    def _agent_options_need_the_agent(self) -> NetnsSourceSpec:
        _check_agent_options(self, self.tool)
        return self


DOCKER_HOST_SCHEMES = ("unix://", "tcp://", "http://", "https://", "ssh://", "npipe://")


class ComposeServiceSpec(SpecModel):
    """The containers of one Docker Compose service (by its com.docker.compose labels)."""

    project: Name = Field(description="The Compose project (`docker compose -p`).")
    service: Name = Field(description="The service, as named in docker-compose.yml.")


class SidecarSpec(SpecModel):
    """A short-lived container in the target container's network namespace (`--network
    container:<id>`) that probes from there: for containers without python3, or without
    anything. Removed at the end of the run."""

    image: str = Field(
        description="An image with python3 (or sh and a tool) and `sleep`, on the daemon or "
        "pullable.",
        json_schema_extra={"pattern": r"\S"},
    )
    always: Flag = Field(
        False,
        description="Probe from the sidecar even where the container has python3 "
        "(default: only where it has none).",
    )


class DockerSourceSpec(PythonSourceOptions):
    """A running container, exactly as `docker exec` would reach it: the agent (python3, if
    the image has it; otherwise a shell tool), or with `tool:` that tool, runs inside it.
    `compose:` fans out to every container of a Compose service, one row each."""

    model_config = ConfigDict(
        json_schema_extra={
            **_NO_AGENT_OPTIONS_WITH_TOOL,
            **exactly_one_of("container", "compose"),
        }
    )

    kind: Literal["docker"]
    container: Name | None = Field(None, description="Container name or id.")
    compose: ComposeServiceSpec | None = Field(
        None, description="Every container of this Compose service: one row per container."
    )
    tool: ShellTool | Literal["auto"] | None = Field(
        None,
        description="Run this tool through the shell prober instead of the Python agent "
        "(auto: whichever the container has).",
    )
    host: str | None = Field(
        None,
        description="Docker daemon URL (unix://, tcp://...; default: DOCKER_HOST, else the "
        "local socket).",
    )
    python: str = Field("python3", description="Interpreter to look for in the container.")
    user: str | None = Field(None, description="Run as this user (`docker exec --user`).")
    env: EnvVars = Field(
        default_factory=dict, description="Extra environment of the exec (`docker exec -e`)."
    )
    sidecar: SidecarSpec | None = Field(
        None,
        description="Where the container has no python3: probe from a sidecar container in its "
        "network namespace instead of with its shell tools.",
    )

    @model_validator(mode="after")
    def _one_way_to_name_containers(self) -> DockerSourceSpec:
        if (self.container is None) == (self.compose is None):
            raise ValueError("give exactly one of container: or compose:")
        _check_agent_options(self, self.tool)
        if self.host is not None and not self.host.startswith(DOCKER_HOST_SCHEMES):
            raise ValueError(
                f"host {self.host!r} is not a Docker daemon URL: use "
                f"{', '.join(s + '...' for s in DOCKER_HOST_SCHEMES[:2])}"
            )
        return self


class DebugSpec(SpecModel):
    """An ephemeral container (as `kubectl debug` adds one) in the pod's network namespace,
    targeting its container, that probes from there: for pods with neither python3 nor sh
    (distroless images). Ephemeral containers cannot be removed: one added by an earlier run
    is reused."""

    ephemeral: Flag = Field(True, description="An ephemeral container (the only kind for now).")
    image: str = Field(
        DEFAULT_PROBE_IMAGE,
        description="Its image: python3 (or sh and a tool) and `sleep`.",
        json_schema_extra={"pattern": r"\S"},
    )
    always: Flag = Field(
        False,
        description="Probe from it in every pod (default: only where neither python3 nor sh "
        "can run).",
    )
    start_timeout: Duration = Field(
        60.0, description="How long the ephemeral container may take to start (image pull)."
    )

    @model_validator(mode="after")
    def _ephemeral_only(self) -> DebugSpec:
        if not self.ephemeral:
            raise ValueError("debug needs ephemeral: true (the only way to debug a pod for now)")
        return self


class KubernetesSourceSpec(PythonSourceOptions):
    """Every Running pod named by `pod` or matched by `selector`: the agent runs in each (one
    exec per pod, through the API server), one row per pod named SOURCE/POD. Without python3
    in the container, the shell prober runs instead (curl, wget, nc or bash, whichever is
    there); `tool:` runs that tool through the shell prober from the start."""

    model_config = ConfigDict(
        json_schema_extra={
            **_NO_AGENT_OPTIONS_WITH_TOOL,
            **exactly_one_of("pod", "selector"),
        }
    )

    kind: Literal["kubernetes"]
    pod: str | None = Field(None, description="One pod, by name.")
    selector: str | None = Field(
        None,
        description='A label selector, e.g. "app=airflow-worker".',
        json_schema_extra={"pattern": r"\S"},
    )
    namespace: str | None = Field(
        None,
        description="Default: kubernetes.namespace, else the context's namespace, else default.",
    )
    container: str | None = Field(None, description="Default: the pod's first container.")
    tool: ShellTool | Literal["auto"] | None = Field(
        None, description="Run this tool through the shell prober instead of the Python agent."
    )
    python: str = Field("python3", description="The interpreter to run in the container.")
    max_pods: PositiveCount | None = Field(None, description="Probe from at most this many pods.")
    debug: DebugSpec | None = Field(
        None,
        description="Where a pod has neither python3 nor sh: probe from an ephemeral container "
        "in it.",
    )

    @model_validator(mode="after")
    def _one_way_to_name_pods(self) -> KubernetesSourceSpec:
        if (self.pod is None) == (self.selector is None):
            raise ValueError("give exactly one of pod: or selector:")
        if self.selector is not None and not self.selector.strip():
            raise ValueError("an empty selector would match every pod: name the labels")
        _check_agent_options(self, self.tool)
        return self


class NodeSelectionSpec(SpecModel):
    """Which nodes get a probe pod: those matching `selector` whose names match `names`."""

    selector: str | None = Field(
        None,
        description='A label selector, e.g. "node-role.kubernetes.io/worker" (default: every '
        "node).",
        json_schema_extra={"pattern": r"\S"},
    )
    names: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Node names; globs allowed (default: every name).",
        min_length=1,
    )
    control_plane: Flag = Field(
        False,
        description="Include control-plane nodes: their pods tolerate the control-plane "
        "NoSchedule taints (otherwise such a node is a row with the scheduler's reason).",
    )

    @model_validator(mode="after")
    def _no_empty_selector(self) -> NodeSelectionSpec:
        if self.selector is not None and not self.selector.strip():
            raise ValueError("an empty selector: leave it out to take every node")
        return self


class KubernetesNodesSourceSpec(PythonSourceOptions):
    """One short-lived probe pod on each selected node, one row per node named SOURCE/NODE: the
    agent runs as the pod's command (python3 in `image`; else the shell prober), its results
    come back on the pod's log. Pods are pinned to their node, labelled with the run, bounded
    by activeDeadlineSeconds and deleted at the end (on Ctrl-C and SIGTERM too); a node that
    cannot run one (cordoned, a taint, an image pull failure, a quota, an admission refusal) is
    a row with the API's reason."""

    model_config = ConfigDict(json_schema_extra=_NO_AGENT_OPTIONS_WITH_TOOL)

    kind: Literal["kubernetes-nodes"]
    nodes: NodeSelectionSpec = Field(
        default_factory=NodeSelectionSpec, description="Which nodes (default: all)."
    )
    host_network: Flag = Field(
        False,
        description="Probe as the node itself (hostNetwork: NodePort, the node's routes and "
        "resolver), or as a pod on it (false).",
    )
    image: str = Field(
        DEFAULT_PROBE_IMAGE,
        description="The probe pods' image: python3 for the agent (else sh and a tool).",
        json_schema_extra={"pattern": r"\S"},
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        None, description="Default: the cluster's (IfNotPresent for a tagged image)."
    )
    namespace: str | None = Field(
        None,
        description="Where the probe pods are made. Default: kubernetes.namespace, else the "
        "context's namespace, else default.",
    )
    env: EnvVars = Field(
        default_factory=dict, description="Environment of the probe pods, e.g. HTTP_PROXY."
    )
    tool: ShellTool | Literal["auto"] | None = Field(
        None, description="Run this tool through the shell prober instead of the Python agent."
    )
    python: str = Field("python3", description="The interpreter to run in the probe pods.")
    max_nodes: PositiveCount | None = Field(None, description="Probe from at most this many nodes.")
    start_timeout: Duration = Field(
        120.0,
        description="How long a probe pod may take to start (scheduling, image pull) before its "
        "row fails with what it was doing.",
    )

    @model_validator(mode="after")
    def _agent_options_need_the_agent(self) -> KubernetesNodesSourceSpec:
        _check_agent_options(self, self.tool)
        return self


SourceSpec = Annotated[
    Union[
        LocalSourceSpec,
        ProcessSourceSpec,
        ShellSourceSpec,
        NetnsSourceSpec,
        DockerSourceSpec,
        KubernetesSourceSpec,
        KubernetesNodesSourceSpec,
    ],
    Field(discriminator="kind"),
]
