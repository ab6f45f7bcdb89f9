"""`probe-engine run MATRIX`: probe the matrix once, show it, write its reports."""

from __future__ import annotations

from pathlib import Path

import click

from .execute import Shown, check_out, execute
from .guard import guard
from .options import RunFlags, report_formats, run_options


@click.command()
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
        from ..spec import load_matrix

        shown = Shown(
            None if no_reports else out,
            report_formats(formats),
            basename or "report",
            output,
            not no_progress,
        )
        flags = RunFlags(concurrency, timeout, deadline, select, fail_on, kubeconfig, kube_context)
        options = flags.options()
        loaded = load_matrix(matrix)
        check_out(shown.out, shown.formats, shown.basename)
        return execute(loaded, options, shown)

    def paused() -> int:
        from ..speedups import collector_paused

        with collector_paused():  # its imports and the matrix; the run itself pauses it too
            return action()

    guard(paused)
