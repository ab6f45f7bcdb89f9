"""Every route the stand-in apiserver serves, in one table. To serve more (RBAC reviews,
evictions...), write a handler `async def name(server, request)` in a
module of its own (or rest.py) and add a row here; `server.store` holds the objects,
`server.requests` / `server.execs` are what tests assert on, and rest.py's errors
(`not_found`, `bad_request`, `method_not_allowed`) answer as the real apiserver does.

Rows are matched in order; "*" takes every method (the handler answers 405 as the apiserver
does), so a more specific path goes before a pattern that would also match it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from . import rest, workloads, writes
from .ephemeral import ephemeral_containers
from .execs import exec_session
from .logs import pod_log
from .portforward import portforward

if TYPE_CHECKING:
    from .server import ApiServer

Handler = Callable[["ApiServer", web.Request], Awaitable[web.StreamResponse]]

POD = "/api/v1/namespaces/{namespace}/pods/{name}"
CORE_NAMESPACED = "/api/v1/namespaces/{namespace}/{plural}"
GROUP_NAMESPACED = "/apis/{group}/{version}/namespaces/{namespace}/{plural}"
CORE_CLUSTER = "/api/v1/{plural}"
GROUP_CLUSTER = "/apis/{group}/{version}/{plural}"


@dataclass(frozen=True)
class Route:
    method: str  # "GET", "POST"..., or "*"
    path: str  # aiohttp's pattern: {name} is one path segment
    handler: Handler


ROUTES: tuple[Route, ...] = (
    Route("GET", "/version", rest.version),
    Route("GET", "/version/", rest.version),
    Route("GET", "/healthz", rest.health),
    Route("GET", "/livez", rest.health),
    Route("GET", "/readyz", rest.health),
    Route("GET", "/api", rest.api_versions),
    Route("GET", "/apis", rest.api_groups),
    Route("GET", "/api/v1", workloads.discovery),
    Route("GET", "/apis/{group}/{version}", workloads.discovery),
    Route("*", POD + "/exec", exec_session),
    Route("*", POD + "/portforward", portforward),
    Route("*", POD + "/log", pod_log),
    Route("*", POD + "/ephemeralcontainers", ephemeral_containers),
    *(
        row
        for collection in (CORE_NAMESPACED, GROUP_NAMESPACED, CORE_CLUSTER, GROUP_CLUSTER)
        for row in (
            Route("POST", collection, writes.create),
            Route("DELETE", collection, writes.delete_collection),
            Route("*", collection, rest.collection),
            Route("DELETE", collection + "/{name}", writes.delete),
            Route("*", collection + "/{name}", rest.item),
        )
    ),
)
