"""The channel: one program running in a place, the only thing a new place has to provide.

A place is wherever probes can run: a child of this process, a network namespace, a container,
a pod, a probe pod made for the run (probe_pod.py), an ephemeral container or a Docker sidecar
(pod exec and docker exec into a place a source made: ephemeral.py, sidecar.py). The remote runner
(`remote.RemoteRow`) owns everything else, once: which program to start (the agent, else the
shell prober), its input, the time budget, hello, partial failure, the exit-status words,
cleanup and the row's facts. A new place is one `Channel` subclass (see child.py, netns.py,
docker_exec.py, pod_exec.py), whose constructor takes the place's arguments and then the
command; its source hands the runner a `remote.Place` with that class, arguments bound:

    class MyChannel(Channel):
        def __init__(self, client, pod, command):  # super().__init__(command); set `where`
        where = "sidecar x of pod ns/y"        # for messages: "the agent in {where} ..."
        async def open(self)                    # start self.command; ChannelError(why) if not
        async def send(self, data)              # the whole stdin; never raises
        async def receive(self, on_line)        # each stdout line to on_line; stderr kept
        async def exit_status(self)             # after the lines end: ExitStatus
        async def stop(self, leftover)          # kill what a cut-short program left behind
        async def aclose(self)                  # release the connection or process

    place = Place(partial(MyChannel, client, pod), facts=what_the_api_says_of_it)
    await RemoteRow(source, row, batch, sink, place).run()

Rules every channel keeps, because the runner relies on them:
- `open` raises only ChannelError, phrased for people ("cannot exec python3 in container x:
  ..."), and leaves nothing open when it does.
- The far end never needs the end of stdin: docker exec and v4 pod exec cannot send it (the
  agent reads two lines, the prober stops at @@END). `send` swallows a dead far end: its exit
  status and stderr say why.
- The whole stdin is known before the program starts: the runner sets `input` before `open`.
  A place whose program takes its input with its start (a probe pod: in the pod's spec) reads
  it there, and its `send` has nothing left to do.
- `receive` returns when the program's stdout ends (or the connection drops: say why in
  `lost`). `take` and `flush` split its chunks into lines: one over MAX_LINE is dropped
  (`overflowed`), the next ones are kept.
- `stop` and `aclose` are called shielded from cancellation and within a time bound by the
  runner; they must not raise.
"""

from __future__ import annotations

import abc
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from anyio.abc import AsyncResource

from ..agent.proxy import redact

MAX_LINE = 4 << 20  # one agent result line; a longer one is dropped, not buffered forever
STDERR_LIMIT = 16 << 10  # what is kept of a program's stderr: enough to say why it failed


class ChannelError(Exception):
    """The program could not be started there; the message says why, in a user's words."""


@dataclass(frozen=True)
class ExitStatus:
    """How a program ended. All None: the place never said (a dropped connection, a stuck
    program); `words`: the place's own account of a failure (a Kubernetes Status message)."""

    code: int | None = None
    signal: int | None = None  # from the OS (a child's negative return code)
    words: str | None = None

    @property
    def known(self) -> bool:
        return self.code is not None or self.signal is not None or bool(self.words)

    def describe(self) -> str:
        """'exited with status 3', 'was killed (SIGKILL, exit status 137)', 'failed: ...'."""
        if self.words:
            return f"failed: {self.words}"
        number = self.signal
        if number is None and self.code is not None and self.code > 128:
            number = self.code - 128  # a shell's and a runtime's way to report a signal
        if number is not None:
            verb = "was terminated" if number == signal.SIGTERM else "was killed"
            status = f", exit status {self.code}" if self.code is not None else ""
            return f"{verb} ({_signal_name(number)}{status})"
        if self.code is None:
            return "did not report an exit status"
        return f"exited with status {self.code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class Leftover:
    """What a cut-short program may have left running in its place, and how to stop it from a
    second program there: the agent by its pid, with its own interpreter (the place may have
    no shell); the shell prober by its process group (its cells' tools outlive the shell)."""

    pid: int
    python: str | None  # the agent's interpreter; None: the prober's process group

    def command(self) -> list[str]:
        if self.python is not None:
            code = f"import os, signal; os.kill({self.pid}, signal.SIGTERM)"
            return [self.python, "-c", code]
        return ["sh", "-c", 'kill -TERM -"$1" 2>/dev/null; exit 0', "kill", str(self.pid)]


class CappedBuffer:
    """A program's stderr: the first STDERR_LIMIT bytes are kept, the rest counted out."""

    def __init__(self, limit: int = STDERR_LIMIT) -> None:
        self.limit = limit
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        if len(self.data) < self.limit:
            self.data.extend(chunk[: self.limit - len(self.data)])

    def text(self) -> str:
        return redact(self.data.decode(errors="replace").strip())


class LineSplitter:
    """Bytes in, complete lines out (without their newline). Each byte is copied once: no
    quadratic rescans when a chunk holds thousands of lines or a line spans many chunks."""

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


class Channel(AsyncResource):
    """One program (`command`) running in a place: stdin in, stdout lines out, an exit status.

    An anyio resource: use as an async context manager (open on enter, aclose on exit), or
    call `open` and `aclose` yourself. The module's docstring says what a subclass keeps to."""

    #: Where the program runs, for messages ("container pe-scheduler"); "" for this machine.
    where: str = ""
    #: Its stdin travels with the command (`input`, read by open()), not through send().
    carries_input: bool = False

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self.input = b""  # the program's whole stdin, set by the runner before open()
        self.stderr = CappedBuffer()
        self.splitter = LineSplitter()
        self.lost: str | None = None  # why the output ended early (the connection broke...)

    @property
    def overflowed(self) -> bool:
        return self.splitter.overflowed

    async def __aenter__(self) -> Channel:
        await self.open()
        return self

    @abc.abstractmethod
    async def open(self) -> None:
        """Start the program; ChannelError (with the reason for people) if it cannot."""

    @abc.abstractmethod
    async def send(self, data: bytes) -> None:
        """Write the program's whole input. Never raises for a far end that went away."""

    @abc.abstractmethod
    async def receive(self, on_line: Callable[[bytes], None]) -> None:
        """Hand each line of its stdout (without the newline) to `on_line` until it ends."""

    @abc.abstractmethod
    async def exit_status(self) -> ExitStatus:
        """How it ended, once its output has; ExitStatus() if the place cannot tell."""

    @abc.abstractmethod
    async def stop(self, leftover: Leftover | None) -> None:
        """Stop what the program left running (a run cut short, a prober killed mid-run)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the process or connection. Idempotent, never raises."""

    def take(self, chunk: bytes, on_line: Callable[[bytes], None]) -> None:
        """A chunk of stdout, as complete lines to `on_line`."""
        for line in self.splitter.feed(chunk):
            on_line(line)

    def flush(self, on_line: Callable[[bytes], None]) -> None:
        """The end of stdout: its last line, if it had no newline."""
        for line in self.splitter.close():
            on_line(line)

    def explain(self, reason: str) -> str:
        """A row's failure in the place's own terms (`ip netns exec` knows its refusals)."""
        return reason

    def in_place(self) -> str:
        """' in container x' for messages, or ' here' for this machine."""
        return f" in {self.where}" if self.where else " here"
