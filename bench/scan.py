"""A scan as a user types it: `probe-engine run` writing report.json, against `nmap -sT`.

    .venv/bin/python -m bench.scan                  # from the repository root; a minute or two
    .venv/bin/python -m bench.scan --repeats 3 --ports 1-2000

Every figure is measured in fresh processes, interleaved round by round with nmap on the same
loopback ports (see bench/README.md, "Scans through the command line"):
  - the marginal connect rate: (N - 1) cells over the time an N-cell run takes beyond a 1-cell
    run, for N cells as one target with a port range and as N targets of one port each; nmap's
    the same way (a range against one port). Targets: >= 0.5x nmap (range), >= 0.25x (targets);
  - the one-cell run from start to written report (target <= 0.3 s), nmap's one port beside it;
  - the peak RSS of each run (from wait4(), through bench.run's launcher);
  - 10,000 cells (two local sources over 5000 ports) with the default reports (json, html,
    junit, markdown): wall time, peak RSS (target < 200 MB), each file's size (HTML target
    < 5 MB, Markdown < 1 MiB; report.prom rendered apart), and the HTML in headless Chromium:
    load to interactive, and opening the folded scan (target < 2 s);
  - with --huge, 100,000 cells (20 sources over the 5000 ports), report.json only: the peak RSS.
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

from probe_engine.reports import DEFAULT_FORMATS

from .lab import LOOPBACK, Listeners, write_scan, write_targets
from .run import CLEAN_ENV, HERE, PROBE_ENGINE, child, nmap_scan

TARGET_RANGE_RATIO = 0.5
TARGET_TARGETS_RATIO = 0.25
TARGET_ONE_CELL_S = 0.3
TARGET_RSS_MB = 200.0
TARGET_HTML_BYTES = 5_000_000
TARGET_MARKDOWN_BYTES = 1024 * 1024
TARGET_INTERACTIVE_S = 2.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


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


def browser_times(html: Path, repeats: int) -> dict[str, Any]:
    """Headless Chromium on the page from file:// (nothing else may load): seconds from
    navigation to the load event (the page's script has run: interactive), and for a click on
    the first folded target until its cells are built. Best of `repeats` fresh pages."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"error": "Python Playwright is not installed"}
    if not os.access(CHROMIUM, os.X_OK):
        return {"error": f"{CHROMIUM} is missing"}
    loads: list[float] = []
    opens: list[float] = []
    buttons = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.route(
                "**/*",
                lambda route: (
                    route.continue_() if route.request.url == html.as_uri() else route.abort()
                ),
            )
            started = time.perf_counter()
            page.goto(html.as_uri(), wait_until="load")
            loads.append(time.perf_counter() - started)
            expand = page.locator("#grid button.expand").first
            if expand.count():
                started = time.perf_counter()
                expand.click()
                buttons = page.evaluate("() => document.querySelectorAll('button.cell').length")
                opens.append(time.perf_counter() - started)
            page.close()
        browser.close()
    return {"load_s": loads, "open_group_s": opens, "cells_after_open": buttons}


def reports_at_scale(low: int, high: int, repeats: int, work: Path, sources: int) -> dict[str, Any]:
    """`sources` local sources over the port range, every report format written."""
    matrix = write_scan(work / f"scale{sources}.yaml", low, high, sources=sources)
    out = work / f"out-scale{sources}"
    formats = DEFAULT_FORMATS if sources <= 2 else ("json",)
    argv = _run_argv(matrix, out)
    argv[argv.index("json")] = ",".join(formats)
    walls, peaks = [], []
    for _ in range(repeats):
        wall, status, peak = child(argv, timeout=1800)
        walls.append(wall if status in (0, 1) else float("inf"))
        peaks.append(peak)
    if sources <= 2:  # the Prometheus file too, rendered from report.json apart from the run
        render = [PROBE_ENGINE, "render", str(out / "report.json"), "--format", "prometheus"]
        child(render, timeout=600)
    sizes = {p.suffix[1:]: p.stat().st_size for p in sorted(out.iterdir())}
    found: dict[str, Any] = {
        "cells": sources * (high - low + 1),
        "wall_s": walls,
        "peak_rss_mb": peaks,
        "bytes": sizes,
    }
    if "html" in formats:
        found["chromium"] = browser_times(out / "report.html", max(repeats, 3))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__)
    parser.add_argument("--ports", default="1-5000", help="port range on 127.0.0.1")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--huge", action="store_true", help="also 100,000 cells (20 sources)")
    args = parser.parse_args(argv)
    low, high = (int(p) for p in args.ports.split("-"))
    CLEAN_ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # children cache bytecode, as installs do
    load_before = os.getloadavg()
    listeners = Listeners(low, high, 5)
    try:
        with tempfile.TemporaryDirectory(prefix="pe-bench-scan-") as folder:
            found = measure(low, high, args.repeats, Path(folder))
            print(f"  {2 * (high - low + 1):,} cells with every report ...", flush=True)
            found["ten_thousand"] = reports_at_scale(low, high, 1, Path(folder), 2)
            if args.huge:
                print("  100,000 cells ...", flush=True)
                found["hundred_thousand"] = reports_at_scale(low, high, 1, Path(folder), 20)
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
    ten = found["ten_thousand"]
    sizes = ten["bytes"]
    peak = min(ten["peak_rss_mb"])
    row(f"{ten['cells']:,} cells, the default reports: peak RSS", f"{peak:.0f} MB",
        f"< {TARGET_RSS_MB:.0f} MB", peak < TARGET_RSS_MB)  # fmt: skip
    row("  wall time, start to the four reports", f"{min(ten['wall_s']):.2f} s")
    row("  report.html", f"{sizes['html'] / 1e6:.2f} MB", "< 5 MB",
        sizes["html"] < TARGET_HTML_BYTES)  # fmt: skip
    row("  report.md", f"{sizes['md'] / 1e3:.1f} KB", "< 1 MiB",
        sizes["md"] < TARGET_MARKDOWN_BYTES)  # fmt: skip
    for suffix in ("json", "xml", "prom"):
        row(f"  report.{suffix}", f"{sizes[suffix] / 1e6:.3f} MB")
    chromium = ten.get("chromium", {})
    if "error" in chromium:
        row("  Chromium", chromium["error"])
    else:
        load = min(chromium["load_s"])
        row("  Chromium: file:// to the load event (interactive)", f"{load:.2f} s", "< 2 s",
            load < TARGET_INTERACTIVE_S)  # fmt: skip
        if chromium["open_group_s"]:
            opened = min(chromium["open_group_s"])
            row(f"  Chromium: open the scan ({chromium['cells_after_open']:,} cells)",
                f"{opened:.2f} s", "< 2 s", opened < TARGET_INTERACTIVE_S)  # fmt: skip
    if "hundred_thousand" in found:
        huge = found["hundred_thousand"]
        row(f"{huge['cells']:,} cells, report.json: peak RSS", f"{min(huge['peak_rss_mb']):.0f} MB")
        row("  wall time / report.json size",
            f"{min(huge['wall_s']):.1f} s / {huge['bytes']['json'] / 1e6:.0f} MB")  # fmt: skip
    print(f"wrote {HERE / 'scan-results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
