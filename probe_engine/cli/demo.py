"""`probe-engine demo`: the connectivity story on a loopback lab made for it."""

from __future__ import annotations

from pathlib import Path

import click

from .execute import Shown, check_out, execute
from .guard import guard


@click.command()
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

        from ..demo.fixtures import LoopbackLab
        from ..engine import RunOptions
        from ..spec import load_matrix_text

        text = (resources.files("probe_engine.demo") / "matrix.yaml").read_text()
        shown = Shown(out, ["json", "html", "junit", "markdown"], "demo", output, not no_progress)
        check_out(shown.out, shown.formats, shown.basename)
        with LoopbackLab() as lab:
            loaded = load_matrix_text(text, "probe_engine/demo/matrix.yaml", lab.variables())
            return execute(loaded, RunOptions(), shown)

    guard(action)
