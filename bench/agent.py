"""The agent's own loop on a port scan: `run_batch` against a bare connect_ex loop.

    .venv/bin/python -m bench.agent                   # from the repository root; about a minute
    .venv/bin/python -m bench.agent --rounds 30 --ports 1-5000

One batch of tcp cells to 127.0.0.1 over the port range (the lab of bench/lab.py: mostly
closed, five accept-and-close listeners of our own), in-process, interleaved round by round:
  - `run_batch` as the local source calls it (closed and open ports in the scan lane);
  - the same batch with the lane off (every cell through the runner's phases);
  - the bare loop: socket(), setblocking(False), connect_ex(), close(), nothing recorded.
Then what the lane buys a whole run: `run_matrix` of the range as one target with a port
range and as one target per port (bench/lab.py's matrices), in-process, with the local source's
runner as it is and with the lane off, interleaved; the process's CPU time (every thread), as
wall times on a shared machine mostly measure the neighbours.
Each timed after gc.collect(), in another order each round. The headline is paired: the
median over rounds of each round's ratio to the bare loop (its neighbours in time share the
machine's load; on a busy machine two bests come from different quiet moments). Best and
median beside; every sample in bench/agent-results.json. Every packet goes to 127.0.0.1.
Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

import probe_engine.sources.local
from probe_engine.agent.runner import Runner
from probe_engine.agent.runner import run_batch as runner_run_batch
from probe_engine.engine import run_matrix
from probe_engine.spec import load_matrix

from .lab import LOOPBACK, Listeners, write_scan, write_targets
from .run import HERE, parse_range

TARGET_RATIO = 1.3  # issue #15's agent share: the lane within 1.3x the bare loop
LANE, BARE = "run_batch, scan lane", "bare connect_ex loop"


def batch(ports: Sequence[int]) -> dict[str, Any]:
    cells = [
        {"id": i, "plan": {"kind": "tcp", "host": LOOPBACK, "port": port}}
        for i, port in enumerate(ports)
    ]
    return {"cells": cells, "timeout": 2.0, "concurrency": 256}


def run_batch(request: dict[str, Any], scan_lane: bool) -> int:
    got: list[Any] = []
    Runner(request, got.extend, threading.Event(), scan_lane=scan_lane).run()  # type: ignore[arg-type]
    return len(got)


def bare_loop(ports: Sequence[int]) -> int:
    for port in ports:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex((LOOPBACK, port))
        sock.close()
    return len(ports)


@contextmanager
def lane_off() -> Iterator[None]:
    """The local source's runner with every cell through the phases (this bench only)."""

    def phases(request: Any, emit: Any, stop: Any = None, env: Any = None) -> Any:
        return Runner(request, emit, stop, env, scan_lane=False).run()

    probe_engine.sources.local.run_batch = phases
    try:
        yield
    finally:
        probe_engine.sources.local.run_batch = runner_run_batch


def whole_runs(low: int, high: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """CPU seconds of run_matrix, lane on and off, for the range and for one target a port."""
    found: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="pe-bench-agent-") as folder:
        matrices = {
            "port range": write_scan(Path(folder) / "range.yaml", low, high),
            "one target a port": write_targets(
                Path(folder) / "targets.yaml", list(range(low, high + 1))
            ),
        }
        for name, path in matrices.items():
            loaded = load_matrix(path)
            samples: dict[str, list[float]] = {"lane": [], "off": []}
            for round_ in range(rounds + 1):  # round 0 warms up and is dropped
                for way in ("lane", "off") if round_ % 2 else ("off", "lane"):
                    gc.collect()
                    started = time.process_time()
                    if way == "lane":
                        anyio.run(run_matrix, loaded)
                    else:
                        with lane_off():
                            anyio.run(run_matrix, loaded)
                    if round_:
                        samples[way].append(time.process_time() - started)
            found[name] = samples
    return found


def timed(action: Callable[[], int]) -> float:
    gc.collect()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent", description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--ports", default="1-5000")
    parser.add_argument("--run-rounds", type=int, default=10, help="rounds of whole runs")
    args = parser.parse_args(argv)
    low, high = parse_range(args.ports)
    listeners = Listeners(low, high, 5)
    ports = list(range(low, high + 1))
    request = batch(ports)
    runs: dict[str, Callable[[], int]] = {
        LANE: lambda: run_batch(request, True),
        "run_batch, lane off": lambda: run_batch(request, False),
        BARE: lambda: bare_loop(ports),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    load_before = os.getloadavg()[0]
    try:
        for action in runs.values():  # warm-up: imports, caches, the first page faults
            action()
        for round_ in range(args.rounds):
            # Each round in another order: no tool always runs right after the same one.
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                samples[name].append(timed(runs[name]))
        runs_cpu = whole_runs(low, high, args.run_rounds)
    finally:
        listeners.close()
    load_after = os.getloadavg()[0]
    bare = samples[BARE]
    print(
        f"{len(ports):,} tcp cells to {LOOPBACK}:{low}-{high} ({len(listeners.ports)} listening), "
        f"{args.rounds} rounds; load {load_before:.1f} -> {load_after:.1f}"
    )
    print(f"  {'':24} {'best':>8} {'median':>8}  {'paired':>6} (the median of each round's ratio)")
    ratios = {}
    for name, values in samples.items():
        ratios[name] = statistics.median(v / b for v, b in zip(values, bare, strict=True))
        print(
            f"  {name:24} {min(values) * 1000:5.1f} ms {statistics.median(values) * 1000:5.1f} ms"
            f"  {ratios[name]:5.2f}x the bare loop"
        )
    lane = ratios[LANE]
    print(f"  scan lane {lane:.2f}x the bare loop, paired (target <= {TARGET_RATIO}x)")
    print(f"run_matrix in-process, CPU seconds, {args.run_rounds} rounds: lane on / lane off")
    for name, cpu in runs_cpu.items():
        paired = statistics.median(a / b for a, b in zip(cpu["lane"], cpu["off"], strict=True))
        print(
            f"  {name:24} median {statistics.median(cpu['lane']):.3f} / "
            f"{statistics.median(cpu['off']):.3f} s, best {min(cpu['lane']):.3f} / "
            f"{min(cpu['off']):.3f} s; paired {paired:.2f}"
        )
    found = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load": [load_before, load_after],
        "cells": len(ports),
        "listening": listeners.ports,
        "seconds": samples,
        "paired_ratios": ratios,
        "run_matrix_cpu_s": runs_cpu,
        "target_ratio": TARGET_RATIO,
    }
    (HERE / "agent-results.json").write_text(json.dumps(found, indent=2) + "\n")
    print(f"wrote {HERE / 'agent-results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
