"""probe-engine's command line: run | validate | schema | render | wait | serve | demo.

Exit status: 0 expectations met, 1 some unmet (or a wait timed out), 2 bad input or usage,
3 the engine failed, 130 interrupted. Heavy imports wait until a command needs them, so that
`probe-engine --version` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ._version import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from .engine import RunOptions
    from .results import MatrixResult
    from .spec import LoadedMatrix


def _guard(action: Callable[[], int]) -> NoReturn:
    """Run a command: bad input and engine faults become one line and an exit status."""
    from .errors import EngineError, SpecError

    try:
        status = action()
    except BaseExceptionGroup as group:  # raised inside a task group (the live display's)
        found = _first_of(group, (SpecError, EngineError))
        if found is None:
            raise
        status = _fail(found)
    except (SpecError, EngineError) as exc:
        status = _fail(exc)
    sys.exit(status)


def _fail(exc: BaseException) -> int:
    from .errors import SpecError
    from .status import EXIT_ENGINE, EXIT_USAGE

    if isinstance(exc, SpecError):
        click.echo(str(exc), err=True)
        return EXIT_USAGE
    click.echo(f"probe-engine: {exc}", err=True)
    return EXIT_ENGINE


def _first_of(
    group: BaseExceptionGroup[BaseException], kinds: tuple[type[BaseException], ...]
) -> BaseException | None:
    for exc in group.exceptions:
        if isinstance(exc, kinds):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_of(exc, kinds)
            if found is not None:
                return found
    return None


def _duration(text: str | None, option: str) -> float | None:
    from .errors import SpecError
    from .spec.common import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise SpecError(str(exc), field=option) from None


def _formats(text: str) -> list[str]:
    from .errors import SpecError
    from .reports import REPORTERS

    formats = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in REPORTERS]
    if unknown or not formats:
        raise SpecError(
            f"unknown format {', '.join(unknown) or text!r} (choose from {', '.join(REPORTERS)})",
            field="--format",
        )
    return formats


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="probe-engine")
def cli() -> None:
    """From where can what be reached, and if not, exactly why not."""


def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


async def _run_with_signals(
    loaded: LoadedMatrix, options: RunOptions, on_event: Any
) -> MatrixResult:
    import signal

    import anyio

    from .engine import run_matrix

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


@dataclass(frozen=True)
class RunFlags:
    """A run's options as the command line gives them (run, serve)."""

    concurrency: int | None
    timeout: str | None
    deadline: str | None
    select: tuple[str, ...]
    fail_on: str
    kubeconfig: str | None = None
    kube_context: str | None = None

    def options(self) -> RunOptions:
        from .engine import RunOptions
        from .kube import KubeOverrides
        from .plan import Selection

        return RunOptions(
            select=Selection.parse(self.select),
            concurrency=self.concurrency,
            timeout=_duration(self.timeout, "--timeout"),
            deadline=_duration(self.deadline, "--deadline"),
            fail_on=self.fail_on,  # type: ignore[arg-type]  # click.Choice checked it
            kube=KubeOverrides(self.kubeconfig or None, self.kube_context or None),
        )


@dataclass(frozen=True)
class Shown:
    """How a run's result is told: report files (`out` None: none), and the terminal."""

    out: Path | None
    formats: Sequence[str]
    basename: str
    output: str = "table"  # table | json | none
    progress: bool = True


def execute(loaded: LoadedMatrix, options: RunOptions, shown: Shown) -> int:
    """Run, show, write reports; the exit status. Shared by `run` and `demo`."""
    out, formats, basename, output = shown.out, shown.formats, shown.basename, shown.output
    import anyio

    from .reports.terminal import LiveProgress, print_result
    from .speedups import frozen_heap

    console = _console(stderr=output == "json")
    live = shown.progress and console.is_terminal
    with frozen_heap():  # the run, then its reports: thousands of objects made, none freed
        if live:
            with LiveProgress(console) as handler:
                result = anyio.run(_run_with_signals, loaded, options, handler)
        else:
            result = anyio.run(_run_with_signals, loaded, options, None)
        written = _write(result, out, formats, basename) if out is not None else []
    if output == "json":
        click.echo(result.model_dump_json(indent=2))
    elif output == "table":
        print_result(console, result)
    for path in written:
        console.print(f"[grey50]wrote {path}[/]")
    return result.exit_status


