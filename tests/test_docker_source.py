"""The docker source on a real Docker engine: probes run inside containers, exactly where
`docker exec` would run them, through aiodocker.

The lab (tests/dockerlab): pe-api 10.202.0.10 on pe-minikube serves HTTP on 8000, refuses 8001,
drops connects to 8002; pe-scheduler (python) and pe-busybox (no python) sit beside it;
pe-worker is on pe-default only; pe-none has no network. Every status and errno below comes from
the kernel inside those containers. Nothing leaves the engine's own network namespace: its
bridges are internal, the containers' resolver is their own loopback, and no `local` source
ever probes a lab address from this machine.
"""

from __future__ import annotations

import ipaddress
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiodocker
import anyio
import pytest

from probe_engine import MatrixResult, RunOptions, run_matrix
from probe_engine.diagnose.container_network import container_network
from probe_engine.diagnose.findings import finding as phrased
from probe_engine.engine import Event, RowSeen
from probe_engine.errors import SpecError
from probe_engine.results import (
    CellResult,
    CheckRecord,
    Expectations,
    MatrixRef,
    SourceInfo,
    Summary,
    TargetInfo,
)
from probe_engine.sources.docker_facts import (
    DaemonNetwork,
    NamedEndpoint,
    container_facts,
    target_networks,
    why_not_running,
)
from probe_engine.sources.prober import ShellFacts
from probe_engine.spec import load_matrix_text
from tests.conftest import cell, run_text
from tests.dockerlab import LAB_LABEL, ImageInfo, Lab, exec_run, run_sync
from tests.dockerlab.fixtures import FACTS
from tests.golden import check_golden

pytestmark = pytest.mark.docker

STOPPED = "pe-src-stopped"  # not pe-stopped: tests/dockerlab uses that name
PROJECT, SERVICE = "pe-mlops", "airflow-worker"

# The story in the lab: every docker row against every target. Timeouts are short, but the
# unassigned address needs ~3 s for the kernel's EHOSTUNREACH (ARP gives up).
STORY = """
version: 1
defaults: {timeout: 1s}
sources:
  scheduler:      {kind: docker, container: pe-scheduler, host: "${DOCKER_URL}"}
  busybox:        {kind: docker, container: pe-busybox, host: "${DOCKER_URL}"}
  worker:         {kind: docker, container: pe-worker, host: "${DOCKER_URL}"}
  isolated:       {kind: docker, container: pe-none, host: "${DOCKER_URL}"}
  scheduler-nc:   {kind: docker, container: pe-scheduler, host: "${DOCKER_URL}", tool: nc}
  scheduler-curl: {kind: docker, container: pe-scheduler, host: "${DOCKER_URL}", tool: curl}
  missing:        {kind: docker, container: pe-no-such-container, host: "${DOCKER_URL}"}
  stopped:        {kind: docker, container: pe-src-stopped, host: "${DOCKER_URL}"}
targets:
  api:        {kind: tcp, host: "${API}", port: 8000}
  closed:     {kind: tcp, host: "${API}", port: 8001}
  blackhole:  {kind: tcp, host: "${API}", port: 8002}
  unassigned: {kind: tcp, host: "${HOLE}", port: 8000, timeout: 5s}
  by-name:    {kind: tcp, host: pe-api, port: 8000, timeout: 3s}  # resolv.conf: timeout:1
  health:     {kind: http, url: "http://${API}:8000/health", expect_status: [200]}
expect:
  - {source: scheduler, target: api, status: ok}
  - {source: worker, target: api, status: ok}
"""

# What each row sees of each target: the status, and the errno name of the failing check
# ("" where there is none: ok, or our own deadline).
# fmt: off
GRID: dict[str, dict[str, tuple[str, str]]] = {
    "scheduler": {
        "api": ("ok", ""), "closed": ("refused", "ECONNREFUSED"), "blackhole": ("timeout", ""),
        "unassigned": ("unreachable", "EHOSTUNREACH"), "by-name": ("ok", ""),
        "health": ("ok", ""),
    },
    # No python in the image: the shell prober with busybox nc (tcp) and wget (http).
    "busybox": {
        "api": ("ok", ""), "closed": ("refused", "ECONNREFUSED"), "blackhole": ("timeout", ""),
        "unassigned": ("unreachable", "EHOSTUNREACH"), "by-name": ("ok", ""),
        "health": ("ok", ""),
    },
    # Off pe-minikube: its gateway drops everything (silence), pe-minikube's names are unknown.
    "worker": {
        "api": ("timeout", ""), "closed": ("timeout", ""), "blackhole": ("timeout", ""),
        "unassigned": ("timeout", ""), "by-name": ("dns-error", "EAI_AGAIN"),
        "health": ("timeout", ""),
    },
    # Network mode none: no route at all.
    "isolated": {
        "api": ("unreachable", "ENETUNREACH"), "closed": ("unreachable", "ENETUNREACH"),
        "blackhole": ("unreachable", "ENETUNREACH"),
        "unassigned": ("unreachable", "ENETUNREACH"), "by-name": ("dns-error", "EAI_AGAIN"),
        "health": ("unreachable", "ENETUNREACH"),
    },
    # The tool a user would type, in the image that has python too.
    "scheduler-nc": {
        "api": ("ok", ""), "closed": ("refused", "ECONNREFUSED"), "blackhole": ("timeout", ""),
        "unassigned": ("unreachable", "EHOSTUNREACH"), "by-name": ("ok", ""),
    },
}
# fmt: on
TOOLS = {"scheduler": "agent", "busybox": "nc", "scheduler-nc": "nc"}


