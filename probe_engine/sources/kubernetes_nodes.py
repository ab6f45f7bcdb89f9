"""The `kubernetes-nodes` source: one short-lived probe pod on each selected node, one row each.

Kubernetes is the engine here: the nodes come from the API (`nodes: {selector, names}`), each
gets a pod pinned to it by node affinity (so the scheduler still refuses a cordoned or tainted
node, and says why), the agent runs as the pod's command and its results come back on the log
stream (probe_pod.py says why logs and not exec), and one watch follows every pod of the run.
Pods are created a few at a time (CREATES_IN_FLIGHT) and run side by side (at most
MAX_PARALLEL_PODS), each row streaming its cells as its node answers. A node that cannot run
the pod (cordoned, an untolerated taint, an image that cannot be pulled, a quota, an admission
refusal) is a row with the API's reason.

Every pod is labelled with the run (`probe-engine.io/run`) and `app.kubernetes.io/managed-by:
probe-engine`, bounded by activeDeadlineSeconds, and deleted when its program ends, when the
run is cut short (Ctrl-C, SIGTERM, --deadline) and, as a last sweep, any pod of the run the
watch saw and no row deleted. `probe-engine cleanup` removes what a killed run left.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import anyio

from ..kube import KubeClient, explain
from ..model import CellRequest
from .base import Sink, Source
from .kubernetes import cluster_client
from .pod_watch import PodWatch
from .probe_pod import PodRun, ProbePodChannel, ProbePodTemplate
from .remote import STOP_WITHIN, Place, RemoteRow, budget

MAX_PARALLEL_PODS = 64  # rows in flight: each holds a log stream (the API client's pool is 100)
CREATES_IN_FLIGHT = 8  # pod creations at once: the API server and the scheduler pace the rest
DEADLINE_SLACK = 60  # seconds a pod may outlive its program's budget before the kubelet stops it
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
CONTROL_PLANE_TOLERATIONS = tuple(
    {"key": key, "operator": "Exists", "effect": "NoSchedule"} for key in CONTROL_PLANE_LABELS
)


def node_facts(node: Mapping[str, Any]) -> dict[str, Any]:
    """What the API says of a node: its addresses, readiness, roles, cordon and taints."""
    meta, spec, status = (
        node.get("metadata") or {},
        node.get("spec") or {},
        node.get("status") or {},
    )
    addresses = status.get("addresses") or []
    labels = meta.get("labels") or {}
    ready = next(
        (
            c.get("status") == "True"
            for c in status.get("conditions") or []
            if c.get("type") == "Ready"
        ),
        None,
    )
    return {
        "node": meta.get("name"),
        "node_internal_ips": [a.get("address") for a in addresses if a.get("type") == "InternalIP"],
        "node_external_ips": [a.get("address") for a in addresses if a.get("type") == "ExternalIP"],
        "node_ready": ready,
        "node_roles": sorted(
            key.split("/", 1)[1] for key in labels if key.startswith("node-role.kubernetes.io/")
        ),
        "node_unschedulable": bool(spec.get("unschedulable")),
        "node_taints": [
            f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
            for t in spec.get("taints") or []
        ],
        "kubelet_version": (status.get("nodeInfo") or {}).get("kubeletVersion"),
    }


class KubernetesNodesSource(Source):
    kind = "kubernetes-nodes"

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        kube = await cluster_client(self, batch, sink)
        if kube is None:
            return
        spec = self.spec
        namespace = spec.namespace or kube.namespace
        facts: dict[str, Any] = {
            "namespace": namespace,
            "image": spec.image,
            "host_network": spec.host_network,
            "run_id": self.settings.context.run_id,
            **kube.describe(),
        }
        try:
            nodes, why_none = await self._nodes(kube)
        except Exception as exc:
            self.fail_row(sink, batch, explain(exc, kube, "listing the nodes"), facts)
            return
        if not nodes:
            self.fail_row(sink, batch, why_none, facts)
            return
        template = self._template(namespace, batch)
        watch = PodWatch(kube, namespace, template.selector)
        async with anyio.create_task_group() as background:
            background.start_soon(watch.run)
            await watch.started()
            if watch.failure is not None:
                self.fail_row(sink, batch, watch.failure, facts)
                background.cancel_scope.cancel()
                return
            try:
                rows = anyio.CapacityLimiter(MAX_PARALLEL_PODS)
                run = PodRun(kube, watch, template, anyio.CapacityLimiter(CREATES_IN_FLIGHT))
                async with anyio.create_task_group() as group:
                    for node in nodes:
                        group.start_soon(self._run_node, run, node, batch, sink, rows)
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_WITHIN):
                    await _sweep(kube, watch, namespace)
                background.cancel_scope.cancel()

    def _template(self, namespace: str, batch: Sequence[CellRequest]) -> ProbePodTemplate:
        spec, settings = self.spec, self.settings
        lifetime = spec.start_timeout + budget(batch, settings.concurrency, settings.timeout)
        return ProbePodTemplate(
            namespace=namespace,
            image=spec.image,
            run_id=settings.context.run_id,
            source=self.name,
            host_network=spec.host_network,
            env=dict(spec.env),
            tolerations=CONTROL_PLANE_TOLERATIONS if spec.nodes.control_plane else (),
            active_deadline=math.ceil(lifetime) + DEADLINE_SLACK,
            start_timeout=spec.start_timeout,
            image_pull_policy=spec.image_pull_policy,
        )

    async def _nodes(self, kube: KubeClient) -> tuple[list[Mapping[str, Any]], str]:
        """The nodes to probe from, by name; and why there are none when there are none."""
        chosen = self.spec.nodes
        data = await kube.get(kube.core.list_node, label_selector=chosen.selector)
        items = sorted(data.get("items") or [], key=lambda n: n["metadata"].get("name", ""))
        picked = [
            n
            for n in items
            if any(fnmatch.fnmatchcase(n["metadata"].get("name", ""), g) for g in chosen.names)
        ]
        if self.spec.max_nodes is not None:
            picked = picked[: self.spec.max_nodes]
        if picked:
            return picked, ""
        where = f"selector {chosen.selector}" if chosen.selector else "no selector"
        listed = ", ".join(n["metadata"].get("name", "") for n in items[:12]) or "none"
        return [], (
            f"no node matches names {list(chosen.names)} with {where} "
            f"(nodes {'matching the selector' if chosen.selector else 'in the cluster'}: {listed})"
        )

    async def _run_node(
        self,
        run: PodRun,
        node: Mapping[str, Any],
        batch: Sequence[CellRequest],
        sink: Sink,
        rows: anyio.CapacityLimiter,
    ) -> None:
        name, template = str(node["metadata"]["name"]), run.template
        facts: dict[str, Any] = {
            **node_facts(node),
            "namespace": template.namespace,
            "image": template.image,
            "host_network": template.host_network,
            "run_id": template.run_id,
        }
        attempts = itertools.count(1)
        channel = partial(ProbePodChannel, run, name, lambda: next(attempts), facts)
        remote = RemoteRow(
            self, f"{self.name}/{name}", batch, sink, Place(channel, facts, template.env)
        )
        remote.emit()  # the row is known before its turn
        async with rows:
            await remote.run()


async def _sweep(kube: KubeClient, watch: PodWatch, namespace: str) -> None:
    """Delete any pod of this run the watch saw and no row deleted (a creation cut short)."""
    for name, pod in list(watch.pods.items()):
        if name in watch.released or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        try:
            await kube.get(kube.core.delete_namespaced_pod, name, namespace, grace_period_seconds=0)
        except Exception:  # already gone, or the API is unreachable: cleanup will find it
            continue
