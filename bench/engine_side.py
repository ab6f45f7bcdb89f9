"""The engine's side of a scan: what a run does with the agent's answers, stage by stage.

    .venv/bin/python -m bench.engine_side                  # from the repository root; seconds
    .venv/bin/python -m bench.engine_side --repeats 9 --ports 1-2000
    PYTHONPATH=/other/checkout .venv/bin/python -m bench.engine_side   # another tree, same way

For each matrix (one local source; a port range on 127.0.0.1, the same with two
expectations, and one target per port; the lab of bench/lab.py: mostly closed, a few
accept-and-close listeners), one real `run_matrix` whose agent answers are kept, then each
stage on those same answers in process, CPU time (time.process_time), the cyclic collector
paused as `probe-engine run` pauses it, best of N:
  - make_results: the agent's dicts made into CellResult models (judged, where the tree does
    it there), as the local source does per emitted batch;
  - collector: the engine's sink on each cell (the invariant guard);
  - assemble: the run's MatrixResult, diagnose() left out (bench/diagnosis.py has it);
  - render_json: report.json's bytes; write_reports: report.json rendered and written
    atomically (fsync included) as the command line does.
Also `expand` (the cells of the matrix). The stages call whatever the imported tree has, so the
same command measures two checkouts side by side (run one after the other). Writes
bench/engine-side-results.json. Every packet goes to 127.0.0.1. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

import probe_engine
from probe_engine import assemble as assembly
from probe_engine import engine
from probe_engine.plan import Selection, expand
from probe_engine.reports import write_reports
from probe_engine.reports.json_report import render_json
from probe_engine.sources import local
from probe_engine.spec import load_matrix

from .lab import LOOPBACK, Listeners, write_scan, write_targets
from .run import HERE, parse_range

EXPECT = (
    'expect:\n  - {target: "scan", status: [refused, ok]}\n'
    '  - {source: here1, target: "scan:22", status: ok}\n'
)


def best_cpu(repeats: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """The least CPU time `work` took in `repeats` calls, and what it returned."""
    best, found = float("inf"), None
    for _ in range(repeats):
        started = time.process_time()
        found = work()
        best = min(best, time.process_time() - started)
    return best, found


def capture(path: Path) -> tuple[Any, list[tuple[Any, ...]], Any]:
    """One real run of `path`: the loaded matrix, each batch the local source validated
    (its arguments), and the record assemble was given."""
    batches: list[tuple[Any, ...]] = []
    records: list[Any] = []
    made, assembled = local.make_results, engine.assemble

    def keep_batch(*args: Any) -> Any:
        args = (args[0], args[1], list(args[2]), *args[3:])
        batches.append(args)
        return made(*args)

    def keep_record(record: Any) -> Any:
        records.append(record)
        return assembled(record)

    local.make_results, engine.assemble = keep_batch, keep_record
    try:
        loaded = load_matrix(path)
        anyio.run(engine.run_matrix, loaded)
    finally:
        local.make_results, engine.assemble = made, assembled
    return loaded, batches, records[0]


def stages(path: Path, repeats: int, out: Path) -> dict[str, float]:
    loaded, batches, record = capture(path)
    matrix = loaded.matrix
    plans = {c.name: c.plan for cs in record.columns.values() for c in cs}
    diagnose, assembly.diagnose = assembly.diagnose, lambda _result: []
    timings: dict[str, float] = {}
    gc.collect()
    gc.disable()
    try:
        timings["expand"], _cells = best_cpu(
            repeats, lambda: expand(matrix, record.columns, Selection(), None, "bench run=0")
        )

        def make() -> list[Any]:
            return [cell for args in batches for cell in local.make_results(*args)]

        timings["make_results"], cells = best_cpu(repeats, make)

        def collect() -> Any:
            sink = engine._Collector(None, [])
            sink.plans = plans
            for cell in cells:
                sink.result(cell)
            return sink

        timings["collector"], sink = best_cpu(repeats, collect)
        seen = type(record)(**{**record.__dict__, "results": sink.results})
        timings["assemble"], result = best_cpu(repeats, lambda: assembly.assemble(seen))
        timings["render_json"], data = best_cpu(repeats, lambda: render_json(result))
        timings["write_reports"], _paths = best_cpu(
            repeats, lambda: write_reports(result, out, ["json"])
        )
    finally:
        gc.enable()
        assembly.diagnose = diagnose
    timings["total"] = sum(v for k, v in timings.items() if k != "render_json")
    timings["cells"] = len(cells)
    timings["report_bytes"] = len(data)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_side", description=__doc__)
    parser.add_argument("--ports", default="1-5000", help="port range on 127.0.0.1")
    parser.add_argument("--repeats", type=int, default=5, help="best of N per stage")
    args = parser.parse_args(argv)
    low, high = parse_range(args.ports)
    found: dict[str, Any] = {"tree": str(Path(probe_engine.__file__).parent.parent)}
    listeners = Listeners(low, high, 5)
    try:
        with tempfile.TemporaryDirectory(prefix="pe-engine-side-") as folder:
            work = Path(folder)
            scan = write_scan(work / "range.yaml", low, high)
            expecting = work / "expect.yaml"
            expecting.write_text(scan.read_text() + EXPECT)
            targets = write_targets(work / "targets.yaml", list(range(low, high + 1)))
            matrices = {"range": scan, "range + expect": expecting, "targets": targets}
            for name, path in matrices.items():
                found[name] = stages(path, args.repeats, work / "out")
    finally:
        listeners.close()
    order = ["expand", "make_results", "collector", "assemble", "render_json", "write_reports"]
    print(f"\nEngine side of {high - low + 1:,} cells on {LOOPBACK} ({found['tree']}), "
          f"CPU ms, best of {args.repeats}; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"  {'stage':16s}" + "".join(f"{name:>16s}" for name in matrices))
    for stage in [*order, "total"]:
        row = "".join(f"{found[name][stage] * 1000:16.1f}" for name in matrices)
        print(f"  {stage:16s}{row}")
    print("  (total: every stage but render_json, which write_reports includes)")
    (HERE / "engine-side-results.json").write_text(json.dumps(found, indent=2) + "\n")
    print(f"wrote {HERE / 'engine-side-results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