def _check_out(out: Path | None, formats: Sequence[str], basename: str) -> None:
    """Before any probe: the reports must be writable where they will go, or the run's
    results would be lost after the whole run."""
    from .errors import ReportError, SpecError
    from .reports import check_reports_writable

    if out is None:
        return
    try:
        check_reports_writable(out, formats, basename)
    except ReportError as exc:
        raise SpecError(str(exc), field="--out") from None


def _write(result: MatrixResult, out: Path, formats: Sequence[str], basename: str) -> list[Path]:
    """Write the reports; a renderer's bug is the engine's failure (exit 3), said in one line."""
    from .errors import EngineError, ReportError
    from .reports import write_reports

    try:
        return write_reports(result, out, formats, basename)
    except ReportError:
        raise
    except Exception as exc:
        raise EngineError(f"cannot render the reports: {type(exc).__name__}: {exc}") from exc


_run_options = [
    click.option(
        "--out",
        "out",
        type=click.Path(path_type=Path),
        default=Path("reports"),
        show_default=True,
        help="Folder for the reports.",
    ),
    click.option(
        "--format",
        "formats",
        default="json,html,junit,markdown",
        show_default=True,
        help="Comma-separated: json, html, junit, markdown, prometheus.",
    ),
    click.option(
        "--name",
        "basename",
        default=None,
        help="Report file name without extension [default: report].",
    ),
    click.option("--no-reports", is_flag=True, help="Write no report files."),
    click.option(
        "--concurrency",
        type=click.IntRange(1, 100_000),
        default=None,
        help="Cells in flight per source.",
    ),
    click.option(
        "--timeout", default=None, help="Per-cell timeout for every cell, e.g. 500ms, 2s."
    ),
    click.option("--deadline", default=None, help="Deadline of the whole run, e.g. 1m."),
    click.option(
        "--select",
        multiple=True,
        help="Run a subset: source=GLOB,target=GLOB. Repeatable: globs of one key are "
        "alternatives, keys narrow each other; a glob matching nothing is an error.",
    ),
    click.option(
        "--output",
        type=click.Choice(["table", "json", "none"]),
        default="table",
        show_default=True,
        help="What to print on stdout.",
    ),
    click.option(
        "--fail-on",
        type=click.Choice(["unmet", "any-failure", "never"]),
        default="unmet",
        show_default=True,
        help="Which cells make the exit status 1.",
    ),
    click.option("--no-progress", is_flag=True, help="No live progress display."),
]


def run_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_run_options):
        function = option(function)
    return function


@cli.command()
@click.argument("matrix", type=click.Path(path_type=Path))
@run_options
@click.option(
    "--kubeconfig",
    default=None,
    help="Kubeconfig file(s) for Kubernetes targets and sources [default: the matrix's "
    "kubernetes.kubeconfig, $KUBECONFIG, ~/.kube/config, else in-cluster].",
)
@click.option(
    "--context",
    "kube_context",
    default=None,
    help="Kubeconfig context [default: the matrix's kubernetes.context, else the current one].",
)
def run(  # noqa: PLR0913 - click hands every option over as a parameter
    matrix: Path,
    out: Path,
    formats: str,
    basename: str | None,
    no_reports: bool,
    concurrency: int | None,
    timeout: str | None,
    deadline: str | None,
    select: tuple[str, ...],
    output: str,
    fail_on: str,
    no_progress: bool,
    kubeconfig: str | None,
    kube_context: str | None,
) -> None:
    """Run MATRIX (a file, or - for stdin) and write its reports."""

    def action() -> int:
        from .spec import load_matrix

        shown = Shown(
            None if no_reports else out,
            _formats(formats),
            basename or "report",
            output,
            not no_progress,
        )
        flags = RunFlags(concurrency, timeout, deadline, select, fail_on, kubeconfig, kube_context)
        options = flags.options()
        loaded = load_matrix(matrix)
        _check_out(shown.out, shown.formats, shown.basename)
        return execute(loaded, options, shown)

    _guard(action)


