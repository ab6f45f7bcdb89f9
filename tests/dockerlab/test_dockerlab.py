"""Facts of the Docker lab, measured for real through aiodocker (never the docker CLI).

These pin what the engine's docker source relies on: errnos seen from containers on and off a
network, busybox nc/wget messages and exit codes for each failure kind, exec exit codes, stdin
streaming. If an engine, kernel or busybox change moves one, this file says so first.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiodocker
import pytest

from tests.dockerlab import (
    HASH_LABEL,
    LAB_LABEL,
    DaemonConfig,
    DockerDaemon,
    ExecResult,
    ExecSession,
    ImageInfo,
    Lab,
    RootfsEntry,
    busybox_rootfs,
    cleanup_leftover,
    ensure_images,
    exec_run,
    rootfs_key,
    run_sync,
)
from tests.dockerlab.fixtures import FACTS

pytestmark = pytest.mark.docker

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]

# Runs in a container's python3: connect to each (host, port, timeout), print errno and duration.
CONNECT = r"""
import errno, json, socket, sys, time
out = []
for host, port, timeout in json.loads(sys.argv[1]):
    t = time.monotonic()
    try:
        addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
    except socket.gaierror as e:
        out.append({"errno": e.errno, "name": "gaierror", "s": time.monotonic() - t})
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    rc = s.connect_ex(addr)
    s.close()
    out.append({"errno": rc, "name": errno.errorcode.get(rc, "OK"), "s": time.monotonic() - t})
