"""Fault injection and what the server saw: requests, exec sessions."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Fault:
    """A misbehaviour for requests whose path matches ``pattern`` (fnmatch; ``*`` spans ``/``).

    - ``status``: answer with this code and a matching Status object (before any upgrade).
    - ``delay``: sleep this long first (seconds).
    - ``abort``: REST: cut the TCP connection without answering.
    - ``drop_after_bytes``: WebSocket: abort the TCP connection (no close frame) once this many
      payload bytes were sent to the client (0: right after the first frame).
    - ``times``: fire this many times only (None: every time); ``hits`` counts firings.
    """

    pattern: str
    status: int | None = None
    delay: float = 0.0
    abort: bool = False
    drop_after_bytes: int | None = None
    message: str | None = None
    method: str | None = None
    times: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.pattern)


@dataclass
class RequestRecord:
    """One request the server received (``status`` 101 for an accepted WebSocket)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    websocket: bool
    authorization: str | None
    status: int = 0

    def param(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


@dataclass
class ExecRecord:
    """One exec session: what ran where, and how it ended."""

    namespace: str
    pod: str
    container: str
    command: list[str]
    argv: list[str]
    protocol: str
    exit_code: int | None = None
    client_closed: bool = False
    dropped: bool = False


RECORD_KEY = web.RequestKey("kubelab.record", RequestRecord)
FAULT_KEY = web.RequestKey("kubelab.fault", Fault)
