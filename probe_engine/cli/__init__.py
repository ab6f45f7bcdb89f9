"""probe-engine's command line: run | validate | schema | render | wait | serve | demo.

One module a command (run.py, validate.py, ...); the options several share and their values
in options.py, a run shown and reported in execute.py, faults as exit statuses in guard.py.
Exit status: 0 expectations met, 1 some unmet (or a wait timed out), 2 bad input or usage,
3 the engine failed, 130 interrupted. Heavy imports wait until a command needs them, so that
`probe-engine --version` starts fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from .._version import __version__
from .demo import demo
from .render import render
from .run import run
from .serve import serve
from .validate import schema, validate
from .wait import wait


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="probe-engine")
def cli() -> None:
    """From where can what be reached, and if not, exactly why not."""


for _command in (run, validate, schema, render, wait, serve, demo):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="probe-engine")


if __name__ == "__main__":
    main()
