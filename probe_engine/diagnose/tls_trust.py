"""Rule "tls-trust": the same https target verifies for one source and not for another, and
their clients trust different CAs: say which CAs each loaded, and the variable that hands the
failing client the CA that works ("curl works, requests fails on our corporate CA").

The facts are the cells' own `tls` records (the CA source each client used, the verify error),
so the finding rests on the path, never on the tool's name alone.
"""

from __future__ import annotations

from ..results import CellResult, Finding, MatrixResult, TlsInfo
from .cells import by_target, evidence
from .phrasing import listing
from .severity import severity

# The variable each client reads for its CAs, and what it ignores (requests never reads
# SSL_CERT_FILE; urllib and httpx never read REQUESTS_CA_BUNDLE).
FIXES: dict[str, tuple[str, str]] = {
    "requests": (
        "REQUESTS_CA_BUNDLE",
        "requests trusts certifi's bundle unless REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) names "
        "a file or directory; it ignores SSL_CERT_FILE and SSL_CERT_DIR",
    ),
    "httpx": (
        "SSL_CERT_FILE",
        "httpx trusts certifi's bundle unless SSL_CERT_FILE (or SSL_CERT_DIR) is set; it "
        "ignores REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE",
    ),
    "urllib": (
        "SSL_CERT_FILE",
        "urllib trusts OpenSSL's default store, which SSL_CERT_FILE or SSL_CERT_DIR replace",
    ),
    "curl": (
        "CURL_CA_BUNDLE",
        "curl reads CURL_CA_BUNDLE, else SSL_CERT_DIR, else SSL_CERT_FILE, else its built-in "
        "bundle; it ignores REQUESTS_CA_BUNDLE",
    ),
}


def _refused_chain(cell: CellResult) -> bool:
    return (
        cell.status == "tls-error" and cell.tls is not None and cell.tls.verify is True
    ) and bool(cell.tls.verify_error or "certificate" in (cell.checks[-1].message or "").lower())


def _bundle(tls: TlsInfo) -> str | None:
    """The path of the CA file or directory a working client was given by a variable."""
    first = tls.ca.removeprefix("curl: ").split(",")[0].strip()
    name, equals, path = first.partition("=")
    return path.split(" ")[0] if equals and name.isupper() else None


def tls_trust(result: MatrixResult) -> list[Finding]:
    """One finding per failing source, naming the CAs on both sides."""
    groups: dict[str, list[tuple[CellResult, CellResult]]] = {}
    for _target, cells in by_target(result).items():
        trusted = [c for c in cells if c.status == "ok" and c.tls and c.tls.verify]
        for cell in cells:
            if trusted and _refused_chain(cell):
                assert cell.tls is not None
                other = next((t for t in trusted if t.tls and t.tls.ca != cell.tls.ca), None)
                if other is not None:
                    groups.setdefault(cell.source, []).append((cell, other))
    return [_finding(source, pairs) for source, pairs in groups.items()]


def _finding(source: str, pairs: list[tuple[CellResult, CellResult]]) -> Finding:
    failed, good = pairs[0]
    assert failed.tls is not None
    assert good.tls is not None
    client = failed.tls.client
    variable, rule = FIXES.get(client, ("SSL_CERT_FILE", f"{client} loads its own CA store"))
    bundle = _bundle(good.tls)
    targets = [f.target for f, _ in pairs]
    error = failed.tls.verify_error or "the certificate chain was refused"
    detail = (
        f"{source} ({client}) refuses the certificate of {listing(targets)}: {error}. It "
        f"verifies with {failed.tls.ca}. {good.source} ({good.tls.client}) verifies the same "
        f"certificate with {good.tls.ca}. {rule}."
    )
    if failed.tls.issuer:
        detail += f" The server's certificate was issued by {failed.tls.issuer}."
    step = (
        f"Set {variable}={bundle} in {failed.source_name}'s environment"
        if bundle
        else f"Set {variable} in {failed.source_name}'s environment to the CA bundle that "
        f"{good.source} trusts"
    )
    step += f" ({client} reads it), or add that CA to the store {client} uses."
    cited = [f for f, _ in pairs]
    return Finding(
        rule="tls-trust",
        severity=severity(cited, contradiction=True),
        title=f"{source} does not trust the certificate {good.source} trusts: {listing(targets)}",
        detail=detail,
        evidence=evidence(cited + [g for _, g in pairs]),
        next_step=step,
        facts={
            "client": client,
            "ca": {source: failed.tls.ca, good.source: good.tls.ca},
            "verify_error": failed.tls.verify_error,
            "fix_variable": variable,
            "bundle": bundle,
            "targets": targets,
        },
    )
