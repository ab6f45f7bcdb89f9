"""Rule "tls-trust": the same https target verifies for one source and not for another, and
their clients trust different CAs: say which CAs each loaded, and the variable that hands the
failing client the CA that works ("curl works, requests fails on our corporate CA").

The facts are the cells' own `tls` records (the CA source each client used, the verify error),
so the finding rests on the path, never on the tool's name alone.
"""

from __future__ import annotations

from ..results import CellResult, MatrixResult, TlsInfo
from .cause import Cause, cause
from .cells import index

RULE = "tls-trust"

# The variable that hands each client a CA bundle (words/clients.py says what each one ignores).
CA_VARIABLE = {
    "requests": "REQUESTS_CA_BUNDLE",
    "httpx": "SSL_CERT_FILE",
    "urllib": "SSL_CERT_FILE",
    "curl": "CURL_CA_BUNDLE",
}


def _refused_chain(cell: CellResult) -> bool:
    return (
        cell.status == "tls-error" and cell.tls is not None and cell.tls.verify is True
    ) and bool(cell.tls.verify_error or "certificate" in (cell.checks[-1].message or "").lower())


def bundle(tls: TlsInfo) -> str | None:
    """The path of the CA file or directory a working client was given by a variable."""
    first = tls.ca.removeprefix("curl: ").split(",")[0].strip()
    name, equals, path = first.partition("=")
    return path.split(" ")[0] if equals and name.isupper() else None


def tls_trust(result: MatrixResult) -> list[Cause]:
    """One cause per failing source, naming the CAs on both sides."""
    groups: dict[str, list[tuple[CellResult, CellResult]]] = {}
    cells_of = index(result)
    refused = {c.target for c in cells_of.with_status("tls-error")}
    # A chain refused where another source's client verified it, or nothing.
    for column in cells_of.in_order(refused & cells_of.ok_columns.keys()):
        cells = cells_of.columns[column]
        trusted = [c for c in cells_of.ok_columns[column] if c.tls and c.tls.verify]
        for cell in cells:
            if trusted and _refused_chain(cell):
                assert cell.tls is not None
                other = next((t for t in trusted if t.tls and t.tls.ca != cell.tls.ca), None)
                if other is not None:
                    groups.setdefault(cell.source, []).append((cell, other))
    return [_cause(source, pairs) for source, pairs in groups.items()]


def _cause(source: str, pairs: list[tuple[CellResult, CellResult]]) -> Cause:
    failed, good = pairs[0]
    assert failed.tls is not None
    assert good.tls is not None
    client = failed.tls.client
    variable = CA_VARIABLE.get(client, "SSL_CERT_FILE")
    return cause(
        RULE,
        source,
        [f for f, _ in pairs],
        [g for _, g in pairs],
        facts={
            "client": client,
            "ca": {source: failed.tls.ca, good.source: good.tls.ca},
            "verify_error": failed.tls.verify_error,
            "fix_variable": variable,
            "bundle": bundle(good.tls),
            "targets": [f.target for f, _ in pairs],
        },
    )
