"""report.json: the MatrixResult itself, the stable schema other tools read."""

from __future__ import annotations

from ..results import MatrixResult


def render_json(result: MatrixResult) -> bytes:
    return result.model_dump_json(indent=2, exclude_none=False).encode() + b"\n"
