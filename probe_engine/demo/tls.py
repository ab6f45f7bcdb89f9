"""A loopback HTTPS lab: a private CA made with openssl, a server certificate it signed for
127.0.0.1 and localhost, and an HTTPS server presenting it.

Every client trusts only what its own rules load (certifi, OpenSSL's defaults, a variable):
this lab lets a test hand the CA to one client through one variable and see who verifies.
`ca_file` is the CA in PEM; `ca_dir` holds it under its OpenSSL hash (for SSL_CERT_DIR).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path
from types import TracebackType

from .fixtures import LOOPBACK, _Handler, _Server

CA_SUBJECT = "/CN=probe-engine test CA"
DAYS = 30


def _openssl(*args: str, cwd: Path) -> None:
    run = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if run.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {run.stderr.strip()[-500:]}")


class PrivateCA:
    """A CA and one server certificate it signed, in a directory of their own."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("openssl") is None:
            raise RuntimeError("openssl is not installed (Debian package openssl)")
        self.directory = directory
        curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        _openssl(
            "req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", str(DAYS),
            "-subj", CA_SUBJECT,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "req", "-new", *curve, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1",
            cwd=directory,
        )  # fmt: skip
        (directory / "server.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "basicConstraints=critical,CA:FALSE\n"
            "extendedKeyUsage=serverAuth\n"
        )
        _openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", str(DAYS),
            "-extfile", "server.ext",
            cwd=directory,
        )  # fmt: skip
        self.ca_file = directory / "ca.pem"
        self.ca_dir = directory / "ca.d"
        self.ca_dir.mkdir()
        shutil.copy(self.ca_file, self.ca_dir / "ca.pem")
        _openssl("rehash", str(self.ca_dir), cwd=directory)
        self.cert_file = directory / "server.pem"
        self.key_file = directory / "server.key"


class HttpsLab:
    """An HTTPS server on 127.0.0.1 with a certificate from a private CA (see PrivateCA)."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="pe-tls-")
        self.ca = PrivateCA(Path(self._tmp.name))
        self.server = _Server((LOOPBACK, 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca.cert_file, self.ca.key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/health"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._tmp.cleanup()

    def __enter__(self) -> HttpsLab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
