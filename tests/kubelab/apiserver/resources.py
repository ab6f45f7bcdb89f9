"""The resources the stand-in serves, and the v1 Status objects its errors carry."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

JSON = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """One API resource: its kind, plural (the URL segment), group, version and scope."""

    kind: str
    plural: str
    group: str
    version: str
    namespaced: bool
    #: field selectors the real apiserver supports for this kind (metadata.* always works)
    fields: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES: dict[str, Resource] = {
    r.kind: r
    for r in (
        Resource("Namespace", "namespaces", "", "v1", False, ("status.phase",)),
        Resource("Node", "nodes", "", "v1", False, ("spec.unschedulable",)),
        Resource(
            "Pod",
            "pods",
            "",
            "v1",
            True,
            (
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ),
        ),
        Resource("Service", "services", "", "v1", True),
        Resource("Endpoints", "endpoints", "", "v1", True),
        Resource("EndpointSlice", "endpointslices", "discovery.k8s.io", "v1", True),
        Resource("NetworkPolicy", "networkpolicies", "networking.k8s.io", "v1", True),
        # What deploy/ installs (writes.py: create; workloads.py: discovery)
        Resource("ConfigMap", "configmaps", "", "v1", True),
        Resource("ServiceAccount", "serviceaccounts", "", "v1", True),
        Resource("Deployment", "deployments", "apps", "v1", True),
        Resource("DaemonSet", "daemonsets", "apps", "v1", True),
        Resource("Role", "roles", "rbac.authorization.k8s.io", "v1", True),
        Resource("RoleBinding", "rolebindings", "rbac.authorization.k8s.io", "v1", True),
        Resource("ClusterRole", "clusterroles", "rbac.authorization.k8s.io", "v1", False),
        Resource(
            "ClusterRoleBinding", "clusterrolebindings", "rbac.authorization.k8s.io", "v1", False
        ),
        Resource("ResourceQuota", "resourcequotas", "", "v1", True),
    )
}
BY_PATH: dict[tuple[str, str, str], Resource] = {
    (r.group, r.version, r.plural): r for r in RESOURCES.values()
}


def copy_json(obj: Mapping[str, Any]) -> JSON:
    """A deep copy that also proves the object is plain JSON."""
    copied: JSON = json.loads(json.dumps(obj))
    return copied


def timestamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_object(
    code: int, message: str, reason: str | None = None, details: JSON | None = None
) -> JSON:
    """A ``v1 Status`` Failure object as the apiserver returns it for an error."""
    obj: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason if reason is not None else _REASONS.get(code, ""),
    }
    if details is not None:
        obj["details"] = details
    obj["code"] = code
    return obj


def status_response(
    code: int, message: str, reason: str | None = None, details: JSON | None = None
) -> web.Response:
    headers = {"Retry-After": "1"} if code in (429, 503) else None
    return web.json_response(
        status_object(code, message, reason, details), status=code, headers=headers
    )


def not_found(plural: str, name: str, group: str = "") -> web.Response:
    details: JSON = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    what = f"{plural}.{group}" if group else plural
    return status_response(404, f'{what} "{name}" not found', details=details)


def bad_request(message: str) -> web.Response:
    return status_response(400, message)
