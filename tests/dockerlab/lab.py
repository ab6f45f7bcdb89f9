"""The lab: two user networks and five containers (DEFAULT_LAB), made and removed through
aiodocker; pe-api serves HTTP, refuses, drops and hangs on its ports."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiodocker

from .execs import exec_run
from .host import SAFE_PATH, DockerLabError
from .images import LAB_LABEL, ImageInfo

BRIDGE_PREFIX = "pedl-"
"""Names of the lab's Linux bridges and of the engine's network namespace start with this."""


API_SERVER_SCRIPT = r"""
import json, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

http_port, blackhole_port, hang_port = (int(a) for a in sys.argv[1:4])

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/health":
            code, body = 200, {"status": "ok", "service": socket.gethostname()}
        else:
            code, body = 404, {"error": "not found", "path": self.path}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
    def log_request(self, code="-", size="-"):
        # An access log with the User-Agent, as nginx's combined format has it.
        agent = self.headers.get("User-Agent", "-")
        line = '%s - "%s" %s "%s"\n' % (self.client_address[0], self.requestline, code, agent)
        sys.stdout.write(line)  # one write: one log record

# blackhole: an accept queue of one, filled by our own connection: SYNs to it are dropped,
# so a connect from elsewhere times out (no iptables needed)
blackhole = socket.socket()
blackhole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
blackhole.bind(("0.0.0.0", blackhole_port))
blackhole.listen(0)
fillers = []
for _ in range(2):
    c = socket.socket()
    c.settimeout(0.5)
    try:
        c.connect(("127.0.0.1", blackhole_port))
    except OSError:
        pass
    fillers.append(c)

# hang: accepts and never answers (read timeout)
hang = socket.create_server(("0.0.0.0", hang_port))
held = []
def hold():
    while True:
        held.append(hang.accept()[0])
threading.Thread(target=hold, daemon=True).start()

server = ThreadingHTTPServer(("0.0.0.0", http_port), Handler)
open("/tmp/pe-api.ready", "w").close()
server.serve_forever()
"""
"""pe-api's main process: HTTP on 8000 (/health -> 200 JSON, else 404 JSON), a blackhole on
8002 (connect timeout), a silent listener on 8003 (read timeout). 8001 stays closed."""

SLEEP = ("sleep", "365d")


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    subnet: str
    gateway: str
    ip_range: str
    """Dynamic addresses come from here; the rest of the subnet is for fixed ones."""
    bridge: str
    """The Linux bridge's name (starts with BRIDGE_PREFIX, at most 15 characters)."""


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: Literal["busybox", "python"]
    network: str | None
    """None: network mode none."""
    ip: str | None = None
    command: tuple[str, ...] = SLEEP
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabSpec:
    networks: tuple[NetworkSpec, ...]
    containers: tuple[ContainerSpec, ...]
    dns: str = "127.0.0.1"
    """Every container's resolver (HostConfig.Dns): on a user network Docker's embedded DNS at
    127.0.0.11 answers the network's container names and forwards the rest here, i.e. to the
    container's own loopback, where nothing answers."""
    dns_options: tuple[str, ...] = ("timeout:1", "attempts:1")
    """resolv.conf options: a name nobody answers fails after 1 s (EAI_AGAIN) instead of 10."""
    api: str = "pe-api"
    api_port: int = 8000
    closed_port: int = 8001
    blackhole_port: int = 8002
    hang_port: int = 8003
    unreachable_ip: str = "10.202.0.250"
    """In pe-minikube's subnet, never assigned: ARP goes unanswered (EHOSTUNREACH after ~3 s)."""


DEFAULT_LAB = LabSpec(
    networks=(
        NetworkSpec(
            "pe-minikube", "10.202.0.0/24", "10.202.0.1", "10.202.0.128/25", "pedl-minikube"
        ),
        NetworkSpec("pe-default", "10.203.0.0/24", "10.203.0.1", "10.203.0.128/25", "pedl-default"),
    ),
    containers=(
        ContainerSpec(
            "pe-api",
            "python",
            "pe-minikube",
            "10.202.0.10",
            ("python3", "-u", "-c", API_SERVER_SCRIPT, "8000", "8002", "8003"),
            aliases=("api",),
        ),
        ContainerSpec("pe-scheduler", "python", "pe-minikube", "10.202.0.11"),
        ContainerSpec("pe-busybox", "busybox", "pe-minikube", "10.202.0.12"),
        ContainerSpec("pe-worker", "python", "pe-default", "10.203.0.10"),
        ContainerSpec("pe-none", "python", None),
    ),
)


