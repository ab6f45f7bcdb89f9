"""Sidecar containers: a place with Python in the network namespace of a container that has none
(python-less and distroless images), on the Docker side.

The sidecar is `docker run --network container:<id>` of an image with python3: it shares the
target's network namespace (its interfaces, routes, iptables, and the resolv.conf and hosts
Docker gives it), idles (`sleep`), and the agent runs in it through docker exec, as in any
container. It carries the target's environment (its proxy variables above all, so the agent
decides as the app would), but PATH, HOME and HOSTNAME stay its image's. It is labelled with
the run (`org.probe-engine.run`) and removed when the row is done, on Ctrl-C and SIGTERM too;
`probe-engine cleanup` removes what a killed run left.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

import anyio

from .channel import ChannelError
from .docker_exec import DockerExecChannel, ExecIn, api_errors
from .remote import STOP_WITHIN, Place

IDLE = ["sleep", "2147483647"]
LABEL = "org.probe-engine.sidecar"
RUN_LABEL = "org.probe-engine.run"
TARGET_LABEL = "org.probe-engine.target"
MANAGED_LABEL = "app.kubernetes.io/managed-by"
KEPT_APART = ("PATH", "HOME", "HOSTNAME")  # the sidecar image's own, not the target's


class Sidecar:
    """One sidecar beside the container `target` (its docker inspect), from `image`."""

    def __init__(self, client: Any, target: Mapping[str, Any], image: str, run_id: str) -> None:
        self.client, self.target, self.image, self.run_id = client, target, image, run_id
        self.container: Any = None
        target_name = str(target.get("Name") or target["Id"][:12]).lstrip("/")
        self.target_name = target_name
        self.name = f"probe-engine-{run_id[:8]}-{target_name}"[:120]

    def config(self) -> dict[str, Any]:
        env = [
            item
            for item in (self.target.get("Config") or {}).get("Env") or []
            if item.split("=", 1)[0] not in KEPT_APART
        ]
        return {
            "Image": self.image,
            "Cmd": IDLE,
            "Env": env,
            "Labels": {
                LABEL: "1",
                RUN_LABEL: self.run_id,
                TARGET_LABEL: self.target_name,
                MANAGED_LABEL: "probe-engine",
            },
            "HostConfig": {
                "NetworkMode": f"container:{self.target['Id']}",
                "Init": True,  # signals reach the agent; zombies are reaped
                "RestartPolicy": {"Name": "no"},
                "AutoRemove": False,
            },
        }

    async def start(self, facts: Mapping[str, Any], env: Mapping[str, str] | None) -> Place:
        """Run the sidecar and return its place (`env`: what programs there see);
        ChannelError, with nothing left behind, if it cannot."""
        import aiodocker
        from aiodocker.exceptions import DockerContainerError

        begun = time.monotonic()
        try:
            self.container = await self.client.containers.run(self.config(), name=self.name)
        except DockerContainerError as exc:  # created, not started: remove it
            self.container = self.client.containers.container(exc.container_id)
            await self.remove()
            raise ChannelError(self._why(exc)) from exc
        except aiodocker.DockerError as exc:
            raise ChannelError(self._why(exc)) from exc
        except api_errors() as exc:
            raise ChannelError(f"the sidecar {self.name} could not be made: {exc}") from exc
        place_facts = {
            **facts,
            "sidecar": self.name,
            "sidecar_image": self.image,
            "sidecar_ms": round((time.monotonic() - begun) * 1000.0, 1),
        }
        name = f"{self.name} (sidecar of {self.target_name})"
        channel = partial(DockerExecChannel, self.client, ExecIn(self.container.id, name))
        return Place(channel, place_facts, env)

    def _why(self, exc: Any) -> str:
        message = getattr(exc, "message", None) or str(exc)
        return (
            f"the sidecar (image {self.image}) in the network namespace of container "
            f"{self.target_name} could not run: {message}"
        )

    async def remove(self) -> None:
        """Remove it (killing its processes); never raises, bounded in time, shielded."""
        container, self.container = self.container, None
        if container is None:
            return
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(STOP_WITHIN),
            contextlib.suppress(*api_errors()),
        ):
            await container.delete(force=True, v=True)
