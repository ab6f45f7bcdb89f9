"""The diagnosis as a whole: one registry, one entry point, a rule's bug never costs a run its
report, and odd or partial facts (other source kinds, older or newer writers) break nothing."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any

import pytest

from probe_engine import diagnose as diagnosis
from probe_engine.diagnose import RULES, diagnose
from probe_engine.results import (
    CellResult,
    CheckRecord,
    Expectations,
    Finding,
    MatrixRef,
    MatrixResult,
    SourceInfo,
    Summary,
    TargetInfo,
)


def matrix(
    cells: list[CellResult],
    sources: list[SourceInfo] | None = None,
    targets: list[TargetInfo] | None = None,
) -> MatrixResult:
    now = datetime.now(UTC)
    return MatrixResult(
        tool_version="test",
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        matrix=MatrixRef(path="odd.yaml", sha256=""),
        summary=Summary(total=len(cells), by_status={}, expectations=Expectations()),
        sources=sources or [],
        targets=targets or [],
        cells=cells,
    )


def make(source: str, target: str, status: str, **fields: Any) -> CellResult:
    return CellResult.model_validate(
        {
            "source": source,
            "source_name": source.split("/", maxsplit=1)[0],
            "target": target,
            "target_name": target.split("/", maxsplit=1)[0],
            "endpoint": fields.pop("endpoint", "10.0.0.1:80"),
            "status": status,
            **fields,
        }
    )


def test_every_rule_is_registered_under_the_name_it_reports() -> None:
    for name, rule in RULES.items():
        source = inspect.getsource(inspect.getmodule(rule))  # type: ignore[arg-type]
        reported = f'rule="{name}"' in source or f'RULE = "{name}"' in source
        assert reported, f"{name} is registered but never reported"
    assert diagnosis.__all__ == ["RULES", "Rule", "diagnose"]


def test_a_failing_rule_is_reported_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(result: MatrixResult) -> list[Finding]:
        raise KeyError("surprise")

    monkeypatch.setitem(RULES, "broken", broken)
    result = matrix([make("a", "db", "refused", endpoint="10.0.0.2:5432"), make("a", "api", "ok")])
    findings = diagnose(result)
    assert [f.rule for f in findings] == ["target-down", "broken"]
    failed = findings[1]
    assert failed.severity == "info"
    assert "KeyError" in failed.detail


def test_odd_and_partial_facts_break_no_rule() -> None:
    garbage: dict[str, Any] = {
        "netns": 12,
        "routes": "not a list",
        "addresses": 5,
        "proxy_env": "HTTP_PROXY=x",
        "resolv_conf": [],
        "networks": {"minikube": {}},
        "default_route": "maybe",
    }
    odd_facts: dict[str, Any] = {
        "ports": "80",
        "network_policies": "deny-all",
        "ready": "many",
        "not_ready": None,
        "selector": "app=api",
        "endpoints": [1, 2],
    }
    cells = [
        make("a", "api/cluster-ip", "timeout"),
        make("a", "api/endpoints", "ok"),
        make("a", "api/dns", "dns-error", checks=[{"name": "dns", "status": "dns-error"}]),
        make("b", "api/cluster-ip", "ok", checks=[{"name": "tcp", "status": "ok"}]),
        make("b", "api/endpoints", "cancelled"),
        make("b", "api/dns", "target-error", message="no such Service"),
        make("c/pod-1", "db", "source-error", message="container is not running"),
        make("c/pod-1", "api/cluster-ip", "source-error"),
        make(
            "a",
            "web",
            "proxy-error",
            endpoint="http://[::1]:8080/x",
            proxy={"client": "httpx", "used": True, "url": "http://p:1", "variable": "http_proxy"},
            checks=[
                CheckRecord(name="tcp", status="proxy-error", address="p", role="proxy"),
                CheckRecord(name="tcp", status="ok", address="::1", port=8080),
            ],
        ),
        make("b", "web", "ok", endpoint="http://[::1]:8080/x"),
        make("a", "weird", "refused", endpoint="not an endpoint at all :::"),
        make("b", "weird", "ok", endpoint="not an endpoint at all :::"),
    ]
    sources = [
        SourceInfo(name="a", source_name="a", kind="docker", facts=garbage),
        SourceInfo(name="b", source_name="b", kind="process", facts={}),
        SourceInfo(name="c/pod-1", source_name="c", kind="kubernetes", status="error"),
    ]
    targets = [
        TargetInfo(
            name=f"api/{via}",
            target_name="api",
            kind="kubernetes-service",
            endpoint="x",
            via=via,
            facts=odd_facts,
        )
        for via in ("cluster-ip", "endpoints", "dns")
    ]
    findings = diagnose(matrix(cells, sources, targets))
    assert findings, "something failed and something worked: there is something to say"
    broken = [f for f in findings if f.title.startswith("The diagnosis rule")]
    assert broken == []
    for finding in findings:
        assert finding.next_step and "\n" not in finding.next_step
        assert finding.evidence


def test_an_empty_result_has_nothing_to_explain() -> None:
    assert diagnose(matrix([])) == []
