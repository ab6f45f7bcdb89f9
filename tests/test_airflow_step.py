"""The diagnostics step behind the Airflow operator, run here without Airflow: what it logs,
writes and pushes, and that probe_engine never imports Airflow unless asked to."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.errors import SpecError
from probe_engine.integrations._runner import run_blocking
from probe_engine.integrations.diagnostics import run_step, working_endpoint


def story(lab: LoopbackLab) -> dict[str, Any]:
    """The task and a proxied child: the API's NodePort is closed, its ClusterIP answers."""
    return {
        "sources": {
            "task": {"kind": "local"},
            "task-proxied": {
                "kind": "process",
                "env": {"HTTP_PROXY": f"http://127.0.0.1:{lab.dead_proxy_port}", "NO_PROXY": ""},
            },
        },
        "targets": {
            "api-nodeport": {"kind": "http", "url": f"http://127.0.0.1:{lab.closed_port}/health"},
            "api-clusterip": {"kind": "http", "url": f"http://127.0.0.1:{lab.http_port}/health"},
        },
        "expect": [{"source": "task", "target": "api-clusterip", "status": "ok"}],
    }


def test_the_step_writes_reports_and_sums_up_what_worked_from_this_process(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    outcome = run_step(story(loopback), report_dir=tmp_path, formats=["json", "markdown"])
    assert outcome.verdict == "pass"
    payload = outcome.payload
    json.dumps(payload)  # XCom needs plain JSON
    assert payload["passed"] is True
    assert payload["summary"]["total"] == 4
    # `working` is the local rows' view: what a later task in a process like this one can use.
    assert payload["working_from"] == ["task"]
    assert payload["working"] == {
        "api-clusterip": [f"http://127.0.0.1:{loopback.http_port}/health"]
    }
    assert "task-proxied" not in payload["working_by_source"]
    assert (
        working_endpoint(payload, "api-clusterip")
        == f"http://127.0.0.1:{loopback.http_port}/health"
    )
    assert working_endpoint(payload, "api-nodeport") is None
    assert payload["reports"] == {
        "json": str(tmp_path / "report.json"),
        "markdown": str(tmp_path / "report.md"),
    }
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["summary"] == payload["summary"]
    # The findings travel as rule, severity and title; the diagnosis itself is diagnose's.
    assert payload["findings"] == [
        {"rule": f["rule"], "severity": f["severity"], "title": f["title"]}
        for f in saved["findings"]
    ]
    assert payload["findings"]
    # The log text: findings, grid and verdict, with no colour codes and no trailing blanks.
    assert "\x1b[" not in outcome.text
    assert "reachability" in outcome.text
    assert "PASS" in outcome.text
    assert all(line == line.rstrip() for line in outcome.text.splitlines())


def test_a_format_named_twice_is_written_once(tmp_path: Path, loopback: LoopbackLab) -> None:
    outcome = run_step(story(loopback), report_dir=tmp_path, formats=["json", "html", "json"])
    assert outcome.reports == {
        "json": str(tmp_path / "report.json"),
        "html": str(tmp_path / "report.html"),
    }


def test_an_unmet_expectation_fails_the_step_and_says_which_cell(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    matrix = story(loopback)
    matrix["expect"].append({"source": "task", "target": "api-nodeport", "status": "ok"})
    outcome = run_step(matrix, report_dir=tmp_path, formats=["html"])
    assert outcome.verdict == "fail"
    assert outcome.payload["unmet"] == [
        {
            "source": "task",
            "target": "api-nodeport",
            "endpoint": f"http://127.0.0.1:{loopback.closed_port}/health",
            "status": "refused",
            "expected": ["ok"],
        }
    ]
    message = outcome.failure_message()
    assert (
        message.splitlines()[0] == "probe matrix failed (exit 1, fail_on=unmet): 1 of 4 cells unmet"
    )
    assert (
        f"task -> api-nodeport (http://127.0.0.1:{loopback.closed_port}/health): refused, expected ok"
        in message
    )
    assert f"report: {tmp_path / 'report.html'}" in message


def test_fail_on_decides_the_verdict(loopback: LoopbackLab) -> None:
    matrix = story(loopback)
    assert run_step(matrix, fail_on="unmet").verdict == "pass"
    strict = run_step(matrix, fail_on="any-failure")
    assert strict.verdict == "fail"
    assert "task -> api-nodeport" in strict.failure_message()
    matrix["expect"] = [{"target": "*", "status": "ok"}]
    assert run_step(matrix, fail_on="never").verdict == "pass"


def test_a_matrix_file_select_and_timeout(tmp_path: Path, loopback: LoopbackLab) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "sources: {task: {kind: local}}\n"
        "targets:\n"
        "  slow: {kind: tcp, host: 127.0.0.1, port: '${BACKLOG}'}\n"
        "  api: {kind: tcp, host: 127.0.0.1, port: '${HTTP}'}\n"
    )
    environ = {"BACKLOG": str(loopback.backlog.port), "HTTP": str(loopback.http_port)}
    outcome = run_step(path, timeout="300ms", environ=environ)
    assert outcome.result.summary.by_status == {"timeout": 1, "ok": 1}
    slow = next(c for c in outcome.result.cells if c.target == "slow")
    assert "within 0.3s" in (slow.checks[-1].message or ""), slow  # the step's timeout ruled
    only = run_step(path, select="target=api", environ=environ)
    assert [c.target for c in only.result.cells] == ["api"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"fail_on": "sometimes"},
            "probe-engine: fail_on: 'sometimes' is not one of unmet, any-failure, never",
        ),
        (
            {"formats": ["pdf"]},
            "probe-engine: formats: unknown format pdf (choose from json, html, junit, markdown, prometheus)",
        ),
        (
            {"timeout": "soon"},
            "probe-engine: timeout: 'soon' is not a duration: use ms, s, m or h (500ms, 2s, 1m30s, 1h) or a number of seconds",
        ),
        (
            {"select": "pod=x"},
            "probe-engine: --select: 'pod=x' is not source=GLOB or target=GLOB",
        ),
    ],
)
def test_bad_options_are_spec_errors(
    options: dict[str, Any], message: str, loopback: LoopbackLab
) -> None:
    with pytest.raises(SpecError) as caught:
        run_step(story(loopback), **options)
    assert str(caught.value) == message


