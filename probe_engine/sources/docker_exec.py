"""The docker exec channel: a program in a running container, through aiodocker, as `docker exec
-i` runs it. Also what the docker source needs of aiodocker's errors."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from .channel import Channel, ChannelError, ExitStatus, Leftover

RUNNING_FOR = 5.0  # exec inspect may say Running for a moment after the output ended


def api_errors() -> tuple[type[BaseException], ...]:
    """What a Docker API call raises when the daemon or the request fails."""
    import aiodocker
    import aiohttp

    return (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError, ValueError)


@dataclass(frozen=True)
class ExecIn:
    """Where and as whom `docker exec` runs: a container (by id; `name` in messages), a user,
    and environment added to the container's own."""

    container_id: str
    name: str
    user: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


class DockerExecChannel(Channel):
    """`command` run as `target` says. Stdin stays open: with aiodocker, closing it would drop
    the output."""

    def __init__(self, client: Any, target: ExecIn, command: Sequence[str]) -> None:
        super().__init__(command)
        self.client = client
        self.container_id = target.container_id
        self.where = f"container {target.name}"
        self.user = target.user or ""
        self.env = dict(target.env)
        self.exec: Any = None
        self.stream: Any = None

    async def open(self) -> None:
        import aiodocker

        what = f"{self.command[0]} in {self.where}"
        try:
            container = self.client.containers.container(self.container_id)
            self.exec = await container.exec(
                self.command,
                stdin=True,
                stdout=True,
                stderr=True,
                tty=False,
                user=self.user,
                environment=self.env or None,
            )
            stream = self.exec.start(detach=False)
            await stream.__aenter__()
            self.stream = stream
        except aiodocker.DockerError as exc:
            await self.aclose()
            if exc.status == 409:
                raise ChannelError(f"cannot exec {what}: {exc.message}") from exc
            if exc.status == 404:
                raise ChannelError(
                    f"{self.where} disappeared before the exec: {exc.message}"
                ) from exc
            raise ChannelError(f"the exec of {what} failed: {exc.message}") from exc
        except api_errors() as exc:
            await self.aclose()
            raise ChannelError(f"the exec of {what} failed: {exc}") from exc

    async def send(self, data: bytes) -> None:
        with contextlib.suppress(Exception):  # it died at once: its exit code will say why
            await self.stream.write_in(data)

    async def receive(self, on_line: Callable[[bytes], None]) -> None:
        while True:
            try:
                message = await self.stream.read_out()
            except Exception as exc:  # the daemon went away, or the connection broke
                self.lost = (
                    f"the exec's connection to {self.where} broke: {type(exc).__name__}: {exc}"
                )
                break
            if message is None:
                break
            if message.stream == 2:
                self.stderr.add(message.data)
            else:
                self.take(message.data, on_line)
        self.flush(on_line)

    async def exit_status(self) -> ExitStatus:
        """The exec's exit code, from exec inspect once it no longer runs."""
        deadline = time.monotonic() + RUNNING_FOR
        while True:
            try:
                info = await self.exec.inspect()
            except Exception:
                return ExitStatus()
            if not info.get("Running") and info.get("ExitCode") is not None:
                return ExitStatus(code=int(info["ExitCode"]))
            if time.monotonic() > deadline:
                return ExitStatus()
            await anyio.sleep(0.01)

    async def stop(self, leftover: Leftover | None) -> None:
        """A second exec sends the signal: docker has no way to signal an exec's process."""
        if leftover is None:
            return
        if leftover.python is not None and not await self._running():
            return  # the agent starts nothing that outlives it: gone with it
        with contextlib.suppress(*api_errors()):
            container = self.client.containers.container(self.container_id)
            killer = await container.exec(
                leftover.command(), stdout=False, stderr=False, user=self.user
            )
            await killer.start(detach=True)

    async def _running(self) -> bool:
        with contextlib.suppress(Exception):
            info = await self.exec.inspect()
            return bool(info.get("Running"))
        return False

    async def aclose(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.close()
