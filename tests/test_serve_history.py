"""serve's memory of past runs: since when a cell is as it is, how often it changed, and that
it stays bounded (N runs; cells that left the matrix are forgotten)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from probe_engine.results import CellResult, MatrixResult
from probe_engine.serve.history import History

DATA = Path(__file__).parent / "data" / "reports"
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def template() -> MatrixResult:
    return MatrixResult.model_validate_json((DATA / "result.json").read_bytes())


def run(template: MatrixResult, number: int, statuses: dict[tuple[str, str], str]) -> MatrixResult:
    started = START + timedelta(seconds=30 * number)
    cells = [
        CellResult(
            source=source,
            source_name=source,
            target=target,
            target_name=target,
            endpoint="127.0.0.1:1",
            status=status,  # type: ignore[arg-type]
            started_at=started,
        )
        for (source, target), status in statuses.items()
    ]
    return template.model_copy(
        update={
            "cells": cells,
            "started_at": started,
            "finished_at": started + timedelta(seconds=1),
        }
    )


def test_since_when_and_how_often_a_cell_changed(template: MatrixResult) -> None:
    history = History(size=10)
    pattern = ["ok", "ok", "refused", "ok", "refused", "refused"]
    for number, status in enumerate(pattern, start=1):
        history.record(number, run(template, number, {("a", "api"): status, ("a", "db"): "ok"}))
    api = history.cells[("a", "api")]
    assert api.status == "refused"
    assert api.since == START + timedelta(seconds=30 * 5)  # the run that saw it turn
    assert api.changes() == 3 and api.changes_total == 3
    db = history.cells[("a", "db")]
    assert db.since == START + timedelta(seconds=30) and db.changes() == 0
    trend = history.trends()[("a", "api")]
    assert trend.recent == tuple(pattern) and trend.runs == 6


def test_history_is_bounded_in_runs_and_in_cells(template: MatrixResult) -> None:
    history = History(size=3)
    for number in range(1, 8):
        statuses = {("a", "api"): "ok" if number % 2 else "refused"}
        if number <= 2:
            statuses[("a", "gone")] = "ok"  # a target removed by a reload after run 2
        history.record(number, run(template, number, statuses))
    assert [r.number for r in history.runs] == [5, 6, 7]
    assert set(history.cells) == {("a", "api")}
    api = history.cells[("a", "api")]
    assert len(api.recent) == 3
    assert api.changes() == 2  # within the kept runs
    assert api.changes_total == 6  # since serve started
