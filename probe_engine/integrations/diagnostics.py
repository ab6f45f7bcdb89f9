"""A pipeline's diagnostics step, without the pipeline: run a matrix, tell the result as plain
text for a task log, write the reports, and sum it all up as JSON-safe data for the next step.

The Airflow operator and callable are thin wrappers around `run_step`; keeping this part free of
Airflow lets the .venv tests cover it and lets other orchestrators reuse it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from io import StringIO
from pathlib import Path
from typing import Any, Literal, NamedTuple, Union, get_args

from ..docker_host import DockerOverrides
from ..engine import RunOptions, run_matrix
from ..errors import SpecError
from ..kube import KubeOverrides
from ..plan import Selection
from ..reports import DEFAULT_FORMATS, REPORTERS, write_reports
from ..results import MatrixResult
from ..spec import LoadedMatrix, load_matrix, load_matrix_dict, load_matrix_text
from ..spec.common import parse_duration
from ..status import EXIT_OK, EXIT_UNMET, FailOn
from ._runner import run_blocking

FAIL_ON: tuple[str, ...] = get_args(FailOn)
MAX_LISTED = 20  # unmet cells named in the XCom payload and in the failure message
LOG_WIDTH = 160  # task logs are read in a browser: wide enough for a grid, not a terminal's 80
Verdict = Literal["pass", "fail", "fault"]


class RenderedMatrix(NamedTuple):
    """A matrix file's text after a templating step (Airflow renders a `.yaml` template field
    into its content): loaded from `text`, its errors naming `file`."""

    text: str
    file: str


MatrixInput = Union[str, os.PathLike[str], Mapping[str, Any], RenderedMatrix]


def check_fail_on(value: str) -> FailOn:
    if value not in FAIL_ON:
        raise SpecError(f"{value!r} is not one of {', '.join(FAIL_ON)}", field="fail_on")
    return value  # type: ignore[return-value]


def check_formats(formats: Sequence[str] | None) -> list[str]:
    # Once each: write_reports writes a format once, and the paths are paired with these.
    chosen = list(dict.fromkeys(DEFAULT_FORMATS if formats is None else formats))
    unknown = [f for f in chosen if f not in REPORTERS]
    if unknown:
        raise SpecError(
            f"unknown format {', '.join(unknown)} (choose from {', '.join(REPORTERS)})",
            field="formats",
        )
    return chosen


def load_any(matrix: MatrixInput, environ: Mapping[str, str] | None = None) -> LoadedMatrix:
    """A matrix file's path, its rendered text, or the matrix itself as a dict (e.g. written
    in the DAG)."""
    if isinstance(matrix, RenderedMatrix):
        return load_matrix_text(matrix.text, matrix.file, environ)
    if isinstance(matrix, Mapping):
        return load_matrix_dict(matrix)
    return load_matrix(matrix, environ)


def working_endpoints(
    result: MatrixResult, rows: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """Per declared target, the endpoints whose cells were ok from `rows` (default: every row),
    in matrix order: the addresses a later step can use."""
    working: dict[str, list[str]] = {}
    for cell in result.cells:
        if cell.status != "ok" or (rows is not None and cell.source not in rows):
            continue
        endpoints = working.setdefault(cell.target_name, [])
        if cell.endpoint not in endpoints:
            endpoints.append(cell.endpoint)
    return working


def local_rows(result: MatrixResult) -> list[str]:
    """Rows probed from this very process. A later task of the same DAG runs in a process like
    this one, so what worked from here is what it can use; other rows (a container, a shell
    tool) only explain the difference."""
    return [info.name for info in result.sources if info.kind == "local"]


def verdict(result: MatrixResult) -> Verdict:
    """pass (exit 0), fail (exit 1: the network, judged by fail_on), fault (the engine)."""
    if result.exit_status == EXIT_OK:
        return "pass"
    return "fail" if result.exit_status == EXIT_UNMET else "fault"


def summarize(
    result: MatrixResult, reports: Mapping[str, str], report_url: str | None = None
) -> dict[str, Any]:
    """The JSON-safe summary pushed to XCom: small, stable keys, no per-check detail (that is in
    the JSON report, whose path is here; `report_url` is where the HTML report is served)."""
    preferred = local_rows(result)
    by_row = {row: working_endpoints(result, [row]) for row in result.rows()}
    unmet = [c for c in result.cells if c.met is False]
    failed = [c for c in result.cells if c.met is None and c.status != "ok"]
    return {
        "passed": result.exit_status == EXIT_OK,
        "exit_status": result.exit_status,
        "fail_on": result.fail_on,
        "duration_s": result.duration_s,
        "started_at": result.started_at.isoformat(),
        "matrix": result.matrix.model_dump(mode="json"),
        "summary": result.summary.model_dump(mode="json"),
        "working": working_endpoints(result, preferred or None),
        "working_from": preferred or result.rows(),
        "working_by_source": {row: found for row, found in by_row.items() if found},
        "unmet": [_cell_brief(c) for c in unmet[:MAX_LISTED]],
        "failed_without_expectation": [_cell_brief(c) for c in failed[:MAX_LISTED]],
        "findings": [
            {"rule": f.rule, "severity": f.severity, "title": f.title} for f in result.findings
        ],
        "reports": dict(reports),
        "report_url": report_url,
    }


def _cell_brief(cell: Any) -> dict[str, Any]:
    return {
        "source": cell.source,
        "target": cell.target,
        "endpoint": cell.endpoint,
        "status": cell.status,
        "expected": cell.expected,
    }


def working_endpoint(payload: Mapping[str, Any], target: str) -> str | None:
    """The first endpoint of `target` that worked, from a summary pulled from XCom."""
    found = payload.get("working", {}).get(target) or []
    return str(found[0]) if found else None


def result_text(result: MatrixResult, width: int = LOG_WIDTH) -> str:
    """Findings, grid and verdict as the terminal shows them, without colour codes."""
    from rich.console import Console

    from ..reports.terminal import print_result

    buffer = StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system=None,
        force_terminal=False,
        no_color=True,
        highlight=False,
        emoji=False,
    )
    print_result(console, result)
    # rich pads every line to the console's width: trailing blanks only widen a log view.
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip().splitlines())


@dataclass(frozen=True)
class StepOutcome:
    result: MatrixResult
    text: str
    reports: dict[str, str]
    payload: dict[str, Any]

    @property
    def verdict(self) -> Verdict:
        return verdict(self.result)

    def failure_message(self) -> str:
        """Why the step fails, in one paragraph: the unmet cells and where the report is."""
        result = self.result
        e = result.summary.expectations
        lines = [
            f"probe matrix failed (exit {result.exit_status}, fail_on={result.fail_on}): "
            f"{e.unmet} of {result.summary.total} cells unmet"
        ]
        if self.verdict == "fault":
            broken = sum(1 for c in result.cells if c.status == "source-error")
            lines = [
                f"probe-engine itself failed (exit {result.exit_status}): {broken} cells could "
                "not be probed (source-error); the grid says nothing about the network there"
            ]
        for cell in self.payload["unmet"] + (
            self.payload["failed_without_expectation"] if result.fail_on == "any-failure" else []
        ):
            expected = "/".join(cell["expected"] or ["ok"])
            lines.append(
                f"  {cell['source']} -> {cell['target']} ({cell['endpoint']}): "
                f"{cell['status']}, expected {expected}"
            )
        report = self.reports.get("html") or self.reports.get("json")
        if report:
            lines.append(f"  report: {report}")
        return "\n".join(lines)


def run_step(  # noqa: PLR0913 - keyword-only options, one per CLI flag, for Airflow callers
    matrix: MatrixInput,
    *,
    report_dir: str | os.PathLike[str] | None = None,
    fail_on: str = "unmet",
    formats: Sequence[str] | None = None,
    select: str | Selection | None = None,
    timeout: float | str | None = None,
    report_name: str = "report",
    environ: Mapping[str, str] | None = None,
    width: int = LOG_WIDTH,
    kube: KubeOverrides | None = None,
    docker: DockerOverrides | None = None,
    report_url: str | None = None,
) -> StepOutcome:
    """Run `matrix` in this process, write its reports to `report_dir` (if given), and return
    the result, its text and the summary. Raises SpecError for bad input; a network failure is
    never an exception, it is the verdict.

    `kube` and `docker` choose the cluster and the Docker daemon as the command line's
    --kubeconfig/--context and a source's `host:` would (an Airflow connection's, say);
    `report_url` is the URL under which `report_dir` is served: the summary then carries the
    HTML report's address."""
    loaded = load_any(matrix, environ)
    options = RunOptions(
        select=select if isinstance(select, Selection) else Selection.parse(select),
        timeout=_seconds(timeout),
        fail_on=check_fail_on(fail_on),
        kube=kube or KubeOverrides(),
        docker=docker or DockerOverrides(),
    )
    chosen = check_formats(formats)
    result = run_blocking(partial(run_matrix, loaded, options))
    reports: dict[str, str] = {}
    if report_dir is not None:
        written = write_reports(result, Path(report_dir), chosen, report_name)
        reports = {f: str(path) for f, path in zip(chosen, written)}
    link = served_report(report_url, report_name) if "html" in reports else None
    return StepOutcome(
        result, result_text(result, width), reports, summarize(result, reports, link)
    )


def served_report(report_url: str | None, report_name: str = "report") -> str | None:
    """The HTML report's address under `report_url` (the folder's URL), if one is given."""
    if not report_url:
        return None
    return f"{report_url.rstrip('/')}/{report_name}.html"


def _seconds(value: float | str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise SpecError(str(exc), field="timeout") from None
