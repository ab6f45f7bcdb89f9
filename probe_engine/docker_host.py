"""Which Docker daemon a `docker` source talks to: the run's say on it (DockerOverrides)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DockerOverrides:
    """The run's Docker daemon (e.g. from an Airflow connection), for every `docker` source
    without a `host:` of its own; `origin` says where it came from, for messages."""

    host: str | None = None
    origin: str = "the run's Docker host"