def environ(lab: Lab) -> dict[str, str]:
    return {"DOCKER_URL": lab.url, "API": lab.api_ip, "HOLE": lab.spec.unreachable_ip}


def failing(found: CellResult) -> CheckRecord | None:
    return next((c for c in found.checks if c.status != "ok"), None)


def row(result: MatrixResult, name: str) -> SourceInfo:
    info = next((s for s in result.sources if s.name == name), None)
    assert info is not None, f"no row {name} in {[s.name for s in result.sources]}"
    return info


def in_container(lab: Lab, container: str, cmd: list[str]) -> str:
    async def body() -> str:
        async with aiodocker.Docker(url=lab.url) as docker:
            return (await exec_run(docker, container, cmd)).out

    return run_sync(body)


@pytest.fixture(scope="module")
def stopped_container(docker_lab: Lab) -> Iterator[str]:
    """A container that ran `true` and exited: exec into it is refused (409)."""

    async def up() -> None:
        async with aiodocker.Docker(url=docker_lab.url) as docker:
            container = await docker.containers.create(
                {
                    "Image": docker_lab.images["busybox"].ref,
                    "Cmd": ["true"],
                    "Labels": {LAB_LABEL: "1"},
                    "HostConfig": {"NetworkMode": "none"},
                },
                name=STOPPED,
            )
            await container.start()
            await container.wait()

    async def down() -> None:
        async with aiodocker.Docker(url=docker_lab.url) as docker:
            await docker.containers.container(STOPPED).delete(force=True)

    run_sync(up)
    yield STOPPED
    run_sync(down)


@pytest.fixture(scope="module")
def story(docker_lab: Lab, stopped_container: str) -> MatrixResult:
    """STORY, run once for the tests of this module that read it."""
    started = time.monotonic()
    result = run_text(STORY, environ(docker_lab))
    FACTS["docker source: story matrix (8 rows x 6 targets)"] = (
        f"{len(result.cells)} cells in {time.monotonic() - started:.2f} s"
    )
    return result


# ------------------------------------------------------------------------------------------
# statuses and errnos, from inside each container


@pytest.mark.parametrize(
    ("source", "target", "status", "errno_name"),
    [(r, t, *GRID[r][t]) for r in GRID for t in GRID[r]],
)
def test_each_row_sees_what_its_container_sees(
    story: MatrixResult, source: str, target: str, status: str, errno_name: str
) -> None:
    found = cell(story, source, target)
    check = failing(found)
    assert (found.status, (check and check.errno_name) or "") == (status, errno_name), found
    if source in TOOLS:
        expected_tool = "wget" if target == "health" and source == "busybox" else TOOLS[source]
        assert found.tool == expected_tool


def test_a_timeout_is_the_probes_deadline_not_the_kernels(story: MatrixResult) -> None:
    for source in ("scheduler", "busybox"):
        found = cell(story, source, "blackhole")
        check = failing(found)
        assert check is not None and check.errno is None
        assert found.duration_ms >= 900, (source, found.duration_ms)  # never before it


def test_the_unassigned_address_is_unreachable_after_arp_gives_up(story: MatrixResult) -> None:
    # EHOSTUNREACH is the neighbour table's verdict once ARP gives up. How long it took is
    # not asserted: rows in one container share that table, and a row that asks while
    # another's ARP is already under way gets the same verdict sooner.
    for source in ("scheduler", "busybox"):
        found = cell(story, source, "unassigned")
        failed = failing(found)
        assert (found.status, failed and failed.errno_name) == ("unreachable", "EHOSTUNREACH")


def test_without_a_network_the_kernel_refuses_at_once(story: MatrixResult) -> None:
    found = cell(story, "isolated", "api")
    # At once: the routing table answers (ENETUNREACH), no packet waits for anything.
    assert found.checks[-1].errno_name == "ENETUNREACH", found
    info = row(story, "isolated")
    assert info.facts["network_mode"] == "none" and info.facts["networks"] == {}


