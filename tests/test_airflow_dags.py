"""A real Airflow runs DAGs with the diagnostics task, the readiness sensor and the example DAG.

Airflow lives in its own venv per line (.ci/airflow.sh installs them: /opt/pe-airflow/3 and
/opt/pe-airflow/2.10 by default). Each line gets a fresh AIRFLOW_HOME with SQLite, examples off,
`airflow db migrate`, then `airflow dags test` runs the DAGs of tests/airflow_dags/ whose
matrices target the loopback fixtures (ports passed through the environment, read by the
matrices as ${NAME}). Results are read back from Airflow's own database (task states, XCom)
and from the files the DAGs write. Under CI=true a missing venv fails these tests.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from probe_engine.demo.fixtures import LOOPBACK, LoopbackLab, free_port
from tests.conftest import require
from tests.kubelab import apiserver as kl
from tests.kubelab.kubeconfig import kubeconfig_dict

pytestmark = pytest.mark.airflow

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "tests" / "airflow_dags"
VENV_ROOT = Path(os.environ.get("PE_AIRFLOW_ROOT", "/opt/pe-airflow"))
VERSIONS = os.environ.get("PE_AIRFLOW_VERSIONS", "3 2.10").split()
RUN_TIMEOUT = 180  # one `airflow dags test`: ~10 s here; the bound only stops a hang
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)")


@dataclass
class AirflowHome:
    version: str
    venv: Path
    home: Path
    out: Path
    env: dict[str, str]

    def airflow(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args],
            env=self.env | env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", code],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return db.execute(sql, params).fetchall()

    def states(self, dag_id: str) -> dict[str, str]:
        rows = self.query("SELECT task_id, state FROM task_instance WHERE dag_id = ?", dag_id)
        return dict(rows)

    def xcom(self, dag_id: str, task_id: str, key: str = "return_value") -> Any:
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = ?",
            dag_id,
            task_id,
            key,
        )
        assert len(rows) == 1, f"{dag_id}.{task_id} {key}: {len(rows)} XCom rows"
        return json.loads(rows[0][0])  # Airflow 3 stores JSON text, Airflow 2 JSON bytes


KUBE_NAMESPACE = "probes"  # the `kubernetes` connection's; the matrix names none
DOCKER_SOCKET = "unix:///nonexistent/pe-docker.sock"  # the `docker` connection's: no daemon


@pytest.fixture(scope="module")
def provider_metadata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout installed (no dependencies) into a folder of its own, for its metadata:
    the venvs hold probe-engine from whichever checkout ran .ci/airflow.sh, and Airflow finds a
    provider by the entry points of the installed distribution, not by the code on
    PYTHONPATH. Put after the checkout on PYTHONPATH, its dist-info is the one Airflow sees."""
    target = tmp_path_factory.mktemp("provider-metadata")
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    assert list(target.glob("probe_engine-*.dist-info")), sorted(p.name for p in target.iterdir())
    return target


@pytest.fixture(scope="module")
def cluster(loopback: LoopbackLab) -> Iterator[kl.ApiServer]:
    """The Kubernetes stand-in, with a Service `api` in KUBE_NAMESPACE whose ClusterIP is the
    loopback HTTP fixture (so the cluster-ip column probes 127.0.0.1 and nothing else)."""
    with kl.ApiServer(token="pe-airflow-kube-token") as server:
        server.store.put(
            kl.service(
                "api",
                KUBE_NAMESPACE,
                cluster_ip=LOOPBACK,
                ports=[{"name": "http", "port": loopback.http_port}],
            )
        )
        yield server


def connections(cluster: kl.ApiServer) -> dict[str, str]:
    """The Airflow connections the pe_provider DAG names, as AIRFLOW_CONN_* (JSON form)."""
    kubeconfig = yaml.safe_dump(kubeconfig_dict(cluster.url, token=cluster.token))
    return {
        "AIRFLOW_CONN_PE_KUBE": json.dumps(
            {
                "conn_type": "kubernetes",
                "extra": {"kube_config": kubeconfig, "namespace": KUBE_NAMESPACE},
            }
        ),
        "AIRFLOW_CONN_PE_DOCKER": json.dumps({"conn_type": "docker", "host": DOCKER_SOCKET}),
    }


