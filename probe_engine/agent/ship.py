"""Carries the agent to where a probe runs: `python3 -c BOOTSTRAP`, the modules on stdin.

Nothing is installed at the far end: the first stdin line holds the agent's module sources,
the second the batch. Used by every source that runs code elsewhere (process, netns, docker,
kubernetes). This module itself is not shipped.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

SHIPPED = (
    "__init__",
    "address",
    "classify",
    "proxy_rules",
    "plans",
    "records",
    "proxy",
    "clients",
    "tls",
    "dns",
    "tcp",
    "bind",
    "ping_output",
    "icmp",
    "udp",
    "http",
    "workers",
    "cell",
    "endings",
    "scan",
    "runner",
    "facts",
    "stdio",
)

# Python 3.8 compatible; kept short because it travels as a command-line argument. The finder
# is duck-typed: importing importlib.abc costs ~25 ms (it pulls in importlib.resources).
BOOTSTRAP = r"""
import importlib.util, json, sys
M = json.loads(sys.stdin.readline())
class F:
    def find_spec(self, name, path=None, target=None):
        if name == "pe_agent" or name.startswith("pe_agent."):
            return importlib.util.spec_from_loader(name, self, is_package=name == "pe_agent")
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        key = "__init__" if module.__name__ == "pe_agent" else module.__name__[9:]
        exec(compile(M[key], "pe_agent/%s.py" % key, "exec"), module.__dict__)
sys.meta_path.insert(0, F())
import pe_agent.stdio
pe_agent.stdio.main()
""".strip()


def agent_command(python: str = "python3") -> list[str]:
    return [python, "-c", BOOTSTRAP]


@lru_cache(maxsize=1)
def modules_line() -> bytes:
    package = resources.files(__package__ or "probe_engine.agent")
    sources = {name: (package / (name + ".py")).read_text(encoding="utf-8") for name in SHIPPED}
    return (json.dumps(sources, separators=(",", ":")) + "\n").encode()


def agent_payload(request: Mapping[str, Any]) -> bytes:
    """Everything the agent reads on stdin: its modules, then the batch."""
    return modules_line() + (json.dumps(request, separators=(",", ":")) + "\n").encode()
