"""The engine: expansion, expectations, selection, deadlines, interruption, exit statuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import probe_engine
from probe_engine import Selection, SpecError
from probe_engine.demo.fixtures import LoopbackLab

from .conftest import cell, run_text

TWO_BY_THREE = """
defaults: {timeout: 1s}
sources:
  a: {kind: local, trust_env: false}
  b: {kind: process, inherit_env: false}
targets:
  open: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
  closed: {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
  scan: {kind: tcp, host: 127.0.0.1, ports: ["${CLOSED}", "${HTTP}"]}
"""


def ports(lab: LoopbackLab) -> dict[str, str]:
    v = lab.variables()
    return {
        "HTTP": v["PE_DEMO_HTTP_PORT"],
        "CLOSED": v["PE_DEMO_CLOSED_PORT"],
        "BACKLOG": v["PE_DEMO_BACKLOG_PORT"],
    }


def test_public_api_is_exactly_what_all_lists() -> None:
    exported = {name for name in dir(probe_engine) if not name.startswith("_")} - {
        "agent",
        "cli",
        "demo",
        "diagnose",
        "engine",
        "errors",
        "plan",
        "reports",
        "results",
        "sources",
        "spec",
        "status",
        "targets",
        "integrations",
        "invariants",
        "wait",
        "annotations",
    }
    assert exported == set(probe_engine.__all__) - {"__version__"}


def test_every_source_crosses_every_column_and_ports_become_columns(loopback: LoopbackLab) -> None:
    result = run_text(TWO_BY_THREE, ports(loopback))
    closed, http = ports(loopback)["CLOSED"], ports(loopback)["HTTP"]
    assert result.rows() == ["a", "b"]
    assert result.columns() == ["open", "closed", f"scan:{closed}", f"scan:{http}"]
    assert [c.status for c in result.cells if c.source == "b"] == ["ok", "refused", "refused", "ok"]
    assert result.summary.total == 8
    assert result.summary.by_status == {"ok": 4, "refused": 4}


def test_exclude_cells_and_select_narrow_the_matrix(loopback: LoopbackLab) -> None:
    text = TWO_BY_THREE + "exclude: [{source: b, target: scan}]\n"
    result = run_text(text, ports(loopback), select=Selection.parse("target=*o*"))
    assert sorted((c.source, c.target) for c in result.cells) == [
        ("a", "closed"),
        ("a", "open"),
        ("b", "closed"),
        ("b", "open"),
    ]
    only = run_text(TWO_BY_THREE + "cells: [{source: a, target: open}]\n", ports(loopback))
    assert [(c.source, c.target) for c in only.cells] == [("a", "open")]


def test_select_rejects_nonsense() -> None:
    with pytest.raises(SpecError, match="--select"):
        Selection.parse("src=a")


def test_the_last_matching_expectation_wins(loopback: LoopbackLab) -> None:
    text = (
        TWO_BY_THREE
        + """
expect:
  - {status: ok}
  - {target: closed, status: refused}
  - {source: b, target: "scan", status: [ok, refused]}
"""
    )
    result = run_text(text, ports(loopback))
    closed = ports(loopback)["CLOSED"]
    assert cell(result, "a", "closed").met is True
    assert cell(result, "a", f"scan:{closed}").expected == ["ok"]
    assert cell(result, "a", f"scan:{closed}").met is False
    assert cell(result, "b", f"scan:{closed}").met is True
    assert result.summary.expectations.unmet == 1
    assert result.exit_status == 1


def test_fail_on_decides_the_exit_status(loopback: LoopbackLab) -> None:
    assert run_text(TWO_BY_THREE, ports(loopback)).exit_status == 0  # no expectations: unmet=0
    assert run_text(TWO_BY_THREE, ports(loopback), fail_on="any-failure").exit_status == 1
    text = TWO_BY_THREE + "expect: [{target: open, status: refused}]\n"
    assert run_text(text, ports(loopback), fail_on="never").exit_status == 0


def test_a_run_deadline_cancels_what_is_left(loopback: LoopbackLab) -> None:
    text = """
defaults: {timeout: 5s, deadline: 700ms}
sources: {a: {kind: local}, b: {kind: process, inherit_env: false}}
targets:
  stuck: {kind: tcp, host: 127.0.0.1, port: "${BACKLOG}"}
  closed: {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
"""
    result = run_text(text, ports(loopback))
    # Cancelled, not timed out: the run's deadline came before the cells' 5 s.
    assert cell(result, "a", "stuck").status == "cancelled"
    assert cell(result, "b", "stuck").status == "cancelled"
    assert cell(result, "a", "closed").status == "refused"
    assert not result.interrupted


def test_a_process_source_that_cannot_start_is_a_source_error_row(loopback: LoopbackLab) -> None:
    text = TWO_BY_THREE.replace(
        "b: {kind: process, inherit_env: false}", "b: {kind: process, python: /nonexistent/python3}"
    )
    result = run_text(text, ports(loopback))
    broken = cell(result, "b", "open")
    assert broken.status == "source-error"
    assert "/nonexistent/python3" in (broken.message or "")
    assert cell(result, "a", "open").status == "ok"


def test_an_agent_that_dies_mid_run_marks_only_its_unanswered_cells(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    # A fake interpreter that answers nothing and exits 3 with a message on stderr.
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho 'agent exploded' >&2\nexit 3\n")
    fake.chmod(0o755)
    text = TWO_BY_THREE.replace(
        "b: {kind: process, inherit_env: false}", f"b: {{kind: process, python: {fake}}}"
    )
    result = run_text(text, ports(loopback))
    broken = cell(result, "b", "closed")
    assert broken.status == "source-error"
    assert broken.message == "the agent exited with status 3: agent exploded"


def test_many_cells_share_one_lookup_and_finish_within_the_timeout(loopback: LoopbackLab) -> None:
    text = """
defaults: {timeout: 1s, concurrency: 2000}
sources: {a: {kind: local}}
targets: {many: {kind: tcp, host: localhost, family: ipv4, ports: ["20000-21999"]}}
"""
    result = run_text(text)
    assert result.summary.total == 2000
    assert set(result.summary.by_status) <= {"ok", "refused"}


def test_ctrl_c_cancels_writes_reports_and_exits_130(tmp_path: Path, loopback: LoopbackLab) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        """
defaults: {timeout: 30s}
sources: {a: {kind: local}, b: {kind: process, inherit_env: false}, c: {kind: shell, tool: bash}}
targets:
  stuck: {kind: tcp, host: 127.0.0.1, port: "${BACKLOG}"}
  closed: {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
"""
    )
    env = os.environ | ports(loopback)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "probe_engine",
            "run",
            str(matrix),
            "--out",
            str(tmp_path / "out"),
            "--output",
            "none",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The sources start together: once their children run (however slow the machine is to
    # start the CLI), the local source's refused cell is answered a moment later.
    children = _wait_for(lambda: _children(process.pid), 30.0)
    assert children, "the process and shell sources should have started children"
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=15)
    assert process.returncode == 130, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["interrupted"] is True
    statuses = {(c["source"], c["target"]): c["status"] for c in report["cells"]}
    assert statuses[("a", "stuck")] == "cancelled"
    assert statuses[("a", "closed")] == "refused"
    left = _wait_for(lambda: [pid for pid in children if _alive(pid)] or None, 5.0, until_none=True)
    assert not left, "children must not outlive the run"


def _wait_for(
    probe: Callable[[], list[int] | None], seconds: float, until_none: bool = False
) -> list[int] | None:
    """Poll `probe` every 50 ms, bounded: its first truthy answer (or, with `until_none`, the
    last answer once it turns empty or the time is up)."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if (not found) if until_none else found:
            return found
        if time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found + [g for c in found for g in _children(c)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
