"""probe-engine: from where can what be reached, and if not, exactly why not.

>>> from probe_engine import load_matrix, run_matrix
>>> result = anyio.run(run_matrix, load_matrix("configs/local.yaml"))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
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

# Imported on first use, so that `probe-engine --version` (and any command that needs only a
# part of the package) does not pay for pydantic and the whole engine at start-up.
_WHERE = {
    "RunOptions": ".engine",
    "run_matrix": ".engine",
    "EngineError": ".errors",
    "ProbeEngineError": ".errors",
    "SpecError": ".errors",
    "Selection": ".plan",
    "CellResult": ".results",
    "CheckRecord": ".results",
    "Finding": ".results",
    "MatrixResult": ".results",
    "LoadedMatrix": ".spec",
    "Matrix": ".spec",
    "load_matrix": ".spec",
    "load_matrix_dict": ".spec",
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
