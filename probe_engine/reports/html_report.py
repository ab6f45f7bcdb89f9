"""report.html: one self-contained page (no CDN, no network): the grid, details, filters."""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup, escape

from ..results import MatrixResult
from .templating import environment
from .view import (
    STATUS_SYMBOL,
    LiveContext,
    cell_label,
    cell_reason,
    clock,
    column_groups,
    expectation,
    grid,
    group_counts,
    group_unmet,
    more_evidence,
    utc_time,
)

# Backgrounds behind white text: each at least 4.5:1 contrast (WCAG AA, tested), and no two
# statuses alike (refused and reset, or the three grey failures, used to look the same).
STATUS_COLOUR = {
    "ok": "#1a7f37",
    "refused": "#cf222e",
    "timeout": "#9a6700",
    "unreachable": "#8250df",
    "dns-error": "#0969da",
    "reset": "#82071e",
    "http-error": "#bc4c00",
    "tls-error": "#1b7c83",
    "proxy-error": "#bf3989",
    "source-error": "#424a53",
    "target-error": "#0a3069",
    "cancelled": "#6e7781",
}


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: no '</script>', no HTML-significant characters."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _details(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell as the details panel reads it: the row and column are its key, durations to
    the microsecond (ten thousand cells: megabytes of digits nobody reads)."""
    for key in ("source", "source_name", "target", "target_name"):
        cell.pop(key, None)
    for record in (cell, *cell.get("checks", ())):
        if isinstance(record.get("duration_ms"), float):
            record["duration_ms"] = round(record["duration_ms"], 3)
    return cell


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(text: str) -> Markup:
    """Escaped text in which `command` becomes <code>command</code> (diagnoses mark commands
    so); the text is escaped first, so nothing in it can become markup."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))


def render_html(result: MatrixResult, live: LiveContext | None = None) -> bytes:
    """The page; `live` (from `serve`) adds the run's number, the schedule and each cell's
    history: since when it has its status, how often it changed, its last runs."""
    template = environment(autoescape=True).get_template("report.html.j2")
    view = grid(result)
    groups = column_groups(result, view)
    details = {
        f"{cell.source}\u0000{cell.target}": _details(
            cell.model_dump(mode="json", exclude_none=True)
        )
        for cell in result.cells
    }
    statuses = [s for s in STATUS_COLOUR if s in result.summary.by_status]
    text = template.render(
        result=result,
        grid=view,
        statuses=statuses,
        colour=STATUS_COLOUR,
        symbol=STATUS_SYMBOL,
        label=cell_label,
        mark=expectation,
        more=more_evidence,
        reason=cell_reason,
        when=utc_time,
        clock=clock,
        live=live,
        code=code_spans,
        groups=groups,
        counts=group_counts,
        unmet_in=group_unmet,
        groups_json=_script_json({g.index: g.columns for g in groups if g.folded}),
        colour_json=_script_json(STATUS_COLOUR),
        details_json=_script_json(details),
        trends_json=_script_json(
            {
                f"{source}\u0000{target}": {
                    "since": utc_time(trend.since),
                    "changes": trend.changes,
                    "runs": trend.runs,
                    "recent": list(trend.recent),
                }
                for (source, target), trend in (live.trends.items() if live else [])
            }
        ),
        sources_json=_script_json(
            {s.name: s.model_dump(mode="json", exclude_none=True) for s in result.sources}
        ),
    )
    return text.encode()
