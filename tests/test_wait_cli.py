"""`probe-engine wait` as a deployment script runs it: exit 0 once reachable, 1 on timeout,
2 on bad input, one line per attempt with the status and the errno."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from probe_engine.demo.fixtures import LOOPBACK, LoopbackLab


def probe_engine(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe_engine", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_wait_returns_at_once_for_a_live_url(loopback: LoopbackLab) -> None:
    url = f"http://127.0.0.1:{loopback.http_port}/health"
    run = probe_engine("wait", url, "--timeout", "10s")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert re.fullmatch(rf"attempt 1 \(\d+\.\ds\): {re.escape(url)} ok", lines[0])
    assert lines[-1].startswith("ready after 1 attempt in ")


def test_wait_sees_a_listener_that_appears_after_a_delay(tmp_path: Path) -> None:
    # Bound, not listening: refused until listen(), and no other program can take the port.
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    port = int(listener.getsockname()[1])
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "probe_engine",
            "wait",
            f"127.0.0.1:{port}",
            "--timeout",
            "60s",
            "--interval",
            "300ms",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The listener appears only once the waiter has been refused twice (each attempt's line
        # is flushed), however long a loaded machine takes to start it.
        assert waiting.stdout is not None
        seen = [waiting.stdout.readline(), waiting.stdout.readline()]
        assert all("refused ECONNREFUSED" in line for line in seen), seen
        listener.listen(16)
        rest, stderr = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
        listener.close()
    assert waiting.returncode == 0, stderr
    lines = "".join(seen).splitlines() + rest.splitlines()
    attempts = [line for line in lines if line.startswith("attempt ")]
    assert len(attempts) >= 3, lines
    assert all(
        f"127.0.0.1:{port} refused ECONNREFUSED (errno 111)" in line for line in attempts[:-1]
    )
    assert attempts[-1].endswith(f"127.0.0.1:{port} ok")
    assert lines[-1].startswith(f"ready after {len(attempts)} attempts in ")


def test_wait_gives_up_at_its_timeout_with_exit_1(loopback: LoopbackLab) -> None:
    run = probe_engine(
        "wait", f"127.0.0.1:{loopback.closed_port}", "--timeout", "1s", "--interval", "400ms"
    )
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    # How many attempts fit in 1 s depends on the machine's load; every one is refused, the
    # verdict counts them, and the wait did not give up before its timeout.
    attempts, verdict = lines[:-1], lines[-1]
    assert len(attempts) >= 2
    assert all(line.endswith("refused ECONNREFUSED (errno 111)") for line in attempts)
    given_up = re.match(rf"timed out after {len(attempts)} attempts in (\d+\.\d)s: ", verdict)
    assert given_up, verdict
    assert float(given_up.group(1)) >= 1.0
    assert verdict.endswith("refused ECONNREFUSED (errno 111)")


def test_wait_quiet_prints_only_the_verdict(loopback: LoopbackLab) -> None:
    run = probe_engine(
        "wait",
        "-q",
        f"127.0.0.1:{loopback.closed_port}",
        "--timeout",
        "500ms",
        "--interval",
        "200ms",
    )
    assert run.returncode == 1
    assert len(run.stdout.splitlines()) == 1


def test_wait_on_a_matrix_waits_for_every_expectation(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    matrix = tmp_path / "ready.yaml"
    matrix.write_text(
        "sources: {here: {kind: local}, curl: {kind: shell, tool: curl}}\n"
        "targets:\n"
        f"  api: {{kind: http, url: 'http://127.0.0.1:{loopback.http_port}/health'}}\n"
        f"  db: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}\n"
        "exclude: [{source: curl, target: db}]\n"
        "expect: [{target: db, status: refused}]\n"
    )
    run = probe_engine("wait", str(matrix), "--timeout", "10s")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3/3 cells ready" in run.stdout
    # The same matrix, expecting what is not true, times out naming the cell.
    run = probe_engine("wait", str(matrix), "--timeout", "1s", "--select", "target=api,source=here")
    assert run.returncode == 0
    matrix.write_text(matrix.read_text().replace("status: refused", "status: ok"))
    run = probe_engine("wait", str(matrix), "--timeout", "600ms", "--interval", "300ms")
    assert run.returncode == 1
    assert (
        f"here -> db (127.0.0.1:{loopback.closed_port}) refused ECONNREFUSED (errno 111)"
        in run.stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["nonsense"],
            "nonsense: expected a URL (http://host:port/path), host:port, or a matrix file (.yaml)",
        ),
        (["127.0.0.1:99999"], "127.0.0.1:99999: ports run from 1 to 65535"),
        (["absent.yaml"], "absent.yaml: no such file"),
        (
            ["127.0.0.1:1", "--timeout", "soon"],
            "probe-engine: --timeout: 'soon' is not a duration: use ms, s, m or h (500ms, 2s, 1m30s, 1h) or a number of seconds",
        ),
        (
            ["127.0.0.1:1", "--interval", "0s"],
            "probe-engine: --interval: a duration must be greater than zero",
        ),
        (
            ["127.0.0.1:1", "--select", "pod=x"],
            "probe-engine: --select: 'pod=x' is not source=GLOB or target=GLOB",
        ),
    ],
)
def test_wait_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    run = probe_engine("wait", *args)
    assert run.returncode == 2
    assert run.stderr.strip() == message
    assert run.stdout == ""


def test_wait_bad_matrix_is_reported_with_its_position(tmp_path: Path) -> None:
    matrix = tmp_path / "bad.yaml"
    matrix.write_text(
        "sources: {here: {kind: local}}\ntargets: {api: {kind: tcp, host: h, port: 0}}\n"
    )
    run = probe_engine("wait", str(matrix))
    assert run.returncode == 2
    assert run.stderr.startswith(f"{matrix}:2:")


def test_wait_help_names_the_exit_codes() -> None:
    run = probe_engine("wait", "--help")
    assert run.returncode == 0
    assert "exit 0 once reachable, 1 on timeout" in " ".join(run.stdout.split())


def test_wait_does_not_leak_an_environment_into_the_probe(loopback: LoopbackLab) -> None:
    # A bare URL is probed from this process with its proxy variables, as the user's code
    # would be: a dead proxy makes the wait fail with proxy-error, not a false "ready".
    env = os.environ | {
        "HTTP_PROXY": f"http://127.0.0.1:{loopback.dead_proxy_port}",
        "NO_PROXY": "",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "probe_engine",
            "wait",
            f"http://127.0.0.1:{loopback.http_port}/health",
            "--timeout",
            "300ms",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert "proxy-error ECONNREFUSED (errno 111)" in run.stdout
