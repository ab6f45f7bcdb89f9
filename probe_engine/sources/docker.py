"""The `docker` source: the agent, or a shell tool, inside a running container, as `docker exec`.

Through aiodocker (the `host:` field, else DOCKER_HOST, else the local socket); never the
docker CLI. One exec per container per run: `python3 -c BOOTSTRAP` with the agent's modules on
stdin. When the image has no python3 (that exec fails with 126, "executable file not found"),
the shell prober runs instead with `tool: auto` (nc, wget, curl or bash, whichever is there),
and the row's facts (`note`) and each cell's `tool` say which tool ran. `compose:` fans out to
every container of a Compose service, one row each, named SOURCE/CONTAINER.

The row's facts come from `docker inspect` (networks, addresses, gateways, aliases, DNS, extra
hosts), from inside (the agent's hello, or the prober's preamble: resolv.conf, routes,
addresses) and from the daemon's networks: `target_networks` says, for each target address (or
container name), which Docker network holds it and whether this container is attached to it.

Every fault is a result, never an exception: no daemon, a missing or stopped container, an
exec that fails, an agent killed mid-run. The row (or its unanswered cells) gets source-error
with the reason, and the rest of the matrix runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio

from ..agent.address import ip_literal
from ..agent.proxy import proxy_environment, redact
from ..agent.ship import agent_command, agent_payload
from ..model import CellRequest
from ..results import CellResult, SourceInfo
from .agent_session import MAX_LINE, AgentSession, LineSplitter
from .base import Sink, Source, fail_batch
from .child import STDERR_LIMIT
from .docker_facts import (
    COMPOSE_NUMBER,
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    SHELL_PREAMBLE,
    DaemonNetwork,
    NamedEndpoint,
    ShellFacts,
    container_environment,
    container_facts,
    container_name,
    daemon_networks,
    names_on_networks,
    subnets_of,
    target_networks,
    why_not_running,
)
from .shell import ShellOutput
from .shell_tools import request_lines, script

DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
API_TIMEOUT = 30.0  # one Docker API call (inspect, list, exec create): a hung daemon is a fault
CONNECT_TIMEOUT = 5.0
EXIT_WAIT = 5.0  # exec inspect may say Running for a moment after the output ended
STARTUP_GRACE = 20.0  # the exec starting and the interpreter loading, on a busy machine
STOP_WITHIN = 3.0  # for the exec that stops a process left behind by a cancelled run
# What the runtime prints (on stdout, exit 126) when the program of an exec does not exist.
NOT_FOUND_WORDS = ("executable file not found", "no such file or directory")


class SourceFault(Exception):
    """A reason no probe can run for a row (or the whole source): reported as source-error."""


def daemon_url(host: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """The daemon to talk to and where that choice came from: `host:`, DOCKER_HOST, or the
    first local socket that exists (else the usual one, whose absence the error will name)."""
    if host:
        return host, "the source's host:"
    if environ.get("DOCKER_HOST"):
        return environ["DOCKER_HOST"], "DOCKER_HOST"
    for path in DEFAULT_SOCKETS:
        if Path(path).is_socket():
            return f"unix://{path}", "the default socket"
    return f"unix://{DEFAULT_SOCKETS[0]}", "the default socket"


def describe_api_error(exc: BaseException, url: str, origin: str) -> str:
    """A Docker API failure in a user's words, the daemon's own message kept."""
    import aiodocker
    import aiohttp

    where = f"the Docker daemon at {redact(url)} ({origin})"
    if isinstance(exc, aiodocker.DockerError) and exc.status == 900:
        # aiodocker's "cannot connect": the connection error it replaced says why.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, aiohttp.ClientConnectorError):
            return f"cannot reach {where}: {cause.os_error.strerror or cause} (is dockerd running?)"
        return f"cannot reach {where}: {exc.message}"
    if isinstance(exc, aiodocker.DockerError):
        return f"{where} answered {exc.status}: {exc.message}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or str(exc.os_error)
        return f"cannot reach {where}: {reason} (is dockerd running?)"
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer within {API_TIMEOUT:.0f} s"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {exc.strerror or exc}"
    return f"talking to {where} failed: {type(exc).__name__}: {exc}"


def _api_errors() -> tuple[type[BaseException], ...]:
    import aiodocker
    import aiohttp

    return (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError, ValueError)


class ExecChannel:
    """One exec with stdin attached: write the batch once, read stdout lines as they come,
    keep stderr, then the exit code from exec inspect. The far end needs no stdin EOF (the
    agent reads two lines, the prober stops at @@END), so stdin is never closed early: with
    aiodocker, closing it would drop the output."""

    def __init__(
        self,
        client: Any,
        container_id: str,
        command: list[str],
        user: str | None,
        env: Mapping[str, str],
    ) -> None:
        self.client = client
        self.container_id = container_id
        self.command = command
        self.user = user
        self.env = dict(env)
        self.exec: Any = None
        self.stream: Any = None
        self.stderr = bytearray()
        self.broken: str | None = None  # why the output ended early (the connection broke)

    async def open(self) -> None:
        container = self.client.containers.container(self.container_id)
        self.exec = await container.exec(
            self.command,
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            user=self.user or "",
            environment=self.env or None,
        )
        stream = self.exec.start(detach=False)
        await stream.__aenter__()
        self.stream = stream

    async def send(self, data: bytes) -> None:
        try:
            await self.stream.write_in(data)
        except Exception:  # it died at once: its exit code and output will say why
            return

    async def lines(self) -> AsyncGenerator[bytes, None]:
        splitter = LineSplitter()
        while True:
            try:
                message = await self.stream.read_out()
            except Exception as exc:  # the daemon went away, or the connection broke
                self.broken = f"the exec's connection broke: {type(exc).__name__}: {exc}"
                break
            if message is None:
                break
            if message.stream == 2:
                if len(self.stderr) < STDERR_LIMIT:
                    self.stderr.extend(message.data[: STDERR_LIMIT - len(self.stderr)])
                continue
            for line in splitter.feed(message.data):
                yield line + b"\n"
            if splitter.overflowed:
                self.broken = f"an output line longer than {MAX_LINE} bytes"
                break
        for line in splitter.close():
            yield line

    async def exit_code(self) -> int | None:
        """The exec's exit code (None if it still runs after EXIT_WAIT, or inspect fails)."""
        deadline = time.monotonic() + EXIT_WAIT
        while True:
            try:
                info = await self.exec.inspect()
            except Exception:
                return None
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            if time.monotonic() > deadline:
                return None
            await anyio.sleep(0.01)

    async def running(self) -> bool:
        with contextlib.suppress(Exception):
            info = await self.exec.inspect()
            return bool(info.get("Running"))
        return False

    async def close(self) -> None:
        if self.stream is not None:
            with contextlib.suppress(Exception):
                await self.stream.close()

    def stderr_text(self) -> str:
        return redact(self.stderr.decode(errors="replace").strip())


