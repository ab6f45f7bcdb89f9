"""The run's index (probe_engine/diagnose/index.py), which every rule reads, is the same read in
bulk (a scan's checks, in C) as read cell by cell, and the rules find what these runs hold.
(When the rules moved onto the index, a frozen copy of the rules that walked every cell gave
the same causes and findings on these runs; the copy was then removed, so that a rule is
written once.)

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

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.diagnose import RULES, diagnose
from probe_engine.diagnose.cells import down_rows, fresh
from probe_engine.diagnose.findings import finding
from probe_engine.diagnose.index import Index, _read_connects, build
from probe_engine.results import CellResult, MatrixResult

from .conftest import require, run_text
from .metamorphic import generate, run
from .test_diagnose_names import ipv6_loopback
from .test_metamorphic import DEFAULTS, pools

MATRICES = 24


def _disagreements(result: MatrixResult, label: str, seen: set[str]) -> list[str]:
    """Where the index read in bulk differs from the one read cell by cell on one result
    (`seen`: gains the rules that found a cause, and whether they could be worded)."""
    problems = []
    fresh()
    if _index_fields(build(result)) != _index_fields(build(result, in_bulk=False)):
        problems.append(f"{label}: the index read in bulk differs from the one read cell by cell")
    down_rows(result)
    for name, rule in RULES.items():
        fresh()
        causes = rule(result)
        seen |= {name} if causes else set()
        for cause in causes:
            finding(cause, result)  # every cause can be said
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


def _orders(result: MatrixResult, seed: int) -> Iterator[tuple[str, MatrixResult]]:
    shuffled = list(result.cells)
    random.Random(seed).shuffle(shuffled)
    yield "as run", result
    yield "shuffled", result.model_copy(update={"cells": shuffled})
    yield "reversed", result.model_copy(update={"cells": list(reversed(result.cells))})


def _compare(
    results: dict[str, MatrixResult],
) -> tuple[list[str], set[str]]:
    """Disagreements over every result in every order, and the rules that found a cause."""
    problems: list[str] = []
    seen: set[str] = set()
    for seed, (name, result) in enumerate(results.items()):
        for order, variant in _orders(result, seed):
            label = f"{name} ({order})"
            problems += _disagreements(variant, label, seen)
            diagnose(variant)
    return problems, seen


@pytest.fixture(scope="module")
def lab() -> Iterator[LoopbackLab]:
    with LoopbackLab() as fixtures:
        yield fixtures


def test_generated_matrices_index_the_same_in_bulk_and_cell_by_cell(
    lab: LoopbackLab,
) -> None:
    sources, targets = pools(lab)
    made = [generate(seed, sources, targets, DEFAULTS) for seed in range(MATRICES)]
    with ThreadPoolExecutor(4) as pool:
        ran = list(pool.map(lambda g: run(g.text, {}), made))
    results = {f"seed {g.seed}": result for g, result in zip(made, ran, strict=True)}
    problems, seen = _compare(results)
    assert not problems, "\n".join(problems[:20])
    # The sweep reached these rules (the rest: the two runs below).
    assert {"target-down", "proxy-differs", "dns-failure"} <= seen, seen


def test_a_scan_and_a_race_index_the_same_in_bulk_and_cell_by_cell(
    lab: LoopbackLab,
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
    problems, seen = _compare({"scan": scan, "places": places, "race": race})
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
    """A port refused, then accepting, while the matrix runs (as tests/test_diagnose_timing):
    bound from the start, so that no other program can take it before it listens."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    port = int(held.getsockname()[1])

    def start() -> None:
        held.listen(8)

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
        held.close()
