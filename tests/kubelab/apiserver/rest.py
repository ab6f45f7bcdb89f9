"""The REST routes: discovery, health, and GET of any resource (lists with selectors and
paging, watches, items)."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from aiohttp import web

from .frames import flag
from .resources import BY_PATH, JSON, RESOURCES, Resource, not_found, status_response
from .watch import watch

if TYPE_CHECKING:
    from .server import ApiServer


async def version(server: ApiServer, request: web.Request) -> web.Response:
    return web.json_response(
        {
            "major": "1",
            "minor": "32",
            "gitVersion": "v1.32.0",
            "gitCommit": "kubelab",
            "gitTreeState": "clean",
            "buildDate": "2024-12-11T17:59:15Z",
            "goVersion": "go1.23.3",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
    )


async def health(server: ApiServer, request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def api_versions(server: ApiServer, request: web.Request) -> web.Response:
    return web.json_response(
        {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{server.port}"}
            ],
        }
    )


async def api_groups(server: ApiServer, request: web.Request) -> web.Response:
    groups = sorted({r.group for r in RESOURCES.values() if r.group})
    return web.json_response(
        {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                    "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"},
                }
                for g in groups
            ],
        }
    )


def resource_of(request: web.Request) -> Resource | None:
    info = request.match_info
    return BY_PATH.get((info.get("group", ""), info.get("version", "v1"), info["plural"]))


def no_resource() -> web.Response:
    return status_response(404, "the server could not find the requested resource", details={})


def method_not_allowed() -> web.Response:
    return status_response(
        405, "the server does not allow this method on the requested resource", details={}
    )


async def collection(server: ApiServer, request: web.Request) -> web.StreamResponse:
    res = resource_of(request)
    namespace = request.match_info.get("namespace")
    if res is None or (namespace is not None and not res.namespaced):
        return no_resource()
    if request.method != "GET":
        return method_not_allowed()
    query = request.rel_url.query
    if flag(query, "watch"):
        return await watch(server, request, res, namespace)
    items = server.store.list(
        res.kind, namespace, query.get("labelSelector"), query.get("fieldSelector")
    )
    meta: JSON = {"resourceVersion": server.store.resource_version}
    limit = int(query.get("limit", "0") or 0)
    offset = 0
    if query.get("continue"):
        try:
            offset = int(base64.urlsafe_b64decode(query["continue"]).decode())
        except (ValueError, binascii.Error):
            return status_response(410, "The provided continue parameter is too old", "Expired")
    if limit > 0 or offset:
        end = offset + limit if limit > 0 else len(items)
        if end < len(items):
            meta["continue"] = base64.urlsafe_b64encode(str(end).encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        items = items[offset:end]
    for item in items:
        item.pop("kind", None)
        item.pop("apiVersion", None)
    return web.json_response(
        {
            "kind": res.kind + "List",
            "apiVersion": res.api_version,
            "metadata": meta,
            "items": items,
        }
    )


async def item(server: ApiServer, request: web.Request) -> web.Response:
    res = resource_of(request)
    namespace = request.match_info.get("namespace")
    if res is None or res.namespaced != (namespace is not None):
        return no_resource()
    if request.method != "GET":
        return method_not_allowed()
    name = request.match_info["name"]
    obj = server.store.get(res.kind, name, namespace)
    if obj is None:
        return not_found(res.plural, name, res.group)
    return web.json_response(obj)


def pod_of(server: ApiServer, request: web.Request) -> JSON | web.Response:
    """The pod a pods/{name}/SUBRESOURCE route names, or what the apiserver answers instead
    (405 for a method the subresource does not take, 404 for no such pod)."""
    if request.method not in ("GET", "POST"):
        return method_not_allowed()
    name = request.match_info["name"]
    found = server.store.get("Pod", name, request.match_info["namespace"])
    return not_found("pods", name) if found is None else found
