"""Airflow: the diagnostics task (an operator, and a plain callable) and a readiness sensor.

The matrix runs inside the task's own process, so `local` rows are exactly what a
PythonOperator of the same deployment sees (its proxy variables, its resolver, its routes).

- `ProbeMatrixOperator`: runs a matrix, logs the findings and the grid, writes the reports,
  pushes a summary to XCom (`return_value` and, even when the task fails, `probe_result`),
  including `working`: per target, the endpoints that worked from this process, which the next
  task uses as its address. Fails with AirflowFailException when `fail_on` says so (no retry
  helps a wrong route), with AirflowException when the engine itself failed (a retry may).
  A matrix *file* is a Jinja template rendered with the task's context (`template_ext`), a
  `kubernetes_conn_id` / `docker_conn_id` chooses the cluster and the daemon, and with
  `report_url` (where `report_dir` is served) the task gets a "probe-engine report" link.
- `run_diagnostics(matrix, ...)`: the same for PythonOperator or @task.
- `ProbeReadySensor`: one bounded attempt per poke, nothing kept between pokes, so
  mode="reschedule" frees the worker slot between attempts.

Works with Airflow 3 (airflow.sdk) and Airflow 2.10. Importing this module imports Airflow.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from ..errors import SpecError
from ..plan import Selection
from ..spec.common import parse_duration
from ..wait import attempt_once, load_wait_target
from ._runner import run_blocking
from .diagnostics import (
    MatrixInput,
    RenderedMatrix,
    StepOutcome,
    check_fail_on,
    check_formats,
    local_rows,
    run_step,
    working_endpoint,
    working_endpoints,
)

try:  # Airflow 3: operators come from the task SDK
    from airflow.sdk import BaseOperator, BaseSensorOperator, PokeReturnValue
except ImportError:
    try:  # Airflow 2.10
        from airflow.models import BaseOperator
        from airflow.sensors.base import BaseSensorOperator, PokeReturnValue
    except ImportError as exc:
        raise ImportError(
            "probe_engine.integrations.airflow needs Apache Airflow 2.10 or 3 in this "
            "environment (pip install apache-airflow); the rest of probe_engine does not"
        ) from exc
try:  # Airflow 3.1+: airflow.exceptions still works but warns
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:
    from airflow.exceptions import AirflowException, AirflowFailException
try:  # Airflow 3
    from airflow.sdk import BaseOperatorLink
    from airflow.sdk.execution_time.xcom import XCom
except ImportError:  # Airflow 2.10
    from airflow.models.baseoperatorlink import BaseOperatorLink
    from airflow.models.xcom import XCom

XCOM_KEY = "probe_result"
MATRIX_TEMPLATES = (".yaml", ".yml")
log = logging.getLogger("airflow.task")


def _finish(
    outcome: StepOutcome, logger: logging.Logger | Any, context: Mapping[str, Any]
) -> dict[str, Any]:
    """Log, push, and turn the verdict into the task's state."""
    logger.info("probe-engine result:\n%s", outcome.text)
    for fmt, path in outcome.reports.items():
        logger.info("probe-engine wrote the %s report: %s", fmt, path)
    if outcome.payload["working"]:
        logger.info("probe-engine working endpoints: %s", outcome.payload["working"])
    ti = context.get("ti")
    if ti is not None:
        # Pushed under its own key too, so a trigger_rule="all_done" task can read it after a
        # failure (a failed task pushes no return_value).
        ti.xcom_push(key=XCOM_KEY, value=outcome.payload)
    if outcome.verdict == "fail":
        raise AirflowFailException(outcome.failure_message())
    if outcome.verdict == "fault":
        raise AirflowException(outcome.failure_message())
    return outcome.payload


