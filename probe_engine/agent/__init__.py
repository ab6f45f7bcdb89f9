"""The probe core, also shipped as the agent: standard library only, Python 3.8 compatible.

`run_batch` runs cells here (the local source); `ship.agent_command` and `ship.agent_payload`
carry the same modules to a child process, a container or a pod, where they run from stdin.
`run_batch` is imported on first use: the status table (classify) is read by every command,
and should not bring the whole runner with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import run_batch

__all__ = ["run_batch"]


def __getattr__(name: str) -> Any:
    if name == "run_batch":
        from .runner import run_batch

        return run_batch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