def clean_environment() -> dict[str, str]:
    """This process's environment minus proxies (loopback must be reached directly) and any
    Airflow settings of the machine."""
    return {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in _PROXY_VARIABLES and not k.startswith("AIRFLOW")
    }


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"airflow-{v}" for v in VERSIONS])
def airflow_home(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    loopback: LoopbackLab,
    provider_metadata: Path,
    cluster: kl.ApiServer,
) -> AirflowHome:
    version: str = request.param
    venv = VENV_ROOT / version
    require(
        (venv / "bin" / "airflow").exists(),
        f"no Airflow {version} venv at {venv}: run .ci/airflow.sh",
    )
    home = tmp_path_factory.mktemp(f"airflow-{version}-")
    out = home / "out"
    out.mkdir()
    env = (
        clean_environment()
        | loopback.variables()
        | connections(cluster)
        | {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            # The checkout under test comes first, whatever the venv has installed; then its
            # metadata (the provider's entry point).
            "PYTHONPATH": f"{ROOT}{os.pathsep}{provider_metadata}",
            "PE_AF_OUT": str(out),
            "PYTHONWARNINGS": "ignore",
        }
    )
    airflow = AirflowHome(version, venv, home, out, env)
    migrated = airflow.airflow("db", "migrate")
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    return airflow


def task_wall_times(output: str) -> dict[str, float]:
    """Seconds from `[DAG TEST] starting task_id=X` to `[DAG TEST] end task task_id=X`, read
    from `airflow dags test`'s own log lines (both Airflow lines print them)."""
    starts: dict[str, datetime] = {}
    walls: dict[str, float] = {}
    for line in output.splitlines():
        found = _STAMP.search(line)
        task = re.search(r"\[DAG TEST\] (starting|end task) task_id=(\S+)", line)
        if not (found and task):
            continue
        stamp = datetime.fromisoformat(found.group(1))
        if task.group(1) == "starting":
            starts[task.group(2)] = stamp
        elif task.group(2) in starts:
            walls[task.group(2)] = (stamp - starts[task.group(2)]).total_seconds()
    return walls


def test_happy_dag_waits_diagnoses_and_hands_the_working_address_on(
    airflow_home: AirflowHome, loopback: LoopbackLab
) -> None:
    run = airflow_home.airflow("dags", "test", "pe_happy")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert airflow_home.states("pe_happy") == {
        "api_ready": "success",
        "diagnostics": "success",
        "diagnostics_callable": "success",
        "run_api_tests": "success",
        "noop": "success",
    }
    api = f"http://127.0.0.1:{loopback.http_port}/health"
    # XCom, as Airflow stored it: the summary, the report paths, what worked from the task.
    summary = airflow_home.xcom("pe_happy", "diagnostics")
    assert summary["passed"] is True
    assert summary["summary"]["total"] == 9
    assert summary["summary"]["expectations"] == {"met": 7, "unmet": 0, "none": 2}
    assert summary["working"] == {"api-clusterip": [api]}
    assert summary["working_by_source"]["shell-curl"] == {"api-clusterip": [api]}
    assert airflow_home.xcom("pe_happy", "diagnostics", "probe_result") == summary
    reports = summary["reports"]
    assert set(reports) == {"json", "html", "junit", "markdown"}
    assert reports["json"] == str(airflow_home.out / "pe_happy" / "report.json")  # templated dir
    saved = json.loads(Path(reports["json"]).read_text())
    assert saved["summary"] == summary["summary"]
    assert saved["findings"], "the proxied row must get a finding"
    # The sensor's XCom names what answered; the callable variant ran its dict matrix.
    assert airflow_home.xcom("pe_happy", "api_ready")["working"] == {"target": [api]}
    assert airflow_home.xcom("pe_happy", "diagnostics_callable")["summary"]["total"] == 2
    # The next task pulled the summary and reached the API at the address that worked.
    record = json.loads((airflow_home.out / "pe_happy-xcom.json").read_text())
    assert record["address"] == api
    assert record["status"] == 200
    assert record["kept_equal"] is True
    # The task log carries the grid and the finding.
    assert "reachability" in output
    assert saved["findings"][0]["title"] in output
    assert "ok 200" in output

    print(
        f"Airflow {airflow_home.version}: event loop running in the task: {record['loop_running']}"
    )
    walls = task_wall_times(output)
    overhead = walls["diagnostics"] - saved["duration_s"]
    line = (
        f"Airflow {airflow_home.version}: diagnostics task {walls['diagnostics']:.3f}s wall, "
        f"probing {saved['duration_s']:.3f}s, overhead {overhead:.3f}s; "
        f"a no-op task {walls['noop']:.3f}s; all: "
        + ", ".join(f"{k} {v:.3f}s" for k, v in sorted(walls.items()))
    )
    print(line)
    (ROOT / ".cache").mkdir(exist_ok=True)
    with (ROOT / ".cache" / "airflow-overhead.txt").open("a") as log:
        log.write(line + "\n")
    assert overhead < 3.0, line


