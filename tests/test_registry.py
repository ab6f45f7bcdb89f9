"""Every kind a matrix can declare has exactly one implementation registered, and no more.

The spec's discriminated unions are the one list of kinds; the registries must match them, so
a kind added to one place and forgotten in the other fails here instead of at a user's run.
"""

from __future__ import annotations

import typing
from typing import Any

import pytest

from probe_engine.sources import SOURCES
from probe_engine.spec import SourceSpec, TargetSpec
from probe_engine.targets import RESOLVERS


def declared_kinds(union: Any) -> set[str]:
    """The `kind` values of an Annotated[A | B | ..., Field(discriminator="kind")] union."""
    members = typing.get_args(typing.get_args(union)[0])
    kinds: set[str] = set()
    for model in members:
        kinds.update(typing.get_args(model.model_fields["kind"].annotation))
    return kinds


@pytest.mark.parametrize(
    ("family", "registry", "union"),
    [("sources", SOURCES, SourceSpec), ("targets", RESOLVERS, TargetSpec)],
)
def test_registry_keys_equal_the_spec_kinds(
    family: str, registry: dict[str, Any], union: Any
) -> None:
    assert set(registry) == declared_kinds(union), family


def test_each_source_class_says_its_own_kind() -> None:
    assert {kind: cls.kind for kind, cls in SOURCES.items()} == {k: k for k in SOURCES}


def test_netns_is_a_declared_and_registered_source_kind() -> None:
    assert "netns" in declared_kinds(SourceSpec)
    assert SOURCES["netns"].__module__ == "probe_engine.sources.netns"