def test_busybox_has_no_python_so_the_shell_prober_runs_and_says_so(story: MatrixResult) -> None:
    info = row(story, "busybox")
    assert info.status == "ok"
    assert (info.facts["runner"], info.facts["tool"]) == ("shell", "auto")
    assert info.facts["note"].startswith("no python3 in container pe-busybox: probed with the")
    assert {"nc", "wget"} <= set(info.facts["tools"]) and "curl" not in info.facts["tools"]
    # facts read from inside by the prober's preamble, as the agent's hello would give them
    assert info.facts["hostname"] == "pe-busybox"
    assert "10.202.0.12" in info.facts["addresses"]
    assert info.facts["resolv_conf"]["nameservers"] == ["127.0.0.11"]
    assert info.facts["netns"].startswith("net:[")
    assert info.facts["exec"]["exit_code"] == 0
    health = cell(story, "busybox", "health")
    assert [c.http_status for c in health.checks if c.name == "http"] == [200]


def test_the_python_agent_runs_where_python3_is(story: MatrixResult) -> None:
    info = row(story, "scheduler")
    assert (info.facts["runner"], info.facts["tool"]) == ("agent", "agent")
    assert info.facts["python"].startswith("3.")
    assert info.facts["exec"]["exit_code"] == 0
    assert info.facts["exec"]["hello_ms"] >= 0  # recorded; how fast is bench.docker_vs_local
    assert "note" not in info.facts


def test_the_rows_facts_come_from_docker_inspect_and_from_inside(story: MatrixResult) -> None:
    facts = row(story, "scheduler").facts
    assert facts["container"]["name"] == "pe-scheduler"
    assert len(facts["container"]["id"]) == 12
    assert facts["networks"] == {
        "pe-minikube": {
            "ip": "10.202.0.11",
            "prefix": 24,
            "gateway": "10.202.0.1",
            "ipv6": None,
            "aliases": ["pe-scheduler"],
            "subnets": ["10.202.0.0/24"],
            "driver": "bridge",
            "internal": True,
        }
    }
    assert facts["dns"] == {
        "servers": ["127.0.0.1"],
        "search": [],
        "options": ["timeout:1", "attempts:1"],
    }
    assert facts["extra_hosts"] == []
    # Docker's embedded DNS as the container sees it, and the default route via the gateway
    assert facts["resolv_conf"]["nameservers"] == ["127.0.0.11"]
    assert {"destination": "0.0.0.0/0", "gateway": "10.202.0.1", "device": "eth0"} in facts[
        "routes"
    ]


def test_each_target_is_placed_on_its_docker_network(story: MatrixResult) -> None:
    scheduler = row(story, "scheduler").facts["target_networks"]
    worker = row(story, "worker").facts["target_networks"]
    assert scheduler["10.202.0.10"] == {
        "address": "10.202.0.10",
        "how": "subnet",
        "network": "pe-minikube",
        "networks": ["pe-minikube"],
        "subnet": "10.202.0.0/24",
        "attached": True,
    }
    assert worker["10.202.0.10"]["attached"] is False
    # a container name: Docker's DNS answers it only on pe-minikube
    assert worker["pe-api"] == {
        "address": "10.202.0.10",
        "how": "name",
        "container": "pe-api",
        "network": "pe-minikube",
        "networks": ["pe-minikube"],
        "attached": False,
    }


# ------------------------------------------------------------------------------------------
# the diagnosis


def test_the_worker_is_not_on_the_network_of_the_api_and_the_finding_says_so(
    story: MatrixResult,
) -> None:
    found = [f for f in story.findings if f.rule == "container-network"]
    titles = sorted(f.title for f in found)
    assert titles == [
        "isolated (container pe-none) is not attached to network pe-minikube",
        "worker (container pe-worker) is not attached to network pe-minikube",
    ]
    worker = next(f for f in found if f.facts["row"] == "worker")
    assert worker.severity == "error"  # the expectation worker -> api: ok is unmet
    assert worker.detail.startswith(
        "worker (container pe-worker) is attached to pe-default only; 10.202.0.10 and "
        "10.202.0.250 are on pe-minikube (10.202.0.0/24); the name pe-api belongs to container "
        "pe-api (10.202.0.10) on pe-minikube"
    )
    assert "`docker network connect pe-minikube pe-worker`" in worker.next_step
    evidence = {(e.source, e.target, e.status) for e in worker.evidence}
    assert ("worker", "api", "timeout") in evidence and ("scheduler", "api", "ok") in evidence
    # the sharper sentence wins: no "everything from worker fails" finding repeats it
    assert not [f for f in story.findings if f.rule == "source-down" and "worker" in f.title]
    check_golden(worker, "container-network")
    isolated = next(f for f in found if f.facts["row"] == "isolated")
    assert "has no network at all (network mode none)" in isolated.detail