def test_an_unmet_expectation_fails_the_diagnostics_task_without_retries(
    airflow_home: AirflowHome, loopback: LoopbackLab
) -> None:
    run = airflow_home.airflow("dags", "test", "pe_unmet")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-6000:]
    assert airflow_home.states("pe_unmet") == {
        "diagnostics": "failed",
        "run_api_tests": "upstream_failed",
        "keep_result": "success",
    }
    # AirflowFailException: retries=2 on the task, yet one try only.
    tries = airflow_home.query(
        "SELECT try_number FROM task_instance WHERE dag_id = 'pe_unmet' AND task_id = 'diagnostics'"
    )
    assert tries == [(1,)]
    assert "AirflowFailException" in output
    assert "probe matrix failed (exit 1, fail_on=unmet): 1 of 1 cells unmet" in output
    assert f"task -> api (127.0.0.1:{loopback.closed_port}): refused, expected ok" in output
    # The summary is in XCom all the same, for an all_done task to read.
    kept = json.loads((airflow_home.out / "pe_unmet-xcom.json").read_text())
    assert kept == airflow_home.xcom("pe_unmet", "diagnostics", "probe_result")
    assert kept["passed"] is False
    assert kept["unmet"][0]["status"] == "refused"
    assert (
        json.loads((airflow_home.out / "pe_unmet" / "report.json").read_text())["exit_status"] == 1
    )


def test_the_sensor_waits_for_a_listener_that_appears_later(airflow_home: AirflowHome) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(airflow_home.venv / "bin" / "airflow"), "dags", "test", "pe_sensor"],
        env=airflow_home.env | {"PE_AF_LATE_PORT": str(port)},
        cwd=airflow_home.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    first_refusal = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if f"127.0.0.1:{port} refused ECONNREFUSED (errno 111)" in line:
                first_refusal.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    listener = socket.socket()
    try:
        # The listener appears ~3 s after the sensor's first refused poke.
        assert first_refusal.wait(RUN_TIMEOUT), "".join(lines)[-6000:]
        time.sleep(3.0)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, port))
        listener.listen(16)
        opened = time.monotonic()
        returncode = process.wait(RUN_TIMEOUT)
        finished = time.monotonic()
    finally:
        process.kill()
        listener.close()
    reader.join(10)
    output = "".join(lines)
    assert returncode == 0, output[-6000:]
    assert airflow_home.states("pe_sensor") == {"wait_for_listener": "success", "after": "success"}
    pokes = [line for line in output.splitlines() if "probe-engine wait attempt" in line]
    assert any("refused ECONNREFUSED (errno 111)" in line for line in pokes)
    assert pokes[-1].rstrip().endswith(f"127.0.0.1:{port} ok") or f"127.0.0.1:{port} ok" in output
    # Reschedule mode: the sensor gave its slot back between pokes, Airflow recorded it.
    reschedules = airflow_home.query("SELECT count(*) FROM task_reschedule")[0][0]
    assert reschedules >= 2
    ready = json.loads((airflow_home.out / "pe_sensor-xcom.json").read_text())
    assert ready["ready"] is True
    assert ready["working"] == {"target": [f"127.0.0.1:{port}"]}
    assert finished - opened < 30


