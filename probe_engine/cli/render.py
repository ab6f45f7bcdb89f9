"""`probe-engine render REPORT`: a saved report.json in other formats."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .execute import check_out
from .guard import guard
from .options import report_formats

if TYPE_CHECKING:
    from ..results import MatrixResult


@click.command()
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
        from ..reports import write_reports

        chosen = report_formats(formats)
        result = _read_report(report)
        from_stdin = str(report) == "-"
        folder = out or (Path() if from_stdin else report.parent)
        name = basename or ("report" if from_stdin else report.stem)
        check_out(folder, chosen, name)
        for path in write_reports(result, folder, chosen, name):
            click.echo(f"wrote {path}")
        return 0

    guard(action)


def _read_report(report: Path) -> MatrixResult:
    """A saved report.json (or stdin's, for -), validated; SpecError naming what is wrong."""
    from pydantic import ValidationError

    from ..errors import SpecError
    from ..results import MatrixResult

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
