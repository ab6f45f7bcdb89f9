"""The terminal summary: findings first, then the grid, or a per-source table when it is big."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from probe_engine.reports.terminal import MAX_GRID_COLUMNS, MAX_GRID_ROWS, print_result
from probe_engine.results import (
    CellResult,
    CheckRecord,
    Expectations,
    Finding,
    MatrixRef,
    MatrixResult,
    Summary,
)

DATA = Path(__file__).parent / "data" / "reports"


@pytest.fixture(scope="module")
def result() -> MatrixResult:
    return MatrixResult.model_validate_json((DATA / "result.json").read_bytes())


def shown(result: MatrixResult) -> str:
    console = Console(record=True, width=120, color_system=None)
    print_result(console, result)
    return console.export_text()


def make_result(
    rows: list[str], columns: list[str], findings: list[Finding] | None = None
) -> MatrixResult:
    """A matrix where every third cell is refused, the rest ok."""
    cells = []
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            refused = (i + j) % 3 == 0
            cells.append(
                CellResult(
                    source=row,
                    source_name=row,
                    target=column,
                    target_name=column,
                    endpoint=f"127.0.0.1:{8000 + j}",
                    status="refused" if refused else "ok",
                    checks=[
                        CheckRecord(
                            name="tcp",
                            status="refused" if refused else "ok",
                            errno=111 if refused else None,
                            errno_name="ECONNREFUSED" if refused else None,
                        )
                    ],
                )
            )
    by_status: dict[str, int] = {}
    for cell in cells:
        by_status[cell.status] = by_status.get(cell.status, 0) + 1
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return MatrixResult(
        tool_version="0.1.0",
        started_at=moment,
        finished_at=moment,
        duration_s=0.5,
        matrix=MatrixRef(path="m.yaml", sha256="0" * 64),
        summary=Summary(
            total=len(cells), by_status=by_status, expectations=Expectations(none=len(cells))
        ),
        findings=findings or [],
        cells=cells,
    )


def test_findings_come_first_then_the_grid_then_the_verdict(result: MatrixResult) -> None:
    text = shown(result)
    positions = [text.index(f.title[:40]) for f in result.findings]
    assert positions == sorted(positions)
    assert text.index("ERROR ") < text.index("WARNING ") < text.index("INFO ")
    assert positions[-1] < text.index("reachability") < text.index("FAIL (exit 1)")
    assert "15 cells in 2.50s · expectations met 5, unmet 2, none 8" in text
    assert "next: Look for DROP rules: `iptables -S | grep 30080`." in text


def test_the_grid_shows_every_row_column_and_status(result: MatrixResult) -> None:
    text = shown(result)
    grid = text[text.index("reachability") :]
    for name in ("scheduler-curl", "workers/pod-1", "büro-☃ & 'quoted'", "db|primary", "api-dns"):
        assert name in grid
    assert 'task-python <script>alert("row")</script>' in grid
    words = grid.split()
    for cell in result.cells:
        assert cell.status in words
    for errno_name in ("ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "NXDOMAIN", "EHOSTUNREACH"):
        assert errno_name in words
    assert "≠" in grid  # unmet expectations are marked
    assert "·" in grid  # the excluded cell


def test_names_are_shown_literally_never_as_markup() -> None:
    # rich would read these as style tags: "[/]" alone raises a MarkupError.
    text = shown(make_result(["pod-[/]", "[bold]shell[/bold]"], ["api [v2]", "[red]db"]))
    for name in ("pod-[/]", "[bold]shell[/bold]", "api [v2]", "[red]db"):
        assert name in text


def test_few_sources_many_targets_are_shown_transposed() -> None:
    columns = [f"port-{p}" for p in range(30)]
    text = shown(make_result(["here", "there"], columns))
    assert "reachability" in text
    assert "target \\ source" in text
    for column in columns:
        assert column in text


@pytest.mark.parametrize(
    ("rows", "columns"),
    [
        (MAX_GRID_COLUMNS + 1, MAX_GRID_COLUMNS + 1),  # too wide either way round
        (MAX_GRID_ROWS + 1, 2),  # too long either way round
    ],
)
def test_large_matrices_fall_back_to_the_per_source_summary(rows: int, columns: int) -> None:
    result = make_result([f"pod-{i}" for i in range(rows)], [f"t{j}" for j in range(columns)])
    text = shown(result)
    assert "reachability" not in text
    assert "per source" in text
    header = next(line for line in text.splitlines() if "source" in line and "┃" in line)
    assert [h.strip() for h in header.split("┃")[1:-1]] == ["source", "ok", "refused", "unmet"]
    counts: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        parts = [part.strip() for part in line.split("│")[1:-1]]
        if parts and parts[0].startswith("pod-"):  # blank means none
            counts[parts[0]] = (int(parts[1] or 0), int(parts[2] or 0))
    assert len(counts) == rows
    for i in range(rows):
        refused = sum((i + j) % 3 == 0 for j in range(columns))
        assert counts[f"pod-{i}"] == (columns - refused, refused)


def test_no_findings_is_said_plainly() -> None:
    text = shown(make_result(["here"], ["api"]))
    assert text.startswith("No findings.")
    assert "PASS" in text
