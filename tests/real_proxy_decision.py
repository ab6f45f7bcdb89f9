"""Asks a real client library where it sends each request: run as a child whose environment
is rebuilt from each case (stdin: JSON lines {"url", "env"}; stdout: one JSON list).

urllib: urlopen's own steps (getproxies, then proxy_bypass on the request's host);
requests: Session.merge_environment_settings then select_proxy, as Session.request does, and
the adapter's proxy manager (a SOCKS proxy without PySocks fails there);
httpx: the transport a Client(trust_env=True) mounts for the URL (its constructor fails
for an environment it cannot parse, as the user's does).
"""

from __future__ import annotations

import json
import os
import sys


def urllib_decision(url: str) -> str | None:
    import urllib.request

    request = urllib.request.Request(url)
    proxy = urllib.request.getproxies().get(request.type)
    if proxy and request.host and urllib.request.proxy_bypass(request.host):  # type: ignore[attr-defined]
        return None
    return proxy


def requests_decision(url: str) -> str | None:
    import requests
    from requests.utils import select_proxy

    prepared = requests.Request("GET", url).prepare()
    assert prepared.url is not None
    settings = requests.Session().merge_environment_settings(prepared.url, {}, None, True, None)
    proxy = select_proxy(prepared.url, settings["proxies"])
    if proxy:
        requests.adapters.HTTPAdapter().proxy_manager_for(
            proxy if "://" in proxy else "http://" + proxy
        )
    return proxy


def httpx_decision(url: str) -> str | None:
    import httpx

    # verify=False spares a CA load per case (a tenth of a second); proxies do not depend on it.
    client = httpx.Client(trust_env=True, verify=False)
    target = httpx.URL(url)
    transport = client._transport_for_url(target)
    if transport is client._transport:
        return None
    pattern = next(p for p in client._mounts if p.matches(target))
    return urllib_proxies()[pattern.pattern.split("://")[0]]


def urllib_proxies() -> dict[str, str]:
    import urllib.request

    return urllib.request.getproxies()


DECIDE = {"urllib": urllib_decision, "requests": requests_decision, "httpx": httpx_decision}


def main() -> None:
    decide = DECIDE[sys.argv[1]]
    answers: list[object] = []
    for line in sys.stdin:
        case = json.loads(line)
        os.environ.clear()
        os.environ.update(case["env"])
        try:
            answers.append(decide(case["url"]))
        except Exception as exc:
            answers.append({"error": f"{type(exc).__name__}: {exc}"})
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
