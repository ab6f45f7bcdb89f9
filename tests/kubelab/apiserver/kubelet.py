"""What a kubelet does with a pod bound to its node, on a real data path.

A node is a `NodeRuntime`: its network namespace (None: this machine, for tests without root),
the bridge its pods attach to and the pod CIDR. A pod with hostNetwork runs in the node's
namespace; any other pod gets a network namespace of its own wired to the node (a veth whose
far end is on the node's bridge, an address from the pod CIDR, routes to the lab's ranges via
the bridge: no default route, so nothing leaves the lab) and the node's /etc/netns files. Its
containers are real processes inside it (`ip netns exec`), their stdout and stderr one log, as
a container runtime records them; the image decides PATH (what the container has), whether it
can be pulled at all, and the command of a container that names none.

Volumes (configMap, emptyDir) are mounted at their mountPath in a mount namespace of the
container's own (volumes.py; root only). Pod status follows: Pending/ContainerCreating, then Running (podIP, hostIP, started), then
Succeeded or Failed with each container's exit code; a command not on PATH is a StartError
(exit 128, the runtime's words); an image that cannot be pulled stays waiting in ErrImagePull;
activeDeadlineSeconds fails the pod with DeadlineExceeded. Deleting a pod sends SIGTERM to its
processes, SIGKILL after the grace period, removes its namespace, then the object. Ephemeral
containers start in the pod's namespace and show in ephemeralContainerStatuses.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import ipaddress
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import volumes
from .resources import JSON, timestamp
from .runtime import DEFAULT_PATH, PodRuntime

if TYPE_CHECKING:
    from .server import ApiServer

NETNS_ETC = Path("/etc/netns")
LOG_CHUNK = 32 * 1024
SLEEP_FOREVER = ("sleep", "2147483647")
START_ERROR = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
    'runc create failed: unable to start container process: exec: "{exe}": executable file '
    "not found in $PATH: unknown"
)


@dataclass(frozen=True)
class NodeRuntime:
    """Where a node's pods run. `netns` None: on this machine (no namespaces, no root)."""

    netns: str | None = None
    bridge: str = "cbr0"
    pod_cidr: str | None = None  # "10.245.1.0/24": the bridge holds .1, pods get .2 and up
    pod_routes: tuple[str, ...] = ()  # what a pod reaches through the node (no default route)
    node_ip: str | None = None  # status.hostIP


@dataclass(frozen=True)
class Image:
    """What a container of this image has: `path` is its PATH (None: DEFAULT_PATH, this
    machine's tools), `pull_error` the registry's answer when it cannot be pulled, and
    `entrypoint` what runs when the container names no command."""

    path: str | None = None
    pull_error: str | None = None
    entrypoint: tuple[str, ...] = SLEEP_FOREVER
    # The host directories its program lives in. A real image carries its own files; here they
    # are this machine's, and a volume mounted over them (an emptyDir at /tmp while the checkout
    # is under /tmp) must not hide them.
    files: tuple[str, ...] = ()


