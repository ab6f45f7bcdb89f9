"""report.json: the MatrixResult itself, the stable schema other tools read."""

from __future__ import annotations

from ..results import MatrixResult


def render_json(result: MatrixResult) -> bytes:
    # model_dump_json(indent=2) as the bytes pydantic-core makes, without its decode to str
    # and our encode back (two copies of a file that is 150 MB at 100,000 cells).
    return result.__pydantic_serializer__.to_json(result, indent=2) + b"\n"
