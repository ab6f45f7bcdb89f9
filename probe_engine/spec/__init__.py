"""WHAT the user declared: the matrix models and the loader. No I/O but reading the file."""

from __future__ import annotations

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
