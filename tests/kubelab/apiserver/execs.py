"""The exec route: a real process per session, framed on channels 0-3 as the kubelet frames it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .frames import (
    CLOSE_SIGNAL,
    EXEC_PROTOCOLS,
    STATUS,
    STDERR,
    STDIN,
    STDOUT,
    Channels,
    Dropped,
    flag,
    is_upgrade,
    negotiate,
    refuse_protocol,
    upgrade,
)
from .records import ExecRecord
from .resources import JSON, bad_request, status_object
from .rest import pod_of
from .runtime import DEFAULT_PATH, PodRuntime

if TYPE_CHECKING:
    from .server import ApiServer


def pick_container(pod_obj: JSON, wanted: str | None) -> tuple[JSON | None, str]:
    containers: list[JSON] = pod_obj["spec"].get("containers", [])
    name = pod_obj["metadata"]["name"]
    if wanted:
        every = containers + list(pod_obj["spec"].get("ephemeralContainers") or [])
        found = next((c for c in every if c["name"] == wanted), None)
        if found is None:
            return None, f"container {wanted} is not valid for pod {name}"
        return found, ""
    if len(containers) == 1:
        return containers[0], ""
    names = " ".join(c["name"] for c in containers)
    return None, f"a container name must be specified for pod {name}, choose one of: [{names}]"


async def exec_session(server: ApiServer, request: web.Request) -> web.StreamResponse:
    pod_obj = pod_of(server, request)
    if isinstance(pod_obj, web.Response):
        return pod_obj
    ns, name = request.match_info["namespace"], request.match_info["name"]
    query = request.rel_url.query
    command = query.getall("command", [])
    stdin, stdout, stderr, tty = (flag(query, k) for k in ("stdin", "stdout", "stderr", "tty"))
    container, problem = pick_container(pod_obj, query.get("container"))
    if container is None:
        return bad_request(problem)
    if pod_obj.get("status", {}).get("phase") in ("Succeeded", "Failed", "Pending"):
        phase = pod_obj["status"]["phase"]
        return bad_request(
            f"cannot exec into a container in a completed pod; current phase is {phase}"
            if phase != "Pending"
            else f"pod {name} does not have a host assigned"
        )
    if not command:
        return bad_request("you must specify at least one command for the container")
    if not (stdin or stdout or stderr):
        return bad_request("you must specify at least 1 of stdin, stdout, stderr")
    if not is_upgrade(request):
        return bad_request("Upgrade request required")
    protocol = negotiate(request, EXEC_PROTOCOLS)
    if protocol is None:
        return refuse_protocol(request, EXEC_PROTOCOLS)
    base64_frames, json_status, _ = EXEC_PROTOCOLS[protocol]
    runtime = server.store.runtime(ns, name)
    argv = runtime.argv(command)
    record = ExecRecord(ns, name, container["name"], list(command), argv, protocol)
    with server.lock:
        server.execs.append(record)
    ws, chan = await upgrade(
        request,
        protocol,
        base64_frames=base64_frames,
        on_drop=lambda: setattr(record, "dropped", True),
    )
    try:
        with server.session():
            await run_exec(
                server,
                chan,
                record,
                runtime,
                pod_obj,
                container,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                tty=tty,
                json_status=json_status,
            )
    except Dropped:
        record.dropped = True
    except ConnectionError:
        record.client_closed = True
    finally:
        await chan.close()
    return ws


async def run_exec(
    server: ApiServer,
    chan: Channels,
    record: ExecRecord,
    runtime: PodRuntime,
    pod_obj: JSON,
    container: JSON,
    *,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    json_status: bool,
) -> None:
    # The kubelet's first message: an empty one on the lowest writable channel.
    await chan.send(STDOUT if stdout else STDERR if stderr else STATUS, b"")
    env = {
        "PATH": DEFAULT_PATH,
        "HOSTNAME": pod_obj["metadata"]["name"],
        "HOME": "/root",
        **{e["name"]: e.get("value", "") for e in container.get("env", []) if "name" in e},
        **(runtime.env or {}),
        **runtime.container_env.get(container["name"], {}),
    }
    exe = record.command[0]
    found = (
        shutil.which(exe, path=env["PATH"])
        if "/" not in exe
        else (exe if os.access(exe, os.X_OK) else None)
    )
    if runtime.check_command and found is None:
        cause = (
            "error executing command in container: failed to exec in container: failed to "
            f'start exec "{uuid.uuid4().hex}": OCI runtime exec failed: exec failed: unable to '
            f'start container process: exec: "{exe}": executable file not found in $PATH: '
            "unknown"
        )
        await send_status(
            chan,
            json_status,
            status_object(
                500,
                "Internal error occurred: " + cause,
                details={"causes": [{"message": cause}]},
            ),
        )
        return
    proc = await asyncio.create_subprocess_exec(
        *record.argv,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
        stderr=subprocess.STDOUT
        if tty and stdout
        else subprocess.PIPE
        if stderr
        else subprocess.DEVNULL,
        env=env,
        cwd=runtime.cwd,
        start_new_session=True,
    )
    server.procs.add(proc)

    async def pump(stream: asyncio.StreamReader | None, channel: int) -> None:
        if stream is None:
            return
        while chunk := await stream.read(server.read_size):
            await chan.send(channel, chunk)

    async def from_client() -> None:
        async for channel, payload in chan.receive():
            if channel == CLOSE_SIGNAL and payload[:1] == bytes((STDIN,)):
                if proc.stdin is not None:  # v5: the client closed stdin
                    proc.stdin.close()
            elif channel == STDIN and proc.stdin is not None and not proc.stdin.is_closing():
                try:
                    proc.stdin.write(payload)
                    await proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    pass

    pumps = [
        asyncio.create_task(pump(proc.stdout, STDOUT)),
        asyncio.create_task(pump(proc.stderr, STDERR)),
    ]
    client = asyncio.create_task(from_client())
    waiter = asyncio.create_task(proc.wait())
    try:
        while not waiter.done():
            await asyncio.wait(
                [t for t in (waiter, client, *pumps) if not t.done()],
                return_when=asyncio.FIRST_COMPLETED,
            )
            raise_first(pumps)
            if client.done() and not waiter.done():
                record.client_closed = True
                return  # the finally kills the process, as the session is gone
        # The process exited: let its output drain (a grandchild may hold the pipes open).
        await asyncio.wait(pumps, timeout=5)
        raise_first(pumps)
        code = waiter.result()
        code = 128 - code if code < 0 else code
        record.exit_code = code
        if code == 0:
            status: JSON = {"metadata": {}, "status": "Success"}
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": (
                    "command terminated with non-zero exit code: error executing command "
                    f"[{' '.join(record.command)}], exit code {code}"
                ),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
            }
        await send_status(chan, json_status, status)
    finally:
        kill(proc)
        for t in (*pumps, client):
            t.cancel()
        # Reap the process so its transport closes on this loop, not in a finalizer later.
        await asyncio.wait([waiter], timeout=5)
        waiter.cancel()
        await asyncio.gather(*pumps, client, waiter, return_exceptions=True)
        server.procs.discard(proc)


async def send_status(chan: Channels, json_status: bool, status: JSON) -> None:
    if json_status:
        await chan.send(STATUS, json.dumps(status, separators=(",", ":")).encode())
    elif status.get("status") != "Success":
        await chan.send(STATUS, str(status.get("message", "")).encode())


def kill(proc: asyncio.subprocess.Process) -> None:
    # The whole session: `sh -c` children too. Linux keeps a PGID from reuse while it has members.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def raise_first(
    tasks: Iterable[asyncio.Task[Any]], ignore: tuple[type[BaseException], ...] = ()
) -> None:
    """Re-raise the first failure among finished tasks (but those of the ``ignore`` types)."""
    for task in tasks:
        if task.done() and not task.cancelled():
            exc = task.exception()
            if exc is not None and not isinstance(exc, ignore):
                raise exc
