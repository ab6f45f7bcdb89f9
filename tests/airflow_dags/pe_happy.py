"""Test DAG: readiness, then the diagnostics matrix, then a task that uses the address the matrix
found working (pulled from XCom). Ports come from the environment the test sets."""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.10
    from airflow import DAG
    from airflow.decorators import task

try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2.10
    from airflow.operators.python import PythonOperator

from probe_engine.integrations._runner import _loop_running
from probe_engine.integrations.airflow import (
    ProbeMatrixOperator,
    ProbeReadySensor,
    run_diagnostics,
    working_endpoint,
)

HERE = Path(__file__).parent
OUT = os.environ.get("PE_AF_OUT", "/tmp/pe-airflow-test")
HTTP_PORT = os.environ.get("PE_DEMO_HTTP_PORT", "1")
CLOSED_PORT = os.environ.get("PE_DEMO_CLOSED_PORT", "1")

with DAG(
    "pe_happy", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["test"]
) as dag:
    api_ready = ProbeReadySensor(
        task_id="api_ready",
        target=f"http://127.0.0.1:{HTTP_PORT}/health",
        poke_interval=1,
        timeout=30,
    )
    diagnostics = ProbeMatrixOperator(
        task_id="diagnostics",
        matrix=str(HERE / "matrices" / "happy.yaml"),
        report_dir=OUT + "/{{ dag.dag_id }}",
        fail_on="unmet",
        formats=["json", "html", "junit", "markdown"],
        retries=1,
    )
    # The same step as a plain callable, with the matrix written in the DAG as a dict.
    diagnostics_callable = PythonOperator(
        task_id="diagnostics_callable",
        python_callable=run_diagnostics,
        op_kwargs={
            "matrix": {
                "sources": {"task": {"kind": "local"}},
                "targets": {
                    "api": {"kind": "http", "url": f"http://127.0.0.1:{HTTP_PORT}/health"},
                    "db": {"kind": "tcp", "host": "127.0.0.1", "port": int(CLOSED_PORT)},
                },
                "expect": [{"target": "db", "status": "refused"}],
            },
            "report_dir": OUT + "/callable-{{ ti.task_id }}",
            "fail_on": "any-failure",
            "formats": ["json"],
        },
    )

    @task
    def noop() -> None:
        """A task that does nothing: Airflow's own cost per task, to subtract."""

    @task
    def run_api_tests(**context: Any) -> str:
        ti = context["ti"]
        summary = ti.xcom_pull(task_ids="diagnostics")
        kept = ti.xcom_pull(task_ids="diagnostics", key="probe_result")
        ready = ti.xcom_pull(task_ids="api_ready")
        callable_summary = ti.xcom_pull(task_ids="diagnostics_callable")
        # The story's pattern: the first path that works from a task process, in our preference.
        address = working_endpoint(summary, "api-nodeport") or working_endpoint(
            summary, "api-clusterip"
        )
        assert address is not None, summary
        with urllib.request.urlopen(address, timeout=5) as response:
            status = response.status
        record = {
            # Is the task's thread already running an event loop? (The runner copes either way.)
            "loop_running": _loop_running(),
            "summary": summary,
            "kept_equal": kept == summary,
            "ready": ready,
            "callable": callable_summary,
            "address": address,
            "status": status,
        }
        Path(OUT, "pe_happy-xcom.json").write_text(json.dumps(record, indent=2))
        return address

    api_ready >> [diagnostics, diagnostics_callable] >> run_api_tests()
    # After the first task, which also pays for starting `dags test`'s in-process services.
    api_ready >> noop()
