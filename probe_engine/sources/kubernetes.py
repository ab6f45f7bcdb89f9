"""The `kubernetes` source: the agent runs in every matching pod, one exec per pod, fanned out.

Each Running pod named by `pod:` or matched by `selector:` becomes a row SOURCE/POD. The agent
travels as kubectl exec would carry it: `python3 -c BOOTSTRAP` through the API server's
WebSocket exec (v4.channel.k8s.io), its modules and the batch on stdin (channel 0), its JSON
lines back on stdout (1), stderr on 2, and the exit status on 3 as a Status object (Success,
or Failure with reason NonZeroExitCode and the code in details.causes). kubernetes-asyncio
drops channel 3 unless the frames are read here (_preload_content=False). v4 cannot close
stdin; neither the agent (two lines) nor the shell prober ("@@END") needs the end of it.

A container without python3 gets the shell prober (sh with curl, wget, nc or bash). Faults are
results: no matching pod, a refused exec, a WebSocket that drops mid-run: the cells without an
answer become source-error with the reason, and the matrix completes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from ..agent.proxy import redact
from ..agent.ship import agent_command, agent_payload
from ..kube import CHANNEL_PROTOCOL, KubeApiError, KubeClient, KubeError, explain
from ..model import CellRequest
from .agent_session import MAX_LINE, AgentSession, LineSplitter
from .base import Sink, Source, fail_batch
from .child import STDERR_LIMIT
from .shell import ShellOutput
from .shell_tools import request_lines, script

STDIN, STDOUT, STDERR, STATUS = 0, 1, 2, 3
STDIN_CHUNK = 32 * 1024
MAX_PARALLEL_EXECS = 32  # execs in flight at once (each holds a WebSocket to the API server)
START_SLACK = 30.0  # seconds for an exec to start and the agent to say hello, beyond the cells
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
NOT_FOUND = ("executable file not found", "no such file or directory", "not found in $path")
# The shell prober's script (~10 KB) would make the exec URL (the command travels in its query)
# longer than request-line limits allow (8 KiB in aiohttp, in many proxies and load balancers):
# only this loader goes in the URL; it reads the script from stdin up to "@@SCRIPT" and runs
# it with the same arguments, and the script then reads the cells that follow.
PROBER_LOADER = """s=
while IFS= read -r l; do
  [ "$l" = @@SCRIPT ] && break
  s="$s$l
