"""Reads a matrix file's YAML into plain values, bounded, and knows where each value sits.

The values are built in one pass over libyaml's events (yamlevents.py), without PyYAML's
node graph. Duplicate keys, aliases to nothing, unsupported tags and unset ${NAME}s are
collected, each with its position, so one run reports them all. Positions of every value are
only needed for errors: they are found by a second pass, the first time one is asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import SpecError
from .keypath import KeyPath, Position, dotted
from .limits import MAX_DOCUMENT_BYTES
from .yamlevents import Builder


@dataclass
class Document:
    """Plain data, the problems found while reading it, and where each value sits."""

    data: Any
    file: str
    text: str | None = field(default=None, repr=False)
    problems: list[SpecError] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
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
            builder = Builder(self.file, {}, record=True)
            if self.text is not None:
                with contextlib.suppress(SpecError):  # only a file read cleanly is located
                    builder.build(self.text)
            self._found = (builder.positions, builder.key_positions)
        return self._found

    def position(self, path: KeyPath) -> Position | None:
        """The position of the deepest value on `path` that exists."""
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


def check_size(text: str, file: str) -> bytes:
    """The text as UTF-8, refused above MAX_DOCUMENT_BYTES."""
    data = text.encode("utf-8", errors="surrogateescape")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SpecError(
            f"the file is {len(data):,} bytes: more than the {MAX_DOCUMENT_BYTES:,} a matrix "
            "may have",
            file=file,
        )
    return data


def read_yaml(text: str, file: str = "<yaml>") -> Any:
    """The values of a YAML text as the matrix loader reads them (YAML 1.2, bounded), with
    ${NAME}s left as written: what an editor's schema check sees."""
    check_size(text, file)
    return Builder(file, None).build(text)


def load_document(text: str, file: str, environ: Mapping[str, str]) -> Document:
    """Parse `text` into a Document; raise SpecError for what stops reading (invalid YAML, a
    limit); other problems (duplicate keys, unset variables...) are kept in `problems`."""
    check_size(text, file)
    builder = Builder(file, environ)
    data = builder.build(text)
    if builder.documents == 0:
        raise SpecError(
            "the file is empty: expected a mapping with sources and targets",
            file=file,
            line=1,
            column=1,
        )
    return Document(data, file, text, builder.problems, builder.replaced)
