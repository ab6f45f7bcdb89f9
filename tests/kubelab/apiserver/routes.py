"""Every route the stand-in apiserver serves, in one table. To serve more (pod creation, logs,
ephemeral containers, RBAC reviews...), write a handler `async def name(server, request)` in a
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

from . import rest, workloads
from .execs import exec_session
from .portforward import portforward

if TYPE_CHECKING:
    from .server import ApiServer

Handler = Callable[["ApiServer", web.Request], Awaitable[web.StreamResponse]]

POD = "/api/v1/namespaces/{namespace}/pods/{name}"
CORE_NAMESPACED = "/api/v1/namespaces/{namespace}/{plural}"
GROUP_NAMESPACED = "/apis/{group}/{version}/namespaces/{namespace}/{plural}"


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
    Route("POST", CORE_NAMESPACED, workloads.create),
    Route("POST", GROUP_NAMESPACED, workloads.create),
    Route("POST", "/api/v1/{plural}", workloads.create),
    Route("POST", "/apis/{group}/{version}/{plural}", workloads.create),
    Route("*", POD + "/exec", exec_session),
    Route("*", POD + "/portforward", portforward),
    Route("*", CORE_NAMESPACED, rest.collection),
    Route("*", CORE_NAMESPACED + "/{name}", rest.item),
    Route("*", GROUP_NAMESPACED, rest.collection),
    Route("*", GROUP_NAMESPACED + "/{name}", rest.item),
    Route("*", "/api/v1/{plural}", rest.collection),
    Route("*", "/api/v1/{plural}/{name}", rest.item),
    Route("*", "/apis/{group}/{version}/{plural}", rest.collection),
    Route("*", "/apis/{group}/{version}/{plural}/{name}", rest.item),
)
