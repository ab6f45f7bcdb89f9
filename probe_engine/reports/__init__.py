"""How a result is told: one renderer per format, registered here, written atomically."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ReportError
from .atomic import Data, check_writable, write_all_atomic

if TYPE_CHECKING:
    from ..results import MatrixResult

Renderer = Callable[["MatrixResult"], bytes]


class _Renderer:
    """A format's renderer, imported when first called: a run writing report.json alone never
    pays for Jinja (html), ElementTree (junit) or prometheus_client. With `pieces`, the name of
    a function giving the same bytes in pieces, which write_reports streams to the file."""

    __slots__ = ("function", "module", "pieces")

    def __init__(self, module: str, function: str, pieces: str | None = None) -> None:
        self.module, self.function, self.pieces = module, function, pieces

    def __call__(self, result: MatrixResult) -> bytes:
        render: Renderer = getattr(importlib.import_module(self.module, __name__), self.function)
        return render(result)

    def streamed(self, result: MatrixResult) -> Iterator[bytes]:
        """The file in pieces, rendered as they are written."""
        if self.pieces is None:
            yield self(result)
            return
        module = importlib.import_module(self.module, __name__)
        yield from getattr(module, self.pieces)(result)


# format -> (renderer, file extension)
REPORTERS: dict[str, tuple[Renderer, str]] = {
    "json": (_Renderer(".json_report", "render_json", pieces="json_chunks"), "json"),
    "html": (_Renderer(".html_report", "render_html"), "html"),
    "junit": (_Renderer(".junit_report", "render_junit"), "xml"),
    "markdown": (_Renderer(".markdown_report", "render_markdown"), "md"),
    "prometheus": (_Renderer(".prometheus_report", "render_prometheus"), "prom"),
}
DEFAULT_FORMATS = ("json", "html", "junit", "markdown")
# The formats that need an extra (probe_engine/extras.py) to render.
FORMAT_EXTRAS = {"prometheus": "prometheus"}


def check_formats(formats: Iterable[str]) -> None:
    """ReportError naming the extra to install for a chosen format that needs one."""
    from ..extras import MissingExtra, require

    for name in dict.fromkeys(formats):
        if name in FORMAT_EXTRAS:
            try:
                require(FORMAT_EXTRAS[name], f"the {name} report format")
            except MissingExtra as exc:
                raise ReportError(str(exc)) from None


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
    failure while writing, leaves the reports of the previous run as they were. report.json
    is rendered as it is written (in pieces: never whole in memory), before any is renamed."""
    chosen = list(dict.fromkeys(formats))
    unknown = [f for f in chosen if f not in REPORTERS]
    if unknown:
        raise ReportError(f"unknown report format {', '.join(unknown)}")
    check_formats(chosen)
    rendered: list[tuple[Path, Data]] = []
    for name in chosen:
        render, extension = REPORTERS[name]
        path = out_dir / f"{basename}.{extension}"
        if isinstance(render, _Renderer) and render.pieces is not None:
            rendered.append((path, render.streamed(result)))
        else:
            rendered.append((path, render(result)))
    write_all_atomic(rendered)
    return [path for path, _data in rendered]


__all__ = [
    "DEFAULT_FORMATS",
    "FORMAT_EXTRAS",
    "REPORTERS",
    "check_formats",
    "check_reports_writable",
    "report_paths",
    "write_reports",
]
