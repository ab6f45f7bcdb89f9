"""Drives a shipped agent over any byte channel: payload in, JSON lines out, cells reported.

Process, netns, docker and kubernetes sources differ only in how they open the channel.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream
from anyio.streams.buffered import BufferedByteReceiveStream

from ..agent.proxy import redact
from ..targets.base import CellRequest
from .base import Sink, make_result

MAX_LINE = 4 << 20


class AgentSession:
    """Reads an agent's output for one row; remembers which cells it answered."""

    def __init__(
        self,
        row: str,
        source_name: str,
        batch: Sequence[CellRequest],
        sink: Sink,
        on_hello: Callable[[dict[str, Any]], None],
    ) -> None:
        self.row = row
        self.source_name = source_name
        self.by_id = {r.id: r for r in batch}
        self.sink = sink
        self.on_hello = on_hello
        self.answered: set[int] = set()
        self.finished = False
        self.stats: dict[str, Any] = {}
        self.noise: list[str] = []  # lines that were not the agent's (a shell's banner...)

    def feed(self, line: bytes) -> None:
        text = line.strip()
        if not text:
            return
        try:
            message = json.loads(text)
        except ValueError:
            if len(self.noise) < 20:
                self.noise.append(redact(text.decode(errors="replace"))[:300])
            return
        kind = message.get("type")
        if kind == "hello":
            self.on_hello(message.get("facts") or {})
        elif kind == "result":
            request = self.by_id.get(message.get("id"))
            if request is not None and request.id not in self.answered:
                self.answered.add(request.id)
                self.sink.result(make_result(self.row, self.source_name, request, message))
        elif kind == "done":
            self.finished = True
            self.stats = message.get("stats") or {}

    async def read(self, stream: ByteReceiveStream) -> None:
        buffered = BufferedByteReceiveStream(stream)
        while True:
            try:
                line = await buffered.receive_until(b"\n", MAX_LINE)
            except (
                anyio.EndOfStream,
                anyio.IncompleteRead,
                anyio.ClosedResourceError,
                anyio.BrokenResourceError,
            ):
                return
            except anyio.DelimiterNotFound:
                self.noise.append(f"an output line longer than {MAX_LINE} bytes was dropped")
                return
            self.feed(line)
