"""The probe core, also shipped as the agent: standard library only, Python 3.8 compatible.

`run_batch` runs cells here (the local source); `ship.agent_command` and `ship.agent_payload`
carry the same modules to a child process, a container or a pod, where they run from stdin.
"""

from __future__ import annotations

from .runner import run_batch

__all__ = ["run_batch"]
