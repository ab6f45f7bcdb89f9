"""The docker source against the local source: what probing from inside a container costs.

    .venv/bin/python -m bench.docker_vs_local                 # root, about a minute
    .venv/bin/python -m bench.docker_vs_local --repeats 9 --cells 500 --big 5000
    .venv/bin/python -m bench.docker_vs_local --no-cold       # skip the from-scratch set-up

Measures (see README-docker.md for the method and the numbers):
  1. set-up of the Docker lab: the private dockerd, the images and the lab's containers, first
     from an empty cache folder (cold: images built from this machine's files), then again
     with the images kept (cached), as a CI job sees them with and without a kept cache;
  2. exec overhead per source: a one-cell matrix run from `local`, `process`, `docker` (the
     agent in pe-scheduler) and `docker` falling back to the shell prober (pe-busybox);
  3. N cells (default 500: one open port, the rest closed) through one container against the
     same N from this process (loopback), ratio target <= 3x; with --big, the same at a size
     where the per-run cost no longer dominates.
The engine and the lab come from the test harness (tests/dockerlab), in a cache folder and a
network namespace of the bench's own (so a test session can run beside it), all removed at the
end. Docker-side packets stay inside the engine's namespace; local-side ones on 127.0.0.1.
Not a test: a MISS is a number to look at. Prints a table, writes bench/docker_results.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from probe_engine import MatrixResult, RunOptions, run_matrix
from probe_engine.demo.fixtures import LoopbackLab, free_port
from probe_engine.spec import load_matrix_text
from tests.dockerlab import (
    DaemonConfig,
    DockerDaemon,
    Lab,
    create_lab,
    ensure_images,
    missing_prerequisites,
    remove_lab,
    run_sync,
)

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 3.0
RUN_DEADLINE = 120.0


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def run_text(text: str) -> MatrixResult:
    loaded = load_matrix_text(text, "bench.yaml", {})
    return anyio.run(run_matrix, loaded, RunOptions(deadline=RUN_DEADLINE))


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "best": min(samples),
        "worst": max(samples),
        "n": len(samples),
    }


# --- 1. set-up ------------------------------------------------------------------------------


def bring_up(cache: Path, netns: str) -> tuple[DockerDaemon, Lab, dict[str, Any]]:
    """Engine, images and lab in `cache`: what each step took."""
    daemon = DockerDaemon(DaemonConfig(cache_dir=cache, netns=netns))
    started = time.perf_counter()
    daemon.start()
    try:
        images = run_sync(lambda: ensure_images(daemon.url, daemon.config.rootfs_dir))
        lab = run_sync(lambda: create_lab(daemon.url, images))
    except BaseException:
        daemon.stop()
        raise
    took = {
        "engine_s": daemon.start_seconds,
        "images": {
            i.repo: {
                "built": i.built,
                "seconds": round(i.seconds, 3),
                "tar_s": round(i.tar_seconds, 3),
                "import_s": round(i.import_seconds, 3),
                "mb": round(i.size / 1e6, 1),
            }
            for i in images.values()
        },
        "lab_s": round(lab.setup_seconds, 3),
        "total_s": round(time.perf_counter() - started, 3),
    }
    return daemon, lab, took


def take_down(daemon: DockerDaemon) -> float:
    async def down() -> None:
        import aiodocker

        async with aiodocker.Docker(url=daemon.url) as docker:
            await remove_lab(docker)

    run_sync(down)
    daemon.stop()
    return daemon.stop_seconds or 0.0


# --- 2 and 3: matrices ----------------------------------------------------------------------


def matrix(source: str, host: str, ports: Sequence[int], timeout: str = "2s") -> str:
    listed = ", ".join(str(p) for p in ports)
    return (
        f"version: 1\ndefaults: {{timeout: {timeout}, concurrency: 256}}\n"
        f"sources:\n  s: {source}\n"
        f"targets:\n  t: {{kind: tcp, host: {host}, ports: [{listed}]}}\n"
    )


def closed_loopback_ports(count: int, taken: set[int]) -> list[int]:
    """Ports nothing listens on (free_port: bound and released), none repeated."""
    found: list[int] = []
    while len(found) < count:
        port = free_port()
        if port not in taken and port not in found:
            found.append(port)
    return found


def measure(text: str, repeats: int) -> tuple[list[float], MatrixResult]:
    samples = []
    result: MatrixResult | None = None
    run_text(text)  # warm: imports, the first exec of an image, caches
    for _ in range(repeats):
        seconds, result = timed(lambda: run_text(text))
        samples.append(seconds)
    assert result is not None
    return samples, result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.docker_vs_local")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cells", type=int, default=500)
    parser.add_argument("--big", type=int, default=5000, help="0 to skip the large run")
    parser.add_argument("--no-cold", action="store_true", help="skip the from-scratch set-up")
    parser.add_argument("--netns", default="pedl-bench")
    parser.add_argument("--out", type=Path, default=HERE / "docker_results.json")
    args = parser.parse_args(argv)
    problems = missing_prerequisites()
    if problems:
        print("the Docker lab cannot run here: " + "; ".join(problems))
        return 2
    raw: dict[str, Any] = {"machine": platform.platform(), "cpus": os.cpu_count()}
    cache = Path(tempfile.mkdtemp(prefix="pe-bench-docker-", dir="/var/tmp"))
    try:
        if not args.no_cold:
            daemon, _lab, raw["setup_cold"] = bring_up(cache, args.netns)
            raw["setup_cold"]["stop_s"] = round(take_down(daemon), 3)
        daemon, lab, raw["setup_cached"] = bring_up(cache, args.netns)
        try:
            measure_all(lab, args, raw)
        finally:
            raw["setup_cached"]["stop_s"] = round(take_down(daemon), 3)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    report(raw)
    args.out.write_text(json.dumps(raw, indent=1, default=str) + "\n")
    print(f"\nwritten: {args.out}")
    return 0


def measure_all(lab: Lab, args: argparse.Namespace, raw: dict[str, Any]) -> None:
    docker = f'{{kind: docker, container: pe-scheduler, host: "{lab.url}"}}'
    shell = f'{{kind: docker, container: pe-busybox, host: "{lab.url}"}}'
    api = lab.api_ip
    with LoopbackLab() as loop:
        # 2. one ok cell from each kind of source
        one: dict[str, Any] = {}
        for name, text in (
            ("local", matrix("{kind: local}", "127.0.0.1", [loop.http_port])),
            ("process", matrix("{kind: process}", "127.0.0.1", [loop.http_port])),
            ("docker-agent", matrix(docker, api, [8000])),
            ("docker-shell", matrix(shell, api, [8000])),
        ):
            samples, result = measure(text, args.repeats)
            assert result.cells[0].status == "ok", result.cells[0]
            one[name] = summary(samples)
            exec_facts = result.sources[0].facts.get("exec") or {}
            first = exec_facts.get("hello_ms") or exec_facts.get("facts_ms")
            if first is not None:
                one[name]["exec_to_first_word_ms"] = first
        raw["one_cell"] = one
        # 3. N cells: 8000 open, 8001 closed, 8003 accepts, the rest closed; the same shape
        # on loopback for the local source.
        for label, count in (("cells", args.cells), ("big", args.big)):
            if count <= 0:
                continue
            remote_ports = [8000, 8001, 8003, *range(10000, 10000 + count - 3)]
            taken = {loop.http_port, loop.closed_port, loop.hanging.port}
            local_ports = [
                loop.http_port,
                loop.closed_port,
                loop.hanging.port,
                *closed_loopback_ports(count - 3, taken),
            ]
            runs: dict[str, Any] = {}
            kinds = [
                ("local", matrix("{kind: local}", "127.0.0.1", local_ports)),
                ("process", matrix("{kind: process}", "127.0.0.1", local_ports)),
                ("docker-agent", matrix(docker, api, remote_ports)),
            ]
            if label == "cells":
                kinds.append(("docker-shell", matrix(shell, api, remote_ports)))
            for name, text in kinds:
                repeats = args.repeats if name != "docker-shell" else max(3, args.repeats // 2)
                samples, result = measure(text, repeats)
                runs[name] = summary(samples) | {
                    "cells": len(result.cells),
                    "by_status": result.summary.by_status,
                }
            raw[label] = runs


def report(raw: dict[str, Any]) -> None:
    print(f"\nprobe-engine docker source bench ({raw['machine']}, {raw['cpus']} CPUs)\n")
    for key, title in (("setup_cold", "set-up, cold"), ("setup_cached", "set-up, cached")):
        if key in raw:
            s = raw[key]
            images = ", ".join(
                f"{repo} {'built' if i['built'] else 'reused'} {i['seconds']:.2f} s ({i['mb']} MB)"
                for repo, i in s["images"].items()
            )
            print(
                f"{title:16} engine {s['engine_s']:.2f} s; {images}; lab {s['lab_s']:.2f} s; "
                f"total {s['total_s']:.2f} s; stop {s.get('stop_s', 0):.2f} s"
            )
    print("\none ok cell (median wall of a whole run; exec = exec create to first word inside)")
    local = raw["one_cell"]["local"]["median"]
    for name, s in raw["one_cell"].items():
        extra = (
            f", exec {s['exec_to_first_word_ms']:.0f} ms" if "exec_to_first_word_ms" in s else ""
        )
        print(
            f"  {name:13} {s['median'] * 1000:7.1f} ms  (best {s['best'] * 1000:.1f}; "
            f"overhead vs local {(s['median'] - local) * 1000:+.1f} ms{extra})"
        )
    for label in ("cells", "big"):
        if label not in raw:
            continue
        runs = raw[label]
        local = runs["local"]
        print(f"\n{local['cells']} tcp cells (median / best of {local['n']})")
        for name, s in runs.items():
            ratio = s["median"] / local["median"]
            best_ratio = s["best"] / local["best"]
            verdict = ""
            if name == "docker-agent":
                verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
                verdict = f"  target <= {TARGET_RATIO:.0f}x: {verdict}"
            print(
                f"  {name:13} {s['median'] * 1000:8.1f} ms / {s['best'] * 1000:8.1f} ms  "
                f"x{ratio:5.2f} / x{best_ratio:5.2f} of local{verdict}  {s['by_status']}"
            )


if __name__ == "__main__":
    raise SystemExit(main())
