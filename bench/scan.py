"""A scan as a user types it: `probe-engine run` writing report.json, against `nmap -sT`.

    .venv/bin/python -m bench.scan                  # from the repository root; a minute or two
    .venv/bin/python -m bench.scan --repeats 3 --ports 1-2000

Every figure is measured in fresh processes, interleaved round by round with nmap on the same
loopback ports (see bench/README.md, "Scans through the command line"):
  - the marginal connect rate: (N - 1) cells over the time an N-cell run takes beyond a 1-cell
    run, for N cells as one target with a port range and as N targets of one port each; nmap's
    the same way (a range against one port). Targets: >= 0.5x nmap (range), >= 0.25x (targets);
  - the one-cell run from start to written report (target <= 0.3 s), nmap's one port beside it;
  - the peak RSS of each run (from wait4(), through bench.run's launcher).
Children run as installed code does: with the modules' bytecode cached (PYTHONDONTWRITEBYTECODE
is dropped for them, and a first round warms the cache). Writes bench/scan-results.json.
Every packet goes to 127.0.0.1; no name is resolved. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .lab import LOOPBACK, Listeners, write_scan, write_targets
from .run import CLEAN_ENV, HERE, PROBE_ENGINE, child, nmap_scan

TARGET_RANGE_RATIO = 0.5
TARGET_TARGETS_RATIO = 0.25
TARGET_ONE_CELL_S = 0.3


def _run_argv(matrix: Path, out: Path) -> list[str]:
    return [
        PROBE_ENGINE,
        "run",
        str(matrix),
        "--format",
        "json",
        "--out",
        str(out),
        "--output",
        "none",
        "--no-progress",
    ]


def _marginal(cells: int, many_s: float, one_s: float) -> float:
    """Cells per second that the N-1 extra cells cost beyond a one-cell run."""
    extra = many_s - one_s
    return (cells - 1) / extra if extra > 0 else float("inf")


def measure(low: int, high: int, repeats: int, work: Path) -> dict[str, Any]:
    ports = list(range(low, high + 1))
    matrices = {
        "one": write_scan(work / "one.yaml", low, low),
        "range": write_scan(work / "range.yaml", low, high),
        "targets": write_targets(work / "targets.yaml", ports),
    }
    samples: dict[str, list[float]] = {k: [] for k in (*matrices, "nmap_one", "nmap_range")}
    rss: dict[str, list[float]] = {k: [] for k in matrices}
    sizes: dict[str, int] = {}
    for round_ in range(repeats + 1):  # round 0 warms the bytecode cache and is dropped
        samples["nmap_one"].append(nmap_scan(low, low)[0])
        samples["nmap_range"].append(nmap_scan(low, high)[0])
        for name, matrix in matrices.items():
            out = work / f"out-{name}"
            wall, status, peak = child(_run_argv(matrix, out), timeout=300)
            if status not in (0, 1) or not (out / "report.json").exists():
                wall = float("inf")
            samples[name].append(wall)
            rss[name].append(peak)
            sizes[name] = (out / "report.json").stat().st_size
        if round_ == 0:
            for values in (*samples.values(), *rss.values()):
                values.clear()
        print(f"  round {round_}/{repeats}", flush=True)
    best = {k: min(v) for k, v in samples.items()}
    cells = len(ports)
    nmap_rate = _marginal(cells, best["nmap_range"], best["nmap_one"])
    range_rate = _marginal(cells, best["range"], best["one"])
    targets_rate = _marginal(cells, best["targets"], best["one"])
    return {
        "cells": cells,
        "ports": f"{low}-{high}",
        "samples_s": samples,
        "medians_s": {k: statistics.median(v) for k, v in samples.items()},
        "peak_rss_mb": rss,
        "report_json_bytes": sizes,
        "nmap_marginal_per_s": nmap_rate,
        "range_marginal_per_s": range_rate,
        "targets_marginal_per_s": targets_rate,
        "range_vs_nmap": range_rate / nmap_rate,
        "targets_vs_nmap": targets_rate / nmap_rate,
        "one_cell_s": best["one"],
        "nmap_one_port_s": best["nmap_one"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__)
    parser.add_argument("--ports", default="1-5000", help="port range on 127.0.0.1")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args(argv)
    low, high = (int(p) for p in args.ports.split("-"))
    CLEAN_ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # children cache bytecode, as installs do
    load_before = os.getloadavg()
    listeners = Listeners(low, high, 5)
    try:
        with tempfile.TemporaryDirectory(prefix="pe-bench-scan-") as folder:
            found = measure(low, high, args.repeats, Path(folder))
    finally:
        listeners.close()
    found["load_average"] = {"before": load_before, "after": os.getloadavg()}
    python = platform.python_version()
    found["machine"] = f"{platform.node()}, {os.cpu_count()} CPUs, Python {python}"
    found["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (HERE / "scan-results.json").write_text(json.dumps(found, indent=2) + "\n")

    def row(what: str, value: str, target: str = "", ok: bool | None = None) -> None:
        mark = "" if ok is None else ("PASS" if ok else "MISS")
        print(f"  {what:<58} {value:>22}  {target:<16} {mark}")

    cells = found["cells"]
    after = found["load_average"]["after"][0]
    print(f"\nScan of {cells:,} loopback ports ({found['ports']} on {LOOPBACK}), best of "
          f"{args.repeats}; load {load_before[0]:.1f} -> {after:.1f}")  # fmt: skip
    row("nmap -sT, marginal rate (range minus one port)", f"{found['nmap_marginal_per_s']:,.0f}/s")
    for name, label, target in (
        ("range", "one target, a port range", TARGET_RANGE_RATIO),
        ("targets", f"{cells:,} targets of one port", TARGET_TARGETS_RATIO),
    ):
        ratio = found[f"{name}_vs_nmap"]
        row(
            f"probe-engine run -> report.json, {label}",
            f"{found[f'{name}_marginal_per_s']:,.0f}/s = {ratio:.2f}x",
            f">= {target}x nmap",
            ratio >= target,
        )
    one = found["one_cell_s"]
    row("one-cell run, start to written report.json", f"{one:.3f} s", f"<= {TARGET_ONE_CELL_S} s",
        one <= TARGET_ONE_CELL_S)  # fmt: skip
    row("  nmap -sT, one port", f"{found['nmap_one_port_s']:.3f} s")
    for name in ("one", "range", "targets"):
        peak = min(found["peak_rss_mb"][name])
        size = found["report_json_bytes"][name] / 1e6
        row(f"  peak RSS / report.json size, {name}", f"{peak:.0f} MB / {size:.1f} MB")
    print(f"wrote {HERE / 'scan-results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
