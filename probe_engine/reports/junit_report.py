"""report.xml: JUnit XML for CI test reports: a testsuite per row, a testcase per cell.

A cell fails when it misses its expectation (and, with --fail-on any-failure, when it has none
and is not ok). Findings come first, as the system-out of a "findings" suite.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..agent.address import hostport
from ..results import CellResult, MatrixResult
from .view import cell_label, cell_reason, grid

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
    for row in grid(result).rows:
        cells = by_row.get(row, [])
        failures = sum(1 for c in cells if _is_failure(c, result.fail_on))
        failures_total += failures
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=row,
            tests=str(len(cells)),
            failures=str(failures),
            errors="0",
            time=f"{sum(c.duration_ms for c in cells) / 1000.0:.3f}",
        )
        for cell in cells:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"probe-engine.{row}",
                name=cell.target,
                time=f"{cell.duration_ms / 1000.0:.3f}",
            )
            if _is_failure(cell, result.fail_on):
                wanted = ", ".join(cell.expected) if cell.expected else "ok"
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"expected {wanted}, got {cell_label(cell)}",
                    type=cell.status,
                )
                failure.text = cell_reason(cell)
            ET.SubElement(case, "system-out").text = _details(cell)
    suites.set("failures", str(failures_total))
    _make_xml_safe(suites)
    ET.indent(suites)
    body: bytes = ET.tostring(suites, encoding="utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"
