"""The generated table of proxy environments for the differential test: hosts x NO_PROXY forms
x proxy variables (both cases, empty values, all_proxy, SOCKS schemes) x http/https x CGI.

`value(variable, scheme)` gives each proxy variable's value: distinct per variable for the
Python clients (the value they return names the variable), one recording proxy for curl.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

Value = Callable[[str, str], str]

HOSTS = [
    "api.example.com",
    "example.com",
    "notexample.com",
    "sub.api.example.com",
    "api.example.com:8080",
    "API.Example.COM",
    "localhost",
    "localhost:8080",
    "api",
    "example.com.evil.org",
    "10.1.2.3",
    "10.1.2.3:8080",
    "127.0.0.1",
    "192.168.49.2",
    "[::1]",
    "[::1]:8080",
    "[2001:db8::1]",
]
NO_PROXY = [
    "",
    "example.com",
    ".example.com",
    "*.example.com",
    "*",
    "api.example.com:8080",
    "example.com:8080",
    "EXAMPLE.COM",
    " example.com , localhost ",
    ",,example.com,,",
    "localhost",
    "127.0.0.1",
    "10.0.0.0/8",
    "127.0.0.0/8",
    "::1",
    "[::1]",
    "2001:db8::/32",
    "10.1.2.3:8080",
    ".0.0.1",
    "api",
    "*,example.com",
    "ample.com",
    "192.168.49.2/32",
    "10.1.2.3/8",
]
# Fewer hosts for the combinations below, chosen to keep every kind: name, subdomain, port,
# case, localhost, single label, addresses of both families.
SOME_HOSTS = [*HOSTS[:12:2], "[::1]", "10.1.2.3"]


def cases(value: Value) -> list[dict[str, object]]:
    """Every case: {"url", "env"}. About 800; each is asked of every client."""
    out: list[dict[str, object]] = []

    def add(url: str, env: dict[str, str]) -> None:
        out.append({"url": url, "env": env})

    # Every host against every NO_PROXY form, the most common setting.
    for host, no_proxy in itertools.product(HOSTS, NO_PROXY):
        env = {"http_proxy": value("http_proxy", "http")}
        if no_proxy:
            env["NO_PROXY"] = no_proxy
        add(f"http://{host}/", env)
    # Variable cases and all_proxy, for http and https URLs.
    for host, no_proxy in itertools.product(
        SOME_HOSTS, ["", "example.com", "10.0.0.0/8", "localhost", "*"]
    ):
        for variables in (
            {"HTTPS_PROXY": value("HTTPS_PROXY", "http")},
            {
                "https_proxy": value("https_proxy", "http"),
                "HTTPS_PROXY": value("HTTPS_PROXY", "http"),
            },
            {"ALL_PROXY": value("ALL_PROXY", "http")},
            {"HTTP_PROXY": value("HTTP_PROXY", "http"), "all_proxy": value("all_proxy", "http")},
        ):
            env = dict(variables)
            if no_proxy:
                env["no_proxy"] = no_proxy
            add(f"https://{host}/", env)
            add(f"http://{host}/", env)
    # Upper and lower case together, empty values, both NO_PROXY cases; plain and CGI.
    for host in ("api.example.com", "10.1.2.3", "localhost"):
        for env in (
            {"HTTP_PROXY": value("HTTP_PROXY", "http")},
            {"HTTP_PROXY": value("HTTP_PROXY", "http"), "http_proxy": value("http_proxy", "http")},
            {"HTTP_PROXY": value("HTTP_PROXY", "http"), "http_proxy": ""},
            {"http_proxy": value("http_proxy", "http"), "no_proxy": "", "NO_PROXY": "example.com"},
            {
                "http_proxy": value("http_proxy", "http"),
                "no_proxy": "other.org",
                "NO_PROXY": "example.com",
            },
        ):
            add(f"http://{host}/", dict(env))
            add(f"http://{host}/", dict(env, REQUEST_METHOD="GET"))
    # Trailing dots, blanks as separators, masks out of range.
    for host, no_proxy in itertools.product(
        ["api.example.com", "api.example.com.", "10.1.2.3"],
        ["example.com.", "other.org example.com", "10.1.2.3/33", "10.1.2.3/0", "example.com "],
    ):
        add(f"http://{host}/", {"http_proxy": value("http_proxy", "http"), "no_proxy": no_proxy})
    # SOCKS and schemeless proxy values: who takes them, who refuses them.
    for scheme, url in itertools.product(
        ["socks5", "socks5h", "socks4", "socks4a"], ["http://api.example.com/", "https://10.1.2.3/"]
    ):
        add(url, {"ALL_PROXY": value("ALL_PROXY", scheme), "NO_PROXY": "localhost"})
        add(
            url,
            {
                "https_proxy": value("https_proxy", scheme),
                "http_proxy": value("http_proxy", scheme),
            },
        )
    for url in ("http://api.example.com/", "https://api.example.com/"):
        add(url, {"http_proxy": value("http_proxy", ""), "https_proxy": value("https_proxy", "")})
    return out
