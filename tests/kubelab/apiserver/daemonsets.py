"""The DaemonSet controller, as far as a created DaemonSet goes: one pod per node it should run
on, made from the template the way kube-controller-manager makes it (generateName from the
DaemonSet's name, the template's labels with `controller-revision-hash` and
`pod-template-generation`, an ownerReference, pinned to its node by node affinity on
metadata.name, the DaemonSet tolerations added), then admitted, scheduled and run like any pod
created through the API (pods.submit). Deleting the DaemonSet deletes its pods (the garbage
collector's background propagation). Nodes added later and template updates are not followed.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from typing import TYPE_CHECKING

from . import pods
from .admission import generated_name
from .resources import JSON
from .scheduler import schedule

if TYPE_CHECKING:
    from .server import ApiServer

# What the controller adds to every daemon pod (pkg/controller/daemon/util), so that a node's
# conditions and a cordon do not keep or take it away.
TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def created(server: ApiServer, daemonset: JSON) -> None:
    """A DaemonSet was stored: make its pods in the background, as the controller does."""
    task = asyncio.get_running_loop().create_task(_reconcile(server, daemonset))
    server.background.add(task)
    task.add_done_callback(server.background.discard)


def daemon_pod(daemonset: JSON, node: str) -> JSON:
    """The pod the controller makes for `node` from the DaemonSet's template."""
    meta, template = daemonset["metadata"], daemonset["spec"]["template"]
    revision = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
    spec = copy.deepcopy(template.get("spec") or {})
    affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
        ]
    }
    tolerations = spec.setdefault("tolerations", [])
    tolerations.extend(t for t in TOLERATIONS if t not in tolerations)
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.update({"controller-revision-hash": revision, "pod-template-generation": "1"})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": generated_name(meta["name"] + "-"),
            "generateName": meta["name"] + "-",
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


async def _reconcile(server: ApiServer, daemonset: JSON) -> None:
    store = server.store
    made = 0
    wanted = []
    for node in store.list("Node"):
        name = node["metadata"]["name"]
        pod = daemon_pod(daemonset, name)
        if schedule(pod, [node])[0] == name:  # the node would take it: it should run there
            wanted.append(pod)
    for pod in wanted:
        if pods.submit(server, pod).status == 201:
            made += 1

    def counted(current: JSON) -> None:
        current["status"] = {
            "desiredNumberScheduled": len(wanted),
            "currentNumberScheduled": made,
            "updatedNumberScheduled": made,
            "numberMisscheduled": 0,
            "numberReady": 0,
            "observedGeneration": 1,
        }

    meta = daemonset["metadata"]
    store.update("DaemonSet", meta["name"], meta["namespace"], counted)


def owned_pods(server: ApiServer, owner: JSON) -> list[JSON]:
    """The pods whose ownerReferences name `owner` (by uid)."""
    uid = owner["metadata"]["uid"]
    return [
        pod
        for pod in server.store.list("Pod", owner["metadata"].get("namespace"))
        if any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences") or [])
    ]
