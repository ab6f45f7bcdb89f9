"""The report formats told from one hand-written result (tests/data/reports/result.json).

The result holds every status, two unmet expectations, a proxy with a redacted password,
findings of each severity, a fanned-out row (workers/pod-1) and names and messages with
`<script>`, `&`, `|`, quotes, unicode and control characters.

Markdown and JUnit are compared with golden files. After a deliberate change to a renderer,
regenerate them and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_reports_formats.py -k golden
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import get_args

import pytest
from markdown_it import MarkdownIt
from prometheus_client.parser import text_string_to_metric_families

import probe_engine
from probe_engine.metrics import ONE_SHOT_FAMILIES
from probe_engine.reports import REPORTERS
from probe_engine.reports.html_report import STATUS_COLOUR
from probe_engine.reports.json_report import render_json
from probe_engine.reports.junit_report import render_junit
from probe_engine.reports.markdown_report import md_code, md_prose, md_text, render_markdown
from probe_engine.reports.prometheus_report import render_prometheus
from probe_engine.reports.terminal import STYLE
from probe_engine.reports.view import STATUS_SYMBOL, grid
from probe_engine.results import MatrixResult
from probe_engine.status import Status

DATA = Path(__file__).parent / "data" / "reports"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")

# The cells of result.json that miss their expectation, and those without one that are not ok.
UNMET = {
    ("scheduler-curl", "web/node-port"),
    ('task-python <script>alert("row")</script>', "api"),
}
NOT_OK_WITHOUT_EXPECTATION = {
    ('task-python <script>alert("row")</script>', "db|primary"),
    ("workers/pod-1", "api"),
    ("workers/pod-1", "db|primary"),
    ("workers/pod-1", "web/node-port"),
    ("büro-☃ & 'quoted'", "api"),
    ("büro-☃ & 'quoted'", "db|primary"),
}


@pytest.fixture(scope="module")
def result() -> MatrixResult:
    return MatrixResult.model_validate_json((DATA / "result.json").read_bytes())


def assert_golden(name: str, actual: bytes) -> None:
    golden = DATA / name
    if UPDATE_GOLDEN:
        golden.write_bytes(actual)
    assert golden.exists(), f"{golden} missing: run with UPDATE_GOLDEN=1 to create it"
    expected = golden.read_bytes()
    assert actual.decode() == expected.decode(), (
        f"{name} differs from the golden file; if the change is intended, regenerate with "
        "UPDATE_GOLDEN=1 and review the diff"
    )


# --- the fixture itself ---------------------------------------------------------------------


def test_the_fixture_covers_every_status_and_agrees_with_its_summary(
    result: MatrixResult,
) -> None:
    statuses = [c.status for c in result.cells]
    assert set(statuses) == set(get_args(Status))
    assert result.summary.total == len(result.cells)
    assert result.summary.by_status == {s: statuses.count(s) for s in set(statuses)}
    e = result.summary.expectations
    assert (e.met, e.unmet, e.none) == (
        sum(c.met is True for c in result.cells),
        sum(c.met is False for c in result.cells),
        sum(c.met is None for c in result.cells),
    )
    assert {(c.source, c.target) for c in result.cells if c.met is False} == UNMET
    assert {f.severity for f in result.findings} == {"error", "warning", "info"}


def test_every_status_has_a_colour_a_symbol_and_a_terminal_style() -> None:
    statuses = set(get_args(Status))
    assert set(STATUS_COLOUR) == statuses
    assert set(STATUS_SYMBOL) == statuses
    assert set(STYLE) == statuses


def _contrast_with_white(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (luminance + 0.05)


@pytest.mark.parametrize("status", list(STATUS_COLOUR))
def test_html_status_colours_are_readable_under_white_text(status: str) -> None:
    assert _contrast_with_white(STATUS_COLOUR[status]) >= 4.5  # WCAG AA for normal text


def test_no_two_statuses_share_a_colour() -> None:
    assert len(set(STATUS_COLOUR.values())) == len(STATUS_COLOUR)


# --- JSON -----------------------------------------------------------------------------------

# The result contract of issue 2: these names are kept; new ones may be added.
CONTRACT_TOP = {
    "schema_version",
    "started_at",
    "finished_at",
    "duration_s",
    "matrix",
    "summary",
    "cells",
    "findings",
}
CONTRACT_SUMMARY = {"total", "by_status", "expectations"}
CONTRACT_EXPECTATIONS = {"met", "unmet"}
CONTRACT_CELL = {
    "source",
    "target",
    "status",
    "expected",
    "met",
    "duration_ms",
    "proxy",
    "checks",
}
CONTRACT_CHECK = {
    "name",
    "status",
    "errno",
    "errno_name",
    "message",
    "address",
    "family",
    "port",
    "duration_ms",
    "http_status",
}

# Every key written today: a rename or removal breaks readers, so it must show up here.
TOP_KEYS = CONTRACT_TOP | {
    "tool_version",
    "interrupted",
    "exit_status",
    "fail_on",
    "sources",
    "targets",
    "run_id",
}
CELL_KEYS = CONTRACT_CELL | {
    "source_name",
    "target_name",
    "endpoint",
    "started_at",
    "message",
    "tool",
    "tls",
    "server_log",  # kubernetes-service targets with evidence.pod_logs (tests/test_pod_logs.py)
}
CHECK_KEYS = CONTRACT_CHECK | {
    "host",
    "addresses",
    "resolver",
    "reason",
    "source_address",
    "role",
    "url",
    "client",
    "peer",
    "timings",
    # icmp and udp checks, and a chosen source
    "method",
    "reasons",
    "sent",
    "received",
    "loss_percent",
    "rtt_ms",
    "icmp",
    "icmp_type",
    "icmp_code",
    "icmp_from",
    "sent_bytes",
    "received_bytes",
    "bind",
    "user_agent",
}
PROXY_KEYS = {
    "client",
    "used",
    "url",
    "variable",
    "no_proxy_variable",
    "no_proxy_match",
    "ignored",
    "rules",
    "error",
}
FINDING_KEYS = {
    "rule",
    "severity",
    "title",
    "detail",
    "evidence",
    "next_step",
    "facts",
    "evidence_total",
    "failing_total",
}


def test_json_round_trips_through_the_model(result: MatrixResult) -> None:
    text = render_json(result)
    again = MatrixResult.model_validate_json(text)
    assert again == result
    assert render_json(again) == text


def test_json_keeps_the_contract_key_names(result: MatrixResult) -> None:
    import json

    data = json.loads(render_json(result))
    assert data["schema_version"] == 1
    assert set(data) >= CONTRACT_TOP
    assert set(data) == TOP_KEYS
    assert set(data["matrix"]) == {"path", "sha256"}
    assert set(data["summary"]) >= CONTRACT_SUMMARY
    assert set(data["summary"]["expectations"]) >= CONTRACT_EXPECTATIONS
    for cell in data["cells"]:
        assert set(cell) >= CONTRACT_CELL
        assert set(cell) == CELL_KEYS
        for check in cell["checks"]:
            assert set(check) >= CONTRACT_CHECK
            assert set(check) == CHECK_KEYS
            assert check["family"] in (None, "ipv4", "ipv6")
        if cell["proxy"] is not None:
            assert set(cell["proxy"]) == PROXY_KEYS
    for finding in data["findings"]:
        assert set(finding) == FINDING_KEYS


def test_json_shows_the_proxy_password_redacted(result: MatrixResult) -> None:
    text = render_json(result).decode()
    assert '"url": "http://alice:***@127.0.0.1:3128"' in text


# --- Markdown -------------------------------------------------------------------------------


def test_markdown_matches_golden(result: MatrixResult) -> None:
    assert_golden("golden.md", render_markdown(result))


def _markdown_html(text: str) -> str:
    # CommonMark plus GFM tables: what GitHub does to a step summary, minus its sanitiser.
    html: str = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(text)
    return html


def test_markdown_renders_names_and_messages_literally(result: MatrixResult) -> None:
    html = _markdown_html(render_markdown(result).decode())
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(&quot;row&quot;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "büro-☃ &amp; 'quoted'" in html
    assert "HTTP_PROXY=http://alice:***@127.0.0.1:3128" in html
    assert "<code>configs/story &amp; &lt;lab&gt;.yaml</code>" in html
    # A diagnosis's `command` stays a code span.
    assert "<code>iptables -S | grep 30080</code>" in html


def test_markdown_tables_keep_their_shape(result: MatrixResult) -> None:
    html = _markdown_html(render_markdown(result).decode())
    tables = re.findall(r"<table>.*?</table>", html, flags=re.S)
    assert len(tables) == 2
    view = grid(result)
    matrix_rows = re.findall(r"<tr>(.*?)</tr>", tables[0], flags=re.S)
    assert len(matrix_rows) == 1 + len(view.rows)
    for row in matrix_rows:  # a `|` in "db|primary" or a message does not add a column
        assert len(re.findall(r"<t[hd]", row)) == 1 + len(view.columns)
    assert "<th>db|primary</th>" in tables[0]
    unmet_rows = re.findall(r"<tr>(.*?)</tr>", tables[1], flags=re.S)[1:]
    assert len(unmet_rows) == len(UNMET)
    assert all(len(re.findall(r"<td", row)) == 5 for row in unmet_rows)


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain words", "plain words"),
        ("a|b", "a\\|b"),
        ("<b>&amp;</b>", "\\<b\\>\\&amp;\\</b\\>"),
        ("*not bold* _nor this_ ~x~", "\\*not bold\\* \\_nor this\\_ \\~x\\~"),
        ("[link](http://x)", "\\[link\\](http://x)"),
        ("`code`", "\\`code\\`"),
        ("back\\slash", "back\\\\slash"),
        ("# not a heading", "\\# not a heading"),
        ("- not a list", "\\- not a list"),
        ("12. not a list", "12\\. not a list"),
        ("> not a quote", "\\> not a quote"),
        ("one\r\ntwo\nthree\rfour", "one two three four"),
        ("Zürich 東京 🚀", "Zürich 東京 🚀"),
    ],
)
def test_markdown_text_escaping(text: str, escaped: str) -> None:
    assert md_text(text) == escaped


@pytest.mark.parametrize(
    ("text", "markdown"),
    [
        ("run `ss -ltnp` there", "run `ss -ltnp` there"),
        ("# `a|b` <i>", "\\# `a|b` \\<i\\>"),
        ("`x` then *y*", "`x` then \\*y\\*"),
        ("a lone ` tick", "a lone \\` tick"),
    ],
)
def test_markdown_prose_keeps_code_spans_and_escapes_the_rest(text: str, markdown: str) -> None:
    assert md_prose(text) == markdown


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("configs/a.yaml", "`configs/a.yaml`"),
        ("a`b", "``a`b``"),
        ("`edge`", "`` `edge` ``"),
    ],
)
def test_markdown_code_spans_hold_any_text(text: str, span: str) -> None:
    assert md_code(text) == span
    html = _markdown_html(span)
    assert f"<code>{text}</code>" in html


def test_markdown_cuts_long_reasons_without_breaking_the_table(result: MatrixResult) -> None:
    long = "x|" * 200
    cells = [
        c.model_copy(update={"message": long, "checks": []}) if c.met is False else c
        for c in result.cells
    ]
    text = render_markdown(result.model_copy(update={"cells": cells})).decode()
    rows = [line for line in text.splitlines() if line.startswith("| scheduler-curl |")]
    assert len(rows) == 1
    assert rows[0].endswith("… |")
    assert len(re.findall(r"(?<!\\)\|", rows[0])) == 6


# --- JUnit ----------------------------------------------------------------------------------


def test_junit_matches_golden(result: MatrixResult) -> None:
    assert_golden("golden.xml", render_junit(result))


def _cases(xml: bytes) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(xml)
    cases: dict[tuple[str, str], ET.Element] = {}
    for suite in root.iter("testsuite"):
        for case in suite.iter("testcase"):
            key = (suite.get("name", ""), case.get("name", ""))
            assert key not in cases, f"two testcases for {key}"
            assert case.get("classname") == f"probe-engine.{key[0]}"
            cases[key] = case
    return cases


def _failed(cases: dict[tuple[str, str], ET.Element]) -> set[tuple[str, str]]:
    return {key for key, case in cases.items() if case.find("failure") is not None}


def test_junit_has_one_testcase_per_cell_and_fails_exactly_the_unmet(
    result: MatrixResult,
) -> None:
    xml = render_junit(result)
    cases = _cases(xml)
    assert set(cases) == {(c.source, c.target) for c in result.cells}
    assert _failed(cases) == UNMET
    root = ET.fromstring(xml)
    assert root.get("tests") == str(len(result.cells))
    assert root.get("failures") == str(len(UNMET))
    failure = cases[("scheduler-curl", "web/node-port")].find("failure")
    assert failure is not None
    assert failure.get("message") == "expected ok, got timeout ETIMEDOUT"
    assert failure.get("type") == "timeout"
    assert failure.text == "no answer within 2.0 s"


def test_junit_with_any_failure_also_fails_non_ok_cells_without_expectation(
    result: MatrixResult,
) -> None:
    xml = render_junit(result.model_copy(update={"fail_on": "any-failure"}))
    cases = _cases(xml)
    assert _failed(cases) == UNMET | NOT_OK_WITHOUT_EXPECTATION
    root = ET.fromstring(xml)
    assert root.get("failures") == str(len(UNMET | NOT_OK_WITHOUT_EXPECTATION))
    for suite in root.iter("testsuite"):
        assert suite.get("failures") == str(
            sum(case.find("failure") is not None for case in suite.iter("testcase"))
        )


def test_junit_with_fail_on_never_has_no_failures(result: MatrixResult) -> None:
    cases = _cases(render_junit(result.model_copy(update={"fail_on": "never"})))
    assert _failed(cases) == set()


def test_junit_findings_are_the_system_out_of_the_first_suite(result: MatrixResult) -> None:
    root = ET.fromstring(render_junit(result))
    first = root.find("testsuite")
    assert first is not None
    assert first.get("name") == "findings"
    assert first.find("testcase") is None
    out = first.findtext("system-out") or ""
    for finding in result.findings:
        assert f"[{finding.severity}] {finding.title}" in out
        assert finding.next_step in out


def test_junit_carries_awkward_text_and_control_characters_as_valid_xml(
    result: MatrixResult,
) -> None:
    cases = _cases(render_junit(result))  # parses: a raw ESC or NUL would not
    case = cases[('task-python <script>alert("row")</script>', "api")]
    failure = case.find("failure")
    assert failure is not None
    assert "<script>alert('msg')</script> & | \"q\"" in (failure.text or "")
    out = cases[("workers/pod-1", "db|primary")].findtext("system-out") or ""
    assert 'container "probe" not found \\x1b[31mERR\\x1b[0m\\x00' in out


# --- Prometheus -----------------------------------------------------------------------------


def test_prometheus_writes_the_shared_families_with_stable_label_sets(
    result: MatrixResult,
) -> None:
    text = render_prometheus(result).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    cells = {(c.source, c.target): c for c in result.cells}
    # Every name is probe-engine's own (no clash with blackbox_exporter's probe_success).
    assert all(name.startswith("probe_engine_") for name in families)
    assert {f.sample_name for f in ONE_SHOT_FAMILIES} <= set(families)

    # The status is a state set: one series per status of the closed set, exactly one at 1.
    states = families["probe_engine_cell_status"].samples
    assert len(states) == len(result.cells) * len(get_args(Status))
    for key, cell in cells.items():
        mine = {
            s.labels["status"]: s.value
            for s in states
            if (s.labels["source"], s.labels["target"]) == key
        }
        assert set(mine) == set(get_args(Status))
        assert [status for status, value in mine.items() if value == 1.0] == [cell.status]
    assert {frozenset(s.labels) for s in states} == {frozenset({"source", "target", "status"})}

    # What failed is an info series: one per cell, value 1.
    errno = families["probe_engine_cell_errno_info"]
    by_cell = {(s.labels["source"], s.labels["target"]): s for s in errno.samples}
    assert set(by_cell) == set(cells)
    refused = by_cell[("scheduler-curl", "db|primary")]
    assert refused.labels["errno"] == "ECONNREFUSED" and refused.labels["phase"] == "tcp"
    assert refused.value == 1.0
    ok = by_cell[("scheduler-curl", "api")]
    assert (ok.labels["errno"], ok.labels["phase"]) == ("", "")

    durations = families["probe_engine_cell_duration_seconds"].samples
    assert {(s.labels["source"], s.labels["target"]): s.value for s in durations} == {
        key: pytest.approx(c.duration_ms / 1000.0) for key, c in cells.items()
    }
    phases = {
        (s.labels["source"], s.labels["target"], s.labels["phase"]): s.value
        for s in families["probe_engine_cell_phase_duration_seconds"].samples
    }
    assert phases[("scheduler-curl", "api", "http")] == pytest.approx(0.0119)
    assert phases[("scheduler-curl", "api", "tcp")] == pytest.approx(0.0004)
    assert ("scheduler-curl", "api", "dns") not in phases  # an address: no lookup ran

    met = families["probe_engine_cell_expectation_met"].samples
    assert {(s.labels["source"], s.labels["target"]): s.value for s in met} == {
        (c.source, c.target): float(c.met) for c in result.cells if c.met is not None
    }
    assert families["probe_engine_last_run_timestamp_seconds"].samples[0].value == (
        result.finished_at.timestamp()
    )
    assert families["probe_engine_run_duration_seconds"].samples[0].value == result.duration_s
    # This run missed expectations: no success to report.
    assert families["probe_engine_last_success_timestamp_seconds"].samples == []
    findings = {s.labels["severity"]: s.value for s in families["probe_engine_findings"].samples}
    assert findings == {
        severity: float(sum(1 for f in result.findings if f.severity == severity))
        for severity in ("error", "warning", "info")
    }
    # The version of the probe-engine that wrote the file.
    assert (
        families["probe_engine_build_info"].samples[0].labels["version"] == probe_engine.__version__
    )


# --- every format ---------------------------------------------------------------------------


def test_a_row_the_result_does_not_list_still_gets_reported(result: MatrixResult) -> None:
    # An older or hand-edited report.json may list fewer sources than its cells use.
    partial = result.model_copy(
        update={"sources": [s for s in result.sources if s.name != "workers/pod-1"]}
    )
    assert len(_cases(render_junit(partial))) == len(result.cells)
    assert "**workers/pod-1**" in render_markdown(partial).decode()
    assert render_markdown(partial).count(b"\n| **") == len(grid(result).rows)
    from probe_engine.reports.html_report import render_html

    assert render_html(partial).count(b'<button type="button" class="cell ') == len(result.cells)


@pytest.mark.parametrize("fmt", list(REPORTERS))
def test_every_format_renders_the_fixture_deterministically(result: MatrixResult, fmt: str) -> None:
    render, _extension = REPORTERS[fmt]
    assert render(result) == render(result)
