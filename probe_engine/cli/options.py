"""The options several commands share, and reading their values: durations, format lists,
a run's flags."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from ..engine import RunOptions

_Command = TypeVar("_Command", bound=Callable[..., None])


def duration(text: str | None, option: str) -> float | None:
    """A duration option's value in seconds (None: not given); bad text is bad input."""
    from ..errors import SpecError
    from ..spec.common import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise SpecError(str(exc), field=option) from None


def report_formats(text: str) -> list[str]:
    """--format's comma-separated list, each a known reporter."""
    from ..errors import SpecError
    from ..reports import REPORTERS

    formats = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in REPORTERS]
    if unknown or not formats:
        raise SpecError(
            f"unknown format {', '.join(unknown) or text!r} (choose from {', '.join(REPORTERS)})",
            field="--format",
        )
    return formats


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
        from ..engine import RunOptions
        from ..kube import KubeOverrides
        from ..plan import Selection

        return RunOptions(
            select=Selection.parse(self.select),
            concurrency=self.concurrency,
            timeout=duration(self.timeout, "--timeout"),
            deadline=duration(self.deadline, "--deadline"),
            fail_on=self.fail_on,  # type: ignore[arg-type]  # click.Choice checked it
            kube=KubeOverrides(self.kubeconfig or None, self.kube_context or None),
        )


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


def run_options(function: _Command) -> _Command:
    """`run`'s options: where the reports go, what runs, what is shown."""
    for option in reversed(_run_options):
        function = option(function)
    return function
