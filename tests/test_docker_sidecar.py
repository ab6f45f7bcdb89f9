"""`kind: docker` with `sidecar: {image}`: a container without python3 (busybox) or without
anything (a distroless image: one static binary, no sh) is probed from a short-lived container
in its network namespace (`--network container:<id>`), on the real dockerd of the tests; the
sidecar is removed at the end, also when the run is cut short."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiodocker
import pytest

from probe_engine import MatrixResult
from probe_engine.results import SourceInfo
from tests.conftest import cell, run_text
from tests.dockerlab import LAB_LABEL, DockerDaemon, Lab, run_sync
from tests.dockerlab.images import BASE_ETC, _copy, _dir, ensure_image

pytestmark = [pytest.mark.docker]

DISTROLESS = "pe-distroless"
SIDECAR_LABEL = "org.probe-engine.sidecar"


def distroless_rootfs() -> list:  # type: ignore[type-arg]
    """One static binary (busybox, called by its path), no applet links: no sh, no python3."""
    return [*BASE_ETC, _dir("app"), _copy("app/busybox", Path("/bin/busybox"), 0o755)]


@pytest.fixture(scope="module")
def distroless(docker_engine: DockerDaemon, docker_lab: Lab) -> Iterator[str]:
    """A running container of a distroless image on pe-minikube, with a proxy in its
    environment (that its own address bypasses)."""

    async def up() -> None:
        async with aiodocker.Docker(url=docker_lab.url) as docker:
            rootfs = docker_engine.config.rootfs_dir
            image = await ensure_image(docker, DISTROLESS, distroless_rootfs(), rootfs)
            container = await docker.containers.create(
                {
                    "Image": image.ref,
                    "Cmd": ["/app/busybox", "sleep", "365d"],
                    "Labels": {LAB_LABEL: "1"},
                    "Env": [
                        "PATH=/usr/local/bin:/usr/bin:/bin",
                        "HTTP_PROXY=http://10.202.0.99:3128",
                        f"NO_PROXY={docker_lab.api_ip}",
                    ],
                    "HostConfig": {
                        "NetworkMode": "pe-minikube",
                        "Dns": ["127.0.0.1"],
                        "Init": True,
                    },
                },
                name=DISTROLESS,
            )
            await container.start()

    async def down() -> None:
        async with aiodocker.Docker(url=docker_lab.url) as docker:
            await docker.containers.container(DISTROLESS).delete(force=True)

    run_sync(up)
    yield DISTROLESS
    run_sync(down)


def sidecars(lab: Lab) -> list[str]:
    async def listed() -> list[str]:
        async with aiodocker.Docker(url=lab.url) as docker:
            found = await docker.containers.list(all=True, filters={"label": [SIDECAR_LABEL]})
            return [c["Names"][0] for c in found]

    return run_sync(listed)


def row(result: MatrixResult, name: str) -> SourceInfo:
    return next(s for s in result.sources if s.name == name)


def test_containers_without_python_are_probed_from_a_sidecar_in_their_namespace(
    docker_lab: Lab, distroless: str
) -> None:
    python = docker_lab.images["python"].ref
    host = docker_lab.url
    result = run_text(
        f"""
sources:
  busybox: {{kind: docker, host: "{host}", container: pe-busybox, sidecar: {{image: "{python}"}}}}
  distroless: {{kind: docker, host: "{host}", container: {distroless}, sidecar: {{image: "{python}"}}}}
  bare: {{kind: docker, host: "{host}", container: {distroless}}}
  always: {{kind: docker, host: "{host}", container: pe-scheduler,
           sidecar: {{image: "{python}", always: true}}}}
targets:
  api: {{kind: http, url: "http://{docker_lab.api_ip}:8000/health"}}
  closed: {{kind: tcp, host: {docker_lab.api_ip}, port: 8001}}
"""
    )
    for source in ("busybox", "distroless", "always"):
        assert cell(result, source, "api").status == "ok", source
        assert cell(result, source, "api").tool == "agent"
        assert cell(result, source, "closed").status == "refused"
    facts = row(result, "busybox").facts
    assert facts["note"].startswith("no python3 in container pe-busybox")
    assert facts["note"].endswith(f"probed from a sidecar container (image {python}) instead")
    # The agent ran in the sidecar, and saw the container's own network: its address
    assert docker_lab.ip("pe-busybox") in str(facts.get("addresses"))
    distroless_facts = row(result, "distroless").facts
    assert distroless_facts["sidecar"].endswith(f"-{distroless}")
    assert distroless_facts["proxy_env"]["HTTP_PROXY"] == "http://10.202.0.99:3128"
    assert row(result, "always").facts["note"] == (
        f"probed from a sidecar container (image {python}) (always: true)"
    )
    bare = cell(result, "bare", "api")
    assert bare.status == "source-error"
    assert bare.message is not None
    assert bare.message.startswith(f"neither python3 nor sh can run in container {distroless}")
    assert sidecars(docker_lab) == []


def test_a_run_cut_short_removes_its_sidecar(docker_lab: Lab, distroless: str) -> None:
    python = docker_lab.images["python"].ref
    result = run_text(
        f"""
sources:
  distroless: {{kind: docker, host: "{docker_lab.url}", container: {distroless},
               sidecar: {{image: "{python}"}}}}
targets:
  hangs: {{kind: tcp, host: {docker_lab.api_ip}, port: {docker_lab.spec.blackhole_port}, timeout: 60s}}
""",
        deadline=4.0,
    )
    assert cell(result, "distroless", "hangs").status == "cancelled"
    assert sidecars(docker_lab) == []
