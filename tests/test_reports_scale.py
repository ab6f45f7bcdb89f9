"""Reports of a scan: a target with many ports is told as one group per row, not one line per
port (the HTML's folded groups are tested in headless Chromium, tests/test_reports_html.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.reports import markdown_report
from probe_engine.reports.junit_report import render_junit
from probe_engine.reports.markdown_report import fit, render_markdown
from probe_engine.reports.view import GROUP_AT
from probe_engine.results import MatrixResult

from .conftest import run_text


def scan(loopback: LoopbackLab) -> MatrixResult:
    """Two sources over 25 ports expected closed (one listens), and that port apart, expected
    open: 52 real cells on the loopback."""
    closed = [p for p in range(loopback.closed_port - 12, loopback.closed_port + 12) if p > 1024]
    ports = ", ".join(str(p) for p in closed if p != loopback.http_port)
    return run_text(
        f"""
version: 1
sources: {{a: {{kind: local}}, b: {{kind: local}}}}
targets:
  scan: {{kind: tcp, host: 127.0.0.1, ports: [{loopback.http_port}, {ports}]}}
  web: {{kind: tcp, host: 127.0.0.1, port: {loopback.http_port}}}
expect:
  - {{source: "*", target: scan, status: [refused, timeout]}}
  - {{source: "*", target: web, status: ok}}
""",
        timeout=2.0,
    )


def test_junit_makes_a_scan_one_testcase_per_row_listing_its_failing_ports(
    loopback: LoopbackLab,
) -> None:
    """Ports expected closed: the listening one fails the row's one testcase, named in it;
    a lone port beside the scan keeps a testcase of its own."""
    result = scan(loopback)
    scan_cells = [c for c in result.cells if c.target_name == "scan"]
    assert len(scan_cells) > 2 * GROUP_AT
    root = ET.fromstring(render_junit(result))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    for row in ("a", "b"):
        cases = {c.get("name"): c for c in suites[row].iter("testcase")}
        assert sorted(cases) == ["scan", "web"]
        assert cases["web"].find("failure") is None
        failure = cases["scan"].find("failure")
        assert failure is not None
        unmet = [c for c in scan_cells if c.source == row and c.met is False]
        assert f"127.0.0.1:{loopback.http_port}: expected refused, timeout, got ok" in (
            failure.text or ""
        )
        assert len((failure.text or "").splitlines()) == len(unmet)
        assert failure.get("message") == (
            f"{len(unmet)} of {len(scan_cells) // 2} cells differ from their expectation"
        )
        out = cases["scan"].findtext("system-out") or ""
        assert out.startswith(f"{len(scan_cells) // 2} cells: ")
        assert f"ok: 127.0.0.1:{loopback.http_port}" in out
        assert suites[row].get("tests") == "2"
        assert suites[row].get("failures") == "1"
    assert root.get("tests") == "4"
    assert root.get("failures") == "2"


def test_markdown_makes_a_scan_one_column_of_counts_and_caps_the_unmet_table(
    loopback: LoopbackLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = scan(loopback)
    text = render_markdown(result).decode()
    header = next(line for line in text.splitlines() if line.startswith("| source"))
    columns = len([c for c in result.cells if c.target_name == "scan"]) // 2
    assert header == f"| source \\ target | scan ({columns} columns) | web |"
    for row in ("a", "b"):
        line = next(line for line in text.splitlines() if line.startswith(f"| **{row}** |"))
        scanned = [c for c in result.cells if c.source == row and c.target_name == "scan"]
        refused = sum(c.status == "refused" for c in scanned)
        unmet = sum(c.met is False for c in scanned)
        assert f"⛔ refused {refused}" in line
        assert f"❗ {unmet} unmet" in line
        assert line.endswith("| ✅ ok |")  # the lone port keeps its own column

    unmet_cells = [c for c in result.cells if c.met is False]
    monkeypatch.setattr(markdown_report, "UNMET_ROWS", 1)
    text = render_markdown(result).decode()
    assert f"…and {len(unmet_cells) - 1} more unmet cells" in text


def test_a_markdown_summary_over_github_s_limit_is_cut_at_a_line_with_a_note() -> None:
    lines = b"".join(b"| row %d | x |\n" % i for i in range(200_000))
    cut = fit(lines)
    assert len(cut) <= 1024 * 1024
    assert cut.endswith(b"every cell is in report.json and report.html.\n")
    body = cut[: cut.index(b"\n\n> **Cut here**")]
    assert lines.startswith(body + b"\n")  # whole lines only
    assert fit(b"short\n") == b"short\n"
