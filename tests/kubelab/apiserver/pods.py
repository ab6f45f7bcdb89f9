"""Pods created and deleted through the API: admission (defaults, Pod Security, quota), then
the scheduler binds the pod to a node and that node's kubelet runs it (kubelet.py); deletion is
graceful (deletionTimestamp, SIGTERM, SIGKILL after the grace period), as the apiserver and the
kubelet do it between them. Scheduling happens after the 201, as in a cluster: the creator
sees a Pending pod and watches it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from .admission import default_pod, refusal
from .resources import JSON, status_response, timestamp
from .scheduler import schedule

if TYPE_CHECKING:
    from .server import ApiServer


async def create(server: ApiServer, request: web.Request, pod: JSON) -> web.Response:
    return submit(server, pod)


def submit(server: ApiServer, pod: JSON) -> web.Response:
    """Admit and store `pod` (its namespace set), then schedule it in the background: the
    answer to its creator (201, or the 403/422 of a refusal). A controller creates its pods so."""
    namespace = pod["metadata"]["namespace"]
    if not (pod.get("spec") or {}).get("containers"):
        return status_response(
            422,
            f'Pod "{pod["metadata"]["name"]}" is invalid: spec.containers: Required value',
        )
    default_pod(pod)
    refused = refusal(server.store, pod, namespace)
    if refused is not None:
        return status_response(403, refused)
    stored = server.store.put(pod)
    task = asyncio.get_running_loop().create_task(_bind(server, stored))
    server.background.add(task)
    task.add_done_callback(server.background.discard)
    return web.json_response(stored, status=201)


async def _bind(server: ApiServer, pod: JSON) -> None:
    """What the scheduler does next: bind the pod to a node, or say why none fits."""
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    node = pod["spec"].get("nodeName")
    message = ""
    if not node:
        node, message = schedule(pod, server.store.list("Node"))
    now = timestamp()

    def bind(current: JSON) -> None:
        conditions = current["status"].setdefault("conditions", [])
        if node:
            current["spec"]["nodeName"] = node
            conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now})
        else:
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                }
            )

    if server.store.update("Pod", name, namespace, bind) is not None and node:
        server.kubelet.bound(namespace, name, node)


async def delete(server: ApiServer, pod: JSON, grace_seconds: float | None) -> JSON:
    """Start deleting `pod` (`grace_seconds` None: the pod's own grace period); the object as
    the apiserver returns it (with deletionTimestamp while the kubelet stops it, or as it was
    when it is gone at once)."""
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    if grace_seconds is None:
        grace_seconds = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
    grace = max(0.0, grace_seconds)
    if not pod["spec"].get("nodeName") or not server.kubelet.delete(namespace, name, grace):
        server.store.delete("Pod", name, namespace)  # never ran anywhere: gone at once
        return pod

    def mark(current: JSON) -> None:
        current["metadata"].setdefault("deletionTimestamp", timestamp())
        current["metadata"]["deletionGracePeriodSeconds"] = int(grace)

    return server.store.update("Pod", name, namespace, mark) or pod