def _step(
    logger: logging.Logger | Any,
    context: Mapping[str, Any],
    on_outcome: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    try:
        outcome = run_step(**kwargs)
    except SpecError as exc:
        # A bad matrix does not get better on retry.
        raise AirflowFailException(f"probe-engine: bad input: {exc}") from exc
    if on_outcome is not None:
        on_outcome(outcome)
    return _finish(outcome, logger, context)


class ProbeReportLink(BaseOperatorLink):
    """The task's "probe-engine report" button: the HTML report where `report_url` serves it.

    Airflow 3 asks right after the task ran (the operator still holds the link); Airflow 2's
    webserver asks later, and reads it from the summary in XCom."""

    name = "probe-engine report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        link = getattr(operator, "report_link", None)
        if link is None:
            payload = XCom.get_value(ti_key=ti_key, key=XCOM_KEY)
            link = payload.get("report_url") if isinstance(payload, Mapping) else None
        return str(link or "")


def run_diagnostics(  # noqa: PLR0913 - the keyword options a DAG author passes, as the CLI's
    matrix: MatrixInput,
    report_dir: str | os.PathLike[str] | None = None,
    fail_on: str = "unmet",
    *,
    formats: Sequence[str] | None = None,
    select: str | None = None,
    timeout: float | str | None = None,
    report_name: str = "report",
    **context: Any,
) -> dict[str, Any]:
    """Run `matrix` from this task's process; return the summary (pushed as XCom return_value).

    For PythonOperator(python_callable=run_diagnostics, op_kwargs={...}) or inside @task:
    `return run_diagnostics("matrix.yaml", report_dir, **context)`.
    """
    return _step(
        log,
        context,
        matrix=matrix,
        report_dir=report_dir,
        fail_on=fail_on,
        formats=formats,
        select=select,
        timeout=timeout,
        report_name=report_name,
    )


class ProbeMatrixOperator(BaseOperator):
    """Run a probe matrix from this task's process; see the module's docstring.

    :param matrix: path to a matrix file (templated), or the matrix as a dict (its strings
        templated; use ``${NAME}`` in files and Jinja in dicts for values known at run time)
    :param report_dir: folder for the reports (templated), e.g. ``/reports/{{ run_id }}``
    :param fail_on: ``unmet`` (an expectation is not met), ``any-failure`` (also a failing cell
        without expectation), or ``never``
    :param formats: report formats (default json, html, junit, markdown)
    :param select: ``source=GLOB,target=GLOB`` to run a subset (templated)
    :param timeout: per-cell timeout for every cell, e.g. ``"2s"`` (default: the matrix's)
    :param report_name: report file name without extension (templated)
    :param report_url: the URL where ``report_dir`` is served (templated), e.g.
        ``https://reports.example.com/probe/{{ run_id }}``: the summary's ``report_url`` and
        the task's "probe-engine report" link then point at the HTML report
    :param kubernetes_conn_id: an Airflow connection of type ``kubernetes`` (the
        cncf-kubernetes provider's fields) choosing the cluster, as ``--kubeconfig`` would
    :param docker_conn_id: an Airflow connection of type ``docker`` whose Host names the
        Docker daemon (``unix://...``, ``tcp://host:2376``, ``ssh://user@host``), for docker
        sources without a ``host:`` of their own

    A matrix file (``.yaml``/``.yml``) is a Jinja template, rendered with the task's context
    like an SQL file: ``{{ ds }}``, ``{{ var.value.api_host }}``, ``{{ ti.xcom_pull(...) }}``.
    A relative path is looked up beside the DAG file (and in the DAG's template_searchpath).
    """

    template_fields: Sequence[str] = (
        "matrix",
        "report_dir",
        "select",
        "report_name",
        "report_url",
    )
    template_ext: Sequence[str] = MATRIX_TEMPLATES
    operator_extra_links: ClassVar[tuple[BaseOperatorLink, ...]] = (ProbeReportLink(),)
    ui_color = "#dbeafe"

    def __init__(  # noqa: PLR0913 - keyword arguments, as every Airflow operator takes them
        self,
        *,
        matrix: MatrixInput,
        report_dir: str | None = None,
        fail_on: str = "unmet",
        formats: Sequence[str] | None = None,
        select: str | None = None,
        timeout: float | str | None = None,
        report_name: str = "report",
        report_url: str | None = None,
        kubernetes_conn_id: str | None = None,
        docker_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Checked here so that a typo fails when the DAG is parsed, not when it runs.
        self.fail_on = check_fail_on(fail_on)
        self.formats = check_formats(formats)
        if isinstance(matrix, RenderedMatrix):
            raise TypeError("give the matrix file's path; Airflow renders it")
        self.matrix: Any = matrix if isinstance(matrix, Mapping) else os.fspath(matrix)
        # The path as given: once Airflow has rendered the file, `matrix` holds its text.
        self.matrix_file = None if isinstance(matrix, Mapping) else self.matrix
        self.report_dir = report_dir
        self.select = select
        self.cell_timeout = timeout  # `timeout` would read as the task's own timeout
        self.report_name = report_name
        self.report_url = report_url
        self.kubernetes_conn_id = kubernetes_conn_id
        self.docker_conn_id = docker_conn_id
        self.report_link: str | None = None

    def get_template_env(self, *args: Any, **kwargs: Any) -> Any:
        """The DAG's Jinja environment, able to load a matrix file given by absolute path too
        (Jinja's file loader looks only below its search path; `/` is added last)."""
        env = super().get_template_env(*args, **kwargs)
        searchpath = getattr(env.loader, "searchpath", None)
        if isinstance(searchpath, list) and os.sep not in searchpath:
            searchpath.append(os.sep)
        return env

    def _matrix_input(self) -> MatrixInput:
        if isinstance(self.matrix, str) and self.matrix != self.matrix_file:
            return RenderedMatrix(self.matrix, str(self.matrix_file))
        return self.matrix  # type: ignore[no-any-return]

    def execute(self, context: Any) -> dict[str, Any]:
        from .airflow_hooks import DockerDaemonHook, KubernetesClusterHook

        def keep_link(outcome: StepOutcome) -> None:
            self.report_link = outcome.payload["report_url"]

        with tempfile.TemporaryDirectory(prefix="probe-engine-") as scratch:
            kube = docker = None
            try:
                if self.kubernetes_conn_id:
                    hook = KubernetesClusterHook(self.kubernetes_conn_id)
                    kube = hook.overrides(Path(scratch))
                if self.docker_conn_id:
                    docker = DockerDaemonHook(self.docker_conn_id).overrides()
            except SpecError as exc:
                raise AirflowFailException(f"probe-engine: bad connection: {exc}") from exc
            return _step(
                self.log,
                context,
                keep_link,
                matrix=self._matrix_input(),
                report_dir=self.report_dir,
                fail_on=self.fail_on,
                formats=self.formats,
                select=self.select,
                timeout=self.cell_timeout,
                report_name=self.report_name,
                report_url=self.report_url,
                kube=kube,
                docker=docker,
            )


class ProbeReadySensor(BaseSensorOperator):
    """Wait until a target (a URL, host:port) or every cell of a matrix is reachable.

    Each poke is one attempt bounded by `attempt_timeout`; nothing is kept between pokes, so
    mode="reschedule" works. The XCom value, once ready, names the endpoints that answered.
    Defaults are short on purpose (poke every 5 s, give up after 5 min): a readiness wait that
    can last Airflow's default seven days hides a broken deployment.
    """

    template_fields: Sequence[str] = ("target", "select")
    ui_color = "#dcfce7"

    def __init__(
        self,
        *,
        target: str | os.PathLike[str] | Mapping[str, Any],
        attempt_timeout: float | str = 5.0,
        select: str | None = None,
        poke_interval: float | timedelta = 5.0,
        timeout: float | timedelta = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.target = target if isinstance(target, Mapping) else os.fspath(target)
        self.attempt_timeout = parse_duration(attempt_timeout)
        self.select = select
        self._pokes = 0

    def poke(self, context: Any) -> PokeReturnValue:
        try:
            loaded = load_wait_target(self.target)
            selection = Selection.parse(self.select)
        except SpecError as exc:
            raise AirflowFailException(f"probe-engine: bad input: {exc}") from exc
        # In reschedule mode every poke is a new instance: count with Airflow's own number
        # (Airflow 3); Airflow 2 does not give it to the task, so the number is left out.
        self._pokes += 1
        number: int | None = self._pokes + int(context.get("task_reschedule_count") or 0)
        if self.mode == "reschedule" and "task_reschedule_count" not in context:
            number = None
        attempt = run_blocking(
            partial(
                attempt_once,
                loaded,
                number=number,
                attempt_timeout=self.attempt_timeout,
                select=selection,
            )
        )
        self.log.info("probe-engine wait %s", attempt.describe())
        if not attempt.ready:
            return PokeReturnValue(is_done=False)
        rows = local_rows(attempt.result) or None
        return PokeReturnValue(
            is_done=True,
            xcom_value={
                "ready": True,
                "attempt": number,
                "working": working_endpoints(attempt.result, rows),
                "duration_s": attempt.result.duration_s,
            },
        )


__all__ = [
    "XCOM_KEY",
    "ProbeMatrixOperator",
    "ProbeReadySensor",
    "ProbeReportLink",
    "run_diagnostics",
    "working_endpoint",
]
