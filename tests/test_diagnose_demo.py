"""The demo's own matrix (probe_engine/demo/matrix.yaml) on the real loopback fixtures, as a new
user meets it: with its expectations every finding only explains, and without them the
findings count sources exactly and never contradict their titles (the faults issue #14 saw:
"fails from every source" above "it fails differently by source", "all see" for two
sources, "every source" when 2 of 4 probed it, a declared failure that still warned)."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.results import Finding, MatrixResult

from .conftest import cell, run_text

DEMO = (Path(__file__).resolve().parents[1] / "probe_engine/demo/matrix.yaml").read_text()


@pytest.fixture(scope="module")
def declared(loopback: LoopbackLab) -> MatrixResult:
    return run_text(DEMO, loopback.variables())


@pytest.fixture(scope="module")
def undeclared(loopback: LoopbackLab) -> MatrixResult:
    """The demo without its `expect:` section: nothing says which failures are wanted."""
    return run_text(DEMO.split("\nexpect:", 1)[0] + "\n", loopback.variables())


def about(result: MatrixResult, target: str) -> Finding:
    [found] = [
        f for f in result.findings if f.rule == "target-down" and f.facts["target"] == target
    ]
    return found


def test_with_every_expectation_met_nothing_warns(declared: MatrixResult) -> None:
    assert declared.exit_status == 0
    assert all(c.status == "ok" or c.met is True for c in declared.cells)
    assert [f.severity for f in declared.findings] == ["info"] * len(declared.findings)
    # The declared proxy failure is explained, not shouted as a row that fails everything.
    assert "proxy-differs" in {f.rule for f in declared.findings}
    assert not [f for f in declared.findings if f.rule == "source-down"]


def test_without_expectations_severity_says_what_is_wrong(undeclared: MatrixResult) -> None:
    severities = {f.rule: f.severity for f in undeclared.findings if f.rule != "target-down"}
    assert severities == {"proxy-differs": "error"}  # another path works: fixable
    down = {f.facts["target"]: f.severity for f in undeclared.findings if f.rule == "target-down"}
    assert down == dict.fromkeys(
        ["api-broken", "db", "overloaded", "hanging-api", "flaky-api", "typo-dns"], "warning"
    )


def test_a_column_a_proxy_stopped_one_row_from_is_not_said_to_fail_differently(
    undeclared: MatrixResult,
) -> None:
    assert cell(undeclared, "task-python", "api-broken").status == "proxy-error"
    finding = about(undeclared, "api-broken")
    assert finding.title.startswith(
        "api-broken fails from all 3 sources that probed it: http-error (HTTP 500) at "
    )
    assert finding.detail.startswith(
        "From scheduler-curl, task-python-fixed and worker-bash: http-error (HTTP 500). Why: "
    )
    assert "task-python did not reach it: its proxy failed first (proxy-error)." in finding.detail
    assert "differently" not in finding.detail
    assert {e.source for e in finding.evidence} == {
        "scheduler-curl",
        "task-python-fixed",
        "worker-bash",
    }


def test_counts_are_exact_and_each_source_is_named_once(undeclared: MatrixResult) -> None:
    # Two of the four rows probe typo-dns (the others are excluded): never "every source".
    typo = about(undeclared, "typo-dns")
    assert typo.title.startswith("typo-dns fails from both sources that probed it: dns-error")
    assert typo.detail.startswith("From task-python and task-python-fixed: dns-error (NXDOMAIN).")
    db = about(undeclared, "db")
    assert db.title.startswith("db fails from all 4 sources: refused (ECONNREFUSED) at ")
    for finding in undeclared.findings:
        assert " all see " not in finding.detail, finding.detail
        assert "every source" not in finding.title, finding.title
        for source in ("scheduler-curl", "task-python-fixed", "worker-bash"):
            first_sentence = finding.detail.split(". ")[0]
            assert first_sentence.count(source) <= 1, finding.detail
