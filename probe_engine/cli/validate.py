"""`probe-engine validate` and `schema`: a matrix checked without running it, and the
schemas editors and tools read."""

from __future__ import annotations

from pathlib import Path

import click

from .guard import guard


@click.command()
@click.argument("matrices", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(matrices: tuple[Path, ...]) -> None:
    """Check MATRIX files (- for stdin); print FILE:LINE:COL: field: problem for each error."""

    def action() -> int:
        from ..errors import SpecError
        from ..spec import load_matrix
        from ..status import EXIT_OK, EXIT_USAGE

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

    guard(action)


@click.command()
@click.option("--report", "of_report", is_flag=True, help="The schema of report.json instead.")
def schema(of_report: bool) -> None:
    """Print the matrix's JSON Schema (for editors: yaml-language-server), or report.json's."""
    import json

    from ..spec.schema import matrix_schema, report_schema

    document = report_schema() if of_report else matrix_schema()
    click.echo(json.dumps(document, indent=2))
