"""WHERE FROM: one source kind per module, registered here."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from .base import RunSettings, Sink, Source


class _Kinds(Mapping[str, type[Source]]):
    """Source kinds by name, each module imported when its kind is first asked for: a run
    from `local` alone never imports the Docker or Kubernetes machinery."""

    def __init__(self, classes: dict[str, str]) -> None:
        self._classes = classes  # kind -> "module:Class"

    def __getitem__(self, kind: str) -> type[Source]:
        module, name = self._classes[kind].split(":")
        found: type[Source] = getattr(importlib.import_module(module, __name__), name)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


# One entry per source kind; a test checks these keys equal the spec's `kind` values.
SOURCES: Mapping[str, type[Source]] = _Kinds(
    {
        "local": ".local:LocalSource",
        "process": ".process:ProcessSource",
        "shell": ".shell:ShellSource",
        "netns": ".netns:NetnsSource",
        "docker": ".docker:DockerSource",
        "kubernetes": ".kubernetes:KubernetesSource",
        "kubernetes-nodes": ".kubernetes_nodes:KubernetesNodesSource",
    }
)

__all__ = ["SOURCES", "RunSettings", "Sink", "Source"]
