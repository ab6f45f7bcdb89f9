"""Partial facts survive interruption, and a cut run is never a pass.

A cell cut by the run's deadline keeps the phases it finished and the one it was in, for how
long ("tcp connected 1 ms, http waiting 1502 ms"); a finding names the phase where cells hung;
the summary says "incomplete: N cells cut by the deadline"; the exit status is 1 unless
--fail-on never, expectations or not.
"""

from __future__ import annotations

import json
from pathlib import Path

from probe_engine.demo.fixtures import LoopbackLab

from .conftest import cell, run_text
from .golden import check_golden, ports
from .test_cli import probe_engine

MATRIX = """
defaults: {timeout: 20s}
sources: {here: {kind: local, trust_env: false}}
targets:
  hanging-api: {kind: http, url: "http://127.0.0.1:${HANG}/health"}
  overloaded:  {kind: tcp, host: 127.0.0.1, port: "${BACKLOG}"}
  db:          {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
expect:
  - {source: here, target: hanging-api, status: ok}
"""


def environ(loopback: LoopbackLab) -> dict[str, str]:
    return {
        "HANG": str(loopback.hanging.port),
        "BACKLOG": str(loopback.backlog.port),
        "CLOSED": str(loopback.closed_port),
    }


def test_a_cut_cell_keeps_the_phases_it_finished_and_the_one_it_was_in(
    loopback: LoopbackLab,
) -> None:
    result = run_text(MATRIX, environ(loopback), deadline=1.5)
    hung = cell(result, "here", "hanging-api")
    assert hung.status == "cancelled"
    assert [(c.name, c.status) for c in hung.checks] == [("tcp", "ok"), ("http", "cancelled")]
    assert hung.checks[-1].duration_ms > 500  # it had been waiting since the connect
    assert hung.message is not None
    assert hung.message.startswith("the run's deadline passed before this cell finished: tcp ")
    assert " ms, http waiting " in hung.message
    connecting = cell(result, "here", "overloaded")
    assert [(c.name, c.status) for c in connecting.checks] == [("tcp", "cancelled")]
    assert cell(result, "here", "db").status == "refused"  # finished before the cut: kept


def test_a_finding_names_the_phase_where_cells_hung(loopback: LoopbackLab) -> None:
    result = run_text(MATRIX, environ(loopback), deadline=1.5)
    by_phase = {f.facts["phase"]: f for f in result.findings if f.rule == "cut-short"}
    assert set(by_phase) == {"http", "tcp"}
    http = by_phase["http"]
    assert http.title == "1 cell was cut while waiting for the HTTP answer: hanging-api"
    check_golden(http, "cut-short", ports(loopback))
    assert http.severity == "error"  # its expectation (ok) is unmet
    assert by_phase["tcp"].severity == "warning"


def test_a_cut_run_is_incomplete_and_never_passes(loopback: LoopbackLab) -> None:
    result = run_text(MATRIX, environ(loopback), deadline=1.5)
    assert (result.summary.incomplete, result.summary.cut_by) == (2, "deadline")
    assert result.summary.incomplete_words() == "incomplete: 2 cells cut by the deadline"
    assert cell(result, "here", "hanging-api").met is False
    assert result.exit_status == 1
    never = run_text(MATRIX, environ(loopback), deadline=1.5, fail_on="never")
    assert never.exit_status == 0


def test_the_command_line_says_incomplete_and_exits_1(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    """The issue's case: --deadline 1ms on 20 s cells, no expectations, was 'PASS', exit 0."""
    matrix = tmp_path / "m.yaml"
    text = MATRIX.split("expect:", maxsplit=1)[0]
    for name, value in environ(loopback).items():
        text = text.replace("${" + name + "}", value)
    matrix.write_text(text)
    run = probe_engine(
        "run", str(matrix), "--deadline", "1ms", "--out", str(tmp_path / "r"), "--no-progress"
    )
    assert run.returncode == 1, run.stderr
    assert "INCOMPLETE (exit 1)" in run.stdout
    assert "incomplete: 3 cells cut by the deadline" in run.stdout
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["summary"]["incomplete"] == 3
    assert "PASS" not in run.stdout


def test_a_child_agent_cut_by_the_deadline_says_where_its_cells_were(
    loopback: LoopbackLab,
) -> None:
    """The process source's agent is stopped (SIGTERM) when the run is cut; it reports each
    cell in flight before it exits, and those last lines are read."""
    text = MATRIX.replace(
        "sources: {here: {kind: local, trust_env: false}}",
        "sources: {child: {kind: process, inherit_env: false}}",
    ).replace("source: here", "source: child")
    # Time for a child interpreter to start on a loaded machine, then it waits in HTTP.
    result = run_text(text, environ(loopback), deadline=6.0)
    hung = cell(result, "child", "hanging-api")
    assert hung.status == "cancelled"
    assert [(c.name, c.status) for c in hung.checks] == [("tcp", "ok"), ("http", "cancelled")]
    assert hung.message is not None and "http waiting" in hung.message


def test_a_run_cut_while_its_targets_resolve_counts_every_cell_cancelled(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    """The deadline comes while a kubernetes-service target is still being looked up (its API
    server accepts and never answers): no cell was known yet, and the run used to say 'PASS 0
    cells', exit 0. Now every cell is cancelled and the run exits 1."""
    from tests.kubelab.kubeconfig import write_kubeconfig

    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", f"http://127.0.0.1:{loopback.hanging.port}"
    )
    text = (
        f"kubernetes: {{kubeconfig: '{kubeconfig}', timeout: 20s}}\n"
        "sources: {here: {kind: local, trust_env: false}, there: {kind: local}}\n"
        "targets:\n"
        "  api: {kind: kubernetes-service, service: api, via: [cluster-ip]}\n"
        f"  db: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}\n"
    )
    result = run_text(text, deadline=0.5)
    assert result.exit_status == 1
    assert result.summary.total == 4 and result.summary.incomplete == 4
    assert result.summary.incomplete_words() == "incomplete: 4 cells cut by the deadline"
    assert {(c.source, c.target, c.status) for c in result.cells} == {
        (s, t, "cancelled") for s in ("here", "there") for t in ("api", "db")
    }
