"""The `kubernetes` source: probes from every matching pod, one exec per pod, fanned out.

Each Running pod named by `pod:` or matched by `selector:` becomes a row SOURCE/POD, with what
the API server says of the pod as its facts. The exec goes through the API server as kubectl
exec carries it (pod_exec.py); what runs there and how its end is judged is the remote
runner's (remote.py): the agent, or in a container without python3 the shell prober, or with
`debug: {ephemeral: true}` where neither can run (or always) an ephemeral container added to
the pod (ephemeral.py). Faults
are results: no matching pod, a refused exec, a WebSocket that drops mid-run: the cells
without an answer become source-error with the reason, and the matrix completes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import anyio

from ..kube import KubeApiError, KubeClient, KubeError, explain
from ..model import CellRequest
from .base import Sink, Source
from .ephemeral import ephemeral_place
from .pod_exec import PodExecChannel
from .remote import Elsewhere, Place, RemoteRow

MAX_PARALLEL_EXECS = 32  # execs in flight at once (each holds a WebSocket to the API server)
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


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


async def cluster_client(
    source: Source, batch: Sequence[CellRequest], sink: Sink
) -> KubeClient | None:
    """The run's API client, or None once the row has failed with the reason (no kubeconfig,
    the API unreachable): every Kubernetes source starts here."""
    try:
        return await source.settings.context.kube.client()
    except KubeError as exc:
        source.fail_row(sink, batch, str(exc))
        return None


class KubernetesSource(Source):
    kind = "kubernetes"

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        kube = await cluster_client(self, batch, sink)
        if kube is not None:
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

        channel = partial(PodExecChannel, kube, name, namespace, container)
        place = Place(channel, facts, short_commands=True)
        debug = self.spec.debug
        if debug is not None:
            reach = partial(ephemeral_place, kube, pod, container, debug, facts)
            what = f"an ephemeral container (image {debug.image})"
            place.elsewhere = Elsewhere("always" if debug.always else "no-probe", reach, what)
        remote = RemoteRow(self, row, batch, sink, place)
        remote.emit()  # the row is known before its turn among MAX_PARALLEL_EXECS
        async with limiter:
            await remote.run()