def test_no_proxy_advice_for_a_container_says_to_set_it_in_its_environment(
    docker_lab: Lab,
) -> None:
    """A container whose exec env sends urllib to a refusing proxy, with a CIDR NO_PROXY
    urllib ignores: the advice lists the exact address (checked with urllib's own rules) and
    names the container's environment as the place, not a task's."""
    result = run_text(
        """
        defaults: {timeout: 2s}
        sources:
          direct: {kind: docker, container: pe-scheduler, host: "${DOCKER_URL}",
                   http_client: urllib, trust_env: false}
          proxied: {kind: docker, container: pe-scheduler, host: "${DOCKER_URL}",
                    http_client: urllib,
                    env: {HTTP_PROXY: "http://${API}:8001", NO_PROXY: "10.202.0.0/24"}}
        targets:
          health: {kind: http, url: "http://${API}:8000/health"}
        """,
        environ(docker_lab),
    )
    assert (cell(result, "direct", "health").status, cell(result, "proxied", "health").status) == (
        "ok",
        "proxy-error",
    )
    [finding] = [f for f in result.findings if f.rule == "proxy-differs"]
    api = docker_lab.api_ip
    assert finding.next_step == (
        f"Set NO_PROXY=10.202.0.0/24,{api} in the container's environment (proxied: docker run "
        "-e, or environment: in Compose; recreate the container); urllib ignores CIDR ranges in "
        "NO_PROXY: list the exact addresses (requests and curl read ranges). Or unset HTTP_PROXY "
        "there or disable proxies for urllib "
        "(urllib.request.build_opener(urllib.request.ProxyHandler({})))."
    )
    fix = finding.facts["no_proxy_fix"]
    assert (fix["value"], fix["cidr_accepted_by"]) == (f"10.202.0.0/24,{api}", ["requests", "curl"])


def test_expectations_are_judged_on_container_rows(story: MatrixResult) -> None:
    assert cell(story, "scheduler", "api").met is True
    assert cell(story, "worker", "api").met is False
    assert story.exit_status == 1


# ------------------------------------------------------------------------------------------
# faults are rows, the matrix completes


def test_a_tool_missing_from_the_image_is_a_source_error_saying_so(story: MatrixResult) -> None:
    info = row(story, "scheduler-curl")
    message = "curl is not installed in container pe-scheduler (not on PATH)"
    assert (info.status, info.message) == ("error", message)
    for target in GRID["scheduler"]:
        found = cell(story, "scheduler-curl", target)
        assert (found.status, found.message) == ("source-error", message)
    assert "nc" in info.facts["tools"]  # what is there instead


def test_missing_and_stopped_containers_fail_their_rows_only(
    story: MatrixResult, docker_lab: Lab
) -> None:
    missing = (
        f"no container 'pe-no-such-container' on the Docker daemon at {docker_lab.url} "
        "(the source's host:)"
    )
    stopped = f"container {STOPPED} is not running (status exited, exit code 0)"
    for source, message in (("missing", missing), ("stopped", stopped)):
        info = row(story, source)
        assert (info.status, info.message) == ("error", message)
        assert {cell(story, source, t).message for t in GRID["scheduler"]} == {message}
        assert {cell(story, source, t).status for t in GRID["scheduler"]} == {"source-error"}
    # every other cell ran: nothing cancelled, no engine fault
    assert "cancelled" not in story.summary.by_status
    assert story.summary.total == 8 * 6
    down = {f.facts.get("source") for f in story.findings if f.rule == "source-down"}
    assert {"missing", "stopped", "scheduler-curl"} <= down


def test_a_daemon_that_is_not_running_is_a_source_error(tmp_path: Any) -> None:
    socket = tmp_path / "docker.sock"
    result = run_text(
        """
        sources:
          scheduler: {kind: docker, container: airflow-scheduler, host: "unix://${SOCK}"}
        targets:
          api: {kind: tcp, host: 192.0.2.1, port: 8000}
        """,
        {"SOCK": str(socket)},
    )
    found = cell(result, "scheduler", "api")
    assert found.status == "source-error"
    assert found.message == (
        f"cannot reach the Docker daemon at unix://{socket} (the source's host:): "
        "No such file or directory (is dockerd running?)"
    )
    assert row(result, "scheduler").status == "error"


