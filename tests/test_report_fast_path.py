"""The scan fast path changes no byte of report.json: a real run with mixed kinds, two sources
(one in process, one through the agent's protocol), expectations and a port scan, assembled
and rendered by the engine, against the same run's results made into a report the plain way
(each cell validated alone, judged by a copy, report.json through model_dump_json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from probe_engine import assemble as assembly
from probe_engine import engine
from probe_engine.assemble import RunRecord
from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.plan import expectation_for
from probe_engine.reports import json_report, write_reports
from probe_engine.reports.json_report import render_json
from probe_engine.results import (
    CellResult,
    Expectations,
    MatrixRef,
    MatrixResult,
    Summary,
    TargetInfo,
)
from probe_engine.spec import load_matrix_text

MIXED = """
defaults: {timeout: 2s}
sources:
  here: {kind: local, trust_env: false}
  child: {kind: process, inherit_env: false}
targets:
  web: {kind: http, url: "http://127.0.0.1:${PE_DEMO_HTTP_PORT}/"}
  open: {kind: tcp, host: 127.0.0.1, port: "${PE_DEMO_HTTP_PORT}"}
  closed: {kind: tcp, host: 127.0.0.1, port: "${PE_DEMO_CLOSED_PORT}"}
  name: {kind: dns, name: api.demo.internal, nameserver: "${PE_DEMO_DNS}"}
  missing: {kind: dns, name: nowhere.demo.internal, nameserver: "${PE_DEMO_DNS}"}
  scan:
    kind: tcp
    host: 127.0.0.1
    ports: ["${PE_DEMO_HTTP_PORT}", "${PE_DEMO_CLOSED_PORT}", "${PE_DEMO_RESET_PORT}"]
expect:
  - {status: ok}
  - {target: "scan", status: [refused, ok]}
  - {source: child, target: "scan:${PE_DEMO_CLOSED_PORT}", status: ok}
  - {target: closed, status: refused}
  - {target: missing, status: dns-error}
"""


@pytest.fixture(scope="module")
def record(loopback: LoopbackLab) -> tuple[RunRecord, MatrixResult]:
    """The run as the engine hands it to assemble, and what assemble made of it."""
    seen: list[RunRecord] = []

    def keep(run: RunRecord) -> MatrixResult:
        seen.append(run)
        return assembly.assemble(run)

    loaded = load_matrix_text(MIXED, "mixed.yaml", loopback.variables())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "assemble", keep)
        result = anyio.run(engine.run_matrix, loaded)
    return seen[0], result


def plain_report(run: RunRecord) -> bytes:
    """report.json made the plain way from what the run saw (the way before the fast path)."""
    matrix = run.loaded.matrix
    rows = assembly._rows_by_source(run)
    infos = assembly._source_infos(run, rows)
    used = {r.column.name for r in run.cells}
    columns = [c for cs in run.columns.values() for c in cs if c.name in used]
    targets = [
        TargetInfo(
            name=c.name,
            target_name=c.target_name,
            kind=c.kind,
            endpoint=c.endpoint,
            via=c.via,
            facts=dict(c.facts),
            host=c.plan["host"] if c.plan else None,
            port=c.plan.get("port") if c.plan else None,
            addresses=c.plan.get("addresses") if c.plan else None,
            url=c.plan.get("url") if c.plan else None,  # no credentials in this matrix
        )
        for c in columns
    ]
    by_name = {c.name: c for c in columns}
    order = {info.name: index for index, info in enumerate(infos)}
    column_order = {t.name: index for index, t in enumerate(targets)}
    cells: list[CellResult] = []
    for made in sorted(
        run.results.values(), key=lambda c: (order[c.source], column_order[c.target])
    ):
        # As a source made it before: one model per cell, unjudged.
        unjudged: dict[str, Any] = {**made.model_dump(), "expected": None, "met": None}
        cell = CellResult.model_validate(unjudged)
        expected = expectation_for(matrix, cell.source_name, cell.source, by_name[cell.target])
        if expected is not None:
            cell = cell.model_copy(
                update={"expected": list(expected), "met": cell.status in expected}
            )
        cells.append(cell)
    by_status: dict[str, int] = {}
    for cell in cells:
        by_status[cell.status] = by_status.get(cell.status, 0) + 1
    summary = Summary(
        total=len(cells),
        by_status=by_status,
        expectations=Expectations(
            met=sum(1 for c in cells if c.met is True),
            unmet=sum(1 for c in cells if c.met is False),
            none=sum(1 for c in cells if c.met is None),
        ),
    )
    result = MatrixResult(
        tool_version=engine.__version__,
        run_id=run.run_id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_s=round(run.duration, 6),
        matrix=MatrixRef(path=run.loaded.path, sha256=run.loaded.sha256),
        exit_status=assembly.exit_status(cells, run.fail_on, run.interrupted, run.faults),
        fail_on=run.fail_on,
        summary=summary,
        sources=infos,
        targets=targets,
        cells=cells,
    )
    result = result.model_copy(update={"findings": assembly.diagnose(result)})
    return result.model_dump_json(indent=2).encode() + b"\n"


def test_report_json_is_byte_for_byte_the_plain_report(
    record: tuple[RunRecord, MatrixResult],
) -> None:
    run, result = record
    assert render_json(result) == plain_report(run)


def test_the_run_took_the_fast_paths_and_judged_what_it_should(
    record: tuple[RunRecord, MatrixResult], loopback: LoopbackLab
) -> None:
    """The comparison is worth something: every kind ran, some cells met their expectation
    and some did not, and both sources' cells were judged as they were made."""
    run, result = record
    closed = loopback.closed_port
    statuses = {(c.source, c.target): c.status for c in result.cells}
    assert len(statuses) == 2 * 8
    assert {"ok", "refused", "dns-error"} <= set(statuses.values())
    assert result.summary.expectations.met > 0 and result.summary.expectations.unmet > 0
    for source in ("here", "child"):
        made = run.results[(source, f"scan:{closed}")]  # before assemble: judged when made
        assert made.expected == (["ok"] if source == "child" else ["refused", "ok"])
        assert made.met is (source == "here")
    assert all(c.expected is not None for c in result.cells)


def test_report_json_read_back_renders_the_same_bytes(
    record: tuple[RunRecord, MatrixResult],
) -> None:
    """`probe-engine render` reads report.json into the same model: the same bytes again."""
    data = render_json(record[1])
    assert render_json(MatrixResult.model_validate_json(data)) == data


@pytest.mark.parametrize("per_chunk", [1, 3, 1000])
def test_report_json_streamed_in_pieces_is_the_same_bytes(
    record: tuple[RunRecord, MatrixResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    per_chunk: int,
) -> None:
    """write_reports streams report.json in pieces (a thousand cells each): the file is
    render_json's bytes, whatever the pieces' size, with keys of a newer writer (kept after
    the cells) and without cells."""
    result = record[1]
    monkeypatch.setattr(json_report, "CELLS_PER_CHUNK", per_chunk)
    newer = MatrixResult.model_validate({**result.model_dump(), "from_a_newer_writer": {"n": [1]}})
    empty = result.model_copy(update={"cells": []})
    for index, one in enumerate([result, newer, empty]):
        written = write_reports(one, tmp_path / str(index), ["json", "markdown"])
        assert written[0].read_bytes() == render_json(one)
    pieces = list(json_report.json_chunks(result))
    chunks = -(-len(result.cells) // per_chunk)
    assert len([p for p in pieces if p != b","]) == 2 + chunks
