"""The command line as a user (or a CI job) drives it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from probe_engine.demo.fixtures import LoopbackLab


def probe_engine(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe_engine", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=(os.environ | env) if env else None,
        timeout=120,
        check=False,
    )


def test_demo_reproduces_the_story_and_writes_every_report(tmp_path: Path) -> None:
    run = probe_engine("demo", "--output", "table", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for name in ("demo.json", "demo.html", "demo.xml", "demo.md"):
        assert (tmp_path / "reports" / name).stat().st_size > 500
    report = json.loads((tmp_path / "reports" / "demo.json").read_text())
    grid = {(c["source"], c["target"]): c for c in report["cells"]}
    assert grid[("scheduler-curl", "api")]["status"] == "ok"
    assert grid[("task-python", "api")]["status"] == "proxy-error"
    assert grid[("task-python", "api")]["checks"][0]["errno_name"] == "ECONNREFUSED"
    assert report["findings"][0]["rule"] == "proxy-differs"
    assert "task-python" in run.stdout
    assert "PASS" in run.stdout


def test_output_json_prints_only_the_result_on_stdout(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        f"sources: {{a: {{kind: local}}}}\ntargets: {{db: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}}}\n"
    )
    run = probe_engine("run", str(matrix), "--output", "json", "--no-reports")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["schema_version"] == 1
    assert result["cells"][0]["status"] == "refused"
    assert not (tmp_path / "reports").exists()


def test_output_json_is_the_report_json_of_the_same_run(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    """Streamed to stdout as report.json is streamed to its file: the same bytes."""
    matrix = tmp_path / "m.yaml"
    closed, web = loopback.closed_port, loopback.http_port
    matrix.write_text(
        "sources: {a: {kind: local}, b: {kind: local}}\n"
        f"targets: {{db: {{kind: tcp, host: 127.0.0.1, ports: [{closed}, {web}]}}}}\n"
    )
    out = tmp_path / "r"
    run = probe_engine(
        "run", str(matrix), "--output", "json", "--format", "json", "--out", str(out)
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == (out / "report.json").read_text()
    assert len(json.loads(run.stdout)["cells"]) == 4


def test_fail_on_any_failure_gates_a_deployment(tmp_path: Path, loopback: LoopbackLab) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        f"sources: {{a: {{kind: local}}}}\ntargets: {{db: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}}}\n"
    )
    run = probe_engine(
        "run",
        str(matrix),
        "--fail-on",
        "any-failure",
        "--out",
        str(tmp_path / "r"),
        "--format",
        "junit,prometheus",
    )
    assert run.returncode == 1
    assert (tmp_path / "r" / "report.xml").exists()
    assert "probe_engine_cell_status{" in (tmp_path / "r" / "report.prom").read_text()


def test_bad_input_keeps_earlier_reports_and_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "report.json").write_text("earlier")
    matrix = tmp_path / "m.yaml"
    matrix.write_text("sources: {a: {kind: local}}\ntargets: {db: {kind: tcp, host: h, port: 0}}\n")
    run = probe_engine("run", str(matrix), "--out", str(out))
    assert run.returncode == 2
    assert run.stderr.strip() == f"{matrix}:2:42: targets.db.port: 0 is too small (at least 1)"
    assert (out / "report.json").read_text() == "earlier"


def test_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "sources: {a: {kind: local}}\ntargets: {db: {kind: tcp, host: 127.0.0.1, port: 1}}\n"
    )
    for args, words in (
        (["--format", "pdf"], "probe-engine: --format: unknown format 'pdf' (choose from json,"),
        (["--timeout", "soon"], "probe-engine: --timeout: 'soon' is not a duration"),
        (
            ["--select", "who=a"],
            "probe-engine: --select: 'who=a' is not source=GLOB or target=GLOB",
        ),
    ):
        run = probe_engine("run", str(matrix), "--no-reports", *args)
        assert run.returncode == 2, args
        assert words in run.stderr
        assert "Traceback" not in run.stderr
    missing = probe_engine("run", str(tmp_path / "nope.yaml"))
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        f"{tmp_path / 'nope.yaml'}: no such file",
    )


def test_render_rebuilds_reports_from_a_saved_result(tmp_path: Path) -> None:
    assert probe_engine("demo", "--output", "none", "--out", str(tmp_path)).returncode == 0
    run = probe_engine(
        "render",
        str(tmp_path / "demo.json"),
        "--format",
        "markdown,prometheus",
        "--out",
        str(tmp_path / "again"),
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "again" / "demo.md").read_text() == (tmp_path / "demo.md").read_text()
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 1}')
    bad = probe_engine("render", str(broken))
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"{broken}: not a probe-engine report")


def test_version() -> None:
    run = probe_engine("--version")
    assert run.returncode == 0
    assert run.stdout.startswith("probe-engine, version ")


def _listener() -> socket.socket:
    """A real listener that counts, by its accept queue, whether anything connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.setblocking(False)
    return server


