"""`probe-engine serve` as an operator runs it: a real process on 127.0.0.1, probing loopback
fixtures, asked over HTTP, its matrix file edited under it, signalled and restarted."""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from probe_engine.demo.fixtures import LOOPBACK, LoopbackLab
from probe_engine.results import MatrixResult
from tests.serve_process import WAIT_TIMEOUT as WAIT
from tests.serve_process import ServeProcess, labels_of, wait_for

pytestmark = pytest.mark.timeout(300)

Start = Callable[..., ServeProcess]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start serve processes; any still running at the end is stopped with its children."""
    started: list[ServeProcess] = []

    def make(matrix: Path, *args: str, env: dict[str, str] | None = None) -> ServeProcess:
        process = ServeProcess(matrix, *args, log=tmp_path / f"serve-{len(started)}.log", env=env)
        started.append(process)
        return process

    yield make
    for process in started:
        process.kill()


def write_matrix(path: Path, lab: LoopbackLab, extra_targets: str = "", **more: str) -> Path:
    targets = more.get(
        "targets",
        f"""
  api: {{kind: http, url: "http://127.0.0.1:{lab.http_port}/health"}}
  db: {{kind: tcp, host: 127.0.0.1, port: {lab.closed_port}}}
""",
    )
    path.write_text(
        f"""version: 1
defaults: {{timeout: 5s}}
sources:
  here: {{kind: local}}
targets:{targets}{extra_targets}
expect:
  - {{source: "*", target: api, status: ok}}
