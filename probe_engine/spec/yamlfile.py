"""Reads YAML keeping every node's position, so errors can say FILE:LINE:COL.

libyaml's composer (CSafeLoader) gives nodes with marks fast; the walk below builds plain
Python values, records each value's position by its path, rejects duplicate keys (PyYAML
silently keeps the last) and substitutes ${NAME} / ${NAME:-default} from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml

from ..errors import SpecError, SpecErrors

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml: slower, same result
    _Loader = yaml.SafeLoader

# Where a value sits in the document: its keys and list indexes from the root.
KeyPath = tuple[str | int, ...]
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\})")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
# Scalars built by calling PyYAML's constructor directly: construct_object's bookkeeping
# (recursion guard, memo of every node) costs more than the value itself, thousands of times.
_PLAIN_SCALARS = {
    f"tag:yaml.org,2002:{name}": yaml.constructor.SafeConstructor.yaml_constructors[
        f"tag:yaml.org,2002:{name}"
    ]
    for name in ("int", "float", "bool", "null")
}


class Position(NamedTuple):
    line: int  # 1-based, as editors count
    column: int


@dataclass
class Document:
    """Plain data plus where each value (and each mapping key) sits in the file.

    Only an error needs a position, so positions are found from the YAML nodes (`root`) the
    first time they are asked for: a valid 5000-target file never pays for 35,000 of them.
    """

    data: Any
    file: str
    root: yaml.Node | None = field(default=None, repr=False)
    _found: tuple[dict[KeyPath, Position], dict[KeyPath, Position]] | None = field(
        default=None, repr=False
    )

    @property
    def positions(self) -> dict[KeyPath, Position]:
        return self._locate()[0]

    @property
    def key_positions(self) -> dict[KeyPath, Position]:
        return self._locate()[1]

    def _locate(self) -> tuple[dict[KeyPath, Position], dict[KeyPath, Position]]:
        if self._found is None:
            walker = _Walker(self.file, {}, record=True)
            if self.root is not None:
                walker.walk(self.root, ())
            self._found = (walker.positions, walker.key_positions)
        return self._found

    def position(self, path: KeyPath) -> Position | None:
        """The position of the deepest node on `path` that exists."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return None

    def error(self, path: KeyPath, message: str, *, key: bool = False) -> SpecError:
        where = (self.key_positions.get(path) if key else None) or self.position(path)
        return SpecError(
            message,
            file=self.file,
            line=where.line if where else None,
            column=where.column if where else None,
            field=dotted(path) or None,
        )


def dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Walker:
    """Builds the values (and the errors) of a node tree, or, with `record`, its positions."""

    def __init__(self, file: str, environ: Mapping[str, str], record: bool = False) -> None:
        self.file = file
        self.environ = environ
        self.record = record
        self.positions: dict[KeyPath, Position] = {}
        self.key_positions: dict[KeyPath, Position] = {}
        self.errors: list[SpecError] = []
        self.constructor = yaml.constructor.SafeConstructor()

    def mark(self, node: yaml.Node) -> Position:
        return Position(node.start_mark.line + 1, node.start_mark.column + 1)

    def walk(self, node: yaml.Node, path: KeyPath) -> Any:
        if self.record:
            self.positions[path] = self.mark(node)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, (*path, index)) for index, item in enumerate(node.value)]
        value = self.scalar(node)
        if isinstance(value, str) and "$" in value:
            value = self.interpolate(value, node, path)
        return value

    def scalar(self, node: yaml.Node) -> Any:
        if node.tag == _STR_TAG:
            return node.value
        construct = _PLAIN_SCALARS.get(node.tag)
        if construct is not None:
            return construct(self.constructor, node)
        return self.constructor.construct_object(node, deep=True)  # timestamps, errors...

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged = self.walk(value_node, path)
                for item in merged if isinstance(merged, list) else [merged]:
                    if isinstance(item, dict):
                        for key, value in item.items():
                            result.setdefault(key, value)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, path, "keys must be plain names, not lists or mappings")
                continue
            key = self.scalar(key_node)
            key = str(key) if not isinstance(key, str) else key
            key_path = (*path, key)
            if key in result:
                if not self.record:
                    first = self.first_key(node, path, key_path)
                    message = f"duplicate key {key!r} (first at line {first.line})"
                    self.fail(key_node, key_path, message)
                continue
            if self.record:
                self.key_positions[key_path] = self.mark(key_node)
            result[key] = self.walk(value_node, key_path)
        return result

    def first_key(self, node: yaml.MappingNode, path: KeyPath, key_path: KeyPath) -> Position:
        """Where a key first appears in a mapping (or in what it merges): an error's detail."""
        finder = _Walker(self.file, {}, record=True)
        finder.walk(node, path)
        return finder.key_positions[key_path]

    def interpolate(self, text: str, node: yaml.Node, path: KeyPath) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match.group("name")
            if name is None:
                return "$"  # "$$" is a literal dollar
            value = self.environ.get(name)
            if value is None or (value == "" and match.group("default") is not None):
                if match.group("default") is not None:
                    return match.group("default")
                self.fail(
                    node,
                    path,
                    f"environment variable {name} is not set "
                    f"(write ${{{name}:-default}} for a fallback)",
                )
                return ""
            return value

        return _VARIABLE.sub(substitute, text)

    def fail(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        where = self.mark(node)
        self.errors.append(
            SpecError(
                message,
                file=self.file,
                line=where.line,
                column=where.column,
                field=dotted(path) or None,
            )
        )


def load_document(text: str, file: str, environ: Mapping[str, str]) -> Document:
    """Parse `text`; raise SpecError (with its position) for invalid YAML, duplicate keys
    and unset variables."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(filter(None, [exc.problem, exc.context and f"({exc.context})"]))
        raise SpecError(
            f"invalid YAML: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    walker = _Walker(file, environ)
    if node is None:
        raise SpecError(
            "the file is empty: expected a mapping with sources and targets",
            file=file,
            line=1,
            column=1,
        )
    data = walker.walk(node, ())
    if walker.errors:
        raise SpecErrors(sorted(walker.errors, key=lambda e: (e.line or 0, e.column or 0)))
    return Document(data, file, node)