def test_the_example_dag_imports_and_its_matrix_validates(airflow_home: AirflowHome) -> None:
    code = f"""
import json
try:
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3
    bag = DagBag(dag_folder={str(ROOT / "examples" / "dags")!r})
except ImportError:
    from airflow.models.dagbag import DagBag  # Airflow 2.10
    bag = DagBag(dag_folder={str(ROOT / "examples" / "dags")!r}, include_examples=False)
dag = bag.get_dag("health_predict_api_diagnostics")
print(json.dumps({{
    "errors": {{str(k): str(v) for k, v in bag.import_errors.items()}},
    "upstream": {{t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}},
    "kinds": {{t.task_id: type(t).__name__ for t in dag.tasks}},
    "mode": dag.task_dict["wait_for_api"].mode,
}}))
"""
    run = airflow_home.python(code)
    assert run.returncode == 0, run.stderr[-6000:]
    parsed = json.loads(run.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert parsed["upstream"] == {
        "wait_for_api": [],
        "api_diagnostics": ["wait_for_api"],
        "run_api_tests": ["api_diagnostics"],
    }
    assert parsed["kinds"]["wait_for_api"] == "ProbeReadySensor"
    assert parsed["kinds"]["api_diagnostics"] == "ProbeMatrixOperator"
    assert parsed["mode"] == "reschedule"
    # Its matrix is valid with the story's defaults; nothing in it is probed here.
    validate = subprocess.run(
        [
            sys.executable,
            "-m",
            "probe_engine",
            "validate",
            str(ROOT / "examples" / "dags" / "health_predict_api_matrix.yaml"),
        ],
        capture_output=True,
        text=True,
        env=clean_environment(),
        timeout=60,
        check=False,
    )
    assert validate.returncode == 0, validate.stderr


def test_airflow_lists_probe_engine_as_a_provider_with_its_link_and_connection_types(
    airflow_home: AirflowHome,
) -> None:
    listed = airflow_home.airflow("providers", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    providers = {p["package_name"]: p for p in json.loads(listed.stdout)}
    from probe_engine import __version__

    assert providers["probe-engine"]["version"] == __version__
    assert "Reachability diagnostics" in providers["probe-engine"]["description"]
    links = airflow_home.airflow("providers", "links", "--output", "json")
    assert links.returncode == 0, links.stderr[-3000:]
    assert "probe_engine.integrations.airflow.ProbeReportLink" in links.stdout
    # Neither cncf-kubernetes nor docker is installed in these venvs: probe-engine declares
    # the two connection types it reads, so they can be made in the UI.
    hooks = airflow_home.airflow("providers", "hooks", "--output", "json")
    assert hooks.returncode == 0, hooks.stderr[-3000:]
    declared = {h["connection_type"]: h for h in json.loads(hooks.stdout)}
    for kind, hook in (("kubernetes", "KubernetesClusterHook"), ("docker", "DockerDaemonHook")):
        assert declared[kind]["class"] == f"probe_engine.integrations.airflow_hooks.{hook}"
        assert declared[kind]["package_name"] == "probe-engine"
    assert "already registered" not in listed.stdout + listed.stderr + hooks.stderr


def test_a_templated_matrix_file_with_connections_and_a_report_link(
    airflow_home: AirflowHome, loopback: LoopbackLab, cluster: kl.ApiServer
) -> None:
    run = airflow_home.airflow("dags", "test", "pe_provider")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    summary = airflow_home.xcom("pe_provider", "diagnostics")
    saved = json.loads(Path(summary["reports"]["json"]).read_text())
    cells = {(c["source"], c["target"]): c for c in saved["cells"]}
    port = loopback.http_port
    # Rendered with the task's context: params and the DAG's id are in the URL.
    assert cells["task", "api"]["endpoint"] == f"http://127.0.0.1:{port}/health?dag=pe_provider"
    assert cells["task", "api"]["status"] == "ok"
    assert saved["matrix"]["path"].endswith("templates/provider.yaml")
    # The `kubernetes` connection: its kubeconfig (content) and its namespace were used.
    column = cells["task", "api-service/cluster-ip"]
    assert column["status"] == "ok", column
    assert column["endpoint"] == f"http://127.0.0.1:{port}/health"
    assert cluster.requests_to(f"/api/v1/namespaces/{KUBE_NAMESPACE}/services/api")
    # The `docker` connection: its Host is the daemon asked for, and the row says so.
    sidecar = cells["sidecar", "api"]
    assert sidecar["status"] == "source-error"
    assert DOCKER_SOCKET in sidecar["message"]
    assert "Airflow connection 'pe_docker'" in sidecar["message"]
    # The report link: in the summary, and as the task's extra link.
    link = summary["report_url"]
    assert link == "https://reports.example.test/probe/pe_provider/report.html"
    if airflow_home.version.startswith("3"):
        # Airflow 3 computes operator links in the worker and keeps them in XCom.
        assert airflow_home.xcom("pe_provider", "diagnostics", "_link_ProbeReportLink") == link
    else:
        # Airflow 2's webserver asks the deserialized operator (which needs the provider's
        # extra-links registration) for the task instance's link.
        code = f"""
from airflow.models import DagBag, TaskInstance
from airflow.serialization.serialized_objects import SerializedDAG
from airflow.settings import Session
dag = DagBag(dag_folder={str(DAGS)!r}, include_examples=False).get_dag("pe_provider")
served = SerializedDAG.from_dict(SerializedDAG.to_dict(dag))
task = served.get_task("diagnostics")
ti = Session().query(TaskInstance).filter_by(dag_id="pe_provider", task_id="diagnostics").one()
print(task.get_extra_links(ti, "probe-engine report"))
"""
        shown = airflow_home.python(code)
        assert shown.returncode == 0, shown.stderr[-6000:]
        assert shown.stdout.strip().splitlines()[-1] == link
    # The cluster's credentials are in no report and no log.
    assert cluster.token and cluster.token not in output
    for path in summary["reports"].values():
        assert cluster.token not in Path(path).read_text()
