"""The probe pod channel: a pod made for one program, pinned to one node; its output is the pod's
log, its exit status the container's, and deleting it stops it.

The program runs as the container's command, not through exec: a probe pod needs `create`,
`get/list/watch` and `delete` on pods and `get` on pods/log, never `create` on pods/exec (which
would let the same identity run commands in every pod of the namespace), and the pod's life is
the program's (stopping it is deleting it; activeDeadlineSeconds bounds the program itself,
not an idle container waiting for an exec). What that costs: the program's stdin has to travel
in the pod's spec, and stderr shares the log with stdout (the runner takes stray lines as
noise; the exit code comes from the container's status).

Stdin travels in environment variables (each under the kernel's 128 KiB limit for one): the
agent's input zlib-compressed and base64-encoded (~45 KB for the agent's modules), read back by
a few lines of Python put before the bootstrap; the shell prober's as text, piped in by `sh`.
Pods are named from the run, the node and the attempt, so a pod whose creation was cut off by
Ctrl-C can still be deleted by name.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..kube import KubeApiError, KubeClient, explain
from .channel import Channel, ChannelError, ExitStatus, Leftover
from .pod_watch import PodWatch, container_state, unschedulable

CONTAINER = "probe"
INPUT_VARIABLE = "PROBE_ENGINE_INPUT_"
INPUT_CHUNK = 100_000  # bytes per environment variable: under MAX_ARG_STRLEN (128 KiB)
INPUT_LIMIT = 1_000_000  # a pod object must stay well under etcd's 1.5 MiB request limit
STOP_GRACE = 2  # seconds between SIGTERM and SIGKILL when a run is cut short
CLEANUP_WITHIN = 3.0  # deleting a pod whose start failed or was cut off, whatever cancelled us
NEVER_RAN = ("StartError", "ContainerCannotRun")  # the runtime could not start the command
# Waiting reasons after which a container will not start without someone's help.
STUCK = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
)
# Put before the agent's bootstrap: stdin from the environment, the variables then dropped so
# the agent's facts and its children never carry them. Python 3.8 compatible.
PYTHON_INPUT = (
    "import base64, io, os, sys, zlib\n"
    f"_k = sorted(k for k in os.environ if k.startswith({INPUT_VARIABLE!r}))\n"
    "sys.stdin = io.TextIOWrapper(io.BytesIO(zlib.decompress(base64.b64decode("
    '"".join(os.environ.pop(k) for k in _k)))), encoding="utf-8")\n'
)
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")


def label_value(text: str) -> str:
    """`text` as a valid label value (63 characters of [A-Za-z0-9_.-], alphanumeric ends)."""
    cleaned = _LABEL_VALUE.sub("-", text)[:63].strip("-_.")
    return cleaned or "x"


@dataclass(frozen=True)
class ProbePodTemplate:
    """What every probe pod of one source shares: where it is made, from which image, how it
    is labelled, what it tolerates, how long it may live."""

    namespace: str
    image: str
    run_id: str
    source: str
    host_network: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()
    active_deadline: int = 600
    start_timeout: float = 120.0
    image_pull_policy: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": "probe-engine",
            "app.kubernetes.io/component": "probe-pod",
            "app.kubernetes.io/managed-by": "probe-engine",
            "probe-engine.io/run": self.run_id,
            "probe-engine.io/source": label_value(self.source),
        }

    @property
    def selector(self) -> str:
        """The label selector of this source's pods in this run."""
        source = label_value(self.source)
        return f"probe-engine.io/run={self.run_id},probe-engine.io/source={source}"

    def pod_name(self, node: str, attempt: int) -> str:
        """A name from the run, the node and the attempt: known before the pod exists."""
        digest = hashlib.sha256(f"{self.source}\0{node}".encode()).hexdigest()[:8]
        stem = re.sub(r"[^a-z0-9-]+", "-", node.lower()).strip("-")[:30].strip("-")
        return f"probe-engine-{self.run_id[:8]}-{stem or 'node'}-{digest}-{attempt}"

    def manifest(
        self, name: str, node: str, command: Sequence[str], env: Mapping[str, str]
    ) -> dict[str, Any]:
        """The pod: pinned to `node` by node affinity (so the scheduler still refuses a
        cordoned or tainted node, with its reason), restricted Pod Security where
        host_network allows it, no service account token, no restarts, a deadline."""
        pinned = {"key": "metadata.name", "operator": "In", "values": [node]}
        spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": self.active_deadline,
            "terminationGracePeriodSeconds": STOP_GRACE,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,  # no service variables in the probes' environment
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchFields": [pinned]}]
                    }
                }
            },
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "runAsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": CONTAINER,
                    "image": self.image,
                    "command": list(command),
                    "env": [{"name": k, "value": v} for k, v in {**self.env, **env}.items()],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "readOnlyRootFilesystem": True,
                    },
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                }
            ],
        }
        if self.image_pull_policy:
            spec["containers"][0]["imagePullPolicy"] = self.image_pull_policy
        if self.host_network:
            spec["hostNetwork"] = True
            spec["dnsPolicy"] = "ClusterFirstWithHostNet"
        if self.tolerations:
            spec["tolerations"] = [dict(t) for t in self.tolerations]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": self.labels,
                "annotations": {"probe-engine.io/node": node},
            },
            "spec": spec,
        }


