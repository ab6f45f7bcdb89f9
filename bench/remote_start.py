"""Remote sources against local: what starting the agent costs in each kind of place.

    .venv/bin/python -m bench.remote_start                  # root; a few minutes
    .venv/bin/python -m bench.remote_start --repeats 9 --cells 500 --kinds process,docker

For each kind of source that can run here, each in its own lab (the bench's own prefix, cache
folder and namespaces, removed at the end):
  process     a child of this interpreter, on loopback
  netns       the namespace lab's scheduler (tests/lab/netlab.py), probing its node
  docker      pe-scheduler in tests/dockerlab's private dockerd, probing pe-api
  kubernetes  a pod exec through tests/kubelab's API server; the pod is the namespace lab's
              scheduler, as in bench/cluster.py

it measures, interleaved round by round so a busy machine weighs on every kind alike:
  1. floors, through the very channel the source uses (exec to the end of the output):
     `true`, `python -c pass`, `python -S -c pass`, and the agent's own start: its bootstrap
     reading the modules and importing what a batch needs, shipped compiled (this
     interpreter's code, when the place's Python has the same magic number) and as source
     (compiled there, as before);
  2. a one-cell matrix: the whole run's wall and the row's facts.exec.hello_ms (exec to the
     agent's first word), next to the local source's one-cell run;
  3. N tcp cells (one open port, the rest closed) through each against the same N from the
     local source: the ratio (goal <= 3x for docker at 500 cells);
  4. which of the shipped modules (and of the standard library, beyond `python -c pass`) a
     tcp-only batch imports at the far end.
Every packet stays on loopback or inside the labs' namespaces. Not a test: prints tables and
writes bench/remote_start_results.json.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from bench.docker_vs_local import closed_loopback_ports, matrix, run_text, summary, timed
from probe_engine.agent import ship
from probe_engine.agent.ship import BOOTSTRAP, agent_payload, modules_line, packed_modules
from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.sources.channel import Channel
from probe_engine.sources.child import ChildChannel

HERE = Path(__file__).resolve().parent
KINDS = ("process", "netns", "docker", "kubernetes")
NETLAB_PREFIX = "pe-bench-rs"
DOCKER_NETNS = "pedl-bench-rs"
TARGET_RATIO = 3.0
MAIN = "pe_agent.stdio.main()"
# The bootstrap without its last line: reads the modules, imports the agent, exits.
IMPORT_ONLY = BOOTSTRAP.replace(MAIN, "")
# The agent as shipped, telling at its exit which modules it imported.
TELL_MODULES = BOOTSTRAP.replace(
    MAIN,
    "import os\n_exit = os._exit\n"
    "def tell(code):\n"
    '    told = {"type": "modules", "modules": sorted(sys.modules)}\n'
    '    sys.stdout.write(json.dumps(told) + "\\n")\n'
    "    sys.stdout.flush()\n"
    "    _exit(code)\n"
    "os._exit = tell\n" + MAIN,
)
READ_LINE = "import sys; sys.stdin.buffer.readline()"
LIST_MODULES = "import json, sys; print(json.dumps({'modules': sorted(sys.modules)}))"


@dataclass
class Place:
    """One kind of remote source, in its lab: how to run a command there (`open`, a Channel
    factory), the matrix text of its source, and its targets (one open port, many closed)."""

    kind: str
    python: str
    open: Callable[[Sequence[str]], Channel]
    source: str
    host: str
    open_port: int
    closed_ports: Callable[[int], list[int]]
    preamble: str = ""  # top-level matrix sections (the kubeconfig)
    enter: Callable[[], contextlib.AbstractAsyncContextManager[None]] | None = None
    results: dict[str, Any] = field(default_factory=dict)

    def matrix(self, ports: Sequence[int]) -> str:
        return self.preamble + matrix(self.source, self.host, ports)


# --- one exec, timed ------------------------------------------------------------------------


async def exec_once(
    place: Place, command: Sequence[str], payload: bytes
) -> tuple[float, list[bytes]]:
    """Exec `command` with `payload` on stdin through the place's channel: milliseconds from
    the exec's start to the end of its output, and its stdout lines."""
    lines: list[bytes] = []
    channel = place.open(command)
    started = time.perf_counter()
    await channel.open()
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(channel.send, payload)
            await channel.receive(lines.append)
            group.cancel_scope.cancel()
        elapsed = (time.perf_counter() - started) * 1000
        status = await channel.exit_status()
    finally:
        await channel.aclose()
    if status.code != 0:
        raise RuntimeError(
            f"{command[0]} in {place.kind} ended {status.describe()}: {channel.stderr.text()}"
        )
    return elapsed, lines


