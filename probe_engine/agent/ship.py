"""Carries the agent to where a probe runs: `python3 -c BOOTSTRAP`, the modules on stdin.

Nothing is installed at the far end. The bootstrap first says which bytecode it runs (a "ready"
line with its magic number), then reads two stdin lines: the agent's modules, then the batch.
The modules travel as this interpreter's compiled code (marshal) when the far end's magic is
this one's (the same Python minor version: the process and netns sources' own interpreter, a
container's python3 of the same release), which then compiles nothing (all modules compile in
~35 ms, load in ~1.5 ms); else as source (zlib), compiled there. Either way a
module is only loaded when imported, and nothing large is sent to a place that has no Python
to read it. Where stdin must be known before the program starts (a probe pod's spec), the
sources travel without asking. Used by every source that runs code elsewhere (process, netns,
docker, kubernetes). This module itself is not shipped.
"""

from __future__ import annotations

import binascii
import importlib.util
import json
import marshal
import sys
import threading
import zlib
from functools import lru_cache
from importlib import resources
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import CodeType
from typing import Any, Mapping

# zlib's levels. The code at 0 (stored): it is made on the path of a place that starts quickly
# (a child process says ready in ~15 ms), and moving 400 kB instead of 190 kB (level 1, made in
# 2-3x the time) showed in no place's floors (bench.remote_start). The sources at 1: 90 kB
# instead of 275, made in a few ms, and they also travel in a probe pod's spec.
LEVELS = {True: 0, False: 1}
MAGIC = importlib.util.MAGIC_NUMBER.hex()

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

# Python 3.8 compatible; kept short because it travels as a command-line argument (a pod exec's
# URL). The finder is duck-typed: importing importlib.abc costs ~25 ms (it pulls in
# importlib.resources). The ready line goes out before json and the rest are imported: the
# modules are made and sent meanwhile. W: the modules line; C: {module: its marshalled code},
# or S: {module: its source}.
BOOTSTRAP = r"""
import importlib.util, sys
sys.stdout.write('{"type":"ready","magic":"%s"}\n' % importlib.util.MAGIC_NUMBER.hex())
sys.stdout.flush()
import binascii, json, marshal, zlib
W = json.loads(sys.stdin.readline())
def U(key):
    return zlib.decompress(binascii.a2b_base64(W[key]))
C = marshal.loads(U("code")) if "code" in W else None
S = None if C else json.loads(U("source"))
class F:
    def find_spec(self, name, path=None, target=None):
        if name == "pe_agent" or name.startswith("pe_agent."):
            return importlib.util.spec_from_loader(name, self, is_package=name == "pe_agent")
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        key = "__init__" if module.__name__ == "pe_agent" else module.__name__[9:]
        code = marshal.loads(C[key]) if C else compile(S[key], "pe_agent/%s.py" % key, "exec")
        exec(code, module.__dict__)
sys.meta_path.insert(0, F())
import pe_agent.stdio
pe_agent.stdio.main()
""".strip()


def agent_command(python: str = "python3") -> list[str]:
    return [python, "-c", BOOTSTRAP]


def _packed(data: bytes, level: int) -> str:
    return binascii.b2a_base64(zlib.compress(data, level), newline=False).decode("ascii")


def _renamed(code: CodeType, filename: str) -> CodeType:
    """`code` (and the functions and classes in it) as if compiled from `filename`: the far
    end's tracebacks name pe_agent/x.py, as when it compiles the source itself."""
    consts = tuple(_renamed(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def compiled_code(name: str, path: Path, source: str) -> CodeType:
    """The module's code as the far end's compile() would make it: from the import system's
    cache (__pycache__, compiled and written on a miss) when this interpreter runs unoptimized
    (a -O cache drops asserts), else compiled here."""
    filename = f"pe_agent/{name}.py"
    if sys.flags.optimize == 0 and path.is_file():
        loader = SourceFileLoader("probe_engine.agent." + name, str(path))
        code = loader.get_code(loader.name)
        if code is not None:
            return _renamed(code, filename)
    return compile(source, filename, "exec", dont_inherit=True, optimize=0)


_making = threading.Lock()  # rows start at once, and may make it in worker threads


def modules_line(compiled: bool = False) -> bytes:
    """The agent's first stdin line, its modules as code for this interpreter's magic or as
    source (made once per process: the code ~15-30 ms, as the import system's cache is read,
    or compiled where it is missing or stale and PYTHONDONTWRITEBYTECODE is set)."""
    with _making:
        return _modules_line(compiled)


@lru_cache(maxsize=2)
def _modules_line(compiled: bool) -> bytes:
    return packed_modules(LEVELS[compiled], compiled)


def packed_modules(level: int, compiled: bool) -> bytes:
    """The modules line, zlib at `level` (0: stored, no compression)."""
    package = resources.files(__package__ or "probe_engine.agent")
    sources = {name: (package / (name + ".py")).read_text(encoding="utf-8") for name in SHIPPED}
    if compiled:
        codes = {
            name: marshal.dumps(compiled_code(name, Path(str(package / (name + ".py"))), text))
            for name, text in sources.items()
        }
        line = {"code": _packed(marshal.dumps(codes), level)}
    else:
        line = {"source": _packed(json.dumps(sources, separators=(",", ":")).encode(), level)}
    return (json.dumps(line, separators=(",", ":")) + "\n").encode()


def batch_line(request: Mapping[str, Any]) -> bytes:
    """The agent's second stdin line: the batch."""
    return (json.dumps(request, separators=(",", ":")) + "\n").encode()


def agent_payload(request: Mapping[str, Any], magic: str | None = None) -> bytes:
    """Everything the agent reads on stdin: its modules (compiled when `magic`, the far end's
    bytecode magic number from its ready line, is this interpreter's), then the batch."""
    return modules_line(magic == MAGIC) + batch_line(request)
