"""The server's side of an http target served by Docker (`evidence: {container_logs: [NAME]}`):
after the run, read the named containers' logs for the run's time (through the daemon `docker`
would use, or `docker_host`) and attach to each cell the lines carrying its User-Agent marker,
or say that none did: the request never reached the server."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import anyio

from ..docker_host import DockerOverrides
from ..extras import MissingExtra, require
from ..results import CellResult
from ..spec import Matrix
from ..spec.targets import HttpEvidenceSpec, HttpTargetSpec
from .server_logs import LIMIT_BYTES, PodLogs, server_log, since_seconds

TAIL_LINES = 20_000  # at most this many of a container's latest lines (Docker's own bound)
NAMESPACE = ""  # containers have none: PodLogs keys are ("", name)


def wants_container_logs(matrix: Matrix) -> dict[str, HttpEvidenceSpec]:
    """The http targets whose containers' logs are to be read, and where."""
    return {
        name: spec.evidence
        for name, spec in matrix.targets.items()
        if isinstance(spec, HttpTargetSpec) and spec.evidence is not None
    }


async def read_container_logs(
    host: str | None, names: Sequence[str], seconds: int, run: DockerOverrides
) -> PodLogs:
    """Each container's log of the last `seconds` (stdout and stderr, Docker's timestamps),
    bounded in lines and bytes; a container that cannot be read is named with the reason."""
    logs = PodLogs()

    def fail_all(reason: str) -> PodLogs:
        logs.errors.update({(NAMESPACE, name): reason for name in names})
        return logs

    try:
        require("docker", "reading containers' logs (evidence.container_logs)")
    except MissingExtra as exc:
        return fail_all(str(exc))
    from ..sources.docker import DockerHostError, connect, describe_api_error

    try:
        client, url, origin = connect(host, run)
    except DockerHostError as exc:
        return fail_all(str(exc))
    since = int(time.time()) - seconds

    async def read(name: str) -> None:
        try:
            container = await client.containers.get(name)
            lines = await container.log(
                stdout=True, stderr=True, timestamps=True, since=since, tail=TAIL_LINES
            )
        except Exception as exc:
            logs.errors[(NAMESPACE, name)] = describe_api_error(exc, url, origin)
            return
        # aiodocker gives the stream's frames, which need not be whole lines; the latest
        # LIMIT_BYTES are kept.
        text = "".join(lines)
        logs.lines[(NAMESPACE, name)] = text[-LIMIT_BYTES:].splitlines()

    try:
        async with anyio.create_task_group() as group:
            for name in names:
                group.start_soon(read, name)
    finally:
        with anyio.CancelScope(shield=True):
            await client.close()
    return logs


async def attach_container_logs(
    matrix: Matrix,
    run: DockerOverrides,
    run_seconds: float,
    markers: Mapping[tuple[str, str], str],
    results: dict[tuple[str, str], CellResult],
) -> None:
    """Add `server_log` to every cell of the http targets with evidence.container_logs in
    `results` (in place); `markers` from server_logs.cell_markers."""
    wanted = wants_container_logs(matrix)
    cells = [
        (key, result, marker)
        for key, result in results.items()
        if result.target in wanted
        and (marker := markers.get((result.source_name, result.target))) is not None
    ]
    if not cells:
        return
    by_host: dict[str | None, list[str]] = {}
    for name in {r.target for _, r, _ in cells}:
        evidence = wanted[name]
        by_host.setdefault(evidence.docker_host, []).extend(evidence.container_logs)
    seconds = since_seconds(run_seconds)
    read = {
        host: await read_container_logs(host, sorted(set(names)), seconds, run)
        for host, names in by_host.items()
    }
    for key, result, marker in cells:
        evidence = wanted[result.target]
        logs = read[evidence.docker_host]
        found = server_log(marker, NAMESPACE, evidence.container_logs, logs, noun="container")
        results[key] = result.model_copy(update={"server_log": found})
