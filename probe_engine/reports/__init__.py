"""How a result is told: one renderer per format, registered here, written atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import ReportError
from ..results import MatrixResult
from .atomic import check_writable, write_all_atomic
from .html_report import render_html
from .json_report import render_json
from .junit_report import render_junit
from .markdown_report import render_markdown
from .prometheus_report import render_prometheus

Renderer = Callable[[MatrixResult], bytes]

# format -> (renderer, file extension)
REPORTERS: dict[str, tuple[Renderer, str]] = {
    "json": (render_json, "json"),
    "html": (render_html, "html"),
    "junit": (render_junit, "xml"),
    "markdown": (render_markdown, "md"),
    "prometheus": (render_prometheus, "prom"),
}
DEFAULT_FORMATS = ("json", "html", "junit", "markdown")


def report_paths(out_dir: Path, formats: Iterable[str], basename: str = "report") -> list[Path]:
    """Where `write_reports` puts each format."""
    return [out_dir / f"{basename}.{REPORTERS[f][1]}" for f in dict.fromkeys(formats)]


def check_reports_writable(out_dir: Path, formats: Iterable[str], basename: str = "report") -> None:
    """Before a run: fail now (ReportError) if its reports could not be written after it."""
    check_writable(report_paths(out_dir, formats, basename))


def write_reports(
    result: MatrixResult, out_dir: Path, formats: Iterable[str], basename: str = "report"
) -> list[Path]:
    """Render every format first, then write them all atomically: a failing renderer, or a
    failure while writing, leaves the reports of the previous run as they were."""
    chosen = list(dict.fromkeys(formats))
    unknown = [f for f in chosen if f not in REPORTERS]
    if unknown:
        raise ReportError(f"unknown report format {', '.join(unknown)}")
    rendered = [
        (out_dir / f"{basename}.{REPORTERS[f][1]}", REPORTERS[f][0](result)) for f in chosen
    ]
    write_all_atomic(rendered)
    return [path for path, _data in rendered]


__all__ = [
    "DEFAULT_FORMATS",
    "REPORTERS",
    "check_reports_writable",
    "report_paths",
    "write_reports",
]
