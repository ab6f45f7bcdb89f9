"""WHAT the user declared: the matrix models and the loader. No I/O but reading the file.

Names are imported on first use: a file refused while it is read (not YAML, past a limit)
is answered before pydantic and the models are even imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .load import LoadedMatrix, load_matrix, load_matrix_dict, load_matrix_text
    from .matrix import CellPattern, Defaults, Expectation, Matrix
    from .sources import SourceSpec
    from .targets import TargetSpec

__all__ = [
    "CellPattern",
    "Defaults",
    "Expectation",
    "LoadedMatrix",
    "Matrix",
    "SourceSpec",
    "TargetSpec",
    "load_matrix",
    "load_matrix_dict",
    "load_matrix_text",
]
_WHERE = {
    "LoadedMatrix": ".load",
    "load_matrix": ".load",
    "load_matrix_dict": ".load",
    "load_matrix_text": ".load",
    "CellPattern": ".matrix",
    "Defaults": ".matrix",
    "Expectation": ".matrix",
    "Matrix": ".matrix",
    "SourceSpec": ".sources",
    "TargetSpec": ".targets",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