def test_the_step_runs_even_when_called_from_inside_an_event_loop(loopback: LoopbackLab) -> None:
    # anyio.run refuses to nest; the runner moves the run to a thread of its own then.
    async def inside() -> str:
        await asyncio.sleep(0)
        return run_step(story(loopback)).verdict

    assert asyncio.run(inside()) == "pass"
    assert anyio.run(partial(asyncio.sleep, 0, result="plain")) == "plain"
    assert run_blocking(partial(asyncio.sleep, 0, result="no loop")) == "no loop"


def test_importing_probe_engine_never_imports_airflow() -> None:
    code = (
        "import sys, probe_engine, probe_engine.cli, probe_engine.wait, "
        "probe_engine.integrations, probe_engine.integrations.diagnostics; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert run.stdout.strip() == "[]"


def test_the_airflow_module_explains_a_missing_airflow() -> None:
    code = "import probe_engine.integrations.airflow"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    try:
        import airflow  # noqa: F401
    except ImportError:
        assert run.returncode == 1
        assert "needs Apache Airflow 2.10 or 3 in this environment" in run.stderr
    else:  # pragma: no cover - an environment with Airflow installed
        assert run.returncode == 0, run.stderr


def test_a_rendered_matrix_file_is_read_from_its_text_and_named_by_its_path(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    from probe_engine.integrations.diagnostics import RenderedMatrix

    text = (
        "sources: {task: {kind: local}}\n"
        f"targets: {{api: {{kind: http, url: 'http://127.0.0.1:{loopback.http_port}/health'}}}}\n"
    )
    outcome = run_step(
        RenderedMatrix(text, "dags/matrix.yaml"),
        report_dir=tmp_path,
        formats=["json", "html"],
        report_url="https://reports.example.test/run-1/",
    )
    assert outcome.payload["report_url"] == "https://reports.example.test/run-1/report.html"
    assert outcome.result.matrix.path == "dags/matrix.yaml"
    # Without an HTML report there is nothing to link to.
    json_only = run_step(
        RenderedMatrix(text, "m.yaml"),
        report_dir=tmp_path,
        formats=["json"],
        report_url="https://reports.example.test/run-1",
    )
    assert json_only.payload["report_url"] is None
    with pytest.raises(SpecError, match=r"^dags/bad.yaml:1:1: sources: required"):
        run_step(RenderedMatrix("targets: {}\n", "dags/bad.yaml"))