def carried(command: Sequence[str], stdin: bytes) -> tuple[list[str], dict[str, str]]:
    """`command` rewritten to read `stdin` from environment variables, and those variables.
    The runner starts only `python -c CODE` (the agent) and `sh -c SCRIPT ARGS...` (the
    prober); ChannelError for anything else, or for an input too large for a pod's spec."""
    program = os.path.basename(command[0]) if command else ""
    if program == "sh" and len(command) >= 3 and command[1] == "-c":
        text = stdin.decode()
        chunks = _chunks(text)
        names = list(chunks)
        quoted = " ".join(f'"${name}"' for name in names)
        unset = " ".join(names)
        script = f'printf %s {quoted} | (unset {unset}; exec sh -c "$0" "$@")'
        return ["sh", "-c", script, *command[2:]], chunks
    if len(command) >= 3 and command[1] == "-c":
        packed = base64.b64encode(zlib.compress(stdin, 9)).decode()
        return [command[0], "-c", PYTHON_INPUT + command[2], *command[3:]], _chunks(packed)
    raise ChannelError(f"a probe pod runs python -c or sh -c only, not {command[:1]}")


def _chunks(text: str) -> dict[str, str]:
    if len(text) > INPUT_LIMIT:
        raise ChannelError(
            f"the batch is too large to travel in a probe pod's spec ({len(text)} bytes, at most "
            f"{INPUT_LIMIT}): split the matrix, or give this source fewer targets"
        )
    count = max(1, -(-len(text) // INPUT_CHUNK))
    return {
        f"{INPUT_VARIABLE}{index:03d}": text[index * INPUT_CHUNK : (index + 1) * INPUT_CHUNK]
        for index in range(count)
    }


def _started(pod: Mapping[str, Any] | None) -> bool:
    """The pod ran (or failed to start its command), or it will not without help."""
    if pod is None:
        return False
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return True
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Running", "Succeeded", "Failed") or unschedulable(pod):
        return True
    return (container_state(pod, CONTAINER).get("waiting") or {}).get("reason") in STUCK


def _terminated(pod: Mapping[str, Any] | None) -> bool:
    return (
        pod is None
        or "terminated" in container_state(pod, CONTAINER)
        or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    )


def why_not_started(pod: Mapping[str, Any] | None, node: str) -> str | None:
    """Why a pod that `_started` accepted will not run its program, in the API's words."""
    if pod is None:
        return f"the probe pod for node {node} was deleted before it started"
    scheduler = unschedulable(pod)
    if scheduler is not None:
        return f"the scheduler cannot place a pod on node {node}: {scheduler}"
    waiting = container_state(pod, CONTAINER).get("waiting") or {}
    if waiting.get("reason") in STUCK:
        words = waiting.get("message") or ""
        return f"the probe pod on node {node} cannot start: {waiting['reason']}" + (
            f": {words}" if words else ""
        )
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return f"the probe pod on node {node} was deleted before it started"
    return None


def pending_words(pod: Mapping[str, Any] | None) -> str:
    """What a pod that never started was doing: 'Pending, ContainerCreating'."""
    if pod is None:
        return "not seen by the watch"
    parts = [str((pod.get("status") or {}).get("phase") or "Pending")]
    waiting = container_state(pod, CONTAINER).get("waiting") or {}
    if waiting.get("reason"):
        parts.append(str(waiting["reason"]))
    if not (pod.get("spec") or {}).get("nodeName"):
        parts.append("not yet scheduled")
    return ", ".join(parts)


@dataclass(frozen=True)
class PodRun:
    """What the probe pods of one source run share: the API client, the watch that follows
    them, the template they are made from, and the bound on creations in flight."""

    kube: KubeClient
    watch: PodWatch
    template: ProbePodTemplate
    creates: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(1))


class ProbePodChannel(Channel):
    """`command` as the only container of a new pod on `node`, made as `run` says; `facts`
    (the row's) get the pod's name, address and timings."""

    carries_input = True  # in the pod's spec: the agent gets its sources without asking

    def __init__(
        self,
        run: PodRun,
        node: str,
        attempts: Callable[[], int],
        facts: dict[str, Any],
        command: Sequence[str],
    ) -> None:
        super().__init__(command)
        self.kube, self.watch, self.template, self.node = run.kube, run.watch, run.template, node
        self.name = run.template.pod_name(node, attempts())
        self.facts = facts
        self.creates = run.creates
        self.where = f"probe pod {run.template.namespace}/{self.name} on node {node}"
        self.response: Any = None
        self.deleted = False

    def _count(self) -> None:
        """One more API request for this row (the benchmark's cost per node)."""
        self.facts["api_requests"] = int(self.facts.get("api_requests") or 0) + 1

    async def open(self) -> None:
        """Create the pod and wait until it runs; ChannelError with the API's reason if it
        cannot (it is deleted then: the runner closes nothing it could not open)."""
        try:
            await self._open()
        except BaseException:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_WITHIN):
                await self._delete(0)
            raise

    async def _open(self) -> None:
        command, env = carried(self.command, self.input)
        manifest = self.template.manifest(self.name, self.node, command, env)
        namespace = self.template.namespace
        begun = time.monotonic()
        try:
            async with self.creates:
                self._count()
                await self.kube.get(self.kube.core.create_namespaced_pod, namespace, manifest)
        except Exception as exc:
            # Refused by the API: nothing was made. (A request cut off may have made it.)
            self.deleted = isinstance(exc, KubeApiError)
            doing = f"creating a probe pod on node {self.node}"
            raise ChannelError(explain(exc, self.kube, doing)) from exc
        self.facts.update(pod=self.name, pod_namespace=namespace)
        pod = await self.watch.wait(self.name, _started, self.template.start_timeout)
        if pod is None:
            last = self.watch.pods.get(self.name)
            if self.watch.failure is not None:
                raise ChannelError(self.watch.failure)
            raise ChannelError(
                f"the probe pod on node {self.node} did not start within "
                f"{self.template.start_timeout:g} s ({pending_words(last)})"
            )
        why = why_not_started(pod, self.node)
        if why is not None:
            raise ChannelError(why)
        status = pod.get("status") or {}
        self.facts.update(
            pod_ip=status.get("podIP"),
            host_ip=status.get("hostIP"),
            pod_start_ms=round((time.monotonic() - begun) * 1000.0, 1),
        )

    async def send(self, data: bytes) -> None:
        """Nothing: the input travelled in the pod's spec."""

    async def receive(self, on_line: Callable[[bytes], None]) -> None:
        ended = container_state(self.watch.pods.get(self.name), CONTAINER).get("terminated")
        if ended and ended.get("reason") in NEVER_RAN:
            return  # the command never ran: no log; the exit status says why
        try:
            self._count()
            self.response = await self.kube.stream(
                self.kube.core.read_namespaced_pod_log,
                self.name,
                self.template.namespace,
                container=CONTAINER,
                follow=True,
            )
            async for chunk in self.response.content.iter_any():
                self.take(chunk, on_line)
        except Exception as exc:
            self.lost = explain(exc, self.kube, f"following the log of {self.where}")
        finally:
            self.flush(on_line)

    async def exit_status(self) -> ExitStatus:
        """The container's exit code; a StartError or a deadline in the kubelet's words."""
        pod = await self.watch.wait(self.name, _terminated, 5.0)
        if pod is None:
            return ExitStatus()
        state = container_state(pod, CONTAINER).get("terminated") or {}
        status = pod.get("status") or {}
        if status.get("reason") == "DeadlineExceeded":
            return ExitStatus(words=f"{status.get('message') or 'DeadlineExceeded'}")
        if state.get("reason") in NEVER_RAN:
            return ExitStatus(words=str(state.get("message") or state["reason"]))
        code = state.get("exitCode")
        return ExitStatus(code=int(code)) if code is not None else ExitStatus()

    async def stop(self, leftover: Leftover | None) -> None:
        """Delete the pod gracefully: its program gets SIGTERM (the agent then reports the
        cells in flight as far as they got), SIGKILL after STOP_GRACE seconds."""
        await self._delete(STOP_GRACE)

    async def aclose(self) -> None:
        response, self.response = self.response, None
        if response is not None:
            with contextlib.suppress(Exception):
                response.release()
        await self._delete(0)

    async def _delete(self, grace: int) -> None:
        if self.deleted:
            return
        self.deleted = True
        self.watch.released.add(self.name)
        self._count()
        try:
            await self.kube.get(
                self.kube.core.delete_namespaced_pod,
                self.name,
                self.template.namespace,
                grace_period_seconds=grace,
            )
        except Exception as exc:  # the row says so (RBAC, an API gone); gone already is fine
            if not (isinstance(exc, KubeApiError) and exc.status == 404):
                why = explain(exc, self.kube, f"deleting {self.where}")
                self.facts["left_behind"] = f"{why}; `probe-engine cleanup` removes it"
