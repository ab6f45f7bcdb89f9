"""Rule: one source goes through a proxy and fails where another goes direct and succeeds."""

from __future__ import annotations

from ..results import CellResult, Finding, MatrixResult, ProxyInfo
from .common import FAILED, by_target, evidence, failure_words

CLIENT_RULES = {
    "curl": "curl ignores upper-case HTTP_PROXY and reads only lower-case http_proxy",
    "requests": "requests honours both HTTP_PROXY and http_proxy",
    "httpx": "httpx honours both HTTP_PROXY and http_proxy",
    "urllib": "urllib honours both HTTP_PROXY and http_proxy",
}


def _route(cell: CellResult) -> str:
    proxy = cell.proxy
    if proxy is None or not proxy.used:
        return "connects directly"
    return f"goes through {proxy.variable}={proxy.url}"


def _why_direct(proxy: ProxyInfo | None) -> str:
    if proxy is None:
        return ""
    if proxy.ignored:
        rule = CLIENT_RULES.get(proxy.client, proxy.client + " ignores it")
        return f" ({', '.join(proxy.ignored)} is set but {rule})"
    if proxy.no_proxy_match:
        return f" ({proxy.no_proxy_variable} entry {proxy.no_proxy_match!r} exempts the host)"
    return ""


def _next_step(failed: CellResult) -> str:
    proxy = failed.proxy
    assert proxy is not None
    host = failed.endpoint.split("://")[-1].split("/")[0].rsplit(":", 1)[0]
    if proxy.client == "httpx":
        cidr_note = "httpx matches NO_PROXY addresses exactly, not CIDR ranges"
    else:
        cidr_note = "requests and curl also accept CIDR ranges such as 10.0.0.0/8"
    return (
        f"Add {host} to NO_PROXY in {failed.source_name}'s environment ({cidr_note}), "
        f"or unset {proxy.variable} there, or disable proxies for this client (trust_env=False)."
    )


def proxy_differs(result: MatrixResult) -> list[Finding]:
    """One finding per failing source and proxy, listing every target it affects."""
    groups: dict[tuple[str, str | None], list[tuple[CellResult, CellResult | None]]] = {}
    for _target, cells in by_target(result).items():
        direct = [c for c in cells if c.status == "ok" and not (c.proxy and c.proxy.used)]
        for failed in cells:
            if failed.status in FAILED and failed.proxy and failed.proxy.used:
                key = (failed.source, failed.proxy.url)
                groups.setdefault(key, []).append((failed, direct[0] if direct else None))
    findings = []
    for (source, _url), pairs in groups.items():
        failed = pairs[0][0]
        proxy = failed.proxy
        assert proxy is not None
        targets = [f.target for f, _ in pairs]
        goods = [g for _, g in pairs if g is not None]
        client_rule = CLIENT_RULES.get(proxy.client, proxy.client)
        detail = (
            f"{source} {_route(failed)} ({client_rule}) for {_listing(targets)}, "
            f"and is {failure_words(failed)}."
        )
        if goods:
            good = goods[0]
            title = (
                f"{source} fails through a proxy where {good.source} connects directly and succeeds"
            )
            detail += (
                f" {good.source} {_route(good)}{_why_direct(good.proxy)} and reaches {good.target}."
            )
        else:
            title = f"{source} reaches {_listing(targets)} only through a proxy, and that fails"
        cited = [f for f, _ in pairs] + list({g.source + g.target: g for g in goods}.values())
        findings.append(
            Finding(
                rule="proxy-differs",
                severity="error",
                title=title,
                detail=detail,
                evidence=evidence(cited),
                next_step=_next_step(failed),
                facts={"proxy": proxy.model_dump(exclude_none=True), "targets": targets},
            )
        )
    return findings


def _listing(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
