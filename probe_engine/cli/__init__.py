"""probe-engine's command line: run | validate | schema | render | wait | serve | cleanup |
demo | completion.

One module a command (run.py, validate.py, ...); the options several share and their values
in options.py, a run shown and reported in execute.py, faults as exit statuses in guard.py.
Exit status: 0 expectations met, 1 some unmet (or a wait timed out), 2 bad input or usage,
3 the engine failed, 130 interrupted. Heavy imports wait until a command needs them, so that
`probe-engine --version` starts fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

from .._version import __version__
from .guard import exit_past_lingering_threads

# Each command's module ("module:function"), imported when the command is asked for: `run`
# never loads serve's, cleanup's or the demo's option machinery (click's lazy-group pattern).
COMMANDS = {
    "run": ".run:run",
    "validate": ".validate:validate",
    "schema": ".validate:schema",
    "render": ".render:render",
    "wait": ".wait:wait",
    "serve": ".serve:serve",
    "cleanup": ".cleanup:cleanup",
    "demo": ".demo:demo",
    "completion": ".completion:completion",
}


class _LazyGroup(click.Group):
    """The commands of COMMANDS, each module imported on first use (help lists them all)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, name = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module, __name__), name)
            assert isinstance(command, click.Command), cmd_name
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


def _show_version(context: click.Context, _parameter: click.Parameter, value: bool) -> None:
    """The version, the Python running it, and which optional integrations are installed."""
    if not value or context.resilient_parsing:
        return
    import platform

    from ..extras import describe

    click.echo(f"probe-engine, version {__version__}")
    click.echo(f"Python {platform.python_version()} ({sys.executable})")
    click.echo("integrations (pip extras):")
    for line in describe():
        click.echo(line)
    context.exit()


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "-V",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version, Python's, and the optional integrations found, then exit.",
)
def cli() -> None:
    """From where can what be reached, and if not, exactly why not."""


def main(argv: Sequence[str] | None = None) -> None:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="probe-engine")
    except SystemExit as done:
        if argv is None:  # the process itself, not a caller's: it may end abruptly
            exit_past_lingering_threads(done.code)
        raise


if __name__ == "__main__":
    main()
