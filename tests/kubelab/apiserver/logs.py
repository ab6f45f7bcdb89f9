"""The pods/log route: a container's output, as the kubelet serves it through the apiserver;
with follow=true, streamed until the container ends (the connection stays open meanwhile).
sinceSeconds / sinceTime start at the first line that arrived since, timestamps=true prefixes
each line with its RFC 3339 time, limitBytes cuts the answer at that many bytes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from datetime import datetime
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


def _positive(query: Mapping[str, str], key: str) -> int | None:
    """An integer parameter that must be at least 1, as the apiserver validates it."""
    if key not in query:
        return None
    try:
        value = int(query[key])
    except ValueError:
        raise ValueError(f"{key}: Invalid value: {query[key]!r}: must be an integer") from None
    if value < 1:
        raise ValueError(f"{key}: Invalid value: {value}: must be greater than 0")
    return value


def _since(query: Mapping[str, str]) -> float | None:
    """The epoch time lines must have arrived at or after: sinceSeconds (relative to now) or
    sinceTime (RFC 3339); the apiserver refuses both at once."""
    seconds = _positive(query, "sinceSeconds")
    moment = query.get("sinceTime")
    if seconds is not None and moment is not None:
        raise ValueError("at most one of sinceTime or sinceSeconds may be specified")
    if seconds is not None:
        return time.time() - seconds
    if moment is not None:
        try:
            return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise ValueError(f"sinceTime: Invalid value: {moment!r}: not RFC 3339") from None
    return None


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
    try:
        since, limit_bytes = _since(query), _positive(query, "limitBytes")
    except ValueError as exc:
        return bad_request(str(exc))
    state = server.kubelet.pods.get((request.match_info["namespace"], request.match_info["name"]))
    running = state.containers.get(container) if state is not None else None
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    if running is not None:
        with server.session(), contextlib.suppress(ConnectionError):
            chunks = running.log.chunks(
                flag(query, "follow"),
                since=since,
                timestamps=flag(query, "timestamps"),
                limit_bytes=limit_bytes,
            )
            async for chunk in chunks:
                await response.write(chunk)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response
