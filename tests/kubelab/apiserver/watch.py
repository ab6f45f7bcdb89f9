"""Watches: `GET <collection>?watch=true` as a stream of JSON lines, one event per change.

As the apiserver sends them: `{"type": "ADDED"|"MODIFIED"|"DELETED", "object": {...}}` with
kind and apiVersion in each object; without resourceVersion (or "0") every current object
first as ADDED; from a resourceVersion the history no longer holds, one ERROR event carrying
a 410 Expired Status. An object that stops matching the selectors is DELETED for this watch,
one that starts matching ADDED. The stream ends at timeoutSeconds or when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

from aiohttp import web

from .resources import JSON, Resource, status_object
from .selectors import match_fields, match_labels, parse_field_selector, parse_label_selector
from .store import Change, TooOld

if TYPE_CHECKING:
    from .server import ApiServer

DEFAULT_TIMEOUT = 1800  # the apiserver's default is 30-60 minutes, randomised


async def watch(
    server: ApiServer, request: web.Request, res: Resource, namespace: str | None
) -> web.StreamResponse:
    query = request.rel_url.query
    labels = parse_label_selector(query["labelSelector"]) if query.get("labelSelector") else []
    fields = parse_field_selector(query["fieldSelector"], res) if query.get("fieldSelector") else []
    raw_since = query.get("resourceVersion", "")
    since = int(raw_since) if raw_since not in ("", "0") else None
    timeout = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Change] = asyncio.Queue()

    def listener(change: Change) -> None:  # called under the store's lock, from any thread
        loop.call_soon_threadsafe(queue.put_nowait, change)

    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    try:
        past, stop = server.store.watch(res.kind, listener, since)
    except TooOld:
        await response.prepare(request)
        expired = status_object(
            410,
            f"too old resource version: {since} ({server.store.resource_version})",
            "Expired",
        )
        await response.write(_line("ERROR", expired))
        await response.write_eof()
        return response

    def selected(obj: JSON) -> bool:
        if namespace is not None and obj["metadata"].get("namespace") != namespace:
            return False
        return match_labels(labels, obj["metadata"].get("labels")) and match_fields(obj, fields)

    matched: set[tuple[str, str]] = set()

    def event(change: Change) -> bytes | None:
        obj = change.object
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        was, now = key in matched, change.type != "DELETED" and selected(obj)
        if change.type == "DELETED":
            now = False
            if was or selected(obj):
                matched.discard(key)
                return _line("DELETED", obj)
            return None
        if now:
            matched.add(key)
            return _line("MODIFIED" if was and change.type != "ADDED" else "ADDED", obj)
        if was:
            matched.discard(key)
            return _line("DELETED", obj)
        return None

    await response.prepare(request)
    try:
        with server.session(), contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(timeout):
                for change in past:
                    line = event(change)
                    if line is not None:
                        await response.write(line)
                while True:
                    line = event(await queue.get())
                    if line is not None:
                        await response.write(line)
    finally:
        stop()
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response


def _line(type_: str, obj: JSON) -> bytes:
    return (json.dumps({"type": type_, "object": obj}, separators=(",", ":")) + "\n").encode()