class Log:
    """One container's output, as the runtime's log file holds it: each line with the time it
    arrived (for sinceSeconds and timestamps=true); followers wait for more."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.starts: list[int] = []  # where each line begins in `data`
        self.times: list[float] = []  # when it arrived (epoch seconds)
        self.closed = False
        self.changed = asyncio.Event()

    def add(self, chunk: bytes) -> None:
        now = time.time()
        base = len(self.data)
        at_line_start = base == 0 or self.data[-1:] == b"\n"
        self.data.extend(chunk)
        begins = ([base] if at_line_start and chunk else []) + [
            base + i + 1 for i, byte in enumerate(chunk[:-1]) if byte == 0x0A
        ]
        self.starts.extend(begins)
        self.times.extend([now] * len(begins))
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def _offset_since(self, since: float | None) -> int:
        """Where the first line that arrived at or after `since` (epoch seconds) begins."""
        if since is None:
            return 0
        index = bisect.bisect_left(self.times, since)
        return self.starts[index] if index < len(self.starts) else len(self.data)

    def _stamped(self, offset: int, chunk: bytes) -> bytes:
        """`chunk` (from `offset`) with each line that begins in it prefixed by its RFC 3339
        time with nanoseconds and a space, as the kubelet writes timestamps=true."""
        out = bytearray()
        position = offset
        first = bisect.bisect_left(self.starts, offset)
        for start, arrived in zip(self.starts[first:], self.times[first:], strict=True):
            if start >= offset + len(chunk):
                break
            out += chunk[position - offset : start - offset]
            out += rfc3339_nano(arrived).encode() + b" "
            position = start
        out += chunk[position - offset :]
        return bytes(out)

    async def chunks(
        self,
        follow: bool,
        since: float | None = None,
        timestamps: bool = False,
        limit_bytes: int | None = None,
    ) -> AsyncIterator[bytes]:
        """The log from the start (or the first line since `since`); with `follow`, then
        whatever comes, until it closes; at most `limit_bytes` bytes in all."""
        offset = self._offset_since(since)
        left = limit_bytes
        while left is None or left > 0:
            if offset < len(self.data):
                chunk = bytes(self.data[offset : offset + LOG_CHUNK])
                sent = self._stamped(offset, chunk) if timestamps else chunk
                offset += len(chunk)
                if left is not None:
                    sent = sent[:left]
                    left -= len(sent)
                yield sent
                continue
            if self.closed or not follow:
                return
            await self.changed.wait()


def rfc3339_nano(when: float) -> str:
    """2026-12-06T09:14:43.123456000Z: the kubelet's timestamp (nanoseconds, UTC)."""
    moment = datetime.fromtimestamp(when, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


@dataclass
class Container:
    name: str
    process: asyncio.subprocess.Process | None = None
    log: Log = field(default_factory=Log)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ephemeral: bool = False


@dataclass
class PodState:
    namespace: str
    name: str
    node: NodeRuntime
    netns: str | None = None  # the pod's namespace
    own_netns: bool = False  # made for this pod (removed with it)
    ip: str | None = None
    containers: dict[str, Container] = field(default_factory=dict)
    deleting: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    starting: asyncio.Task[Any] | None = None
    files: Path | None = None  # the pod's directory on the node: its volumes (volumes.py)


class Kubelet:
    """The kubelets of every registered node, on the server's event loop."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.nodes: dict[str, NodeRuntime] = {}
        self.images: dict[str, Image] = {}
        #: the image of any name not in `images`; None: such images cannot be pulled
        self.default_image: Image | None = Image()
        self.pods: dict[tuple[str, str], PodState] = {}
        self._ips: dict[str, set[str]] = {}  # node -> addresses in use
        self._serial = itertools.count(1)
        self._busy = 0  # pods being started or torn down

    # ---- test-facing -------------------------------------------------------------------------

    def add_node(self, name: str, runtime: NodeRuntime) -> None:
        """Run the pods bound to node `name` there (its Node object is the test's to put)."""
        self.nodes[name] = runtime

    def namespaces(self) -> list[str]:
        """Network namespaces made for pods and not yet removed."""
        return sorted(p.netns for p in self.pods.values() if p.own_netns and p.netns)

    def idle(self) -> bool:
        """Nothing being started, stopped or torn down (pods still running are fine)."""
        return self._busy == 0 and not any(p.deleting for p in self.pods.values())

    # ---- lifecycle ---------------------------------------------------------------------------

    def bound(self, namespace: str, name: str, node_name: str) -> None:
        """The pod was bound to `node_name`: start it there if that node has a kubelet."""
        node = self.nodes.get(node_name)
        if node is None:
            return  # a node without a kubelet: the pod stays Pending, as with a dead kubelet
        state = PodState(namespace, name, node)
        self.pods[(namespace, name)] = state
        self._spawn(state, self._start(state))
        state.starting = next(iter(state.tasks))

    def _spawn(self, state: PodState, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    async def _start(self, state: PodState) -> None:
        self._busy += 1
        try:
            pod = self._pod(state)
            if pod is None:
                return
            spec = pod["spec"]
            containers = spec.get("containers") or []
            self._update(state, _creating(containers))
            images = [self._image(c.get("image", "")) for c in containers]
            failed = next(
                ((c, why) for c, (_, why) in zip(containers, images, strict=True) if why), None
            )
            if failed is not None:
                container, why = failed
                self._update(state, _pull_failed(containers, container["name"], why))
                return
            await self._network(state, bool(spec.get("hostNetwork")))
            if state.deleting:
                return
            runtime = PodRuntime(
                netns=state.netns,
                container_env={
                    c["name"]: {"PATH": image.path or DEFAULT_PATH}
                    for c, (image, _) in zip(containers, images, strict=True)
                    if image is not None
                },
            )
            self.server.store.set_runtime(state.namespace, state.name, runtime)
            started = [
                await self._run(state, pod, c, image)
                for c, (image, _) in zip(containers, images, strict=True)
                if image is not None
            ]
            if state.deleting:
                return
            self._update(state, _running(state, containers, started))
            deadline = spec.get("activeDeadlineSeconds")
            if deadline:
                self._spawn(state, self._deadline(state, float(deadline)))
            self._spawn(state, self._ended(state, containers))
        finally:
            self._busy -= 1

    async def _ended(self, state: PodState, containers: Sequence[JSON]) -> None:
        """Once every container has ended: the pod's final phase."""
        await asyncio.gather(*(c.done.wait() for c in state.containers.values()))
        if not state.deleting:
            self._update(state, _finished(state, containers))

    async def _run(self, state: PodState, pod: JSON, spec: JSON, image: Image) -> str | None:
        """Start one container's process; its StartError message if the command is missing."""
        container = Container(spec["name"])
        state.containers[container.name] = container
        command = list(spec.get("command") or image.entrypoint) + list(spec.get("args") or [])
        env = {
            "PATH": image.path or DEFAULT_PATH,
            "HOSTNAME": state.name,
            "HOME": "/root",
            **_environment(spec, pod, state),
        }
        exe = command[0] if command else ""
        found = shutil.which(exe, path=env["PATH"]) if "/" not in exe else exe
        if state.deleting:
            container.log.close()
            container.done.set()
            return None
        if not command or found is None or not os.access(found, os.X_OK):
            container.log.close()
            container.done.set()
            return START_ERROR.format(exe=exe)
        prefix = ["ip", "netns", "exec", state.netns] if state.netns else []
        argv = [*prefix, *command]
        if spec.get("volumeMounts"):
            if state.files is None:
                state.files = Path(tempfile.mkdtemp(prefix=f"kubelab-{state.name}-"))
            try:
                mounts = volumes.prepare(self.server.store, pod, spec, state.files)
                argv = volumes.wrap(argv, mounts, state.files, image.files)
            except volumes.VolumeError as exc:
                container.log.close()
                container.done.set()
                return str(exc)
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        container.process = process
        self._spawn(state, self._pump(container))
        return None

    async def _pump(self, container: Container) -> None:
        assert container.process is not None and container.process.stdout is not None
        try:
            while chunk := await container.process.stdout.read(LOG_CHUNK):
                container.log.add(chunk)
            await container.process.wait()
        finally:
            container.log.close()
            container.done.set()

    async def _deadline(self, state: PodState, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if state.deleting or all(c.done.is_set() for c in state.containers.values()):
            return
        state.deleting = True  # the kubelet kills it; the object stays, Failed
        await self._kill(state, grace=0)

        def failed(pod: JSON) -> None:
            status = pod["status"]
            status.update(
                phase="Failed",
                reason="DeadlineExceeded",
                message="Pod was active on the node longer than the specified deadline",
            )
            for item in status.get("containerStatuses") or []:
                item["state"] = {
                    "terminated": {"exitCode": 137, "reason": "Error", "finishedAt": timestamp()}
                }
                item["ready"] = False

        self.server.store.update("Pod", state.name, state.namespace, failed)
        await self._teardown(state)

    # ---- ephemeral containers ----------------------------------------------------------------

    async def add_ephemeral(self, namespace: str, name: str, spec: JSON) -> None:
        """Start ephemeral container `spec` in the pod's network namespace."""
        state = self.pods.get((namespace, name))
        runtime = self.server.store.runtime(namespace, name)
        if state is None:  # a pod the test put in the store: it runs where its runtime says
            state = PodState(namespace, name, NodeRuntime(), netns=runtime.netns)
            self.pods[(namespace, name)] = state
        image, why = self._image(spec.get("image", ""))
        if image is None:
            self._ephemeral_status(state, spec["name"], _waiting("ErrImagePull", why or ""))
            return
        envs = dict(runtime.container_env)
        envs[spec["name"]] = {"PATH": image.path or DEFAULT_PATH}
        runtime.container_env = envs
        self.server.store.set_runtime(namespace, name, runtime)
        pod = self._pod(state)
        if pod is None:
            return
        problem = await self._run(state, pod, spec, image)
        if problem is not None:
            self._ephemeral_status(state, spec["name"], _start_error(problem))
            return
        self._ephemeral_status(state, spec["name"], {"running": {"startedAt": timestamp()}})
        container = state.containers[spec["name"]]
        container.ephemeral = True

        async def ended() -> None:
            await container.done.wait()
            code = container.process.returncode if container.process else None
            self._ephemeral_status(state, spec["name"], _terminated(code))

        self._spawn(state, ended())

    def _ephemeral_status(self, state: PodState, name: str, container_state: JSON) -> None:
        def change(pod: JSON) -> None:
            statuses = pod["status"].setdefault("ephemeralContainerStatuses", [])
            entry = next((s for s in statuses if s["name"] == name), None)
            if entry is None:
                entry = {"name": name, "restartCount": 0, "ready": False}
                statuses.append(entry)
            image = next(
                (
                    c.get("image")
                    for c in pod["spec"].get("ephemeralContainers") or []
                    if c["name"] == name
                ),
                "",
            )
            entry.update(image=image, imageID=f"docker-pullable://{image}", state=container_state)

        self.server.store.update("Pod", state.name, state.namespace, change)

    # ---- deletion ----------------------------------------------------------------------------

    def delete(self, namespace: str, name: str, grace: float) -> bool:
        """Stop the pod (SIGTERM, SIGKILL after `grace`), remove its namespace, then the
        object. False if this kubelet does not run it (the caller removes the object)."""
        state = self.pods.get((namespace, name))
        if state is None or (not state.containers and not state.tasks and state.netns is None):
            self.pods.pop((namespace, name), None)
            return False
        if not state.deleting or grace == 0:
            state.deleting = True
            self._spawn(state, self._delete(state, grace))
        return True

    async def _delete(self, state: PodState, grace: float) -> None:
        self._busy += 1
        try:
            if state.starting is not None and asyncio.current_task() is not state.starting:
                await asyncio.wait([state.starting])  # it stops at its next step
            await self._kill(state, grace)
            await self._teardown(state)
            self.server.store.delete("Pod", state.name, state.namespace)
        finally:
            self._busy -= 1

    async def _kill(self, state: PodState, grace: float) -> None:
        processes = [
            c.process
            for c in state.containers.values()
            if c.process is not None and c.process.returncode is None
        ]
        for process in processes:
            _signal(process, signal.SIGTERM)
        if processes and grace > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await asyncio.gather(*(p.wait() for p in processes))
        for process in processes:
            _signal(process, signal.SIGKILL)
        await asyncio.gather(*(p.wait() for p in processes))
        await asyncio.gather(*(c.done.wait() for c in state.containers.values()))

    async def _teardown(self, state: PodState) -> None:
        if state.own_netns and state.netns:
            await _ip("netns", "del", state.netns)
            shutil.rmtree(NETNS_ETC / state.netns, ignore_errors=True)
            state.own_netns = False
        if state.ip is not None:
            self._ips.get(state.node.netns or "", set()).discard(state.ip)
        if state.files is not None:  # its mounts went with its processes' mount namespace
            shutil.rmtree(state.files, ignore_errors=True)
            state.files = None
        self.pods.pop((state.namespace, state.name), None)
        for task in list(state.tasks):  # a deadline timer still waiting, say
            if task is not asyncio.current_task():
                task.cancel()

    async def shutdown(self) -> None:
        """The server stops: every pod's processes and namespaces go."""
        for state in list(self.pods.values()):
            for task in list(state.tasks):
                task.cancel()
            state.deleting = True
            with contextlib.suppress(Exception):
                await self._kill(state, 0)
            with contextlib.suppress(Exception):
                await self._teardown(state)

    # ---- helpers -----------------------------------------------------------------------------

    def _pod(self, state: PodState) -> JSON | None:
        return self.server.store.get("Pod", state.name, state.namespace)

    def _update(self, state: PodState, change: Any) -> None:
        self.server.store.update("Pod", state.name, state.namespace, change)

    def _image(self, name: str) -> tuple[Image | None, str | None]:
        image = self.images.get(name, self.default_image)
        if image is None:
            return None, (
                f'failed to pull and unpack image "{name}": failed to resolve reference '
                f'"{name}": not found'
            )
        if image.pull_error is not None:
            return None, image.pull_error
        return image, None

    async def _network(self, state: PodState, host_network: bool) -> None:
        node = state.node
        if host_network or node.netns is None:
            state.netns, state.ip = node.netns, node.node_ip
            return
        if node.pod_cidr is None:
            raise RuntimeError(f"node namespace {node.netns} has no pod CIDR")
        serial = next(self._serial)
        netns = f"{node.netns}-p{serial}"
        network = ipaddress.ip_network(node.pod_cidr)
        gateway = str(network.network_address + 1)
        used = self._ips.setdefault(node.netns, set())
        ip = next(str(a) for a in list(network.hosts())[1:] if str(a) not in used)
        used.add(ip)
        state.netns, state.own_netns, state.ip = netns, True, ip
        host_end = f"v{serial}"
        await _ip("netns", "add", netns)
        await _ip_batch(
            node.netns,
            [
                f"link add {host_end} type veth peer name eth0 netns {netns}",
                f"link set {host_end} master {node.bridge} up",
            ],
        )
        await _ip_batch(
            netns,
            [
                "link set lo up",
                f"addr add {ip}/{network.prefixlen} dev eth0",
                "link set eth0 up",
                *(f"route add {cidr} via {gateway} dev eth0" for cidr in node.pod_routes),
            ],
        )
        await _run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w",
                    "net.ipv4.tcp_syn_retries=1"])  # fmt: skip
        source = NETNS_ETC / node.netns
        if source.is_dir():
            target = NETNS_ETC / netns
            target.mkdir(parents=True, exist_ok=True)
            for item in ("resolv.conf", "hosts", "nsswitch.conf"):
                if (source / item).is_file():
                    shutil.copyfile(source / item, target / item)


def _environment(spec: JSON, pod: JSON, state: PodState) -> dict[str, str]:
    """The container's env: values, and the downward API fields a probe pod asks for."""
    fields = {
        "metadata.name": pod["metadata"]["name"],
        "metadata.namespace": pod["metadata"].get("namespace", ""),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "status.podIP": state.ip or "",
        "status.hostIP": state.node.node_ip or "",
    }
    env: dict[str, str] = {}
    for item in spec.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            path = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath", "")
            env[item["name"]] = fields.get(path, "")
    return env


def _signal(process: asyncio.subprocess.Process, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, number)


async def _run(argv: Sequence[str], stdin: str | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await process.communicate(stdin.encode() if stdin is not None else None)
    if process.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited {process.returncode}: {err.decode()}")


async def _ip(*args: str) -> None:
    await _run(["ip", *args])


async def _ip_batch(netns: str, lines: Sequence[str]) -> None:
    await _run(["ip", "-n", netns, "-batch", "-"], "\n".join(lines) + "\n")


# ---- pod status, as the kubelet reports it -------------------------------------------------


def _condition(kind: str, ok: bool, now: str, **extra: str) -> JSON:
    return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now, **extra}


def _waiting(reason: str, message: str = "") -> JSON:
    waiting: JSON = {"reason": reason}
    if message:
        waiting["message"] = message
    return {"waiting": waiting}


def _terminated(code: int | None) -> JSON:
    code = 137 if code is None or code < 0 else code
    return {
        "terminated": {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "finishedAt": timestamp(),
        }
    }


def _start_error(message: str) -> JSON:
    return {
        "terminated": {
            "exitCode": 128,
            "reason": "StartError",
            "message": message,
            "finishedAt": timestamp(),
        }
    }


def _statuses(containers: Sequence[JSON], states: Mapping[str, JSON]) -> list[JSON]:
    return [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            "ready": "running" in states[c["name"]],
            "restartCount": 0,
            "started": "running" in states[c["name"]],
            "state": states[c["name"]],
        }
        for c in containers
    ]


def _creating(containers: Sequence[JSON]) -> Any:
    def change(pod: JSON) -> None:
        status = pod["status"]
        status["containerStatuses"] = _statuses(
            containers, {c["name"]: _waiting("ContainerCreating") for c in containers}
        )

    return change


def _pull_failed(containers: Sequence[JSON], failing: str, why: str) -> Any:
    def change(pod: JSON) -> None:
        states = {c["name"]: _waiting("ContainerCreating") for c in containers}
        states[failing] = _waiting("ErrImagePull", why)
        pod["status"]["containerStatuses"] = _statuses(containers, states)

    return change


def _running(state: PodState, containers: Sequence[JSON], problems: Sequence[str | None]) -> Any:
    now = timestamp()

    def change(pod: JSON) -> None:
        status = pod["status"]
        states = {
            c["name"]: _start_error(p) if p else {"running": {"startedAt": now}}
            for c, p in zip(containers, problems, strict=True)
        }
        ready = all(p is None for p in problems)
        status.update(phase="Running" if ready else "Pending", startTime=now)
        if state.node.node_ip:
            status["hostIP"], status["hostIPs"] = state.node.node_ip, [{"ip": state.node.node_ip}]
        if state.ip:
            status["podIP"], status["podIPs"] = state.ip, [{"ip": state.ip}]
        status["containerStatuses"] = _statuses(containers, states)
        status["conditions"] = [
            _condition("PodScheduled", True, now),
            _condition("Initialized", True, now),
            _condition("ContainersReady", ready, now),
            _condition("Ready", ready, now),
        ]

    return change


def _finished(state: PodState, containers: Sequence[JSON]) -> Any:
    def change(pod: JSON) -> None:
        status = pod["status"]
        codes: list[int] = []
        for item in status.get("containerStatuses") or []:
            container = state.containers.get(item["name"])
            if "terminated" in item["state"]:
                codes.append(int(item["state"]["terminated"]["exitCode"]))
                continue
            code = container.process.returncode if container and container.process else None
            item["state"] = _terminated(code)
            item["ready"] = item["started"] = False
            codes.append(int(item["state"]["terminated"]["exitCode"]))
        status["phase"] = "Succeeded" if codes and all(c == 0 for c in codes) else "Failed"
        for condition in status.get("conditions") or []:
            if condition["type"] in ("Ready", "ContainersReady"):
                condition["status"] = "False"

    return change
