"""The re-implemented proxy rules (agent/proxy_rules.py) against the real clients, case by case.

About 800 generated environments (tests/proxy_cases.py) are put to real urllib, requests and
httpx (in a child whose environment is rebuilt from each case) and to the real curl (through
two recording listeners: which one curl connected to says which path it took; `--connect-to`
keeps its direct connections on loopback). The rules must agree with every one: these are the
rules used where a client is absent, and the ones the diagnosis replays.

No case is exempt (the list below is empty). Any exception must be pinned there with the real
behaviour and the reason it cannot be matched.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from probe_engine.agent.proxy import decide

from .conftest import require
from .proxy_cases import cases

HERE = Path(__file__).parent
PORTS = {
    "http_proxy": 1001,
    "HTTP_PROXY": 1002,
    "https_proxy": 1003,
    "HTTPS_PROXY": 1004,
    "all_proxy": 1005,
    "ALL_PROXY": 1006,
}
# (client, url, env as JSON) -> why the rules cannot agree. Empty: they agree on every case.
PINNED: dict[tuple[str, str, str], str] = {}


def python_value(variable: str, scheme: str) -> str:
    """Each variable its own port: the value a client returns names the variable."""
    address = f"proxy.invalid:{PORTS[variable]}"
    return f"{scheme}://{address}" if scheme else address


def real_decisions(client: str, table: list[dict[str, object]]) -> list[object]:
    lines = "".join(json.dumps(case) + "\n" for case in table)
    run = subprocess.run(
        [sys.executable, str(HERE / "real_proxy_decision.py"), client],
        input=lines,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return list(json.loads(run.stdout))


def _with_scheme(value: str | None) -> str | None:
    return value if value is None or "://" in value else "http://" + value


@pytest.mark.parametrize("client", ["urllib", "requests", "httpx"])
def test_the_rules_agree_with_the_real_python_client(client: str) -> None:
    table = cases(python_value)
    assert len(table) >= 400
    disagreements = []
    for case, real in zip(table, real_decisions(client, table), strict=True):
        url, env = str(case["url"]), dict(case["env"])  # type: ignore[call-overload]
        record, proxy = decide(url, env, client)
        if isinstance(real, dict):  # the real client raised: the rules must fail the same way
            agreed = record.get("error") == real["error"]
            shown: object = record.get("error")
        else:
            agreed = proxy == _with_scheme(real) and "error" not in record
            if agreed and proxy is not None:
                agreed = _with_scheme(env.get(str(record["variable"]))) == proxy
            shown = proxy
        key = (client, url, json.dumps(env, sort_keys=True))
        if not agreed and key not in PINNED:
            disagreements.append(f"{url} {env}: real {real!r}, rules {shown!r}")
    assert not disagreements, f"{len(disagreements)} of {len(table)}:\n" + "\n".join(
        disagreements[:40]
    )


class Recorder:
    """A listener that counts connections and answers anything with an empty 200."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.hits = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


USES = re.compile(r"Uses proxy env variable (\w+) ==")


PLACEHOLDER = "proxy-placeholder.invalid:9"


def curl_path(case: dict[str, object]) -> tuple[str, str | None]:
    """(the path curl took: proxy or direct, the proxy variable curl says it used). Each case
    gets listeners of its own, so a late connection can never be counted for another case."""
    proxy, direct = Recorder(), Recorder()
    try:
        env = {
            k: v.replace(PLACEHOLDER, f"127.0.0.1:{proxy.port}")
            for k, v in dict(case["env"]).items()  # type: ignore[call-overload]
        }
        run = subprocess.run(
            ["curl", "-sS", "-v", "-o", "/dev/null", "--max-time", "5",
             "--connect-to", f"::127.0.0.1:{direct.port}", str(case["url"])],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )  # fmt: skip
        # curl has exited, so its connection is queued; a loaded machine may accept it late.
        for _ in range(1000):
            if proxy.hits or direct.hits:
                break
            threading.Event().wait(0.005)
        path = "proxy" if proxy.hits else "direct" if direct.hits else "none: " + run.stderr[-300:]
    finally:
        proxy.close()
        direct.close()
    used = [v for v in USES.findall(run.stderr) if v.lower() != "no_proxy"]
    return path, used[0] if used else None


def test_the_rules_agree_with_the_real_curl() -> None:
    require(shutil.which("curl") is not None, "curl is not installed")
    table = cases(lambda variable, scheme: f"{scheme}://{PLACEHOLDER}" if scheme else PLACEHOLDER)
    assert len(table) >= 400

    def check(case: dict[str, object]) -> str | None:
        url, env = str(case["url"]), dict(case["env"])  # type: ignore[call-overload]
        real = curl_path(case)
        record, _proxy = decide(url, env, "curl")
        mine = ("proxy" if record["used"] else "direct", record.get("variable"))
        key = ("curl", url, json.dumps(env, sort_keys=True))
        if mine != real and key not in PINNED:
            return f"{url} {env}: curl {real}, rules {mine}"
        return None

    with ThreadPoolExecutor(4) as pool:
        disagreements = [w for w in pool.map(check, table) if w]
    assert not disagreements, f"{len(disagreements)}:\n" + "\n".join(disagreements[:40])
