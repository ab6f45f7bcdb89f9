"""`probe-engine cleanup`: remove the probe pods and sidecars that killed runs left."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .guard import guard
from .options import duration

if TYPE_CHECKING:
    from ..cleanup import CleanupOptions
    from ..kube import KubeOverrides


@click.command()
@click.option("--kubeconfig", default=None, help="Kubeconfig file(s), as for `run`.")
@click.option("--context", "kube_context", default=None, help="Kubeconfig context, as for `run`.")
@click.option(
    "-n",
    "--namespace",
    default=None,
    help="Where the probe pods are [default: the context's namespace].",
)
@click.option("-A", "--all-namespaces", is_flag=True, help="Probe pods in every namespace.")
@click.option("--run", "run_id", default=None, help="Only what this run left (its run id).")
@click.option(
    "--older-than",
    default=None,
    help="Only what is at least this old, e.g. 10m (a run still going keeps its pods).",
)
@click.option(
    "--docker/--no-docker",
    default=False,
    help="Also remove Docker sidecars (DOCKER_HOST, else the local socket).",
)
@click.option("--docker-host", default=None, help="The Docker daemon for --docker.")
@click.option(
    "--kubernetes/--no-kubernetes", default=True, show_default=True, help="Remove probe pods."
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def cleanup(  # noqa: PLR0913 - click hands every option over as a parameter
    kubeconfig: str | None,
    kube_context: str | None,
    namespace: str | None,
    all_namespaces: bool,
    run_id: str | None,
    older_than: str | None,
    docker: bool,
    docker_host: str | None,
    kubernetes: bool,
    dry_run: bool,
) -> None:
    """Remove what killed runs left: probe pods (kubernetes-nodes sources) and, with --docker,
    sidecar containers, found by their labels. A run removes its own, on Ctrl-C and SIGTERM
    too. Ephemeral containers cannot be removed: those probe-engine added are listed.
    Exit status 0, or 1 if something could not be listed or removed."""

    def action() -> int:
        import anyio

        from ..cleanup import CleanupOptions
        from ..errors import SpecError
        from ..extras import MissingExtra, require
        from ..kube import KubeOverrides

        try:
            if docker:
                require("docker", "cleanup --docker")
        except MissingExtra as exc:
            raise SpecError(str(exc), field="--docker") from None

        options = CleanupOptions(
            namespace=namespace,
            all_namespaces=all_namespaces,
            run=run_id,
            older_than=duration(older_than, "--older-than"),
            dry_run=dry_run,
        )
        kube = KubeOverrides(kubeconfig, kube_context) if kubernetes else None
        lines, failed = anyio.run(_cleanup, options, kube, docker, docker_host)
        for line in lines:
            click.echo(line)
        return 1 if failed else 0

    guard(action)


async def _cleanup(
    options: CleanupOptions,
    kube_overrides: KubeOverrides | None,
    docker: bool,
    docker_host: str | None,
) -> tuple[list[str], int]:
    """Probe pods with `kube_overrides` (None: none), sidecars if `docker`."""
    import os

    from ..cleanup import Outcome, cleanup_pods, cleanup_sidecars
    from ..kube import KubeError, kube_settings, open_client

    outcome = Outcome()
    if kube_overrides is not None:
        try:
            kube = await open_client(kube_settings(None, kube_overrides))
        except KubeError as exc:
            outcome.failed += 1
            outcome.lines.append(f"kubernetes: {exc}")
        else:
            try:
                await cleanup_pods(kube, options, outcome)
            finally:
                await kube.aclose()
    if docker:
        import aiodocker

        from ..docker_context import DockerContextError
        from ..sources.docker import daemon_url

        try:
            url, _origin = daemon_url(docker_host, os.environ)
        except DockerContextError as exc:
            outcome.failed += 1
            outcome.lines.append(f"docker: {exc}")
            return outcome.lines, outcome.failed
        async with aiodocker.Docker(url=url) as client:
            await cleanup_sidecars(client, options, outcome)
    return outcome.lines, outcome.failed