def floors(place: Place) -> dict[str, tuple[list[str], bytes]]:
    python = place.python
    return {
        "true": (["true"], b""),
        "python -c pass": ([python, "-c", "pass"], b""),
        "python -S -c pass": ([python, "-S", "-c", "pass"], b""),
        "read the code, zlib 0": ([python, "-c", READ_LINE], packed_modules(0, True)),
        "read the code, zlib 1": ([python, "-c", READ_LINE], packed_modules(1, True)),
        "read the code, zlib 6": ([python, "-c", READ_LINE], packed_modules(6, True)),
        "agent import, shipped compiled": ([python, "-c", IMPORT_ONLY], modules_line(True)),
        "agent import, shipped as source": ([python, "-c", IMPORT_ONLY], modules_line(False)),
    }


async def floor_round(place: Place, samples: dict[str, list[float]]) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if place.enter is not None:
            await stack.enter_async_context(place.enter())
        for name, (command, payload) in floors(place).items():
            elapsed, _lines = await exec_once(place, command, payload)
            samples.setdefault(name, []).append(elapsed)


def cpu_ms(command: Sequence[str], payload: bytes) -> float:
    """CPU time (user + system) of `command` run here with `payload` on stdin: what a busy
    machine's scheduling does not change much, unlike the wall."""
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert child.stdin is not None
    child.stdin.write(payload)
    child.stdin.close()
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, command
    return (usage.ru_utime + usage.ru_stime) * 1000


async def imported_modules(place: Place) -> dict[str, list[str]]:
    """What a one-cell tcp batch imports at the far end: the shipped modules, and the standard
    library's beyond what `python -c` itself imports."""
    async with contextlib.AsyncExitStack() as stack:
        if place.enter is not None:
            await stack.enter_async_context(place.enter())
        request = {
            "timeout": 1.0,
            "concurrency": 8,
            "cells": [
                {
                    "id": 0,
                    "timeout": 1.0,
                    "plan": {"kind": "tcp", "host": place.host, "port": place.open_port},
                }
            ],
        }
        _ms, lines = await exec_once(
            place, [place.python, "-c", TELL_MODULES], agent_payload(request)
        )
        _ms, bare = await exec_once(place, [place.python, "-c", LIST_MODULES], b"")
    told = next(json.loads(line) for line in lines if b'"modules"' in line)["modules"]
    baseline = set(json.loads(bare[0])["modules"])
    shipped = [m[len("pe_agent.") :] for m in told if m.startswith("pe_agent.")]
    stdlib = sorted(
        m for m in told if m not in baseline and not m.startswith("pe_agent") and m != "pe_agent"
    )
    return {"shipped": shipped, "stdlib": stdlib}


# --- the places -----------------------------------------------------------------------------


def process_place(loop: LoopbackLab) -> Place:
    taken = {loop.http_port, loop.closed_port}
    return Place(
        kind="process",
        python=sys.executable,
        open=lambda command: ChildChannel(command, dict(os.environ)),
        source="{kind: process}",
        host="127.0.0.1",
        open_port=loop.http_port,
        closed_ports=lambda n: closed_loopback_ports(n, taken),
    )


@contextlib.contextmanager
def netns_lab() -> Iterator[Any]:
    from tests.lab.netlab import Lab

    lab = Lab.up(NETLAB_PREFIX)
    try:
        yield lab
    finally:
        lab.down()


