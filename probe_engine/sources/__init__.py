"""WHERE FROM: one source kind per module, registered here."""

from __future__ import annotations

from .base import RunSettings, Sink, Source
from .docker import DockerSource
from .kubernetes import KubernetesSource
from .kubernetes_nodes import KubernetesNodesSource
from .local import LocalSource
from .netns import NetnsSource
from .process import ProcessSource
from .shell import ShellSource

# One entry per source kind; a test checks these keys equal the spec's `kind` values.
SOURCES: dict[str, type[Source]] = {
    "local": LocalSource,
    "process": ProcessSource,
    "shell": ShellSource,
    "netns": NetnsSource,
    "docker": DockerSource,
    "kubernetes": KubernetesSource,
    "kubernetes-nodes": KubernetesNodesSource,
}

__all__ = ["SOURCES", "RunSettings", "Sink", "Source"]
