"""The rules that read the run's index (probe_engine/diagnose/index.py) find what they found
walking every cell: on real runs, the same causes (same cells, by identity and in order, same
facts, same words) and the same findings as the rules kept in tests/diagnosis_reference.

The runs: matrices drawn by the metamorphic generator from its loopback pools (refused, reset,
silent and timing-out ports, http errors, dead proxies, nameserver lookups, shell tools, port
lists), a scan of two sources over a range of ports, and a readiness race (a port that starts
listening mid-run). Each result is also compared with its cells shuffled and reversed: the
index keeps the run's order, so every order must give the same findings both ways.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml

import probe_engine.diagnose as diagnosis
from probe_engine.demo.fixtures import LoopbackLab, free_port
from probe_engine.diagnose import RULES, diagnose
from probe_engine.diagnose.cause import Cause
from probe_engine.diagnose.cells import down_rows, fresh
from probe_engine.diagnose.findings import finding
from probe_engine.diagnose.index import Index, _read_connects, build
from probe_engine.results import CellResult, MatrixResult

from .conftest import require, run_text
from .diagnosis_reference import REFERENCE, RESTRUCTURED
from .diagnosis_reference.grouping import down_rows as reference_down_rows
from .metamorphic import generate, run
from .test_diagnose_names import ipv6_loopback
from .test_metamorphic import DEFAULTS, pools

MATRICES = 24


def _cited(found: Cause) -> tuple[Any, ...]:
    """A cause as data: its cells by identity, in order, and all it says."""
    return (
        found.rule,
        found.subject,
        [id(c) for c in found.failing],
        [id(c) for c in found.contrast],
        dict(found.facts),
        found.variant,
        sorted(found.context),
    )


def _disagreements(result: MatrixResult, label: str, seen: set[str]) -> list[str]:
    """Where the indexed rules and the reference differ on one result (`seen`: gains the
    rules that found a cause)."""
    problems = []
    fresh()
    old_rows, new_rows = reference_down_rows(result), down_rows(result)
    if {r: (d.cells, d.could_not_run, d.contrast) for r, d in old_rows.items()} != {
        r: (d.cells, d.could_not_run, d.contrast) for r, d in new_rows.items()
    }:
        problems.append(f"{label}: down_rows differ")
    if _index_fields(build(result)) != _index_fields(build(result, in_bulk=False)):
        problems.append(f"{label}: the index read in bulk differs from the one read cell by cell")
    for name in RESTRUCTURED:
        fresh()
        old, new = REFERENCE[name](result), RULES[name](result)
        seen |= {name} if old else set()
        if [_cited(c) for c in old] != [_cited(c) for c in new]:
            problems.append(f"{label}: {name} finds {len(old)} causes, now {len(new)} (or others)")
        said = [finding(c, result).model_dump() for c in old]
        if said != [finding(c, result).model_dump() for c in new]:
            problems.append(f"{label}: {name}'s findings are worded differently")
    return problems


def _index_fields(index: Index) -> dict[str, Any]:
    """An index as data, its cells by identity."""

    def ids(cells: list[CellResult]) -> list[int]:
        return [id(c) for c in cells]

    return {
        "columns": {k: ids(v) for k, v in index.columns.items()},
        "rows": {k: ids(v) for k, v in index.rows.items()},
        "ok": ids(index.ok),
        "ok_columns": {k: ids(v) for k, v in index.ok_columns.items()},
        "reached": index.reached,
        "row_statuses": index.row_statuses,
        "statuses": index.statuses,
        "proxied": ids(index.proxied),
        "lookups": {k: [(id(c), id(r)) for c, r in v] for k, v in index.lookups.items()},
        "families": index.families,
        "raced": index.raced,
        "retried": ids(index.retried),
        "kinds": index.kinds,
        "via": index.via,
    }


def _reference_findings(result: MatrixResult, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    with monkeypatch.context() as patched:
        patched.setattr(diagnosis, "RULES", REFERENCE)
        return [f.model_dump() for f in diagnose(result)]


def _orders(result: MatrixResult, seed: int) -> Iterator[tuple[str, MatrixResult]]:
    shuffled = list(result.cells)
    random.Random(seed).shuffle(shuffled)
    yield "as run", result
    yield "shuffled", result.model_copy(update={"cells": shuffled})
    yield "reversed", result.model_copy(update={"cells": list(reversed(result.cells))})


def _compare(
    results: dict[str, MatrixResult], monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], set[str]]:
    """Disagreements over every result in every order, and the rules that found a cause."""
    problems: list[str] = []
    seen: set[str] = set()
    for seed, (name, result) in enumerate(results.items()):
        for order, variant in _orders(result, seed):
            label = f"{name} ({order})"
            problems += _disagreements(variant, label, seen)
            found = [f.model_dump() for f in diagnose(variant)]
            if found != _reference_findings(variant, monkeypatch):
                problems.append(f"{label}: diagnose() differs from the reference")
    return problems, seen


@pytest.fixture(scope="module")
def lab() -> Iterator[LoopbackLab]:
    with LoopbackLab() as fixtures:
        yield fixtures


def test_generated_matrices_get_the_findings_of_the_rules_walking_every_cell(
    lab: LoopbackLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources, targets = pools(lab)
    made = [generate(seed, sources, targets, DEFAULTS) for seed in range(MATRICES)]
    with ThreadPoolExecutor(4) as pool:
        ran = list(pool.map(lambda g: run(g.text, {}), made))
    results = {f"seed {g.seed}": result for g, result in zip(made, ran, strict=True)}
    problems, seen = _compare(results, monkeypatch)
    assert not problems, "\n".join(problems[:20])
    # The sweep covered the rules it claims to compare (the rest: the two runs below).
    assert {"target-down", "proxy-differs", "dns-failure"} <= seen, seen


def test_a_scan_and_a_race_get_the_findings_of_the_rules_walking_every_cell(
    lab: LoopbackLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    low = max(1, lab.http_port - 40)
    scan = run_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"timeout": "5s"},
                "sources": {"here": {"kind": "local"}, "py": {"kind": "process"}},
                "targets": {
                    "scan": {"kind": "tcp", "host": "127.0.0.1", "ports": [f"{low}-{low + 80}"]},
                    "closed": {"kind": "tcp", "host": "127.0.0.1", "port": lab.closed_port},
                },
            }
        )
    )
    # The scan's checks are read in bulk (one direct connect per cell); the comparison above
    # holds that path to the one reading each cell.
    assert _read_connects(build(scan, in_bulk=False))
    places = _places(lab)
    race = _race(lab)
    problems, seen = _compare({"scan": scan, "places": places, "race": race}, monkeypatch)
    assert not problems, "\n".join(problems[:20])
    rows = {"source-down", "source-differs", "search-list", "address-family"}
    assert {"target-down", "readiness-race", *rows} <= seen, seen


def _places(lab: LoopbackLab) -> MatrixResult:
    """Rows that differ: one bound to an address this machine lacks (its connects fail with
    EADDRNOTAVAIL before any packet leaves; its lookups work), one that only connects (fails
    everything), one whose proxy (the lab's web server, answering 404 for any other URL)
    reaches what is closed to a direct connect, a short name its nameserver does not complete,
    ::1 refused on the port 127.0.0.1 serves."""
    require(ipv6_loopback(), "needs the IPv6 loopback (::1)")
    nameserver = f"127.0.0.1:{lab.dns.port}"
    elsewhere = {"kind": "local", "bind": {"address": "192.0.2.1"}}
    proxy = {"HTTP_PROXY": f"http://127.0.0.1:{lab.http_port}"}
    relay = {"kind": "process", "inherit_env": False, "env": proxy}
    behind = {"kind": "http", "url": f"http://127.0.0.1:{lab.closed_port}/", "expect_status": [404]}
    return run_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"timeout": "5s"},
                "sources": {
                    "here": {"kind": "local"},
                    "bound": elsewhere,
                    "stuck": elsewhere,
                    "relay": relay,
                },
                "targets": {
                    "web": {"kind": "http", "url": f"http://127.0.0.1:{lab.http_port}/health"},
                    "web-name": {"kind": "tcp", "host": "localhost", "port": lab.http_port},
                    "web-v6": {"kind": "tcp", "host": "::1", "port": lab.http_port},
                    "broken": {"kind": "http", "url": f"http://localhost:{lab.http_port}/error"},
                    "behind": behind,
                    "closed": {"kind": "tcp", "host": "127.0.0.1", "port": lab.closed_port},
                    "api": {"kind": "dns", "name": "api.demo.internal", "nameserver": nameserver},
                    "api-short": {"kind": "dns", "name": "api", "nameserver": nameserver},
                },
                "exclude": [
                    {"source": row, "target": column}
                    for row in ("stuck", "relay")
                    for column in ("api", "api-short")
                ],
            }
        )
    )


def _race(lab: LoopbackLab) -> MatrixResult:
    """A port refused, then accepting, while the matrix runs (as tests/test_diagnose_timing)."""
    port = free_port()
    listening: list[socket.socket] = []

    def start() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(8)
        listening.append(sock)

    timer = threading.Timer(0.4, start)  # the service comes up while `pause` times out
    timer.start()
    try:
        return run_text(
            """
            defaults: {timeout: 1s, concurrency: 1}
            sources: {here: {kind: local}}
            targets:
              api-first: {kind: tcp, host: 127.0.0.1, port: "${PORT}"}
              pause: {kind: tcp, host: 127.0.0.1, port: "${BACKLOG}"}
              api-again: {kind: tcp, host: 127.0.0.1, port: "${PORT}"}
              name-first: {kind: tcp, host: localhost, port: "${PORT}"}
            """,
            {"PORT": str(port), "BACKLOG": str(lab.backlog.port)},
        )
    finally:
        timer.cancel()
        timer.join()
        for sock in listening:
            sock.close()
