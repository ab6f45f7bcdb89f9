"""`probe-engine serve MATRIX`: the matrix on a schedule behind HTTP endpoints."""

from __future__ import annotations

from pathlib import Path

import click

from .guard import guard
from .options import (
    RunFlags,
    concurrency_option,
    deadline_option,
    duration,
    fail_on_option,
    timeout_option,
)


@click.command()
@click.argument("matrix", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--listen",
    default="127.0.0.1:9462",
    show_default=True,
    help="Address and port of the HTTP endpoints (0.0.0.0:9462 in a container).",
)
@click.option("--interval", default="30s", show_default=True, help="From one run to the next.")
@click.option(
    "--jitter/--no-jitter",
    default=True,
    show_default=True,
    help="Move each run by up to a tenth of the interval (and the first within one interval).",
)
@click.option("--once-at-start", is_flag=True, help="Run at once, then on the schedule.")
@click.option(
    "--history",
    type=click.IntRange(1, 100_000),
    default=100,
    show_default=True,
    help="Runs kept in memory for each cell's history.",
)
@click.option(
    "--reload-check",
    default="2s",
    show_default=True,
    help="How often the matrix file is checked for changes (0: only on SIGHUP).",
)
@concurrency_option()
@timeout_option()
@deadline_option("Deadline of each run [default: the matrix's, else 5m].")
@click.option(
    "--select",
    multiple=True,
    help="Serve a subset: source=GLOB,target=GLOB (repeatable, as for run).",
)
@fail_on_option(
    "Which cells make a run unsuccessful (probe_engine_last_success_timestamp_seconds)."
)
@click.option("--kubeconfig", default=None, help="Kubeconfig file(s), as for `run`.")
@click.option("--context", "kube_context", default=None, help="Kubeconfig context, as for `run`.")
def serve(  # noqa: PLR0913 - click hands every option over as a parameter
    matrix: Path,
    listen: str,
    interval: str,
    jitter: bool,
    once_at_start: bool,
    history: int,
    reload_check: str,
    concurrency: int | None,
    timeout: str | None,
    deadline: str | None,
    select: tuple[str, ...],
    fail_on: str,
    kubeconfig: str | None,
    kube_context: str | None,
) -> None:
    """Run MATRIX on a schedule and serve the results: /metrics for Prometheus, /report (the
    latest run, with each cell's history), /report.json, /history.json, /healthz, /readyz and
    /probe?source=..&target=.. (one cell, now). The matrix is reloaded when its file changes
    or on SIGHUP (a bad new one keeps the old); SIGTERM stops it cleanly (exit 0)."""

    def action() -> int:
        import faulthandler
        import logging

        import anyio

        from ..errors import SpecError
        from ..extras import MissingExtra, require

        try:  # serve's HTTP server and /metrics: one line naming the extra, exit 2
            require("prometheus", "probe-engine serve")
        except MissingExtra as exc:
            raise SpecError(str(exc)) from None
        from ..serve import ServeOptions, parse_listen
        from ..serve import serve as serve_forever
        from ..spec import load_matrix

        host, port = parse_listen(listen)
        every = duration(interval, "--interval") or 0.0
        if every <= 0:
            raise SpecError("the interval must be longer than 0", field="--interval")
        off = reload_check.strip() in ("0", "0s")
        check = 0.0 if off else duration(reload_check, "--reload-check") or 0.0
        options = ServeOptions(
            host=host,
            port=port,
            interval=every,
            jitter=jitter,
            once_at_start=once_at_start,
            history=history,
            reload_check=check,
            run=RunFlags(
                concurrency, timeout, deadline, select, fail_on, kubeconfig, kube_context
            ).options(),
        )
        loaded = load_matrix(matrix)
        options.run.select.check(loaded.matrix)  # a typo in --select: bad input, at start
        # A long-running process: should it ever crash hard, the log shows where.
        faulthandler.enable()
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
        from ..speedups import frozen_heap

        with frozen_heap():  # modules and the first matrix live as long as the process
            return anyio.run(serve_forever, loaded, options)

    guard(action)