def exit_words(code: int | None, what: str) -> str:
    """'the agent was killed (SIGKILL, exit status 137)' and the like."""
    if code is None:
        return f"{what} did not report an exit status"
    if code == 137:
        return f"{what} was killed (SIGKILL, exit status 137)"
    if code == 143:
        return f"{what} was terminated (SIGTERM, exit status 143)"
    if code > 128:
        return f"{what} was killed by signal {code - 128} (exit status {code})"
    return f"{what} exited with status {code}"


class _RowSink:
    """Passes a row's reports on, noting the addresses its cells reached or tried."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.addresses: list[str] = []

    def row(self, info: SourceInfo) -> None:
        self.sink.row(info)

    def result(self, result: CellResult) -> None:
        for check in result.checks:
            if check.name == "tcp" and check.address and check.role != "proxy":
                self.addresses.append(check.address)
            elif check.name == "dns" and check.addresses:
                self.addresses.extend(check.addresses)
        self.sink.result(result)


class _DaemonView:
    """The daemon's networks and container names, read once per run for every row."""

    def __init__(self) -> None:
        self.networks: list[DaemonNetwork] = []
        self.names: dict[str, list[NamedEndpoint]] = {}
        self.error: str | None = None
        self.ready = anyio.Event()

    async def load(self, client: Any, want_names: bool, url: str, origin: str) -> None:
        try:
            self.networks = daemon_networks(await client.networks.list())
            if want_names:
                summaries = await client.containers.list()
                # aiodocker keeps each container's summary (GET /containers/json) here.
                self.names = names_on_networks(getattr(c, "_container", {}) for c in summaries)
        except _api_errors() as exc:
            self.error = describe_api_error(exc, url, origin)
        finally:
            self.ready.set()


def _gone(exc: BaseException) -> bool:
    return getattr(exc, "status", None) == 404


def _target_hosts(batch: Sequence[CellRequest]) -> list[str]:
    hosts: list[str] = []
    for request in batch:
        plan = request.column.plan or {}
        hosts.extend(str(a) for a in plan.get("addresses") or [])
        if plan.get("host"):
            hosts.append(str(plan["host"]))
    return list(dict.fromkeys(hosts))


