"""What the diagnosis costs at 10,000 cells, against the run it explains (target: < 10%).

`python -m bench.diagnosis` runs this section alone (about half a minute); `python -m bench`
runs it as section 7. Two real runs on loopback, each of 10,000 cells:
- scan: two local sources over ports 1-5000 of 127.0.0.1 (one tcp target, `ports:`), mostly
  closed, a few listeners: the port-scan summary's case;
- targets: two local sources over 5000 targets of one port each (t1 ... t5000): one column
  per target, the case where every column is its own candidate.
For each, `run_matrix` (which diagnoses inside) and `diagnose()` on its result, best of N,
each from a collected heap. The share is of wall-clock time, what a user waits for; the
CPU seconds of each are printed beside it, since on a shared, loaded machine a single-threaded
diagnosis waits for the CPU and its wall time says more about the neighbours than about it.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from probe_engine import RunOptions, load_matrix, run_matrix
from probe_engine.diagnose import diagnose

from .lab import LOOPBACK, Listeners, write_scan

TARGET_SHARE = 0.10


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    seconds, _cpu, value = _clocked(action)
    return seconds, value


def _clocked(action: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, value) of action()."""
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    value = action()
    return time.perf_counter() - started, time.process_time() - cpu, value


def _write_targets(path: Path, low: int, high: int, sources: int) -> Path:
    lines = ["version: 1", "sources:"]
    lines += [f"  here{i}: {{kind: local}}" for i in range(1, sources + 1)]
    lines += ["targets:"]
    lines += [f"  t{p}: {{kind: tcp, host: {LOOPBACK}, port: {p}}}" for p in range(low, high + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(work: Path, low: int, high: int, repeats: int) -> dict[str, Any]:
    """{case: {cells, run_s, diagnose_s (samples), share, findings, evidence}} per case."""
    span = high - low + 1
    sources = max(1, -(-10_000 // span))
    cases = {
        "scan": write_scan(work / "diag-scan.yaml", low, high, sources),
        "targets": _write_targets(work / "diag-targets.yaml", low, high, sources),
    }
    found: dict[str, Any] = {}
    for case, path in cases.items():
        loaded = load_matrix(path)
        run_s, run_cpu, result = _clocked(
            lambda: anyio.run(run_matrix, loaded, RunOptions())  # noqa: B023
        )
        clocked = [_clocked(lambda: diagnose(result)) for _ in range(repeats)]  # noqa: B023
        samples = [wall for wall, _cpu, _ in clocked]
        findings = result.findings
        found[case] = {
            "cells": result.summary.total,
            "run_s": run_s,
            "run_cpu_s": run_cpu,
            "diagnose_s": samples,
            "diagnose_cpu_s": [cpu for _, cpu, _ in clocked],
            "share": min(samples) / run_s,
            "findings": [f.title for f in findings],
            "evidence_listed": sum(len(f.evidence) for f in findings),
            "evidence_total": sum(f.evidence_total or 0 for f in findings),
        }
    return found


def lines(found: dict[str, Any]) -> list[str]:
    out = []
    for case, seen in found.items():
        verdict = "PASS" if seen["share"] < TARGET_SHARE else "MISS"
        out.append(
            f"{case:8} {seen['cells']:>6,} cells: run {seen['run_s']:.2f} s "
            f"({seen['run_cpu_s']:.2f} s CPU), diagnose {min(seen['diagnose_s']) * 1000:.0f} ms "
            f"(median {sorted(seen['diagnose_s'])[len(seen['diagnose_s']) // 2] * 1000:.0f} ms; "
            f"{min(seen['diagnose_cpu_s']) * 1000:.0f} ms CPU) = "
            f"{seen['share']:.1%} of the run (target < {TARGET_SHARE:.0%}) {verdict}; "
            f"{len(seen['findings'])} findings citing {seen['evidence_listed']} of "
            f"{seen['evidence_total']:,} cells"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.diagnosis")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    low, high = 1, 5000
    with tempfile.TemporaryDirectory(prefix="probe-engine-bench-") as work:
        listeners = Listeners(low, high, count=5)
        try:
            found = measure(Path(work), low, high, max(1, min(args.repeats, 20)))
        finally:
            listeners.close()
    for line in lines(found):
        print(line)
    for case, seen in found.items():
        print(f"  {case}: " + "; ".join(seen["findings"][:3]))
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
