"""The life of a `serve` process: listen, schedule, watch the matrix, stop on a signal."""

from __future__ import annotations

import logging
import signal

import anyio
from aiohttp import web

from ..agent.workers import lingering
from ..errors import SpecError
from ..spec import LoadedMatrix
from .app import build_app
from .matrix_file import MatrixFile
from .options import ServeOptions
from .scheduler import Scheduler

log = logging.getLogger("probe_engine.serve")
STOP_GRACE = 30.0
"""Seconds an interrupted run gets to stop its probes and children before it is cancelled."""
THREAD_GRACE = 10.0


async def _probe_threads_done(grace: float) -> None:
    """Let the in-process agent's threads finish the blocking call they are in (each ends
    within its cell's timeout, which may be longer than `grace`: then the command line ends
    the process without the C library's exit handlers, see agent/workers.py lingering())."""
    with anyio.move_on_after(grace):
        while lingering():
            await anyio.sleep(0.05)
    if lingering():
        log.info(
            "%d probe threads are still in a blocking call after %s s: not waiting for them",
            lingering(),
            f"{grace:g}",
        )


async def _listen(app: web.Application, options: ServeOptions) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        where = f"{options.host}:{options.port}"
        raise SpecError(
            f"cannot listen on {where}: {exc.strerror or exc}", field="--listen"
        ) from None
    host, port = runner.addresses[0][:2]
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{port}"


async def serve(loaded: LoadedMatrix, options: ServeOptions) -> int:
    """Serve until SIGTERM or SIGINT; the exit status (0 when stopped by a signal)."""
    stopping = anyio.Event()
    matrix = MatrixFile(loaded)
    scheduler = Scheduler(matrix, options, stopping)
    runner, url = await _listen(build_app(scheduler), options)
    log.info(
        "listening on %s: every %s s%s, matrix %s (sha256 %s)",
        url,
        f"{options.interval:g}",
        " with jitter" if options.jitter else "",
        loaded.path,
        loaded.sha256[:12],
    )
    try:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async with anyio.create_task_group() as runs:
                async with anyio.create_task_group() as services:
                    services.start_soon(scheduler.tick_forever, runs)
                    if options.reload_check > 0:
                        services.start_soon(matrix.watch, options.reload_check)
                    async for signum in signals:
                        if signum == signal.SIGHUP:
                            await matrix.reload("SIGHUP")
                            continue
                        log.info("%s: stopping", signal.Signals(signum).name)
                        break
                    stopping.set()
                    services.cancel_scope.cancel()
                # The run in flight sees `stopping`, cancels its cells and stops its children.
                with anyio.move_on_after(STOP_GRACE) as waited:
                    await scheduler.idle.wait()
                if waited.cancelled_caught:
                    log.warning("the run in flight did not stop in %s s: cancelled", STOP_GRACE)
                runs.cancel_scope.cancel()
            await _probe_threads_done(THREAD_GRACE)
    finally:
        await runner.cleanup()
    log.info("stopped after %d runs (%d skipped)", scheduler.runs, scheduler.skipped)
    return 0
