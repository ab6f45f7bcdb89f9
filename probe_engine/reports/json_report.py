"""report.json: the MatrixResult itself, the stable schema other tools read."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import TypeAdapter

from ..results import CellResult, MatrixResult

CELLS_PER_CHUNK = 1000
_CELLS = TypeAdapter(list[CellResult])
# The cells in model_dump_json(indent=2) of a result without them: a key of the top object
# (two spaces in, after a line break: in a string both would be escaped).
_NO_CELLS = b'\n  "cells": []'


def render_json(result: MatrixResult) -> bytes:
    # model_dump_json(indent=2) as the bytes pydantic-core makes, without its decode to str
    # and our encode back (two copies of a file that is 150 MB at 100,000 cells).
    return result.__pydantic_serializer__.to_json(result, indent=2) + b"\n"


def json_chunks(result: MatrixResult) -> Iterator[bytes]:
    """render_json's bytes in pieces, the cells a thousand at a time, for a writer to stream:
    a 100,000-cell report (150 MB) is never whole in memory, nor copied."""
    if not result.cells:
        yield render_json(result)
        return
    rest = result.model_copy(update={"cells": []})
    outside = rest.__pydantic_serializer__.to_json(rest, indent=2)
    at = outside.index(_NO_CELLS)
    yield outside[:at] + b'\n  "cells": ['
    cells = result.cells
    for start in range(0, len(cells), CELLS_PER_CHUNK):
        listed = _CELLS.dump_json(cells[start : start + CELLS_PER_CHUNK], indent=2)
        if start:
            yield b","
        # '[\n  {...},\n  {...}\n]' -> the same items one level deeper, without the brackets.
        yield listed[1:-2].replace(b"\n", b"\n  ")
    yield b"\n  ]" + outside[at + len(_NO_CELLS) :] + b"\n"
