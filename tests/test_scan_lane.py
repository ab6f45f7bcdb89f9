"""The scan lane says exactly what the runner's phases say: tcp cells to address literals
(a port scan) are started and, when the kernel answers at once, finished in a few lines
(probe_engine/agent/scan.py); every other cell, and every connect still in progress, goes
the runner's way. The same batch is run both ways and the records compared, timings aside:
open and closed ports of our own over a range, IPv6 ::1, several addresses per cell, a
full-backlog listener whose connects time out, port 0, and a cell with a chosen source (not
the lane's). Then the concurrency limit, a batch cut short with connects in flight, and the
shipped agent on Python 3.8 against the in-process phases.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from probe_engine.agent.runner import FLUSH_CELLS, Runner
from probe_engine.agent.ship import agent_command, agent_payload
from probe_engine.demo.fixtures import FullBacklog

from .conftest import require
from .test_agent import _interpreter

LOOPBACK = "127.0.0.1"
OTHER_LOOPBACK = "127.0.0.2"
# Each port of ours is held on these too (bound, never listening), so that no other program
# on this machine can listen there between two runs: a connect there is refused, always.
EVERYWHERE = (
    (socket.AF_INET, LOOPBACK),
    (socket.AF_INET, OTHER_LOOPBACK),
    (socket.AF_INET6, "::1"),
)


class Ports:
    """Ports this test owns on loopback: listening ones that never accept (the handshake
    completes in the kernel's queue), bound ones that never listen (refused), and a listener
    whose accept queue is full (connects hang); each held on every loopback address."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []
        self.backlogs: list[FullBacklog] = []
        self.range: list[tuple[int, bool]] = []  # (port, open), in port order
        for index in range(40):
            is_open = index % 3 == 0
            self.range.append((self._owned(socket.AF_INET, LOOPBACK, is_open), is_open))
        self.range.sort()
        self.open6 = self._owned(socket.AF_INET6, "::1", listening=True)
        self.closed6 = self._owned(socket.AF_INET6, "::1", listening=False)
        self.backlog = self._full_backlog()

    def _owned(self, family: int, address: str, listening: bool) -> int:
        """A port bound at `address` (listening or not) and held everywhere else."""
        for _attempt in range(50):
            sock = socket.socket(family)
            sock.bind((address, 0))
            if listening:
                sock.listen(64)
            port = int(sock.getsockname()[1])
            if self._hold_elsewhere(port, (family, address)):
                self.socks.append(sock)
                return port
            sock.close()
        raise AssertionError("no loopback port free on every loopback address")

    def _full_backlog(self) -> int:
        for _attempt in range(50):
            backlog = FullBacklog()
            self.backlogs.append(backlog)
            if self._hold_elsewhere(backlog.port, (socket.AF_INET, LOOPBACK)):
                return backlog.port
        raise AssertionError("no loopback port free on every loopback address")

    def _hold_elsewhere(self, port: int, bound: tuple[int, str]) -> bool:
        held = []
        for family, address in EVERYWHERE:
            if (family, address) == bound:
                continue
            sock = socket.socket(family)
            try:
                sock.bind((address, port))
            except OSError:
                sock.close()
                for other in held:
                    other.close()
                return False
            held.append(sock)
        self.socks.extend(held)
        return True

    @property
    def open4(self) -> int:
        return next(port for port, is_open in self.range if is_open)

    @property
    def closed4(self) -> int:
        return next(port for port, is_open in self.range if not is_open)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        for backlog in self.backlogs:
            backlog.close()


@pytest.fixture(scope="module")
def ports() -> Iterator[Ports]:
    require(socket.has_ipv6 and _has_ipv6_loopback(), "no IPv6 loopback (::1) here")
    owned = Ports()
    try:
        yield owned
    finally:
        owned.close()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def tcp(cell_id: int, host: str, port: int, **plan: Any) -> dict[str, Any]:
    timeout = plan.pop("timeout", None)
    cell: dict[str, Any] = {"id": cell_id, "plan": {"kind": "tcp", "host": host, "port": port}}
    cell["plan"].update(plan)
    if timeout is not None:
        cell["timeout"] = timeout
    return cell


def scan_batch(ports: Ports, backlog: int) -> list[dict[str, Any]]:
    """Every kind of cell the lane takes, and one it does not."""
    cells = [tcp(i, LOOPBACK, port) for i, (port, _open) in enumerate(ports.range)]
    more = [
        tcp(0, "::1", ports.open6),
        tcp(0, "[::1]", ports.closed6),
        tcp(0, "svc.example", ports.open4, addresses=[LOOPBACK, OTHER_LOOPBACK]),
        tcp(0, "svc.example", ports.open6, addresses=["::1", LOOPBACK]),
        tcp(0, "svc.example", ports.closed4, addresses=[LOOPBACK]),
        tcp(0, LOOPBACK, backlog, timeout=0.3),
        tcp(0, "svc.example", backlog, addresses=[LOOPBACK, OTHER_LOOPBACK], timeout=0.3),
        tcp(0, LOOPBACK, 0),
        tcp(0, LOOPBACK, ports.open4, bind={"address": LOOPBACK}),  # not the lane's
    ]
    for offset, cell in enumerate(more):
        cell["id"] = 1000 + offset
    return cells + more


class Ran:
    """One batch's outcomes by id, timings aside, and what the runner counted."""

    def __init__(self, outcomes: list[dict[str, Any]], stats: dict[str, Any], lane: int) -> None:
        self.order = [o["id"] for o in outcomes]
        self.by_id = {o["id"]: untimed(o) for o in outcomes}
        # Key order too, as the agent's JSON lines keep it (theirs also say "type").
        self.keys = {
            o["id"]: [[k for k in o if k != "type"]] + [list(c) for c in o["checks"]]
            for o in outcomes
        }
        self.stats = {k: v for k, v in stats.items() if k != "wall_s"}
        self.lane_cells = lane


def untimed(outcome: dict[str, Any]) -> dict[str, Any]:
    """An outcome without what differs from run to run: when, for how long."""
    kept = {k: v for k, v in outcome.items() if k not in ("started_at", "duration_ms", "type")}
    if kept.get("message"):
        kept["message"] = re.sub(r"\d+ ms", "N ms", kept["message"])
    checks = []
    for record in outcome["checks"]:
        check = {k: v for k, v in record.items() if k != "duration_ms"}
        if check.get("message"):
            check["message"] = re.sub(r"\d+ ms", "N ms", check["message"])
        checks.append(check)
    kept["checks"] = checks
    return kept


def run(
    cells: list[dict[str, Any]],
    scan_lane: bool,
    concurrency: int = 256,
    stop_on_first_emit: bool = False,
) -> Ran:
    outcomes: list[dict[str, Any]] = []
    stop = threading.Event()

    def emit(batch: list[Any]) -> None:
        outcomes.extend(batch)
        if stop_on_first_emit:
            stop.set()

    request: Any = {"cells": cells, "timeout": 5.0, "concurrency": concurrency}
    runner = Runner(request, emit, stop, env={}, scan_lane=scan_lane)
    stats = runner.run()
    return Ran(outcomes, dict(stats), runner.lane.cells if runner.lane else 0)


def test_the_lane_gives_the_records_of_the_runners_phases(
    ports: Ports,
) -> None:
    cells = scan_batch(ports, ports.backlog)
    lane, phases = run(cells, scan_lane=True), run(cells, scan_lane=False)
    assert lane.by_id == phases.by_id
    assert lane.keys == phases.keys
    assert lane.stats == phases.stats
    assert lane.lane_cells == len(cells) - 1  # all but the chosen source's
    assert phases.lane_cells == 0
    # ... and what both say is right, not merely the same.
    for index, (port, is_open) in enumerate(ports.range):
        (check,) = lane.by_id[index]["checks"]
        assert (lane.by_id[index]["status"], check["port"]) == (
            "ok" if is_open else "refused",
            port,
        )
        if is_open:
            assert (check["message"], check["source_address"]) == ("connected", LOOPBACK)
        else:
            assert (check["errno_name"], check["family"]) == ("ECONNREFUSED", "ipv4")
    extra = [lane.by_id[1000 + i] for i in range(9)]
    assert [o["status"] for o in extra] == [
        "ok",
        "refused",
        "refused",
        "refused",
        "refused",
        "timeout",
        "timeout",
        "refused",
        "ok",
    ]
    assert [(c["family"], c["source_address"]) for c in extra[0]["checks"]] == [("ipv6", "::1")]
    assert extra[1]["checks"][0]["address"] == "::1"
    assert [c["status"] for c in extra[2]["checks"]] == ["ok", "refused"]
    assert [(c["address"], c["status"]) for c in extra[3]["checks"]] == [
        ("::1", "ok"),
        (LOOPBACK, "refused"),  # the port listens on ::1 only
    ]
    timed_out = extra[5]["checks"][0]
    assert (timed_out["errno"], timed_out["errno_name"]) == (None, None)  # not the kernel's
    assert "the probe's deadline" in timed_out["message"]
    assert [c["status"] for c in extra[6]["checks"]] == ["timeout", "refused"]
    assert extra[8]["checks"][0]["bind"] == LOOPBACK


def test_the_lane_keeps_the_concurrency_limit(ports: Ports) -> None:
    """One cell at a time: the closed port waits for the hanging connect's deadline, in both."""
    cells = [tcp(1, LOOPBACK, ports.backlog, timeout=0.2), tcp(2, LOOPBACK, ports.closed4)]
    lane = run(cells, scan_lane=True, concurrency=1)
    phases = run(cells, scan_lane=False, concurrency=1)
    assert lane.order == phases.order == [1, 2]
    assert lane.by_id == phases.by_id
    assert [lane.by_id[i]["status"] for i in (1, 2)] == ["timeout", "refused"]


def test_a_batch_cut_short_reports_the_lanes_connects_in_flight(
    ports: Ports,
) -> None:
    """The run is stopped as soon as the first answers are out: the connects to the full
    backlog are still in flight, and say so (cancelled, connecting for how long)."""
    backlog = ports.backlog
    cells = [
        tcp(1, LOOPBACK, backlog, timeout=20),
        tcp(2, LOOPBACK, ports.closed4),
        tcp(3, "svc.example", backlog, addresses=[OTHER_LOOPBACK, LOOPBACK], timeout=20),
        tcp(4, LOOPBACK, ports.open4),
    ]
    lane = run(cells, scan_lane=True, stop_on_first_emit=True)
    phases = run(cells, scan_lane=False, stop_on_first_emit=True)
    assert lane.by_id == phases.by_id
    assert lane.stats == phases.stats
    assert lane.stats["stopped"] is True
    assert set(lane.by_id) == {1, 2, 3, 4}
    cut = lane.by_id[1]
    assert (cut["status"], cut["message"]) == ("cancelled", "tcp connecting N ms")
    assert cut["checks"][0]["message"] == "connecting when the run was cut, for N ms"
    assert [c["status"] for c in lane.by_id[3]["checks"]] == ["refused", "cancelled"]
    assert [lane.by_id[i]["status"] for i in (2, 4)] == ["refused", "ok"]


def test_a_stopped_scan_starts_no_more_cells_after_the_answers_it_gave(ports: Ports) -> None:
    """Stopped at its first group of answers (FLUSH_CELLS closed ports, answered inside
    connect()), a scan starts nothing more: the connect in flight is cut short, the rest of
    the batch is never started (the engine reports those cells as cut)."""
    closed = [port for port, is_open in ports.range if not is_open]
    cells = [tcp(0, LOOPBACK, ports.backlog, timeout=20)]
    cells += [tcp(i, LOOPBACK, closed[i % len(closed)]) for i in range(1, 3 * FLUSH_CELLS)]
    lane = run(cells, scan_lane=True, stop_on_first_emit=True)
    phases = run(cells, scan_lane=False, stop_on_first_emit=True)
    assert lane.by_id == phases.by_id
    assert lane.order == phases.order
    assert sorted(lane.by_id) == list(range(FLUSH_CELLS + 1))
    assert lane.by_id[0]["status"] == "cancelled"
    assert {lane.by_id[i]["status"] for i in range(1, FLUSH_CELLS + 1)} == {"refused"}


def test_the_shipped_agent_on_python_3_8_gives_the_same_records(
    ports: Ports,
) -> None:
    """Containers bring old Pythons: the lane runs there as the phases run here."""
    python = _interpreter("3.8.18")
    require(python is not None, "no Python 3.8 on this machine (pyenv)")
    assert python is not None
    cells = scan_batch(ports, ports.backlog)
    phases = run(cells, scan_lane=False)
    command = agent_command(python)
    command[1:1] = ["-I", "-S"]
    request = {"cells": cells, "timeout": 5.0, "concurrency": 256}
    shipped = subprocess.run(
        command, input=agent_payload(request), capture_output=True, timeout=60, check=False
    )
    assert shipped.returncode == 0, shipped.stderr.decode()
    lines = [json.loads(line) for line in shipped.stdout.splitlines()]
    outcomes = [line for line in lines if line["type"] == "result"]
    (stats,) = [line["stats"] for line in lines if line["type"] == "done"]
    there = Ran(outcomes, stats, 0)
    assert there.by_id == phases.by_id
    assert there.keys == phases.keys
    assert there.stats == phases.stats
