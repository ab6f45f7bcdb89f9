"""The `docker` source: probes from inside running containers, as `docker exec` would run them.

Through aiodocker (the `host:` field, else DOCKER_HOST, else the local socket); never the
docker CLI. One exec per container per run (docker_exec.py); what runs there and how its end
is judged is the remote runner's (remote.py): the agent, or in an image without python3 the
shell prober with `tool: auto`, or with `sidecar:` a sidecar container in its network
namespace (sidecar.py). `compose:` fans out to every container of a Compose service,
one row each, named SOURCE/CONTAINER.

The row's facts come from `docker inspect` (networks, addresses, gateways, aliases, DNS, extra
hosts), from inside (the agent's hello, or the prober's preamble: resolv.conf, routes,
addresses) and from the daemon's networks: `target_networks` says, for each target address (or
container name), which Docker network holds it and whether this container is attached to it.

Every fault is a result, never an exception: no daemon, a missing or stopped container, an
exec that fails, an agent killed mid-run. The row (or its unanswered cells) gets source-error
with the reason, and the rest of the matrix runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from ..agent.address import ip_literal
from ..agent.proxy import proxy_environment, redact
from ..docker_context import (
    DockerContextError,
    aiodocker_resolves,
    config_dir,
    context_host,
    current_context,
)
from ..docker_host import DockerOverrides
from ..extras import MissingExtra, require
from ..model import CellRequest
from ..results import CellResult, SourceInfo
from .base import Sink, Source
from .docker_exec import DockerExecChannel, ExecIn, api_errors
from .docker_facts import (
    COMPOSE_NUMBER,
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    DaemonNetwork,
    NamedEndpoint,
    container_environment,
    container_facts,
    container_name,
    daemon_networks,
    names_on_networks,
    subnets_of,
    target_networks,
    why_not_running,
)
from .remote import STOP_WITHIN, Elsewhere, Place, RemoteRow
from .sidecar import Sidecar

DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
API_TIMEOUT = 30.0  # one Docker API call (inspect, list, exec create): a hung daemon is a fault
CONNECT_TIMEOUT = 5.0
# The summary fields of `GET /containers/json` that tell which names Docker's DNS answers.
SUMMARY_FIELDS = ("Names", "Labels", "NetworkSettings")


class SourceFault(Exception):
    """A reason no probe can run for a row (or the whole source): reported as source-error."""


def daemon_url(
    host: str | None, environ: Mapping[str, str], run: DockerOverrides | None = None
) -> tuple[str | None, str]:
    """The daemon to talk to and where that choice came from: `host:`, the run's (an Airflow
    connection's), DOCKER_HOST, the current Docker context (None: aiodocker resolves it, TLS
    included), or the first local socket that exists (else the usual one, whose absence the
    error will name). Raises DockerContextError for a context that cannot be used."""
    if host:
        return host, "the source's host:"
    if run is not None and run.host:
        return run.host, run.origin
    if environ.get("DOCKER_HOST"):
        return environ["DOCKER_HOST"], "DOCKER_HOST"
    context = current_context(environ)
    if context is not None:
        origin = f"the Docker context {context!r}"
        if aiodocker_resolves(environ):
            return None, origin
        return context_host(context, environ), f"{origin} in {config_dir(environ)}"
    for path in DEFAULT_SOCKETS:
        if Path(path).is_socket():
            return f"unix://{path}", "the default socket"
    return f"unix://{DEFAULT_SOCKETS[0]}", "the default socket"


class DockerHostError(Exception):
    """The daemon to use cannot even be addressed (a broken context, a malformed host)."""


def connect(host: str | None, run: DockerOverrides | None) -> tuple[Any, str, str]:
    """An aiodocker client for the daemon `docker` would use (see daemon_url), the URL it
    talks to (for messages) and where that choice came from."""
    import aiodocker
    import aiohttp

    chosen: str | None = host
    try:
        chosen, origin = daemon_url(host, os.environ, run)
        client = aiodocker.Docker(
            url=chosen,
            timeout=aiohttp.ClientTimeout(total=API_TIMEOUT, sock_connect=CONNECT_TIMEOUT),
        )
    except (DockerContextError, aiodocker.DockerError) as exc:  # the context's own files
        raise DockerHostError(f"cannot use the current Docker context: {exc}") from exc
    except (ValueError, OSError) as exc:
        raise DockerHostError(f"cannot use Docker host {redact(str(chosen))}: {exc}") from exc
    # What aiodocker resolved when given none: its own "Cannot connect" messages name
    # `_connection_info` (docker_host is rewritten to unix://localhost for sockets).
    url = chosen or str(getattr(client, "_connection_info", client.docker_host))
    return client, url, origin


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


class _Daemon:
    """The Docker daemon of the source (its client, where it is), with its networks and
    container names, read once per run for every row."""

    def __init__(self, client: Any, url: str, origin: str) -> None:
        self.client = client
        self.url = url
        self.origin = origin
        self.networks: list[DaemonNetwork] = []
        self.names: dict[str, list[NamedEndpoint]] = {}
        self.error: str | None = None
        self.ready = anyio.Event()

    async def load(self, want_names: bool) -> None:
        try:
            self.networks = daemon_networks(await self.client.networks.list())
            if want_names:
                summaries = await self.client.containers.list()
                self.names = names_on_networks(map(_summary, summaries))
        except api_errors() as exc:
            self.error = describe_api_error(exc, self.url, self.origin)
        finally:
            self.ready.set()


def _gone(exc: BaseException) -> bool:
    return getattr(exc, "status", None) == 404


def _target_hosts(batch: Sequence[CellRequest]) -> list[str]:
    hosts: list[str] = []
    for request in batch:
        plan = request.plan
        hosts.extend(str(a) for a in plan.get("addresses") or [])
        if plan.get("host"):
            hosts.append(str(plan["host"]))
    return list(dict.fromkeys(hosts))


class DockerSource(Source):
    kind = "docker"

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        try:
            require("docker", "the docker source")
        except MissingExtra as exc:
            self.fail_row(sink, batch, str(exc))
            return
        try:
            client, url, origin = connect(self.spec.host, self.settings.context.docker)
        except DockerHostError as exc:
            self.fail_row(sink, batch, str(exc))
            return
        try:
            try:
                infos = await self._containers(client, url, origin)
            except SourceFault as fault:
                self.fail_row(sink, batch, str(fault), {"docker_host": redact(url)})
                return
            daemon = _Daemon(client, url, origin)
            want_names = any(ip_literal(h) is None for h in _target_hosts(batch))
            async with anyio.create_task_group() as group:
                group.start_soon(daemon.load, want_names)
                for row, info in infos:
                    group.start_soon(self._run_container, daemon, row, info, batch, sink)
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
                except api_errors() as exc:  # kept: a task group would wrap it in a group
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
        except api_errors() as exc:
            raise SourceFault(describe_api_error(exc, url, origin)) from exc

        def order(info: dict[str, Any]) -> tuple[int, str]:
            labels = (info.get("Config") or {}).get("Labels") or {}
            number = str(labels.get(COMPOSE_NUMBER) or "")
            return (int(number) if number.isdigit() else 0, container_name(info))

        return [(f"{self.name}/{container_name(i)}", i) for i in sorted(infos, key=order)]

    async def _run_container(
        self,
        daemon: _Daemon,
        row: str,
        info: dict[str, Any],
        batch: Sequence[CellRequest],
        sink: Sink,
    ) -> None:
        spec, name = self.spec, container_name(info)
        env = container_environment(info, spec.env)
        facts = {
            **container_facts(info),
            "docker_host": redact(daemon.url),
            "proxy_env": proxy_environment(env),
        }
        row_sink = _RowSink(sink)
        target = ExecIn(info["Id"], name, spec.user, spec.env)
        channel = partial(DockerExecChannel, daemon.client, target)
        place = Place(channel, facts, env)
        sidecar = None
        if spec.sidecar is not None:
            sidecar = Sidecar(daemon.client, info, spec.sidecar.image, self.settings.context.run_id)
            what = f"a sidecar container (image {spec.sidecar.image})"
            reach = partial(sidecar.start, facts, env)
            place.elsewhere = Elsewhere(
                "always" if spec.sidecar.always else "no-python", reach, what
            )
        remote = RemoteRow(self, row, batch, row_sink, place)
        try:
            stopped = why_not_running(info)
            if stopped is not None:
                remote.fail(stopped)
            else:
                await remote.run()
        finally:
            if sidecar is not None:
                await sidecar.remove()  # shielded and bounded: on Ctrl-C and SIGTERM too
            with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_WITHIN):
                await daemon.ready.wait()
                _place_targets(remote, daemon, batch, row_sink.addresses)


def _place_targets(
    remote: RemoteRow, view: _Daemon, batch: Sequence[CellRequest], seen: list[str]
) -> None:
    """The last word on the row's facts: which network holds each target."""
    subnets_of(remote.facts, view.networks)
    hosts = _target_hosts(batch) + seen
    remote.facts["target_networks"] = target_networks(
        hosts, remote.facts, view.networks, view.names
    )
    if view.error:
        remote.facts["daemon_view_error"] = view.error
    remote.emit()


def _summary(container: Any) -> dict[str, Any]:
    """A container's summary from `GET /containers/json`, through aiodocker's public mapping."""
    return {key: container[key] for key in SUMMARY_FIELDS if key in container}
