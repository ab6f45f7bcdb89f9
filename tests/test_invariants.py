"""The engine's guard on every result: a status its own checks do not support is an engine
fault (source-error, exit 3), never a network fact. Proven by forging an agent's answers."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.invariants import broken_invariants, every_broken_invariant
from probe_engine.results import CellResult
from probe_engine.status import STATUSES

from .conftest import cell, run_text

TCP = {"kind": "tcp", "host": "localhost", "port": 8000}
HTTP = {"kind": "http", "host": "localhost", "port": 8000, "url": "http://localhost:8000/"}
DNS = {"kind": "dns", "host": "api.demo.internal"}
LOOKUP = {"name": "dns", "status": "ok", "host": "localhost", "addresses": ["127.0.0.1"]}
CONNECTED = {"name": "tcp", "status": "ok", "address": "127.0.0.1", "port": 8000}
ANSWERED = {"name": "http", "status": "ok", "http_status": 200}
PING = {"kind": "icmp", "host": "localhost", "count": 3}
ECHOED = {"name": "icmp", "status": "ok", "address": "127.0.0.1", "sent": 3, "received": 3}
UDP = {"kind": "udp", "host": "10.0.0.1", "port": 53}
DATAGRAM = {"name": "udp", "status": "ok", "address": "10.0.0.1", "port": 53, "received_bytes": 9}


def result(status: str, checks: list[dict[str, Any]], **more: Any) -> CellResult:
    return CellResult.model_validate(
        {
            "source": "s",
            "source_name": "s",
            "target": "t",
            "target_name": "t",
            "endpoint": "e",
            "status": status,
            "checks": checks,
            **more,
        }
    )


TRUE_RESULTS = [
    ("tcp by name", TCP, result("ok", [LOOKUP, CONNECTED])),
    ("tcp refused", TCP, result("refused", [LOOKUP, {**CONNECTED, "status": "refused"}])),
    ("http", HTTP, result("ok", [LOOKUP, CONNECTED, ANSWERED])),
    (
        "http through a proxy",
        HTTP,
        result(
            "ok",
            [
                {**LOOKUP, "host": "proxy.internal", "role": "proxy", "addresses": ["10.0.0.9"]},
                {**CONNECTED, "address": "10.0.0.9", "port": 3128, "role": "proxy"},
                ANSWERED,
            ],
            proxy={"client": "requests", "used": True, "url": "http://u:***@proxy.internal:3128"},
        ),
    ),
    (
        "nc reports the name it was given",
        TCP,
        result("ok", [{**CONNECTED, "address": "localhost"}]),
    ),
    ("curl resolves inside itself", HTTP, result("ok", [CONNECTED, ANSWERED])),
    (
        "endpoints named by the plan",
        {**TCP, "addresses": ["10.244.0.5"]},
        result("ok", [{**CONNECTED, "address": "10.244.0.5"}]),
    ),
    ("dns", DNS, result("ok", [{**LOOKUP, "host": "api.demo.internal."}])),
    (
        "dns timeout",
        DNS,
        result("timeout", [{"name": "dns", "status": "timeout", "host": DNS["host"]}]),
    ),
    ("ping by name", PING, result("ok", [LOOKUP, ECHOED])),
    ("ping timeout", PING, result("timeout", [LOOKUP, {**ECHOED, "status": "timeout"}])),
    ("udp answered", UDP, result("ok", [DATAGRAM])),
    ("udp open or filtered", UDP, result("timeout", [{**DATAGRAM, "status": "timeout"}])),
    ("a row that could not run", TCP, result("source-error", [])),
    ("cancelled before it began", HTTP, result("cancelled", [])),
]

FORGED = [
    (
        "ok with a lookup only",
        TCP,
        result("ok", [LOOKUP]),
        "no tcp check that connected to localhost:8000",
    ),
    (
        "ok from another port",
        TCP,
        result("ok", [LOOKUP, {**CONNECTED, "port": 9000}]),
        "no tcp check that connected to localhost:8000",
    ),
    (
        "ok to an address the name did not resolve to",
        TCP,
        result("ok", [LOOKUP, {**CONNECTED, "address": "127.0.0.7"}]),
        "no tcp check that connected",
    ),
    (
        "ok to another literal",
        {**TCP, "host": "10.0.0.1"},
        result("ok", [{**CONNECTED, "address": "10.0.0.2"}]),
        "no tcp check that connected to 10.0.0.1:8000",
    ),
    ("http ok without an answer", HTTP, result("ok", [LOOKUP, CONNECTED]), "no ok http check"),
    (
        "ok although a check failed",
        TCP,
        result("ok", [LOOKUP, {**CONNECTED, "status": "refused"}]),
        "the cell says ok but its checks say tcp refused",
    ),
    (
        "a dns cell about another name",
        DNS,
        result("ok", [LOOKUP]),
        "no dns check for its own name api.demo.internal",
    ),
    (
        "a dns cell with a connect",
        DNS,
        result("ok", [{**LOOKUP, "host": DNS["host"]}, CONNECTED]),
        "a dns cell carries tcp checks",
    ),
    (
        "a ping ok without a reply",
        PING,
        result("ok", [LOOKUP, {**ECHOED, "received": 0}]),
        "no icmp check with an echo reply from localhost",
    ),
    (
        "a ping answered by another address",
        PING,
        result("ok", [LOOKUP, {**ECHOED, "address": "127.0.0.9"}]),
        "no icmp check with an echo reply from localhost",
    ),
    (
        "udp silence called ok",
        UDP,
        result("ok", [{**DATAGRAM, "received_bytes": None}]),
        "no udp check with a datagram back from 10.0.0.1:53",
    ),
    (
        "udp ok from another port",
        UDP,
        result("ok", [{**DATAGRAM, "port": 54}]),
        "no udp check with a datagram back from 10.0.0.1:53",
    ),
    (
        "a udp cell with a connect",
        UDP,
        result("ok", [DATAGRAM, {**CONNECTED, "address": "10.0.0.1", "port": 53}]),
        "a udp cell carries tcp checks",
    ),
    (
        "a proxied cell that never reached the proxy",
        HTTP,
        result(
            "ok",
            [LOOKUP, CONNECTED, ANSWERED],
            proxy={"client": "requests", "used": True, "url": "http://proxy.internal:3128"},
        ),
        "no tcp check that connected to the proxy proxy.internal:3128",
    ),
]


@pytest.mark.parametrize(
    ("plan", "answer"), [c[1:] for c in TRUE_RESULTS], ids=[c[0] for c in TRUE_RESULTS]
)
def test_true_results_break_no_invariant(plan: dict[str, Any], answer: CellResult) -> None:
    assert broken_invariants(answer, plan) == []


@pytest.mark.parametrize(
    ("plan", "answer", "words"), [c[1:] for c in FORGED], ids=[c[0] for c in FORGED]
)
def test_forged_results_are_named(plan: dict[str, Any], answer: CellResult, words: str) -> None:
    broken = broken_invariants(answer, plan)
    assert any(words in problem for problem in broken), broken


@pytest.mark.parametrize("cell_status", sorted(STATUSES))
def test_the_one_check_tcp_shortcut_gives_the_full_verdicts(cell_status: str) -> None:
    """broken_invariants answers a tcp cell of one check in a few comparisons (a scan's bulk):
    for every status of the cell and of its check, and each check name, the same verdicts as
    every rule asked in full."""
    plans: list[Any] = [TCP, {**TCP, "host": "127.0.0.1"}, {**TCP, "addresses": ["10.0.0.2"]}]
    for check_status in sorted(STATUSES):
        for name in ("tcp", "dns", "http", "icmp"):
            for check in (
                {**CONNECTED, "name": name, "status": check_status},
                {**CONNECTED, "name": name, "status": check_status, "port": 9},
                {"name": name, "status": check_status},
            ):
                answer = result(cell_status, [check])
                for plan in plans:
                    full = every_broken_invariant(answer, plan)
                    assert broken_invariants(answer, plan) == full, (answer, plan)


FAKE_AGENT = """#!{python}
# Speaks the agent's protocol, and lies: every cell is ok after a lookup alone.
import json, sys
print('{{"type": "ready", "magic": "none"}}', flush=True)  # then its modules come, as source
sys.stdin.readline()  # the modules
batch = json.loads(sys.stdin.readline())
print(json.dumps({{"type": "hello", "facts": {{}}}}))
for spec in batch["cells"]:
    host = spec["plan"]["host"]
    check = {{"name": "dns", "status": "ok", "host": host, "addresses": ["127.0.0.1"]}}
    print(json.dumps({{"type": "result", "id": spec["id"], "status": "ok", "checks": [check]}}))
print(json.dumps({{"type": "done", "stats": {{}}}}))
"""


def test_a_forged_agent_line_is_an_engine_fault_and_the_run_exits_3(
    loopback: LoopbackLab, tmp_path: Path
) -> None:
    fake = tmp_path / "python3"
    fake.write_text(FAKE_AGENT.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    matrix = f"""
sources:
  liar: {{kind: process, python: "{fake}", inherit_env: false}}
  here: {{kind: local}}
targets:
  closed: {{kind: tcp, host: localhost, port: {loopback.closed_port}}}
  name: {{kind: dns, name: localhost}}
"""
    outcome = run_text(matrix)
    lied = cell(outcome, "liar", "closed")
    assert lied.status == "source-error"
    assert lied.message is not None and lied.message.startswith("engine fault")
    assert "no tcp check that connected to localhost" in lied.message
    # The lie that happens to be true passes; the honest row is untouched.
    assert cell(outcome, "liar", "name").status == "ok"
    assert cell(outcome, "here", "closed").status == "refused"
    assert outcome.exit_status == 3
    report = json.loads(outcome.model_dump_json())
    assert report["exit_status"] == 3
