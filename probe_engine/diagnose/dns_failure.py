"""Rule "dns-failure": what a failed lookup means: NXDOMAIN (the name does not exist), no answer
(EAI_AGAIN: the resolver is unreachable), or no address of the asked family. A fallback: the
broader rules usually explain these cells first."""

from __future__ import annotations

from ..results import CellResult, CheckRecord, Finding, MatrixResult
from .cells import by_target, evidence, first_failure
from .phrasing import DNS_REASONS, dns_meaning, dns_next_step, listing
from .severity import severity


def dns_failure(result: MatrixResult) -> list[Finding]:
    """One finding per column and failure reason, for lookups no broader rule explained."""
    findings = []
    for column, cells in by_target(result).items():
        groups: dict[str, list[tuple[CellResult, CheckRecord]]] = {}
        for cell in cells:
            failed = first_failure(cell)
            if failed is not None and failed.name == "dns" and failed.role != "proxy":
                groups.setdefault(failed.reason or failed.status, []).append((cell, failed))
        for reason, items in groups.items():
            cell, record = items[0]
            sources = [c.source for c, _ in items]
            code = record.errno_name or reason
            findings.append(
                Finding(
                    rule="dns-failure",
                    severity=severity([c for c, _ in items], contradiction=False),
                    title=f"{column}: {record.host} {DNS_REASONS.get(reason, 'fails')} ({code})",
                    detail=f"From {listing(sources)}: {dns_meaning(record)}.",
                    evidence=evidence(c for c, _ in items),
                    next_step=dns_next_step(record),
                    facts={
                        "name": record.host,
                        "reason": reason,
                        "code": code,
                        "resolver": record.resolver,
                    },
                )
            )
    return findings
