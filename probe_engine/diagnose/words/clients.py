"""What differs between clients and rows: the proxy each client chose, the CA trust each
reads, and the facts of two rows that see a target differently."""

from __future__ import annotations

from collections.abc import Sequence

from ...results import CellResult, MatrixResult
from ..cause import Cause
from ..differences import Difference
from ..grammar import capitalised, listing, verb
from ..no_proxy import NoProxyFix
from ..phrasing import (
    CLIENT_RULES,
    column_words,
    failure_words,
    meaning,
    next_step,
    route,
    why_direct,
)
from .common import Words

# --- proxy-differs --------------------------------------------------------------------------

# Where a row's environment is set, by source kind: the place the variable must go.
WHERE = {
    "local": "this process's environment (in Airflow: the task's env)",
    "process": "{row}'s environment (the task's env)",
    "shell": "{row}'s environment (the shell's env)",
    "netns": "{row}'s environment (the process in the namespace)",
    "docker": "the container's environment ({row}: docker run -e, or environment: in Compose; "
    "recreate the container)",
    "kubernetes": "the pod's environment ({row}: env: of its container in the pod spec; "
    "restart the pods)",
}
# How each client is told to ignore every proxy variable.
NO_PROXIES = {
    "requests": "Session.trust_env = False",
    "httpx": "httpx.Client(trust_env=False)",
    "urllib": "urllib.request.build_opener(urllib.request.ProxyHandler({}))",
    "curl": "curl --noproxy '*'",
}


def where_set(kind: str, row: str) -> str:
    return WHERE.get(kind, "{row}'s environment").format(row=row)


def no_proxy_advice(fix: NoProxyFix, row: str, proxy_variable: str | None) -> str:
    """'Set NO_PROXY=127.0.0.1 in ... (requests also reads a range such as 127.0.0.0/8), or
    ...': only spellings the client's own rules accept."""
    place = where_set(fix.kind, row)
    client = fix.client
    notes = []
    if fix.cidr and client in fix.cidr_clients:
        notes.append(f"{client} also reads a range such as {fix.cidr}")
    elif fix.cidr:
        readers = [c for c in fix.cidr_clients if c != client]
        notes.append(
            f"{client} ignores CIDR ranges in {fix.variable}: list the exact addresses"
            + (f" ({listing(readers)} read ranges)" if readers else "")
        )
    if fix.suffix and client in fix.suffix_clients:
        notes.append(f"or the suffix {fix.suffix} for every name under it")
    note = f"; {'; '.join(notes)}" if notes else ""
    unset = f"Or unset {proxy_variable} there" if proxy_variable else ""
    disable = NO_PROXIES.get(client)
    also = f"disable proxies for {client} ({disable})" if disable else ""
    others = " or ".join(part for part in (unset, also) if part)
    others = capitalised(others) + "." if others else ""
    if fix.value is None:
        return f"No {fix.variable} entry exempts these hosts for {client}. {others}".strip()
    return f"Set {fix.variable}={fix.value} in {place}{note}. {others}".strip()


def proxy_differs(found: Cause, result: MatrixResult) -> Words:
    failed = found.failing[0]
    proxy = failed.proxy
    assert proxy is not None
    source = found.subject
    targets = [c.target for c in found.failing]
    detail = (
        f"{source} {route(failed)} ({CLIENT_RULES.get(proxy.client, proxy.client)}) for "
        f"{listing(targets)}, and is {failure_words(failed)}."
    )
    if found.context["note"]:
        detail += f" Why: {found.context['note']}."
    if found.contrast:
        good = found.contrast[0]
        title = f"{source} fails through a proxy where {good.source} connects directly and succeeds"
        detail += f" {good.source} {route(good)}{why_direct(good.proxy)} and reaches {good.target}."
    else:
        title = f"{source} reaches {listing(targets)} only through a proxy, and that fails"
    return Words(
        title, detail, no_proxy_advice(found.context["fix"], failed.source_name, proxy.variable)
    )


