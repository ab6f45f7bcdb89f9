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
from ..model import CellRequest
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
        self.noise: list[str] = []  # lines that were not the agent's (a shell's banner...)

    @property
    def complete(self) -> bool:
        """The agent said done, and answered every cell."""
        return self.finished and len(self.answered) == len(self.by_id)

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

    async def read(self, stream: ByteReceiveStream) -> None:
        if not await read_lines(stream, self.feed):
            self.noise.append(f"an output line longer than {MAX_LINE} bytes was dropped")


class LineSplitter:
    """Bytes in, complete lines out (without their newline), for channels that deliver chunks
    (docker exec frames, WebSocket frames). Each byte is copied once: no quadratic rescans
    when a chunk holds thousands of lines or a line spans many chunks."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self.pending: list[bytes] = []
        self.size = 0
        self.overflowed = False  # some line was longer than `limit` (and was dropped)
        self.skipping = False

    def feed(self, data: bytes) -> list[bytes]:
        parts = data.split(b"\n")
        if len(parts) == 1:
            if not self.skipping:
                self.pending.append(data)
                self.size += len(data)
                if self.size > self.limit:  # drop the rest of this line, keep the next ones
                    self.overflowed = self.skipping = True
                    self.pending, self.size = [], 0
            return []
        lines = [] if self.skipping else [b"".join([*self.pending, parts[0]])]
        lines.extend(parts[1:-1])
        self.skipping = False
        self.pending, self.size = [parts[-1]], len(parts[-1])
        return lines

    def close(self) -> list[bytes]:
        """The last line, if the channel ended without a newline."""
        rest = b"".join(self.pending)
        self.pending, self.size = [], 0
        return [rest] if rest and not self.skipping else []


async def read_lines(
    stream: ByteReceiveStream, on_line: Callable[[bytes], None], limit: int = MAX_LINE
) -> bool:
    """Hand each line of `stream` (without its newline) to `on_line` until the stream ends;
    False if a line ran past `limit` bytes, where reading stops."""
    buffered = BufferedByteReceiveStream(stream)
    while True:
        try:
            line = await buffered.receive_until(b"\n", limit)
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
        ):
            return True
        except anyio.DelimiterNotFound:
            return False
        on_line(line)
