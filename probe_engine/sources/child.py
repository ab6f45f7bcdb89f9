"""Running a child process that speaks the agent protocol (process and netns sources)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from subprocess import PIPE
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream, Process

from ..agent.proxy import redact
from ..targets.base import CellRequest
from .agent_session import AgentSession
from .base import Sink, fail_batch

STDERR_LIMIT = 16 << 10


async def collect_limited(stream: ByteReceiveStream | None, into: bytearray) -> None:
    if stream is None:
        return
    async for chunk in stream:
        if len(into) < STDERR_LIMIT:
            into.extend(chunk[: STDERR_LIMIT - len(into)])


async def stop_process(process: Process) -> None:
    """Terminate, then kill: a child must never outlive the run."""
    if process.returncode is not None:
        return
    try:
        process.terminate()
    except ProcessLookupError:
        return
    with anyio.move_on_after(1.0, shield=True):
        await process.wait()
        return
    try:
        process.kill()
    except ProcessLookupError:
        return
    with anyio.CancelScope(shield=True):
        await process.wait()


def describe_exit(returncode: int | None, stderr: bytes) -> str:
    tail = redact(stderr.decode(errors="replace").strip())[-600:]
    if returncode is not None and returncode < 0:
        what = f"killed by signal {-returncode}"
    else:
        what = f"exited with status {returncode}"
    return f"the agent {what}" + (f": {tail}" if tail else "")


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
    stderr = bytearray()
    try:
        process = await anyio.open_process(command, stdin=PIPE, stdout=PIPE, stderr=PIPE, env=env)
    except OSError as exc:
        return f"cannot start {command[0]}: {exc.strerror or exc}"
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(collect_limited, process.stderr, stderr)
            assert process.stdin is not None
            assert process.stdout is not None
            try:
                await process.stdin.send(payload)
                await process.stdin.aclose()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass  # it died at once; its exit status and stderr will say why
            await session.read(process.stdout)
            await process.wait()
    finally:
        await stop_process(process)
    if session.finished and len(session.answered) == len(batch):
        return None
    reason = describe_exit(process.returncode, bytes(stderr))
    if session.noise and not stderr:
        reason += ": " + " | ".join(session.noise[:3])
    if session.answered or session.finished:
        # Part of the batch ran: report the rest with the reason, and say nothing more.
        fail_batch(sink, row, source_name, batch, reason, done=session.answered)
        return None
    return reason