def netns_place(lab: Any) -> Place:
    from probe_engine.sources.netns import NetnsChannel, find_ip

    ip = find_ip()
    assert ip is not None
    return Place(
        kind="netns",
        python=sys.executable,
        open=lambda command: NetnsChannel(ip, lab.scheduler_ns, command, dict(os.environ)),
        source=f"{{kind: netns, name: {lab.scheduler_ns}}}",
        host=lab.node_ip,
        open_port=lab.node_port,
        closed_ports=lambda n: list(range(20000, 20000 + n)),
    )


@contextlib.contextmanager
def docker_lab(cache: Path) -> Iterator[Any]:
    from bench.docker_vs_local import bring_up, take_down

    daemon, lab, _took = bring_up(cache, DOCKER_NETNS)
    try:
        yield lab
    finally:
        take_down(daemon)


def docker_place(lab: Any) -> Place:
    from probe_engine.sources.docker_exec import DockerExecChannel, ExecIn

    client: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def enter() -> AsyncIterator[None]:
        import aiodocker

        async with aiodocker.Docker(url=lab.url) as docker:
            client["docker"] = docker
            yield

    target = ExecIn(container_id="pe-scheduler", name="pe-scheduler")
    return Place(
        kind="docker",
        python="python3",
        open=lambda command: DockerExecChannel(client["docker"], target, command),
        source=f'{{kind: docker, container: pe-scheduler, host: "{lab.url}"}}',
        host=lab.api_ip,
        open_port=8000,
        closed_ports=lambda n: list(range(10000, 10000 + n)),
        enter=enter,
    )


@contextlib.contextmanager
def kube_lab(lab: Any, folder: Path) -> Iterator[Path]:
    from tests.kubelab import apiserver as kl

    with kl.ApiServer() as server:
        server.store.put(
            kl.pod("probe", labels={"app": "probe"}, pod_ip=lab.scheduler_ip),
            runtime=kl.PodRuntime(netns=lab.scheduler_ns),
        )
        yield server.write_kubeconfig(folder / "kubeconfig")


def kube_place(lab: Any, kubeconfig: Path) -> Place:
    from probe_engine.kube import KubeSettings, open_client
    from probe_engine.sources.pod_exec import PodExecChannel

    client: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def enter() -> AsyncIterator[None]:
        kube = await open_client(KubeSettings(kubeconfig=str(kubeconfig)))
        client["kube"] = kube
        try:
            yield
        finally:
            await kube.aclose()

    return Place(
        kind="kubernetes",
        python="python3",
        open=lambda command: PodExecChannel(client["kube"], "probe", "default", None, command),
        source="{kind: kubernetes, pod: probe, namespace: default}",
        host=lab.node_ip,
        open_port=lab.node_port,
        closed_ports=lambda n: list(range(20000, 20000 + n)),
        preamble=f"kubernetes: {{kubeconfig: '{kubeconfig}'}}\n",
        enter=enter,
    )


# --- the measurements -----------------------------------------------------------------------


def fresh_run(text: str) -> tuple[float, Any]:
    """One run as a new `probe-engine run` process makes it: the agent's modules line is made
    again (this process would keep it from the run before)."""
    ship._modules_line.cache_clear()
    return timed(lambda: run_text(text))


def one_cell(place: Place | None, loop: LoopbackLab) -> tuple[float, float | None]:
    """One whole one-cell run (local when `place` is None): seconds, and the hello's ms."""
    text = (
        matrix("{kind: local}", "127.0.0.1", [loop.http_port])
        if place is None
        else place.matrix([place.open_port])
    )
    seconds, result = fresh_run(text)
    cell = result.cells[0]
    assert cell.status == "ok", (place and place.kind, cell)
    exec_facts = result.sources[0].facts.get("exec") or {}
    return seconds, exec_facts.get("hello_ms")


