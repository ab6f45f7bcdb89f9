"""Exec in the lab's containers through aiodocker: whole runs (exec_run) and sessions that
stream stdin in and stdout out (ExecSession), the exit code from exec inspect."""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiodocker

from .host import DockerLabError


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    seconds: float
    """exec create + start + reading to the end + inspect."""

    @property
    def out(self) -> str:
        return self.stdout.decode(errors="replace")

    @property
    def err(self) -> str:
        return self.stderr.decode(errors="replace")


def _half_close(stream: Any) -> None:
    """Close the write side of an exec's hijacked connection, keep reading: the process sees
    EOF on stdin (what ``docker exec -i`` does with CloseWrite). aiodocker 0.27's
    ``Stream.close()`` writes EOF *and* closes the response, so its output would be lost; this
    reaches into ``Stream._resp`` (private) for the transport."""
    resp = stream._resp
    if resp is None or resp.connection is None or resp.connection.transport is None:
        raise DockerLabError("the exec stream is not open")
    transport = resp.connection.transport
    if transport.can_write_eof():
        transport.write_eof()


async def _exit_code(exec_: Any, timeout: float = 10.0) -> int:
    """The exit code from exec inspect; the exec may still show Running for a moment after its
    output ended."""
    deadline = time.monotonic() + timeout
    while True:
        info: dict[str, Any] = await exec_.inspect()
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        if time.monotonic() > deadline:
            raise DockerLabError(f"exec {exec_.id} still running after its output ended")
        await asyncio.sleep(0.005)


async def exec_run(
    docker: aiodocker.Docker,
    container: str,
    cmd: Sequence[str],
    *,
    stdin: bytes | None = None,
    environment: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> ExecResult:
    """Run ``cmd`` in ``container`` (name or id) like ``docker exec [-i]``: optional stdin (then
    EOF), stdout and stderr collected apart, the exit code from exec inspect."""
    t0 = time.monotonic()

    async def go() -> ExecResult:
        exec_ = await docker.containers.container(container).exec(
            list(cmd),
            stdin=stdin is not None,
            stdout=True,
            stderr=True,
            tty=False,
            environment=dict(environment) if environment else None,
        )
        out, err = bytearray(), bytearray()
        async with exec_.start(detach=False) as stream:
            if stdin is not None:
                if stdin:
                    await stream.write_in(stdin)
                _half_close(stream)
            while (msg := await stream.read_out()) is not None:
                (out if msg.stream == 1 else err).extend(msg.data)
        code = await _exit_code(exec_)
        return ExecResult(code, bytes(out), bytes(err), time.monotonic() - t0)

    return await asyncio.wait_for(go(), timeout)


class ExecSession:
    """One exec with stdin attached, for conversations: write, read stdout as it comes, close
    stdin, get the exit code. ::

        async with ExecSession(docker, "pe-scheduler", ["python3", "-u", "-c", code]) as s:
            await s.write(b"1\\n")
            line = await s.readline()        # before anything else is written
            s.close_stdin()                   # the process sees EOF
            code = await s.wait()             # drains the output, then exec inspect

    stderr is collected in ``self.stderr``; stdout not consumed by ``readline`` ends up in
    ``self.stdout_rest`` after ``wait``."""

    def __init__(
        self,
        docker: aiodocker.Docker,
        container: str,
        cmd: Sequence[str],
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.docker = docker
        self.container = container
        self.cmd = list(cmd)
        self.environment = dict(environment) if environment else None
        self.stderr = bytearray()
        self.stdout_rest = bytearray()
        self._buffer = bytearray()
        self._eof = False
        self._exec: Any = None
        self._stream: Any = None

    async def __aenter__(self) -> ExecSession:
        self._exec = await self.docker.containers.container(self.container).exec(
            self.cmd,
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            environment=self.environment,
        )
        self._stream = self._exec.start(detach=False)
        await self._stream.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            await self._stream.close()

    async def write(self, data: bytes) -> None:
        await self._stream.write_in(data)

    def close_stdin(self) -> None:
        _half_close(self._stream)

    async def _pull(self) -> bool:
        """Read one message; False at the end of the output."""
        msg = await self._stream.read_out()
        if msg is None:
            self._eof = True
            return False
        if msg.stream == 2:
            self.stderr.extend(msg.data)
        else:
            self._buffer.extend(msg.data)
        return True

    async def readline(self) -> bytes:
        """The next stdout line (with its newline; what is left without one at the end)."""
        while b"\n" not in self._buffer and not self._eof:
            await self._pull()
        i = self._buffer.index(b"\n") + 1 if b"\n" in self._buffer else len(self._buffer)
        line = bytes(self._buffer[:i])
        del self._buffer[:i]
        return line

    async def wait(self) -> int:
        """Read the output to its end, then the exit code from exec inspect."""
        while not self._eof:
            await self._pull()
        self.stdout_rest.extend(self._buffer)
        self._buffer.clear()
        return await _exit_code(self._exec)


def errno_name(number: int) -> str:
    return errno.errorcode.get(number, str(number))
