"""The options several commands share, and reading their values: durations, format lists,
a run's flags. The common ones take their defaults from PROBE_ENGINE_* variables (ENV); the
command line wins over them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from ..engine import RunOptions

_Command = TypeVar("_Command", bound=Callable[..., None])

# The environment variables that give options their defaults (one name per meaning: wait's
# --timeout, a total, has none).
ENV = {
    "out": "PROBE_ENGINE_OUT",
    "formats": "PROBE_ENGINE_FORMAT",
    "concurrency": "PROBE_ENGINE_CONCURRENCY",
    "timeout": "PROBE_ENGINE_TIMEOUT",
    "deadline": "PROBE_ENGINE_DEADLINE",
    "output": "PROBE_ENGINE_OUTPUT",
    "fail_on": "PROBE_ENGINE_FAIL_ON",
    "no_progress": "PROBE_ENGINE_NO_PROGRESS",
}


def given_as(option: str, parameter: str | None = None) -> str:
    """The option's name in messages: `--timeout`, or the variable it came from."""
    from click.core import ParameterSource

    parameter = parameter or option.lstrip("-").replace("-", "_")
    context = click.get_current_context(silent=True)
    if (
        context is not None
        and parameter in ENV
        and context.get_parameter_source(parameter) is ParameterSource.ENVIRONMENT
    ):
        return ENV[parameter]
    return option


def duration(text: str | None, option: str) -> float | None:
    """A duration option's value in seconds (None: not given); bad text is bad input."""
    from ..errors import SpecError
    from ..spec.common import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise SpecError(str(exc), field=given_as(option)) from None


def report_formats(text: str) -> list[str]:
    """--format's comma-separated list, each a known reporter."""
    from ..errors import SpecError
    from ..reports import REPORTERS

    formats = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in REPORTERS]
    if unknown or not formats:
        raise SpecError(
            f"unknown format {', '.join(unknown) or text!r} (choose from {', '.join(REPORTERS)})",
            field=given_as("--format", "formats"),
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


def complete_formats(
    _context: click.Context, _parameter: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """--format's comma-separated list: the formats not yet named, after the last comma."""
    from click.shell_completion import CompletionItem

    from ..reports import REPORTERS

    done, _comma, last = incomplete.rpartition(",")
    given = set(done.split(",")) if done else set()
    prefix = f"{done}," if done else ""
    return [
        CompletionItem(prefix + name)
        for name in REPORTERS
        if name.startswith(last) and name not in given
    ]


def out_option(**extra: Any) -> Callable[..., Any]:
    return click.option(
        "--out",
        "out",
        type=click.Path(path_type=Path),
        default=Path("reports"),
        show_default=True,
        envvar=ENV["out"],
        show_envvar=True,
        help="Folder for the reports.",
        **extra,
    )


def output_option() -> Callable[..., Any]:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json", "none"]),
        default="table",
        show_default=True,
        envvar=ENV["output"],
        show_envvar=True,
        help="What to print on stdout.",
    )


def no_progress_option() -> Callable[..., Any]:
    return click.option(
        "--no-progress",
        is_flag=True,
        envvar=ENV["no_progress"],
        show_envvar=True,
        help="No live progress display.",
    )


def concurrency_option() -> Callable[..., Any]:
    return click.option(
        "--concurrency",
        type=click.IntRange(1, 100_000),
        default=None,
        envvar=ENV["concurrency"],
        show_envvar=True,
        help="Cells in flight per source.",
    )


def timeout_option() -> Callable[..., Any]:
    return click.option(
        "--timeout",
        default=None,
        envvar=ENV["timeout"],
        show_envvar=True,
        help="Per-cell timeout for every cell, e.g. 500ms, 2s.",
    )


def deadline_option(help: str) -> Callable[..., Any]:
    return click.option(
        "--deadline", default=None, envvar=ENV["deadline"], show_envvar=True, help=help
    )


def fail_on_option(help: str) -> Callable[..., Any]:
    return click.option(
        "--fail-on",
        type=click.Choice(["unmet", "any-failure", "never"]),
        default="unmet",
        show_default=True,
        envvar=ENV["fail_on"],
        show_envvar=True,
        help=help,
    )


_run_options = [
    out_option(),
    click.option(
        "--format",
        "formats",
        default="json,html,junit,markdown",
        show_default=True,
        envvar=ENV["formats"],
        show_envvar=True,
        shell_complete=complete_formats,
        help="Comma-separated: json, html, junit, markdown, prometheus.",
    ),
    click.option(
        "--name",
        "basename",
        default=None,
        help="Report file name without extension [default: report].",
    ),
    click.option("--no-reports", is_flag=True, help="Write no report files."),
    concurrency_option(),
    timeout_option(),
    deadline_option("Deadline of the whole run, e.g. 1m."),
    click.option(
        "--select",
        multiple=True,
        help="Run a subset: source=GLOB,target=GLOB. Repeatable: globs of one key are "
        "alternatives, keys narrow each other; a glob matching nothing is an error.",
    ),
    output_option(),
    fail_on_option("Which cells make the exit status 1."),
    no_progress_option(),
]


def run_options(function: _Command) -> _Command:
    """`run`'s options: where the reports go, what runs, what is shown."""
    for option in reversed(_run_options):
        function = option(function)
    return function
