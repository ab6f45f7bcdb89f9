"""Test DAG: an expectation the network does not meet fails the diagnostics task, without
retries, and the summary is still in XCom (key probe_result) for an all_done task."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.10
    from airflow import DAG
    from airflow.decorators import task

from probe_engine.integrations.airflow import XCOM_KEY, ProbeMatrixOperator

OUT = os.environ.get("PE_AF_OUT", "/tmp/pe-airflow-test")
CLOSED_PORT = os.environ.get("PE_DEMO_CLOSED_PORT", "1")

with DAG(
    "pe_unmet", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["test"]
) as dag:
    diagnostics = ProbeMatrixOperator(
        task_id="diagnostics",
        matrix={
            "sources": {"task": {"kind": "local"}},
            "targets": {"api": {"kind": "tcp", "host": "127.0.0.1", "port": int(CLOSED_PORT)}},
            "expect": [{"target": "api", "status": "ok"}],
        },
        report_dir=OUT + "/{{ dag.dag_id }}",
        formats=["json"],
        retries=2,
        retry_delay=timedelta(seconds=1),
    )

    @task
    def run_api_tests() -> None:
        raise AssertionError("must not run: the diagnostics failed")

    @task(trigger_rule="all_done")
    def keep_result(**context: Any) -> None:
        kept = context["ti"].xcom_pull(task_ids="diagnostics", key=XCOM_KEY)
        Path(OUT, "pe_unmet-xcom.json").write_text(json.dumps(kept, indent=2))

    diagnostics >> run_api_tests()
    diagnostics >> keep_result()