print(json.dumps(out))
"""


def with_docker(url: str, body: Callable[[aiodocker.Docker], Awaitable[T]]) -> T:
    """Run ``body(docker)`` on a fresh loop with a fresh client (fixtures hand out URLs)."""

    async def main() -> T:
        async with aiodocker.Docker(url=url) as docker:
            return await body(docker)

    return run_sync(main)


def run_in(url: str, container: str, cmd: list[str], **kwargs: Any) -> ExecResult:
    return with_docker(url, lambda docker: exec_run(docker, container, cmd, **kwargs))


def connect(lab: Lab, source: str, *targets: tuple[str, int, float]) -> list[dict[str, Any]]:
    result = run_in(lab.url, source, ["python3", "-c", CONNECT, json.dumps(targets)])
    assert result.exit_code == 0, result
    records: list[dict[str, Any]] = json.loads(result.stdout)
    return records


def sh(lab: Lab, container: str, script: str) -> ExecResult:
    return run_in(lab.url, container, ["sh", "-c", script])


# ------------------------------------------------------------------------------------------
# the engine


def test_engine_runs_isolated_in_its_own_network_namespace(docker_engine: DockerDaemon) -> None:
    assert docker_engine.pid is not None
    cmd = Path(f"/proc/{docker_engine.pid}/cmdline").read_bytes().split(b"\0")
    args = [a.decode() for a in cmd if a]
    assert Path(args[0]).name == "dockerd"
    for flag in ("--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"):
        assert flag in args
    assert args[args.index("--bip") + 1] == docker_engine.config.bip
    assert args[args.index("--dns") + 1] == "127.0.0.1"
    engine_ns = os.stat(f"/proc/{docker_engine.pid}/ns/net")
    netns_file = os.stat(f"/run/netns/{docker_engine.config.netns}")
    assert (engine_ns.st_ino, engine_ns.st_dev) == (netns_file.st_ino, netns_file.st_dev)
    assert engine_ns.st_ino != os.stat("/proc/self/ns/net").st_ino
    # docker0 with the --bip address lives in that namespace, not on the host
    out = subprocess.run(
        ["ip", "-n", docker_engine.config.netns, "-o", "-4", "addr", "show"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "docker0" in out and docker_engine.config.bip in out
    assert docker_engine.start_seconds is not None  # the time is reported, not judged


def test_engine_answers_on_its_own_socket(docker_engine: DockerDaemon) -> None:
    assert docker_engine.url == f"unix://{docker_engine.socket_path}"
    assert docker_engine.run_dir is not None
    assert docker_engine.socket_path.is_relative_to(docker_engine.run_dir)
    assert docker_engine.exec_root.is_relative_to(docker_engine.run_dir)

    async def body(docker: aiodocker.Docker) -> tuple[dict[str, Any], dict[str, Any]]:
        return await docker.version(), dict(await docker.system.info())

    version, info = with_docker(docker_engine.url, body)
    assert version["ApiVersion"] >= "1.41"
    assert info["DockerRootDir"] == str(docker_engine.config.data_root)
    assert info["Driver"] == "overlay2"


# ------------------------------------------------------------------------------------------
# the images


def test_images_are_tagged_and_labelled_by_content_hash(
    docker_url: str, docker_images: dict[str, ImageInfo]
) -> None:
    for info in docker_images.values():
        assert info.tag == info.content_hash[:16]

        async def body(docker: aiodocker.Docker, ref: str = info.ref) -> list[dict[str, Any]]:
            repo = ref.split(":", 1)[0]
            return [await docker.images.inspect(ref), await docker.images.inspect(repo)]

        tagged, latest = with_docker(docker_url, body)
        assert tagged["Id"] == latest["Id"] == info.id
        assert tagged["Config"]["Labels"][HASH_LABEL] == info.content_hash
    assert docker_images["busybox"].size < 5_000_000
    assert docker_images["python"].size < 80_000_000


def test_a_second_build_reuses_the_images(
    docker_engine: DockerDaemon, docker_images: dict[str, ImageInfo]
) -> None:
    again = run_sync(lambda: ensure_images(docker_engine.url, docker_engine.config.rootfs_dir))
    for key, info in again.items():
        assert not info.built, f"{key} was rebuilt"
        assert info.id == docker_images[key].id
    FACTS["images (cached)"] = ", ".join(f"{i.repo} {i.seconds:.2f} s" for i in again.values())


def test_rootfs_key_follows_content() -> None:
    entries = busybox_rootfs()
    assert rootfs_key(entries) == rootfs_key(list(reversed(entries)))
    changed = [*entries[:-1], RootfsEntry(entries[-1].path, "symlink", target="x")]
    assert rootfs_key(changed) != rootfs_key(entries)


def test_python_image_has_what_the_agent_needs(docker_lab: Lab) -> None:
    code = (
        "import sys, socket, json, selectors, ssl, http.client, concurrent.futures, "
        "ipaddress, urllib.request, urllib.parse, asyncio, errno, time, select, base64, "
        "hashlib, zlib, struct, threading, subprocess, os; "
        "print(sys.version_info[0], sys.version_info[1], ssl.OPENSSL_VERSION)"
    )
    result = run_in(docker_lab.url, "pe-scheduler", ["python3", "-c", code])
    assert result.exit_code == 0, result.err
    major, minor, *_ = result.out.split()
    assert (int(major), int(minor)) >= (3, 8)
    assert "OpenSSL" in result.out
    # the image also has a shell (busybox), like a slim distribution image
    assert sh(docker_lab, "pe-scheduler", "command -v python3").out.strip() == "/usr/bin/python3"


def test_busybox_image_has_no_python(docker_lab: Lab) -> None:
    detect = sh(docker_lab, "pe-busybox", "command -v python3 || command -v python")
    assert detect.exit_code == 127 and detect.stdout == b""
    # exec of a missing binary: the OCI error arrives on stdout, exit code 126
    missing = run_in(docker_lab.url, "pe-busybox", ["python3", "-c", "pass"])
    assert missing.exit_code == 126
    assert b'exec: "python3": executable file not found in $PATH' in missing.stdout


# ------------------------------------------------------------------------------------------
# the lab


def test_lab_layout(docker_lab: Lab) -> None:
    c = docker_lab.containers
    assert set(c) == {"pe-api", "pe-scheduler", "pe-busybox", "pe-worker", "pe-none"}
    for name in ("pe-api", "pe-scheduler", "pe-busybox"):
        assert set(c[name].networks) == {"pe-minikube"}
    assert set(c["pe-worker"].networks) == {"pe-default"}
    assert dict(c["pe-none"].networks) == {}
    assert docker_lab.api_ip == "10.202.0.10"
    assert all(x.dns == ("127.0.0.1",) for x in c.values())
    assert docker_lab.images["busybox"].ref == c["pe-busybox"].image

    async def body(docker: aiodocker.Docker) -> list[dict[str, Any]]:
        return await docker.networks.list(filters={"label": [LAB_LABEL]})

    networks = {n["Name"]: n for n in with_docker(docker_lab.url, body)}
    assert set(networks) == {"pe-minikube", "pe-default"}
    assert networks["pe-minikube"]["IPAM"]["Config"][0]["Subnet"] == "10.202.0.0/24"
    assert networks["pe-minikube"]["Options"]["com.docker.network.bridge.name"] == "pedl-minikube"


def test_container_resolvers_cannot_leak(docker_lab: Lab) -> None:
    on_network = sh(docker_lab, "pe-scheduler", "cat /etc/resolv.conf").out
    assert "nameserver 127.0.0.11" in on_network  # Docker's embedded DNS
    assert "timeout:1" in on_network and "attempts:1" in on_network
    isolated = sh(docker_lab, "pe-none", "cat /etc/resolv.conf").out
    assert [ln for ln in isolated.splitlines() if ln.startswith("nameserver")] == [
        "nameserver 127.0.0.1"
    ]


def test_scheduler_reaches_api_by_address_and_name(docker_lab: Lab) -> None:
    api = docker_lab.api_ip
    ok, closed, by_name, by_alias = connect(
        docker_lab,
        "pe-scheduler",
        (api, 8000, 5),
        (api, 8001, 5),
        ("pe-api", 8000, 5),
        ("api", 8000, 5),
    )
    assert ok["errno"] == 0
    assert closed["errno"] == 111 and closed["name"] == "ECONNREFUSED"
    assert by_name["errno"] == 0 and by_alias["errno"] == 0


def test_scheduler_http_health(docker_lab: Lab) -> None:
    code = (
        "import http.client, json, sys; c = http.client.HTTPConnection(sys.argv[1], 8000, "
        "timeout=5); c.request('GET', sys.argv[2]); r = c.getresponse(); "
        "print(r.status, r.getheader('Content-Type'), json.dumps(json.loads(r.read())))"
    )
    health = run_in(docker_lab.url, "pe-scheduler", ["python3", "-c", code, "pe-api", "/health"])
    assert health.out.split(" ", 2)[:2] == ["200", "application/json"]
    assert json.loads(health.out.split(" ", 2)[2]) == {"status": "ok", "service": "pe-api"}
    missing = run_in(docker_lab.url, "pe-scheduler", ["python3", "-c", code, "pe-api", "/x"])
    assert missing.out.startswith("404 ")


def test_blackhole_port_times_out_and_unassigned_address_is_unreachable(docker_lab: Lab) -> None:
    blackhole, unassigned = connect(
        docker_lab,
        "pe-scheduler",
        (docker_lab.api_ip, 8002, 1.0),
        (docker_lab.spec.unreachable_ip, 8000, 10.0),
    )
    # with settimeout, connect_ex reports the deadline as EAGAIN (11), not ETIMEDOUT (110)
    assert blackhole["errno"] == 11 and 0.9 < blackhole["s"] < 2
    # an address of the subnet that nobody holds: ARP unanswered, EHOSTUNREACH after ~3 s
    assert unassigned["errno"] == 113 and 2 < unassigned["s"] < 6


def test_worker_off_the_network_times_out(docker_lab: Lab) -> None:
    by_ip, by_name = connect(
        docker_lab, "pe-worker", (docker_lab.api_ip, 8000, 1.5), ("pe-api", 8000, 5)
    )
    # routed to its own gateway, which (in the engine's namespace) does not forward: silence
    assert by_ip["errno"] == 11 and by_ip["s"] >= 1.4
    # the other network's names are unknown to its embedded DNS: EAI_AGAIN after 1 s
    assert by_name == {"errno": -3, "name": "gaierror", "s": pytest.approx(1.0, abs=0.6)}


def test_none_container_is_unreachable_at_once(docker_lab: Lab) -> None:
    (by_ip,) = connect(docker_lab, "pe-none", (docker_lab.api_ip, 8000, 5))
    assert by_ip["errno"] == 101 and by_ip["name"] == "ENETUNREACH" and by_ip["s"] < 0.5


# (label, container, script, exit code, exact stderr; API is the pe-api address,
# HOLE the unassigned one)
BUSYBOX_FACTS = [
    ("nc-ok", "pe-busybox", "nc API 8000 </dev/null", 0, ""),
    (
        "nc-refused",
        "pe-busybox",
        "nc API 8001 </dev/null",
        1,
        "nc: can't connect to remote host (API): Connection refused\n",
    ),
    ("nc-timeout", "pe-busybox", "nc -w 1 API 8002 </dev/null", 1, "nc: timed out\n"),
    (
        "nc-off-network-timeout",
        "pe-busybox",
        "nc -w 1 10.203.0.10 8000 </dev/null",
        1,
        "nc: timed out\n",
    ),
    (
        "nc-host-unreachable",
        "pe-busybox",
        "nc HOLE 8000 </dev/null",
        1,
        "nc: can't connect to remote host (HOLE): No route to host\n",
    ),
    (
        "nc-net-unreachable",
        "pe-none",
        "nc API 8000 </dev/null",
        1,
        "nc: can't connect to remote host (API): Network is unreachable\n",
    ),
    (
        "nc-dns",
        "pe-busybox",
        "nc -w 3 no-such-host 8000 </dev/null",
        1,
        "nc: bad address 'no-such-host'\n",
    ),
    ("wget-ok", "pe-busybox", "wget -q -O /dev/null http://API:8000/health", 0, ""),
    (
        "wget-http-404",
        "pe-busybox",
        "wget -q -O /dev/null http://API:8000/nothere",
        1,
        "wget: server returned error: HTTP/1.1 404 Not Found\n",
    ),
    (
        "wget-refused",
        "pe-busybox",
        "wget -q -O - http://API:8001/",
        1,
        "wget: can't connect to remote host (API): Connection refused\n",
    ),
    (
        "wget-host-unreachable",
        "pe-busybox",
        "wget -q -O - http://HOLE:8000/",
        1,
        "wget: can't connect to remote host (HOLE): No route to host\n",
    ),
    (
        "wget-net-unreachable",
        "pe-none",
        "wget -q -O - http://API:8000/",
        1,
        "wget: can't connect to remote host (API): Network is unreachable\n",
    ),
    (
        "wget-dns",
        "pe-busybox",
        "wget -q -O - http://no-such-host:8000/",
        1,
        "wget: bad address 'no-such-host:8000'\n",
    ),
    # no usable -T (below): a deadline comes from busybox timeout, which kills with SIGTERM
    ("wget-connect-timeout", "pe-busybox", "timeout 1 wget -q -O - http://API:8002/", 143, ""),
    ("wget-read-timeout", "pe-busybox", "timeout 1 wget -q -O - http://API:8003/", 143, ""),
    # Debian's busybox-static 1.35 wget crashes (SIGSEGV) as soon as -T is given
    ("wget-T-crashes", "pe-busybox", "wget -T 2 -q -O - http://API:8000/health", 139, ""),
]


@pytest.mark.parametrize(
    ("container", "script", "code", "stderr"),
    [pytest.param(*fact[1:], id=fact[0]) for fact in BUSYBOX_FACTS],
)
def test_busybox_messages(
    docker_lab: Lab, container: str, script: str, code: int, stderr: str
) -> None:
    api, hole = docker_lab.api_ip, docker_lab.spec.unreachable_ip
    result = sh(docker_lab, container, script.replace("API", api).replace("HOLE", hole))
    assert (result.exit_code, result.err) == (
        code,
        stderr.replace("API", api).replace("HOLE", hole),
    )


def test_busybox_wget_body(docker_lab: Lab) -> None:
    result = sh(docker_lab, "pe-busybox", f"wget -q -O - http://{docker_lab.api_ip}:8000/health")
    assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "ok"


# ------------------------------------------------------------------------------------------
# exec through aiodocker


def test_exec_overhead(docker_lab: Lab) -> None:
    async def body(docker: aiodocker.Docker) -> list[float]:
        times = []
        for _ in range(20):
            result = await exec_run(docker, "pe-busybox", ["true"])
            assert result.exit_code == 0
            times.append(result.seconds)
        return times

    times = with_docker(docker_lab.url, body)
    median = statistics.median(times)
    FACTS["exec round trip (create+start+inspect, `true`)"] = (
        f"median {median * 1000:.0f} ms, min {min(times) * 1000:.0f} ms over {len(times)}"
    )
    assert median < 0.5


def test_exec_exit_codes_and_streams(docker_lab: Lab) -> None:
    result = sh(docker_lab, "pe-busybox", "echo out; echo err >&2; exit 7")
    assert (result.exit_code, result.stdout, result.stderr) == (7, b"out\n", b"err\n")
    killed = sh(docker_lab, "pe-busybox", "echo started; kill -9 $$")
    assert (killed.exit_code, killed.stdout) == (137, b"started\n")  # 128 + SIGKILL


def test_exec_stdin_in_bulk(docker_lab: Lab) -> None:
    payload = b"x" * (1 << 20)
    result = run_in(docker_lab.url, "pe-busybox", ["wc", "-c"], stdin=payload)
    assert (result.exit_code, result.out.strip()) == (0, str(len(payload)))
    echoed = run_in(
        docker_lab.url,
        "pe-scheduler",
        ["python3", "-c", "import sys; sys.stdout.write(sys.stdin.read()[::-1])"],
        stdin=b"abc\n",
    )
    assert echoed.stdout == b"\ncba"


DOUBLER = """
import sys
for line in sys.stdin:
    print(int(line) * 2, flush=True)
