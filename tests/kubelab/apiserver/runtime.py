"""Where an emulated pod really runs: a local process or a lab network namespace, and the
address its port-forward reaches."""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
#: A custom port-forward target: called with the pod port, returns a connected stream pair.
Connector = Callable[[int], Awaitable[Connection]]


_CLONE_NEWNET = 0x40000000
#: a container image's PATH, not this process's (a pyenv shim costs ~50 ms per python3 start)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def socket_in_netns(netns: str, family: int) -> socket.socket:
    """A TCP socket created inside the named network namespace (``/var/run/netns/NAME``).

    setns() switches only the calling thread, so a throwaway thread does it; the socket keeps
    its namespace for life, and connect() can then run on the event loop."""
    result: list[socket.socket | BaseException] = []

    def work() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
            try:
                if int(libc.setns(fd, _CLONE_NEWNET)) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err), f"setns {netns}")
            finally:
                os.close(fd)
            result.append(socket.socket(family, socket.SOCK_STREAM))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=work, name=f"kubelab-setns-{netns}", daemon=True)
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


@dataclass
class PodRuntime:
    """Where an emulated pod really runs, kept server-side next to the pod object.

    exec: the command runs as a local subprocess, prefixed by ``ip netns exec NETNS`` when
    ``netns`` is set (the pod *is* a lab network namespace), then by ``exec_prefix``. Its
    environment is a container's (PATH ``/usr/local/sbin:...:/bin``, ``HOSTNAME``, ``HOME``),
    then the container's ``env`` from the pod spec, then ``env`` here (e.g. to change PATH), then
    ``container_env`` of that container.
    The process gets SIGKILL (its whole session) when the client goes away.

    port-forward: one TCP connection per WebSocket, to ``forward_host`` (default 127.0.0.1,
    inside ``netns`` when set, as a kubelet connects to localhost inside the pod's namespace),
    port ``forward_ports.get(port, port)``; or ``connector(port)`` when given.
    """

    netns: str | None = None
    exec_prefix: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    #: per container (by name): what its image changes, e.g. PATH (an ephemeral container's
    #: image has tools the app container lacks)
    container_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    cwd: str | None = None
    #: look the command up on PATH first, answering "executable file not found" like a runtime
    check_command: bool = True
    forward_host: str = "127.0.0.1"
    forward_ports: Mapping[int, int] = field(default_factory=dict)
    connector: Connector | None = None
    connect_timeout: float = 10.0

    def argv(self, command: Sequence[str]) -> list[str]:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*prefix, *self.exec_prefix, *command]

    def target(self, port: int) -> tuple[str, int]:
        return self.forward_host, self.forward_ports.get(port, port)

    async def connect(self, port: int) -> Connection:
        if self.connector is not None:
            return await self.connector(port)
        host, real_port = self.target(port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if self.netns is None:
            sock = socket.socket(family, socket.SOCK_STREAM)
        else:
            sock = socket_in_netns(self.netns, family)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, (host, real_port)), self.connect_timeout)
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