class DockerSource(Source):
    kind = "docker"

    def budget(self, batch: Sequence[CellRequest]) -> float:
        """How long one container may take for `batch` before it is declared stuck: the
        cells run in waves of `concurrency`, each wave within its longest timeout."""
        waves = math.ceil(len(batch) / max(1, self.settings.concurrency))
        longest = max((r.timeout for r in batch), default=self.settings.timeout)
        return STARTUP_GRACE + waves * (longest + 2.0)

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        url, origin = daemon_url(self.spec.host, os.environ)
        try:
            import aiodocker
            import aiohttp
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            self.fail_row(sink, batch, f"the docker source needs aiodocker: {exc}")
            return
        try:
            client = aiodocker.Docker(
                url=url,
                timeout=aiohttp.ClientTimeout(total=API_TIMEOUT, sock_connect=CONNECT_TIMEOUT),
            )
        except (ValueError, OSError) as exc:
            self.fail_row(sink, batch, f"cannot use Docker host {redact(url)}: {exc}")
            return
        try:
            try:
                infos = await self._containers(client, url, origin)
            except SourceFault as fault:
                self.fail_row(sink, batch, str(fault), {"docker_host": redact(url)})
                return
            view = _DaemonView()
            want_names = any(ip_literal(h) is None for h in _target_hosts(batch))
            async with anyio.create_task_group() as group:
                group.start_soon(view.load, client, want_names, url, origin)
                for row, info in infos:
                    group.start_soon(self._run_container, client, url, row, info, batch, sink, view)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_WITHIN):
                await client.close()

    async def _containers(
        self, client: Any, url: str, origin: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """(row name, docker inspect) for each container of the source."""
        import aiodocker

        spec = self.spec
        try:
            if spec.container is not None:
                try:
                    info = await client.containers.container(spec.container).show()
                except aiodocker.DockerError as exc:
                    if exc.status == 404:
                        raise SourceFault(
                            f"no container {spec.container!r} on the Docker daemon at "
                            f"{redact(url)} ({origin})"
                        ) from exc
                    raise
                return [(self.name, info)]
            project, service = spec.compose.project, spec.compose.service
            found = await client.containers.list(
                all=True,
                filters={"label": [f"{COMPOSE_PROJECT}={project}", f"{COMPOSE_SERVICE}={service}"]},
            )
            if not found:
                raise SourceFault(
                    f"no container of compose service {service!r} in project {project!r} on "
                    f"the Docker daemon at {redact(url)} ({origin}); "
                    f"`docker compose -p {project} ps` lists them"
                )
            shown: list[dict[str, Any] | BaseException] = [{} for _ in found]

            async def show(index: int, container: Any) -> None:
                try:
                    shown[index] = await container.show()
                except _api_errors() as exc:  # kept: a task group would wrap it in a group
                    shown[index] = exc

            async with anyio.create_task_group() as group:
                for index, container in enumerate(found):
                    group.start_soon(show, index, container)
            # A container removed since the listing is no row; any other failure is the source's.
            failed = [e for e in shown if isinstance(e, BaseException)]
            infos = [i for i in shown if not isinstance(i, BaseException)]
            if failed and not (infos and all(_gone(e) for e in failed)):
                raise failed[0]
        except SourceFault:
            raise
        except _api_errors() as exc:
            raise SourceFault(describe_api_error(exc, url, origin)) from exc

        def order(info: dict[str, Any]) -> tuple[int, str]:
            labels = (info.get("Config") or {}).get("Labels") or {}
            number = str(labels.get(COMPOSE_NUMBER) or "")
            return (int(number) if number.isdigit() else 0, container_name(info))

        return [(f"{self.name}/{container_name(i)}", i) for i in sorted(infos, key=order)]

    async def _run_container(
        self,
        client: Any,
        url: str,
        row: str,
        info: dict[str, Any],
        batch: Sequence[CellRequest],
        sink: Sink,
        view: _DaemonView,
    ) -> None:
        run = _ContainerRun(self, client, url, row, info, batch, _RowSink(sink))
        try:
            await run.run()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_WITHIN):
                await view.ready.wait()
                run.finish(view)


