"""Every human format tells an expected failure from a surprising one, and keeps a scan's
findings small: on real loopback runs, the grid marks a met `refused` (✓) apart from an
undeclared one, and a finding over 40 closed ports cites 8 cells and counts the rest, in
report.json, the Markdown, the HTML and the terminal alike."""

from __future__ import annotations

import json
import re

from rich.console import Console

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.reports.html_report import render_html
from probe_engine.reports.junit_report import render_junit
from probe_engine.reports.markdown_report import render_markdown
from probe_engine.reports.terminal import findings_text, print_result
from probe_engine.results import MatrixResult

from .conftest import cell, run_text


def declared_and_not(lab: LoopbackLab) -> MatrixResult:
    """db refused and declared so; cache refused and nobody said anything."""
    return run_text(
        """
        defaults: {timeout: 1s}
        sources: {here: {kind: local}}
        targets:
          api: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
          db: {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
          cache: {kind: tcp, host: 127.0.0.1, port: "${PROXY}"}
        expect:
          - {target: api, status: ok}
          - {target: db, status: refused}
        """,
        {
            "HTTP": str(lab.http_port),
            "CLOSED": str(lab.closed_port),
            "PROXY": str(lab.dead_proxy_port),
        },
    )


def terminal(result: MatrixResult) -> str:
    console = Console(width=120, record=True, force_terminal=False)
    print_result(console, result)
    return console.export_text()


def test_an_expected_failure_is_marked_apart_in_every_grid(loopback: LoopbackLab) -> None:
    result = declared_and_not(loopback)
    assert (cell(result, "here", "db").met, cell(result, "here", "cache").met) == (True, None)
    html = render_html(result).decode()
    db = re.search(r'<td data-status="refused"[^>]*data-expectation="expected">', html)
    cache = re.search(r'<td data-status="refused"[^>]*data-expectation="unexpected">', html)
    assert db and cache, "the two refusals must differ in the HTML grid"
    table = html[html.index('<table class="grid"') : html.index("</table>")]  # not the script
    assert table.count("✓ expected") == 1 and table.count("not declared") == 1
    markdown = render_markdown(result).decode()
    assert "⛔ refused ECONNREFUSED ✓ |" in markdown  # db
    assert "⛔ refused ECONNREFUSED |" in markdown  # cache: no mark
    text = terminal(result)
    assert "refused ECONNREFUSED ✓" in text
    assert re.search(r"refused ECONNREFUSED\s+│", text)  # cache, unmarked
    # Severity follows the same expectations: cache warns, db only explains.
    by_target = {e.target: f.severity for f in result.findings for e in f.evidence}
    assert by_target["cache"] == "warning"
    assert by_target.get("db", "info") == "info"


def test_a_scan_cites_a_few_cells_and_counts_them_all(loopback: LoopbackLab) -> None:
    low = loopback.closed_port
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources: {here: {kind: local}, there: {kind: local}}
        targets:
          api: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
          scan: {kind: tcp, host: 127.0.0.1, ports: ["${CLOSED}", "${PROXY}"]}
        """,
        {
            "HTTP": str(loopback.http_port),
            "CLOSED": str(low),
            "PROXY": str(loopback.dead_proxy_port),
        },
    )
    [finding] = [f for f in result.findings if f.rule == "target-down"]
    assert (finding.evidence_total, finding.failing_total, len(finding.evidence)) == (4, 4, 4)
    assert finding.title.startswith("2 ports closed on 127.0.0.1 from both sources")


def test_evidence_is_capped_in_every_format(loopback: LoopbackLab) -> None:
    """40 closed targets on one host from one row: one finding, 8 cells cited, 40 counted."""
    closed = [loopback.closed_port, loopback.dead_proxy_port]
    targets = "\n".join(
        f"          t{i}: {{kind: tcp, host: 127.0.0.1, port: {closed[i % 2]}}}" for i in range(40)
    )
    result = run_text(
        f"""
        defaults: {{timeout: 1s}}
        sources: {{here: {{kind: local}}}}
        targets:
          api: {{kind: tcp, host: 127.0.0.1, port: {loopback.http_port}}}
{targets}
        """
    )
    [finding] = [f for f in result.findings if f.rule == "target-down"]
    assert (finding.evidence_total, len(finding.evidence)) == (40, 8)
    document = json.loads(result.model_dump_json())
    [written] = [f for f in document["findings"] if f["rule"] == "target-down"]
    assert (written["evidence_total"], written["failing_total"]) == (40, 40)
    assert len(written["evidence"]) == 8
    assert "and 32 more cells" in render_markdown(result).decode()
    assert "and 32 more cells" in render_html(result).decode()
    assert len(finding.facts["columns"]) == 20 and finding.facts["columns_total"] == 40
    # The terminal and JUnit print the words, not the evidence: a summary, not 40 columns.
    console = Console(width=120, record=True, force_terminal=False)
    console.print(findings_text(result))
    junit = render_junit(result).decode().split("</system-out>")[0]
    for text in (console.export_text(), junit):
        assert "2 ports closed on 127.0.0.1 from here" in text
        assert len(set(re.findall(r"\bt\d+\b", text))) <= 8, text