def test_docker_host_comes_from_the_environment(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    result = run_text(
        """
        sources: {s: {kind: docker, container: c}}
        targets: {t: {kind: tcp, host: 192.0.2.1, port: 1}}
        """
    )
    message = cell(result, "s", "t").message or ""
    assert message.startswith(f"cannot reach the Docker daemon at unix://{tmp_path}/nothing.sock")
    assert "(DOCKER_HOST)" in message


def test_an_explicit_interpreter_that_is_missing_is_an_error_not_a_fallback(
    docker_lab: Lab,
) -> None:
    result = run_text(
        """
        sources:
          pinned: {kind: docker, container: pe-busybox, host: "${DOCKER_URL}", python: python3}
          missing-user: {kind: docker, container: pe-scheduler, host: "${DOCKER_URL}",
                         user: nobody-here}
          as-nobody: {kind: docker, container: pe-scheduler, host: "${DOCKER_URL}", user: nobody}
        targets:
          api: {kind: tcp, host: "${API}", port: 8000}
        """,
        environ(docker_lab),
    )
    assert cell(result, "pinned", "api").message == "no python3 in container pe-busybox"
    assert (cell(result, "missing-user", "api").message or "").startswith(
        "cannot exec python3 in container pe-scheduler: unable to find user nobody-here"
    )
    assert cell(result, "as-nobody", "api").status == "ok"


# ------------------------------------------------------------------------------------------
# compose fan-out


@pytest.fixture(scope="module")
def compose_workers(docker_lab: Lab) -> Iterator[list[str]]:
    """Two containers of service airflow-worker of project pe-mlops (as Compose labels them),
    and one of another service that must not be picked."""
    names = [f"{PROJECT}-{SERVICE}-1", f"{PROJECT}-{SERVICE}-2", f"{PROJECT}-scheduler-1"]

    def labels(service: str, number: int) -> dict[str, str]:
        return {
            LAB_LABEL: "1",
            "com.docker.compose.project": PROJECT,
            "com.docker.compose.service": service,
            "com.docker.compose.container-number": str(number),
        }

    async def up() -> None:
        async with aiodocker.Docker(url=docker_lab.url) as docker:
            for name, service, number in (
                (names[1], SERVICE, 2),  # created first: rows still come in number order
                (names[0], SERVICE, 1),
                (names[2], "scheduler", 1),
            ):
                container = await docker.containers.create(
                    {
                        "Image": docker_lab.images["python"].ref,
                        "Cmd": ["sleep", "365d"],
                        "Hostname": name,
                        "Labels": labels(service, number),
                        "HostConfig": {"NetworkMode": "pe-minikube", "Dns": ["127.0.0.1"]},
                    },
                    name=name,
                )
                await container.start()

    async def down() -> None:
        async with aiodocker.Docker(url=docker_lab.url) as docker:
            for name in names:
                await docker.containers.container(name).delete(force=True)

    run_sync(up)
    yield names[:2]
    run_sync(down)


def test_a_compose_service_fans_out_to_one_row_per_container(
    docker_lab: Lab, compose_workers: list[str]
) -> None:
    result = run_text(
        f"""
        sources:
          workers: {{kind: docker, compose: {{project: {PROJECT}, service: {SERVICE}}},
                     host: "${{DOCKER_URL}}"}}
          nobody:  {{kind: docker, compose: {{project: {PROJECT}, service: web}},
                     host: "${{DOCKER_URL}}"}}
        targets:
          api: {{kind: tcp, host: "${{API}}", port: 8000}}
          closed: {{kind: tcp, host: "${{API}}", port: 8001}}
        """,
        environ(docker_lab),
    )
    rows = [f"workers/{name}" for name in compose_workers]
    assert [s.name for s in result.sources] == [*rows, "nobody"]
    for name, number in zip(rows, ("1", "2"), strict=True):
        assert cell(result, name, "api").status == "ok"
        assert cell(result, name, "closed").status == "refused"
        info = row(result, name)
        assert info.source_name == "workers"
        assert info.facts["compose"] == {"project": PROJECT, "service": SERVICE, "number": number}
    nobody = row(result, "nobody")
    assert nobody.status == "error"
    assert nobody.message == (
        f"no container of compose service 'web' in project '{PROJECT}' on the Docker daemon at "
        f"{docker_lab.url} (the source's host:); `docker compose -p {PROJECT} ps` lists them"
    )


# ------------------------------------------------------------------------------------------
# an agent killed mid-run, a run cut short


SLOW = """
version: 1
defaults: {timeout: 2s}
sources:
  s: {kind: docker, container: "${CONTAINER}", host: "${DOCKER_URL}"}
targets:
  api: {kind: tcp, host: "${API}", port: 8000}
  slow: {kind: tcp, host: "${API}", port: 8002, timeout: 60s}
"""


def run_and_act(
    lab: Lab, container: str, act: str, options: RunOptions | None = None
) -> tuple[MatrixResult, float]:
    """Run SLOW from `container`; once the row has said hello, run `act` (a shell line, with
    {pid} the agent's or prober's pid) in the container, from a second exec."""
    loaded = load_matrix_text(SLOW, "slow.yaml", {**environ(lab), "CONTAINER": container})
    pid: list[int] = []
    ready = anyio.Event()

    def on_event(event: Event) -> None:
        if isinstance(event, RowSeen) and isinstance(event.info.facts.get("pid"), int):
            pid.append(event.info.facts["pid"])
            ready.set()

    async def main() -> tuple[MatrixResult, float]:
        async def actor() -> None:
            await ready.wait()
            await anyio.sleep(0.3)  # the fast cell is answered by now
            if act:
                async with aiodocker.Docker(url=lab.url) as docker:
                    await exec_run(docker, container, ["sh", "-c", act.format(pid=pid[0])])

        async with anyio.create_task_group() as group:
            group.start_soon(actor)
            started = time.monotonic()
            result = await run_matrix(loaded, options or RunOptions(), on_event)
            took = time.monotonic() - started
            group.cancel_scope.cancel()
        return result, took

    return anyio.run(main)


@pytest.mark.parametrize(
    ("container", "what", "act"),
    [
        ("pe-scheduler", "the agent", "kill -9 {pid}"),
        # the prober's whole process group: its shell, the cells' subshells, their nc
        ("pe-busybox", "the shell prober", "kill -9 -{pid}"),
    ],
)
def test_an_agent_killed_mid_run_fails_its_unanswered_cells(
    docker_lab: Lab, container: str, what: str, act: str
) -> None:
    result, took = run_and_act(docker_lab, container, act)
    assert took < 20  # not the slow cell's 60 s
    assert cell(result, "s", "api").status == "ok"
    slow = cell(result, "s", "slow")
    assert slow.status == "source-error"
    assert (slow.message or "").startswith(
        f"{what} in container {container} was killed (SIGKILL, exit status 137)"
    )
    info = row(result, "s")
    assert info.status == "ok"  # the row ran: one answer stands
    assert info.facts["exec"]["exit_code"] == 137


@pytest.mark.parametrize(
    ("container", "process"), [("pe-scheduler", "python3"), ("pe-busybox", "nc")]
)
def test_a_run_cut_short_leaves_nothing_running_in_the_container(
    docker_lab: Lab, container: str, process: str
) -> None:
    result, took = run_and_act(docker_lab, container, "", RunOptions(deadline=2.0))
    assert took < 30  # cut at the 2 s deadline, not after the slow cell's 60 s
    assert cell(result, "s", "api").status == "ok"
    assert cell(result, "s", "slow").status == "cancelled"
    time.sleep(1.5)  # busybox timeout's watcher notices its child is gone within 1 s
    left = in_container(docker_lab, container, ["ps", "-o", "comm"]).split()
    assert process not in left and "timeout" not in left, left


# ------------------------------------------------------------------------------------------
# cost


def test_exec_overhead_per_row(docker_lab: Lab) -> None:
    """One exec per container per run: measured from the exec's creation to the first word
    from inside (the agent's hello, or the prober's facts)."""
    text = """
    sources:
      agent: {kind: docker, container: pe-scheduler, host: "${DOCKER_URL}"}
      shell: {kind: docker, container: pe-busybox, host: "${DOCKER_URL}"}
    targets:
      api: {kind: tcp, host: "${API}", port: 8000}
    """
    samples: dict[str, list[float]] = {"agent": [], "shell": [], "run": []}
    for _ in range(5):
        started = time.monotonic()
        result = run_text(text, environ(docker_lab))
        samples["run"].append(time.monotonic() - started)
        samples["agent"].append(row(result, "agent").facts["exec"]["hello_ms"])
        samples["shell"].append(row(result, "shell").facts["exec"]["facts_ms"])
    median = {k: statistics.median(v) for k, v in samples.items()}
    FACTS["docker source: exec to first word (median of 5)"] = (
        f"agent {median['agent']:.0f} ms, shell fallback {median['shell']:.0f} ms; "
        f"a 2-row 1-target run {median['run'] * 1000:.0f} ms"
    )
    assert median["agent"] < 2000 and median["shell"] < 2000


# ------------------------------------------------------------------------------------------
# the spec, and the facts functions (no engine needed)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{kind: docker}",
            "test.yaml:3:6: sources.s: give exactly one of container: or compose:",
        ),
        (
            "{kind: docker, container: a, compose: {project: p, service: s}}",
            "test.yaml:3:6: sources.s: give exactly one of container: or compose:",
        ),
        (
            "{kind: docker, container: a, tool: curl, python: python3}",
            "test.yaml:3:6: sources.s: python applies to the Python agent, not to tool: curl",
        ),
        (
            "{kind: docker, container: a, host: /var/run/docker.sock}",
            "test.yaml:3:6: sources.s: host '/var/run/docker.sock' is not a Docker daemon URL: "
            "use unix://..., tcp://...",
        ),
        (
            "{kind: docker, container: a, compose: {project: p}}",
            "test.yaml:3:44: sources.s.compose.service: required",
        ),
        (
            "{kind: docker, container: 'a b'}",
            "test.yaml:3:32: sources.s.container: 'a b' is not a valid name: "
            "use letters, digits, '.', '_' and '-'",
        ),
    ],
)
def test_bad_docker_sources_are_refused_with_their_position(source: str, message: str) -> None:
    text = f"version: 1\nsources:\n  s: {source}\ntargets:\n  t: {{kind: tcp, host: h, port: 1}}\n"
    with pytest.raises(SpecError) as caught:
        load_matrix_text(text, "test.yaml", {})
    assert str(caught.value).splitlines()[0] == message


