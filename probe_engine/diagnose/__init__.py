"""Explains a run: rules compare cells and say, in plain words, why one path works and another
does not. Each rule is a function `rule(result) -> list[Finding]`, registered in RULES."""

from __future__ import annotations

from collections.abc import Callable

from ..results import Finding, MatrixResult
from .proxy import proxy_differs

Rule = Callable[[MatrixResult], list[Finding]]

RULES: dict[str, Rule] = {
    "proxy-differs": proxy_differs,
}

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def diagnose(result: MatrixResult) -> list[Finding]:
    """Every rule's findings, most severe first."""
    findings: list[Finding] = []
    for rule in RULES.values():
        findings.extend(rule(result))
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])
