"""Writes: create (POST to a collection), delete (DELETE an item) and deletecollection, with the
apiserver's answers: 201 and the stored object, 409 AlreadyExists, 404 for a namespace that
does not exist, 400 for an object that does not belong where it is posted, 422 without a name.
metadata.generateName gets its random suffix. Pods go through pods.py (admission, the
scheduler, the kubelet); a DaemonSet makes its pods (daemonsets.py); every other kind is stored
as sent.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from . import daemonsets, pods
from .admission import generated_name
from .resources import JSON, Resource, not_found, status_response
from .rest import method_not_allowed, no_resource, resource_of
from .selectors import match_fields, match_labels, parse_field_selector, parse_label_selector

if TYPE_CHECKING:
    from .server import ApiServer


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
            f"version ({res.api_version}) or kind {kind} is not {res.kind}",
        )
    meta = body.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generated_name(str(meta["generateName"]))
    name = meta.get("name")
    if not name:
        return status_response(
            422, f"{res.kind} is invalid: metadata.name: Required value: name is required"
        )
    if namespace is not None:
        if meta.get("namespace", namespace) != namespace:
            return status_response(
                400,
                "the namespace of the provided object does not match the namespace sent on the "
                "request",
            )
        if server.store.get("Namespace", namespace, None) is None:
            return not_found("namespaces", namespace)
        meta["namespace"] = namespace
    if server.store.get(res.kind, name, namespace) is not None:
        return already_exists(res, name)
    for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
        meta.pop(key, None)
    if res.kind == "Pod":
        return await pods.create(server, request, body)
    stored = server.store.put(body)
    if res.kind == "DaemonSet":
        daemonsets.created(server, stored)
    return web.json_response(stored, status=201)


def already_exists(res: Resource, name: str) -> web.Response:
    what = f"{res.plural}.{res.group}" if res.group else res.plural
    details: JSON = {"name": name, "kind": res.plural}
    if res.group:
        details["group"] = res.group
    return status_response(409, f'{what} "{name}" already exists', "AlreadyExists", details)


async def delete(server: ApiServer, request: web.Request) -> web.Response:
    res = resource_of(request)
    namespace = request.match_info.get("namespace")
    if res is None or res.namespaced != (namespace is not None):
        return no_resource()
    name = request.match_info["name"]
    found = server.store.get(res.kind, name, namespace)
    if found is None:
        return not_found(res.plural, name, res.group)
    if res.kind == "Pod":
        return web.json_response(await pods.delete(server, found, await grace_period(request)))
    server.store.delete(res.kind, name, namespace)
    if res.kind == "DaemonSet":  # the garbage collector's background propagation
        for pod in daemonsets.owned_pods(server, found):
            await pods.delete(server, pod, None)
    return web.json_response(found)


async def delete_collection(server: ApiServer, request: web.Request) -> web.Response:
    res = resource_of(request)
    namespace = request.match_info.get("namespace")
    if res is None or (namespace is not None and not res.namespaced):
        return no_resource()
    if request.method != "DELETE":
        return method_not_allowed()
    query = request.rel_url.query
    labels = parse_label_selector(query["labelSelector"]) if query.get("labelSelector") else []
    fields = parse_field_selector(query["fieldSelector"], res) if query.get("fieldSelector") else []
    items = [
        obj
        for obj in server.store.list(res.kind, namespace)
        if match_labels(labels, obj["metadata"].get("labels")) and match_fields(obj, fields)
    ]
    deleted = []
    grace = await grace_period(request)
    for obj in items:
        if res.kind == "Pod":
            deleted.append(await pods.delete(server, obj, grace))
        elif server.store.delete(res.kind, obj["metadata"]["name"], namespace):
            deleted.append(obj)
    for item in deleted:
        item.pop("kind", None)
        item.pop("apiVersion", None)
    return web.json_response(
        {
            "kind": res.kind + "List",
            "apiVersion": res.api_version,
            "metadata": {"resourceVersion": server.store.resource_version},
            "items": deleted,
        }
    )


async def grace_period(request: web.Request) -> float | None:
    """gracePeriodSeconds from the query, else from a DeleteOptions body; None if neither."""
    raw = request.rel_url.query.get("gracePeriodSeconds")
    if raw is None and request.can_read_body:
        try:
            options = json.loads(await request.read() or b"{}")
        except ValueError:
            options = {}
        if isinstance(options, dict):
            raw = options.get("gracePeriodSeconds")
    try:
        return None if raw is None else float(raw)
    except (TypeError, ValueError):
        return None
