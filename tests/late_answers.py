"""Run by tests/test_scan_lane_late.py inside a network namespace of its own, whose loopback is
slowed by a token bucket: the scan lane's connects are still in progress when connect()
returns, so the runner carries them on, and the answers (connected, refused) come late.
Prints one JSON line: both ways' outcomes and how many connects the lane handed over."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from probe_engine.agent.runner import Runner
from probe_engine.agent.tcp import Connector

from .test_scan_lane import LOOPBACK, OTHER_LOOPBACK, Ports, tcp, untimed


def fill_the_queue(datagrams: int = 40, size: int = 1000) -> None:
    """Datagrams ahead of the connects' SYNs in the token bucket's queue (to a socket that
    never reads them): a SYN waits for them, a third of a second at the bucket's rate, so
    no answer can come inside connect()."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sink.bind((LOOPBACK, 0))
        for _ in range(datagrams):
            sock.sendto(b"x" * size, sink.getsockname())


def main() -> None:
    watched = [0]
    watch = Connector.watch

    def counting(self: Connector, attempt: Any) -> None:
        watched[0] += 1
        watch(self, attempt)

    Connector.watch = counting  # type: ignore[method-assign]
    ports = Ports()
    cells = [
        tcp(1, LOOPBACK, ports.open4),
        tcp(2, LOOPBACK, ports.closed4),
        tcp(3, "::1", ports.open6),
        tcp(4, "::1", ports.closed6),
        tcp(5, "svc.example", ports.open6, addresses=["::1", LOOPBACK]),
        tcp(6, "svc.example", ports.open4, addresses=[LOOPBACK, OTHER_LOOPBACK]),
    ]
    answers: dict[str, Any] = {}
    for name, lane in (("lane", True), ("phases", False)):
        outcomes: list[dict[str, Any]] = []
        watched[0] = 0
        fill_the_queue()
        request: Any = {"cells": cells, "timeout": 30.0, "concurrency": 256}
        Runner(request, outcomes.extend, threading.Event(), env={}, scan_lane=lane).run()
        answers[name] = {
            "outcomes": {o["id"]: untimed(o) for o in outcomes},
            "carried_on": watched[0],
        }
    ports.close()
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
