"""Test DAG: a readiness sensor in reschedule mode waits for a listener that the test starts
a few seconds after the DAG run began."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.10
    from airflow import DAG
    from airflow.decorators import task

from probe_engine.integrations.airflow import ProbeReadySensor

OUT = os.environ.get("PE_AF_OUT", "/tmp/pe-airflow-test")
LATE_PORT = os.environ.get("PE_AF_LATE_PORT", "1")

with DAG(
    "pe_sensor", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["test"]
) as dag:
    wait = ProbeReadySensor(
        task_id="wait_for_listener",
        target=f"127.0.0.1:{LATE_PORT}",
        mode="reschedule",
        poke_interval=1,
        timeout=60,
        attempt_timeout=1,
    )

    @task
    def after(**context: Any) -> None:
        ready = context["ti"].xcom_pull(task_ids="wait_for_listener")
        Path(OUT, "pe_sensor-xcom.json").write_text(json.dumps(ready, indent=2))

    wait >> after()
