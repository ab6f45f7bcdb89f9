"""Running a child process that speaks the agent protocol (process and netns sources)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from subprocess import PIPE
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream, Process

from ..agent.proxy import redact
from ..model import CellRequest
from .agent_session import AgentSession
from .base import Sink, fail_batch

STDERR_LIMIT = 16 << 10


async def collect_limited(stream: ByteReceiveStream | None, into: bytearray) -> None:
    if stream is None:
        return
    async for chunk in stream:
        if len(into) < STDERR_LIMIT:
            into.extend(chunk[: STDERR_LIMIT - len(into)])


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
    """Terminate, then kill, the child and everything it started: nothing outlives the run."""
    if process.returncode is None:
        _signal_group(process, signal.SIGTERM)
        with anyio.move_on_after(1.0, shield=True):
            await process.wait()
    # Even after the leader exits, tools it put in the background may still run.
    _signal_group(process, signal.SIGKILL)
    if os.path.isdir("/proc"):
        _kill_session(process.pid)
    if process.returncode is None:
        with anyio.CancelScope(shield=True):
            await process.wait()


async def open_child(command: list[str], env: dict[str, str] | None) -> Process:
    """Start a child in its own session, so that stopping it stops all it started."""
    return await anyio.open_process(
        command, stdin=PIPE, stdout=PIPE, stderr=PIPE, env=env, start_new_session=True
    )


def describe_exit(returncode: int | None, stderr: bytes) -> str:
    tail = redact(stderr.decode(errors="replace").strip())[-600:]
    if returncode is not None and returncode < 0:
        what = f"killed by signal {-returncode}"
    else:
        what = f"exited with status {returncode}"
    return f"the agent {what}" + (f": {tail}" if tail else "")


@dataclass(frozen=True)
class ChildExit:
    """How a child ended: its exit status (negative: the signal that killed it), its stderr."""

    returncode: int | None
    stderr: bytes

    def describe(self) -> str:
        return describe_exit(self.returncode, self.stderr)


async def run_child(
    command: list[str],
    env: dict[str, str] | None,
    payload: bytes,
    read: Callable[[ByteReceiveStream], Awaitable[None]],
    on_started: Callable[[Process], Awaitable[None]] | None = None,
) -> ChildExit | str:
    """Start `command`, write `payload` to its stdin, let `read` consume its stdout, then stop
    it and everything it started. How it ended, or (a str) why it could not start.

    `on_started` sees the process before it gets its payload (the netns source reads the
    namespace's routes through it)."""
    stderr = bytearray()
    try:
        process = await open_child(command, env)
    except OSError as exc:
        return f"cannot start {command[0]}: {exc.strerror or exc}"
    try:
        async with anyio.create_task_group() as group:
            assert process.stdin is not None
            assert process.stdout is not None
            group.start_soon(collect_limited, process.stderr, stderr)
            if on_started is not None:
                await on_started(process)
            try:
                await process.stdin.send(payload)
                await process.stdin.aclose()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass  # it died at once; its exit status and stderr will say why
            await read(process.stdout)
            await process.wait()
    finally:
        await stop_process(process)
    return ChildExit(process.returncode, bytes(stderr))


async def run_agent_process(
    command: list[str],
    env: dict[str, str] | None,
    payload: bytes,
    row: str,
    source_name: str,
    batch: Sequence[CellRequest],
    sink: Sink,
    on_hello: Callable[[dict[str, Any]], None],
) -> str | None:
    """Run the agent as a child; report its cells. Returns why it failed, or None if it did not.

    Cells the agent did not answer are reported here as source-error (with the reason).
    """
    session = AgentSession(row, source_name, batch, sink, on_hello)
    ended = await run_child(command, env, payload, session.read)
    if isinstance(ended, str):
        return ended
    if session.complete:
        return None
    reason = ended.describe()
    if session.noise and not ended.stderr:
        reason += ": " + " | ".join(session.noise[:3])
    if session.answered or session.finished:
        # Part of the batch ran: report the rest with the reason, and say nothing more.
        fail_batch(sink, row, source_name, batch, reason, done=session.answered)
        return None
    return reason