@cli.command()
@click.argument("matrices", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(matrices: tuple[Path, ...]) -> None:
    """Check MATRIX files (- for stdin); print FILE:LINE:COL: field: problem for each error."""

    def action() -> int:
        from .errors import SpecError
        from .spec import load_matrix
        from .status import EXIT_OK, EXIT_USAGE

        status = EXIT_OK
        for path in matrices:
            try:
                loaded = load_matrix(path)
            except SpecError as exc:
                click.echo(str(exc), err=True)
                status = EXIT_USAGE
                continue
            m = loaded.matrix
            click.echo(f"{loaded.path}: ok ({len(m.sources)} sources, {len(m.targets)} targets)")
        return status

    _guard(action)


@cli.command()
@click.option("--report", "of_report", is_flag=True, help="The schema of report.json instead.")
def schema(of_report: bool) -> None:
    """Print the matrix's JSON Schema (for editors: yaml-language-server), or report.json's."""
    import json

    from .spec.schema import matrix_schema, report_schema

    document = report_schema() if of_report else matrix_schema()
    click.echo(json.dumps(document, indent=2))


def _read_report(report: Path) -> MatrixResult:
    """A saved report.json (or stdin's, for -), validated; SpecError naming what is wrong."""
    from pydantic import ValidationError

    from .errors import SpecError
    from .results import MatrixResult

    name = "<stdin>" if str(report) == "-" else str(report)
    try:
        data = sys.stdin.buffer.read() if str(report) == "-" else report.read_bytes()
        return MatrixResult.model_validate_json(data)
    except FileNotFoundError:
        raise SpecError("no such file", file=name) from None
    except IsADirectoryError:
        raise SpecError("is a folder, not a report", file=name) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", file=name) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        problem = f"{where}: {first['msg']}" if where else first["msg"]
        raise SpecError(f"not a probe-engine report: {problem}", file=name) from None


@cli.command()
@click.argument("report", type=click.Path(path_type=Path))
@click.option(
    "--format", "formats", default="html", show_default=True, help="Comma-separated formats."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder [default: the report's folder; for stdin, the current folder].",
)
@click.option(
    "--name", "basename", default=None, help="File name without extension [default: the report's]."
)
def render(report: Path, formats: str, out: Path | None, basename: str | None) -> None:
    """Re-render a saved report.json (or - for stdin) in other formats."""

    def action() -> int:
        from .reports import write_reports

        chosen = _formats(formats)
        result = _read_report(report)
        from_stdin = str(report) == "-"
        folder = out or (Path() if from_stdin else report.parent)
        name = basename or ("report" if from_stdin else report.stem)
        _check_out(folder, chosen, name)
        for path in write_reports(result, folder, chosen, name):
            click.echo(f"wrote {path}")
        return 0

    _guard(action)


@cli.command()
@click.argument("target")
@click.option("--timeout", default="1m", show_default=True, help="Give up after this long.")
@click.option("--interval", default="2s", show_default=True, help="From one attempt to the next.")
@click.option(
    "--attempt-timeout",
    default=None,
    help="Per-cell timeout of one attempt [default: 2s, or the matrix's own].",
)
@click.option(
    "--select",
    multiple=True,
    help="Wait for part of a matrix: source=GLOB,target=GLOB (repeatable, as for run).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the last line, not every attempt.")
def wait(  # noqa: PLR0913 - click hands every option over as a parameter
    target: str,
    timeout: str,
    interval: str,
    attempt_timeout: str | None,
    select: tuple[str, ...],
    quiet: bool,
) -> None:
    """Wait until TARGET is reachable from here.

    TARGET is a URL (http://host:port/path: an HTTP answer with a 2xx/3xx status), host:port
    (a TCP connect), or a matrix file (every cell ok, or as its expectation says). Prints one
    line per attempt with the status and errno; exit 0 once reachable, 1 on timeout, 2 on bad
    input.
    """

    def action() -> int:
        from functools import partial

        import anyio

        from .plan import Selection
        from .status import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNMET
        from .wait import Attempt, load_wait_target, wait_until_ready

        total = _duration(timeout, "--timeout") or 0.0
        every = _duration(interval, "--interval") or 0.0
        per_attempt = _duration(attempt_timeout, "--attempt-timeout")
        selection = Selection.parse(select)
        loaded = load_wait_target(target)

        def show(attempt: Attempt) -> None:
            if not quiet:
                click.echo(attempt.describe())

        try:
            outcome = anyio.run(
                partial(
                    wait_until_ready,
                    loaded,
                    timeout=total,
                    interval=every,
                    attempt_timeout=per_attempt,
                    select=selection,
                    on_attempt=show,
                )
            )
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            return EXIT_INTERRUPTED
        click.echo(outcome.describe())
        return EXIT_OK if outcome.ready else EXIT_UNMET

    _guard(action)


@cli.command()
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
@click.option(
    "--concurrency",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Cells in flight per source.",
)
@click.option("--timeout", default=None, help="Per-cell timeout for every cell, e.g. 500ms, 2s.")
@click.option(
    "--deadline",
    default=None,
    help="Deadline of each run [default: the matrix's, else 5m].",
)
@click.option(
    "--select",
    multiple=True,
    help="Serve a subset: source=GLOB,target=GLOB (repeatable, as for run).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["unmet", "any-failure", "never"]),
    default="unmet",
    show_default=True,
    help="Which cells make a run unsuccessful (probe_engine_last_success_timestamp_seconds).",
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

        from .errors import SpecError
        from .serve import ServeOptions, parse_listen
        from .serve import serve as serve_forever
        from .spec import load_matrix

        host, port = parse_listen(listen)
        every = _duration(interval, "--interval") or 0.0
        if every <= 0:
            raise SpecError("the interval must be longer than 0", field="--interval")
        off = reload_check.strip() in ("0", "0s")
        check = 0.0 if off else _duration(reload_check, "--reload-check") or 0.0
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
        from .speedups import frozen_heap

        with frozen_heap():  # modules and the first matrix live as long as the process
            return anyio.run(serve_forever, loaded, options)

    _guard(action)


@cli.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("reports"),
    show_default=True,
)
@click.option(
    "--output", type=click.Choice(["table", "json", "none"]), default="table", show_default=True
)
@click.option("--no-progress", is_flag=True)
def demo(out: Path, output: str, no_progress: bool) -> None:
    """The connectivity story on loopback: no cluster, no root, no network."""

    def action() -> int:
        from importlib import resources

        from .demo.fixtures import LoopbackLab
        from .engine import RunOptions
        from .spec import load_matrix_text

        text = (resources.files("probe_engine.demo") / "matrix.yaml").read_text()
        shown = Shown(out, ["json", "html", "junit", "markdown"], "demo", output, not no_progress)
        _check_out(shown.out, shown.formats, shown.basename)
        with LoopbackLab() as lab:
            loaded = load_matrix_text(text, "probe_engine/demo/matrix.yaml", lab.variables())
            return execute(loaded, RunOptions(), shown)

    _guard(action)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="probe-engine")


if __name__ == "__main__":
    main()
