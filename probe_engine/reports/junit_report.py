"""report.xml: JUnit XML for CI test reports: a testsuite per row, a testcase per cell.

A cell fails when it misses its expectation (and, with --fail-on any-failure, when it has none
and is not ok). Findings come first, as the system-out of a "findings" suite. A scan (a target
with more columns than view.GROUP_AT) is one testcase per row, failing with its failing ports
listed: CI pages show thousands of testcases as a list nobody reads.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter

from ..agent.address import hostport
from ..results import CellResult, MatrixResult
from .view import cell_label, cell_reason, column_groups, grid

# Characters XML 1.0 cannot carry even escaped (ElementTree writes them raw, and the file no
# longer parses): a tool's ANSI colours or a NUL in a message must not break the CI report.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _make_xml_safe(root: ET.Element) -> None:
    for element in root.iter():
        if element.text:
            element.text = _xml_text(element.text)
        for key, value in element.attrib.items():
            element.attrib[key] = _xml_text(value)


def _is_failure(cell: CellResult, fail_on: str) -> bool:
    if fail_on == "never":
        return False
    if cell.met is False:
        return True
    return fail_on == "any-failure" and cell.met is None and cell.status != "ok"


def _proxy_words(cell: CellResult) -> str:
    proxy = cell.proxy
    if proxy is None or not proxy.used:
        return "none"
    return f"used {proxy.url} from {proxy.variable}"


def _details(cell: CellResult) -> str:
    lines = [f"endpoint: {cell.endpoint}", f"status: {cell.status}"]
    if cell.proxy is not None:
        lines.append(f"proxy: {_proxy_words(cell)} ({cell.proxy.client} rules)")
    for check in cell.checks:
        parts: list[str] = [check.name, check.status]
        if check.address:
            parts.append(hostport(check.address, check.port))
        if check.errno_name:
            parts.append(check.errno_name)
        if check.http_status:
            parts.append(str(check.http_status))
        parts.append(f"{check.duration_ms:.1f} ms")
        if check.message:
            parts.append(f"- {check.message}")
        lines.append("check: " + " ".join(parts))
    if cell.message:
        lines.append(f"message: {cell.message}")
    return "\n".join(lines)


def _cell_case(suite: ET.Element, row: str, cell: CellResult, fail_on: str) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"probe-engine.{row}",
        name=cell.target,
        time=f"{cell.duration_ms / 1000.0:.3f}",
    )
    if _is_failure(cell, fail_on):
        wanted = ", ".join(cell.expected) if cell.expected else "ok"
        failure = ET.SubElement(
            case, "failure", message=f"expected {wanted}, got {cell_label(cell)}", type=cell.status
        )
        failure.text = cell_reason(cell)
    ET.SubElement(case, "system-out").text = _details(cell)


def _scan_case(
    suite: ET.Element, row: str, target: str, cells: list[CellResult], fail_on: str
) -> int:
    """One testcase for a row's cells of a scanned target; the number of failing cells."""
    failing = [c for c in cells if _is_failure(c, fail_on)]
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"probe-engine.{row}",
        name=target,
        time=f"{sum(c.duration_ms for c in cells) / 1000.0:.3f}",
    )
    counted = Counter(c.status for c in cells)
    counts = ", ".join(f"{status} {n}" for status, n in counted.most_common())
    if failing:
        failure = ET.SubElement(
            case,
            "failure",
            message=f"{len(failing)} of {len(cells)} cells differ from their expectation",
            type=failing[0].status,
        )
        failure.text = "\n".join(
            f"{c.endpoint}: expected {', '.join(c.expected or ['ok'])}, got {cell_label(c)}"
            for c in failing
        )
    ok = [c.endpoint for c in cells if c.status == "ok"]
    out = [f"{len(cells)} cells: {counts}"]
    if ok:
        out.append("ok: " + ", ".join(ok))
    ET.SubElement(case, "system-out").text = "\n".join(out)
    return len(failing)


def render_junit(result: MatrixResult) -> bytes:
    suites = ET.Element(
        "testsuites",
        name="probe-engine",
        tests=str(len(result.cells)),
        time=f"{result.duration_s:.3f}",
    )
    findings = ET.SubElement(
        suites, "testsuite", name="findings", tests="0", failures="0", errors="0", time="0"
    )
    ET.SubElement(findings, "system-out").text = (
        "\n\n".join(
            f"[{f.severity}] {f.title}\n{f.detail}\nNext: {f.next_step}" for f in result.findings
        )
        or "No findings."
    )
    failures_total = 0
    by_row: dict[str, list[CellResult]] = {}
    for cell in result.cells:
        by_row.setdefault(cell.source, []).append(cell)
    view = grid(result)
    folded = {c: g for g in column_groups(result, view) if g.folded for c in g.columns}
    tests_total = 0
    for row in view.rows:
        cells = by_row.get(row, [])
        suite = ET.SubElement(
            suites, "testsuite", name=row, tests="0", failures="0", errors="0", time="0"
        )
        failures = tests = 0
        scans: dict[int, list[CellResult]] = {}
        for cell in cells:
            group = folded.get(cell.target)
            if group is None:
                _cell_case(suite, row, cell, result.fail_on)
                tests += 1
                failures += _is_failure(cell, result.fail_on)
            elif group.index not in scans:
                scans[group.index] = [c for c in cells if folded.get(c.target) is group]
                failed = _scan_case(suite, row, group.name, scans[group.index], result.fail_on)
                failures += failed > 0
                tests += 1
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("time", f"{sum(c.duration_ms for c in cells) / 1000.0:.3f}")
        failures_total += failures
        tests_total += tests
    suites.set("tests", str(tests_total))
    suites.set("failures", str(failures_total))
    _make_xml_safe(suites)
    ET.indent(suites)
    body: bytes = ET.tostring(suites, encoding="utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"
