"""The pods/log route: a container's output, as the kubelet serves it through the apiserver;
with follow=true, streamed until the container ends (the connection stays open meanwhile)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from aiohttp import web

from .frames import flag
from .resources import JSON, bad_request
from .rest import pod_of

if TYPE_CHECKING:
    from .server import ApiServer


def _container_name(pod: JSON, wanted: str | None) -> tuple[str | None, str]:
    spec = pod["spec"]
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in spec.get("containers") or []]
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
    if wanted:
        if wanted in containers or wanted in ephemeral:
            return wanted, ""
        return None, f"container {wanted} is not valid for pod {name}"
    if len(containers) == 1:
        return containers[0], ""
    message = (
        f"a container name must be specified for pod {name}, choose one of: "
        f"[{' '.join(containers)}]"
    )
    if ephemeral:
        message += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
    return None, message


def _waiting(pod: JSON, container: str) -> str | None:
    """Why the container has no log yet (it is waiting to start), in the kubelet's words."""
    status = pod.get("status") or {}
    items = list(status.get("containerStatuses") or []) + list(
        status.get("ephemeralContainerStatuses") or []
    )
    found = next((s for s in items if s.get("name") == container), None)
    name = pod["metadata"]["name"]
    if found is None:
        if status.get("phase") == "Pending":
            return f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
        return None
    waiting = (found.get("state") or {}).get("waiting")
    if waiting is None:
        return None
    reason = waiting.get("reason", "ContainerCreating")
    if reason in ("ErrImagePull", "ImagePullBackOff"):
        reason = "trying and failing to pull image"
    return f'container "{container}" in pod "{name}" is waiting to start: {reason}'


async def pod_log(server: ApiServer, request: web.Request) -> web.StreamResponse:
    pod = pod_of(server, request)
    if isinstance(pod, web.Response):
        return pod
    if request.method != "GET":
        from .rest import method_not_allowed

        return method_not_allowed()
    query = request.rel_url.query
    container, problem = _container_name(pod, query.get("container"))
    if container is None:
        return bad_request(problem)
    waiting = _waiting(pod, container)
    if waiting is not None:
        return bad_request(waiting)
    state = server.kubelet.pods.get((request.match_info["namespace"], request.match_info["name"]))
    running = state.containers.get(container) if state is not None else None
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    if running is not None:
        with server.session(), contextlib.suppress(ConnectionError):
            async for chunk in running.log.chunks(flag(query, "follow")):
                await response.write(chunk)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response
