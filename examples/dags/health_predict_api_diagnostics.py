"""health_predict_api diagnostics: the DAG the connectivity story wanted.

1. wait_for_api: a readiness sensor (the strategy's Phase 4) polls the API's /health the way
   that is known to work (curl in the scheduler container, to the NodePort): one bounded
   attempt per poke, in reschedule mode so it holds no worker slot while waiting.
2. api_diagnostics: the matrix in health_predict_api_matrix.yaml runs *in this task's process*
   (so the `task` rows are what pytest in a PythonOperator sees), beside curl and Python in the
   scheduler container (`docker exec`) and a raw TCP connect. The log shows the grid and the
   findings (e.g. "task is refused through HTTP_PROXY where curl connects directly; NO_PROXY
   lacks 192.168.49.2"); the reports go to REPORT_DIR/<run_id>/; the summary, with the
   endpoints that worked from this process, goes to XCom.
3. run_api_tests: pulls that summary and runs pytest against the first address that worked
   from a task process, in the order of preference below: no guessing, no skipped tests.

Deploy: copy this file and the matrix next to each other into the DAGs folder, and install
probe-engine into the Airflow image (`pip install probe-engine`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

try:  # Airflow 3
    from airflow.sdk import DAG, task
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 2.10
    from airflow import DAG
    from airflow.decorators import task
    from airflow.exceptions import AirflowFailException

from probe_engine.integrations.airflow import (
    ProbeMatrixOperator,
    ProbeReadySensor,
    working_endpoint,
)

MATRIX = Path(__file__).with_name("health_predict_api_matrix.yaml")
REPORT_DIR = os.environ.get("PROBE_REPORT_DIR", "/opt/airflow/logs/probe-engine")
API_TESTS = os.environ.get("API_TESTS_PATH", "/opt/airflow/tests/api")
# Phase 1 of the strategy first (ClusterIP), then the Service's DNS name, then the NodePort,
# then a port-forward: the first one that worked from this task's process is used.
PREFERENCE = ("api-clusterip", "api-dns", "api-nodeport", "api-portforward")

with DAG(
    dag_id="health_predict_api_diagnostics",
    description="Wait for the API, find the path that works from a task, run the API tests",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 0},
    tags=["health-predict", "probe-engine"],
) as dag:
    wait_for_api = ProbeReadySensor(
        task_id="wait_for_api",
        target=str(MATRIX),
        select="source=scheduler-curl,target=api-nodeport",
        mode="reschedule",
        poke_interval=15,
        timeout=600,
        attempt_timeout="3s",
    )

    api_diagnostics = ProbeMatrixOperator(
        task_id="api_diagnostics",
        matrix=str(MATRIX),
        report_dir=REPORT_DIR + "/{{ run_id }}",
        fail_on="unmet",
        formats=["json", "html", "junit", "markdown"],
        execution_timeout=timedelta(minutes=2),
    )

    @task(execution_timeout=timedelta(minutes=15))
    def run_api_tests(**context: Any) -> str:
        summary = context["ti"].xcom_pull(task_ids="api_diagnostics")
        found = {name: working_endpoint(summary, name) for name in PREFERENCE}
        usable = [(name, url) for name, url in found.items() if url]
        if not usable:
            raise AirflowFailException(
                "no path to the API worked from a task process; see the diagnostics report: "
                f"{summary['reports'].get('html')}"
            )
        name, url = usable[0]
        parts = urlsplit(url)
        base_url = f"{parts.scheme}://{parts.netloc}"
        print(f"running the API tests against {base_url} (the {name} path worked)")
        env = {
            **os.environ,
            "API_BASE_URL": base_url,
            # The names tests/api/test_api_endpoints.py reads in the strategy's Phase 1.
            "API_CLUSTER_IP": parts.hostname or "",
            "API_SERVICE_PORT": str(parts.port or 80),
        }
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-v", API_TESTS], env=env, check=False
        )
        if completed.returncode != 0:
            raise AirflowFailException(f"API tests failed against {base_url}")
        return base_url

    wait_for_api >> api_diagnostics >> run_api_tests()
