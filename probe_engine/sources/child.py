"""The child-process channel: a program started here, in a session of its own (process and shell
sources; netns wraps it in `ip netns exec`). Stopping it stops everything it started."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from subprocess import PIPE

import anyio
from anyio.abc import ByteReceiveStream, Process

from .channel import Channel, ChannelError, ExitStatus, Leftover

TERM_GRACE = 1.0  # after SIGTERM, before SIGKILL: the agent stops probing and says done
REAP_WITHIN = 3.0  # a SIGKILLed process is gone at once, unless stuck in the kernel


class ChildChannel(Channel):
    """`command` as a child of this process, with `env` (None: this process's)."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        super().__init__(command)
        self.env = dict(env) if env is not None else None
        self.process: Process | None = None

    async def open(self) -> None:
        try:
            # A session of its own: stopping it reaches the tools it started, whatever their
            # process group.
            self.process = await anyio.open_process(
                self.command,
                stdin=PIPE,
                stdout=PIPE,
                stderr=PIPE,
                env=self.env,
                start_new_session=True,
            )
        except OSError as exc:
            raise ChannelError(f"cannot start {self.command[0]}: {exc.strerror or exc}") from exc

    async def send(self, data: bytes) -> None:
        stdin = self._started().stdin
        assert stdin is not None
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await stdin.send(data)
            await stdin.aclose()  # a child can be told the input ended

    async def receive(self, on_line: Callable[[bytes], None]) -> None:
        process = self._started()
        assert process.stdout is not None
        async with anyio.create_task_group() as group:
            group.start_soon(self._keep_stderr, process.stderr)
            await _read(process.stdout, lambda chunk: self.take(chunk, on_line))
            self.flush(on_line)
            group.cancel_scope.cancel()  # a straggler of its own session may hold stderr

    def _started(self) -> Process:
        if self.process is None:
            raise RuntimeError("the channel is not open")
        return self.process

    async def _keep_stderr(self, stream: ByteReceiveStream | None) -> None:
        if stream is not None:
            await _read(stream, self.stderr.add)

    async def exit_status(self) -> ExitStatus:
        code = await self._started().wait()
        return ExitStatus(signal=-code) if code < 0 else ExitStatus(code=code)

    async def stop(self, leftover: Leftover | None) -> None:
        await self.aclose()  # the whole session goes, whatever the runner knows of it

    async def aclose(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            await stop_process(process)


async def _read(stream: ByteReceiveStream, on_chunk: Callable[[bytes], None]) -> None:
    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        async for chunk in stream:
            on_chunk(chunk)


def _signal_group(process: Process, signal_number: int) -> bool:
    """Signal the child's whole process group (tools run in the background by the shell
    prober included); False once nothing is left to signal."""
    try:
        os.killpg(process.pid, signal_number)
    except ProcessLookupError:
        return False
    except PermissionError:  # not a group leader after all: the process alone
        try:
            os.kill(process.pid, signal_number)
        except ProcessLookupError:
            return False
    return True


def _kill_session(session: int) -> None:
    """SIGKILL every process of a session: tools may have made process groups of their own."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # the fields after the name: state ppid pgrp session
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


async def stop_process(process: Process) -> None:
    """Terminate, then kill, the child and everything it started: nothing outlives the run.
    Shielded from cancellation and bounded in time."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            _signal_group(process, signal.SIGTERM)
            with anyio.move_on_after(TERM_GRACE):
                await process.wait()
        # Even after the leader exits, tools it put in the background may still run.
        _signal_group(process, signal.SIGKILL)
        if os.path.isdir("/proc"):
            _kill_session(process.pid)
        if process.returncode is None:
            with anyio.move_on_after(REAP_WITHIN):
                await process.wait()
