"""The optional integrations (pip extras): what each installs and enables, in one table.

`pip install probe-engine` runs local, process, shell and netns sources, tcp/http/dns targets
and the json, html, junit and markdown reports; each extra adds the rest. Used by
`probe-engine --version` (which are found here), by the rows, columns and commands whose extra
is missing (`MissingExtra`: which one to install), and checked against the README's table and
pyproject.toml's extras by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec


@dataclass(frozen=True)
class Extra:
    name: str
    distributions: tuple[str, ...]  # what `pip install probe-engine[name]` adds
    modules: tuple[str, ...]  # what probe-engine imports from them
    enables: str  # for people: what works once it is installed


EXTRAS: dict[str, Extra] = {
    extra.name: extra
    for extra in (
        Extra("docker", ("aiodocker", "aiohttp"), ("aiodocker", "aiohttp"), "docker sources"),
        Extra(
            "kubernetes",
            ("kubernetes-asyncio", "aiohttp"),
            ("kubernetes_asyncio", "aiohttp"),
            "kubernetes-service targets and kubernetes sources",
        ),
        Extra(
            "prometheus",
            ("prometheus-client", "aiohttp"),
            ("prometheus_client", "aiohttp"),
            "the prometheus report format and `probe-engine serve`",
        ),
        Extra(
            "airflow",
            ("apache-airflow",),
            ("airflow",),
            "the Airflow operator, sensor and provider",
        ),
    )
}


class MissingExtra(ImportError):
    """Something needs an extra that is not installed: the message says which to install."""

    def __init__(self, extra: str, what: str) -> None:
        self.extra = extra
        super().__init__(
            f"{what} needs probe-engine's {extra} extra: pip install 'probe-engine[{extra}]'"
        )


def installed(extra: str) -> bool:
    """Whether every module the extra provides can be imported (without importing it)."""
    return all(find_spec(module) is not None for module in EXTRAS[extra].modules)


def require(extra: str, what: str) -> None:
    """Raise MissingExtra naming `extra` unless it is installed; `what` needs it."""
    if not installed(extra):
        raise MissingExtra(extra, what)


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def describe() -> list[str]:
    """One line per extra: the version of what it installs, or how to install it."""
    lines = []
    for extra in EXTRAS.values():
        main = extra.distributions[0]
        found = version_of(main) if installed(extra.name) else None
        state = f"{main} {found}" if found else "not installed"
        hint = "" if found else f"; pip install 'probe-engine[{extra.name}]'"
        lines.append(f"  {extra.name:<11} {state:<28} {extra.enables}{hint}")
    return lines
