"""`kind: kubernetes` with `debug: {ephemeral: true}`: a pod with neither python3 nor sh (a
distroless image) is probed from an ephemeral container added to it through the
pods/ephemeralcontainers subresource (as `kubectl debug` adds one), which the test server's
kubelet starts with its own image's tools; the agent runs there through pod exec. Ephemeral
containers cannot be removed, so the one an earlier run added is reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe_engine import MatrixResult
from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.results import SourceInfo
from tests.conftest import cell, run_text
from tests.kubelab import apiserver as kl
from tests.kubelab.apiserver.kubelet import Image

pytestmark = [pytest.mark.kubernetes]

PATCHES = "/api/v1/namespaces/default/pods/*/ephemeralcontainers"


@pytest.fixture
def distroless(kube_store: kl.Store, tmp_path: Path) -> str:
    """Pod `app` (label app=distroless): its image has no python3 and no sh."""
    empty = tmp_path / "distroless"
    empty.mkdir()
    kube_store.put(
        kl.pod(
            "app",
            labels={"app": "distroless"},
            containers=[{"name": "app", "image": "gcr.io/distroless/static"}],
        ),
        runtime=kl.PodRuntime(env={"PATH": str(empty)}),
    )
    return "app"


def matrix(kubeconfig: Path, loopback: LoopbackLab, debug: str = "{ephemeral: true}") -> str:
    return f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
sources:
  app: {{kind: kubernetes, selector: app=distroless, debug: {debug}}}
targets:
  api: {{kind: http, url: "http://127.0.0.1:{loopback.http_port}/health"}}
  closed: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}
"""


def row(result: MatrixResult, name: str) -> SourceInfo:
    return next(s for s in result.sources if s.name == name)


def test_a_distroless_pod_is_probed_from_an_ephemeral_container_reused_next_time(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab, distroless: str
) -> None:
    first = run_text(matrix(kubeconfig, loopback))
    assert cell(first, "app/app", "api").status == "ok"
    assert cell(first, "app/app", "closed").status == "refused"
    facts = row(first, "app/app").facts
    assert (facts["debug_container"], facts["debug_reused"]) == ("probe-engine-debug-1", False)
    assert facts["note"] == (
        "neither python3 nor sh can run in pod default/app container app: nothing here can "
        "probe: probed from an ephemeral container (image python:3.12-slim) instead"
    )
    assert facts["runner"] == "agent"
    pod = kube_apiserver.store.get("Pod", "app")
    assert pod is not None
    (added,) = pod["spec"]["ephemeralContainers"]
    assert (added["name"], added["targetContainerName"]) == ("probe-engine-debug-1", "app")
    assert [e.container for e in kube_apiserver.execs][-1] == "probe-engine-debug-1"
    assert len(kube_apiserver.requests_to(PATCHES)) == 1

    second = run_text(matrix(kubeconfig, loopback))
    assert cell(second, "app/app", "api").status == "ok"
    assert row(second, "app/app").facts["debug_reused"] is True
    assert len(kube_apiserver.requests_to(PATCHES)) == 1  # nothing added: they cannot go
    pod = kube_apiserver.store.get("Pod", "app")
    assert pod is not None and len(pod["spec"]["ephemeralContainers"]) == 1


def test_one_that_ended_is_not_reused_and_a_new_one_gets_the_next_name(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab, distroless: str
) -> None:
    run_text(matrix(kubeconfig, loopback))
    state = kube_apiserver.kubelet.pods[("default", "app")]
    process = state.containers["probe-engine-debug-1"].process
    assert process is not None
    process.kill()  # the ephemeral container's sleep ends: it cannot be restarted
    kube_apiserver.call(state.containers["probe-engine-debug-1"].done.wait)
    result = run_text(matrix(kubeconfig, loopback))
    assert cell(result, "app/app", "api").status == "ok"
    assert row(result, "app/app").facts["debug_container"] == "probe-engine-debug-2"


def test_a_pod_with_python_keeps_its_own_view_unless_always(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab
) -> None:
    kube_apiserver.store.put(kl.pod("app", labels={"app": "distroless"}))
    result = run_text(matrix(kubeconfig, loopback))
    assert cell(result, "app/app", "api").status == "ok"
    assert "debug_container" not in row(result, "app/app").facts
    assert kube_apiserver.requests_to(PATCHES) == []
    result = run_text(matrix(kubeconfig, loopback, "{ephemeral: true, always: true}"))
    facts = row(result, "app/app").facts
    assert facts["debug_container"] == "probe-engine-debug-1"
    assert (
        facts["note"]
        == "probed from an ephemeral container (image python:3.12-slim) (always: true)"
    )


def test_a_debug_image_that_cannot_be_pulled_is_the_rows_error(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab, distroless: str
) -> None:
    kube_apiserver.kubelet.images["private/debug:1"] = Image(
        pull_error='failed to pull image "private/debug:1": 401 Unauthorized'
    )
    result = run_text(
        matrix(
            kubeconfig, loopback, "{ephemeral: true, image: 'private/debug:1', start_timeout: 10s}"
        )
    )
    info = row(result, "app/app")
    assert info.status == "error"
    assert info.message is not None
    assert info.message.endswith(
        "an ephemeral container (image private/debug:1) could not be used either: the "
        "ephemeral container probe-engine-debug-1 of pod default/app cannot start: ErrImagePull: "
        'failed to pull image "private/debug:1": 401 Unauthorized'
    )
