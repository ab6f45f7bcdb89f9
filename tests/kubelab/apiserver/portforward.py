"""The port-forward route: one TCP connection per port, relayed on channels 2i and 2i+1."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .execs import raise_first
from .frames import (
    PORTFORWARD_PROTOCOLS,
    Channels,
    Dropped,
    go_errno_text,
    is_upgrade,
    negotiate,
    refuse_protocol,
    upgrade,
)
from .resources import bad_request
from .rest import pod_of
from .runtime import PodRuntime

if TYPE_CHECKING:
    from .server import ApiServer


async def portforward(server: ApiServer, request: web.Request) -> web.StreamResponse:
    pod_obj = pod_of(server, request)
    if isinstance(pod_obj, web.Response):
        return pod_obj
    ns, name = request.match_info["namespace"], request.match_info["name"]
    query = request.rel_url.query
    ports: list[int] = []
    for raw in query.getall("ports", []) + query.getall("port", []):
        for part in raw.split(","):
            try:
                port = int(part)
            except ValueError:
                return bad_request(f'unable to parse "{part}" as a port: invalid syntax')
            if not 0 < port < 65536:
                return bad_request(f'port "{part}" must be > 0 and < 65536')
            ports.append(port)
    if not ports:
        return bad_request('query parameter "port" is required')
    if pod_obj.get("status", {}).get("phase") != "Running":
        return bad_request(
            f"unable to forward port because pod is not running. Current status="
            f"{pod_obj.get('status', {}).get('phase')}"
        )
    if not is_upgrade(request):
        return bad_request("Upgrade request required")
    protocol = negotiate(request, PORTFORWARD_PROTOCOLS)
    if protocol is None:
        return refuse_protocol(request, PORTFORWARD_PROTOCOLS)
    ws, chan = await upgrade(request, protocol, base64_frames=PORTFORWARD_PROTOCOLS[protocol])
    runtime = server.store.runtime(ns, name)
    sandbox = hashlib.sha256(pod_obj["metadata"]["uid"].encode()).hexdigest()
    try:
        with server.session():
            await run_portforward(server, chan, runtime, ports, sandbox)
    except (Dropped, ConnectionError):
        pass
    finally:
        await chan.close()
    return ws


async def run_portforward(
    server: ApiServer, chan: Channels, runtime: PodRuntime, ports: list[int], sandbox: str
) -> None:
    for i, port in enumerate(ports):
        prefix = port.to_bytes(2, "little")
        await chan.send(2 * i, prefix, count=False)
        await chan.send(2 * i + 1, prefix, count=False)
    inboxes: list[asyncio.Queue[bytes]] = [asyncio.Queue(64) for _ in ports]

    async def from_client() -> None:
        async for channel, payload in chan.receive():
            # what the client sends carries no port prefix; odd channels are write-only
            if channel % 2 == 0 and channel // 2 < len(inboxes) and payload:
                await inboxes[channel // 2].put(payload)

    async def forward(i: int, port: int) -> None:
        try:
            reader, writer = await runtime.connect(port)
        except (TimeoutError, OSError) as exc:
            host, real = runtime.target(port)
            netns = f"/var/run/netns/{runtime.netns or 'cni-' + sandbox[:8]}"
            message = (
                f"error forwarding port {port} to pod {sandbox}, uid : failed to execute "
                f'portforward in network namespace "{netns}": failed to connect to '
                f'localhost:{port} inside namespace "{sandbox}", IPv4: dial tcp4 '
                f"{host}:{real}: connect: {go_errno_text(exc)} IPv6 dial tcp6: address "
                "localhost: no suitable address "
            )
            await chan.send(2 * i + 1, message.encode())
            return

        async def up() -> None:
            while True:
                data = await inboxes[i].get()
                writer.write(data)
                await writer.drain()

        async def down() -> None:
            while chunk := await reader.read(server.read_size):
                await chan.send(2 * i, chunk)

        tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
        try:
            # the port is done when the pod side closes (down ends) or the client goes away
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            raise_first(tasks, ignore=(ConnectionError,))
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    client = asyncio.create_task(from_client())
    forwards = asyncio.gather(*(forward(i, p) for i, p in enumerate(ports)))
    try:
        waitables: list[asyncio.Future[Any]] = [client, forwards]
        done, _ = await asyncio.wait(waitables, return_when=asyncio.FIRST_COMPLETED)
        if forwards in done:
            forwards.result()
    finally:
        client.cancel()
        forwards.cancel()
        await asyncio.gather(client, forwards, return_exceptions=True)
