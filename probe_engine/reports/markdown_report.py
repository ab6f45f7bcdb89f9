"""report.md: a summary for CI step summaries and pull requests (GitHub-flavoured Markdown)."""

from __future__ import annotations

from ..results import MatrixResult
from .templating import environment
from .view import STATUS_SYMBOL, cell_label, cell_reason, grid, unmet


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: MatrixResult) -> bytes:
    template = environment(autoescape=False).get_template("report.md.j2")
    text = template.render(
        result=result,
        grid=grid(result),
        unmet=unmet(result),
        symbol=STATUS_SYMBOL,
        label=cell_label,
        reason=cell_reason,
        md=_escape,
    )
    return text.encode()