"""
    )
    return path


def test_every_endpoint_after_the_first_run(
    start: Start, loopback: LoopbackLab, tmp_path: Path
) -> None:
    matrix = write_matrix(tmp_path / "matrix.yaml", loopback)
    serve = start(matrix, "--interval", "1h", "--once-at-start")
    serve.wait_runs(1)

    assert serve.get("/readyz") == (200, b"ready\n")
    health = serve.json("/healthz")
    assert health["status"] == "ok" and health["reload_error"] is None
    assert health["last_run"]["number"] == 1

    result = MatrixResult.model_validate_json(serve.get("/report.json")[1])
    assert {(c.source, c.target): c.status for c in result.cells} == {
        ("here", "api"): "ok",
        ("here", "db"): "refused",
    }
    status, html = serve.get("/report")
    page = html.decode()
    assert status == 200
    assert "live · run #1" in page
    finished = result.finished_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"run at {finished}" in page  # the time of the run it shows

    history = serve.json("/history.json")
    assert [run["number"] for run in history["runs"]] == [1]
    cells = {(c["source"], c["target"]): c for c in history["cells"]}
    assert cells[("here", "db")]["recent"] == ["refused"]
    assert datetime.fromisoformat(cells[("here", "db")]["since"]) <= result.finished_at

    samples = serve.metrics()
    assert (
        samples[
            (
                "probe_engine_cell_status",
                frozenset({"source": "here", "target": "db", "status": "refused"}.items()),
            )
        ]
        == 1.0
    )
    assert (
        samples[
            (
                "probe_engine_cell_errno_info",
                frozenset(
                    {
                        "source": "here",
                        "target": "db",
                        "phase": "tcp",
                        "errno": "ECONNREFUSED",
                    }.items()
                ),
            )
        ]
        == 1.0
    )
    assert serve.value("probe_engine_runs_total") == 1.0
    assert serve.value("probe_engine_last_success_timestamp_seconds") == pytest.approx(
        result.finished_at.timestamp()
    )
    # Prometheus asking for OpenMetrics gets it.
    status, body = serve.get("/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert status == 200 and body.rstrip().endswith(b"# EOF")

    assert serve.stop() == 0, serve.log()


def test_not_ready_before_the_first_run_and_one_off_cells_any_time(
    start: Start, loopback: LoopbackLab, tmp_path: Path
) -> None:
    matrix = write_matrix(tmp_path / "matrix.yaml", loopback)
    serve = start(matrix, "--interval", "1h", "--no-jitter")

    status, body = serve.get("/readyz")
    assert status == 503 and b"no run has completed yet" in body
    assert serve.get("/report")[0] == 503
    assert serve.get("/report.json")[0] == 503
    assert serve.json("/healthz")["last_run"] is None
    assert serve.value("probe_engine_runs_total") == 0.0
    assert not any(name.startswith("probe_engine_cell_") for name, _ in serve.metrics())

    one = MatrixResult.model_validate_json(serve.get("/probe?source=here&target=db")[1])
    assert [(c.source, c.target, c.status) for c in one.cells] == [("here", "db", "refused")]
    status, text = serve.get("/probe?source=here&target=api&format=prometheus")
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    ok = [s for s in families["probe_engine_cell_status"].samples if s.value == 1.0]
    assert [(s.labels["target"], s.labels["status"]) for s in ok] == [("api", "ok")]
    assert serve.get("/probe?source=nobody&target=db")[0] == 404
    assert serve.get("/probe?source=here")[0] == 400
    # A one-off cell is not a scheduled run: still not ready, nothing counted.
    assert serve.get("/readyz")[0] == 503
    assert serve.value("probe_engine_runs_total") == 0.0

    assert serve.stop() == 0, serve.log()


def test_a_tick_during_a_run_is_skipped_and_counted_and_runs_never_overlap(
    start: Start, loopback: LoopbackLab, tmp_path: Path
) -> None:
    # Each run waits ~1 s on a server that never answers; a tick comes every 0.2 s.
    matrix = write_matrix(
        tmp_path / "matrix.yaml",
        loopback,
        f'\n  hanging: {{kind: http, url: "http://127.0.0.1:{loopback.hanging.port}/", timeout: 1s}}\n',
    )
    serve = start(matrix, "--interval", "200ms", "--no-jitter", "--once-at-start")
    serve.wait_runs(3)
    assert (serve.value("probe_engine_runs_skipped_total") or 0) >= 3
    runs = serve.json("/history.json")["runs"]
    assert len(runs) >= 3
    for before, after in itertools.pairwise(runs):
        assert datetime.fromisoformat(before["finished_at"]) <= datetime.fromisoformat(
            after["started_at"]
        ), "two runs overlapped"
    assert "run skipped: run " in serve.log()
    assert serve.stop() == 0, serve.log()


def test_the_matrix_reloads_on_change_and_a_bad_one_keeps_the_old(
    start: Start, loopback: LoopbackLab, tmp_path: Path
) -> None:
    matrix = write_matrix(tmp_path / "matrix.yaml", loopback)
    serve = start(matrix, "--interval", "300ms", "--once-at-start", "--reload-check", "100ms")
    first = serve.json("/healthz")["matrix"]["sha256"]
    serve.wait_runs(1)

    write_matrix(
        matrix, loopback, f"\n  db2: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}\n"
    )
    second = wait_for(
        "the new matrix",
        lambda: (sha := serve.json("/healthz")["matrix"]["sha256"]) != first and sha,
    )
    wait_for(
        "a run of the new matrix",
        lambda: any(c["target"] == "db2" for c in serve.json("/report.json")["cells"]),
    )

    matrix.write_text(
        "version: 1\nsources:\n  here: {kind: local}\ntargets:\n  db: {kind: tcp, host: 127.0.0.1, port: 99999}\n"
    )
    health = wait_for(
        "the reload error", lambda: (h := serve.json("/healthz"))["reload_error"] and h
    )
    assert health["status"] == "degraded"
    assert health["reload_error"] == (
        f"{matrix}:5:42: targets.db.port: 99999 is too large (at most 65535)"
    )
    assert health["matrix"]["sha256"] == second  # the previous matrix is still in use
    assert "still running the previous matrix" in serve.log()
    assert health["reload_error"] in serve.log()
    runs = serve.runs()
    serve.wait_runs(runs + 2)  # and it is still probed
    assert serve.json("/healthz")["matrix"]["sha256"] == second
    assert serve.value("probe_engine_matrix_last_reload_successful") == 0.0
    assert (serve.value("probe_engine_matrix_reloads_total", result="failure") or 0) >= 1
    assert b"could not be reloaded" in serve.get("/report")[1]

    write_matrix(matrix, loopback)  # fixed: back to the first matrix
    wait_for("the fixed matrix", lambda: serve.json("/healthz")["matrix"]["sha256"] == first)
    assert serve.json("/healthz")["status"] == "ok"
    assert serve.value("probe_engine_matrix_last_reload_successful") == 1.0
    assert serve.stop() == 0, serve.log()


def test_sighup_reloads_when_polling_is_off(
    start: Start, loopback: LoopbackLab, tmp_path: Path
) -> None:
    matrix = write_matrix(tmp_path / "matrix.yaml", loopback)
    serve = start(matrix, "--interval", "300ms", "--once-at-start", "--reload-check", "0")
    first = serve.json("/healthz")["matrix"]["sha256"]
    write_matrix(
        matrix, loopback, f"\n  db2: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}\n"
    )
    serve.wait_runs(serve.runs() + 2)
    assert serve.json("/healthz")["matrix"]["sha256"] == first  # not polled: not seen yet
    serve.send(signal.SIGHUP)
    wait_for("the reload", lambda: serve.json("/healthz")["matrix"]["sha256"] != first)
    assert "reloaded the matrix (SIGHUP)" in serve.log()
    assert serve.stop() == 0, serve.log()


def test_sigterm_stops_the_run_in_flight_its_children_and_exits_0(
    start: Start, loopback: LoopbackLab, tmp_path: Path
) -> None:
    # A child Python (a `process` source) waits on a server that never answers.
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(
        f"""version: 1
sources:
  child: {{kind: process}}
targets:
  hanging: {{kind: http, url: "http://127.0.0.1:{loopback.hanging.port}/", timeout: 1m}}
