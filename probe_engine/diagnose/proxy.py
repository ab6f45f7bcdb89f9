"""Rule "proxy-differs": one source goes through a proxy and fails where another goes direct
(or the same source's other clients would), with why each client decided as it did: which
variables it honours, and why a NO_PROXY that is set did not exempt the host for it.

The client rules themselves live in probe_engine.agent.proxy (one model, shared with the
probes); here they are only replayed on the source's reported proxy variables.
"""

from __future__ import annotations

from typing import Any

from ..agent.proxy import decide
from ..results import CellResult, Finding, MatrixResult, ProxyInfo, SourceInfo
from ..status import FAILED
from .common import (
    by_target,
    endpoint_host_port,
    evidence,
    failure_words,
    listing,
    severity,
    source_info,
)

CLIENT_RULES = {
    "curl": "curl ignores upper-case HTTP_PROXY and reads only lower-case http_proxy",
    "requests": "requests honours both HTTP_PROXY and http_proxy",
    "httpx": "httpx honours both HTTP_PROXY and http_proxy",
    "urllib": "urllib honours both HTTP_PROXY and http_proxy",
}
COMPARED_CLIENTS = ("requests", "httpx", "curl", "urllib")


def route(cell: CellResult) -> str:
    """'connects directly' or 'goes through HTTP_PROXY=http://proxy:3128'."""
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


def _proxy_env(info: SourceInfo | None) -> dict[str, str] | None:
    env = info.facts.get("proxy_env") if info else None
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else None


def no_proxy_note(cell: CellResult, info: SourceInfo | None) -> tuple[str, dict[str, Any]]:
    """Why NO_PROXY did not exempt the host for this cell's client, replaying each client's
    rules on the source's variables: ('' , {}) when the source did not report them."""
    env = _proxy_env(info)
    proxy = cell.proxy
    if env is None or proxy is None or "://" not in cell.endpoint:
        return "", {}
    host, _port = endpoint_host_port(cell.endpoint)
    variable = next((v for v in ("no_proxy", "NO_PROXY") if env.get(v)), None)
    if variable is None:
        return f"NO_PROXY is not set, so nothing exempts {host}", {"no_proxy": None}
    # Whether each client's NO_PROXY rules exempt the host, whatever proxy variable it reads:
    # replayed with a stand-in proxy every client honours.
    replay = {k: v for k, v in env.items() if k.lower() == "no_proxy"}
    replay["all_proxy"] = "http://proxy.invalid:3128"
    verdicts = {client: decide(cell.endpoint, replay, client)[0] for client in COMPARED_CLIENTS}
    exempting = [c for c, v in verdicts.items() if v.get("no_proxy_match")]
    text = f"{variable}={env[variable]} is set but does not exempt {host} for {proxy.client}"
    cidrs = [e.strip() for e in env[variable].split(",") if "/" in e]
    if proxy.client == "httpx" and cidrs:
        text += (
            f" (httpx does not understand CIDR ranges: it reads {cidrs[0]} as the single "
            f"address {cidrs[0].split('/')[0]})"
        )
    if exempting:
        text += f"; {listing(exempting)} would exempt it"
    return text, {
        "no_proxy": env[variable],
        "exempt_for": exempting,
        "not_exempt_for": [c for c in verdicts if c not in exempting],
    }


def next_step_for(failed: CellResult, info: SourceInfo | None) -> str:
    proxy = failed.proxy
    assert proxy is not None
    host, _port = endpoint_host_port(failed.endpoint)
    env = _proxy_env(info) or {}
    cidr = any("/" in e for v in ("no_proxy", "NO_PROXY") for e in env.get(v, "").split(","))
    if proxy.client == "httpx":
        note = (
            f"list {host} itself: httpx ignores CIDR ranges"
            if cidr
            else "httpx matches NO_PROXY addresses exactly, not CIDR ranges"
        )
    else:
        note = "requests and curl also accept CIDR ranges such as 10.0.0.0/8"
    return (
        f"Add {host} to NO_PROXY in {failed.source_name}'s environment ({note}), "
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
        info = source_info(result, source)
        targets = [f.target for f, _ in pairs]
        goods = [g for _, g in pairs if g is not None]
        client_rule = CLIENT_RULES.get(proxy.client, proxy.client)
        detail = (
            f"{source} {route(failed)} ({client_rule}) for {listing(targets)}, "
            f"and is {failure_words(failed)}."
        )
        note, note_facts = no_proxy_note(failed, info)
        if note:
            detail += f" Why: {note}."
        if goods:
            good = goods[0]
            title = (
                f"{source} fails through a proxy where {good.source} connects directly and succeeds"
            )
            detail += (
                f" {good.source} {route(good)}{_why_direct(good.proxy)} and reaches {good.target}."
            )
        else:
            title = f"{source} reaches {listing(targets)} only through a proxy, and that fails"
        cited = [f for f, _ in pairs]
        contrast = list({g.source + g.target: g for g in goods}.values())
        findings.append(
            Finding(
                rule="proxy-differs",
                severity=severity(cited, contradiction=bool(goods)),
                title=title,
                detail=detail,
                evidence=evidence(cited + contrast),
                next_step=next_step_for(failed, info),
                facts={
                    "proxy": proxy.model_dump(exclude_none=True),
                    "targets": targets,
                    **note_facts,
                },
            )
        )
    return findings
