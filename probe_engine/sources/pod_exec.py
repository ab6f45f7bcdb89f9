"""The pod exec channel: a program in a pod's container, through the API server, as kubectl exec
carries it (kubernetes-asyncio's WebSocket, subprotocol v4.channel.k8s.io).

Frames start with their channel: stdin 0, stdout 1, stderr 2, and on 3 the exit status as a
Status object (Success, or Failure with reason NonZeroExitCode and the code in
details.causes). kubernetes-asyncio drops channel 3 unless the frames are read here
(`_preload_content=False`). v4 cannot close stdin; neither the agent nor the prober needs it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from ..kube import CHANNEL_PROTOCOL, KubeClient, explain
from .channel import Channel, ChannelError, ExitStatus, Leftover

STDIN, STDOUT, STDERR, STATUS = 0, 1, 2, 3
STDIN_CHUNK = 32 * 1024


class PodExecChannel(Channel):
    """`command` in `container` (None: the API server's default) of pod `namespace/pod`."""

    def __init__(
        self,
        kube: KubeClient,
        pod: str,
        namespace: str,
        container: str | None,
        command: Sequence[str],
    ) -> None:
        super().__init__(command)
        self.kube = kube
        self.pod = (pod, namespace, container)  # what the exec's URL names
        self.where = f"pod {namespace}/{pod}" + (f" container {container}" if container else "")
        self.doing = f"exec in pod {namespace}/{pod}"  # for explain(): "exec in pod ns/x: ..."
        self.manager: Any = None
        self.ws: Any = None
        self.status: dict[str, Any] | None = None  # the channel-3 Status object
        self.received = 0  # stdout bytes

    async def open(self) -> None:
        try:
            pod, namespace, container = self.pod
            manager = await self.kube.ws_core.connect_get_namespaced_pod_exec(
                pod,
                namespace,
                container=container,
                command=self.command,
                stdin=True,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
                _headers={"sec-websocket-protocol": CHANNEL_PROTOCOL},
            )
            with anyio.fail_after(self.kube.timeout):
                self.ws = await manager.__aenter__()
            self.manager = manager
        except Exception as exc:
            raise ChannelError(explain(exc, self.kube, self.doing)) from exc

    async def send(self, data: bytes) -> None:
        with contextlib.suppress(Exception):  # it died early: its status will say why
            for offset in range(0, len(data), STDIN_CHUNK):
                await self.ws.send_bytes(bytes((STDIN,)) + data[offset : offset + STDIN_CHUNK])

    async def receive(self, on_line: Callable[[bytes], None]) -> None:
        from aiohttp import WSMsgType

        try:
            async for message in self.ws:
                if message.type is not WSMsgType.BINARY:
                    break  # CLOSE, CLOSED or ERROR: the session is over
                data: bytes = message.data
                if not data:
                    continue
                channel, payload = data[0], data[1:]
                if channel == STDOUT:
                    self.received += len(payload)
                    self.take(payload, on_line)
                elif channel == STDERR:
                    self.stderr.add(payload)
                elif channel == STATUS and payload:
                    self.status = _status(payload)
        except Exception as exc:
            if self.status is None:
                self.lost = explain(exc, self.kube, self.doing)
        self.flush(on_line)
        if self.status is None and self.lost is None:
            self.lost = (
                f"the exec session in {self.where} dropped after {self.received} bytes of "
                "output, without an exit status (the WebSocket through the API server closed "
                f"abnormally, code {self.ws.close_code})"
            )

    async def exit_status(self) -> ExitStatus:
        """0 for Success, the code of a NonZeroExitCode Failure, the message of any Failure."""
        status = self.status
        if status is None:
            return ExitStatus()
        if status.get("status") == "Success":
            return ExitStatus(code=0)
        words = str(status.get("message") or status.get("reason") or "failed")
        code = None
        if status.get("reason") == "NonZeroExitCode":
            for cause in (status.get("details") or {}).get("causes") or []:
                if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
                    code = int(cause["message"])
        return ExitStatus(code=code, words=words)

    async def stop(self, leftover: Leftover | None) -> None:
        """A second exec sends the signal: the API server has no way to signal an exec, and
        the kubelet leaves its process running when the stream closes."""
        if leftover is None:
            return
        killer = PodExecChannel(self.kube, *self.pod, leftover.command())
        with contextlib.suppress(ChannelError):
            await killer.open()
            try:
                await killer.receive(lambda line: None)
            finally:
                await killer.aclose()

    async def aclose(self) -> None:
        manager, self.manager = self.manager, None
        if manager is not None:
            with contextlib.suppress(Exception):
                await manager.__aexit__(None, None, None)


def _status(payload: bytes) -> dict[str, Any]:
    text = payload.decode(errors="replace")
    try:
        found = json.loads(text)
    except ValueError:
        return {"status": "Failure", "message": text.strip()}
    return found if isinstance(found, dict) else {"status": "Failure", "message": text.strip()}