"
done
eval "$s"
"""


@dataclass
class ExecEnd:
    """How one exec ended."""

    status: dict[str, Any] | None = None  # the channel-3 Status object
    close_code: int | None = None
    stderr: bytes = b""
    received: int = 0  # stdout bytes
    failure: str | None = None  # the exec did not start (refused upgrade, API unreachable)
    timed_out: bool = False

    @property
    def exit_code(self) -> int | None:
        """0 for Success, the code of a NonZeroExitCode Failure, else None."""
        if self.status is None:
            return None
        if self.status.get("status") == "Success":
            return 0
        if self.status.get("reason") != "NonZeroExitCode":
            return None
        for cause in (self.status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
                return int(cause["message"])
        return None

    def command_missing(self) -> bool:
        """The runtime could not start the command (or a shell said 126/127)."""
        text = str((self.status or {}).get("message", "")).lower()
        return any(needle in text for needle in NOT_FOUND) or self.exit_code in (126, 127)

    def describe(self, what: str, where: str) -> str:
        """Why the cells of this exec got no answer, in words."""
        tail = redact(self.stderr.decode(errors="replace").strip())[-400:]
        stderr = f"; stderr: {tail}" if tail else ""
        if self.failure is not None:
            return self.failure
        if self.timed_out:
            return f"{what} in {where} did not finish in time (no more answers){stderr}"
        if self.status is None:
            return (
                f"the exec session in {where} dropped after {self.received} bytes of output, "
                f"without an exit status (the WebSocket through the API server closed "
                f"abnormally, code {self.close_code}){stderr}"
            )
        code = self.exit_code
        if code == 0:
            return f"{what} in {where} exited without answering every cell{stderr}"
        message = str(self.status.get("message") or self.status.get("reason") or "failed")
        return f"{what} in {where} failed: {message}{stderr}"


class _Lines:
    """Bytes in, complete lines (without the newline) to `on_line`."""

    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        self.on_line = on_line
        self.splitter = LineSplitter(MAX_LINE)

    @property
    def overflowed(self) -> bool:
        return self.splitter.overflowed

    def feed(self, data: bytes) -> None:
        for line in self.splitter.feed(data):
            self.on_line(line)

    def close(self) -> None:
        for line in self.splitter.close():
            self.on_line(line)


async def exec_in_pod(
    kube: KubeClient,
    pod: str,
    namespace: str,
    container: str | None,
    command: list[str],
    stdin: bytes,
    on_line: Callable[[bytes], None],
    deadline: float | None = None,
) -> ExecEnd:
    """Run `command` in the pod, feeding `stdin` and handing each stdout line to `on_line`;
    how it ended (exit status from channel 3) comes back. Never raises for the exec's own
    failures: they are in `failure`."""
    from aiohttp import WSMsgType

    end = ExecEnd()
    doing = f"exec in pod {namespace}/{pod}"
    try:
        manager = await kube.ws_core.connect_get_namespaced_pod_exec(
            pod,
            namespace,
            container=container,
            command=command,
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
            _headers={"sec-websocket-protocol": CHANNEL_PROTOCOL},
        )
        with anyio.fail_after(kube.timeout):
            ws = await manager.__aenter__()
    except Exception as exc:
        end.failure = explain(exc, kube, doing)
        return end
    lines = _Lines(on_line)
    stderr = bytearray()
    try:

        async def send_stdin() -> None:
            for offset in range(0, len(stdin), STDIN_CHUNK):
                await ws.send_bytes(bytes((STDIN,)) + stdin[offset : offset + STDIN_CHUNK])

        async def receive() -> None:
            async for message in ws:
                if message.type is not WSMsgType.BINARY:
                    break  # CLOSE, CLOSED or ERROR: the session is over
                data: bytes = message.data
                if not data:
                    continue
                channel, payload = data[0], data[1:]
                if channel == STDOUT:
                    end.received += len(payload)
                    lines.feed(payload)
                elif channel == STDERR:
                    if len(stderr) < STDERR_LIMIT:
                        stderr.extend(payload[: STDERR_LIMIT - len(stderr)])
                elif channel == STATUS and payload:
                    end.status = _status(payload)

        with anyio.move_on_after(math.inf if deadline is None else deadline) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(send_stdin)
                await receive()
                group.cancel_scope.cancel()  # stdin may still be in flight if it died early
        end.timed_out = scope.cancelled_caught
    except Exception as exc:
        if end.status is None and end.failure is None:
            end.failure = explain(exc, kube, doing)
    finally:
        lines.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            await manager.__aexit__(None, None, None)
        end.close_code = ws.close_code
        end.stderr = bytes(stderr)
    return end


def prober_command(tool: str, concurrency: int) -> list[str]:
    """The shell prober as an exec command: the loader, with the script's own arguments."""
    return ["sh", "-c", PROBER_LOADER, "probe", tool, str(concurrency)]


def _status(payload: bytes) -> dict[str, Any]:
    text = payload.decode(errors="replace")
    try:
        found = json.loads(text)
    except ValueError:
        return {"status": "Failure", "message": text.strip()}
    return found if isinstance(found, dict) else {"status": "Failure", "message": text.strip()}