def many_cells(place: Place | None, loop: LoopbackLab, count: int) -> tuple[float, dict[str, int]]:
    if place is None:
        taken = {loop.http_port, loop.closed_port}
        ports = [loop.http_port, *closed_loopback_ports(count - 1, taken)]
        text = matrix("{kind: local}", "127.0.0.1", ports)
    else:
        text = place.matrix([place.open_port, *place.closed_ports(count - 1)])
    seconds, result = fresh_run(text)
    return seconds, dict(result.summary.by_status)


def measure(places: Sequence[Place], loop: LoopbackLab, args: argparse.Namespace) -> dict[str, Any]:
    raw: dict[str, Any] = {"places": {}}
    # What making the modules line costs this process, once per run (the pycs are warm).
    packed_modules(0, True)
    raw["packing_ms"] = {
        f"{what}, zlib {level}": summary(
            [timed(partial(packed_modules, level, compiled))[0] * 1000 for _ in range(5)]
        )
        | {"bytes": len(packed_modules(level, compiled))}
        for what, compiled in (("code", True), ("source", False))
        for level in (0, 1, 6)
    }
    local: dict[str, list[float]] = {"one_cell_s": [], "cells_s": []}
    per: dict[str, dict[str, Any]] = {
        p.kind: {"floors": {}, "one_cell_s": [], "hello_ms": [], "cells_s": []} for p in places
    }
    # Warm: imports, the first exec of an image, caches.
    one_cell(None, loop)
    for place in places:
        one_cell(place, loop)
        per[place.kind]["imports"] = anyio.run(imported_modules, place)
    by_status: dict[str, dict[str, int]] = {}
    cpu: dict[str, list[float]] = {}
    for _round in range(args.repeats):
        for name, (command, payload) in floors(process_place(loop)).items():
            if name != "true":
                cpu.setdefault(name, []).append(cpu_ms(command, payload))
        local["one_cell_s"].append(one_cell(None, loop)[0])
        seconds, by_status["local"] = many_cells(None, loop, args.cells)
        local["cells_s"].append(seconds)
        for place in places:
            mine = per[place.kind]
            anyio.run(floor_round, place, mine["floors"])
            seconds, hello = one_cell(place, loop)
            mine["one_cell_s"].append(seconds)
            if hello is not None:
                mine["hello_ms"].append(hello)
            seconds, by_status[place.kind] = many_cells(place, loop, args.cells)
            mine["cells_s"].append(seconds)
    raw["process_cpu_ms"] = {name: summary(xs) for name, xs in cpu.items()}
    raw["local"] = {
        "one_cell": summary(local["one_cell_s"]),
        "cells": summary(local["cells_s"]) | {"by_status": by_status["local"]},
    }
    for kind, mine in per.items():
        raw["places"][kind] = {
            "python": next(p.python for p in places if p.kind == kind),
            "floors_ms": {name: summary(xs) for name, xs in mine["floors"].items()},
            "one_cell": summary(mine["one_cell_s"]),
            "hello_ms": summary(mine["hello_ms"]) if mine["hello_ms"] else None,
            "cells": summary(mine["cells_s"]) | {"by_status": by_status[kind]},
            "imports": mine["imports"],
        }
    return raw


def ms(s: dict[str, float], scale: float = 1.0) -> str:
    """A summary as `median (best)`, 16 characters wide."""
    return f"{s['median'] * scale:8.1f} ({s['best'] * scale:5.1f})"


