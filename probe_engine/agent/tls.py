"""Certificate facts for https cells: who the server says it is, who vouched for it, until
when, and the verify error a client got, so a tls-error reads as its cause.

The certificate comes from the client's own connection where the library exposes it, else
(after a verify failure) from one more handshake that checks nothing. Decoding uses the
ssl module's own X.509 decoder. Standard library only, Python 3.8 compatible: shipped inside
the agent.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import tempfile
from typing import Any

from .classify import iter_causes
from .proxy import proxy_address
from .records import TlsFacts


def _name(fields: Any) -> str | None:
    """A distinguished name as 'CN=api,O=Example' from the ssl module's nested tuples."""
    if not fields:
        return None
    parts = []
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU"}
    for rdn in fields:
        for key, value in rdn:
            parts.append(f"{short.get(key, key)}={value}")
    return ",".join(parts)


def decode(der: bytes) -> TlsFacts:
    """Subject, issuer, SANs and validity of a DER certificate; {} if it cannot be read."""
    decoder = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decoder is None or not der:
        return {}
    handle, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(ssl.DER_cert_to_PEM_cert(der))
        decoded = decoder(path)
    except (OSError, ValueError, ssl.SSLError):
        return {}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    sans: list[str] = [f"{kind}:{value}" for kind, value in decoded.get("subjectAltName", ())]
    facts: TlsFacts = {
        "subject": _name(decoded.get("subject")),
        "issuer": _name(decoded.get("issuer")),
        "sans": sans,
        "not_before": decoded.get("notBefore"),
        "not_after": decoded.get("notAfter"),
    }
    if facts["subject"] is not None and facts["subject"] == facts["issuer"]:
        facts["self_signed"] = True
    return facts


def verify_error(exc: BaseException) -> str | None:
    """OpenSSL's words for a failed verification ('unable to get local issuer certificate')."""
    for cause in iter_causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            message = cause.verify_message or str(cause)
            return f"{message} (X509 error {cause.verify_code})"
    return None


def peer_certificate(sock: Any) -> bytes | None:
    """The DER certificate of an SSL socket or SSL object, if there is one."""
    getter = getattr(sock, "getpeercert", None)
    if getter is None:
        return None
    try:
        der = getter(True)  # binary form; positional, as the C-level socket takes it
    except Exception:  # a fact we could not read must never change the cell's answer
        return None
    return bytes(der) if der else None


def fetch_certificate(
    host: str, port: int, address: str | None, proxy: str | None, timeout: float
) -> bytes | None:
    """One handshake that verifies nothing, to see the certificate a client refused; through
    an HTTP proxy's tunnel when the client used one. None when it cannot be had."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if proxy:
        proxy_host, proxy_port, scheme = proxy_address(proxy)
        if scheme != "http":
            return None  # through an https or SOCKS proxy: not worth a second client here
        connection = http.client.HTTPSConnection(
            proxy_host, proxy_port, timeout=timeout, context=context
        )
        connection.set_tunnel(host, port)
    else:
        connection = _Named(address or host, port, host, timeout, context)
    try:
        connection.connect()
        return peer_certificate(connection.sock)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()


class _Named(http.client.HTTPSConnection):
    """An HTTPS connection to one address that still names the host (SNI) as the URL does."""

    def __init__(
        self, address: str, port: int, host: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(address, port, timeout=timeout, context=context)
        self._server_name = host
        self._wrap_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._wrap_context.wrap_socket(sock, server_hostname=self._server_name)