# --- tls-trust ------------------------------------------------------------------------------

# Whom each client trusts, and what it ignores (requests never reads SSL_CERT_FILE; urllib and
# httpx never read REQUESTS_CA_BUNDLE).
CA_RULES = {
    "requests": "requests trusts certifi's bundle unless REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) "
    "names a file or directory; it ignores SSL_CERT_FILE and SSL_CERT_DIR",
    "httpx": "httpx trusts certifi's bundle unless SSL_CERT_FILE (or SSL_CERT_DIR) is set; it "
    "ignores REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE",
    "urllib": "urllib trusts OpenSSL's default store, which SSL_CERT_FILE or SSL_CERT_DIR replace",
    "curl": "curl reads CURL_CA_BUNDLE, else SSL_CERT_DIR, else SSL_CERT_FILE, else its built-in "
    "bundle; it ignores REQUESTS_CA_BUNDLE",
}


def tls_trust(found: Cause, result: MatrixResult) -> Words:
    failed, good = found.failing[0], found.contrast[0]
    assert failed.tls is not None
    assert good.tls is not None
    source, client = found.subject, failed.tls.client
    variable, bundle = found.facts["fix_variable"], found.facts["bundle"]
    targets = listing([c.target for c in found.failing])
    error = failed.tls.verify_error or "the certificate chain was refused"
    detail = (
        f"{source} ({client}) refuses the certificate of {targets}: {error}. It verifies with "
        f"{failed.tls.ca}. {good.source} ({good.tls.client}) verifies the same certificate "
        f"with {good.tls.ca}. {CA_RULES.get(client, f'{client} loads its own CA store')}."
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
    return Words(
        f"{source} does not trust the certificate {good.source} trusts: {targets}", detail, step
    )


# --- source-differs -------------------------------------------------------------------------


def _failures(cells: Sequence[CellResult]) -> str:
    """'loop: refused (ECONNREFUSED) (what that means)': the failing targets by how they
    failed, each way with its own meaning (a udp timeout and a refused ClusterIP are two
    stories, not one told twice)."""
    ways: dict[str, list[CellResult]] = {}
    for cell in cells:
        ways.setdefault(column_words(cell), []).append(cell)
    return "; ".join(
        f"{listing([c.target for c in same])}: {words} ({meaning(same[0])})"
        for words, same in ways.items()
    )


def source_differs(found: Cause, result: MatrixResult) -> Words:
    bad, good = found.subject, found.context["good"]
    differences: list[Difference] = found.context["differences"]
    targets = [c.target for c in found.failing]
    detail = (
        f"From {bad}: {_failures(found.failing)}. From {good} the same "
        f"{verb(len(targets), 'target works', 'targets work')}."
    )
    if found.variant == "tool-only":
        said = next(
            (c.message for f in found.failing for c in f.checks if c.status != "ok" and c.message),
            found.failing[0].message,
        )
        detail += (
            " Both run in the same network namespace and took the same path (addresses, "
            "routes, resolver, proxy decision): the only difference is the tool. "
            f"{differences[0].text}."
        )
        if said:
            detail += f" It said: {said}"
        return Words(
            f"{bad} fails where {good} succeeds on the same path: only the tool differs",
            detail,
            f"The network is not the cause: run {bad}'s tool by hand with its verbose option "
            f"and compare its options (timeouts, retries, proxy, CA) with {good}'s.",
        )
    if differences:
        detail += " What differs: " + "; ".join(d.text for d in differences) + "."
    else:
        detail += (
            f" Nothing {bad} and {good} report differs (network namespace, addresses, routes, "
            "resolver, proxy decision): the failure may depend on timing (a service still "
            "starting, a flapping backend) or on rules the probe cannot see (a firewall "
            "matching the process's user or cgroup)."
        )
    step = next((d.next_step for d in differences if d.next_step), None)
    return Words(
        f"{bad} fails where {good} succeeds: {listing(targets)}",
        detail,
        step or next_step(found.failing[0]),
    )
