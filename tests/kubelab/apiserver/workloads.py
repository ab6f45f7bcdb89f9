"""What `kubectl create -f` needs to install manifests: the discovery documents it reads first
(/api/v1 and /apis/GROUP/VERSION: which resources exist, namespaced or not) and create, a POST
to a collection, with the apiserver's answers: 201 and the stored object, 409 AlreadyExists,
404 for a missing namespace, 400 for an object posted where it does not belong. Nothing is
scheduled: a Deployment is stored and read back, as far as the API goes.
(tests/test_deploy.py installs deploy/ this way.)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .resources import RESOURCES, not_found, status_response
from .rest import no_resource, resource_of

if TYPE_CHECKING:
    from .server import ApiServer

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


async def discovery(server: ApiServer, request: web.Request) -> web.Response:
    """An APIResourceList: the resources of one group version."""
    group, version = request.match_info.get("group", ""), request.match_info.get("version", "v1")
    found = [r for r in RESOURCES.values() if (r.group, r.version) == (group, version)]
    if not found:
        return no_resource()
    return web.json_response(
        {
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
    )


async def create(server: ApiServer, request: web.Request) -> web.Response:
    res = resource_of(request)
    namespace = request.match_info.get("namespace")
    if res is None or res.namespaced != (namespace is not None):
        return no_resource()
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        return status_response(400, f"the body is not JSON: {exc}")
    if not isinstance(body, dict):
        return status_response(400, "the body is not an object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind, api_version) != (res.kind, res.api_version):
        return status_response(
            400,
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({res.api_version}), or kind {kind} is not {res.kind}",
        )
    meta = body.setdefault("metadata", {})
    name = meta.get("name")
    if not name:
        return status_response(
            422, f"{res.kind} is invalid: metadata.name: Required value: name is required"
        )
    if namespace is not None:
        if meta.get("namespace", namespace) != namespace:
            return status_response(
                400,
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        if server.store.get("Namespace", namespace, None) is None:
            return not_found("namespaces", namespace)
        meta["namespace"] = namespace
    if server.store.get(res.kind, name, namespace) is not None:
        what = f"{res.plural}.{res.group}" if res.group else res.plural
        details: dict[str, Any] = {"name": name, "kind": res.plural}
        if res.group:
            details["group"] = res.group
        return status_response(409, f'{what} "{name}" already exists', "AlreadyExists", details)
    return web.json_response(server.store.put(body), status=201)
