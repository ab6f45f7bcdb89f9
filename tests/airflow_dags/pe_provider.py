"""Test DAG: the provider's pieces together. The matrix file is a Jinja template rendered with
the task's context (a relative path, beside this file), the cluster comes from a `kubernetes`
connection and the Docker daemon from a `docker` connection (both set by the test as
AIRFLOW_CONN_* variables), and report_url gives the task its report link."""

from __future__ import annotations

import os
from datetime import datetime

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.10
    from airflow import DAG

from probe_engine.integrations.airflow import ProbeMatrixOperator

OUT = os.environ.get("PE_AF_OUT", "/tmp/pe-airflow-test")
HTTP_PORT = int(os.environ.get("PE_DEMO_HTTP_PORT", "1"))

with DAG(
    "pe_provider",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["test"],
    params={"api_port": HTTP_PORT},
) as dag:
    ProbeMatrixOperator(
        task_id="diagnostics",
        matrix="templates/provider.yaml",
        report_dir=OUT + "/{{ dag.dag_id }}",
        report_url="https://reports.example.test/probe/{{ dag.dag_id }}",
        kubernetes_conn_id="pe_kube",
        docker_conn_id="pe_docker",
        formats=["json", "html"],
    )