"""
    )
    serve = start(matrix, "--interval", "1h", "--once-at-start")
    wait_for("a run in flight", lambda: serve.value("probe_engine_run_in_progress") == 1.0)
    children = wait_for("the source's child process", serve.children)
    assert serve.stop(signal.SIGTERM) == 0, serve.log()
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, child
    log = serve.log()
    assert "SIGTERM: stopping" in log and "run 1 interrupted" in log
    assert "Traceback" not in log


def test_sigterm_with_probe_threads_inside_tls_handshakes_exits_0(
    start: Start, tmp_path: Path
) -> None:
    """The SIGSEGV of issue #17: a run cut short leaves the in-process agent's worker threads
    inside OpenSSL (handshakes nobody answers, then the CA loads of the TLS facts); exit()
    ran OpenSSL's atexit cleanup under them. serve gives them THREAD_GRACE, logs that it stops
    waiting if some are left, and ends without the C exit handlers. The connections are let go as serve exits,
    which sends every thread back into OpenSSL at that moment (bench/serve_sigterm.py and
    bench/README.md: 2 crashes in 45 stops before the fix)."""
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    targets = "".join(
        f'\n  tls{i}: {{kind: http, url: "https://127.0.0.1:{port}/", timeout: 1m}}'
        for i in range(12)
    )
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(f"version: 1\nsources:\n  here: {{kind: local}}\ntargets:{targets}\n")
    held: list[socket.socket] = []
    try:
        serve = start(matrix, "--interval", "1h", "--once-at-start")
        listener.settimeout(WAIT)
        while len(held) < 12:  # every cell's ClientHello is in, unanswered
            held.append(listener.accept()[0])
        serve.send(signal.SIGTERM)
        wait_for("serve to stop its run", lambda: "stopped after" in serve.log())
    finally:
        for conn in held:
            conn.close()
        listener.close()
    assert serve.proc.wait(timeout=WAIT) == 0, serve.log()  # no second signal: it ends alone
    log = serve.log()
    assert "Fatal Python error" not in log and "Traceback" not in log


def test_a_restart_keeps_every_label_set(
    start: Start, loopback: LoopbackLab, tmp_path: Path
) -> None:
    matrix = write_matrix(tmp_path / "matrix.yaml", loopback)
    families = (
        "probe_engine_cell_",
        "probe_engine_run",
        "probe_engine_last_",
        "probe_engine_findings",
    )
    serve = start(matrix, "--interval", "1h", "--once-at-start")
    serve.wait_runs(1)
    before = labels_of(serve.metrics(), families)
    assert serve.stop() == 0, serve.log()
    again = start(matrix, "--interval", "1h", "--once-at-start")
    again.wait_runs(1)
    assert labels_of(again.metrics(), families) == before
    assert again.stop(signal.SIGINT) == 0, again.log()


def test_history_keeps_the_last_n_runs(start: Start, loopback: LoopbackLab, tmp_path: Path) -> None:
    matrix = write_matrix(tmp_path / "matrix.yaml", loopback)
    serve = start(matrix, "--interval", "100ms", "--once-at-start", "--history", "3")
    serve.wait_runs(6)
    history = serve.json("/history.json")
    assert history["size"] == 3
    assert len(history["runs"]) == 3
    assert all(len(cell["recent"]) == 3 for cell in history["cells"])
    numbers = [run["number"] for run in history["runs"]]
    assert numbers == sorted(numbers) and numbers[0] >= 4
    assert serve.stop() == 0, serve.log()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--listen", "nowhere:80"],
            "probe-engine: --listen: 'nowhere:80': listen on an IP address",
        ),
        (["--interval", "0s"], "probe-engine: --interval: a duration must be greater than zero"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    loopback: LoopbackLab, tmp_path: Path, args: list[str], message: str
) -> None:
    matrix = write_matrix(tmp_path / "matrix.yaml", loopback)
    run = subprocess.run(
        [sys.executable, "-m", "probe_engine", "serve", str(matrix), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.startswith(message), run.stderr
    assert len(run.stderr.splitlines()) == 1


def test_a_bad_matrix_at_start_and_a_taken_port_exit_2(
    loopback: LoopbackLab, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nsources:\n  here: {kind: lokal}\ntargets:\n  t: {kind: tcp, host: 127.0.0.1, port: 1}\n"
    )

    def serve(*args: str) -> Any:
        return subprocess.run(
            [sys.executable, "-m", "probe_engine", "serve", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    run = serve(str(bad))
    assert run.returncode == 2
    assert run.stderr.startswith(f"{bad}:3:16: sources.here.kind: unknown kind 'lokal'")
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        run = serve(
            str(write_matrix(tmp_path / "m.yaml", loopback)), "--listen", f"127.0.0.1:{port}"
        )
    assert run.returncode == 2
    assert run.stderr.startswith(f"probe-engine: --listen: cannot listen on 127.0.0.1:{port}: ")