@dataclass(frozen=True)
class LabContainer:
    name: str
    id: str
    image: str
    pid: int
    networks: Mapping[str, str]
    """Network name -> IPv4 address (empty for network mode none)."""
    dns: tuple[str, ...]


@dataclass(frozen=True)
class Lab:
    url: str
    spec: LabSpec
    containers: Mapping[str, LabContainer]
    setup_seconds: float
    images: Mapping[str, ImageInfo] = field(default_factory=dict)

    def ip(self, container: str, network: str | None = None) -> str:
        nets = self.containers[container].networks
        if network is None:
            if not nets:
                raise KeyError(f"{container} has no network")
            return next(iter(nets.values()))
        return nets[network]

    @property
    def api_ip(self) -> str:
        return self.ip(self.spec.api)


async def remove_lab(docker: aiodocker.Docker) -> int:
    """Remove every container and network carrying LAB_LABEL; returns how many things."""
    count = 0
    for container in await docker.containers.list(all=True, filters={"label": [LAB_LABEL]}):
        with contextlib.suppress(aiodocker.DockerError):
            await container.delete(force=True, v=True)
            count += 1
    for network in await docker.networks.list(filters={"label": [LAB_LABEL]}):
        with contextlib.suppress(aiodocker.DockerError):
            await (await docker.networks.get(network["Id"])).delete()
            count += 1
    return count


async def create_lab(
    url: str,
    images: Mapping[str, ImageInfo],
    spec: LabSpec = DEFAULT_LAB,
    ready_timeout: float = 20.0,
) -> Lab:
    """Create the lab's networks and containers (after removing any left from earlier runs),
    wait until pe-api serves, and describe what came up."""
    t0 = time.monotonic()
    containers: dict[str, LabContainer] = {}
    async with aiodocker.Docker(url=url) as docker:
        await remove_lab(docker)
        for net in spec.networks:
            await docker.networks.create({
                "Name": net.name,
                "Driver": "bridge",
                "CheckDuplicate": True,
                "Internal": True,
                "IPAM": {"Driver": "default", "Config": [
                    {"Subnet": net.subnet, "Gateway": net.gateway, "IPRange": net.ip_range}
                ]},
                "Options": {"com.docker.network.bridge.name": net.bridge},
                "Labels": {LAB_LABEL: "1"},
            })  # fmt: skip
        for c in spec.containers:
            image = images[c.image].ref
            host_config: dict[str, Any] = {
                "NetworkMode": c.network or "none",
                "Dns": [spec.dns],
                "DnsSearch": [],
                "DnsOptions": list(spec.dns_options),
                "Init": True,  # docker-init as PID 1: signals work, zombies are reaped
                "RestartPolicy": {"Name": "no"},
            }
            config: dict[str, Any] = {
                "Image": image,
                "Cmd": list(c.command),
                "Hostname": c.name,
                "Env": [f"PATH={SAFE_PATH}"],
                "Labels": {LAB_LABEL: "1"},
                "HostConfig": host_config,
            }
            if c.network is not None:
                endpoint: dict[str, Any] = {"Aliases": list(c.aliases)}
                if c.ip is not None:
                    endpoint["IPAMConfig"] = {"IPv4Address": c.ip}
                config["NetworkingConfig"] = {"EndpointsConfig": {c.network: endpoint}}
            container = await docker.containers.create(config, name=c.name)
            await container.start()
            data = await container.show()
            pid = int(data["State"]["Pid"])
            nets = {
                name: str(ep.get("IPAddress") or "")
                for name, ep in (data["NetworkSettings"].get("Networks") or {}).items()
                if name != "none"
            }
            containers[c.name] = LabContainer(
                name=c.name,
                id=data["Id"],
                image=image,
                pid=pid,
                networks=nets,
                dns=tuple(data["HostConfig"].get("Dns") or ()),
            )
        deadline = time.monotonic() + ready_timeout
        while True:
            result = await exec_run(docker, spec.api, ["test", "-e", "/tmp/pe-api.ready"])
            if result.exit_code == 0:
                break
            if time.monotonic() > deadline:
                logs = await docker.containers.container(spec.api).log(stdout=True, stderr=True)
                raise DockerLabError(f"{spec.api} did not come up: {''.join(logs)[-2000:]}")
            await asyncio.sleep(0.05)
    return Lab(
        url=url,
        spec=spec,
        containers=containers,
        images=dict(images),
        setup_seconds=time.monotonic() - t0,
    )
