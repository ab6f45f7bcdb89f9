"""The HTTP client a source's code uses, as it is where the probe runs: asked, not imitated.

For `http_client: requests | httpx | urllib`, where that library is importable here, the cell
takes the library's own proxy decision (requests' Session.merge_environment_settings and
select_proxy, urllib's getproxies and proxy_bypass, an httpx.Client built with trust_env=True),
its own CA trust (requests' REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE or certifi, httpx's
SSL_CERT_FILE/SSL_CERT_DIR or certifi, urllib's OpenSSL defaults), and the library sends the
request. Where it is absent, the client's re-implemented rules decide (proxy_rules.py), the
request goes through http.client with the trust that client would have, and every cell says
so: `rules: "requests rules (emulated)"` instead of `"requests 2.34.2"`.

The libraries read the process environment: they are asked only when the runner's environment
is this process's own (always, except in tests that hand the runner a mapping).
Standard library only at import time, Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import os
import platform
import ssl
import threading
from typing import Any, Mapping, Optional, Tuple

from .proxy import decide, note_cgi, verdict_record
from .proxy_rules import RULES, Verdict, environment_proxies
from .records import ProxyFacts

Decision = Tuple[ProxyFacts, Optional[str]]


def _library(name: str) -> Any:
    """requests or httpx if importable (httpx only from 0.26, the first with `proxy=`)."""
    try:
        if name == "requests":
            import requests

            return requests
        if name == "httpx":
            import httpx
        else:
            return None
    except ImportError:
        return None
    try:
        major, minor = (int(part) for part in httpx.__version__.split(".")[:2])
    except ValueError:
        return httpx
    return httpx if (major, minor) >= (0, 26) else None


def _certifi() -> tuple[str | None, str | None]:
    """(bundle path, version) of certifi, the store requests and httpx trust by default."""
    try:
        import certifi
    except ImportError:
        return None, None
    return certifi.where(), str(getattr(certifi, "__version__", "?"))


class Trust:
    """The CAs a client trusts here: a description for the cell (`tls.ca`), the verify argument
    or SSL context to send with, or why the client cannot verify at all."""

    __slots__ = ("ca", "context", "error", "verify")

    def __init__(
        self,
        ca: str,
        verify: Any = True,
        context: ssl.SSLContext | None = None,
        error: str | None = None,
    ) -> None:
        self.ca = ca
        self.verify = verify  # what requests takes: a path, True or False
        self.context = context
        self.error = error


def _system_ca() -> str:
    paths = ssl.get_default_verify_paths()
    found = [p for p in (paths.cafile, paths.capath) if p]
    return "system ({})".format(", ".join(found)) if found else "system (none found)"


def _openssl_ca(env: Mapping[str, str]) -> str:
    """What ssl.create_default_context() loads: OpenSSL's defaults, which SSL_CERT_FILE and
    SSL_CERT_DIR replace."""
    named = [f"{v}={env[v]}" for v in ("SSL_CERT_FILE", "SSL_CERT_DIR") if env.get(v)]
    return ", ".join(named) if named else _system_ca()


def _context(cafile: str | None = None, capath: str | None = None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile, capath=capath)


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _from_path(name: str, variable: str, path: str) -> Trust:
    """Trust in one bundle file or directory named by a variable (the client loads only it)."""
    ca = f"{variable}={path}"
    if not os.path.exists(path):
        return Trust(ca, path, error=f"{variable} names {path}, which does not exist")
    try:
        if os.path.isdir(path):
            return Trust(ca, path, _context(capath=path))
        return Trust(ca, path, _context(cafile=path))
    except (OSError, ssl.SSLError) as exc:
        return Trust(ca, path, error=f"{name} cannot load {path}: {exc}")


def _certifi_trust(name: str) -> Trust:
    bundle, version = _certifi()
    if bundle is not None:
        return Trust(f"certifi {version} ({bundle})", bundle, _context(cafile=bundle))
    # certifi is absent with the library: the system's compiled-in bundle (Mozilla's list, as
    # certifi's) stands in, loaded by path so that SSL_CERT_FILE and SSL_CERT_DIR, which the
    # client ignores, do not count.
    paths = ssl.get_default_verify_paths()
    cafile = paths.openssl_cafile if os.path.exists(paths.openssl_cafile) else None
    capath = (
        paths.openssl_capath if cafile is None and os.path.isdir(paths.openssl_capath) else None
    )
    stand_in = cafile or capath or "nothing"
    return Trust(
        f"certifi (not installed here; the system bundle {stand_in} stands in)",
        cafile or capath or True,
        _context(cafile=cafile, capath=capath) if (cafile or capath) else _trusts_nothing(),
    )


def _trusts_nothing() -> ssl.SSLContext:
    """A verifying context that trusts nothing: no store could be found."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def emulated_trust(name: str, env: Mapping[str, str], trust_env: bool) -> Trust:
    """The CAs `name` would trust in `env`, by its documented rules (library absent here)."""
    if name == "requests":
        if trust_env:
            for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
                if env.get(variable):
                    return _from_path(name, variable, env[variable])
        return _certifi_trust(name)
    if name == "httpx":
        if trust_env:
            for variable in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
                if env.get(variable):
                    return _from_path(name, variable, env[variable])
        return _certifi_trust(name)
    if name == "curl":
        # The curl tool: CURL_CA_BUNDLE, else SSL_CERT_DIR (beside its built-in bundle),
        # else SSL_CERT_FILE, else its built-in bundle and directory.
        if env.get("CURL_CA_BUNDLE"):
            return _from_path(name, "CURL_CA_BUNDLE", env["CURL_CA_BUNDLE"])
        if env.get("SSL_CERT_DIR"):
            directory = env["SSL_CERT_DIR"]
            bundle = ssl.get_default_verify_paths().cafile
            try:
                context = _context(cafile=bundle, capath=directory)
            except (OSError, ssl.SSLError) as exc:
                return Trust("SSL_CERT_DIR=" + directory, error=str(exc))
            return Trust(f"SSL_CERT_DIR={directory} (and {bundle})", True, context)
        if env.get("SSL_CERT_FILE"):
            return _from_path(name, "SSL_CERT_FILE", env["SSL_CERT_FILE"])
    return Trust(_openssl_ca(env), True, _context())