def _is_running(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and not (pod.get("metadata") or {}).get(
        "deletionTimestamp"
    )


def _pod_facts(pod: Mapping[str, Any], container: str | None) -> dict[str, Any]:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    conditions = status.get("conditions") or []
    return {
        "pod": meta.get("name"),
        "namespace": meta.get("namespace"),
        "pod_ip": status.get("podIP"),
        "pod_ips": [p.get("ip") for p in status.get("podIPs") or []],
        "node": spec.get("nodeName"),
        "host_ip": status.get("hostIP"),
        "host_network": bool(spec.get("hostNetwork")),
        "labels": dict(meta.get("labels") or {}),
        "phase": status.get("phase"),
        "ready": next(
            (c.get("status") == "True" for c in conditions if c.get("type") == "Ready"), None
        ),
        "container": container,
        "containers": [c.get("name") for c in spec.get("containers") or []],
        "dns_policy": spec.get("dnsPolicy"),
    }


class KubernetesSource(Source):
    kind = "kubernetes"

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        try:
            kube = await self.settings.context.kube.client()
        except KubeError as exc:
            self.fail_row(sink, batch, str(exc))
            return
        await self._run(kube, batch, sink)

    async def _run(self, kube: KubeClient, batch: Sequence[CellRequest], sink: Sink) -> None:
        spec = self.spec
        namespace = spec.namespace or kube.namespace
        facts: dict[str, Any] = {"namespace": namespace, **kube.describe()}
        if spec.selector is not None:
            facts["selector"] = spec.selector
        try:
            pods, why_none = await self._find_pods(kube, namespace)
        except Exception as exc:
            what = f"pod {spec.pod}" if spec.pod else f"pods matching {spec.selector}"
            self.fail_row(sink, batch, explain(exc, kube, f"finding {what}"), facts)
            return
        if not pods:
            self.fail_row(sink, batch, why_none, facts)
            return
        limiter = anyio.CapacityLimiter(MAX_PARALLEL_EXECS)
        async with anyio.create_task_group() as group:
            for pod in pods:
                group.start_soon(self._run_pod, kube, pod, batch, sink, limiter)

    async def _find_pods(
        self, kube: KubeClient, namespace: str
    ) -> tuple[list[Mapping[str, Any]], str]:
        """The Running pods to probe from, and why there are none when there are none."""
        spec = self.spec
        if spec.pod is not None:
            try:
                pod = await kube.get(kube.core.read_namespaced_pod, spec.pod, namespace)
            except KubeApiError as exc:
                if exc.status == 404:
                    return [], f"pod {namespace}/{spec.pod} not found"
                raise
            if not _is_running(pod):
                phase = (pod.get("status") or {}).get("phase")
                return [], f"pod {namespace}/{spec.pod} is not running (phase {phase})"
            return [pod], ""
        data = await kube.get(
            kube.core.list_namespaced_pod, namespace, label_selector=spec.selector
        )
        items = list(data.get("items") or [])
        running = sorted(
            (p for p in items if _is_running(p)), key=lambda p: p["metadata"].get("name", "")
        )
        if spec.max_pods is not None:
            running = running[: spec.max_pods]
        if running:
            return running, ""
        where = f"namespace {namespace}"
        if not items:
            return [], f"no pod matches selector {spec.selector} in {where}"
        others = ", ".join(
            f"{p['metadata'].get('name')} ({(p.get('status') or {}).get('phase')})"
            for p in items[:10]
        )
        return [], f"no Running pod matches selector {spec.selector} in {where} (found: {others})"

    def _container(self, pod: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """The container to exec in, or (None, why not)."""
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        if self.spec.container is not None:
            if self.spec.container not in names:
                return None, (
                    f"pod {pod['metadata'].get('name')} has no container "
                    f"{self.spec.container!r} (its containers: {', '.join(map(str, names))})"
                )
            return self.spec.container, None
        annotations = pod["metadata"].get("annotations") or {}
        chosen = annotations.get(DEFAULT_CONTAINER) or (names[0] if names else None)
        return (str(chosen) if chosen else None), None

    async def _run_pod(
        self,
        kube: KubeClient,
        pod: Mapping[str, Any],
        batch: Sequence[CellRequest],
        sink: Sink,
        limiter: anyio.CapacityLimiter,
    ) -> None:
        name = str(pod["metadata"].get("name"))
        namespace = str(pod["metadata"].get("namespace") or "")
        row = f"{self.name}/{name}"
        container, problem = self._container(pod)
        facts = _pod_facts(pod, container)
        if problem is not None:
            self.fail_row(sink, batch, problem, facts, row)
            return
        sink.row(self.row_info(row, facts=facts))
        where = f"pod {namespace}/{name}" + (f" container {container}" if container else "")
        async with limiter:
            if self.spec.tool is None:
                end, session = await self._agent(kube, pod, container, batch, sink, row, facts)
                if session.finished or session.answered:
                    if not session.complete:
                        reason = end.describe("the agent", where)
                        fail_batch(sink, row, self.name, batch, reason, session.answered)
                    return
                if not end.command_missing() or end.failure is not None:
                    self.fail_row(sink, batch, end.describe("the agent", where), facts, row)
                    return
                # No python3 here: the shell prober, with whichever tool the image has.
                facts.update(python=None, tool="auto")
                sink.row(self.row_info(row, facts=facts))
                await self._prober(kube, pod, container, "auto", batch, sink, row, facts, where)
            else:
                facts["tool"] = self.spec.tool
                sink.row(self.row_info(row, facts=facts))
                await self._prober(
                    kube, pod, container, self.spec.tool, batch, sink, row, facts, where
                )

    def _deadline(self, batch: Sequence[CellRequest]) -> float:
        waves = math.ceil(len(batch) / max(1, self.settings.concurrency))
        return START_SLACK + waves * max((r.timeout for r in batch), default=0.0)

    async def _agent(
        self,
        kube: KubeClient,
        pod: Mapping[str, Any],
        container: str | None,
        batch: Sequence[CellRequest],
        sink: Sink,
        row: str,
        facts: dict[str, Any],
    ) -> tuple[ExecEnd, AgentSession]:
        pod_facts = dict(facts)

        def hello(seen: dict[str, Any]) -> None:
            # The agent's view from inside, with what the API server says about the pod.
            facts.update(seen)
            facts.update(pod_facts)
            sink.row(self.row_info(row, facts=facts))

        session = AgentSession(row, self.name, batch, sink, hello)
        end = await exec_in_pod(
            kube,
            str(pod["metadata"]["name"]),
            str(pod["metadata"]["namespace"]),
            container,
            agent_command(self.spec.python),
            agent_payload(self.agent_request(batch)),
            session.feed,
            self._deadline(batch),
        )
        return end, session

    async def _prober(
        self,
        kube: KubeClient,
        pod: Mapping[str, Any],
        container: str | None,
        tool: str,
        batch: Sequence[CellRequest],
        sink: Sink,
        row: str,
        facts: dict[str, Any],
        where: str,
    ) -> None:
        output = ShellOutput(row, self.name, batch, sink)
        end = await exec_in_pod(
            kube,
            str(pod["metadata"]["name"]),
            str(pod["metadata"]["namespace"]),
            container,
            prober_command(tool, self.settings.concurrency),
            script().encode() + b"\n@@SCRIPT\n" + request_lines(batch),
            lambda line: output.feed(line.decode(errors="replace")),
            self._deadline(batch),
        )
        if output.complete:
            return
        what = f"the shell prober (tool {tool})"
        reason = end.describe(what, where)
        if output.answered:
            fail_batch(sink, row, self.name, batch, reason, output.answered)
            return
        if end.command_missing():
            if self.spec.tool is None:  # python3 was missing too
                reason = (
                    f"neither {self.spec.python} nor sh can run in {where}: nothing here can "
                    f"probe ({reason})"
                )
            else:
                reason = f"no sh in {where}: the shell prober cannot run {tool} ({reason})"
        self.fail_row(sink, batch, reason, facts, row)