print("stdin closed", file=sys.stderr)
sys.exit(3)
"""


def test_exec_stdin_streaming_python(docker_lab: Lab) -> None:
    """Write one line, read its answer before writing the next, close stdin, get the code."""

    async def body(docker: aiodocker.Docker) -> tuple[list[bytes], int, bytes, float]:
        answers: list[bytes] = []
        async with ExecSession(docker, "pe-scheduler", ["python3", "-u", "-c", DOUBLER]) as s:
            t0 = time.monotonic()
            for n in range(1, 6):
                await s.write(f"{n}\n".encode())
                answers.append(await s.readline())
            per_line = (time.monotonic() - t0) / 5
            s.close_stdin()
            code = await s.wait()
            return answers, code, bytes(s.stderr), per_line

    answers, code, stderr, per_line = with_docker(docker_lab.url, body)
    assert answers == [b"2\n", b"4\n", b"6\n", b"8\n", b"10\n"]
    assert code == 3 and stderr == b"stdin closed\n"
    FACTS["exec stdin->stdout line round trip"] = f"{per_line * 1000:.1f} ms"


def test_exec_stdin_streaming_busybox_shell(docker_lab: Lab) -> None:
    script = 'while read l || [ -n "$l" ]; do echo "got $l"; done; echo bye >&2; exit 4'

    async def body(docker: aiodocker.Docker) -> tuple[list[bytes], int, bytes, bytes]:
        async with ExecSession(docker, "pe-busybox", ["sh", "-c", script]) as s:
            got = []
            for word in ("a", "b"):
                await s.write(word.encode() + b"\n")
                got.append(await s.readline())
            await s.write(b"tail")  # no newline: read still returns it at EOF
            s.close_stdin()
            code = await s.wait()
            return got, code, bytes(s.stdout_rest), bytes(s.stderr)

    got, code, rest, stderr = with_docker(docker_lab.url, body)
    assert got == [b"got a\n", b"got b\n"]
    assert (code, rest, stderr) == (4, b"got tail\n", b"bye\n")


def test_exec_faults_are_docker_errors(docker_lab: Lab) -> None:
    """What the docker source turns into source-error rows."""

    async def body(docker: aiodocker.Docker) -> dict[str, tuple[int, str]]:
        seen: dict[str, tuple[int, str]] = {}
        try:
            await exec_run(docker, "pe-no-such-container", ["true"])
        except aiodocker.DockerError as exc:
            seen["missing"] = (exc.status, exc.message)
        stopped = await docker.containers.create(
            {
                "Image": docker_lab.images["busybox"].ref,
                "Cmd": ["true"],
                "Labels": {LAB_LABEL: "1"},
                "HostConfig": {"NetworkMode": "none"},
            },
            name="pe-stopped",
        )
        try:
            await exec_run(docker, "pe-stopped", ["true"])
        except aiodocker.DockerError as exc:
            seen["stopped"] = (exc.status, exc.message)
        finally:
            await stopped.delete(force=True)
        return seen

    seen = with_docker(docker_lab.url, body)
    assert seen["missing"] == (404, "No such container: pe-no-such-container")
    status, message = seen["stopped"]
    assert (
        status == 409 and message.startswith("Container ") and message.endswith(" is not running")
    )


# ------------------------------------------------------------------------------------------
# a dockerd left by a killed run


CHILD = """
import sys, time
from pathlib import Path
from tests.dockerlab import DaemonConfig, DockerDaemon
d = DockerDaemon(DaemonConfig(cache_dir=Path(sys.argv[1]), netns=sys.argv[2]))
d.start()
print(d.pid, d.run_dir, flush=True)
time.sleep(600)
"""


def test_leftover_daemon_of_a_killed_run_is_cleaned_up(docker_engine: DockerDaemon) -> None:
    """A second engine (own cache folder, own namespace) started by a process that is then
    SIGKILLed: the next start finds it through the state file and removes it."""
    netns = "pedl-leftover"
    with tempfile.TemporaryDirectory(prefix="pe-dockerlab-leftover-") as tmp:
        cache = Path(tmp)
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(cache), netns],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            pid_text, run_dir_text = child.stdout.readline().split()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        pid, run_dir = int(pid_text), Path(run_dir_text)
        assert Path(f"/proc/{pid}").exists(), "dockerd should outlive the killed test process"
        assert Path(f"/run/netns/{netns}").exists()
        config = DaemonConfig(cache_dir=cache, netns=netns)
        try:
            daemon = DockerDaemon(config)
            daemon.start()
            try:
                assert any("stopped leftover dockerd" in a for a in daemon.leftover_actions), (
                    daemon.leftover_actions
                )
                assert (
                    not Path(f"/proc/{pid}").exists()
                    or b"dockerd" not in Path(f"/proc/{pid}/cmdline").read_bytes()
                )
                assert not run_dir.exists()
            finally:
                daemon.stop()
            assert not Path(f"/run/netns/{netns}").exists()
            assert not config.state_file.exists()
            assert str(cache) not in Path("/proc/self/mountinfo").read_text()
            assert cleanup_leftover(config) == []
        finally:
            cleanup_leftover(config)  # whatever failed above, nothing is left running