def _nothing_connected(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except BlockingIOError:
        return True
    connection.close()
    return False


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        ("file", "cannot write in {out}: it is a file, not a folder"),
        ("under-a-file", "cannot write in {out}: part of it is a file"),
        ("folder-in-the-way", "cannot write {out}/report.json: a folder is in the way"),
    ],
)
def test_an_unwritable_out_fails_before_any_probe_is_sent(
    tmp_path: Path, make: str, problem: str
) -> None:
    server = _listener()
    port = server.getsockname()[1]
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        f"sources: {{a: {{kind: local}}}}\ntargets: {{db: {{kind: tcp, host: 127.0.0.1, port: {port}}}}}\n"
    )
    (tmp_path / "plain-file").write_text("not a folder")
    out = {
        "file": tmp_path / "plain-file",
        "under-a-file": tmp_path / "plain-file" / "reports",
        "folder-in-the-way": tmp_path / "reports",
    }[make]
    if make == "folder-in-the-way":
        (out / "report.json").mkdir(parents=True)
    with server:
        run = probe_engine("run", str(matrix), "--out", str(out))
        assert _nothing_connected(server), "a probe was sent before --out was checked"
    assert run.returncode == 2
    assert run.stderr.splitlines() == [f"probe-engine: --out: {problem.format(out=out)}"]
    assert (tmp_path / "plain-file").read_text() == "not a folder"


def test_run_reads_the_matrix_from_stdin(tmp_path: Path, loopback: LoopbackLab) -> None:
    text = f"sources: {{a: {{kind: local}}}}\ntargets: {{db: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}}}\n"
    run = subprocess.run(
        [sys.executable, "-m", "probe_engine", "run", "-", "--out", str(tmp_path), "--output", "none"],
        input=text, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["matrix"]["path"] == "<stdin>"
    assert report["cells"][0]["status"] == "refused"
    bad = subprocess.run(
        [sys.executable, "-m", "probe_engine", "run", "-", "--out", str(tmp_path / "x")],
        input="sources: {a: {kind: lokal}}\n", capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "<stdin>:1:1: targets: required",
        "<stdin>:1:21: sources.a.kind: unknown kind 'lokal': did you mean 'local'? (expected one "
        "of: local, process, shell, netns, docker, kubernetes, kubernetes-nodes)",
    ]
    assert not (tmp_path / "x").exists()


def test_render_reads_a_report_from_stdin(tmp_path: Path) -> None:
    saved = (Path(__file__).parent / "data" / "reports" / "result.json").read_text()
    run = subprocess.run(
        [sys.executable, "-m", "probe_engine", "render", "-", "--format", "markdown"],
        input=saved, capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "wrote report.md"
    assert (tmp_path / "report.md").stat().st_size > 100
    bad = subprocess.run(
        [sys.executable, "-m", "probe_engine", "render", "-"],
        input="{}", capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.startswith("<stdin>: not a probe-engine report: ")
    assert len(bad.stderr.splitlines()) == 1


# Worker threads of the in-process agent inside OpenSSL (here: loading the CA bundle in a loop,
# as the TLS facts of a cut https cell do) while the command line ends.
_OPENSSL_AT_EXIT = """
import ssl, sys, threading, time
from probe_engine import cli
from probe_engine.agent.workers import THREAD_NAME

def load_cas() -> None:
    while True:
        ssl.create_default_context()

for _ in range(8):
    threading.Thread(target=load_cas, name=THREAD_NAME, daemon=True).start()
time.sleep(0.2)
sys.argv = ["probe-engine", "--version"]
cli.main()
"""


def test_the_command_line_ends_cleanly_while_probe_threads_are_inside_openssl() -> None:
    """Issue #17's SIGSEGV: exit() ran OpenSSL's atexit cleanup under threads still using it
    (3 exits in 20 crashed here before the fix: 20 clean exits in a row then had a chance of
    about 4%). The process now ends without the C exit handlers when probe threads linger."""
    for _ in range(20):
        run = subprocess.run(
            [sys.executable, "-c", _OPENSSL_AT_EXIT],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert (run.returncode, run.stdout.split()[:1]) == (0, ["probe-engine,"]), run.stderr
