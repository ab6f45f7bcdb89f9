"""The HTTP side of `serve` (aiohttp's server): /metrics, /report, /report.json,
/history.json, /healthz, /readyz and /probe?source=..&target=.. for a one-off cell."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from ..errors import SpecError
from ..metrics import cell_families
from ..reports.html_report import render_html
from ..reports.prometheus_report import exposition
from ..reports.view import LiveContext, utc_time
from .metrics import registry
from .scheduler import Busy, Scheduler

NO_RUN_YET = "no run has completed yet"
_SCHEDULER = web.AppKey("scheduler", Scheduler)

INDEX = """<!doctype html><meta charset="utf-8"><title>probe-engine serve</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328}a{color:#0969da}</style>
<h1>probe-engine serve</h1><ul>
<li><a href="report">report</a>: the latest run, with each cell's history</li>
<li><a href="report.json">report.json</a>: the latest run (as report.json)</li>
<li><a href="history.json">history.json</a>: the last runs; since when each cell is as it is</li>
<li><a href="metrics">metrics</a>: for Prometheus</li>
<li><a href="healthz">healthz</a> · <a href="readyz">readyz</a></li>
<li><code>probe?source=NAME&amp;target=NAME</code>: one cell now (JSON, or format=prometheus)</li>
</ul>"""


class _Cache:
    """The latest run rendered once, not at every request."""

    def __init__(self) -> None:
        self.key: tuple[int, str | None] | None = None
        self.html = b""
        self.json = b""


_CACHE = web.AppKey("cache", _Cache)


def _scheduler(request: web.Request) -> Scheduler:
    return request.app[_SCHEDULER]


def _not_yet() -> web.Response:
    return web.Response(status=503, text=NO_RUN_YET + "\n", headers={"Retry-After": "5"})


async def index(request: web.Request) -> web.Response:
    return web.Response(text=INDEX, content_type="text/html")


async def metrics(request: web.Request) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(registry(_scheduler(request)))
    return web.Response(body=body, headers={"Content-Type": content_type})


def _cached(request: web.Request) -> _Cache | None:
    scheduler = _scheduler(request)
    if scheduler.latest is None:
        return None
    cache = request.app[_CACHE]
    key = (scheduler.latest_number, scheduler.matrix.error)
    if cache.key != key:
        live = LiveContext(
            run_number=scheduler.latest_number,
            interval_s=scheduler.options.interval,
            history_size=scheduler.history.size,
            next_run_at=scheduler.next_run_at,
            matrix_error=scheduler.matrix.error,
            trends=scheduler.history.trends(),
        )
        cache.html = render_html(scheduler.latest, live)
        cache.json = scheduler.latest.model_dump_json(indent=2).encode()
        cache.key = key
    return cache


async def report(request: web.Request) -> web.Response:
    cache = _cached(request)
    if cache is None:
        return _not_yet()
    return web.Response(body=cache.html, content_type="text/html", charset="utf-8")


async def report_json(request: web.Request) -> web.Response:
    cache = _cached(request)
    if cache is None:
        return _not_yet()
    return web.Response(body=cache.json, content_type="application/json")


async def history_json(request: web.Request) -> web.Response:
    return web.json_response(_scheduler(request).history.as_json())


def health(scheduler: Scheduler) -> dict[str, Any]:
    """/healthz's body: alive, which matrix, and why the latest reload failed (if it did)."""
    current = scheduler.matrix.current
    latest = scheduler.latest
    return {
        "status": "degraded" if scheduler.matrix.error else "ok",
        "matrix": {
            "path": current.path,
            "sha256": current.sha256,
            "loaded_at": utc_time(scheduler.matrix.loaded_at),
        },
        "reload_error": scheduler.matrix.error,
        "runs": scheduler.runs,
        "skipped": scheduler.skipped,
        "running": scheduler.running,
        "last_run": None
        if latest is None
        else {
            "number": scheduler.latest_number,
            "finished_at": utc_time(latest.finished_at),
            "exit_status": latest.exit_status,
        },
    }


async def healthz(request: web.Request) -> web.Response:
    # Alive is 200 even when a reload failed: restarting would not fix the file, and the
    # previous matrix is still probed. The reason is in the body (and in the metrics).
    return web.json_response(health(_scheduler(request)), dumps=lambda d: json.dumps(d, indent=2))


async def readyz(request: web.Request) -> web.Response:
    scheduler = _scheduler(request)
    if scheduler.stopping.is_set():
        return web.Response(status=503, text="stopping\n")
    if scheduler.latest is None:
        return web.Response(status=503, text=f"not ready: {NO_RUN_YET}\n")
    return web.Response(text="ready\n")


async def probe(request: web.Request) -> web.Response:
    query = request.rel_url.query
    source, target = query.get("source", "").strip(), query.get("target", "").strip()
    output = query.get("format", "json")
    if not source or not target:
        return web.json_response(
            {"error": "name a cell: /probe?source=NAME&target=NAME (globs allowed)"}, status=400
        )
    if output not in ("json", "prometheus"):
        return web.json_response({"error": "format is json or prometheus"}, status=400)
    try:
        result = await _scheduler(request).probe(source, target)
    except Busy as exc:
        return web.json_response({"error": str(exc)}, status=429, headers={"Retry-After": "1"})
    except SpecError as exc:  # a name that matches nothing in the matrix
        return web.json_response({"error": exc.message}, status=404)
    if not result.cells:
        return web.json_response(
            {"error": f"no cell of the matrix matches source={source} target={target}"},
            status=404,
        )
    if output == "prometheus":
        return web.Response(
            body=exposition(cell_families(result.cells)),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )
    return web.Response(body=result.model_dump_json(indent=2), content_type="application/json")


def build_app(scheduler: Scheduler) -> web.Application:
    app = web.Application()
    app[_SCHEDULER] = scheduler
    app[_CACHE] = _Cache()
    app.router.add_get("/", index)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/report", report)
    app.router.add_get("/report.json", report_json)
    app.router.add_get("/history.json", history_json)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/probe", probe)
    return app
