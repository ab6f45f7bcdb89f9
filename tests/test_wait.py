"""Readiness: waiting for a target, or a whole matrix, with real listeners on loopback."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import pytest

from probe_engine.demo.fixtures import LOOPBACK, LoopbackLab
from probe_engine.errors import SpecError
from probe_engine.plan import Selection
from probe_engine.spec import LoadedMatrix
from probe_engine.wait import (
    Attempt,
    WaitOutcome,
    attempt_once,
    load_wait_target,
    target_matrix,
    wait_until_ready,
)


class LateListener:
    """A listener that appears on `port` only after `delay` seconds, as a deploying API does.
    The port is bound (not listening) from the start: connects are refused meanwhile, and no
    other program on this machine can take the port before the listener opens."""

    def __init__(self, delay: float) -> None:
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.port = int(self.sock.getsockname()[1])
        self.opened_at: float | None = None
        self.timer = threading.Timer(delay, self._open)
        self.timer.start()

    def _open(self) -> None:
        self.sock.listen(16)
        self.opened_at = time.monotonic()

    def close(self) -> None:
        self.timer.cancel()
        self.sock.close()


@pytest.fixture
def late_listener() -> Iterator[LateListener]:
    listener = LateListener(delay=1.5)
    yield listener
    listener.close()


def wait(loaded: LoadedMatrix, **options: object) -> tuple[WaitOutcome, list[Attempt]]:
    seen: list[Attempt] = []
    outcome = anyio.run(partial(wait_until_ready, loaded, on_attempt=seen.append, **options))  # type: ignore[arg-type]
    return outcome, seen


def test_a_live_url_is_ready_at_the_first_attempt(loopback: LoopbackLab) -> None:
    loaded = load_wait_target(f"http://127.0.0.1:{loopback.http_port}/health")
    outcome, seen = wait(loaded, timeout=5.0, interval=1.0)
    assert outcome.ready
    assert outcome.attempts == 1
    assert seen[0].describe().endswith(f"http://127.0.0.1:{loopback.http_port}/health ok")
    assert outcome.describe().startswith("ready after 1 attempt in ")


def test_a_listener_that_appears_later_is_waited_for(late_listener: LateListener) -> None:
    started = time.monotonic()
    outcome, seen = wait(
        load_wait_target(f"127.0.0.1:{late_listener.port}"), timeout=10.0, interval=0.3
    )
    assert outcome.ready
    assert late_listener.opened_at is not None
    assert late_listener.opened_at - started >= 1.4
    assert outcome.attempts >= 3
    # Every attempt before the listener came up says why, errno included.
    for attempt in seen[:-1]:
        assert "refused ECONNREFUSED (errno 111)" in attempt.describe()
    assert seen[-1].describe().endswith(f"127.0.0.1:{late_listener.port} ok")


def test_a_closed_port_times_out_within_bounds(loopback: LoopbackLab) -> None:
    timeout, interval = 1.0, 0.3
    started = time.monotonic()
    outcome, seen = wait(
        load_wait_target(f"127.0.0.1:{loopback.closed_port}"), timeout=timeout, interval=interval
    )
    elapsed = time.monotonic() - started
    assert not outcome.ready
    # Attempts at 0, 0.3, 0.6, 0.9 and one at the deadline: bounded in count and in time.
    assert 4 <= outcome.attempts <= math.ceil(timeout / interval) + 2
    assert len(seen) == outcome.attempts
    assert elapsed >= timeout  # it waited its whole timeout; the attempts are bounded above
    assert outcome.describe().startswith(f"timed out after {outcome.attempts} attempts")
    assert outcome.describe().endswith(
        f"127.0.0.1:{loopback.closed_port} refused ECONNREFUSED (errno 111)"
    )


def test_an_attempt_is_bounded_by_its_own_timeout(loopback: LoopbackLab) -> None:
    # The full accept queue never answers a SYN: each attempt ends at its timeout.
    loaded = load_wait_target(f"127.0.0.1:{loopback.backlog.port}")
    attempt = anyio.run(partial(attempt_once, loaded, attempt_timeout=0.3))
    assert attempt.result.cells[0].status == "timeout"
    assert "within 0.3s" in (attempt.result.cells[0].checks[-1].message or "")
    assert not attempt.ready


def test_an_http_error_is_not_ready_and_says_its_status(loopback: LoopbackLab) -> None:
    loaded = load_wait_target(f"http://127.0.0.1:{loopback.http_port}/error")
    attempt = anyio.run(attempt_once, loaded)
    assert not attempt.ready
    assert attempt.describe() == (
        f"attempt 1: http://127.0.0.1:{loopback.http_port}/error http-error HTTP 500"
    )


def test_a_matrix_is_ready_when_every_cell_meets_its_expectation(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    matrix = tmp_path / "ready.yaml"
    matrix.write_text(
        "sources: {here: {kind: local}}\n"
        "targets:\n"
        "  api: {kind: http, url: 'http://127.0.0.1:${PORT}/health'}\n"
        f"  db: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}\n"
        "expect: [{target: db, status: refused}]\n"
    )
    loaded = load_wait_target(matrix, environ={"PORT": str(loopback.http_port)})
    outcome, seen = wait(loaded, timeout=3.0, interval=0.5)
    assert outcome.ready, seen[-1].describe()
    assert seen[0].describe().endswith("2/2 cells ready")


def test_a_matrix_names_the_cells_it_still_waits_for(loopback: LoopbackLab) -> None:
    loaded = load_wait_target(
        {
            "sources": {"here": {"kind": "local"}},
            "targets": {
                "api": {"kind": "http", "url": f"http://127.0.0.1:{loopback.http_port}/health"},
                "db": {"kind": "tcp", "host": "127.0.0.1", "port": loopback.closed_port},
            },
        }
    )
    attempt = anyio.run(attempt_once, loaded)
    assert not attempt.ready
    assert [c.target for c in attempt.pending] == ["db"]
    assert attempt.describe() == (
        f"attempt 1: 1/2 cells ready; here -> db (127.0.0.1:{loopback.closed_port}) "
        "refused ECONNREFUSED (errno 111)"
    )
    # A selection narrows what is waited for.
    selected = anyio.run(partial(attempt_once, loaded, select=Selection(targets=("api",))))
    assert selected.ready


def test_a_selection_that_matches_nothing_is_bad_input(loopback: LoopbackLab) -> None:
    loaded = load_wait_target(f"127.0.0.1:{loopback.http_port}")
    with pytest.raises(SpecError, match="matches no target"):
        wait(loaded, timeout=1.0, interval=0.5, select=Selection(targets=("nothing",)))


@pytest.mark.parametrize(
    ("text", "kind", "where"),
    [
        ("http://127.0.0.1:8000/health", "http", "http://127.0.0.1:8000/health"),
        ("https://localhost/", "http", "https://localhost/"),
        ("127.0.0.1:5432", "tcp", ("127.0.0.1", 5432)),
        ("tcp://127.0.0.1:5432", "tcp", ("127.0.0.1", 5432)),
        ("[::1]:8080", "tcp", ("::1", 8080)),
        ("localhost:80", "tcp", ("localhost", 80)),
    ],
)
def test_bare_targets_become_one_cell_matrices(text: str, kind: str, where: object) -> None:
    target = target_matrix(text)["targets"]["target"]
    assert target["kind"] == kind
    found = target["url"] if kind == "http" else (target["host"], target["port"])
    assert found == where
    assert load_wait_target(text).matrix.sources["local"].kind == "local"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "nonsense",
            "nonsense: expected a URL (http://host:port/path), host:port, or a matrix file (.yaml)",
        ),
        (
            "127.0.0.1",
            "127.0.0.1: expected a URL (http://host:port/path), host:port, or a matrix file (.yaml)",
        ),
        ("127.0.0.1:70000", "127.0.0.1:70000: ports run from 1 to 65535"),
        (
            "ftp://127.0.0.1:21",
            "ftp://127.0.0.1:21: expected a URL (http://host:port/path), host:port, or a matrix file (.yaml)",
        ),
        ("http://", "http://: targets.target.url: 'http://' has no host"),
        ("missing.yaml", "missing.yaml: no such file"),
    ],
)
def test_bad_targets_are_spec_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_wait_target(text)
    assert str(caught.value) == message


def test_timeout_and_interval_must_be_positive(loopback: LoopbackLab) -> None:
    loaded = load_wait_target(f"127.0.0.1:{loopback.http_port}")
    with pytest.raises(SpecError, match="greater than zero"):
        wait(loaded, timeout=0.0, interval=1.0)
