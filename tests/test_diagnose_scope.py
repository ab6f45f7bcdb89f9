"""Diagnosis of whole rows and columns, on real loopback runs: a source that cannot run, a source
whose every cell fails while another source works, a target that fails from every source; a
healthy matrix raises no alarm, and a row-level finding is not repeated cell by cell."""

from __future__ import annotations

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.diagnose import diagnose
from probe_engine.diagnose.grammar import ended
from probe_engine.results import Finding, MatrixResult

from .conftest import run_text
from .golden import check_golden, ports


def env(lab: LoopbackLab) -> dict[str, str]:
    v = lab.variables()
    return {
        "HTTP": v["PE_DEMO_HTTP_PORT"],
        "CLOSED": v["PE_DEMO_CLOSED_PORT"],
        "PROXY": v["PE_DEMO_PROXY_PORT"],
        "BACKLOG": v["PE_DEMO_BACKLOG_PORT"],
    }


def alarms(result: MatrixResult) -> list[Finding]:
    return [f for f in result.findings if f.severity in ("warning", "error")]


def cited(finding: Finding) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in finding.evidence}


def by_rule(result: MatrixResult, rule: str) -> list[Finding]:
    return [f for f in result.findings if f.rule == rule]


def test_a_healthy_matrix_has_no_findings(loopback: LoopbackLab) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources:
          here: {kind: local, trust_env: false}
          task: {kind: process, inherit_env: false}
        targets:
          api: {kind: http, url: "http://127.0.0.1:${HTTP}/health", expect_status: [200]}
          api-port: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
        """,
        env(loopback),
    )
    assert {c.status for c in result.cells} == {"ok"}
    assert result.findings == []


def test_declared_failures_without_contradiction_are_only_explained(
    loopback: LoopbackLab,
) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources:
          here: {kind: local, trust_env: false}
          task: {kind: process, inherit_env: false}
        targets:
          api: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
          db: {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
        expect:
          - {target: api, status: ok}
          - {target: db, status: refused}
        """,
        env(loopback),
    )
    assert alarms(result) == []
    [finding] = result.findings
    assert (finding.rule, finding.severity) == ("target-down", "info")


def test_a_target_refused_from_every_source_is_one_column_finding(loopback: LoopbackLab) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources:
          here: {kind: local, trust_env: false}
          task: {kind: process, inherit_env: false}
        targets:
          api: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
          db: {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
        """,
        env(loopback),
    )
    [finding] = result.findings
    port = env(loopback)["CLOSED"]
    assert finding.rule == "target-down"
    assert finding.severity == "warning"  # nobody declared it, nobody reaches it
    assert cited(finding) == {("here", "db"), ("task", "db")}
    assert f"db fails from both sources: refused (ECONNREFUSED) at 127.0.0.1:{port}" == (
        finding.title
    )
    assert "nothing listens on that port" in finding.detail
    assert "reach other targets" in finding.detail
    check_golden(finding, "target-down", ports(loopback))
    assert f"127.0.0.1:{port}" in finding.next_step


def test_an_unmet_expectation_makes_the_column_finding_an_error(loopback: LoopbackLab) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources: {here: {kind: local}}
        targets:
          api: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
          db: {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
        expect: [{status: ok}]
        """,
        env(loopback),
    )
    [finding] = result.findings
    assert (finding.rule, finding.severity) == ("target-down", "error")