def report(raw: dict[str, Any]) -> None:
    print(
        f"\nprobe-engine remote start bench ({raw['machine']}, {raw['cpus']} CPUs, "
        f"load {raw['load_before']} before, {raw['load_after']} after; medians, best in ())\n"
    )
    places = raw["places"]
    width = 34
    names = list(next(iter(places.values()))["floors_ms"]) if places else []
    print("floors, exec to end of output (ms)".ljust(width) + "".join(f"{k:>16}" for k in places))
    for name in names:
        print(f"  {name:{width - 2}}" + "".join(ms(places[k]["floors_ms"][name]) for k in places))
    print("\nthe same floors' CPU time (user + system) in a child of this interpreter (ms)")
    for name, p in raw["process_cpu_ms"].items():
        print(f"  {name:{width - 2}}{ms(p)}")
    local = raw["local"]
    print("\none ok cell".ljust(width + 1) + "".join(f"{k:>16}" for k in ("local", *places)))
    walls = [local["one_cell"]] + [places[k]["one_cell"] for k in places]
    print(f"  {'whole run (ms)':{width - 2}}" + "".join(ms(w, 1000) for w in walls))
    hellos = [places[k]["hello_ms"] for k in places]
    print(
        f"  {'exec to hello (ms)':{width - 2}}{'-':>16}"
        + "".join(ms(h) if h else f"{'-':>16}" for h in hellos)
    )
    base = local["cells"]
    print(f"\n{raw['cells']} tcp cells, whole run (ms; ratio to local's median)")
    print(f"  {'local':14} {ms(base, 1000)}         {base['by_status']}")
    for kind, p in places.items():
        ratio = p["cells"]["median"] / base["median"]
        verdict = ""
        if kind == "docker":
            passed = "PASS" if ratio <= TARGET_RATIO else "MISS"
            verdict = f"  goal <= {TARGET_RATIO:.0f}x: {passed}"
        print(
            f"  {kind:14} {ms(p['cells'], 1000)}  x{ratio:5.2f}{verdict}  {p['cells']['by_status']}"
        )
    print("\nthe modules line, made here (ms; once per run) and its size")
    for name, p in raw["packing_ms"].items():
        print(f"  {name:14} {ms(p)}  {p['bytes'] / 1000:6.0f} kB")
    print("\nimported at the far end by a one-cell tcp batch")
    for kind, p in places.items():
        imports = p["imports"]
        print(f"  {kind}: shipped {', '.join(imports['shipped'])}")
        print(f"    standard library beyond python -c: {', '.join(imports['stdlib'])}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.remote_start")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cells", type=int, default=500)
    parser.add_argument("--kinds", default=",".join(KINDS), help="of " + ", ".join(KINDS))
    parser.add_argument("--out", type=Path, default=HERE / "remote_start_results.json")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    raw: dict[str, Any] = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "cells": args.cells,
        "repeats": args.repeats,
        "skipped": {},
        "load_before": round(os.getloadavg()[0], 2),
    }
    needs_root = {"netns", "docker", "kubernetes"} & set(kinds)
    if needs_root and os.geteuid() != 0:
        for kind in sorted(needs_root):
            raw["skipped"][kind] = "needs root (network namespaces)"
        kinds = [k for k in kinds if k not in needs_root]
    if "docker" in kinds:
        from tests.dockerlab import missing_prerequisites

        problems = missing_prerequisites()
        if problems:
            raw["skipped"]["docker"] = "; ".join(problems)
            kinds.remove("docker")
    # The agent's bytecode cache as an installed package has it (these machines set
    # PYTHONDONTWRITEBYTECODE, so a changed module's cache would stay stale).
    compileall.compile_dir(Path(ship.__file__).parent, quiet=1)
    cache = Path(tempfile.mkdtemp(prefix="pe-bench-remote-", dir="/var/tmp"))
    try:
        with contextlib.ExitStack() as stack, LoopbackLab() as loop:
            places: list[Place] = []
            if "process" in kinds:
                places.append(process_place(loop))
            lab = None
            if {"netns", "kubernetes"} & set(kinds):
                lab = stack.enter_context(netns_lab())
            if "netns" in kinds:
                places.append(netns_place(lab))
            if "docker" in kinds:
                places.append(docker_place(stack.enter_context(docker_lab(cache))))
            if "kubernetes" in kinds:
                kubeconfig = stack.enter_context(kube_lab(lab, cache))
                places.append(kube_place(lab, kubeconfig))
            raw |= measure(places, loop, args)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    raw["load_after"] = round(os.getloadavg()[0], 2)
    report(raw)
    for kind, why in raw["skipped"].items():
        print(f"  {kind}: not measured: {why}")
    args.out.write_text(json.dumps(raw, indent=1, default=str) + "\n")
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