def test_a_docker_source_with_every_option_validates() -> None:
    text = """
    sources:
      agent: {kind: docker, container: airflow-scheduler, host: "tcp://127.0.0.1:2375",
              python: python3.11, user: airflow, env: {HTTP_PROXY: "http://proxy:3128"},
              http_client: requests, trust_env: false, description: the scheduler}
      workers: {kind: docker, compose: {project: mlops, service: airflow-worker}, tool: auto}
      curl: {kind: docker, container: airflow-scheduler, tool: curl}
    targets:
      t: {kind: tcp, host: h, port: 1}
    """
    sources: dict[str, Any] = dict(load_matrix_text(text, "t.yaml", {}).matrix.sources)
    assert sources["agent"].python == "python3.11"
    assert sources["workers"].compose.service == "airflow-worker"
    assert sources["curl"].tool == "curl"


MINIKUBE = DaemonNetwork("minikube", "bridge", (ipaddress.ip_network("192.168.49.0/24"),))
DEFAULT = DaemonNetwork("mlops_default", "bridge", (ipaddress.ip_network("172.18.0.0/16"),))
INSPECT: dict[str, Any] = {
    "Id": "0123456789abcdef0123",
    "Name": "/mlops-airflow-worker-1",
    "State": {"Status": "running", "Running": True, "StartedAt": "2026-01-01T00:00:00Z"},
    "Config": {
        "Image": "apache/airflow:2.10.5",
        "Env": ["HTTP_PROXY=http://proxy:3128", "PATH=/usr/bin"],
        "Labels": {
            "com.docker.compose.project": "mlops",
            "com.docker.compose.service": "airflow-worker",
            "com.docker.compose.container-number": "1",
        },
    },
    "HostConfig": {
        "NetworkMode": "mlops_default",
        "Dns": [],
        "ExtraHosts": ["host.docker.internal:host-gateway"],
    },
    "NetworkSettings": {
        "Networks": {
            "mlops_default": {
                "IPAddress": "172.18.0.5",
                "IPPrefixLen": 16,
                "Gateway": "172.18.0.1",
                "Aliases": ["mlops-airflow-worker-1", "airflow-worker", "0123456789ab"],
            }
        }
    },
}


