"""Hostile input: how fast and how small `probe-engine validate` refuses a bad file.

    .venv/bin/python -m bench.hostile                 # about 30 s
    .venv/bin/python -m bench.hostile --repeats 3

For each file: `probe-engine validate FILE` in a fresh process, its wall time (best and median
of N) and peak RSS (from wait4, started by a tiny launcher so that this process's pages are
not counted), and the in-process `load_matrix` time. Then the 5000-target file of bench/run.py
section 5 (valid: it must load fast, not be refused). Not a test: nothing asserts; the goal
from issue #13 is billion laughs refused in under 0.5 s. Writes bench/hostile-results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from probe_engine import SpecError, load_matrix
from probe_engine.spec.limits import MAX_VALUES

from .lab import write_targets

HERE = Path(__file__).resolve().parent
BAD = HERE.parent / "tests" / "data" / "bad"
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
quiet = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
         (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=quiet)
_pid, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def validate_child(path: Path) -> tuple[float, int, float]:
    """`probe-engine validate PATH` in a child: (wall s, exit status, peak RSS MB)."""
    argv = [str(Path(sys.executable).parent / "probe-engine"), "validate", str(path)]
    out = subprocess.run(
        [sys.executable, "-S", "-c", _LAUNCHER, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    wall, status, rss_kib = out.split()
    return float(wall), int(status), int(rss_kib) / 1024.0


def load_seconds(path: Path) -> float:
    gc.collect()
    started = time.perf_counter()
    with contextlib.suppress(SpecError):
        load_matrix(path, environ={})
    return time.perf_counter() - started


def hostile_files(work: Path) -> dict[str, Path]:
    wide = work / "wide.yaml"
    wide.write_text("x: [" + ",".join("0" for _ in range(2 * MAX_VALUES)) + "]\n")
    valid = work / "valid.yaml"
    valid.write_text(
        "sources: {here: {kind: local}}\ntargets: {db: {kind: tcp, host: 127.0.0.1, port: 1}}\n"
    )
    return {
        "a valid 2-line matrix (start-up floor)": valid,
        "billion laughs (10 levels x 10 aliases)": BAD / "billion-laughs.yaml",
        "600 levels of nesting": BAD / "deep-nesting.yaml",
        "recursive alias": BAD / "recursive-alias.yaml",
        f"wide: {2 * MAX_VALUES:,} values, {wide.stat().st_size / 1e6:.1f} MB": wide,
        "several mistakes (7 lines)": BAD / "several-mistakes.yaml",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        files = hostile_files(work)
        print(f"load average {os.getloadavg()[0]:.1f}; best (median) of {args.repeats}")
        print(f"{'file':48} {'validate wall':>16} {'peak RSS':>9} {'load_matrix':>12}")
        for name, path in files.items():
            runs = [validate_child(path) for _ in range(args.repeats)]
            loads = [load_seconds(path) for _ in range(args.repeats)]
            walls = [r[0] for r in runs]
            rss = max(r[2] for r in runs)
            status = runs[0][1]
            print(
                f"{name:48} {min(walls):6.3f} ({statistics.median(walls):.3f}) s "
                f"{rss:6.1f} MB {min(loads) * 1000:9.1f} ms  exit {status}"
            )
            results[name] = {"wall_s": walls, "peak_rss_mb": rss, "load_s": loads, "exit": status}
        targets = write_targets(work / "targets.yaml", list(range(1, 5001)))
        loads = [load_seconds(targets) for _ in range(args.repeats)]
        print(
            f"{'5000-target matrix (valid), load_matrix':48} {'':16} {'':9} "
            f"{min(loads) * 1000:9.1f} ms  (median {statistics.median(loads) * 1000:.1f})"
        )
        results["5000 targets"] = {"load_s": loads}
    results["load_average_after"] = {"1min": os.getloadavg()[0]}
    (HERE / "hostile-results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