class _ContainerRun:
    """One row: probes from one container, its facts, its faults."""

    def __init__(
        self,
        source: DockerSource,
        client: Any,
        url: str,
        row: str,
        info: dict[str, Any],
        batch: Sequence[CellRequest],
        sink: _RowSink,
    ) -> None:
        self.source = source
        self.spec = source.spec
        self.client = client
        self.row = row
        self.info = info
        self.batch = batch
        self.sink = sink
        self.name = container_name(info)
        self.env = container_environment(info, self.spec.env)
        self.facts: dict[str, Any] = {
            **container_facts(info),
            "docker_host": redact(url),
            "proxy_env": proxy_environment(self.env),
        }
        self.status: Literal["ok", "error"] = "ok"
        self.shell_started = 0.0
        self.message: str | None = None
        self.answered: set[int] = set()

    # --- reporting ----------------------------------------------------------------------------

    def emit(self) -> None:
        self.sink.row(
            SourceInfo(
                name=self.row,
                source_name=self.source.name,
                kind=self.source.kind,
                status=self.status,
                message=self.message,
                facts=dict(self.facts),
            )
        )

    def fail(self, message: str, whole_row: bool = True) -> None:
        """Unanswered cells become source-error; `whole_row`: the row itself failed."""
        message = redact(message)
        if whole_row:
            self.status, self.message = "error", message
            self.emit()
        fail_batch(self.sink, self.row, self.source.name, self.batch, message, self.answered)

    def finish(self, view: _DaemonView) -> None:
        """The last word on the row's facts: which network holds each target."""
        subnets_of(self.facts, view.networks)
        hosts = _target_hosts(self.batch) + self.sink.addresses
        self.facts["target_networks"] = target_networks(
            hosts, self.facts, view.networks, view.names
        )
        if view.error:
            self.facts["daemon_view_error"] = view.error
        self.emit()

    # --- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        stopped = why_not_running(self.info)
        if stopped is not None:
            self.fail(stopped)
            return
        self.emit()
        tool = self.spec.tool
        if tool is None:
            fallback = await self.agent()
            if fallback is None:
                return
            if "python" in self.spec.model_fields_set:
                self.fail(fallback)
                return
            self.facts["note"] = (
                f"{fallback}: probed with the shell prober instead (tool: auto); each cell's "
                "`tool` says which tool ran"
            )
            tool = "auto"
        await self.shell(tool)

    async def open(self, command: list[str], what: str) -> ExecChannel | None:
        import aiodocker

        channel = ExecChannel(self.client, self.info["Id"], command, self.spec.user, self.spec.env)
        try:
            await channel.open()
        except aiodocker.DockerError as exc:
            if exc.status == 409:
                self.fail(f"cannot exec {what} in container {self.name}: {exc.message}")
            elif exc.status == 404:
                self.fail(f"container {self.name} disappeared before the exec: {exc.message}")
            else:
                self.fail(f"the exec of {what} in container {self.name} failed: {exc.message}")
            await channel.close()
            return None
        except _api_errors() as exc:
            self.fail(f"the exec of {what} in container {self.name} failed: {exc}")
            await channel.close()
            return None
        return channel

    async def agent(self) -> str | None:
        """Run the agent. Returns why it cannot run here when the shell should take over
        (no python3 in the image), else None (its cells are all reported)."""
        python = self.spec.python
        said_hello = False
        started = time.monotonic()

        def hello(seen: dict[str, Any]) -> None:
            nonlocal said_hello
            said_hello = True
            self.facts.update(seen)
            self.facts.update(runner="agent", tool="agent")
            self.facts["exec"] = {"command": python, "hello_ms": _ms(started)}
            self.emit()

        session = AgentSession(self.row, self.source.name, self.batch, self.sink, hello)
        payload = agent_payload(self.source.agent_request(self.batch))
        channel = await self.open(agent_command(python), python)
        if channel is None:
            return None
        finished = False
        try:
            with anyio.move_on_after(self.source.budget(self.batch)) as scope:
                await channel.send(payload)
                async with contextlib.aclosing(channel.lines()) as lines:
                    async for line in lines:
                        session.feed(line)
            finished = not scope.cancel_called
        finally:
            if not finished:
                await self.stop(channel, self.facts.get("pid") if said_hello else None, python)
            await channel.close()
        self.answered = session.answered
        code = await channel.exit_code()
        self.facts.setdefault("exec", {"command": python})["exit_code"] = code
        self.facts["exec"]["seconds"] = round(time.monotonic() - started, 3)
        if session.complete:
            self.emit()
            return None
        output = " | ".join(session.noise[:3])
        stderr = channel.stderr_text()
        if not said_hello and code in (126, 127):
            if any(w in output.lower() for w in NOT_FOUND_WORDS):
                return f"no {python} in container {self.name}"
            self.fail(f"cannot exec {python} in container {self.name}: {output or stderr}")
            return None
        if not said_hello and code == 1 and "SyntaxError" in stderr:
            return f"{python} in container {self.name} is too old for the agent (needs 3.8+)"
        if scope.cancel_called:
            reason = (
                f"the agent in container {self.name} did not finish within "
                f"{self.source.budget(self.batch):.0f} s and was stopped"
            )
        else:
            reason = exit_words(code, f"the agent in container {self.name}")
            if channel.broken:
                reason += f"; {channel.broken}"
            detail = stderr or output
            if detail:
                reason += f": {detail[-600:]}"
        self.facts["exec"]["failure"] = reason
        self.fail(reason, whole_row=not said_hello)
        return None

    async def shell(self, tool: str) -> None:
        """Run the shell prober with `tool` (auto: whichever the image has)."""
        started = self.shell_started = time.monotonic()
        command = [
            "sh",
            "-c",
            SHELL_PREAMBLE + script(),
            "probe",
            tool,
            str(self.source.settings.concurrency),
        ]
        self.facts.update(runner="shell", tool=tool)
        self.facts["exec"] = {"command": "sh"}
        output = ShellOutput(self.row, self.source.name, self.batch, self.sink, self.env)
        preamble = ShellFacts()
        noise: list[str] = []
        channel = await self.open(command, "sh")
        if channel is None:
            return
        finished = False
        try:
            with anyio.move_on_after(self.source.budget(self.batch)) as scope:
                await channel.send(request_lines(self.batch))
                async with contextlib.aclosing(channel.lines()) as lines:
                    async for raw in lines:
                        self._shell_line(raw.decode(errors="replace"), output, preamble, noise)
            finished = not scope.cancel_called and output.finished
        finally:
            if not finished:
                await self.stop(channel, preamble.pid, None)
            await channel.close()
        self.answered = output.answered
        code = await channel.exit_code()
        self.facts["exec"].update(exit_code=code, seconds=round(time.monotonic() - started, 3))
        if preamble.missing:
            self.facts.update(preamble.facts())
            self.fail(f"{preamble.missing} is not installed in container {self.name} (not on PATH)")
            return
        if output.complete:
            return
        words = " | ".join(noise) or channel.stderr_text()
        if preamble.pid is None and code in (126, 127):
            if any(w in words.lower() for w in NOT_FOUND_WORDS) and self.spec.tool is None:
                python = self.spec.python
                self.fail(
                    f"neither {python} nor sh in container {self.name}: nothing to probe with"
                )
            elif any(w in words.lower() for w in NOT_FOUND_WORDS):
                self.fail(f"no sh in container {self.name}: the shell prober cannot run {tool}")
            else:
                self.fail(f"cannot exec sh in container {self.name}: {words}")
            return
        if scope.cancel_called:
            reason = (
                f"the shell prober in container {self.name} did not finish within "
                f"{self.source.budget(self.batch):.0f} s and was stopped"
            )
        else:
            reason = exit_words(code, f"the shell prober in container {self.name}")
            if channel.broken:
                reason += f"; {channel.broken}"
            if words:
                reason += f": {words[-600:]}"
        self.facts["exec"]["failure"] = reason
        self.fail(reason, whole_row=preamble.pid is None)

    def _shell_line(
        self, line: str, output: ShellOutput, preamble: ShellFacts, noise: list[str]
    ) -> None:
        if line.startswith(("@@R", "@@D")):
            output.feed(line)
        elif preamble.feed(line):
            if preamble.ended:  # the preamble is over: the row's facts from inside
                preamble.ended = False
                self.facts.update(preamble.facts())
                self.facts["exec"]["facts_ms"] = _ms(self.shell_started)
                self.emit()
        elif len(noise) < 5 and line.strip():
            noise.append(redact(line.strip())[:300])

    async def stop(self, channel: ExecChannel, pid: Any, python: str | None) -> None:
        """Stop what a cut-short run left in the container (a cancelled run, a stuck or killed
        prober): SIGTERM to the agent (it stops probing and says done), or to the prober's
        process group, whose cells' tools outlive their shell. Best effort, within
        STOP_WITHIN, shielded from the cancellation that got us here. Without the pid, what
        is left ends by itself once its cells time out."""
        if not isinstance(pid, int) or pid <= 1:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_WITHIN):
            if python is not None:
                if not await channel.running():
                    return  # the agent has no children: gone with it
                command = [python, "-c", f"import os, signal; os.kill({pid}, signal.SIGTERM)"]
            else:  # the shell's own kill: negative pid, the whole group, leader gone or not
                command = ["sh", "-c", 'kill -TERM -"$1" 2>/dev/null; exit 0', "kill", str(pid)]
            with contextlib.suppress(*_api_errors()):
                container = self.client.containers.container(self.info["Id"])
                killer = await container.exec(
                    command, stdout=False, stderr=False, user=self.spec.user or ""
                )
                await killer.start(detach=True)


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000.0, 1)
