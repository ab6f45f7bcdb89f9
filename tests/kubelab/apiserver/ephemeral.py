"""The pods/ephemeralcontainers subresource: GET the pod, PATCH (strategic merge, as kubectl
debug sends it) to add ephemeral containers. Containers merge by name; one already there may not
be changed (422), and none can be removed: the list only grows. A new one is started by the
kubelet in the pod's network namespace, targeting `targetContainerName` if given.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from .resources import JSON, bad_request, status_response
from .rest import method_not_allowed, pod_of

if TYPE_CHECKING:
    from .server import ApiServer

ALLOWED = (
    "name", "image", "command", "args", "workingDir", "env", "envFrom", "imagePullPolicy",
    "securityContext", "stdin", "stdinOnce", "tty", "targetContainerName", "volumeMounts",
    "terminationMessagePath", "terminationMessagePolicy", "resources",
)  # fmt: skip
PATCH_TYPES = (
    "application/strategic-merge-patch+json",
    "application/merge-patch+json",
)


async def ephemeral_containers(server: ApiServer, request: web.Request) -> web.StreamResponse:
    pod = pod_of(server, request) if request.method in ("GET", "POST") else _pod(server, request)
    if isinstance(pod, web.Response):
        return pod
    if request.method == "GET":
        return web.json_response(pod)
    if request.method != "PATCH":
        return method_not_allowed()
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type not in PATCH_TYPES:
        return status_response(
            415, f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(PATCH_TYPES)}", "UnsupportedMediaType"
        )  # fmt: skip
    try:
        patch = json.loads(await request.read())
    except ValueError as exc:
        return bad_request(f"the body is not JSON: {exc}")
    wanted = ((patch.get("spec") or {}) if isinstance(patch, dict) else {}).get(
        "ephemeralContainers"
    )
    if not isinstance(wanted, list):
        return bad_request("the patch names no spec.ephemeralContainers")
    name = pod["metadata"]["name"]
    existing = {c["name"]: c for c in pod["spec"].get("ephemeralContainers") or []}
    taken = {c["name"] for c in pod["spec"].get("containers") or []}
    added: list[JSON] = []
    for item in wanted:
        cname = item.get("name") if isinstance(item, dict) else None
        if not cname:
            return _invalid(name, "spec.ephemeralContainers[0].name: Required value")
        if cname in existing:
            if any(existing[cname].get(key) != value for key, value in item.items()):
                return _invalid(
                    name, f'spec.ephemeralContainers: Forbidden: existing ephemeral containers '
                    f'"{cname}" may not be changed'
                )  # fmt: skip
            continue
        if cname in taken:
            return _invalid(name, f'spec.ephemeralContainers[0].name: Duplicate value: "{cname}"')
        unknown = sorted(set(item) - set(ALLOWED))
        if unknown:
            return _invalid(
                name, f"spec.ephemeralContainers[0].{unknown[0]}: Forbidden: cannot be set for an "
                "Ephemeral Container"
            )  # fmt: skip
        target = item.get("targetContainerName")
        if target and target not in taken:
            return _invalid(
                name, f'spec.ephemeralContainers[0].targetContainerName: Not found: "{target}"'
            )
        added.append(
            {"terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent", **item}
        )
    if pod.get("status", {}).get("phase") != "Running" and added:
        return bad_request(f"pod {name} is not running: ephemeral containers need a running pod")

    def add(current: JSON) -> None:
        current["spec"].setdefault("ephemeralContainers", []).extend(added)

    namespace = request.match_info["namespace"]
    stored = server.store.update("Pod", name, namespace, add)
    for container in added:
        await server.kubelet.add_ephemeral(namespace, name, container)
    return web.json_response(server.store.get("Pod", name, namespace) or stored)


def _pod(server: ApiServer, request: web.Request) -> JSON | web.Response:
    from .resources import not_found

    name = request.match_info["name"]
    found = server.store.get("Pod", name, request.match_info["namespace"])
    return not_found("pods", name) if found is None else found


def _invalid(pod: str, cause: str) -> web.Response:
    return status_response(422, f'Pod "{pod}" is invalid: {cause}', "Invalid")