def test_the_ports_of_one_target_failing_alike_make_one_finding(loopback: LoopbackLab) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources: {here: {kind: local}}
        targets:
          scan: {kind: tcp, host: 127.0.0.1, ports: ["${HTTP}", "${CLOSED}", "${PROXY}"]}
        """,
        env(loopback),
    )
    v = env(loopback)
    [finding] = result.findings
    assert finding.rule == "target-down"
    assert finding.facts["columns"] == [f"scan:{v['CLOSED']}", f"scan:{v['PROXY']}"]
    closed = sorted([int(v["CLOSED"]), int(v["PROXY"])])
    assert finding.title == f"2 ports closed on 127.0.0.1 from here; open: {v['HTTP']}"
    assert finding.facts["scan"] == {
        "host": "127.0.0.1",
        "failing_ports": 2,
        "open_ports": [int(v["HTTP"])],
    }
    assert f"refused (ECONNREFUSED) on ports {closed[0]} and {closed[1]}" in finding.detail
    # Two closed ports: which is lower, or whether they are neighbours, is chance.
    closed_names = {**ports(loopback), v["PROXY"]: "CLOSED_PORT"}
    check_golden(
        finding,
        "target-down-scan",
        closed_names,
        {"CLOSED_PORT-CLOSED_PORT": "CLOSED_PORT and CLOSED_PORT"},
    )


def test_a_quoted_message_keeps_one_full_stop() -> None:
    # The scheduler's message ends in "scheduling."; the detail must not read "scheduling..".
    assert ended("1 node(s) were unschedulable. Preemption is not helpful for scheduling.") == (
        "1 node(s) were unschedulable. Preemption is not helpful for scheduling."
    )
    assert ended("cannot start /nonexistent/python3") == "cannot start /nonexistent/python3."


def test_a_source_that_cannot_run_is_one_row_finding(loopback: LoopbackLab) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources:
          here: {kind: local}
          broken: {kind: process, python: /nonexistent/python3}
        targets:
          api: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
          db: {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
        """,
        env(loopback),
    )
    [row] = by_rule(result, "source-down")
    assert row.severity == "warning"  # undeclared, and no cell of it says anything
    assert cited(row) == {("broken", "api"), ("broken", "db")}
    assert row.title.startswith("broken could not run its probes: cannot start /nonexistent")
    assert "interpreter" in row.next_step
    check_golden(row, "source-down-could-not-run", ports(loopback))
    # Its cells are not explained again one by one; db still fails from `here`.
    for finding in result.findings:
        if finding is not row:
            assert not cited(finding) & cited(row)
    [column] = by_rule(result, "target-down")
    assert cited(column) == {("here", "db")}
    assert result.findings[0] is row  # the most severe first


def test_a_row_failing_everything_through_a_dead_proxy_is_one_row_finding(
    loopback: LoopbackLab,
) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources:
          here: {kind: local, trust_env: false}
          task:
            kind: process
            inherit_env: false
            env: {HTTP_PROXY: "http://127.0.0.1:${PROXY}"}
        targets:
          api: {kind: http, url: "http://127.0.0.1:${HTTP}/health"}
          api-ready: {kind: http, url: "http://127.0.0.1:${HTTP}/health/ready"}
        """,
        env(loopback),
    )
    [finding] = alarms(result)
    assert finding.rule == "source-down"
    assert finding.severity == "error"
    assert (
        finding.title == "Everything from task fails (2 cells) while here reaches the same targets"
    )
    assert f"HTTP_PROXY=http://127.0.0.1:{env(loopback)['PROXY']}" in finding.detail
    assert "proxy-error (ECONNREFUSED)" in finding.detail
    assert "NO_PROXY is not set" in finding.detail
    assert cited(finding) == {
        ("task", "api"),
        ("task", "api-ready"),
        ("here", "api"),
        ("here", "api-ready"),
    }
    assert "HTTP_PROXY" in finding.next_step
    check_golden(finding, "source-down", ports(loopback))
    # proxy-differs would say the same about the same cells: it is not repeated.
    assert by_rule(result, "proxy-differs") == []


def test_diagnose_is_the_entry_point_and_is_repeatable(loopback: LoopbackLab) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources: {here: {kind: local}}
        targets: {db: {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}}
        """,
        env(loopback),
    )
    assert diagnose(result) == result.findings
    # Findings survive report.json and back (render re-reads them).
    again = MatrixResult.model_validate_json(result.model_dump_json())
    assert diagnose(again) == result.findings
