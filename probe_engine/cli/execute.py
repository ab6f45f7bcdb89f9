"""One run from the command line: probe (Ctrl-C and SIGTERM cut it short), show it on the
terminal, write its reports. Shared by `run` and `demo`."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from ..engine import EventHandler, RunOptions
    from ..results import MatrixResult
    from ..spec import LoadedMatrix


@dataclass(frozen=True)
class Shown:
    """How a run's result is told: report files (`out` None: none), and the terminal."""

    out: Path | None
    formats: Sequence[str]
    basename: str
    output: str = "table"  # table | json | none
    progress: bool = True


def execute(loaded: LoadedMatrix, options: RunOptions, shown: Shown) -> int:
    """Run, show, write reports; the exit status."""
    out, formats, basename, output = shown.out, shown.formats, shown.basename, shown.output
    import anyio

    from ..speedups import frozen_heap

    console = _console(stderr=output == "json") if _needs_rich(shown) else None
    # The run, then its reports: thousands of objects made, none freed, then the process ends.
    with frozen_heap(pause_collector=True):
        if console is not None and shown.progress and console.is_terminal:
            from ..reports.terminal import LiveProgress

            with LiveProgress(console) as handler:
                result = anyio.run(_run_with_signals, loaded, options, handler)
        else:
            result = anyio.run(_run_with_signals, loaded, options, None)
        written = _write(result, out, formats, basename) if out is not None else []
    if output == "json":
        # report.json's bytes, streamed: a 100,000-cell result (150 MB of JSON) is never
        # whole in memory, as when it is written to a file.
        from ..reports.json_report import json_chunks

        stdout = sys.stdout.buffer
        for piece in json_chunks(result):
            stdout.write(piece)
        stdout.flush()
    elif output == "table" and console is not None:
        from ..reports.terminal import print_result

        print_result(console, result)
    for path in written:
        if console is not None:
            console.print(f"[grey50]wrote {path}[/]")
        else:
            click.echo(f"wrote {path}", err=output == "json")
    return result.exit_status


def _needs_rich(shown: Shown) -> bool:
    """The table, or a live display on a terminal, needs rich; a CI step or a `wait` loop
    writing reports without either never imports it (a tenth of a one-cell run)."""
    if shown.output == "table":
        return True
    if not shown.progress:
        return False
    if any(os.environ.get(v) is not None for v in ("FORCE_TERMINAL", "TTY_INTERACTIVE")):
        return True  # rich decides by these over isatty: let it
    stream = sys.stderr if shown.output == "json" else sys.stdout
    return stream.isatty()


def check_out(out: Path | None, formats: Sequence[str], basename: str) -> None:
    """Before any probe: the reports must be writable where they will go, or the run's
    results would be lost after the whole run."""
    from ..errors import ReportError, SpecError
    from ..reports import check_formats, check_reports_writable

    if out is None:
        return
    try:
        check_formats(formats)
    except ReportError as exc:
        raise SpecError(str(exc), field="--format") from None
    try:
        check_reports_writable(out, formats, basename)
    except ReportError as exc:
        raise SpecError(str(exc), field="--out") from None


def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


async def _run_with_signals(
    loaded: LoadedMatrix, options: RunOptions, on_event: EventHandler | None
) -> MatrixResult:
    import signal

    import anyio

    from ..engine import run_matrix

    interrupt = anyio.Event()
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _signal in signals:
                    interrupt.set()
                    return

        group.start_soon(watch)
        result = await run_matrix(loaded, options, on_event, interrupt)
        group.cancel_scope.cancel()
    return result


def _write(result: MatrixResult, out: Path, formats: Sequence[str], basename: str) -> list[Path]:
    """Write the reports; a renderer's bug is the engine's failure (exit 3), said in one line."""
    from ..errors import EngineError, ReportError
    from ..reports import write_reports

    try:
        return write_reports(result, out, formats, basename)
    except ReportError:
        raise
    except Exception as exc:
        raise EngineError(f"cannot render the reports: {type(exc).__name__}: {exc}") from exc
