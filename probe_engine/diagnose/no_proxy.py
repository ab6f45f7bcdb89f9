"""Why NO_PROXY did not exempt a host for a client: each client's rules (probe_engine.agent.proxy,
one model shared with the probes) replayed on the row's reported proxy variables."""

from __future__ import annotations

from typing import Any

from ..agent.proxy import decide
from ..results import CellResult, SourceInfo, TargetInfo
from .facts import row_facts
from .phrasing import listing

COMPARED_CLIENTS = ("requests", "httpx", "curl", "urllib")


def no_proxy_note(
    cell: CellResult, info: SourceInfo | None, target: TargetInfo | None
) -> tuple[str, dict[str, Any]]:
    """Why NO_PROXY did not exempt the host for this cell's client, replaying each client's
    rules on the source's variables: ('' , {}) when the source did not report them, or the
    column is no URL."""
    env = row_facts(info).get("proxy_env")
    proxy = cell.proxy
    url = target.url if target is not None else None
    if env is None or proxy is None or not url or not target or not target.host:
        return "", {}
    host = target.host
    variable = next((v for v in ("no_proxy", "NO_PROXY") if env.get(v)), None)
    if variable is None:
        return f"NO_PROXY is not set, so nothing exempts {host}", {"no_proxy": None}
    # Whether each client's NO_PROXY rules exempt the host, whatever proxy variable it reads:
    # replayed with a stand-in proxy every client honours.
    replay = {k: v for k, v in env.items() if k.lower() == "no_proxy"}
    replay["all_proxy"] = "http://proxy.invalid:3128"
    verdicts = {client: decide(url, replay, client)[0] for client in COMPARED_CLIENTS}
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
