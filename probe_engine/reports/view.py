"""What every human-readable report shows, computed once: the grid, labels, colours."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..compat import UTC
from ..results import CellResult, Finding, MatrixResult

STATUS_SYMBOL = {
    "ok": "✅",
    "refused": "⛔",
    "timeout": "⏳",
    "unreachable": "🚫",
    "dns-error": "❓",
    "reset": "💥",
    "http-error": "⚠️",
    "tls-error": "🔒",
    "proxy-error": "🔀",
    "source-error": "🛑",
    "target-error": "🎯",
    "cancelled": "⏹",
}


def cell_label(cell: CellResult) -> str:
    """'refused ECONNREFUSED', 'ok 200', 'timeout' - the words in a grid cell."""
    failed = next((c for c in cell.checks if c.status != "ok"), None)
    if cell.status == "ok":
        http = next((c for c in cell.checks if c.http_status), None)
        return f"ok {http.http_status}" if http else "ok"
    if failed is not None:
        if failed.http_status:
            return f"{cell.status} {failed.http_status}"
        if failed.errno_name:
            return f"{cell.status} {failed.errno_name}"
    return cell.status


def expectation(cell: CellResult) -> str:
    """How a cell stands against its expectation, as the grid marks it: 'unmet', 'expected'
    (a failure the matrix declares), 'unexpected' (a failure nobody declared), '' (ok)."""
    if cell.met is False:
        return "unmet"
    if cell.status == "ok":
        return ""
    return "expected" if cell.met else "unexpected"


# The mark beside a cell's words in the text grids (terminal, Markdown), and its legend.
EXPECTED_MARK = "✓"
LEGEND = (
    f"{EXPECTED_MARK} a failure the matrix expects (met) · ≠ an unmet expectation · "
    "a failure without either mark: nobody declared it"
)


def more_evidence(finding: Finding) -> int:
    """How many cells a finding rests on beyond those it lists (evidence is capped)."""
    total = finding.evidence_total or len(finding.evidence)
    return max(0, total - len(finding.evidence))


def cell_reason(cell: CellResult) -> str:
    failed = next((c for c in cell.checks if c.status != "ok"), None)
    if failed is not None and failed.message:
        return failed.message
    return cell.message or ""


@dataclass(frozen=True)
class Grid:
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], CellResult]

    def get(self, row: str, column: str) -> CellResult | None:
        return self.cells.get((row, column))


def grid(result: MatrixResult) -> Grid:
    """Rows and columns in matrix order; a cell whose row or column the result does not list
    (a hand-edited or older report.json) still gets one, so no report silently drops it."""
    rows = list(dict.fromkeys([*result.rows(), *(c.source for c in result.cells)]))
    columns = list(dict.fromkeys([*result.columns(), *(c.target for c in result.cells)]))
    return Grid(rows, columns, result.grid())


# A target with more columns than this (a port range, a long port list) is told as one group
# per row, its statuses counted: a 5000-port scan as 5000 grid cells or 5000 testcases is
# megabytes nobody reads. The HTML opens a group on click; JUnit lists its failing ports.
GROUP_AT = 16


@dataclass(frozen=True)
class ColumnGroup:
    """A target's columns in the grid: shown one by one, or folded into one group."""

    index: int
    name: str
    columns: list[str]
    folded: bool


def column_groups(result: MatrixResult, view: Grid) -> list[ColumnGroup]:
    """The grid's columns in order, consecutive columns of one target together."""
    target_of = {t.name: t.target_name for t in result.targets}
    runs: list[tuple[str, list[str]]] = []
    for column in view.columns:
        name = target_of.get(column, column)
        if runs and runs[-1][0] == name:
            runs[-1][1].append(column)
        else:
            runs.append((name, [column]))
    return [
        ColumnGroup(index, name, columns, len(columns) > GROUP_AT)
        for index, (name, columns) in enumerate(runs)
    ]


def group_counts(view: Grid, row: str, group: ColumnGroup) -> list[tuple[str, int]]:
    """How many of a folded group's cells in `row` have each status, in the legend's order."""
    counted: Counter[str] = Counter(
        cell.status for c in group.columns if (cell := view.get(row, c))
    )
    return [(status, counted[status]) for status in STATUS_SYMBOL if counted[status]]


def group_unmet(view: Grid, row: str, group: ColumnGroup) -> int:
    return sum(1 for c in group.columns if (cell := view.get(row, c)) and cell.met is False)


@dataclass(frozen=True)
class CellTrend:
    """A cell across the runs `serve` keeps: since when it has its status, how often it
    changed, and its last statuses (oldest first)."""

    since: datetime
    changes: int
    runs: int
    recent: tuple[str, ...]


@dataclass(frozen=True)
class LiveContext:
    """What a report served by `serve` adds: which run this is, the schedule, the trends."""

    run_number: int
    interval_s: float
    history_size: int
    next_run_at: datetime | None = None
    matrix_error: str | None = None
    trends: Mapping[tuple[str, str], CellTrend] = field(default_factory=dict)

    def changed(self, limit: int = 20) -> list[tuple[tuple[str, str], CellTrend]]:
        """Cells that changed within the kept runs, the latest change first."""
        moved = [(key, trend) for key, trend in self.trends.items() if trend.changes]
        moved.sort(key=lambda item: item[1].since, reverse=True)
        return moved[:limit]


def utc_time(moment: datetime) -> str:
    """'2026-01-02 03:04:05 UTC', converting aware times (a naive time is taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(moment: datetime) -> str:
    """'03:04:05' in UTC: a time of day where the date is plain from the context."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%H:%M:%S")


def unmet(result: MatrixResult) -> list[CellResult]:
    return [c for c in result.cells if c.met is False]
