"""Diagnosis of a readiness race on a real run: the same port is refused, then accepts, as a
service comes up while the matrix runs (cells one at a time, a timing-out cell in between)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.results import (
    CellResult,
    Expectations,
    Finding,
    MatrixRef,
    MatrixResult,
    Summary,
)

from .conftest import cell, run_text
from .golden import check_golden, ports


@pytest.fixture
def late_listener() -> Iterator[tuple[int, threading.Event]]:
    """A port that starts listening when the returned event is set (from a timer). It is
    bound from the start (refused until then, and no other program can take it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    go = threading.Event()

    def start() -> None:
        go.wait()
        sock.listen(8)

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    yield port, go
    go.set()
    thread.join(2)
    sock.close()


def races(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule == "readiness-race"]


def test_refused_then_accepted_is_a_readiness_race(
    late_listener: tuple[int, threading.Event], loopback: LoopbackLab
) -> None:
    port, go = late_listener
    timer = threading.Timer(0.4, go.set)  # the service comes up while `pause` times out
    timer.start()
    try:
        result = run_text(
            """
            defaults: {timeout: 1s, concurrency: 1}
            sources: {here: {kind: local}}
            targets:
              api-first: {kind: tcp, host: 127.0.0.1, port: "${PORT}"}
              pause: {kind: tcp, host: 127.0.0.1, port: "${BACKLOG}"}
              api-again: {kind: tcp, host: 127.0.0.1, port: "${PORT}"}
            expect:
              - {status: ok}
              - {target: pause, status: timeout}
            """,
            {"PORT": str(port), "BACKLOG": str(loopback.backlog.port)},
        )
    finally:
        timer.cancel()
        go.set()
    assert cell(result, "here", "api-first").status == "refused"
    assert cell(result, "here", "api-again").status == "ok"
    [finding] = races(result.findings)
    assert finding.severity == "error"  # api-first was expected ok
    assert finding.title.startswith(f"127.0.0.1:{port} refused, then accepted ")
    assert finding.title.endswith("s later: a readiness race")
    assert "From here: api-first was refused (ECONNREFUSED) at " in finding.detail
    assert "the service was still starting" in finding.detail
    assert [(e.source, e.target, e.status) for e in finding.evidence] == [
        ("here", "api-first", "refused"),
        ("here", "api-again", "ok"),
    ]
    assert "probe-engine wait" in finding.next_step and "ProbeReadySensor" in finding.next_step
    assert finding.facts["gap_s"] > 0.5
    check_golden(finding, "readiness-race", {**ports(loopback), str(port): "LATE_PORT"})
    # The refusal is the race, not a target that is down.
    assert [f.rule for f in result.findings if f.severity != "info"] == ["readiness-race"]


def _result(cells: list[CellResult]) -> MatrixResult:
    now = datetime.now(UTC)
    return MatrixResult(
        tool_version="test",
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        matrix=MatrixRef(path="hand-built", sha256=""),
        summary=Summary(total=len(cells), by_status={}, expectations=Expectations()),
        cells=cells,
    )