def test_the_story_worker_is_placed_off_the_minikube_network() -> None:
    """The story's Phase 1 check, from facts alone: the NodePort address 192.168.49.2 lies in
    the minikube network, which airflow-worker is not attached to."""
    facts = container_facts(INSPECT)
    assert facts["networks"]["mlops_default"]["aliases"] == [
        "mlops-airflow-worker-1",
        "airflow-worker",
    ]
    assert facts["extra_hosts"] == ["host.docker.internal:host-gateway"]
    names = {"minikube": [NamedEndpoint("minikube", "192.168.49.2", "minikube")]}
    placed = target_networks(
        ["192.168.49.2", "minikube", "10.96.0.10", "172.18.0.9"],
        facts,
        [MINIKUBE, DEFAULT],
        names,
    )
    assert placed["192.168.49.2"]["network"] == "minikube"
    assert placed["192.168.49.2"]["attached"] is False
    assert placed["minikube"]["how"] == "name" and placed["minikube"]["attached"] is False
    assert "10.96.0.10" not in placed  # a ClusterIP is on no Docker network: no claim
    assert placed["172.18.0.9"]["attached"] is True
    host_mode = {**facts, "network_mode": "host", "networks": {"host": {}}}
    assert (
        target_networks(["192.168.49.2"], host_mode, [MINIKUBE], {})["192.168.49.2"]["attached"]
        is None
    )


def test_why_a_container_cannot_take_an_exec() -> None:
    assert why_not_running(INSPECT) is None
    paused = {**INSPECT, "State": {"Running": True, "Paused": True}}
    assert why_not_running(paused) == (
        "container mlops-airflow-worker-1 is paused (`docker unpause mlops-airflow-worker-1`)"
    )
    oom = {**INSPECT, "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": True}}
    assert why_not_running(oom) == (
        "container mlops-airflow-worker-1 is not running (status exited, exit code 137, "
        "killed for lack of memory)"
    )
    created = {**INSPECT, "State": {"Status": "created"}}
    assert (
        why_not_running(created)
        == "container mlops-airflow-worker-1 is not running (status created)"
    )


