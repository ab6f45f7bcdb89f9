"""Where a one-cell `probe-engine run` spends its time, and what of it is a floor.

    .venv/bin/python -m bench.one_cell                      # this tree
    .venv/bin/python -m bench.one_cell --tree before=/path  # and another checkout's probe_engine
    .venv/bin/python -m bench.one_cell --instructions       # also callgrind's counts (slow)

Side by side, interleaved round by round, in fresh processes with their bytecode cached (as
bench.scan: PYTHONDONTWRITEBYTECODE dropped, a first round warms the cache): `python -c pass`,
`probe-engine --version`, and `run ONE.yaml --format json --out DIR --output none --no-progress`
on one refused loopback port, for each tree (a tree is put first on PYTHONPATH and run as
`python -m probe_engine`). Best of N of the wall time and of the CPU time (user + system, from
wait4); CPU is what a loaded machine distorts least. With --instructions, valgrind's callgrind
counts the instructions of each (load does not change them), of the same third-party work
alone (click, PyYAML, one pydantic model, anyio.run: the floor no change here can lower), and
of the run's parts stacked one on the other. Every packet goes to 127.0.0.1. Nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .lab import LOOPBACK
from .run import CLEAN_ENV, HERE

TARGET_S = 0.3
PYTHON = sys.executable
# The third-party work every run does, with none of probe-engine's own.
FLOOR = (
    "import click, yaml\n"
    "from pydantic import BaseModel\n"
    "class A(BaseModel):\n    x: int\n"
    "A(x=1)\n"
    "import anyio\n"
    "async def f(): pass\n"
    "anyio.run(f)\n"
)
# Then probe-engine's parts, each line added to all before it.
STACKED = (
    (
        "+ load the matrix (spec models)",
        "from probe_engine.spec import load_matrix; load_matrix(M)",
    ),
    ("+ import results (report models)", "import probe_engine.results"),
    ("+ import diagnose (the rules)", "import probe_engine.diagnose"),
    (
        "+ import the rest a run uses",
        "import probe_engine.cli.run, probe_engine.engine, probe_engine.sources.local, "
        "probe_engine.reports.json_report",
    ),
)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed: refused)."""
    import socket

    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


def _env(tree: Path | None) -> dict[str, str]:
    env = dict(CLEAN_ENV)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # cached bytecode, as an installed package runs
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tempfile.gettempdir()
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    assert process.stderr is not None
    errors = process.stderr.read()
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed: {errors.decode(errors='replace')[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


def _instructions(argv: list[str], env: dict[str, str]) -> int:
    """callgrind's instruction count of one run (twice: the first may compile bytecode)."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv]
    count = 0
    for _ in range(2):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if found is None:
            raise SystemExit(f"callgrind said no count: {done.stderr[-500:]}")
        count = int(found.group(1).replace(",", ""))
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a checkout")
    parser.add_argument("--instructions", action="store_true", help="callgrind counts too")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="pe-bench-one-"))
    try:
        matrix = work / "one.yaml"
        matrix.write_text(
            "version: 1\nsources:\n  here: {kind: local}\ntargets:\n"
            f'  scan: {{kind: tcp, host: {LOOPBACK}, ports: ["{_closed_port()}"]}}\n'
        )
        run = ["run", str(matrix), "--format", "json", "--out", str(work / "out")]
        run += ["--output", "none", "--no-progress"]
        trees: dict[str, Path] = {"this tree": HERE.parent}
        for named in args.tree:
            name, _, path = named.partition("=")
            trees[name] = Path(path).resolve()
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([PYTHON, "-c", "pass"], _env(None))
        }
        for name, tree in trees.items():
            module = [PYTHON, "-m", "probe_engine"]
            commands[f"--version ({name})"] = ([*module, "--version"], _env(tree))
            commands[f"run one cell ({name})"] = ([*module, *run], _env(tree))

        best = {what: [float("inf"), float("inf")] for what in commands}
        for argv_, env in commands.values():
            _once(argv_, env)  # bytecode written, caches warm
        for _ in range(args.repeats):
            for what, (argv_, env) in commands.items():
                wall, cpu = _once(argv_, env)
                best[what] = [min(best[what][0], wall), min(best[what][1], cpu)]
        load = os.getloadavg()
        print(f"best of {args.repeats}, interleaved (load average {load[0]:.1f}):")
        for what, (wall, cpu) in best.items():
            mark = ""
            if what.startswith("run"):
                mark = f"  target <= {TARGET_S} s: {'PASS' if wall <= TARGET_S else 'MISS'}"
            print(f"  {what:40s} wall {wall * 1000:7.1f} ms   CPU {cpu * 1000:7.1f} ms{mark}")

        if args.instructions:
            if shutil.which("valgrind") is None:
                raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
            print("instructions (callgrind, millions):")
            for what, (argv_, env) in commands.items():
                print(f"  {what:40s} {_instructions(argv_, env) / 1e6:8.0f}")
            code = FLOOR
            count = _instructions([PYTHON, "-c", code], _env(None))
            print(f"  {'floor: click, yaml, pydantic, anyio':40s} {count / 1e6:8.0f}")
            code += f"from pathlib import Path; M = Path({str(matrix)!r})\n"
            for what, line in STACKED:
                code += line + "\n"
                count = _instructions([PYTHON, "-c", code], _env(HERE.parent))
                print(f"  {what:40s} {count / 1e6:8.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