class HttpClient:
    """One client, as this place has it. Decisions and trust are made once per batch and
    shared by its cells: the environment does not change while they run."""

    def __init__(self, name: str, trust_env: bool, env: Mapping[str, str]) -> None:
        self.name = name
        self.trust_env = trust_env
        self.env = env
        # The libraries read os.environ: ask them only when that is the environment probed.
        own = env is os.environ
        self.library: Any = _library(name) if own else None
        self.asked = own and (self.library is not None or name == "urllib")
        # Cells ask from several worker threads; the library's client is built once.
        self._lock = threading.Lock()
        self._decider: Any = None
        self._decider_error: str | None = None
        self._trust: dict[bool, Trust] = {}

    # --- names ----------------------------------------------------------------------------

    @property
    def version(self) -> str | None:
        if self.name == "urllib":
            return "Python " + platform.python_version()
        return str(self.library.__version__) if self.library is not None else None

    def rules(self) -> str:
        """'requests 2.34.2' when the library decided, 'requests rules (emulated)' otherwise."""
        if self.asked:
            return f"{self.name} {self.version}"
        return f"{self.name} rules (emulated)"

    def sender(self) -> str:
        """What sends the request: the library, or http.client where it is absent."""
        if self.name == "urllib":
            return "urllib"
        return self.name if self.library is not None else "http.client"

    def label(self) -> str:
        if self.sender() == "http.client":
            return f"http.client ({self.rules()})"
        return f"{self.name} {self.version}"

    def prepare(self) -> None:
        """Everything a first request would pay for: the decision machinery and the CAs."""
        self.decide("http://prepare.invalid/")
        self.trust(True)

    # --- proxies --------------------------------------------------------------------------

    def decide(self, url: str) -> Decision:
        """The proxy this client takes for `url`: (record, proxy URL with credentials)."""
        if not self.trust_env:
            return {"client": "none", "used": False, "rules": "trust_env: false"}, None
        if not self.asked:
            return decide(url, self.env, self.name)
        with self._lock:
            return self._asked(url)

    def _asked(self, url: str) -> Decision:
        try:
            verdict = {"urllib": self._urllib, "requests": self._requests, "httpx": self._httpx}[
                self.name
            ](url)
        except Exception as exc:  # the library refuses this URL or environment: as the user's code
            verdict = Verdict()
            verdict.error = f"{type(exc).__name__}: {exc}"
        return verdict_record(self.name, self.rules(), note_cgi(verdict, self.env, self.name))

    def _explain(self, verdict: Verdict, url: str, proxy: str | None, scheme: str) -> Verdict:
        """Name the variable the library's proxy came from, or the NO_PROXY entry that
        exempted the host (the libraries say neither; the rules do, where they agree)."""
        proxies, names = environment_proxies(self.env)
        if proxy:
            verdict.proxy = proxy
            verdict.variable = next(
                (names[k] for k in (scheme, "all") if proxies.get(k) == proxy and k in names),
                None,
            )
            return verdict
        emulated = RULES[self.name](url, self.env)
        if emulated.proxy is None:
            verdict.no_proxy_variable = emulated.no_proxy_variable
            verdict.no_proxy_match = emulated.no_proxy_match
        return verdict

    def _urllib(self, url: str) -> Verdict:
        import urllib.request

        request = urllib.request.Request(url)
        proxy = urllib.request.getproxies().get(request.type)
        if proxy and request.host and urllib.request.proxy_bypass(request.host):
            proxy = None
        return self._explain(Verdict(), url, proxy, request.type)

    def _requests(self, url: str) -> Verdict:
        requests = self.library
        if self._decider is None:
            self._decider = requests.Session()
        prepared = requests.Request("GET", url).prepare()
        settings = self._decider.merge_environment_settings(prepared.url, {}, None, True, None)
        proxy = requests.utils.select_proxy(prepared.url, settings["proxies"])
        verdict = self._explain(Verdict(), url, proxy, prepared.url.split(":", 1)[0].lower())
        if proxy:
            # The adapter builds the proxy's connection manager as a request would: a SOCKS
            # proxy without PySocks fails here, as the user's request does.
            requests.adapters.HTTPAdapter().proxy_manager_for(
                proxy if "://" in proxy else "http://" + proxy
            )
        return verdict

    def _httpx(self, url: str) -> Verdict:
        httpx = self.library
        if self._decider is None and self._decider_error is None:
            try:
                self._decider = httpx.Client(trust_env=True)
            except Exception as exc:  # a NO_PROXY entry or proxy it cannot parse: every request
                self._decider_error = f"{type(exc).__name__}: {exc}"
        if self._decider_error is not None:
            verdict = Verdict()
            verdict.error = self._decider_error
            return verdict
        client = self._decider
        target = httpx.URL(url)
        # The transport the client picks for this URL (the method every request goes through).
        chosen = client._transport_for_url(target)
        proxy = None
        if chosen is not client._transport:
            # Proxy mounts are "http://", "https://" and "all://": the variable's own value.
            pattern = next(p for p, t in client._mounts.items() if p.matches(target))
            proxies, _names = environment_proxies(self.env)
            proxy = proxies.get(pattern.pattern.split("://", 1)[0])
        return self._explain(Verdict(), url, proxy, target.scheme)

    # --- trust ----------------------------------------------------------------------------

    def trust(self, verify: bool) -> Trust:
        """The CAs this client trusts here (or none, when the cell does not verify)."""
        with self._lock:
            if verify not in self._trust:
                self._trust[verify] = self._make_trust(verify)
            return self._trust[verify]

    def _make_trust(self, verify: bool) -> Trust:
        if not verify:
            return Trust("not verified (verify_tls: false)", False, _unverified())
        if not self.asked:
            return emulated_trust(self.name, self.env, self.trust_env)
        if self.name == "urllib":
            return Trust(_openssl_ca(self.env), True, _context())
        if self.name == "requests":
            session = self.library.Session()
            session.trust_env = self.trust_env
            chosen = session.merge_environment_settings("https://ca.invalid/", {}, None, True, None)
            value = chosen["verify"]
            if isinstance(value, str):
                variable = next(
                    (
                        v
                        for v in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
                        if self.env.get(v) == value
                    ),
                    "verify",
                )
                trust = _from_path("requests", variable, value)
                if trust.error:
                    trust.error = (
                        "Could not find a suitable TLS CA certificate bundle, invalid path: "
                        + value
                    )
                return trust
            bundle = self.library.utils.DEFAULT_CA_BUNDLE_PATH
            return Trust(f"certifi {_certifi()[1]} ({bundle})", True, _context(cafile=bundle))
        # httpx: its own function builds the context it would verify with.
        try:
            context = self.library.create_ssl_context(trust_env=self.trust_env)
        except Exception as exc:
            return Trust(emulated_trust("httpx", self.env, self.trust_env).ca, error=str(exc))
        return Trust(emulated_trust("httpx", self.env, self.trust_env).ca, True, context)

    def close(self) -> None:
        if self._decider is not None:
            self._decider.close()