def test_the_prober_preamble_becomes_the_same_facts_as_the_agents_hello() -> None:
    preamble = ShellFacts()
    lines = [
        "@@P\t21\tnet:[4026533843]",
        "@@F\t/etc/hostname\tpe-busybox",
        "@@F\t/etc/resolv.conf\tnameserver 127.0.0.11",
        "@@F\t/etc/resolv.conf\toptions ndots:0 timeout:1",
        "@@F\t/proc/net/route\tIface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask",
        "@@F\t/proc/net/route\teth0\t00000000\t0100CA0A\t0003\t0\t0\t0\t00000000",
        "@@T\tnc\t/bin/nc",
        "@@E",
    ]
    assert all(preamble.feed(line) for line in lines)
    assert not preamble.feed("@@R\t1\tnc\t0\t5\t-\t-")
    facts = preamble.facts()
    assert facts["pid"] == 21 and facts["netns"] == "net:[4026533843]"
    assert facts["hostname"] == "pe-busybox"
    assert facts["resolv_conf"]["nameservers"] == ["127.0.0.11"]
    assert facts["routes"] == [
        {"destination": "0.0.0.0/0", "gateway": "10.202.0.1", "device": "eth0"}
    ]
    assert facts["default_route"] is True
    assert facts["tools"] == {"nc": "/bin/nc"}


def test_images_are_what_the_fallback_tests_assume(docker_images: dict[str, ImageInfo]) -> None:
    assert set(docker_images) == {"busybox", "python"}


def synthetic(
    sources: list[SourceInfo], cells: list[tuple[str, str, str, str, str]]
) -> MatrixResult:
    """A result with these rows and (row, target, host, endpoint, status) cells, for the rule
    alone; each target's column probes `host`, as the engine reports it."""
    now = datetime.now(UTC)
    return MatrixResult(
        tool_version="test",
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        matrix=MatrixRef(path="m.yaml", sha256=""),
        summary=Summary(total=len(cells), by_status={}, expectations=Expectations()),
        sources=sources,
        targets=[
            TargetInfo(name=t, target_name=t, kind="tcp", endpoint=e, host=h)
            for _r, t, h, e, _s in cells
        ],
        cells=[
            CellResult(
                source=r,
                source_name=r.split("/")[0],
                target=t,
                target_name=t,
                endpoint=e,
                status=s,  # type: ignore[arg-type]
            )
            for r, t, _h, e, s in cells
        ],
    )


def docker_row(
    name: str, container: str, networks: list[str], placed: dict[str, Any]
) -> SourceInfo:
    return SourceInfo(
        name=name,
        source_name=name.split("/", maxsplit=1)[0],
        kind="docker",
        facts={
            "container": {"name": container},
            "networks": {n: {} for n in networks},
            "target_networks": placed,
        },
    )


NODEPORT = {
    "192.168.49.2": {
        "address": "192.168.49.2",
        "how": "subnet",
        "network": "minikube",
        "subnet": "192.168.49.0/24",
        "attached": False,
    }
}


def test_the_rule_names_a_fanned_out_container_by_its_row() -> None:
    result = synthetic(
        [
            docker_row(
                "workers/mlops-airflow-worker-1",
                "mlops-airflow-worker-1",
                ["mlops_default"],
                NODEPORT,
            )
        ],
        [
            (
                "workers/mlops-airflow-worker-1",
                "api",
                "192.168.49.2",
                "192.168.49.2:30080",
                "timeout",
            )
        ],
    )
    (found,) = container_network(result)
    finding = phrased(found, result)
    assert finding.title == "workers/mlops-airflow-worker-1 is not attached to network minikube"
    assert finding.detail == (
        "workers/mlops-airflow-worker-1 is attached to mlops_default only; 192.168.49.2 is on "
        "minikube (192.168.49.0/24). From workers/mlops-airflow-worker-1: api: timeout."
    )
    assert finding.severity == "warning"  # nothing declared, nothing works elsewhere


def test_the_rule_stays_silent_when_the_row_reaches_that_network_anyway() -> None:
    placed = {**NODEPORT, "192.168.49.3": {**NODEPORT["192.168.49.2"], "address": "192.168.49.3"}}
    routed = synthetic(
        [docker_row("worker", "w", ["mlops_default"], placed)],
        [
            ("worker", "api", "192.168.49.2", "http://192.168.49.2:30080/health", "refused"),
            ("worker", "other", "192.168.49.3", "192.168.49.3:80", "ok"),  # routed by the host
        ],
    )
    assert container_network(routed) == []
    unknown = {"192.168.49.2": {**NODEPORT["192.168.49.2"], "attached": None}}
    host_mode = synthetic(
        [docker_row("worker", "w", ["host"], unknown)],
        [("worker", "api", "192.168.49.2", "192.168.49.2:30080", "timeout")],
    )
    assert container_network(host_mode) == []
