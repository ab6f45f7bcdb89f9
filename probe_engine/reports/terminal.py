"""The terminal: a live progress line while cells finish, then the grid and the findings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..engine import CellDone, Event, Planned, RowSeen
from ..results import CellResult, MatrixResult
from ..status import EXIT_INTERRUPTED, EXIT_OK
from .view import EXPECTED_MARK, LEGEND, cell_label, expectation, grid

STYLE = {
    "ok": "bold green",
    "refused": "bold red",
    "timeout": "bold yellow",
    "unreachable": "bold magenta",
    "dns-error": "bold blue",
    "reset": "red",
    "http-error": "dark_orange",
    "tls-error": "grey50",
    "proxy-error": "orange1",
    "source-error": "grey50",
    "target-error": "grey50",
    "cancelled": "grey42",
}
MAX_GRID_COLUMNS = 12
MAX_GRID_ROWS = 60


class LiveProgress:
    """Handles engine events: a progress bar with a running count per status and, while the
    matrix is small enough to read, the grid filling in as cells finish."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.counts: Counter[str] = Counter()
        self.progress = Progress(
            TextColumn("[bold]probing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[counts]}"),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("cells", total=None, counts="")
        self.rows: list[str] = []
        self.columns: list[str] = []
        self.cells: dict[tuple[str, str], CellResult] = {}
        self.done = self.shown = 0
        self.live = Live(
            get_renderable=self._render, console=console, refresh_per_second=8, transient=True
        )

    def _render(self) -> RenderableType:
        # A finished cell only counts; the bar catches up here, when Live draws (8 times a
        # second): rich's update for every cell cost more than probing it (5000 cells: 0.3 s).
        if self.done != self.shown:
            counts = sorted(dict(self.counts).items())  # copied at once: cells keep finishing
            summary = " ".join(f"[{STYLE[s]}]{s} {n}[/]" for s, n in counts)
            self.shown = self.done
            self.progress.update(self.task, completed=self.shown, counts=summary)
        if not self.columns:
            return self.progress
        table = grid_table(self.rows, self.columns, self.cells.get, pending="…")
        return Group(self.progress, table) if table is not None else self.progress

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.__exit__(exc_type, exc, tb)

    def __call__(self, event: Event) -> None:
        if isinstance(event, Planned):
            self.progress.update(self.task, total=event.total)
            self.columns = list(dict.fromkeys(c.name for c in event.columns))
            self.rows = list(event.sources)
        elif isinstance(event, CellDone):
            result = event.result
            self.cells[(result.source, result.target)] = result
            self.counts[result.status] += 1
            self.done += 1
        elif isinstance(event, RowSeen):
            info = event.info
            if info.name not in self.rows:
                # A fanned-out source's instances replace its declared name.
                at = (
                    self.rows.index(info.source_name)
                    if info.source_name in self.rows
                    else len(self.rows)
                )
                if info.source_name in self.rows and info.source_name != info.name:
                    self.rows.remove(info.source_name)
                self.rows.insert(at, info.name)
            if info.status == "error":
                self.console.print(
                    f"[grey50]source {escape(info.name)}: {escape(info.message or 'failed')}[/]"
                )


def grid_table(
    rows: Sequence[str],
    columns: Sequence[str],
    lookup: Callable[[tuple[str, str]], CellResult | None],
    pending: str = "·",
) -> Table | None:
    """The grid, transposed when there are more columns than rows; None when too big."""
    # Matrices usually have few sources and many targets: targets go down the side then.
    transposed = len(columns) > len(rows)
    across, down = (rows, columns) if transposed else (columns, rows)
    if len(across) > MAX_GRID_COLUMNS or len(down) > MAX_GRID_ROWS:
        return None
    corner = "target \\ source" if transposed else "source \\ target"
    table = Table(
        title="reachability",
        title_justify="left",
        header_style="bold",
        caption=LEGEND,
        caption_justify="left",
    )
    table.add_column(corner, style="bold", no_wrap=True)
    for name in across:
        # Text, not str: a name is never read as rich markup ("pod-[/]" would raise).
        table.add_column(Text(name), overflow="fold")
    for line in down:
        cells: list[Text | str] = []
        for other in across:
            cell = lookup((other, line) if transposed else (line, other))
            if cell is None:
                cells.append(Text(pending, style="grey50"))
                continue
            text = Text(cell_label(cell), style=STYLE[cell.status])
            if cell.met is False:
                text.append(f" ≠ {'/'.join(cell.expected or [])}", style="bold reverse")
            elif expectation(cell) == "expected":
                # Declared and met: the status stays readable, dimmed, with its mark.
                text.stylize("dim")
                text.append(f" {EXPECTED_MARK}", style="green")
            cells.append(text)
        table.add_row(Text(line), *cells)
    return table


def result_table(result: MatrixResult) -> Table:
    """The grid, or a per-source summary when it cannot fit either way round."""
    view = grid(result)
    table = grid_table(view.rows, view.columns, view.cells.get)
    return table if table is not None else _summary_table(result)


def _summary_table(result: MatrixResult) -> Table:
    table = Table(
        title="per source (too many cells for a grid: see the HTML report)", title_justify="left"
    )
    table.add_column("source", style="bold")
    statuses = [s for s in STYLE if s in result.summary.by_status]
    for status in statuses:
        table.add_column(status, style=STYLE[status], justify="right")
    table.add_column("unmet", justify="right")
    per_row: dict[str, Counter[str]] = {}
    unmet: Counter[str] = Counter()
    for cell in result.cells:
        per_row.setdefault(cell.source, Counter())[cell.status] += 1
        if cell.met is False:
            unmet[cell.source] += 1
    for row in grid(result).rows:
        counts = per_row.get(row, Counter())
        table.add_row(
            Text(row),
            *[str(counts.get(s, 0) or "") for s in statuses],
            str(unmet.get(row, 0) or ""),
        )
    return table


def findings_text(result: MatrixResult) -> Group | Text:
    if not result.findings:
        return Text("No findings.", style="grey50")
    parts: list[RenderableType] = []
    colour = {"error": "red", "warning": "yellow", "info": "blue"}
    for finding in result.findings:
        title = Text()
        title.append(f"{finding.severity.upper()} ", style=f"bold {colour[finding.severity]}")
        if finding.severity == "info":
            # Explanations of what was expected anyway: one line each; details in the reports.
            title.append(finding.title)
            parts.append(title)
            continue
        title.append(finding.title, style="bold")
        parts.append(title)
        # Indented as a block, so wrapped and multi-line details stay under their title.
        parts.append(Padding(Text(finding.detail), (0, 0, 0, 2), expand=False))
        parts.append(
            Padding(Text(f"next: {finding.next_step}", style="cyan"), (0, 0, 0, 2), expand=False)
        )
    return Group(*parts)


def print_result(console: Console, result: MatrixResult) -> None:
    e = result.summary.expectations
    console.print(findings_text(result))
    console.print(result_table(result))
    verdict = (
        "[bold green]PASS[/]"
        if result.exit_status == EXIT_OK
        else f"[bold red]FAIL (exit {result.exit_status})[/]"
    )
    incomplete = result.summary.incomplete_words()
    if incomplete:
        verdict = f"[bold red]INCOMPLETE (exit {result.exit_status})[/]"
    if result.interrupted:
        verdict = f"[bold]INTERRUPTED (exit {EXIT_INTERRUPTED})[/]"
    console.print(
        f"{verdict}  {result.summary.total} cells in {result.duration_s:.2f}s · "
        f"expectations met {e.met}, unmet {e.unmet}, none {e.none}"
        + (f" · {incomplete}" if incomplete else "")
    )
