"""TLS trust, client by client: the private CA handed over through one variable at a time, in
an environment built from empty (these machines set SSL_CERT_FILE, SSL_CERT_DIR,
REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE for every process: inherited, they would decide).

The table is computed live from the real clients (urllib, requests, httpx, curl), then the
engine must reproduce every cell: through each library where it is importable, through the
re-implemented rules where it is not (an interpreter without requests or httpx), and through
curl itself. Each cell names where its CAs came from (`tls.ca`), and the certificate it saw.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import certifi
import pytest

from probe_engine.demo.tls import HttpsLab

from .conftest import cell, require, run_text
from .golden import check_golden

VARIABLES = ["none", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]
CLIENTS = ["urllib", "requests", "httpx", "curl"]
PYTHON_38 = "/root/.pyenv/versions/3.8.18/bin/python3.8"  # no requests, no httpx there
SCRIPTS = {
    "urllib": "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)",
    "requests": "import sys, requests; requests.get(sys.argv[1], timeout=5)",
    "httpx": "import sys, httpx; httpx.get(sys.argv[1], timeout=5)",
}


@pytest.fixture(scope="module")
def lab() -> Iterator[HttpsLab]:
    require(shutil.which("openssl") is not None, "openssl is not installed")
    with HttpsLab() as https:
        yield https


def environment(lab: HttpsLab, variable: str) -> dict[str, str]:
    if variable == "none":
        return {}
    path = lab.ca.ca_dir if variable == "SSL_CERT_DIR" else lab.ca.ca_file
    return {variable: str(path)}


def real_outcome(lab: HttpsLab, client: str, variable: str) -> bool:
    """Does the real client verify the lab's certificate in this environment?"""
    env = {"PATH": "/usr/bin:/bin", **environment(lab, variable)}
    if client == "curl":
        command = ["curl", "-sS", "-o", "/dev/null", "--max-time", "5", lab.url]
    else:
        command = [sys.executable, "-c", SCRIPTS[client], lab.url]
    run = subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)
    return run.returncode == 0


@pytest.fixture(scope="module")
def table(lab: HttpsLab) -> dict[tuple[str, str], bool]:
    require(shutil.which("curl") is not None, "curl is not installed")
    return {(c, v): real_outcome(lab, c, v) for c in CLIENTS for v in VARIABLES}


def _matrix(lab: HttpsLab, emulated: bool) -> str:
    lines = ["defaults: {timeout: 5s}", "sources:"]
    for client in CLIENTS:
        for variable in VARIABLES:
            env = environment(lab, variable)
            name = f"{client}-{variable}"
            if client == "curl" and not emulated:
                env = {"PATH": "/usr/bin:/bin", **env}
                lines.append(
                    f"  {name}: {{kind: shell, tool: curl, inherit_env: false, env: {env}}}"
                )
                continue
            python = f", python: {PYTHON_38}" if emulated else ""
            lines.append(
                f"  {name}: {{kind: process, inherit_env: false, http_client: {client}, "
                f"env: {env}{python}}}"
            )
    lines += ["targets:", f"  api: {{kind: http, url: '{lab.url}', expect_status: [200]}}"]
    return "\n".join(lines) + "\n"


def test_the_real_clients_disagree_here(table: dict[tuple[str, str], bool]) -> None:
    """The premise (RECIPES.md): with only SSL_CERT_FILE set, requests refuses what urllib
    accepts. If a release changes that, the table below still holds: it is computed live."""
    assert not any(table[(c, "none")] for c in CLIENTS)
    assert len({table[(c, "SSL_CERT_FILE")] for c in CLIENTS}) == 2


@pytest.mark.parametrize("emulated", [False, True], ids=["libraries", "emulated-rules"])
def test_the_engine_reproduces_every_row(
    lab: HttpsLab, table: dict[tuple[str, str], bool], emulated: bool
) -> None:
    if emulated:
        require(shutil.which(PYTHON_38) is not None, "no Python 3.8 from pyenv on this machine")
    result = run_text(_matrix(lab, emulated))
    wrong = []
    for (client, variable), verified in table.items():
        found = cell(result, f"{client}-{variable}", "api")
        expected = "ok" if verified else "tls-error"
        if found.status != expected:
            wrong.append(f"{client} with {variable}: real {expected}, engine {found.status}")
            continue
        assert found.tls is not None, found.model_dump_json(indent=1)
        # The CA source is named: the variable when the client took the CA from it.
        named = variable in found.tls.ca
        if variable != "none" and named != verified:
            wrong.append(f"{client} with {variable}: tls.ca {found.tls.ca!r}, verified {verified}")
        if emulated and client in ("requests", "httpx"):
            assert found.proxy is not None and found.proxy.rules == f"{client} rules (emulated)"
    assert not wrong, "\n".join(wrong)


def test_a_tls_cell_carries_the_certificate_and_the_verify_error(lab: HttpsLab) -> None:
    text = f"""
sources:
  trusting: {{kind: process, inherit_env: false, http_client: requests, env: {{REQUESTS_CA_BUNDLE: "{lab.ca.ca_file}"}}}}
  refusing: {{kind: process, inherit_env: false, http_client: requests}}
targets:
  api: {{kind: http, url: "{lab.url}"}}
"""
    result = run_text(text)
    for source in ("trusting", "refusing"):
        tls = cell(result, source, "api").tls
        assert tls is not None
        assert (tls.subject, tls.issuer) == ("CN=127.0.0.1", "CN=probe-engine test CA")
        assert tls.sans == ["IP Address:127.0.0.1", "DNS:localhost"]
        assert tls.not_after and tls.not_after.endswith("GMT")
    refused = cell(result, "refusing", "api")
    assert refused.status == "tls-error"
    assert refused.tls is not None and refused.tls.ca.startswith("certifi ")
    assert refused.tls.verify_error == "unable to get local issuer certificate (X509 error 20)"


def test_the_diagnosis_names_the_trust_difference_and_the_variable_that_fixes_it(
    lab: HttpsLab,
) -> None:
    require(shutil.which("curl") is not None, "curl is not installed")
    text = f"""
sources:
  task-requests: {{kind: process, inherit_env: false, http_client: requests, env: {{SSL_CERT_FILE: "{lab.ca.ca_file}"}}}}
  shell-curl: {{kind: shell, tool: curl, inherit_env: false, env: {{PATH: /usr/bin:/bin, SSL_CERT_FILE: "{lab.ca.ca_file}"}}}}
targets:
  api: {{kind: http, url: "{lab.url}"}}
"""
    result = run_text(text)
    assert cell(result, "shell-curl", "api").status == "ok"
    assert cell(result, "task-requests", "api").status == "tls-error"
    (finding,) = [f for f in result.findings if f.rule == "tls-trust"]
    assert finding.title.startswith("task-requests does not trust the certificate shell-curl")
    assert "certifi" in finding.detail and "SSL_CERT_FILE" in finding.detail
    assert finding.next_step.startswith(f"Set REQUESTS_CA_BUNDLE={lab.ca.ca_file} ")
    assert finding.facts["fix_variable"] == "REQUESTS_CA_BUNDLE"
    names = {str(lab.ca.ca_file): "CA_FILE", lab.url: "URL", certifi.where(): "CERTIFI_BUNDLE"}
    check_golden(finding, "tls-trust", names)
