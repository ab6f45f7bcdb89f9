"""`probe-engine demo`: the connectivity story on a loopback lab made for it."""

from __future__ import annotations

from pathlib import Path

import click

from .execute import Shown, check_out, execute
from .guard import guard
from .options import no_progress_option, out_option, output_option


@click.command()
@out_option()
@output_option()
@no_progress_option()
def demo(out: Path, output: str, no_progress: bool) -> None:
    """The connectivity story on loopback: no cluster, no root, no network."""

    def action() -> int:
        from importlib import resources

        from ..demo.fixtures import LoopbackLab
        from ..engine import RunOptions
        from ..spec import load_matrix_text

        text = (resources.files("probe_engine") / "demo" / "matrix.yaml").read_text()
        shown = Shown(out, ["json", "html", "junit", "markdown"], "demo", output, not no_progress)
        check_out(shown.out, shown.formats, shown.basename)
        with LoopbackLab() as lab:
            loaded = load_matrix_text(text, "probe_engine/demo/matrix.yaml", lab.variables())
            return execute(loaded, RunOptions(), shown)

    guard(action)
