"""Workload kinds for the kubelab server, so that `kubectl create` can install deploy/ on it:
ConfigMap, ServiceAccount, Deployment, DaemonSet and RBAC, plus what kubectl asks first
(the discovery documents /api/v1 and /apis/GROUP/VERSION) and create (POST to a collection)
with the apiserver's answers: 201 and the stored object, 409 AlreadyExists, 404 for a missing
namespace, 400 for an object that does not belong where it is posted.

Kept beside apiserver.py (which serves reads, exec and port-forward) as a subclass: nothing
here schedules a pod; the objects are stored and read back, as an apiserver does.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .apiserver import _BY_PATH, RESOURCES, ApiServer, Resource, _not_found, _status_response

WORKLOADS = (
    Resource("ConfigMap", "configmaps", "", "v1", True),
    Resource("ServiceAccount", "serviceaccounts", "", "v1", True),
    Resource("Deployment", "deployments", "apps", "v1", True),
    Resource("DaemonSet", "daemonsets", "apps", "v1", True),
    Resource("Role", "roles", "rbac.authorization.k8s.io", "v1", True),
    Resource("RoleBinding", "rolebindings", "rbac.authorization.k8s.io", "v1", True),
    Resource("ClusterRole", "clusterroles", "rbac.authorization.k8s.io", "v1", False),
    Resource("ClusterRoleBinding", "clusterrolebindings", "rbac.authorization.k8s.io", "v1", False),
)
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def register() -> None:
    """Make the workload kinds known to every kubelab server (idempotent)."""
    for resource in WORKLOADS:
        RESOURCES.setdefault(resource.kind, resource)
        _BY_PATH.setdefault((resource.group, resource.version, resource.plural), resource)


def _resource_list(group: str, version: str) -> dict[str, Any] | None:
    found = [r for r in RESOURCES.values() if (r.group, r.version) == (group, version)]
    if not found:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [
            {
                "name": r.plural,
                "singularName": r.kind.lower(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": VERBS,
            }
            for r in sorted(found, key=lambda r: r.plural)
        ],
    }


class WorkloadApiServer(ApiServer):
    """The kubelab server with the workload kinds, discovery documents and create."""

    def build_app(self) -> web.Application:
        register()
        app = super().build_app()
        app.router.add_get("/api/v1", self._discovery)
        app.router.add_get("/apis/{group}/{version}", self._discovery)
        return app

    async def _discovery(self, request: web.Request) -> web.Response:
        info = request.match_info
        document = _resource_list(info.get("group", ""), info.get("version", "v1"))
        if document is None:
            return self._no_resource()
        return web.json_response(document)

    async def _collection(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            return await self._create(request)
        return await super()._collection(request)

    async def _create(self, request: web.Request) -> web.Response:
        res = self._resource(request)
        namespace = request.match_info.get("namespace")
        if res is None or res.namespaced != (namespace is not None):
            return self._no_resource()
        try:
            body = await request.json()
        except json.JSONDecodeError as exc:
            return _status_response(400, f"the body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _status_response(400, "the body is not an object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if (kind, api_version) != (res.kind, res.api_version):
            return _status_response(
                400,
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({res.api_version}) or kind {kind} is not {res.kind}",
            )
        meta = body.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            return _status_response(
                422, f"{res.kind} is invalid: metadata.name: Required value: name is required"
            )
        if namespace is not None:
            if meta.get("namespace", namespace) != namespace:
                return _status_response(
                    400,
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request",
                )
            if self.store.get("Namespace", namespace, None) is None:
                return _not_found("namespaces", namespace)
            meta["namespace"] = namespace
        if self.store.get(res.kind, name, namespace) is not None:
            what = f"{res.plural}.{res.group}" if res.group else res.plural
            details: dict[str, Any] = {"name": name, "kind": res.plural}
            if res.group:
                details["group"] = res.group
            return _status_response(
                409, f'{what} "{name}" already exists', "AlreadyExists", details
            )
        return web.json_response(self.store.put(body), status=201)
