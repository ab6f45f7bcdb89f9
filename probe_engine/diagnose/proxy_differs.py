"""Rule "proxy-differs": one source goes through a proxy and fails where another goes direct
(or the same source's other clients would), with why each client decided as it did: which
variables it honours, and why a NO_PROXY that is set did not exempt the host for it."""

from __future__ import annotations

from ..results import CellResult, Finding, MatrixResult, SourceInfo, TargetInfo
from ..status import FAILED
from .cells import by_target, evidence, host_of, source_info, target_info
from .facts import row_facts
from .no_proxy import no_proxy_note
from .phrasing import CLIENT_RULES, failure_words, listing, route, why_direct
from .severity import severity


def next_step_for(failed: CellResult, info: SourceInfo | None, target: TargetInfo | None) -> str:
    proxy = failed.proxy
    assert proxy is not None
    host = host_of(failed, target)
    env = row_facts(info).get("proxy_env", {})
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
        target = target_info(result, failed.target)
        note, note_facts = no_proxy_note(failed, info, target)
        if note:
            detail += f" Why: {note}."
        if goods:
            good = goods[0]
            title = (
                f"{source} fails through a proxy where {good.source} connects directly and succeeds"
            )
            detail += (
                f" {good.source} {route(good)}{why_direct(good.proxy)} and reaches {good.target}."
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
                next_step=next_step_for(failed, info, target),
                facts={
                    "proxy": proxy.model_dump(exclude_none=True),
                    "targets": targets,
                    **note_facts,
                },
            )
        )
    return findings
