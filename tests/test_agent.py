"""The agent: standard library only, Python 3.8 syntax, shipped whole over stdin."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from probe_engine.agent.ship import BOOTSTRAP, SHIPPED, agent_command, agent_payload
from probe_engine.demo.fixtures import LoopbackLab

from .conftest import require

OPTIONAL = {"httpx", "requests", "certifi", "dns"}  # used when importable, never required


def sources() -> dict[str, str]:
    package = resources.files("probe_engine.agent")
    return {name: (package / f"{name}.py").read_text() for name in SHIPPED}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_modules_parse_as_python_3_8(name: str) -> None:
    ast.parse(sources()[name], filename=f"{name}.py", feature_version=(3, 8))


def test_the_bootstrap_parses_as_python_3_8_and_fits_in_an_argument() -> None:
    ast.parse(BOOTSTRAP, feature_version=(3, 8))
    assert len(BOOTSTRAP) < 2048


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_modules_import_only_the_standard_library(name: str) -> None:
    tree = ast.parse(sources()[name])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            root = (node.module or "").split(".")[0]
        elif isinstance(node, ast.Import):
            root = node.names[0].name.split(".")[0]
        else:
            continue
        assert root in sys.stdlib_module_names or root in OPTIONAL or root == "__future__", root


def test_the_agent_runs_from_stdin_in_a_bare_interpreter(loopback: LoopbackLab) -> None:
    request = {
        "concurrency": 8,
        "timeout": 1.0,
        "cells": [
            {"id": 1, "plan": {"kind": "tcp", "host": "127.0.0.1", "port": loopback.http_port}},
            {"id": 2, "plan": {"kind": "tcp", "host": "127.0.0.1", "port": loopback.closed_port}},
        ],
    }
    # -I -S: isolated, no site-packages: httpx and dnspython are out of reach, as in a container.
    command = agent_command(sys.executable)
    command[1:1] = ["-I", "-S"]
    run = subprocess.run(
        command, input=agent_payload(request), capture_output=True, timeout=20, check=False
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert lines[0] == {"type": "ready", "magic": importlib.util.MAGIC_NUMBER.hex()}
    assert lines[1]["type"] == "hello"
    assert lines[1]["facts"]["python"].count(".") == 2
    results = {line["id"]: line for line in lines if line["type"] == "result"}
    assert results[1]["status"] == "ok"
    assert results[2]["checks"][0]["errno_name"] == "ECONNREFUSED"
    assert lines[-1]["type"] == "done"
    assert lines[-1]["stats"]["connects"] == 2


def test_a_tcp_only_batch_imports_no_http_client(loopback: LoopbackLab) -> None:
    """A scan pays for what it probes: requests, http.client and ssl are imported by http cells
    only (requests alone once doubled the agent's time on 500 tcp cells)."""
    script = (
        "import json, sys\n"
        "from probe_engine.agent.stdio import gather\n"
        "from probe_engine.agent import run_batch\n"
        "gather()\n"
        "cells = [{'id': i, 'plan': {'kind': 'tcp', 'host': '127.0.0.1', 'port': p}}\n"
        "         for i, p in enumerate(sys.argv[1:])]\n"
        "got = []\n"
        "run_batch({'cells': cells, 'timeout': 1.0}, got.extend)\n"
        "heavy = ['requests', 'httpx', 'urllib3', 'http.client', 'urllib.request', 'ssl']\n"
        "print(json.dumps([sorted(r['status'] for r in got),\n"
        "                  [m for m in heavy if m in sys.modules]]))\n"
    )
    ports = [str(loopback.http_port), str(loopback.closed_port)]
    run = subprocess.run(
        [sys.executable, "-c", script, *ports], capture_output=True, timeout=20, check=False
    )
    assert run.returncode == 0, run.stderr
    statuses, imported = json.loads(run.stdout)
    assert statuses == ["ok", "refused"]
    assert imported == []


# The shipped agent, telling at its exit which modules it had imported.
TELL_MODULES = BOOTSTRAP.replace(
    "pe_agent.stdio.main()",
    "import os\n"
    "_exit = os._exit\n"
    "def tell(code):\n"
    "    sys.stdout.write(json.dumps({'type': 'modules', 'modules': sorted(sys.modules)}) + '\\n')\n"
    "    sys.stdout.flush()\n"
    "    _exit(code)\n"
    "os._exit = tell\n"
    "pe_agent.stdio.main()",
)


def test_a_tcp_only_batch_imports_little_at_the_far_end(loopback: LoopbackLab) -> None:
    """Shipped, the agent's start is mostly imports: a tcp batch leaves the ping binary's
    (subprocess, shutil), the nameserver query's and ping's (random), the proxies' (urllib.parse)
    and the HTTP clients' modules alone, and never loads the HTTP modules it was sent."""
    request = {
        "timeout": 1.0,
        "cells": [
            {"id": 1, "plan": {"kind": "tcp", "host": "127.0.0.1", "port": loopback.http_port}},
            {"id": 2, "plan": {"kind": "tcp", "host": "127.0.0.1", "port": loopback.closed_port}},
        ],
    }
    run = subprocess.run(
        [sys.executable, "-c", TELL_MODULES],
        input=agent_payload(request),
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()
    told = next(json.loads(line) for line in run.stdout.splitlines() if b'"modules"' in line)
    bare = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    added = set(told["modules"]) - set(bare)
    assert "pe_agent.tcp" in added  # it ran
    unwanted = {"subprocess", "shutil", "random", "urllib.parse", "requests", "httpx", "ssl"}
    unwanted |= {"http.client", "urllib.request"}
    unwanted |= {f"pe_agent.{name}" for name in ("http", "clients", "tls", "proxy_rules")}
    assert added & unwanted == set()


def test_without_requests_the_agent_falls_back_to_http_client_and_says_so(
    loopback: LoopbackLab,
) -> None:
    request = {
        "timeout": 1.0,
        "cells": [
            {
                "id": 1,
                "plan": {
                    "kind": "http",
                    "url": f"http://127.0.0.1:{loopback.http_port}/error",
                    "host": "127.0.0.1",
                    "port": loopback.http_port,
                },
            }
        ],
    }
    command = agent_command(sys.executable)
    command[1:1] = ["-I", "-S"]
    run = subprocess.run(
        command, input=agent_payload(request), capture_output=True, timeout=20, check=False
    )
    result = next(json.loads(line) for line in run.stdout.splitlines() if b'"result"' in line)
    http = result["checks"][-1]
    assert (http["client"], http["http_status"], result["status"]) == (
        "http.client (requests rules (emulated))",
        500,
        "http-error",
    )
    assert result["proxy"]["rules"] == "requests rules (emulated)"


def test_an_httpx_older_than_0_26_is_left_aside_for_http_client(
    loopback: LoopbackLab, tmp_path: Path
) -> None:
    """httpx before 0.26 has no `proxy=`: used anyway, every HTTP cell would be a TypeError
    classified as a network failure (an old image in a pod)."""
    (tmp_path / "httpx.py").write_text(
        '__version__ = "0.25.2"\n'
        "class Client:\n"
        "    def __init__(self, *, proxies=None, verify=True, trust_env=True, timeout=None):\n"
        "        raise TypeError(\"__init__() got an unexpected keyword argument 'proxy'\")\n"
    )
    request = {
        "timeout": 1.0,
        "http_client": "httpx",
        "cells": [
            {
                "id": 1,
                "plan": {
                    "kind": "http",
                    "url": f"http://127.0.0.1:{loopback.http_port}/health",
                    "host": "127.0.0.1",
                    "port": loopback.http_port,
                },
            }
        ],
    }
    bootstrap = f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + BOOTSTRAP
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", bootstrap],
        input=agent_payload(request),
        capture_output=True,
        timeout=20,
        check=False,
    )
    result = next(json.loads(line) for line in run.stdout.splitlines() if b'"result"' in line)
    http = result["checks"][-1]
    assert (http["client"], http["http_status"], result["status"]) == (
        "http.client (httpx rules (emulated))",
        200,
        "ok",
    )


def test_without_dnspython_the_agent_queries_a_nameserver_itself(loopback: LoopbackLab) -> None:
    request = {
        "timeout": 1.0,
        "cells": [
            {
                "id": 1,
                "plan": {
                    "kind": "dns",
                    "host": "api.demo.internal",
                    "nameserver": f"127.0.0.1:{loopback.dns.port}",
                },
            },
            {
                "id": 2,
                "plan": {
                    "kind": "dns",
                    "host": "api",
                    "nameserver": f"127.0.0.1:{loopback.dns.port}",
                    "search": ["demo.internal"],
                    "ndots": 1,
                },
            },
            {
                "id": 3,
                "plan": {
                    "kind": "dns",
                    "host": "nope.demo.internal",
                    "nameserver": f"127.0.0.1:{loopback.dns.port}",
                },
            },
        ],
    }
    command = agent_command(sys.executable)
    command[1:1] = ["-I", "-S"]
    run = subprocess.run(
        command, input=agent_payload(request), capture_output=True, timeout=20, check=False
    )
    results = {
        r["id"]: r
        for r in (json.loads(line) for line in run.stdout.splitlines())
        if r["type"] == "result"
    }
    assert results[1]["checks"][0]["client"] == "stdlib"
    assert results[1]["checks"][0]["addresses"] == ["127.0.0.1"]
    assert results[2]["checks"][0]["qname"] == "api.demo.internal"
    assert results[3]["checks"][0]["errno_name"] == "NXDOMAIN"


def _interpreter(version: str) -> str | None:
    for candidate in (
        f"/root/.pyenv/versions/{version}/bin/python{version[: version.rindex('.')]}",
        shutil.which(f"python{version[: version.rindex('.')]}"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.mark.parametrize("version", ["3.8.18", "3.9.18", "3.10.13", "3.12.1", "3.13.0"])
def test_the_agent_runs_on_every_python_it_claims(version: str, loopback: LoopbackLab) -> None:
    """Containers and pods bring their own Python: the agent must run on 3.8 and newer."""
    python = _interpreter(version)
    require(python is not None, f"no Python {version} on this machine (pyenv)")
    assert python is not None
    request = {
        "timeout": 1.0,
        "cells": [
            {"id": 1, "plan": {"kind": "tcp", "host": "127.0.0.1", "port": loopback.closed_port}},
            {
                "id": 2,
                "plan": {
                    "kind": "http",
                    "url": f"http://127.0.0.1:{loopback.http_port}/health",
                    "host": "127.0.0.1",
                    "port": loopback.http_port,
                },
            },
            {
                "id": 3,
                "plan": {
                    "kind": "dns",
                    "host": "nope.demo.internal",
                    "nameserver": f"127.0.0.1:{loopback.dns.port}",
                },
            },
        ],
    }
    command = agent_command(python)
    command[1:1] = ["-I", "-S"]
    run = subprocess.run(
        command, input=agent_payload(request), capture_output=True, timeout=30, check=False
    )
    assert run.returncode == 0, run.stderr.decode()
    results = {
        r["id"]: r
        for r in (json.loads(line) for line in run.stdout.splitlines())
        if r["type"] == "result"
    }
    assert results[1]["checks"][0]["errno_name"] == "ECONNREFUSED"
    assert results[2]["status"] == "ok"
    assert results[3]["checks"][0]["errno_name"] == "NXDOMAIN"


def _normalized(stdout: bytes) -> list[dict[str, object]]:
    """The agent's lines without what differs from one run to the next (pids, times)."""
    varying = {"pid", "duration_ms", "started_at", "wall_s", "timings"}

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in varying}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    lines = [json.loads(line) for line in stdout.splitlines()]
    return sorted((strip(line) for line in lines), key=json.dumps)  # type: ignore[no-any-return]


def test_an_interpreter_of_the_same_magic_is_sent_code_any_other_the_sources(
    loopback: LoopbackLab,
) -> None:
    """The agent's modules travel as this interpreter's compiled code to a Python whose ready
    line names the same bytecode magic number (it compiles nothing), else as source; either
    runs the batch."""
    from probe_engine.agent.ship import MAGIC

    request = {
        "timeout": 1.0,
        "cells": [
            {"id": 1, "plan": {"kind": "tcp", "host": "127.0.0.1", "port": loopback.closed_port}}
        ],
    }
    for magic, sent in ((MAGIC, b'{"code":'), ("0d0d0a", b'{"source":'), (None, b'{"source":')):
        payload = agent_payload(request, magic)
        assert payload.startswith(sent)
        run = subprocess.run(
            agent_command(sys.executable),
            input=payload,
            capture_output=True,
            timeout=20,
            check=False,
        )
        assert run.returncode == 0, (magic, run.stderr.decode())
        result = next(json.loads(line) for line in run.stdout.splitlines() if b'"result"' in line)
        assert result["checks"][0]["errno_name"] == "ECONNREFUSED"


def test_shipped_compiled_or_as_source_the_agent_sees_the_same_place(
    loopback: LoopbackLab,
) -> None:
    """Fidelity: in a virtual environment with .pth files and its own requests and httpx, the
    agent loaded from shipped code says what it says compiled from source: the same facts
    (interpreter, proxy variables, routes), the same clients and versions, the same answers."""
    from probe_engine.agent.ship import MAGIC

    python = Path(__file__).resolve().parents[1] / ".venv-nosocks" / "bin" / "python"
    require(python.exists(), f"{python} is missing (scripts/setup makes it)")
    site = subprocess.run(
        [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert list(Path(site).glob("*.pth")), f"no .pth file in {site}"
    url = f"http://127.0.0.1:{loopback.http_port}/health"
    cells = [
        {"id": 1, "plan": {"kind": "tcp", "host": "127.0.0.1", "port": loopback.closed_port}},
        {
            "id": 2,
            "plan": {"kind": "http", "url": url, "host": "127.0.0.1", "port": loopback.http_port},
        },
    ]
    outputs = []
    for client in ("requests", "httpx"):
        request = {"timeout": 2.0, "http_client": client, "cells": cells}
        seen = []
        for magic in (MAGIC, None):
            run = subprocess.run(
                agent_command(str(python)),
                input=agent_payload(request, magic),
                capture_output=True,
                timeout=30,
                check=False,
                env={**os.environ, "NO_PROXY": "*", "HTTP_PROXY": "http://127.0.0.1:9"},
            )
            assert run.returncode == 0, run.stderr.decode()
            seen.append(_normalized(run.stdout))
        assert seen[0] == seen[1]
        outputs.append(seen[0])
    labels = [
        next(line for line in output if line.get("id") == 2)["checks"][-1]["client"]  # type: ignore[index]
        for output in outputs
    ]
    assert labels[0].startswith("requests "), labels
    assert labels[1].startswith("httpx "), labels


def test_a_process_source_on_another_python_is_sent_the_sources(loopback: LoopbackLab) -> None:
    """Through the engine: a row whose interpreter says another bytecode magic in its ready
    line (Python 3.8 here) gets the sources and answers as the row of this interpreter does,
    which gets the compiled code."""
    from .conftest import cell, run_text

    python = _interpreter("3.8.18")
    require(python is not None, "no Python 3.8 on this machine (pyenv)")
    result = run_text(
        f"""
        sources:
          old: {{kind: process, python: "{python}", inherit_env: false}}
          same: {{kind: process, inherit_env: false}}
        targets:
          open: {{kind: tcp, host: 127.0.0.1, port: {loopback.http_port}}}
          closed: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}
        """
    )
    for row in ("old", "same"):
        assert cell(result, row, "open").status == "ok"
        assert cell(result, row, "closed").status == "refused"
    pythons = {s.name: s.facts["python"] for s in result.sources}
    assert pythons["old"] == "3.8.18"
    assert pythons["same"] == ".".join(str(n) for n in sys.version_info[:3])
