"""probe-engine: from where can what be reached, and if not, exactly why not.

>>> from probe_engine import load_matrix, run_matrix
>>> result = anyio.run(run_matrix, load_matrix("configs/local.yaml"))
"""

from __future__ import annotations

from ._version import __version__
from .engine import RunOptions, run_matrix
from .errors import EngineError, ProbeEngineError, SpecError
from .plan import Selection
from .results import CellResult, CheckRecord, Finding, MatrixResult
from .spec import LoadedMatrix, Matrix, load_matrix, load_matrix_dict

__all__ = [
    "CellResult",
    "CheckRecord",
    "EngineError",
    "Finding",
    "LoadedMatrix",
    "Matrix",
    "MatrixResult",
    "ProbeEngineError",
    "RunOptions",
    "Selection",
    "SpecError",
    "__version__",
    "load_matrix",
    "load_matrix_dict",
    "run_matrix",
]
