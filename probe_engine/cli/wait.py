"""`probe-engine wait TARGET`: attempt until the target answers, or time runs out."""

from __future__ import annotations

import click

from .guard import guard
from .options import duration


@click.command()
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

        from ..plan import Selection
        from ..status import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNMET
        from ..wait import Attempt, load_wait_target, wait_until_ready

        total = duration(timeout, "--timeout") or 0.0
        every = duration(interval, "--interval") or 0.0
        per_attempt = duration(attempt_timeout, "--attempt-timeout")
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

    guard(action)
